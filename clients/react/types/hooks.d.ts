/**
 * Everyone in the room, self included, oldest first.
 * @returns {ReadonlyArray<PresenceUser>}
 */
export function useUsers(): ReadonlyArray<PresenceUser>;
/**
 * Everyone in the room but this user.
 * @returns {ReadonlyArray<PresenceUser>}
 */
export function useOthers(): ReadonlyArray<PresenceUser>;
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
 * The roster and the actions, for components that want it all in one place.
 * @returns {{
 *   users: ReadonlyArray<PresenceUser>, others: ReadonlyArray<PresenceUser>, self: PresenceUser | null,
 *   connection: ConnectionState, status: RoomStatus,
 *   update: (patch: Record<string, unknown>) => void,
 *   moveCursor: (x: number, y: number) => void,
 *   hideCursor: () => void,
 *   room: Room | null,
 * }}
 */
export function usePresence(): {
    users: ReadonlyArray<PresenceUser>;
    others: ReadonlyArray<PresenceUser>;
    self: PresenceUser | null;
    connection: ConnectionState;
    status: RoomStatus;
    update: (patch: Record<string, unknown>) => void;
    moveCursor: (x: number, y: number) => void;
    hideCursor: () => void;
    room: Room | null;
};
/**
 * Sends this user's pointer over `ref`'s element as fractions of its size (what
 * `<LiveCursors/>` draws), and hides the cursor when the pointer leaves.
 * @param {import("react").RefObject<HTMLElement | null>} ref
 */
export function useCursorTracking(ref: import("react").RefObject<HTMLElement | null>): void;
export type PresenceUser = import("@presenced/client").PresenceUser;
export type LiveCursor = import("@presenced/client").LiveCursor;
export type ConnectionState = import("@presenced/client").ConnectionState;
export type Room = import("@presenced/client").Room;
export type RoomStatus = import("@presenced/client").RoomStatus;
export type PresenceError = import("@presenced/client").PresenceError;
