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
export function defaultSessionStorage(): SessionStorageLike | null;
/**
 * Reads and removes the stored session of a room.
 * @param {SessionStorageLike | null} storage
 * @param {string} room
 * @returns {StoredSession | null}
 */
export function claimSession(storage: SessionStorageLike | null, room: string): StoredSession | null;
/**
 * Stores a room's session so that the next page load in this tab can restore it.
 * @param {SessionStorageLike | null} storage
 * @param {string} room
 * @param {StoredSession} session
 */
export function storeSession(storage: SessionStorageLike | null, room: string, session: StoredSession): void;
/**
 * What the SDK needs of `window.sessionStorage`.
 */
export type SessionStorageLike = Pick<Storage, "getItem" | "setItem" | "removeItem">;
/**
 * A stored session: the id to restore and the user id it belongs to (the server only
 * restores a session for the same user id, so an anonymous user must reuse its `anon-…` id).
 */
export type StoredSession = {
    sessionId: string;
    userId: string;
};
