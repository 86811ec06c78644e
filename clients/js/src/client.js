// The connection to a presenced server: one WebSocket shared by every room this
// client joins, reconnected on its own with backoff, and the browser glue (online,
// pagehide, visibility) that turns tabs into sessions that survive reloads and show
// "away" instead of leaving.

import { Emitter } from "./emitter.js";
import { backoffDelay } from "./backoff.js";
import { Room } from "./room.js";
import { defaultSessionStorage } from "./session-store.js";
import { defaultUrl } from "./endpoint.js";

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
export function createClient(options) {
  return new PresenceClient(options);
}

/**
 * One WebSocket to a presenced server, shared by all rooms joined through it.
 * Read `connection` at any time, or subscribe with `client.on("connection", fn)`.
 * @extends {Emitter<ClientEvents>}
 */
export class PresenceClient extends Emitter {
  /** @type {Required<Pick<ClientOptions, "baseDelayMs" | "maxDelayMs" | "heartbeatIntervalMs" | "cursorIntervalMs" | "awayAfterMs" | "random">>} */
  #options;
  /** @type {WebSocketConstructor} */ #WebSocket;
  /** @type {string} */ #url;
  /** @type {string | TokenSource | undefined} */ #tokenOption;
  /** @type {string | undefined} the token of the current connection */ #token;
  /** counts `#open` calls, so that a token that arrives after close() or a newer open is dropped */
  #openGeneration = 0;
  #fetchingToken = false;
  /** @type {{ id?: string, name?: string }} */ #user;
  /** @type {string | undefined} the id the server gave an anonymous user */ #learnedUserId;
  /** @type {import("./session-store.js").SessionStorageLike | null} */ #storage;

  /** @type {ConnectionState} */ #connection = "disconnected";
  /** @type {WebSocketLike | null} */ #socket = null;
  #hasConnected = false;
  /** closed by the server for joining no room: the next join() reconnects */
  #waitingForJoin = false;
  #attempt = 0;
  /** @type {ReturnType<typeof setTimeout> | null} */ #retryTimer = null;
  /** @type {ReturnType<typeof setInterval> | null} */ #heartbeatTimer = null;
  /** @type {ReturnType<typeof setTimeout> | null} */ #awayTimer = null;
  #away = false;

  /** @type {Map<string, Room>} */ #rooms = new Map();
  /** @type {ReadonlyArray<PresenceError>} */ #errors = Object.freeze([]);
  /** @type {import("./room.js").RoomHost} */ #host;

