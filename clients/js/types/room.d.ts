/**
 * A room joined through a `PresenceClient`. Read the snapshots (`users`, `others`,
 * `self`, `cursors`, `status`) at any time; each keeps its identity until it changes, so
 * they suit React's `useSyncExternalStore`. Subscribe with `room.on("users", fn)`.
 * @extends {Emitter<RoomEvents>}
 */
export class Room extends Emitter<RoomEvents> {
    /**
     * Use `PresenceClient#join` instead.
     * @internal
     * @param {RoomHost} host
     * @param {string} name
     * @param {JoinOptions} options
     * @param {boolean} away whether the tab is already away
     */
    constructor(host: RoomHost, name: string, options: JoinOptions, away: boolean);
    /** The room's name. */
    get name(): string;
    /**
     * `joining`, `joined`, `reconnecting`, `refused` or `left`; see `RoomStatus`.
     * @returns {RoomStatus}
     */
    get status(): RoomStatus;
    /**
     * The `presence:error` that refused the join (`code` and `message`), once `status` is
     * `refused`; null otherwise.
     * @returns {PresenceError | null}
     */
    get refusal(): PresenceError | null;
    /**
     * The view this room was joined with: `"full"` or `{ list: K }`.
     * @returns {RoomView}
     */
    get view(): RoomView;
    /** Whether this session joined as a spectator: it sees the room but is not listed. */
    get isSpectator(): boolean;
    /**
     * How many users are in the room, this one included unless it is a spectator. For a
     * full view it is the length of `users`; for a list view it is the server's count of
     * the whole room, of which `users` holds only the first few. Follow it with
     * `room.on("count", fn)`.
     * @returns {number}
     */
    get count(): number;
    /** How many spectator sessions watch the room, as the server last said (0 before it has). */
    get spectators(): number;
    /** The server's id for this tab's session in the room (null until the first join is answered). */
    get sessionId(): string | null;
    /**
     * Everyone in the room, self included, oldest first. Stays on screen while reconnecting.
     * @returns {ReadonlyArray<PresenceUser>}
     */
    get users(): ReadonlyArray<PresenceUser>;
    /**
     * Everyone but the user this client joined as.
     * @returns {ReadonlyArray<PresenceUser>}
     */
    get others(): ReadonlyArray<PresenceUser>;
    /**
     * This client's own entry in the roster, or null before the join is answered. Null for
     * a spectator too, unless the same user is listed through another session.
     * @returns {PresenceUser | null}
     */
    get self(): PresenceUser | null;
    /**
     * The visible cursors of the other users, with their names and colors.
     * @returns {ReadonlyArray<LiveCursor>}
     */
    get cursors(): ReadonlyArray<LiveCursor>;
    /**
     * Shallow-merges `patch` into this user's state, as seen by everyone in the room; a
     * `null` value deletes a key. Sent at once when connected, otherwise when the room is
     * joined again. `state.away` is reserved: the client sets it from tab visibility.
     * Throws for a room that is left or refused, and for a spectator (which has no state).
     * @param {Record<string, unknown>} patch
     */
    update(patch: Record<string, unknown>): void;
    /**
     * Moves this user's cursor. Calls are coalesced: at most one `presence:cursor` goes out
     * per cursor interval (50 ms by default), carrying the latest position. The numbers are
     * sent as they are; by convention (the demo, `<LiveCursors/>`, `useCursorTracking`)
     * they are fractions of the shared board, 0 to 1, so windows of any size agree. A
     * spectator's moves are dropped, as a left room's are: it has no cursor to show.
     * @param {number} x from the board's left edge: 0 at the left, 1 at the right
     * @param {number} y from the board's top edge: 0 at the top, 1 at the bottom
     */
    moveCursor(x: number, y: number): void;
    /** Hides this user's cursor from the others (e.g. when the pointer leaves the board). */
    hideCursor(): void;
    /**
     * Leaves the room at once: the others see this user leave (if it was its last tab).
     * The room stops reconnecting; join again with `client.join`.
     */
    leave(): void;
    /**
     * Sends the join (on connect and reconnect), then whatever waited for it.
     * @internal
     */
    _sendJoin(): void;
    /**
     * Sends a join that only changes the user's name (the server answers with a fresh roster).
     * @internal
     */
    _sendRename(): void;
    /**
     * The socket closed: keep the roster on screen and wait for the next `_sendJoin`.
     * @internal
     */
    _connectionLost(): void;
    /**
     * The tab was hidden: hide this user's cursor if the others can see it.
     * @internal
     */
    _hideCursorIfShown(): void;
    /**
     * The page is going away (maybe a reload): let the next load in this tab restore.
     * @internal
     */
    _persistSession(): void;
    /**
     * The page came back from the back/forward cache: claim the stored id again.
     * @internal
     */
    _reclaimSession(): void;
    /**
     * Stops everything and marks the room left, without sending anything.
     * @internal
     */
    _left(): void;
    /**
     * A `presence:error` caused by a message of this room (matched by `ref`).
     * @internal
     * @param {PresenceError} error
     * @param {string} kind what the message was: `join` or `update`
     */
    _handleError(error: PresenceError, kind: string): void;
    /**
     * A server message addressed to this room.
     * @internal
     * @param {any} message
     */
    _handle(message: any): void;
    #private;
}
export type User = import("./types.js").User;
export type PresenceUser = import("./types.js").PresenceUser;
export type LiveCursor = import("./types.js").LiveCursor;
export type CursorPosition = import("./types.js").CursorPosition;
export type RoomStatus = import("./types.js").RoomStatus;
export type PresenceError = import("./types.js").PresenceError;
/**
 * Events of a room. `users` and `cursors` carry the new snapshot.
 */
