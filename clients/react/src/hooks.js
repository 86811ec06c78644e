// Hooks over the SDK's snapshots. Each reads a snapshot that keeps its identity until
// it changes, through useSyncExternalStore, so a component re-renders only when what it
// reads changed (a cursor move never re-renders a roster).

import { useCallback, useEffect, useSyncExternalStore } from "react";
import { usePresenceContext } from "./context.js";

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
 * @template T
 * @param {"users" | "cursors" | "status"} event
 * @param {(room: Room) => T} read
 * @param {T} fallback while the provider has not joined yet
 * @returns {T}
 */
function useRoomSnapshot(event, read, fallback) {
  const { room } = usePresenceContext();
  const subscribe = useCallback(
    /** @param {() => void} onChange */
    (onChange) => (room ? room.on(event, onChange) : noop),
    [room, event],
  );
  const snapshot = () => (room ? read(room) : fallback);
  return useSyncExternalStore(subscribe, snapshot, snapshot);
}

/**
 * Everyone in the room, self included, oldest first.
 * @returns {ReadonlyArray<PresenceUser>}
 */
export function useUsers() {
  return useRoomSnapshot("users", (room) => room.users, NONE);
}

/**
 * Everyone in the room but this user.
 * @returns {ReadonlyArray<PresenceUser>}
 */
export function useOthers() {
  return useRoomSnapshot("users", (room) => room.others, NONE);
}

/**
 * This user's own entry (name, server-assigned color, state), or null before joining.
 * @returns {PresenceUser | null}
 */
export function useSelf() {
  return useRoomSnapshot("users", (room) => room.self, null);
}

/**
 * The visible cursors of the others.
 * @returns {ReadonlyArray<LiveCursor>}
 */
export function useCursors() {
  return useRoomSnapshot("cursors", (room) => room.cursors, NONE);
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
  return useRoomSnapshot("status", (room) => room.status, "joining");
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