  /** @type {EventTarget | null} */ #window;
  /** @type {(EventTarget & { visibilityState: string }) | null} */ #document;

  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    super();
    const WebSocketImpl = options.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    if (typeof WebSocketImpl !== "function") {
      throw new TypeError("presenced: no WebSocket here; pass one, e.g. createClient({ WebSocket: require('ws') })");
    }
    this.#WebSocket = WebSocketImpl;
    // `import.meta` is empty in a bundle made for CommonJS: then the url is undefined.
    const moduleUrl = /** @type {string | undefined} */ (import.meta.url);
    this.#url = options.url ?? defaultUrl(moduleUrl, /** @type {any} */ (globalThis).location);
    this.#tokenOption = options.token;
    this.#user = { ...options.user };
    this.#storage = options.storage === undefined ? defaultSessionStorage() : options.storage;
    this.#options = {
      baseDelayMs: options.baseDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 10_000,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
      cursorIntervalMs: options.cursorIntervalMs ?? 50,
      awayAfterMs: options.awayAfterMs ?? 60_000,
      random: options.random ?? Math.random,
    };
    this.#window = options.window === undefined ? /** @type {any} */ (globalThis).window ?? null : options.window;
    this.#document =
      options.document === undefined ? /** @type {any} */ (globalThis).document ?? null : options.document;

    this.#host = {
      send: (message) => this.#send(message),
      isOpen: () => this.#socket?.readyState === OPEN,
      userForJoin: () => ({ id: this.#user.id ?? this.#learnedUserId, name: this.#user.name }),
      token: () => this.#token,
      learnUserId: (id) => {
        if (this.#user.id === undefined) this.#learnedUserId = id;
      },
      joinSucceeded: () => {
        this.#attempt = 0;
      },
      forget: (room) => {
        if (this.#rooms.get(room.name) === room) this.#rooms.delete(room.name);
      },
      cursorIntervalMs: this.#options.cursorIntervalMs,
      storage: this.#storage,
    };

    this.#listen();
    if (options.autoConnect ?? true) this.connect();
  }

  /**
   * The connection state right now.
   * @returns {ConnectionState}
   */
  get connection() {
    return this.#connection;
  }

  /** Whether this tab counts as away (hidden for `awayAfterMs`). */
  get away() {
    return this.#away;
  }

  /**
   * The last `presence:error`s the server sent (at most 20), oldest first. Keeps its
   * identity until the next error, like the rooms' snapshots.
   * @returns {ReadonlyArray<PresenceError>}
   */
  get errors() {
    return this.#errors;
  }

  /** The rooms joined and not left, by name. */
  get rooms() {
    return new Map(this.#rooms);
  }

  /**
   * Joins a room (or returns the room already joined under that name). The join is sent
   * when connected, and again after every reconnect, naming this tab's session so that
   * the server restores it; it carries the options' `view` and `spectator` every time.
   * Throws a `TypeError` for a `view` the server would refuse, and for a spectator with `state`.
   * @param {string} [name] the room; `"default"` when omitted
   * @param {JoinOptions} [options]
   * @returns {Room}
   */
  join(name = "default", options = {}) {
    const existing = this.#rooms.get(name);
    if (existing) return existing;
    const room = new Room(this.#host, name, options, this.#away);
    this.#rooms.set(name, room);
    if (this.#socket?.readyState === OPEN) room._sendJoin();
    else if (this.#waitingForJoin) this.connect();
    return room;
  }

  /**
   * Changes this user's display name in every room (the server broadcasts it).
   * @param {string} name
   */
  setName(name) {
    this.#user.name = name;
    for (const room of this.#rooms.values()) room._sendRename();
  }

  /** Opens the connection, if it is not open or opening. Called by the constructor unless `autoConnect` is false. */
  connect() {
    if (this.#socket || this.#retryTimer !== null || this.#fetchingToken) return;
    this.#waitingForJoin = false;
    this.#listen();
    this.#setConnection(this.#hasConnected ? "reconnecting" : "connecting");
    this.#open();
  }

  /**
   * Leaves every room at once (others see this user leave) and closes the connection.
   * Nothing reconnects until `connect()` and `join()` are called again.
   */
  close() {
    const socket = this.#socket;
    this.#socket = null;
    this.#openGeneration += 1;
    this.#fetchingToken = false;
    if (socket?.readyState === OPEN && this.#rooms.size > 0) {
      socket.send(JSON.stringify({ type: "presence:leave" }));
    }
    for (const room of [...this.#rooms.values()]) room._left();
    this.#rooms.clear();
    this.#stopTimers();
    this.#unlisten();
    this.#hasConnected = false;
    this.#attempt = 0;
    if (socket) {
      detach(socket);
      socket.close(1000, "client closed");
    }
    this.#setConnection("disconnected");
  }

  // ---- Connection -----------------------------------------------------------------------

  // A token function runs before every connect. A string (or no function) opens at once;
  // a promise opens when it settles, unless close() or another open came first.
  #open() {
    const source = this.#tokenOption;
    if (typeof source !== "function") {
      this.#token = source;
      this.#openSocket();
      return;
    }
    const generation = ++this.#openGeneration;
    /** @param {unknown} error */
    const failed = (error) => {
      if (generation !== this.#openGeneration) return;
      this.#fetchingToken = false;
      reportError(error);
      this.#scheduleReconnect();
    };
    /** @param {string | null | undefined} token */
    const opened = (token) => {
      if (generation !== this.#openGeneration) return;
      this.#fetchingToken = false;
      if (token !== null && token !== undefined && typeof token !== "string") {
        failed(new TypeError(`presenced: the token function gave ${typeof token}, not a string`));
        return;
      }
      this.#token = token ?? undefined;
      try {
        this.#openSocket();
      } catch (error) {
        failed(error);
      }
    };
    /** @type {ReturnType<TokenSource>} */
    let result;
    try {
      result = source();
    } catch (error) {
      failed(error);
      return;
    }
    if (result !== null && typeof result === "object" && typeof result.then === "function") {
      this.#fetchingToken = true;
      Promise.resolve(result).then(opened, failed);
    } else {
      opened(/** @type {string | null | undefined} */ (result));
    }
  }

  #openSocket() {
    /** @type {WebSocketLike} */
    let socket;
    try {
      socket = new this.#WebSocket(this.#url);
    } catch (error) {
      if (!this.#hasConnected && this.#attempt === 0) throw error; // e.g. a malformed url
      this.#scheduleReconnect();
      return;
    }
    this.#socket = socket;
    socket.onopen = () => {
      this.#hasConnected = true;
      if (this.#rooms.size === 0) this.#attempt = 0;
      this.#setConnection("connected");
      this.#startHeartbeat();
      for (const room of this.#rooms.values()) room._sendJoin();
    };
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onclose = (event) => {
      detach(socket);
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#stopHeartbeat();
      if (event?.code === NO_JOIN_CLOSE && this.#rooms.size === 0) {
        // The server closes a connection that joins no room within its heartbeat timeout.
        // Reconnecting to join nothing would only be closed again: wait for a join.
        this.#waitingForJoin = true;
        this.#attempt = 0;
        this.#setConnection("disconnected");
        return;
      }
      for (const room of this.#rooms.values()) room._connectionLost();
      this.#scheduleReconnect();
    };
    // An error is always followed by a close, which does the work.
    socket.onerror = () => {};
  }

  #scheduleReconnect() {
    this.#setConnection("reconnecting");
    const delay = backoffDelay(this.#attempt, this.#options, this.#options.random);
    this.#attempt += 1;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#open();
    }, delay);
  }

  // Skips the rest of the backoff wait: the network is back or the user is looking.
  #retryNow() {
    if (this.#retryTimer === null) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#open();
  }

  /**
   * @param {Record<string, unknown>} message
   * @returns {boolean} whether it was sent
   */
  #send(message) {
    const socket = this.#socket;
    if (!socket || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  /** @param {unknown} data */
  #receive(data) {
    /** @type {any} */
    let message;
    try {
      message = JSON.parse(typeof data === "string" ? data : String(data));
    } catch {
      return; // the server sends JSON text only; ignore anything else
    }
    if (!message || typeof message.type !== "string") return;
    if (message.type === "presence:error") {
      this.#handleError(message);
      return;
    }
    const room = this.#rooms.get(message.room ?? "default");
    room?._handle(message);
  }

  /** @param {PresenceError} error */
  #handleError(error) {
    this.#errors = Object.freeze([...this.#errors.slice(-(MAX_ERRORS_KEPT - 1)), error]);
    // Our refs are "<kind>:<room>", so the error reaches the room that caused it.
    const ref = typeof error.ref === "string" ? error.ref : "";
    const colon = ref.indexOf(":");
    const room = colon > 0 ? this.#rooms.get(ref.slice(colon + 1)) : undefined;
    if (room) room._handleError(error, ref.slice(0, colon));
    this.emit("error", error);
  }

  /** @param {ConnectionState} state */
  #setConnection(state) {
    if (this.#connection === state) return;
    this.#connection = state;
    this.emit("connection", state);
  }

  // Browsers answer the server's WebSocket pings by themselves, even in a background tab
  // whose timers are throttled, and those pongs keep the sessions alive. This heartbeat
  // is a second sign of life for servers or proxies that do not ping.
  #startHeartbeat() {
    this.#stopHeartbeat();
    if (this.#options.heartbeatIntervalMs > 0) {
      this.#heartbeatTimer = setInterval(
        () => this.#send({ type: "presence:heartbeat" }),
        this.#options.heartbeatIntervalMs,
      );
    }
  }

  #stopHeartbeat() {
    if (this.#heartbeatTimer !== null) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
  }

  #stopTimers() {
    this.#stopHeartbeat();
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    if (this.#awayTimer !== null) clearTimeout(this.#awayTimer);
    this.#awayTimer = null;
  }

  // ---- Browser glue -----------------------------------------------------------------------

  #listening = false;

  #listen() {
    if (this.#listening) return;
    this.#listening = true;
    this.#window?.addEventListener("online", this.#onOnline);
    this.#window?.addEventListener("pagehide", this.#onPageHide);
    this.#window?.addEventListener("pageshow", this.#onPageShow);
    this.#document?.addEventListener("visibilitychange", this.#onVisibilityChange);
    this.#onVisibilityChange();
  }

  #unlisten() {
    if (!this.#listening) return;
    this.#listening = false;
    this.#window?.removeEventListener("online", this.#onOnline);
    this.#window?.removeEventListener("pagehide", this.#onPageHide);
    this.#window?.removeEventListener("pageshow", this.#onPageShow);
    this.#document?.removeEventListener("visibilitychange", this.#onVisibilityChange);
  }

  #onOnline = () => this.#retryNow();

  // A reload fires pagehide too, and a reload must never look like a leave to the
  // others. So pagehide stores the session ids, for the next load in this tab to restore,
  // and sends a leave with reason "unload": the server holds those sessions for its
  // unload grace (2 s by default), so a reload restores them unseen and a closed tab
  // leaves within seconds. A page kept in the back/forward cache (persisted) may come
  // back, so it sends nothing. Only leave() and close() leave at once.
  /** @param {Event & { persisted?: boolean }} [event] */
  #onPageHide = (event) => {
    for (const room of this.#rooms.values()) room._persistSession();
    if (!event?.persisted && this.#rooms.size > 0) {
      this.#send({ type: "presence:leave", reason: "unload" });
    }
  };

  /** @param {Event} event */
  #onPageShow = (event) => {
    if (!(/** @type {any} */ (event).persisted)) return;
    for (const room of this.#rooms.values()) room._reclaimSession();
    this.#retryNow();
  };

  #onVisibilityChange = () => {
    const doc = this.#document;
    if (!doc) return;
    if (doc.visibilityState === "hidden") {
      // Nobody points from a hidden tab: its cursor must not stay frozen on the board.
      for (const room of this.#rooms.values()) room._hideCursorIfShown();
      const awayAfterMs = this.#options.awayAfterMs;
      if (this.#awayTimer === null && !this.#away && Number.isFinite(awayAfterMs)) {
        this.#awayTimer = setTimeout(() => {
          this.#awayTimer = null;
          this.#setAway(true);
        }, awayAfterMs);
      }
    } else {
      if (this.#awayTimer !== null) clearTimeout(this.#awayTimer);
      this.#awayTimer = null;
      if (this.#away) this.#setAway(false);
      this.#retryNow();
    }
  };

  /** @param {boolean} away */
  #setAway(away) {
    this.#away = away;
    // Each session says only whether *this* tab is away; the server shows the user as
    // away while all of its sessions say so, and active as soon as one does not. A
    // spectator's session has no state, and is not shown, so it says nothing.
    for (const room of this.#rooms.values()) {
      if (!room.isSpectator) room.update({ away: away ? true : null });
    }
  }
}

const OPEN = 1;
/** How many errors `PresenceClient#errors` keeps: enough to show, bounded for a long session. */
const MAX_ERRORS_KEPT = 20;
/** The close code of a connection that joined no room within the server's heartbeat timeout. */
const NO_JOIN_CLOSE = 1008;

/** @param {unknown} error */
function reportError(error) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else console.error(error);
}

/** @param {WebSocketLike} socket */
function detach(socket) {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  // Keep a no-op error listener: the `ws` package emits "error" when a socket is closed
  // while still connecting, and an EventEmitter error without a listener kills Node.
  socket.onerror = () => {};
}