export type RoomEvents = {
    /**
     * the roster changed (self included)
     */
    users: [ReadonlyArray<PresenceUser>];
    /**
     * a cursor of another user moved, appeared or went away
     */
    cursors: [ReadonlyArray<LiveCursor>];
    /**
     * someone arrived (not sent for the roster found when joining)
     */
    userJoined: [PresenceUser];
    /**
     * someone is gone (their last session left or timed out)
     */
    userLeft: [PresenceUser];
    /**
     * someone's name or state changed
     */
    userUpdated: [PresenceUser];
    /**
     * the server answered a join; `restored` if it kept our session
     */
    joined: [{
        restored: boolean;
    }];
    /**
     * the room's status changed (`Room#status`; `Room#refusal` when refused)
     */
    status: [RoomStatus];
    /**
     * `Room#count` or `Room#spectators` changed
     */
    count: [RoomCount];
    /**
     * the server refused something this room sent
     */
    error: [PresenceError];
};
/**
 * How much of the roster a room receives: `"full"`, everyone (the default); or
 * `{ list: K }`, this user plus the first `K` others by arrival (0 to 1000), for rooms too
 * big to list. `Room#count` says how many are in the room either way.
 */
export type RoomView = "full" | Readonly<{
    list: number;
}>;
/**
 * How many are in a room, as the `count` event carries it.
 */
export type RoomCount = Readonly<{
    count: number;
    spectators: number;
}>;
/**
 * Options of `PresenceClient#join`.
 */
export type JoinOptions = {
    /**
     * initial custom state (shallow, JSON); not for a spectator
     */
    state?: Record<string, unknown> | undefined;
    /**
     * receive `presence:diff` batches; true by default
     */
    batch?: boolean | undefined;
    /**
     * `"full"` (the default) or `{ list: K }` for a large room
     */
    view?: RoomView | undefined;
    /**
     * watch without being listed: no entry in anyone's
     * roster, no state, no cursor (`update` throws; cursor moves are dropped)
     */
    spectator?: boolean | undefined;
};
/**
 * What a room needs of its client. Internal: the client implements it.
 */
export type RoomHost = {
    /**
     * sends if the socket is open
     */
    send: (message: Record<string, unknown>) => boolean;
    isOpen: () => boolean;
    userForJoin: () => {
        id?: string;
        name?: string;
    };
    token: () => string | undefined;
    learnUserId: (userId: string) => void;
    joinSucceeded: () => void;
    forget: (room: Room) => void;
    cursorIntervalMs: number;
    storage: import("./session-store.js").SessionStorageLike | null;
};
import { Emitter } from "./emitter.js";
