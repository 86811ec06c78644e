// One room as this client sees it: the roster (self and others), the live cursors of
// the others, and this session's own state. A `Room` survives reconnects: its roster
// stays on screen while the client reconnects, and is replaced by the server's
// `presence:currentUsers` once the join (or restore) is answered.

import { Emitter } from "./emitter.js";
import { claimSession, storeSession } from "./session-store.js";

/** @typedef {import("./types.js").User} User */
/** @typedef {import("./types.js").PresenceUser} PresenceUser */
/** @typedef {import("./types.js").LiveCursor} LiveCursor */
/** @typedef {import("./types.js").CursorPosition} CursorPosition */
/** @typedef {import("./types.js").RoomStatus} RoomStatus */
/** @typedef {import("./types.js").PresenceError} PresenceError */

/**
 * Events of a room. `users` and `cursors` carry the new snapshot.
 * @typedef {object} RoomEvents
 * @property {[ReadonlyArray<PresenceUser>]} users the roster changed (self included)
 * @property {[ReadonlyArray<LiveCursor>]} cursors a cursor of another user moved, appeared or went away
 * @property {[PresenceUser]} userJoined someone arrived (not sent for the roster found when joining)
 * @property {[PresenceUser]} userLeft someone is gone (their last session left or timed out)
 * @property {[PresenceUser]} userUpdated someone's name or state changed
 * @property {[{ restored: boolean }]} joined the server answered a join; `restored` if it kept our session
 * @property {[RoomStatus]} status the room's status changed (`Room#status`; `Room#refusal` when refused)
 * @property {[RoomCount]} count `Room#count` or `Room#spectators` changed
 * @property {[PresenceError]} error the server refused something this room sent
 */

/**
 * How much of the roster a room receives: `"full"`, everyone (the default); or
 * `{ list: K }`, this user plus the first `K` others by arrival (0 to 1000), for rooms too
 * big to list. `Room#count` says how many are in the room either way.
 * @typedef {"full" | Readonly<{ list: number }>} RoomView
 */

/**
 * How many are in a room, as the `count` event carries it.
 * @typedef {Readonly<{ count: number, spectators: number }>} RoomCount
 */

/**
 * Options of `PresenceClient#join`.
 * @typedef {object} JoinOptions
 * @property {Record<string, unknown>} [state] initial custom state (shallow, JSON); not for a spectator
 * @property {boolean} [batch] receive `presence:diff` batches; true by default
 * @property {RoomView} [view] `"full"` (the default) or `{ list: K }` for a large room
 * @property {boolean} [spectator] watch without being listed: no entry in anyone's
 *   roster, no state, no cursor (`update` throws; cursor moves are dropped)
 */

/**
 * What a room needs of its client. Internal: the client implements it.
 * @internal
 * @typedef {object} RoomHost
 * @property {(message: Record<string, unknown>) => boolean} send sends if the socket is open
 * @property {() => boolean} isOpen
 * @property {() => { id?: string, name?: string }} userForJoin
 * @property {() => string | undefined} token
 * @property {(userId: string) => void} learnUserId
 * @property {() => void} joinSucceeded
 * @property {(room: Room) => void} forget
 * @property {number} cursorIntervalMs
 * @property {import("./session-store.js").SessionStorageLike | null} storage
 */

// Join errors after which retrying the same join cannot succeed.
const FATAL_JOIN_ERRORS = new Set([
  "unauthorized",
  "forbidden",
  "room_full",
  "too_many_rooms",
  "too_large",
  "invalid_message",
]);

/** @type {ReadonlyArray<never>} */
const EMPTY = Object.freeze([]);

/**
 * A room joined through a `PresenceClient`. Read the snapshots (`users`, `others`,
 * `self`, `cursors`, `status`) at any time; each keeps its identity until it changes, so
 * they suit React's `useSyncExternalStore`. Subscribe with `room.on("users", fn)`.
 * @extends {Emitter<RoomEvents>}
 */
export class Room extends Emitter {
  /** @type {RoomHost} */ #host;
  /** @type {string} */ #name;
  /** @type {boolean} */ #batch;
  /** @type {RoomView} */ #view;
  /** @type {boolean} */ #isSpectator;
  /** @type {RoomStatus} */ #status = "joining";
  /** @type {PresenceError | null} why the join was refused */ #refusal = null;

