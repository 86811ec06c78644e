/**
 * Whether two values are equal one level deep: the same value, or arrays with the same
 * items, or plain objects with the same keys and values (compared with `Object.is`).
 * Pass it to a hook whose selector builds a new array or object on every call, e.g.
 * `useOthers((others) => others.map((user) => user.id), shallow)`.
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
export function shallow(a: unknown, b: unknown): boolean;
/**
 * Everyone in the room, self included, oldest first.
 * @returns {ReadonlyArray<PresenceUser>}
 */
export function useUsers(): ReadonlyArray<PresenceUser>;
/**
 * Everyone in the room but this user, oldest first; or what `selector` picks of them.
 * With a selector the component re-renders only when the selection changes by
 * `isEqual` (`Object.is` by default; `shallow` for a selector that builds an array).
 * @template [T=ReadonlyArray<PresenceUser>]
 * @param {(others: ReadonlyArray<PresenceUser>) => T} [selector]
 * @param {(a: T, b: T) => boolean} [isEqual]
 * @returns {T}
 */
export function useOthers<T = readonly Readonly<import("@presenced/client/types.js").User & {
    away: boolean;
    isSelf: boolean;
}>[]>(selector?: (others: ReadonlyArray<PresenceUser>) => T, isEqual?: (a: T, b: T) => boolean): T;
/**
 * One other user, or what `selector` picks of them; null while that user is not in the
 * room. Re-renders only when that user's entry (or the selection) changes.
 * @template [T=PresenceUser]
 * @param {string} userId
 * @param {(user: PresenceUser) => T} [selector]
 * @param {(a: T, b: T) => boolean} [isEqual]
 * @returns {T | null}
 */
export function useOther<T = Readonly<import("@presenced/client/types.js").User & {
    away: boolean;
    isSelf: boolean;
}>>(userId: string, selector?: (user: PresenceUser) => T, isEqual?: (a: T, b: T) => boolean): T | null;
/**
 * How many users are in the room, this one included (unless it is a spectator): the
 * server's count, which for a list view (`view={{ list: K }}`) is the whole room, not
 * the K listed. Re-renders only when the number changes, not when someone's state does.
 * @param {Room | null} [room] a room to read instead of the provider's
 * @returns {number}
 */
export function useCount(room?: Room | null): number;
/**
 * How many spectator sessions watch the room (joined with `spectator`, not listed).
 * @param {Room | null} [room] a room to read instead of the provider's
 * @returns {number}
 */
export function useSpectators(room?: Room | null): number;
/**
 * This user's own entry (name, server-assigned color, state), or null before joining.
 * @returns {PresenceUser | null}
 */
export function useSelf(): PresenceUser | null;
/**
 * The visible cursors of the others.
 * @returns {ReadonlyArray<LiveCursor>}
 */
export function useCursors(): ReadonlyArray<LiveCursor>;
/**
 * `connecting`, `connected`, `reconnecting` or `disconnected`.
 * @returns {ConnectionState}
 */
export function useConnectionState(): ConnectionState;
/**
 * The room's status: `joining`, `joined`, `reconnecting`, `refused` (the server turned
 * the join down; `useErrors()` and `room.refusal` say why) or `left`.
 * @returns {RoomStatus}
 */
export function useRoomStatus(): RoomStatus;
/**
 * The last `presence:error`s the server sent this client (at most 20), oldest first:
 * refused joins, oversized state, rate limits.
 * @returns {ReadonlyArray<PresenceError>}
 */
export function useErrors(): ReadonlyArray<PresenceError>;
/**
 * What `usePresence()` returns.
 * @typedef {object} Presence
 * @property {ReadonlyArray<PresenceUser>} users
 * @property {ReadonlyArray<PresenceUser>} others
 * @property {PresenceUser | null} self
 * @property {ConnectionState} connection
 * @property {RoomStatus} status
 * @property {(patch: Record<string, unknown>) => void} update shallow-merges into this user's state; `null` deletes a key
 * @property {(x: number, y: number) => void} moveCursor fractions of the board (0…1) for `<LiveCursors/>`
 * @property {() => void} hideCursor
 * @property {Room | null} room
 */
/**
 * The roster and the actions, for components that want it all in one place.
 * @returns {Presence}
 */
export function usePresence(): Presence;
/**
 * Sends this user's pointer over `ref`'s element as fractions of its size (what
 * `<LiveCursors/>` draws), and hides the cursor when the pointer leaves.
 * @param {import("react").RefObject<HTMLElement | null>} ref
 * @returns {void}
 */
export function useCursorTracking(ref: import("react").RefObject<HTMLElement | null>): void;
/**
 * What `usePresence()` returns.
 */
export type Presence = {
    users: ReadonlyArray<PresenceUser>;
    others: ReadonlyArray<PresenceUser>;
    self: PresenceUser | null;
    connection: ConnectionState;
    status: RoomStatus;
    /**
     * shallow-merges into this user's state; `null` deletes a key
     */
    update: (patch: Record<string, unknown>) => void;
    /**
     * fractions of the board (0…1) for `<LiveCursors/>`
     */
    moveCursor: (x: number, y: number) => void;
    hideCursor: () => void;
    room: Room | null;
};
export type PresenceUser = import("@presenced/client").PresenceUser;
export type LiveCursor = import("@presenced/client").LiveCursor;
export type ConnectionState = import("@presenced/client").ConnectionState;
export type Room = import("@presenced/client").Room;
export type RoomStatus = import("@presenced/client").RoomStatus;
export type PresenceError = import("@presenced/client").PresenceError;
