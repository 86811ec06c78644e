// Hooks over the SDK's snapshots. Each reads a snapshot that keeps its identity until
// it changes, through useSyncExternalStore, so a component re-renders only when what it
// reads changed (a cursor move never re-renders a roster). A selector narrows that
// further: the component re-renders only when the selected value changes.

import { useCallback, useEffect, useRef, useSyncExternalStore } from "react";
import { useGivenOrProvidedRoom, usePresenceContext } from "./context.js";

/** @typedef {import("@presenced/client").PresenceUser} PresenceUser */
/** @typedef {import("@presenced/client").LiveCursor} LiveCursor */
/** @typedef {import("@presenced/client").ConnectionState} ConnectionState */
/** @typedef {import("@presenced/client").Room} Room */
/** @typedef {import("@presenced/client").RoomStatus} RoomStatus */
/** @typedef {import("@presenced/client").PresenceError} PresenceError */

/** @type {ReadonlyArray<never>} */
const NONE = Object.freeze([]);
const noop = () => {};

/**
 * Whether two values are equal one level deep: the same value, or arrays with the same
 * items, or plain objects with the same keys and values (compared with `Object.is`).
 * Pass it to a hook whose selector builds a new array or object on every call, e.g.
 * `useOthers((others) => others.map((user) => user.id), shallow)`.
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
export function shallow(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => Object.is(item, b[i]));
  }
  const aRecord = /** @type {Record<string, unknown>} */ (a);
  const bRecord = /** @type {Record<string, unknown>} */ (b);
  const keys = Object.keys(aRecord);
  if (keys.length !== Object.keys(bRecord).length) return false;
  return keys.every((key) => Object.hasOwn(bRecord, key) && Object.is(aRecord[key], bRecord[key]));
}

/**
 * Reads `read(room)` (or `fallback` before the provider has joined), re-reads it on
 * `event`, and returns `select` of it. The selection is recomputed only when the snapshot
 * or the selector changed, and kept (with its identity) while `isEqual` says it is the
 * same, so the component re-renders only when the selected value changes. The room is
 * `givenRoom` when one is given, otherwise the provider's.
 * @template S, T
 * @param {"users" | "cursors" | "status" | "count"} event
 * @param {(room: Room) => S} read
 * @param {S} fallback
 * @param {(snapshot: S) => T} select
 * @param {(a: T, b: T) => boolean} isEqual
 * @param {Room | null} [givenRoom]
 * @returns {T}
 */
function useRoomSelection(event, read, fallback, select, isEqual, givenRoom) {
  const room = useGivenOrProvidedRoom(givenRoom);
  const subscribe = useCallback(
    /** @param {() => void} onChange */
    (onChange) => (room ? room.on(event, onChange) : noop),
    [room, event],
  );
  /** @type {import("react").RefObject<{ snapshot: S, select: (snapshot: S) => T, selection: T } | null>} */
  const last = useRef(null);
  const selection = () => {
    const snapshot = room ? read(room) : fallback;
    const previous = last.current;
    if (previous && Object.is(previous.snapshot, snapshot) && previous.select === select) return previous.selection;
    const next = select(snapshot);
    const kept = previous && isEqual(previous.selection, next) ? previous.selection : next;
    last.current = { snapshot, select, selection: kept };
    return kept;
  };
  return useSyncExternalStore(subscribe, selection, selection);
}

/**
 * @template T
 * @param {T} value
 * @returns {T}
 */
const itself = (value) => value;

/**
 * Everyone in the room, self included, oldest first.
 * @returns {ReadonlyArray<PresenceUser>}
 */
export function useUsers() {
  return useRoomSelection("users", (room) => room.users, NONE, itself, Object.is);
}

/**
 * Everyone in the room but this user, oldest first; or what `selector` picks of them.
 * With a selector the component re-renders only when the selection changes by
 * `isEqual` (`Object.is` by default; `shallow` for a selector that builds an array).
 * @template [T=ReadonlyArray<PresenceUser>]
 * @param {(others: ReadonlyArray<PresenceUser>) => T} [selector]
 * @param {(a: T, b: T) => boolean} [isEqual]
 * @returns {T}
 */
export function useOthers(selector, isEqual = Object.is) {
  const select = /** @type {(others: ReadonlyArray<PresenceUser>) => T} */ (selector ?? itself);
  return useRoomSelection("users", (room) => room.others, NONE, select, isEqual);
}

/**
 * One other user, or what `selector` picks of them; null while that user is not in the
 * room. Re-renders only when that user's entry (or the selection) changes.
 * @template [T=PresenceUser]
 * @param {string} userId
 * @param {(user: PresenceUser) => T} [selector]
 * @param {(a: T, b: T) => boolean} [isEqual]
 * @returns {T | null}
 */
