// Shared JSDoc types: the wire shapes of docs/protocol.md and the SDK's snapshots.
// This module exports nothing at run time.

/**
 * A cursor position, as fractions of the board (0 to 1) by the convention of the demo,
 * `<LiveCursors/>` and `useCursorTracking`.
 * @typedef {object} CursorPosition
 * @property {number} x
 * @property {number} y
 * @property {boolean} visible
 */

/**
 * A user as the server sends it: one entry per room however many sessions it has.
 * @typedef {object} User
 * @property {string} id
 * @property {string} name
 * @property {string} color `#RRGGBB`, assigned by the server, readable behind white text
 * @property {number} joinedAt Unix milliseconds
 * @property {number} lastSeen Unix milliseconds
 * @property {CursorPosition} cursor the position when this entry was sent; live positions are in `Room#cursors`
 * @property {Record<string, unknown>} state custom state; `state.away` is reserved
 * @property {number} sessions how many sessions (tabs, devices) the user has in the room
 */

/**
 * A user of a room's snapshot: the wire user plus two conveniences.
 * @typedef {Readonly<User & { away: boolean, isSelf: boolean }>} PresenceUser
 * `away` is true while every tab of the user has been hidden for a while;
 * `isSelf` marks the entry of the user this client joined as.
 */

/**
 * A live cursor of another user, with what is needed to draw it.
 * @typedef {Readonly<{ userId: string, name: string, color: string, x: number, y: number }>} LiveCursor
 */

/**
 * `connecting` before the first connection; `connected` while a WebSocket is open;
 * `reconnecting` after a connection was lost, while retrying; `disconnected` after `close()`.
 * @typedef {"connecting" | "connected" | "reconnecting" | "disconnected"} ConnectionState
 */

/**
 * `joining` until the server answers the first join; `joined` once it has;
 * `reconnecting` after a joined room lost its connection, until the server answers the
 * rejoin (the last roster stays on screen meanwhile); `refused` when the server turned
 * the join down for good (`Room#refusal` says why, e.g. `unauthorized`); `left` after
 * `leave()` or `close()`. `refused` and `left` are final: join again for a new room.
 * @typedef {"joining" | "joined" | "reconnecting" | "refused" | "left"} RoomStatus
 */

/**
 * A `presence:error` from the server.
 * @typedef {object} PresenceError
 * @property {string} code e.g. `not_joined`, `unauthorized`, `too_large`
 * @property {string} message
 * @property {string | number} [ref]
 */

/**
 * What the SDK needs of a WebSocket: the browser's, or the npm `ws` package's in Node.
 * @typedef {object} WebSocketLike
 * @property {number} readyState
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((event: any) => void) | null} onopen
 * @property {((event: { data: unknown }) => void) | null} onmessage
 * @property {((event: { code?: number }) => void) | null} onclose
 * @property {((event: any) => void) | null} onerror
 */

/** @typedef {new (url: string) => WebSocketLike} WebSocketConstructor */

export {};