  /** @type {Map<string, PresenceUser>} roster by user id */
  #roster = new Map();
  /** @type {Map<string, CursorPosition>} latest cursor of each other user */
  #cursorPositions = new Map();
  /** @type {string | null} */ #selfId = null;
  /** @type {string | null} */ #sessionId = null;
  /** @type {string | null} user id the stored session belongs to */ #sessionUserId = null;
  #hasSynced = false;
  #restoring = false;
  // Whether the join went out on the current socket: until then updates wait in
  // #pendingPatch, afterwards they are sent at once (the server handles a
  // connection's messages in order, so an update right after a join is fine).
  #joinSent = false;

  /** @type {Record<string, unknown>} this session's state as the app set it */
  #localState = {};
  /** @type {Record<string, unknown> | null} updates made while they could not be sent */
  #pendingPatch = null;

  /** @type {CursorPosition | null} */ #pendingCursor = null;
  /** @type {{ x: number, y: number } | null} */ #lastCursor = null;
  #cursorShown = false;
  /** @type {ReturnType<typeof setTimeout> | null} */ #cursorTimer = null;

  // The server's numbers. A list view reads `count` from them; a full view counts its
  // roster, which every roster event keeps current (the server sends a full view no
  // `presence:count`). Null until the server sent one: an older server sends none.
  /** @type {number | null} */ #serverCount = null;
  /** @type {number | null} */ #serverSpectators = null;
  /** @type {RoomCount} what the last `count` event said */
  #lastCount = Object.freeze({ count: 0, spectators: 0 });

  /** @type {ReadonlyArray<PresenceUser> | null} */ #usersSnapshot = null;
  /** @type {ReadonlyArray<PresenceUser> | null} */ #othersSnapshot = null;
  /** @type {ReadonlyArray<LiveCursor> | null} */ #cursorsSnapshot = null;

