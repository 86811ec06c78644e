// A WebSocket stand-in for unit tests: the test plays the server, opening, sending
// frames and closing by hand, and reads what the client sent from `sent`.

export class FakeWebSocket {
  /** @type {FakeWebSocket[]} every socket created since the last reset */
  static instances = [];

  static reset() {
    FakeWebSocket.instances = [];
  }

  /** The most recently created socket. */
  static get last() {
    const socket = FakeWebSocket.instances.at(-1);
    if (!socket) throw new Error("no FakeWebSocket was created");
    return socket;
  }

  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} parsed frames the client sent */
    this.sent = [];
    /** @type {{ code?: number, reason?: string } | null} */
    this.closedByClient = null;
    /** @type {((event: any) => void) | null} */ this.onopen = null;
    /** @type {((event: any) => void) | null} */ this.onmessage = null;
    /** @type {((event: any) => void) | null} */ this.onclose = null;
    /** @type {((event: any) => void) | null} */ this.onerror = null;
    FakeWebSocket.instances.push(this);
  }

  /** @param {string} data */
  send(data) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(data));
  }

  /** @param {number} [code] @param {string} [reason] */
  close(code, reason) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closedByClient = { code, reason };
    this.onclose?.({ code: code ?? 1005 });
  }

  // ---- the test's side ----

  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** @param {object} message */
  serverSend(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  /** @param {number} [code] */
  serverClose(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }

  /** @param {string} type */
  sentOfType(type) {
    return this.sent.filter((message) => message.type === type);
  }
}

/**
 * A wire user with defaults, for building server frames.
 * @param {string} id
 * @param {Partial<import("../../src/types.js").User>} [fields]
 * @returns {import("../../src/types.js").User}
 */
export function wireUser(id, fields = {}) {
  return {
    id,
    name: id[0].toUpperCase() + id.slice(1),
    color: "#1565C0",
    joinedAt: 1_700_000_000_000,
    lastSeen: 1_700_000_000_000,
    cursor: { x: 0, y: 0, visible: false },
    state: {},
    sessions: 1,
    ...fields,
  };
}

/** A Storage-like map, as `sessionStorage` would be in one tab. */
export class MemoryStorage {
  /** @type {Map<string, string>} */
  items = new Map();
  /** @param {string} key */
  getItem(key) {
    return this.items.get(key) ?? null;
  }
  /** @param {string} key @param {string} value */
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  /** @param {string} key */
  removeItem(key) {
    this.items.delete(key);
  }
}

/** A `document` stand-in whose visibility the test flips. */
export class FakeDocument extends EventTarget {
  visibilityState = "visible";
  /** @param {"visible" | "hidden"} state */
  setVisibility(state) {
    this.visibilityState = state;
    this.dispatchEvent(new Event("visibilitychange"));
  }
}
