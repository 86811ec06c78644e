/** @typedef {import("./types.js").ConnectionState} ConnectionState */
/** @typedef {import("./types.js").PresenceError} PresenceError */
/** @typedef {import("./types.js").WebSocketLike} WebSocketLike */
/** @typedef {import("./types.js").WebSocketConstructor} WebSocketConstructor */
/** @typedef {import("./room.js").JoinOptions} JoinOptions */
/**
 * Options of `createClient`. Every duration is in milliseconds.
 * @typedef {object} ClientOptions
 * @property {string} [url] the WebSocket endpoint. By default `/ws` of the server that served
 *   the SDK when it was imported from presenced's `/sdk/` (even by a page of another
 *   origin), otherwise `ws(s)://<the page's host>/ws`
 * @property {{ id?: string, name?: string }} [user] who joins; without an id the server makes an `anon-…` one
 * @property {string | TokenSource} [token] a JWT, when the server requires one; or a function
 *   that returns one (or a promise of one), called before every connect, so that a token
 *   that expired while connected is replaced on reconnect
 * @property {WebSocketConstructor} [WebSocket] e.g. the npm `ws` package in Node 20; the global one by default
 * @property {boolean} [autoConnect] connect at once (true by default); otherwise call `connect()`
 * @property {number} [baseDelayMs] first reconnect window (500)
 * @property {number} [maxDelayMs] cap of the reconnect window (10000; keep it below the server's reconnect grace)
 * @property {number} [heartbeatIntervalMs] how often to send `presence:heartbeat` (30000; 0 turns it off)
 * @property {number} [cursorIntervalMs] at most one cursor send per this span (50, the server's default)
 * @property {number} [awayAfterMs] how long a tab stays hidden before it counts as away (60000; Infinity turns it off)
 * @property {import("./session-store.js").SessionStorageLike | null} [storage] where session ids survive reloads; `sessionStorage` by default
 * @property {() => number} [random] for the backoff jitter; `Math.random` by default
 * @property {EventTarget | null} [window] receives `online`, `pagehide`, `pageshow`; the global `window` by default
 * @property {(EventTarget & { visibilityState: string }) | null} [document] receives `visibilitychange`; the global `document` by default
 */
/**
 * Gives the token for the next connection, e.g. from the app's auth endpoint:
 * `() => fetch("/presence-token").then((r) => r.text())`. `null` or `undefined` joins
 * without one. A throw or a rejection counts as a failed connection attempt: it is
 * reported (`reportError`) and retried with the reconnect backoff.
 * @typedef {() => string | null | undefined | PromiseLike<string | null | undefined>} TokenSource
 */
/**
 * Events of a client.
 * @typedef {object} ClientEvents
 * @property {[ConnectionState]} connection the connection state changed
 * @property {[PresenceError]} error the server sent `presence:error` (every one; a room's own also reach the room)
 */
/**
 * Connects to a presenced server. Equivalent to `new PresenceClient(options)`.
 * @param {ClientOptions} [options]
 * @returns {PresenceClient}
 */
export function createClient(options?: ClientOptions): PresenceClient;
/**
 * One WebSocket to a presenced server, shared by all rooms joined through it.
 * Read `connection` at any time, or subscribe with `client.on("connection", fn)`.
 * @extends {Emitter<ClientEvents>}
 */
