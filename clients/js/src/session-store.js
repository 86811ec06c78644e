// Where a tab keeps its session ids between page loads.
//
// A reload must restore the tab's sessions, not leave and join again, so the session
// id has to survive the reload: sessionStorage is per tab and survives reloads. But a
// duplicated tab gets a *copy* of sessionStorage, and two tabs restoring the same
// session would steal it from each other. So an id is *claimed* (read and removed)
// when a room is joined and written back only on `pagehide`, just before the page goes
// away. A duplicate made while the page is open finds nothing and starts a new session.

const PREFIX = "presenced:session:";

/**
 * What the SDK needs of `window.sessionStorage`.
 * @typedef {Pick<Storage, "getItem" | "setItem" | "removeItem">} SessionStorageLike
 */

/**
 * A stored session: the id to restore and the user id it belongs to (the server only
 * restores a session for the same user id, so an anonymous user must reuse its `anon-…` id).
 * @typedef {object} StoredSession
 * @property {string} sessionId
 * @property {string} userId
 */

/** @returns {SessionStorageLike | null} the tab's sessionStorage, or null (Node, privacy modes) */
export function defaultSessionStorage() {
  try {
    const storage = globalThis.sessionStorage;
    return storage ?? null;
  } catch {
    // Some browsers throw on access when storage is disabled.
    return null;
  }
}

/**
 * Reads and removes the stored session of a room.
 * @param {SessionStorageLike | null} storage
 * @param {string} room
 * @returns {StoredSession | null}
 */
export function claimSession(storage, room) {
  if (!storage) return null;
  try {
    const raw = storage.getItem(PREFIX + room);
    if (raw === null) return null;
    storage.removeItem(PREFIX + room);
    const parsed = JSON.parse(raw);
    if (typeof parsed?.sessionId === "string" && typeof parsed?.userId === "string") {
      return { sessionId: parsed.sessionId, userId: parsed.userId };
    }
  } catch {
    // Unreadable or full storage: start a fresh session, which is always safe.
  }
  return null;
}

/**
 * Stores a room's session so that the next page load in this tab can restore it.
 * @param {SessionStorageLike | null} storage
 * @param {string} room
 * @param {StoredSession} session
 */
export function storeSession(storage, room, session) {
  if (!storage) return;
  try {
    storage.setItem(PREFIX + room, JSON.stringify(session));
  } catch {
    // Quota exceeded or storage disabled: the next load simply joins afresh.
  }
}