export function useOther(userId, selector, isEqual = Object.is) {
  const pick = /** @type {(user: PresenceUser) => T} */ (selector ?? itself);
  const select = useCallback(
    /** @param {ReadonlyArray<PresenceUser>} others */
    (others) => {
      const user = others.find((other) => other.id === userId);
      return user ? pick(user) : null;
    },
    [userId, pick],
  );
  /** @type {(a: T | null, b: T | null) => boolean} */
  const equal = (a, b) => (a === null || b === null ? a === b : isEqual(a, b));
  return useRoomSelection("users", (room) => room.others, NONE, select, equal);
}

/**
 * How many users are in the room, this one included (unless it is a spectator): the
 * server's count, which for a list view (`view={{ list: K }}`) is the whole room, not
 * the K listed. Re-renders only when the number changes, not when someone's state does.
 * @param {Room | null} [room] a room to read instead of the provider's
 * @returns {number}
 */
export function useCount(room) {
  return useRoomSelection("count", (joined) => joined.count, 0, itself, Object.is, room);
}

/**
 * How many spectator sessions watch the room (joined with `spectator`, not listed).
 * @param {Room | null} [room] a room to read instead of the provider's
 * @returns {number}
 */
export function useSpectators(room) {
  return useRoomSelection("count", (joined) => joined.spectators, 0, itself, Object.is, room);
}

/**
 * This user's own entry (name, server-assigned color, state), or null before joining.
 * @returns {PresenceUser | null}
 */
export function useSelf() {
  return useRoomSelection("users", (room) => room.self, null, itself, Object.is);
}

/**
 * The visible cursors of the others.
 * @returns {ReadonlyArray<LiveCursor>}
 */
export function useCursors() {
  return useRoomSelection("cursors", (room) => room.cursors, NONE, itself, Object.is);
}

/**
 * `connecting`, `connected`, `reconnecting` or `disconnected`.
 * @returns {ConnectionState}
 */
export function useConnectionState() {
  const { client } = usePresenceContext();
  const subscribe = useCallback(
    /** @param {() => void} onChange */
    (onChange) => (client ? client.on("connection", onChange) : noop),
    [client],
  );
  /** @returns {ConnectionState} */
  const snapshot = () => (client ? client.connection : "connecting");
  return useSyncExternalStore(subscribe, snapshot, snapshot);
}

/**
 * The room's status: `joining`, `joined`, `reconnecting`, `refused` (the server turned
 * the join down; `useErrors()` and `room.refusal` say why) or `left`.
 * @returns {RoomStatus}
 */
export function useRoomStatus() {
  return useRoomSelection("status", (room) => room.status, /** @type {RoomStatus} */ ("joining"), itself, Object.is);
}

/**
 * The last `presence:error`s the server sent this client (at most 20), oldest first:
 * refused joins, oversized state, rate limits.
 * @returns {ReadonlyArray<PresenceError>}
 */
export function useErrors() {
  const { client } = usePresenceContext();
  const subscribe = useCallback(
    /** @param {() => void} onChange */
    (onChange) => (client ? client.on("error", onChange) : noop),
    [client],
  );
  /** @returns {ReadonlyArray<PresenceError>} */
  const snapshot = () => (client ? client.errors : NONE);
  return useSyncExternalStore(subscribe, snapshot, snapshot);
}

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
export function usePresence() {
  const { room } = usePresenceContext();
  const users = useUsers();
  const others = useOthers();
  const self = useSelf();
  const connection = useConnectionState();
  const status = useRoomStatus();
  const update = useCallback(
    /** @param {Record<string, unknown>} patch */
    (patch) => room?.update(patch),
    [room],
  );
  const moveCursor = useCallback(
    /** @param {number} x @param {number} y */
    (x, y) => room?.moveCursor(x, y),
    [room],
  );
  const hideCursor = useCallback(() => room?.hideCursor(), [room]);
  return { users, others, self, connection, status, update, moveCursor, hideCursor, room };
}

/**
 * Sends this user's pointer over `ref`'s element as fractions of its size (what
 * `<LiveCursors/>` draws), and hides the cursor when the pointer leaves.
 * @param {import("react").RefObject<HTMLElement | null>} ref
 * @returns {void}
 */
export function useCursorTracking(ref) {
  const { room } = usePresenceContext();
  useEffect(() => {
    const element = ref.current;
    if (!element || !room) return undefined;
    /** @param {PointerEvent} event */
    const onMove = (event) => {
      const box = element.getBoundingClientRect();
      const x = (event.clientX - box.left) / box.width;
      const y = (event.clientY - box.top) / box.height;
      if (Number.isFinite(x) && Number.isFinite(y)) room.moveCursor(x, y);
    };
    const onLeave = () => room.hideCursor();
    element.addEventListener("pointermove", onMove);
    element.addEventListener("pointerleave", onLeave);
    return () => {
      element.removeEventListener("pointermove", onMove);
      element.removeEventListener("pointerleave", onLeave);
    };
  }, [ref, room]);
}