  /**
   * Use `PresenceClient#join` instead.
   * @internal
   * @param {RoomHost} host
   * @param {string} name
   * @param {JoinOptions} options
   * @param {boolean} away whether the tab is already away
   */
  constructor(host, name, options, away) {
    super();
    this.#host = host;
    this.#name = name;
    this.#batch = options.batch ?? true;
    this.#view = checkedView(options.view);
    this.#isSpectator = options.spectator === true;
    if (options.state !== undefined) {
      assertState(options.state);
      if (this.#isSpectator) throw new TypeError("presenced: a spectator has no state; join without `state`");
      mergeState(this.#localState, options.state);
    }
    // A spectator's session has no state for `away` to go into.
    if (away && !this.#isSpectator) this.#localState.away = true;
    const stored = claimSession(host.storage, name);
    if (stored) {
      this.#sessionId = stored.sessionId;
      this.#sessionUserId = stored.userId;
    }
  }

  /** The room's name. */
  get name() {
    return this.#name;
  }

  /**
   * `joining`, `joined`, `reconnecting`, `refused` or `left`; see `RoomStatus`.
   * @returns {RoomStatus}
   */
  get status() {
    return this.#status;
  }

  /**
   * The `presence:error` that refused the join (`code` and `message`), once `status` is
   * `refused`; null otherwise.
   * @returns {PresenceError | null}
   */
  get refusal() {
    return this.#refusal;
  }

  /**
   * The view this room was joined with: `"full"` or `{ list: K }`.
   * @returns {RoomView}
   */
  get view() {
    return this.#view;
  }

  /** Whether this session joined as a spectator: it sees the room but is not listed. */
  get isSpectator() {
    return this.#isSpectator;
  }

  /**
   * How many users are in the room, this one included unless it is a spectator. For a
   * full view it is the length of `users`; for a list view it is the server's count of
   * the whole room, of which `users` holds only the first few. Follow it with
   * `room.on("count", fn)`.
   * @returns {number}
   */
  get count() {
    if (this.#view !== "full" && this.#serverCount !== null) return this.#serverCount;
    return this.#roster.size;
  }

  /** How many spectator sessions watch the room, as the server last said (0 before it has). */
  get spectators() {
    return this.#serverSpectators ?? 0;
  }

  /** The server's id for this tab's session in the room (null until the first join is answered). */
  get sessionId() {
    return this.#sessionId;
  }

  /**
   * Everyone in the room, self included, oldest first. Stays on screen while reconnecting.
   * @returns {ReadonlyArray<PresenceUser>}
   */
  get users() {
    if (!this.#usersSnapshot) {
      const users = [...this.#roster.values()].sort(byJoinedAt);
      this.#usersSnapshot = Object.freeze(users);
    }
    return this.#usersSnapshot;
  }

  /**
   * Everyone but the user this client joined as.
   * @returns {ReadonlyArray<PresenceUser>}
   */
  get others() {
    if (!this.#othersSnapshot) {
      this.#othersSnapshot = Object.freeze(this.users.filter((user) => !user.isSelf));
    }
    return this.#othersSnapshot;
  }

  /**
   * This client's own entry in the roster, or null before the join is answered. Null for
   * a spectator too, unless the same user is listed through another session.
   * @returns {PresenceUser | null}
   */
  get self() {
    return (this.#selfId !== null && this.#roster.get(this.#selfId)) || null;
  }

  /**
   * The visible cursors of the other users, with their names and colors.
   * @returns {ReadonlyArray<LiveCursor>}
   */
  get cursors() {
    if (!this.#cursorsSnapshot) {
      /** @type {LiveCursor[]} */
      const cursors = [];
      for (const user of this.users) {
        const position = this.#cursorPositions.get(user.id);
        if (user.isSelf || !position?.visible) continue;
        cursors.push(
          Object.freeze({ userId: user.id, name: user.name, color: user.color, x: position.x, y: position.y }),
        );
      }
      this.#cursorsSnapshot = cursors.length ? Object.freeze(cursors) : EMPTY;
    }
    return this.#cursorsSnapshot;
  }

  /**
   * Shallow-merges `patch` into this user's state, as seen by everyone in the room; a
   * `null` value deletes a key. Sent at once when connected, otherwise when the room is
   * joined again. `state.away` is reserved: the client sets it from tab visibility.
   * Throws for a room that is left or refused, and for a spectator (which has no state).
   * @param {Record<string, unknown>} patch
   */
  update(patch) {
    assertState(patch);
    if (this.#isOver()) {
      throw new Error(`presenced: room "${this.#name}" was ${this.#status}`);
    }
    if (this.#isSpectator) {
      throw new Error(`presenced: room "${this.#name}" was joined as a spectator, which has no state`);
    }
    mergeState(this.#localState, patch);
    this.#sendOrKeepPatch(patch);
    this.#applyToSelf(patch);
  }

  /**
   * Moves this user's cursor. Calls are coalesced: at most one `presence:cursor` goes out
   * per cursor interval (50 ms by default), carrying the latest position. The numbers are
   * sent as they are; by convention (the demo, `<LiveCursors/>`, `useCursorTracking`)
   * they are fractions of the shared board, 0 to 1, so windows of any size agree. A
   * spectator's moves are dropped, as a left room's are: it has no cursor to show.
   * @param {number} x from the board's left edge: 0 at the left, 1 at the right
   * @param {number} y from the board's top edge: 0 at the top, 1 at the bottom
   */
  moveCursor(x, y) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      throw new TypeError("presenced: moveCursor needs finite numbers");
    }
    this.#queueCursor({ x, y, visible: true });
  }

  /** Hides this user's cursor from the others (e.g. when the pointer leaves the board). */
  hideCursor() {
    const last = this.#pendingCursor ?? this.#lastCursor ?? { x: 0, y: 0 };
    this.#queueCursor({ x: last.x, y: last.y, visible: false });
  }

  /**
   * Leaves the room at once: the others see this user leave (if it was its last tab).
   * The room stops reconnecting; join again with `client.join`.
   */
  leave() {
    if (this.#isOver()) return;
    if (this.#joinSent) this.#host.send({ type: "presence:leave", room: this.#name });
    this._left();
  }

  // ---- Internal: called by PresenceClient -------------------------------------------

  /**
   * Sends the join (on connect and reconnect), then whatever waited for it.
   * @internal
   */
  _sendJoin() {
    if (this.#isOver()) return;
    // `away` is per session and set only by presence:update (docs/protocol.md), and a
    // restoring join's state is ignored anyway: the update after the join covers both.
    const { away, ...state } = this.#localState;
    const join = this.#joinMessage();
    if (Object.keys(state).length > 0) join.state = state;
    if (!this.#host.send(join)) return;
    this.#joinSent = true;
    this.#setStatus(this.#hasSynced ? "reconnecting" : "joining");

    // For a restored session the server holds the state from before the disconnect:
    // bring it up to date. For a fresh one this repeats the join's state, harmlessly.
    const patch = { ...this.#pendingPatch };
    this.#pendingPatch = null;
    if (away === true) patch.away = true;
    if (Object.keys(patch).length > 0) this.#sendUpdate(patch);
    if (this.#pendingCursor && this.#cursorTimer === null) this.#flushCursor();
  }

  /**
   * Sends a join that only changes the user's name (the server answers with a fresh roster).
   * @internal
   */
  _sendRename() {
    if (!this.#joinSent) return; // the next _sendJoin carries the new name
    this.#host.send(this.#joinMessage());
  }

  /**
   * The socket closed: keep the roster on screen and wait for the next `_sendJoin`.
   * @internal
   */
  _connectionLost() {
    this.#joinSent = false;
    this.#restoring = false;
    if (this.#cursorTimer !== null) {
      clearTimeout(this.#cursorTimer);
      this.#cursorTimer = null;
    }
    if (!this.#isOver()) this.#setStatus(this.#hasSynced ? "reconnecting" : "joining");
  }

  /**
   * The tab was hidden: hide this user's cursor if the others can see it.
   * @internal
   */
  _hideCursorIfShown() {
    if (this.#cursorShown || this.#pendingCursor?.visible) this.hideCursor();
  }

  /**
   * The page is going away (maybe a reload): let the next load in this tab restore.
   * @internal
   */
  _persistSession() {
    if (this.#isOver() || this.#sessionId === null || this.#selfId === null) return;
    storeSession(this.#host.storage, this.#name, { sessionId: this.#sessionId, userId: this.#selfId });
  }

  /**
   * The page came back from the back/forward cache: claim the stored id again.
   * @internal
   */
  _reclaimSession() {
    claimSession(this.#host.storage, this.#name);
  }

  /**
   * Stops everything and marks the room left, without sending anything.
   * @internal
   */
  _left() {
    this.#end("left");
  }

  /**
   * A `presence:error` caused by a message of this room (matched by `ref`).
   * @internal
   * @param {PresenceError} error
   * @param {string} kind what the message was: `join` or `update`
   */
  _handleError(error, kind) {
    const answeringJoin = this.#status === "joining" || this.#status === "reconnecting";
    if (kind === "join" && FATAL_JOIN_ERRORS.has(error.code) && answeringJoin) {
      // Retrying the same join would be refused again: say so, instead of a roster that
      // stays empty (or stale) with no reason given.
      this.#refusal = error;
      this.#end("refused");
      this.emit("error", error);
      return;
    }
    if (kind === "update" && error.code === "not_joined" && this.#status === "joined") {
      // Another connection restored our session (a duplicated tab that copied our
      // sessionStorage): the server detached this one. Join again as a new session.
      this.#sessionId = null;
      this.#joinSent = false;
      this._sendJoin();
    }
    this.emit("error", error);
  }

  /**
   * A server message addressed to this room.
   * @internal
   * @param {any} message
   */
  _handle(message) {
    switch (message.type) {
      case "presence:restored":
        this.#restoring = true;
        if (typeof message.sessionId === "string") this.#sessionId = message.sessionId;
        break;
      case "presence:currentUsers":
        this.#handleCurrentUsers(message);
        break;
      case "presence:userJoined":
        this.#applyChanges([], [message.user], []);
        break;
      case "presence:userLeft":
        this.#applyChanges([message.userId], [], []);
        break;
      case "presence:userUpdated":
        this.#applyChanges([], [], [message.user]);
        break;
      case "presence:diff":
        this.#applyChanges(message.left ?? [], message.joined ?? [], message.updated ?? []);
        break;
      case "presence:cursors":
        this.#handleCursors(message.cursors ?? []);
        break;
      case "presence:count":
        if (isCount(message.count)) this.#serverCount = message.count;
        if (isCount(message.spectators)) this.#serverSpectators = message.spectators;
        this.#emitCountIfChanged();
        break;
      default:
        break; // a newer server's message: ignore, as the contract allows
    }
  }

  // ---- Private ------------------------------------------------------------------------

  /**
   * A `presence:join` for this room, with everything but the state. Every join carries
   * the view and the spectator flag, a rejoin's and a rename's too, so a restored
   * session keeps them; the defaults are left out, so a 1.0 server sees a 1.0 join.
   * @returns {Record<string, unknown>}
   */
  #joinMessage() {
    /** @type {Record<string, unknown>} */
    const join = {
      type: "presence:join",
      room: this.#name,
      user: this.#joinUser(),
      batch: this.#batch,
      ref: `join:${this.#name}`,
    };
    if (this.#view !== "full") join.view = { list: this.#view.list };
    if (this.#isSpectator) join.spectator = true;
    // With JWT the server checks every join, a rename's too.
    const token = this.#host.token();
    if (token !== undefined) join.token = token;
    return join;
  }

  #joinUser() {
    const { id, name } = this.#host.userForJoin();
    /** @type {{ id?: string, name?: string, sessionId?: string }} */
    const user = {};
    if (id !== undefined) user.id = id;
    else if (this.#sessionUserId !== null) user.id = this.#sessionUserId; // anonymous: keep the anon id
    if (name !== undefined) user.name = name;
    // A stored session only restores for the same user id; after a switch of account
    // the old one is left to expire and the server makes a new one.
    const sameUser = user.id === undefined || this.#sessionUserId === null || user.id === this.#sessionUserId;
    if (this.#sessionId !== null && sameUser) user.sessionId = this.#sessionId;
    return user;
  }

  /** @param {{ users: User[], self: { id: string, sessionId: string }, count?: unknown, spectators?: unknown }} message */
  #handleCurrentUsers(message) {
    const restored = this.#restoring;
    this.#restoring = false;
    this.#selfId = message.self.id;
    this.#sessionId = message.self.sessionId;
    this.#sessionUserId = message.self.id;
    this.#host.learnUserId(message.self.id);

    const previous = this.#roster;
    const previousCursors = this.cursors;
    const resync = this.#hasSynced;
    this.#hasSynced = true;
    this.#roster = new Map();
    this.#cursorPositions = new Map();
    for (const user of message.users ?? []) this.#upsert(user, true);
    this.#serverCount = isCount(message.count) ? message.count : null;
    this.#serverSpectators = isCount(message.spectators) ? message.spectators : null;

    // A resync after a reconnect tells only what really changed while we were away: a
    // user present before and after is neither left nor joined, and an entry that did
    // not change keeps its identity, so nothing re-renders for it.
    /** @type {PresenceUser[]} */ const left = [];
    /** @type {PresenceUser[]} */ const joined = [];
    /** @type {PresenceUser[]} */ const updated = [];
    for (const [id, user] of previous) {
      if (!this.#roster.has(id)) left.push(user);
    }
    for (const [id, user] of this.#roster) {
      const before = previous.get(id);
      if (!before) joined.push(user);
      else if (sameEntry(before, user)) this.#roster.set(id, before);
      else updated.push(user);
    }
    const rosterChanged = !resync || left.length + joined.length + updated.length > 0;
    this.#invalidate(rosterChanged);
    if (!rosterChanged && sameCursors(previousCursors, this.cursors)) this.#cursorsSnapshot = previousCursors;

    this.#host.joinSucceeded();
    this.#setStatus("joined");
    if (rosterChanged) this.emit("users", this.users);
    if (this.cursors !== previousCursors) this.emit("cursors", this.cursors);
    this.#emitCountIfChanged();
    if (resync) {
      for (const user of left) this.emit("userLeft", user);
      for (const user of joined) this.emit("userJoined", user);
      for (const user of updated) this.emit("userUpdated", user);
    }
    this.emit("joined", { restored });
  }

  /**
   * Applies roster changes in the order docs/protocol.md gives for `presence:diff`:
   * left first, then joined, then updated; joined and updated are upserts, and the
   * `left` of an unknown id is a no-op.
   * @param {string[]} left
   * @param {User[]} joined
   * @param {User[]} updated
   */
  #applyChanges(left, joined, updated) {
    if (!this.#hasSynced) return; // before currentUsers: the snapshot will include it all
    const before = new Map(this.#roster);
    for (const id of left) {
      this.#roster.delete(id);
      this.#cursorPositions.delete(id);
    }
    for (const user of joined) this.#upsert(user, true);
    for (const user of updated) this.#upsert(user, false);
    this.#invalidate(true);
    this.emit("users", this.users);
    this.emit("cursors", this.cursors);
    this.#emitCountIfChanged();

    // A user in both `left` and `joined` left and came back within one interval: tell
    // both, so that every userJoined has its userLeft.
    const leftIds = new Set(left);
    for (const [id, user] of before) {
      if (!this.#roster.has(id) || leftIds.has(id)) this.emit("userLeft", user);
    }
    for (const user of joined) {
      const now = this.#roster.get(user.id);
      if (now && (!before.has(user.id) || leftIds.has(user.id))) this.emit("userJoined", now);
    }
    for (const user of updated) {
      const now = this.#roster.get(user.id);
      if (now && before.has(user.id)) this.emit("userUpdated", now);
    }
  }

  /**
   * @param {User} user
   * @param {boolean} takeCursor whether the entry's cursor is fresh (a join or a snapshot)
   */
  #upsert(user, takeCursor) {
    if (!user || typeof user.id !== "string") return;
    const state = user.state && typeof user.state === "object" ? user.state : {};
    const entry = Object.freeze({
      ...user,
      state: Object.freeze({ ...state }),
      away: state.away === true,
      isSelf: user.id === this.#selfId,
    });
    this.#roster.set(user.id, entry);
    if (takeCursor && user.cursor && !entry.isSelf) {
      this.#cursorPositions.set(user.id, { x: user.cursor.x, y: user.cursor.y, visible: user.cursor.visible });
    }
  }

  /** @param {Array<{ userId: string, x: number, y: number, visible?: boolean }>} entries */
  #handleCursors(entries) {
    let changed = false;
    for (const entry of entries) {
      if (!entry || entry.userId === this.#selfId) continue;
      this.#cursorPositions.set(entry.userId, { x: entry.x, y: entry.y, visible: entry.visible !== false });
      changed = true;
    }
    if (!changed) return;
    this.#invalidate(false);
    this.emit("cursors", this.cursors);
  }

  /** @param {Record<string, unknown>} patch */
  #sendOrKeepPatch(patch) {
    if (this.#joinSent && this.#host.isOpen()) {
      this.#sendUpdate(patch);
    } else {
      this.#pendingPatch = { ...this.#pendingPatch, ...patch };
    }
  }

  /** @param {Record<string, unknown>} patch */
  #sendUpdate(patch) {
    this.#host.send({ type: "presence:update", room: this.#name, state: patch, ref: `update:${this.#name}` });
  }

  /**
   * Shows our own change at once; the server tells the others, not us. `away` is left to
   * the server, which combines the flags of all our tabs.
   * @param {Record<string, unknown>} patch
   */
  #applyToSelf(patch) {
    const self = this.self;
    const { away, ...rest } = patch;
    if (!self || Object.keys(rest).length === 0) return;
    const state = { ...self.state };
    mergeState(state, rest);
    this.#upsert({ ...self, state }, false);
    this.#invalidate(true);
    this.emit("users", this.users);
  }

  /** @param {CursorPosition} cursor */
  #queueCursor(cursor) {
    if (this.#isOver() || this.#isSpectator) return;
    this.#pendingCursor = cursor;
    if (this.#cursorTimer === null) this.#flushCursor();
  }

  // Leading-edge throttle: the first move goes out at once, later ones within the
  // interval collapse into one send of the latest position when the interval ends.
  #flushCursor() {
    this.#cursorTimer = null;
    const cursor = this.#pendingCursor;
    if (!cursor || !this.#joinSent) return; // sent after the next join
    this.#pendingCursor = null;
    this.#lastCursor = { x: cursor.x, y: cursor.y };
    this.#cursorShown = cursor.visible;
    this.#host.send({ type: "presence:cursor", room: this.#name, x: cursor.x, y: cursor.y, visible: cursor.visible });
    this.#cursorTimer = setTimeout(() => this.#flushCursor(), this.#host.cursorIntervalMs);
  }

  /** Whether the room is done with: left, or refused by the server. */
  #isOver() {
    return this.#status === "left" || this.#status === "refused";
  }

  /**
   * Stops everything, without sending anything, and empties the roster.
   * @param {"left" | "refused"} status
   */
  #end(status) {
    if (this.#cursorTimer !== null) clearTimeout(this.#cursorTimer);
    this.#cursorTimer = null;
    this.#pendingCursor = null;
    this.#joinSent = false;
    this.#host.forget(this);
    this.#roster = new Map();
    this.#cursorPositions = new Map();
    this.#serverCount = null;
    this.#serverSpectators = null;
    this.#invalidate(true);
    this.#setStatus(status);
    this.emit("users", this.users);
    this.emit("cursors", this.cursors);
    this.#emitCountIfChanged();
  }

  // One `count` event per change of either number, whichever message changed it: a
  // roster event (a full view's count is its roster), `presence:count` or a snapshot.
  #emitCountIfChanged() {
    const count = this.count;
    const spectators = this.spectators;
    if (count === this.#lastCount.count && spectators === this.#lastCount.spectators) return;
    this.#lastCount = Object.freeze({ count, spectators });
    this.emit("count", this.#lastCount);
  }

  /** @param {RoomStatus} status */
  #setStatus(status) {
    if (this.#status === status) return;
    this.#status = status;
    this.emit("status", status);
  }

  /** @param {boolean} roster whether the roster changed too (not only cursors) */
  #invalidate(roster) {
    if (roster) {
      this.#usersSnapshot = null;
      this.#othersSnapshot = null;
    }
    this.#cursorsSnapshot = null;
  }
}

/**
 * @param {PresenceUser} a
 * @param {PresenceUser} b
 */
function byJoinedAt(a, b) {
  if (a.joinedAt !== b.joinedAt) return a.joinedAt - b.joinedAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * A count as the server sends it: a whole number, at least 0.
 * @param {unknown} value
 * @returns {value is number}
 */
function isCount(value) {
  return Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;
}

/** The largest `{ list: K }` the server accepts. */
const MAX_LIST_VIEW = 1000;

/**
 * The join option `view`, checked as the server would check it, so that a mistake
 * throws at `join` instead of ending the room in `refused`.
 * @param {unknown} view
 * @returns {RoomView}
 */
function checkedView(view) {
  if (view === undefined || view === "full") return "full";
  const list = view !== null && typeof view === "object" ? /** @type {{ list?: unknown }} */ (view).list : undefined;
  if (!Number.isInteger(list) || /** @type {number} */ (list) < 0 || /** @type {number} */ (list) > MAX_LIST_VIEW) {
    throw new TypeError(`presenced: view must be "full" or { list: K } with K a whole number from 0 to ${MAX_LIST_VIEW}`);
  }
  return Object.freeze({ list: /** @type {number} */ (list) });
}

/**
 * Shallow merge where `null` deletes, as the server does it.
 * @param {Record<string, unknown>} target
 * @param {Record<string, unknown>} patch
 */
function mergeState(target, patch) {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete target[key];
    else target[key] = value;
  }
}

/**
 * @param {unknown} state
 * @returns {asserts state is Record<string, unknown>}
 */
function assertState(state) {
  if (state === null || typeof state !== "object" || Array.isArray(state)) {
    throw new TypeError("presenced: state must be a plain object");
  }
}

/**
 * Whether two roster entries show the same thing. `lastSeen` is left out: it moves with
 * every sign of life and is not shown as a change; live cursors are compared apart.
 * @param {PresenceUser} a
 * @param {PresenceUser} b
 */
function sameEntry(a, b) {
  return (
    a.name === b.name &&
    a.color === b.color &&
    a.joinedAt === b.joinedAt &&
    a.sessions === b.sessions &&
    a.isSelf === b.isSelf &&
    sameJson(a.state, b.state)
  );
}

/**
 * @param {ReadonlyArray<LiveCursor>} a
 * @param {ReadonlyArray<LiveCursor>} b
 */
function sameCursors(a, b) {
  return (
    a.length === b.length &&
    a.every((cursor, i) => {
      const other = b[i];
      return (
        cursor.userId === other.userId &&
        cursor.x === other.x &&
        cursor.y === other.y &&
        cursor.name === other.name &&
        cursor.color === other.color
      );
    })
  );
}

/**
 * Deep equality of JSON values (what custom state holds), whatever the key order.
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
function sameJson(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const aRecord = /** @type {Record<string, unknown>} */ (a);
  const bRecord = /** @type {Record<string, unknown>} */ (b);
  const keys = Object.keys(aRecord);
  if (keys.length !== Object.keys(bRecord).length) return false;
  return keys.every((key) => Object.hasOwn(bRecord, key) && sameJson(aRecord[key], bRecord[key]));
}