export class PresenceClient extends Emitter<ClientEvents> {
    /** @param {ClientOptions} [options] */
    constructor(options?: ClientOptions);
    /**
     * The connection state right now.
     * @returns {ConnectionState}
     */
    get connection(): ConnectionState;
    /** Whether this tab counts as away (hidden for `awayAfterMs`). */
    get away(): boolean;
    /**
     * The last `presence:error`s the server sent (at most 20), oldest first. Keeps its
     * identity until the next error, like the rooms' snapshots.
     * @returns {ReadonlyArray<PresenceError>}
     */
    get errors(): ReadonlyArray<PresenceError>;
    /** The rooms joined and not left, by name. */
    get rooms(): Map<string, Room>;
    /**
     * Joins a room (or returns the room already joined under that name). The join is sent
     * when connected, and again after every reconnect, naming this tab's session so that
     * the server restores it; it carries the options' `view` and `spectator` every time.
     * Throws a `TypeError` for a `view` the server would refuse, and for a spectator with `state`.
     * @param {string} [name] the room; `"default"` when omitted
     * @param {JoinOptions} [options]
     * @returns {Room}
     */
    join(name?: string, options?: JoinOptions): Room;
    /**
     * Changes this user's display name in every room (the server broadcasts it).
     * @param {string} name
     */
    setName(name: string): void;
    /** Opens the connection, if it is not open or opening. Called by the constructor unless `autoConnect` is false. */
    connect(): void;
    /**
     * Leaves every room at once (others see this user leave) and closes the connection.
     * Nothing reconnects until `connect()` and `join()` are called again.
     */
    close(): void;
    #private;
}
export type ConnectionState = import("./types.js").ConnectionState;
export type PresenceError = import("./types.js").PresenceError;
export type WebSocketLike = import("./types.js").WebSocketLike;
export type WebSocketConstructor = import("./types.js").WebSocketConstructor;
export type JoinOptions = import("./room.js").JoinOptions;
/**
 * Options of `createClient`. Every duration is in milliseconds.
 */
export type ClientOptions = {
    /**
     * the WebSocket endpoint. By default `/ws` of the server that served
     * the SDK when it was imported from presenced's `/sdk/` (even by a page of another
     * origin), otherwise `ws(s)://<the page's host>/ws`
     */
    url?: string | undefined;
    /**
     * who joins; without an id the server makes an `anon-…` one
     */
    user?: {
        id?: string;
        name?: string;
    } | undefined;
    /**
     * a JWT, when the server requires one; or a function
     * that returns one (or a promise of one), called before every connect, so that a token
     * that expired while connected is replaced on reconnect
     */
    token?: string | TokenSource | undefined;
    /**
     * e.g. the npm `ws` package in Node 20; the global one by default
     */
    WebSocket?: import("./types.js").WebSocketConstructor | undefined;
    /**
     * connect at once (true by default); otherwise call `connect()`
     */
    autoConnect?: boolean | undefined;
    /**
     * first reconnect window (500)
     */
    baseDelayMs?: number | undefined;
    /**
     * cap of the reconnect window (10000; keep it below the server's reconnect grace)
     */
    maxDelayMs?: number | undefined;
    /**
     * how often to send `presence:heartbeat` (30000; 0 turns it off)
     */
    heartbeatIntervalMs?: number | undefined;
    /**
     * at most one cursor send per this span (50, the server's default)
     */
    cursorIntervalMs?: number | undefined;
    /**
     * how long a tab stays hidden before it counts as away (60000; Infinity turns it off)
     */
    awayAfterMs?: number | undefined;
    /**
     * where session ids survive reloads; `sessionStorage` by default
     */
    storage?: Pick<Storage, "getItem" | "setItem" | "removeItem"> | null | undefined;
    /**
     * for the backoff jitter; `Math.random` by default
     */
    random?: (() => number) | undefined;
    /**
     * receives `online`, `pagehide`, `pageshow`; the global `window` by default
     */
    window?: EventTarget | null | undefined;
    /**
     * receives `visibilitychange`; the global `document` by default
     */
    document?: (EventTarget & {
        visibilityState: string;
    }) | null | undefined;
};
/**
 * Gives the token for the next connection, e.g. from the app's auth endpoint:
 * `() => fetch("/presence-token").then((r) => r.text())`. `null` or `undefined` joins
 * without one. A throw or a rejection counts as a failed connection attempt: it is
 * reported (`reportError`) and retried with the reconnect backoff.
 */
export type TokenSource = () => string | null | undefined | PromiseLike<string | null | undefined>;
/**
 * Events of a client.
 */
export type ClientEvents = {
    /**
     * the connection state changed
     */
    connection: [ConnectionState];
    /**
     * the server sent `presence:error` (every one; a room's own also reach the room)
     */
    error: [PresenceError];
};
import { Emitter } from "./emitter.js";
import { Room } from "./room.js";
