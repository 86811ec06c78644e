/**
 * A cursor position, as fractions of the board (0 to 1) by the convention of the demo,
 * `<LiveCursors/>` and `useCursorTracking`.
 */
export type CursorPosition = {
    x: number;
    y: number;
    visible: boolean;
};
/**
 * A user as the server sends it: one entry per room however many sessions it has.
 */
export type User = {
    id: string;
    name: string;
    /**
     * `#RRGGBB`, assigned by the server, readable behind white text
     */
    color: string;
    /**
     * Unix milliseconds
     */
    joinedAt: number;
    /**
     * Unix milliseconds
     */
    lastSeen: number;
    /**
     * the position when this entry was sent; live positions are in `Room#cursors`
     */
    cursor: CursorPosition;
    /**
     * custom state; `state.away` is reserved
     */
    state: Record<string, unknown>;
    /**
     * how many sessions (tabs, devices) the user has in the room
     */
    sessions: number;
};
/**
 * `away` is true while every tab of the user has been hidden for a while;
 * `isSelf` marks the entry of the user this client joined as.
 */
export type PresenceUser = Readonly<User & {
    away: boolean;
    isSelf: boolean;
}>;
/**
 * A live cursor of another user, with what is needed to draw it.
 */
export type LiveCursor = Readonly<{
    userId: string;
    name: string;
    color: string;
    x: number;
    y: number;
}>;
/**
 * `connecting` before the first connection; `connected` while a WebSocket is open;
 * `reconnecting` after a connection was lost, while retrying; `disconnected` after `close()`.
 */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "disconnected";
/**
 * `joining` until the server answers the first join; `joined` once it has;
 * `reconnecting` after a joined room lost its connection, until the server answers the
 * rejoin (the last roster stays on screen meanwhile); `refused` when the server turned
 * the join down for good (`Room#refusal` says why, e.g. `unauthorized`); `left` after
 * `leave()` or `close()`. `refused` and `left` are final: join again for a new room.
 */
export type RoomStatus = "joining" | "joined" | "reconnecting" | "refused" | "left";
/**
 * A `presence:error` from the server.
 */
export type PresenceError = {
    /**
     * e.g. `not_joined`, `unauthorized`, `too_large`
     */
    code: string;
    message: string;
    ref?: string | number | undefined;
};
/**
 * What the SDK needs of a WebSocket: the browser's, or the npm `ws` package's in Node.
 */
export type WebSocketLike = {
    readyState: number;
    send: (data: string) => void;
    close: (code?: number, reason?: string) => void;
    onopen: ((event: any) => void) | null;
    onmessage: ((event: {
        data: unknown;
    }) => void) | null;
    onclose: ((event: {
        code?: number;
    }) => void) | null;
    onerror: ((event: any) => void) | null;
};
export type WebSocketConstructor = new (url: string) => WebSocketLike;
