// Proves the SDK's behaviour frame by frame against a fake WebSocket: joins, roster
// snapshots and diffs, cursor coalescing, reconnect timing, restore across reloads,
// away from tab visibility, and errors. The real-server tests are in integration.test.js.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createClient, backoffDelay, initials } from "../src/index.js";
import { FakeDocument, FakeWebSocket, MemoryStorage, wireUser } from "./support/fake-websocket.js";
import { defaultUrl } from "../src/endpoint.js";

/** @param {Partial<import("../src/client.js").ClientOptions>} [options] */
function setup(options = {}) {
  const storage = new MemoryStorage();
  const window = new EventTarget();
  const document = new FakeDocument();
  const client = createClient({
    url: "ws://127.0.0.1:1/ws",
    user: { id: "ada", name: "Ada" },
    WebSocket: /** @type {any} */ (FakeWebSocket),
    storage,
    window,
    document,
    random: () => 0.5,
    ...options,
  });
  return { client, storage, window, document };
}

/**
 * Answers the last join of `room` on `socket` as the server would.
 * @param {FakeWebSocket} socket
 * @param {string} room
 * @param {import("../src/types.js").User[]} users
 * @param {{ selfId?: string, sessionId?: string, restored?: boolean, count?: number, spectators?: number }} [options]
 *   `count` and `spectators` are sent only when given, as an older server sends neither
 */
function answerJoin(socket, room, users, { selfId = "ada", sessionId = "s-1", restored = false, count, spectators } = {}) {
  if (restored) {
    const user = users.find((u) => u.id === selfId);
    socket.serverSend({ type: "presence:restored", room, user, sessionId });
  }
  socket.serverSend({ type: "presence:currentUsers", room, users, self: { id: selfId, sessionId }, count, spectators });
}

beforeEach(() => {
  FakeWebSocket.reset();
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("joining", () => {
  it("connects, joins with batch, and reports connecting then connected", () => {
    const { client } = setup();
    const states = [client.connection];
    client.on("connection", (state) => states.push(state));
    const room = client.join("lobby", { state: { mood: "happy" } });
    expect(FakeWebSocket.last.url).toBe("ws://127.0.0.1:1/ws");
    expect(FakeWebSocket.last.sent).toEqual([]); // nothing before open

    FakeWebSocket.last.serverOpen();
    expect(states).toEqual(["connecting", "connected"]);
    expect(FakeWebSocket.last.sent).toEqual([
      {
        type: "presence:join",
        room: "lobby",
        user: { id: "ada", name: "Ada" },
        state: { mood: "happy" },
        batch: true,
        ref: "join:lobby",
      },
    ]);
    expect(room.status).toBe("joining");
  });

  it("takes the roster from currentUsers: users, self, others, cursors", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    const seen = /** @type {any[]} */ ([]);
    room.on("users", (users) => seen.push(users));
    answerJoin(socket, "lobby", [
      wireUser("bob", { joinedAt: 2, cursor: { x: 0.25, y: 0.5, visible: true } }),
      wireUser("ada", { joinedAt: 3 }),
      wireUser("cy", { joinedAt: 1, state: { away: true } }),
    ]);

    expect(room.status).toBe("joined");
    expect(room.sessionId).toBe("s-1");
    expect(room.users.map((u) => u.id)).toEqual(["cy", "bob", "ada"]);
    expect(room.self?.id).toBe("ada");
    expect(room.self?.isSelf).toBe(true);
    expect(room.others.map((u) => [u.id, u.away])).toEqual([
      ["cy", true],
      ["bob", false],
    ]);
    expect(room.cursors).toEqual([{ userId: "bob", name: "Bob", color: "#1565C0", x: 0.25, y: 0.5 }]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(room.users); // the snapshot keeps its identity until a change
    expect(room.others).toBe(room.others);
  });

  it("returns the same room when joining a name twice", () => {
    const { client } = setup();
    expect(client.join("lobby")).toBe(client.join("lobby"));
  });

  it("does not reconnect to join nothing, and reconnects at the next join", () => {
    const { client } = setup();
    const first = FakeWebSocket.last;
    first.serverOpen();
    first.serverClose(1008);
    expect(client.connection).toBe("disconnected");
    vi.advanceTimersByTime(120_000);
    expect(FakeWebSocket.last).toBe(first);
    client.join("later");
    const second = FakeWebSocket.last;
    expect(second).not.toBe(first);
    second.serverOpen();
    expect(second.sentOfType("presence:join").map((m) => m.room)).toEqual(["later"]);
  });

  it("joins after connecting when join is called on an open connection", () => {
    const { client } = setup();
    FakeWebSocket.last.serverOpen();
    client.join("late");
    expect(FakeWebSocket.last.sentOfType("presence:join").map((m) => m.room)).toEqual(["late"]);
  });
});

describe("roster changes", () => {
  /** @param {boolean} batch */
  function joined(batch) {
    const { client } = setup();
    const room = client.join("lobby", { batch });
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada", { joinedAt: 1 }), wireUser("bob", { joinedAt: 2 })]);
    return { client, room, socket };
  }

  it("applies a diff in the documented order: left, then joined, then updated", () => {
    const { room, socket } = joined(true);
    const events = /** @type {any[]} */ ([]);
    room.on("userJoined", (u) => events.push(["joined", u.id]));
    room.on("userLeft", (u) => events.push(["left", u.id]));
    room.on("userUpdated", (u) => events.push(["updated", u.id, u.name]));

    socket.serverSend({
      type: "presence:diff",
      room: "lobby",
      // bob left and came back within one interval; ghost was never known
      left: ["bob", "ghost"],
      joined: [wireUser("bob", { joinedAt: 5 }), wireUser("cy", { joinedAt: 6 })],
      updated: [wireUser("cy", { joinedAt: 6, name: "Cy Twice" }), wireUser("ada", { joinedAt: 1, state: { x: 1 } })],
    });

    expect(room.users.map((u) => [u.id, u.name])).toEqual([
      ["ada", "Ada"],
      ["bob", "Bob"],
      ["cy", "Cy Twice"],
    ]);
    expect(room.self?.state).toEqual({ x: 1 }); // a diff may include our own user
    expect(events).toEqual([
      ["left", "bob"],
      ["joined", "bob"],
      ["joined", "cy"],
      ["updated", "ada", "Ada"],
    ]);
  });

  it("does not announce a join that the currentUsers snapshot already had", () => {
    const { room, socket } = joined(true);
    const events = /** @type {any[]} */ ([]);
    room.on("userJoined", (u) => events.push(u.id));
    // The server may batch our own arrival (and anyone's) into the next diff.
    socket.serverSend({ type: "presence:diff", room: "lobby", left: [], joined: [wireUser("ada", { joinedAt: 1 })], updated: [] });
    expect(events).toEqual([]);
    expect(room.users.map((u) => u.id)).toEqual(["ada", "bob"]);
  });

  it("removes users that left and their cursors", () => {
    const { room, socket } = joined(true);
    socket.serverSend({ type: "presence:cursors", room: "lobby", cursors: [{ userId: "bob", x: 1, y: 2, visible: true }] });
    expect(room.cursors.map((c) => c.userId)).toEqual(["bob"]);
    const left = /** @type {any[]} */ ([]);
    room.on("userLeft", (u) => left.push(u.name));
    socket.serverSend({ type: "presence:diff", room: "lobby", left: ["bob"], joined: [], updated: [] });
    expect(room.others).toEqual([]);
    expect(room.cursors).toEqual([]);
    expect(left).toEqual(["Bob"]);
  });

  it("handles single events when not batching", () => {
    const { room, socket } = joined(false);
    expect(socket.sentOfType("presence:join")[0].batch).toBe(false);
    socket.serverSend({ type: "presence:userJoined", room: "lobby", user: wireUser("cy", { joinedAt: 3 }) });
    socket.serverSend({ type: "presence:userUpdated", room: "lobby", user: wireUser("bob", { joinedAt: 2, state: { away: true } }) });
    socket.serverSend({ type: "presence:userLeft", room: "lobby", userId: "ada-never-mind" });
    expect(room.others.map((u) => [u.id, u.away])).toEqual([
      ["bob", true],
      ["cy", false],
    ]);
    socket.serverSend({ type: "presence:userLeft", room: "lobby", userId: "cy" });
    expect(room.others.map((u) => u.id)).toEqual(["bob"]);
  });

  it("routes frames by room and ignores unknown types", () => {
    const { client, room, socket } = joined(true);
    const other = client.join("other");
    answerJoin(socket, "other", [wireUser("ada"), wireUser("zed")]);
    socket.serverSend({ type: "presence:somethingNew", room: "lobby" });
    expect(room.others.map((u) => u.id)).toEqual(["bob"]);
    expect(other.others.map((u) => u.id)).toEqual(["zed"]);
  });
});

describe("cursors", () => {
  function joinedRoom() {
    const { client } = setup();
    const room = client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada", { joinedAt: 1 }), wireUser("bob", { joinedAt: 2 })]);
    return { client, room, socket };
  }

  it("coalesces moves: one send at once, then the latest position once per interval", () => {
    const { room, socket } = joinedRoom();
    for (let i = 0; i < 100; i++) room.moveCursor(i, i * 2);
    expect(socket.sentOfType("presence:cursor")).toEqual([
      { type: "presence:cursor", room: "lobby", x: 0, y: 0, visible: true },
    ]);
    vi.advanceTimersByTime(49);
    expect(socket.sentOfType("presence:cursor")).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(socket.sentOfType("presence:cursor").at(-1)).toEqual({
      type: "presence:cursor",
      room: "lobby",
      x: 99,
      y: 198,
      visible: true,
    });
    vi.advanceTimersByTime(500); // nothing new to send
    expect(socket.sentOfType("presence:cursor")).toHaveLength(2);
    room.moveCursor(5, 5); // quiet for a whole interval: goes out at once
    expect(socket.sentOfType("presence:cursor")).toHaveLength(3);
  });

  it("hides the cursor at its last position", () => {
    const { room, socket } = joinedRoom();
    room.moveCursor(3, 4);
    vi.advanceTimersByTime(50);
    room.hideCursor();
    expect(socket.sentOfType("presence:cursor").at(-1)).toEqual({
      type: "presence:cursor",
      room: "lobby",
      x: 3,
      y: 4,
      visible: false,
    });
  });

  it("rejects non-finite positions", () => {
    const { room } = joinedRoom();
    expect(() => room.moveCursor(NaN, 1)).toThrow(TypeError);
  });

  it("updates cursors without touching the users snapshot", () => {
    const { room, socket } = joinedRoom();
    const users = room.users;
    const frames = /** @type {any[]} */ ([]);
    room.on("cursors", (cursors) => frames.push(cursors));
    socket.serverSend({
      type: "presence:cursors",
      room: "lobby",
      cursors: [
        { userId: "bob", x: 0.1, y: 0.2, visible: true },
        { userId: "ada", x: 9, y: 9, visible: true }, // our own: never shown
      ],
    });
    expect(room.users).toBe(users);
    expect(frames).toEqual([[{ userId: "bob", name: "Bob", color: "#1565C0", x: 0.1, y: 0.2 }]]);
    socket.serverSend({ type: "presence:cursors", room: "lobby", cursors: [{ userId: "bob", x: 0.1, y: 0.2, visible: false }] });
    expect(room.cursors).toEqual([]);
  });

  it("keeps a move made while disconnected and sends it after the rejoin", () => {
    const { room, socket } = joinedRoom();
    socket.serverClose();
    room.moveCursor(7, 8);
    expect(socket.sentOfType("presence:cursor")).toEqual([]);
    vi.advanceTimersByTime(10_000);
    const next = FakeWebSocket.last;
    next.serverOpen();
    expect(next.sent.map((m) => m.type)).toEqual(["presence:join", "presence:cursor"]);
    expect(next.sentOfType("presence:cursor")[0]).toMatchObject({ x: 7, y: 8 });
  });
});

describe("state updates", () => {
  it("sends updates at once and shows them on self before the server echoes", () => {
    const { client } = setup();
    const room = client.join("lobby", { state: { a: 1 } });
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada", { state: { a: 1 } })]);
    room.update({ b: 2, a: null });
    expect(socket.sentOfType("presence:update")).toEqual([
      { type: "presence:update", room: "lobby", state: { b: 2, a: null }, ref: "update:lobby" },
    ]);
    expect(room.self?.state).toEqual({ b: 2 });
  });

  it("keeps updates made while disconnected and sends them merged after the rejoin", () => {
    const { client } = setup();
    const room = client.join("lobby", { state: { a: 1 } });
    let socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")]);
    socket.serverClose();
    room.update({ b: 2 });
    room.update({ a: null, c: 3 });
    vi.advanceTimersByTime(10_000);
    socket = FakeWebSocket.last;
    socket.serverOpen();
    const [join, update] = socket.sent;
    expect(join).toMatchObject({ type: "presence:join", state: { b: 2, c: 3 }, user: { sessionId: "s-1" } });
    expect(update).toEqual({ type: "presence:update", room: "lobby", state: { b: 2, a: null, c: 3 }, ref: "update:lobby" });
  });

  it("refuses a state that is not an object", () => {
    const { client } = setup();
    const room = client.join("lobby");
    expect(() => room.update(/** @type {any} */ ([1]))).toThrow(TypeError);
    expect(() => client.join("x", { state: /** @type {any} */ ("no") })).toThrow(TypeError);
  });

  it("renames by joining again with the same session", () => {
    const { client } = setup();
    client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")], { sessionId: "s-9" });
    client.setName("Ada L.");
    expect(socket.sentOfType("presence:join").at(-1)).toEqual({
      type: "presence:join",
      room: "lobby",
      user: { id: "ada", name: "Ada L.", sessionId: "s-9" },
      batch: true,
      ref: "join:lobby",
    });
  });
});

describe("reconnecting", () => {
  it("reconnects after a lost connection and restores the session", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const states = /** @type {any[]} */ ([]);
    client.on("connection", (s) => states.push(s));
    const first = FakeWebSocket.last;
    first.serverOpen();
    answerJoin(first, "lobby", [wireUser("ada", { color: "#AA0000" }), wireUser("bob")], { sessionId: "s-7" });

    first.serverClose(1012);
    expect(client.connection).toBe("reconnecting");
    expect(room.status).toBe("reconnecting");
    expect(room.others.map((u) => u.id)).toEqual(["bob"]); // still shown while reconnecting
    // random() = 0.5 and the first window is 500 ms: the retry comes after 250 ms
    vi.advanceTimersByTime(249);
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.instances).toHaveLength(2);

    const second = FakeWebSocket.last;
    second.serverOpen();
    expect(second.sentOfType("presence:join")[0].user).toEqual({ id: "ada", name: "Ada", sessionId: "s-7" });
    const joined = /** @type {any[]} */ ([]);
    room.on("joined", (info) => joined.push(info));
    answerJoin(second, "lobby", [wireUser("ada", { color: "#AA0000" }), wireUser("bob")], {
      sessionId: "s-7",
      restored: true,
    });
    expect(joined).toEqual([{ restored: true }]);
    expect(room.status).toBe("joined");
    expect(states).toEqual(["connected", "reconnecting", "connected"]);
  });

  it("keeps its roster across a reconnect: an unchanged resync emits nothing and keeps every snapshot", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const first = FakeWebSocket.last;
    first.serverOpen();
    const roster = [
      wireUser("ada", { joinedAt: 1 }),
      wireUser("bob", { joinedAt: 2, state: { mood: { face: ":)", level: 3 } }, cursor: { x: 0.5, y: 0.5, visible: true } }),
    ];
    answerJoin(first, "lobby", roster, { sessionId: "s-1" });
    const users = room.users;
    const cursors = room.cursors;
    const events = /** @type {string[]} */ ([]);
    for (const event of /** @type {const} */ (["users", "cursors", "userJoined", "userLeft", "userUpdated"])) {
      room.on(event, () => events.push(event));
    }

    first.serverClose();
    vi.advanceTimersByTime(1000);
    FakeWebSocket.last.serverOpen();
    // The same users; lastSeen moved, and the state's keys come in another order.
    answerJoin(
      FakeWebSocket.last,
      "lobby",
      [
        wireUser("bob", { joinedAt: 2, lastSeen: 9, state: { mood: { level: 3, face: ":)" } }, cursor: { x: 0.5, y: 0.5, visible: true } }),
        wireUser("ada", { joinedAt: 1, lastSeen: 9 }),
      ],
      { sessionId: "s-1", restored: true },
    );
    expect(room.status).toBe("joined");
    expect(events).toEqual([]);
    expect(room.users).toBe(users);
    expect(room.cursors).toBe(cursors);
  });

  it("after a reconnect emits only the real differences: left, joined, updated, each once", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const first = FakeWebSocket.last;
    first.serverOpen();
    answerJoin(first, "lobby", [
      wireUser("ada", { joinedAt: 1 }),
      wireUser("bob", { joinedAt: 2 }),
      wireUser("cy", { joinedAt: 3 }),
      wireUser("dee", { joinedAt: 4 }),
    ]);
    const bobBefore = room.users.find((user) => user.id === "bob");
    const events = /** @type {string[]} */ ([]);
    room.on("userJoined", (user) => events.push(`joined ${user.id}`));
    room.on("userLeft", (user) => events.push(`left ${user.id}`));
    room.on("userUpdated", (user) => events.push(`updated ${user.id} ${user.name}`));
    room.on("users", (users) => events.push(`users ${users.map((user) => user.id).join(",")}`));

    first.serverClose();
    vi.advanceTimersByTime(1000);
    FakeWebSocket.last.serverOpen();
    answerJoin(FakeWebSocket.last, "lobby", [
      wireUser("ada", { joinedAt: 1 }),
      wireUser("bob", { joinedAt: 2 }), // unchanged
      wireUser("dee", { joinedAt: 4, name: "Dee Dee" }), // renamed while we were away
      wireUser("eve", { joinedAt: 5 }), // arrived while we were away
    ]); // cy left while we were away
    expect(events).toEqual(["users ada,bob,dee,eve", "left cy", "joined eve", "updated dee Dee Dee"]);
    expect(room.users.find((user) => user.id === "bob")).toBe(bobBefore);
  });

  it("waits with exponential backoff and full jitter, capped, and resets after a join", () => {
    const random = vi.fn(() => 0.999);
    const { client } = setup({ random, baseDelayMs: 100, maxDelayMs: 1000 });
    client.join("lobby");
    FakeWebSocket.last.serverClose(); // the first connect failed
    const expected = [99, 199, 399, 799, 999, 999];
    for (const delay of expected) {
      const count = FakeWebSocket.instances.length;
      vi.advanceTimersByTime(delay - 1);
      expect(FakeWebSocket.instances).toHaveLength(count);
      vi.advanceTimersByTime(1);
      expect(FakeWebSocket.instances).toHaveLength(count + 1);
      FakeWebSocket.last.serverClose();
    }
    // A successful join resets the backoff to the first window.
    vi.advanceTimersByTime(999);
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")]);
    socket.serverClose();
    const count = FakeWebSocket.instances.length;
    vi.advanceTimersByTime(99);
    expect(FakeWebSocket.instances).toHaveLength(count + 1);
  });

  it("retries at once when the browser goes online", () => {
    const { client, window } = setup({ random: () => 0.99, baseDelayMs: 60_000, maxDelayMs: 60_000 });
    client.join("lobby");
    FakeWebSocket.last.serverClose();
    expect(FakeWebSocket.instances).toHaveLength(1);
    window.dispatchEvent(new Event("online"));
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(client.connection).toBe("reconnecting");
    FakeWebSocket.last.serverOpen();
    expect(client.connection).toBe("connected");
  });

  it("retries at once when the tab becomes visible", () => {
    const { client, document } = setup({ random: () => 0.99, baseDelayMs: 60_000, maxDelayMs: 60_000 });
    client.join("lobby");
    document.setVisibility("hidden");
    FakeWebSocket.last.serverClose();
    document.setVisibility("visible");
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it("reuses the anonymous id the server gave, so the restore can match", () => {
    const { client } = setup({ user: { name: "Anon" } });
    client.join("lobby");
    let socket = FakeWebSocket.last;
    socket.serverOpen();
    expect(socket.sentOfType("presence:join")[0].user).toEqual({ name: "Anon" });
    answerJoin(socket, "lobby", [wireUser("anon-1")], { selfId: "anon-1", sessionId: "s-a" });
    socket.serverClose();
    vi.advanceTimersByTime(1000);
    socket = FakeWebSocket.last;
    socket.serverOpen();
    expect(socket.sentOfType("presence:join")[0].user).toEqual({ id: "anon-1", name: "Anon", sessionId: "s-a" });
  });

  it("sends heartbeats while connected", () => {
    const { client } = setup({ heartbeatIntervalMs: 30_000 });
    client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    vi.advanceTimersByTime(90_000);
    expect(socket.sentOfType("presence:heartbeat")).toHaveLength(3);
    socket.serverClose();
    const before = socket.sent.length;
    vi.advanceTimersByTime(90_000);
    expect(socket.sent).toHaveLength(before); // stopped with the socket
  });
});

describe("page lifecycle", () => {
  it("stores the session on pagehide and restores it on the next load, without leaving", () => {
    const { client, storage, window } = setup();
    client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")], { sessionId: "s-42" });

    window.dispatchEvent(new Event("pagehide"));
    // Not a leave for the others: the server holds the session for its unload grace.
    expect(socket.sentOfType("presence:leave")).toEqual([{ type: "presence:leave", reason: "unload" }]);
    expect(JSON.parse(storage.getItem("presenced:session:lobby") ?? "null")).toEqual({
      sessionId: "s-42",
      userId: "ada",
    });

    // The next page load in the same tab.
    const reloaded = createClient({
      url: "ws://127.0.0.1:1/ws",
      user: { id: "ada", name: "Ada" },
      WebSocket: /** @type {any} */ (FakeWebSocket),
      storage,
      window: new EventTarget(),
      document: new FakeDocument(),
    });
    reloaded.join("lobby");
    FakeWebSocket.last.serverOpen();
    expect(FakeWebSocket.last.sentOfType("presence:join")[0].user).toEqual({ id: "ada", name: "Ada", sessionId: "s-42" });
    // Claimed: a duplicated tab (a copy of this storage) would start a new session.
    expect(storage.getItem("presenced:session:lobby")).toBeNull();
  });

  it("sends nothing on pagehide when the page is kept in the back/forward cache", () => {
    const { client, window } = setup();
    client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")], { sessionId: "s-42" });
    const kept = Object.assign(new Event("pagehide"), { persisted: true });
    window.dispatchEvent(kept);
    expect(socket.sentOfType("presence:leave")).toEqual([]);
  });

  it("does not restore another user's stored session", () => {
    const storage = new MemoryStorage();
    storage.setItem("presenced:session:lobby", JSON.stringify({ sessionId: "s-old", userId: "someone-else" }));
    setup({ storage }).client.join("lobby");
    FakeWebSocket.last.serverOpen();
    expect(FakeWebSocket.last.sentOfType("presence:join")[0].user).toEqual({ id: "ada", name: "Ada" });
  });

  it("leaves explicitly on close() and stops reconnecting", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")]);
    client.close();
    expect(socket.sent.at(-1)).toEqual({ type: "presence:leave" });
    expect(socket.closedByClient?.code).toBe(1000);
    expect(client.connection).toBe("disconnected");
    expect(room.status).toBe("left");
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it("leaves one room with leave()", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada"), wireUser("bob")]);
    room.leave();
    expect(socket.sent.at(-1)).toEqual({ type: "presence:leave", room: "lobby" });
    expect(room.users).toEqual([]);
    expect(client.rooms.has("lobby")).toBe(false);
    expect(() => room.update({ a: 1 })).toThrow();
  });
});

describe("away", () => {
  function joinedRoom(awayAfterMs = 60_000) {
    const ctx = setup({ awayAfterMs });
    const room = ctx.client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")]);
    return { ...ctx, room, socket };
  }

  it("says away after the tab has been hidden for awayAfterMs, and back when visible", () => {
    const { document, socket, client } = joinedRoom();
    document.setVisibility("hidden");
    vi.advanceTimersByTime(59_999);
    expect(socket.sentOfType("presence:update")).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(socket.sentOfType("presence:update")).toEqual([
      { type: "presence:update", room: "lobby", state: { away: true }, ref: "update:lobby" },
    ]);
    expect(client.away).toBe(true);
    document.setVisibility("visible");
    expect(socket.sentOfType("presence:update").at(-1)?.state).toEqual({ away: null });
    expect(client.away).toBe(false);
  });

  it("hides a shown cursor when the tab is hidden, and sends none when none was shown", () => {
    const { document, socket, room } = joinedRoom();
    room.moveCursor(0.5, 0.25);
    expect(socket.sentOfType("presence:cursor").at(-1)).toMatchObject({ visible: true });
    document.setVisibility("hidden");
    vi.advanceTimersByTime(1_000); // past the cursor interval, long before away
    expect(socket.sentOfType("presence:cursor").at(-1)).toMatchObject({ x: 0.5, y: 0.25, visible: false });

    const other = joinedRoom();
    other.document.setVisibility("hidden");
    vi.advanceTimersByTime(61_000);
    expect(other.socket.sentOfType("presence:cursor")).toEqual([]);
  });

  it("does nothing for a short glance away", () => {
    const { document, socket } = joinedRoom();
    document.setVisibility("hidden");
    vi.advanceTimersByTime(30_000);
    document.setVisibility("visible");
    vi.advanceTimersByTime(120_000);
    expect(socket.sentOfType("presence:update")).toEqual([]);
  });

  it("tells a new session that the tab is away after a reconnect", () => {
    const { document, socket } = joinedRoom(1000);
    document.setVisibility("hidden");
    socket.serverClose();
    vi.advanceTimersByTime(1000); // away while disconnected; the retry is due too
    const next = FakeWebSocket.last;
    next.serverOpen();
    const join = next.sentOfType("presence:join")[0];
    expect(join.state).toBeUndefined(); // away travels only in presence:update
    expect(next.sentOfType("presence:update")).toEqual([
      { type: "presence:update", room: "lobby", state: { away: true }, ref: "update:lobby" },
    ]);
  });

  it("exposes the server's aggregated flag as user.away, not the local guess", () => {
    const { document, room, socket } = joinedRoom(10);
    document.setVisibility("hidden");
    vi.advanceTimersByTime(10);
    expect(room.self?.away).toBe(false); // another tab of ours may be visible
    socket.serverSend({
      type: "presence:diff",
      room: "lobby",
      joined: [],
      left: [],
      updated: [wireUser("ada", { state: { away: true } })],
    });
    expect(room.self?.away).toBe(true);
  });
});

describe("tokens", () => {
  it("sends a string token with every join, a rename's too", () => {
    const { client } = setup({ token: "t-1" });
    client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")]);
    client.setName("Ada L.");
    expect(socket.sentOfType("presence:join").map((join) => join.token)).toEqual(["t-1", "t-1"]);
  });

  it("calls a token function before every connect, so a reconnect carries a fresh token", () => {
    let issued = 0;
    const token = vi.fn(() => `t-${++issued}`);
    const { client } = setup({ token });
    client.join("lobby");
    expect(token).toHaveBeenCalledTimes(1);
    const first = FakeWebSocket.last;
    first.serverOpen();
    answerJoin(first, "lobby", [wireUser("ada")]);
    expect(first.sentOfType("presence:join")[0].token).toBe("t-1");

    first.serverClose(1006);
    vi.advanceTimersByTime(1000);
    expect(token).toHaveBeenCalledTimes(2);
    const second = FakeWebSocket.last;
    second.serverOpen();
    expect(second.sentOfType("presence:join")[0].token).toBe("t-2");
  });

  it("waits for a token promise before opening the socket", async () => {
    /** @type {(token: string) => void} */
    let resolve = () => {};
    const token = () => new Promise((r) => (resolve = r));
    const { client } = setup({ token });
    client.join("lobby");
    expect(FakeWebSocket.instances).toHaveLength(0);
    expect(client.connection).toBe("connecting");
    client.connect(); // already connecting: no second token request, no second socket
    resolve("t-async");
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeWebSocket.instances).toHaveLength(1);
    FakeWebSocket.last.serverOpen();
    expect(FakeWebSocket.last.sentOfType("presence:join")[0].token).toBe("t-async");
  });

  it("retries with backoff when the token function fails, and reports the failure", async () => {
    const reported = /** @type {unknown[]} */ ([]);
    const original = globalThis.reportError;
    globalThis.reportError = (error) => reported.push(error);
    try {
      let calls = 0;
      const token = () => {
        calls += 1;
        return calls === 1 ? Promise.reject(new Error("auth endpoint down")) : Promise.resolve("t-ok");
      };
      const { client } = setup({ token });
      client.join("lobby");
      await vi.advanceTimersByTimeAsync(0);
      expect(reported.map(String)).toEqual(["Error: auth endpoint down"]);
      expect(client.connection).toBe("reconnecting");
      expect(FakeWebSocket.instances).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1000);
      expect(FakeWebSocket.instances).toHaveLength(1);
      FakeWebSocket.last.serverOpen();
      expect(FakeWebSocket.last.sentOfType("presence:join")[0].token).toBe("t-ok");
    } finally {
      globalThis.reportError = original;
    }
  });

  it("drops a token that arrives after close()", async () => {
    /** @type {(token: string) => void} */
    let resolve = () => {};
    const { client } = setup({ token: () => new Promise((r) => (resolve = r)) });
    client.join("lobby");
    client.close();
    resolve("late");
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeWebSocket.instances).toHaveLength(0);
    expect(client.connection).toBe("disconnected");
  });
});

describe("errors", () => {
  it("gives up a join the server refuses and reports why", () => {
    const { client } = setup();
    const room = client.join("vip");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    const errors = /** @type {any[]} */ ([]);
    room.on("error", (e) => errors.push(e.code));
    client.on("error", (e) => errors.push(`client:${e.code}`));
    socket.serverSend({ type: "presence:error", code: "forbidden", message: "no", ref: "join:vip" });
    expect(errors).toEqual(["forbidden", "client:forbidden"]);
    expect(room.status).toBe("refused");
    socket.serverClose();
    vi.advanceTimersByTime(10_000);
    FakeWebSocket.last.serverOpen();
    expect(FakeWebSocket.last.sentOfType("presence:join")).toEqual([]); // not rejoined
  });

  it("ends a join refused as unauthorized in `refused`, with the code and message, not an empty roster", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const statuses = /** @type {any[]} */ ([]);
    room.on("status", (status) => statuses.push([status, room.refusal?.code ?? null]));
    const roomErrors = /** @type {any[]} */ ([]);
    room.on("error", (error) => roomErrors.push(error));
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    const refusal = { type: "presence:error", code: "unauthorized", message: "a token is required to join", ref: "join:lobby" };
    socket.serverSend(refusal);

    expect(room.status).toBe("refused");
    expect(room.refusal).toEqual(refusal);
    expect(statuses).toEqual([["refused", "unauthorized"]]);
    expect(roomErrors).toEqual([refusal]);
    expect(client.errors).toEqual([refusal]);
    expect(client.rooms.has("lobby")).toBe(false);
    expect(() => room.update({ a: 1 })).toThrow(/refused/);
    room.leave(); // a no-op: nothing to leave
    expect(socket.sentOfType("presence:leave")).toEqual([]);
    expect(room.status).toBe("refused");

    // Joining the name again is a new try, with a new room.
    const again = client.join("lobby");
    expect(again).not.toBe(room);
    expect(again.status).toBe("joining");
    expect(again.refusal).toBeNull();
    expect(socket.sentOfType("presence:join")).toHaveLength(2);
  });

  it("ends a rejoin refused after a reconnect in `refused`", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const first = FakeWebSocket.last;
    first.serverOpen();
    answerJoin(first, "lobby", [wireUser("ada"), wireUser("bob")]);
    first.serverClose();
    vi.advanceTimersByTime(1000);
    const second = FakeWebSocket.last;
    second.serverOpen();
    expect(room.status).toBe("reconnecting");
    second.serverSend({ type: "presence:error", code: "unauthorized", message: "invalid token: ExpiredSignature", ref: "join:lobby" });
    expect(room.status).toBe("refused");
    expect(room.refusal?.message).toBe("invalid token: ExpiredSignature");
    expect(room.users).toEqual([]);
  });

  it("keeps every presence:error in client.errors, the last 20, with a stable identity between errors", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")]);
    const seen = /** @type {any[]} */ ([]);
    client.on("error", (error) => seen.push(error.code));
    const before = client.errors;
    expect(before).toEqual([]);
    socket.serverSend({ type: "presence:error", code: "invalid_json", message: "not JSON" }); // no ref, no room
    socket.serverSend({ type: "presence:error", code: "too_large", message: "state", ref: "update:lobby" });
    expect(seen).toEqual(["invalid_json", "too_large"]);
    expect(client.errors.map((error) => error.code)).toEqual(["invalid_json", "too_large"]);
    expect(client.errors).toBe(client.errors);
    expect(client.errors).not.toBe(before);
    expect(room.status).toBe("joined"); // an update's error does not end the room
    for (let i = 0; i < 25; i++) socket.serverSend({ type: "presence:error", code: "rate_limited", message: `${i}` });
    expect(client.errors).toHaveLength(20);
    expect(client.errors.at(-1)?.message).toBe("24");
  });

  it("goes joining, joined, reconnecting, joined, left, each once, with a status event", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const statuses = [room.status];
    room.on("status", (status) => statuses.push(status));
    const first = FakeWebSocket.last;
    first.serverOpen();
    answerJoin(first, "lobby", [wireUser("ada")]);
    first.serverClose();
    vi.advanceTimersByTime(1000);
    FakeWebSocket.last.serverOpen();
    answerJoin(FakeWebSocket.last, "lobby", [wireUser("ada")], { restored: true });
    room.leave();
    expect(statuses).toEqual(["joining", "joined", "reconnecting", "joined", "left"]);
  });

  it("joins as a new session when the server says our session was taken over", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "lobby", [wireUser("ada")], { sessionId: "s-dup" });
    room.update({ a: 1 });
    socket.serverSend({ type: "presence:error", code: "not_joined", message: "", ref: "update:lobby" });
    const rejoin = socket.sentOfType("presence:join").at(-1);
    expect(rejoin.user).toEqual({ id: "ada", name: "Ada" });
    expect(rejoin.state).toEqual({ a: 1 });
  });

  it("ignores frames that are not JSON", () => {
    const { client } = setup();
    client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    expect(() => socket.onmessage?.({ data: "not json" })).not.toThrow();
  });

  it("needs a WebSocket implementation", () => {
    expect(() => createClient({ url: "ws://127.0.0.1:1/ws", WebSocket: /** @type {any} */ (undefined) })).toThrow(
      /WebSocket/,
    );
  });
});

describe("large rooms: views, counts and spectators (issue 14)", () => {
  it("sends the view and the spectator flag with every join: the first, a rejoin and a rename", () => {
    const { client } = setup();
    const listed = client.join("big", { view: { list: 20 } });
    const watching = client.join("stage", { spectator: true, view: "full" });
    const first = FakeWebSocket.last;
    first.serverOpen();
    expect(first.sentOfType("presence:join")).toEqual([
      { type: "presence:join", room: "big", user: { id: "ada", name: "Ada" }, view: { list: 20 }, batch: true, ref: "join:big" },
      { type: "presence:join", room: "stage", user: { id: "ada", name: "Ada" }, spectator: true, batch: true, ref: "join:stage" },
    ]);
    answerJoin(first, "big", [wireUser("ada")], { sessionId: "s-big", count: 1, spectators: 0 });
    answerJoin(first, "stage", [wireUser("bob")], { sessionId: "s-stage", count: 1, spectators: 1 });
    expect(listed.view).toEqual({ list: 20 });
    expect(listed.isSpectator).toBe(false);
    expect(watching.view).toBe("full");
    expect(watching.isSpectator).toBe(true);

    client.setName("Ada L.");
    const renames = first.sentOfType("presence:join").slice(2);
    expect(renames.map((join) => [join.room, join.view, join.spectator, join.user.sessionId])).toEqual([
      ["big", { list: 20 }, undefined, "s-big"],
      ["stage", undefined, true, "s-stage"],
    ]);

    first.serverClose(1012);
    vi.advanceTimersByTime(1000);
    const second = FakeWebSocket.last;
    second.serverOpen();
    // The rejoin restores the session with the same view and flag.
    expect(second.sentOfType("presence:join").map((join) => [join.room, join.view, join.spectator, join.user.sessionId])).toEqual([
      ["big", { list: 20 }, undefined, "s-big"],
      ["stage", undefined, true, "s-stage"],
    ]);
  });

  it("restores a spectator after a reload as a spectator", () => {
    const { client, storage, window } = setup();
    client.join("stage", { spectator: true });
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(socket, "stage", [wireUser("bob")], { sessionId: "s-watch", count: 1, spectators: 1 });
    window.dispatchEvent(new Event("pagehide"));

    const reloaded = createClient({
      url: "ws://127.0.0.1:1/ws",
      user: { id: "ada", name: "Ada" },
      WebSocket: /** @type {any} */ (FakeWebSocket),
      storage,
      window: new EventTarget(),
      document: new FakeDocument(),
    });
    reloaded.join("stage", { spectator: true });
    FakeWebSocket.last.serverOpen();
    expect(FakeWebSocket.last.sentOfType("presence:join")[0]).toMatchObject({
      spectator: true,
      user: { id: "ada", sessionId: "s-watch" },
    });
  });

  it("takes a list view's count and spectators from currentUsers, then from presence:count", () => {
    const { client } = setup();
    const room = client.join("big", { view: { list: 2 } });
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    const counts = /** @type {any[]} */ ([]);
    room.on("count", (numbers) => counts.push(numbers));
    expect([room.count, room.spectators]).toEqual([0, 0]);

    answerJoin(
      socket,
      "big",
      [wireUser("bob", { joinedAt: 1 }), wireUser("cy", { joinedAt: 2 }), wireUser("ada", { joinedAt: 9 })],
      { count: 1200, spectators: 4 },
    );
    expect(room.users.map((user) => user.id)).toEqual(["bob", "cy", "ada"]);
    expect([room.count, room.spectators]).toEqual([1200, 4]);
    expect(counts).toEqual([{ count: 1200, spectators: 4 }]);

    socket.serverSend({ type: "presence:count", room: "big", count: 1201, spectators: 4 });
    expect(room.count).toBe(1201);
    socket.serverSend({ type: "presence:count", room: "big", count: 1201, spectators: 4 }); // no change: no event
    socket.serverSend({ type: "presence:count", room: "big", count: 1201, spectators: 5 });
    expect(counts).toEqual([
      { count: 1200, spectators: 4 },
      { count: 1201, spectators: 4 },
      { count: 1201, spectators: 5 },
    ]);

    // A listed user leaves and the next one enters the window: the window changes, the
    // count is the server's and waits for its next presence:count.
    socket.serverSend({ type: "presence:diff", room: "big", left: ["bob"], joined: [wireUser("dee", { joinedAt: 3 })], updated: [] });
    expect(room.users.map((user) => user.id)).toEqual(["cy", "dee", "ada"]);
    expect(room.count).toBe(1201);
    expect(counts).toHaveLength(3);
    socket.serverSend({ type: "presence:count", room: "big", count: 1200, spectators: 5 });
    expect(room.count).toBe(1200);

    // A frame that is not a count changes nothing.
    socket.serverSend({ type: "presence:count", room: "big", count: -3, spectators: "many" });
    expect([room.count, room.spectators]).toEqual([1200, 5]);

    room.leave();
    expect([room.count, room.spectators]).toEqual([0, 0]);
    expect(counts.at(-1)).toEqual({ count: 0, spectators: 0 });
  });

  it("counts a full view's roster, kept current by every roster event, with the server's spectators", () => {
    const { client } = setup();
    const room = client.join("lobby");
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    const counts = /** @type {any[]} */ ([]);
    room.on("count", (numbers) => counts.push(numbers));
    answerJoin(socket, "lobby", [wireUser("ada"), wireUser("bob")], { count: 2, spectators: 3 });
    expect([room.count, room.spectators]).toEqual([2, 3]);

    socket.serverSend({ type: "presence:diff", room: "lobby", left: [], joined: [wireUser("cy")], updated: [] });
    expect(room.count).toBe(3);
    socket.serverSend({ type: "presence:diff", room: "lobby", left: [], joined: [], updated: [wireUser("cy", { name: "Cy" })] });
    socket.serverSend({ type: "presence:userLeft", room: "lobby", userId: "bob" });
    expect(room.count).toBe(2);
    expect(counts).toEqual([
      { count: 2, spectators: 3 },
      { count: 3, spectators: 3 },
      { count: 2, spectators: 3 },
    ]);
  });

  it("falls back to the number of listed users and 0 spectators when the server sends no count", () => {
    // An older server ignores `view` and sends the whole roster without a count.
    const { client } = setup();
    const room = client.join("big", { view: { list: 1 } });
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    const counts = /** @type {any[]} */ ([]);
    room.on("count", (numbers) => counts.push(numbers));
    answerJoin(socket, "big", [wireUser("ada"), wireUser("bob"), wireUser("cy")]);
    expect([room.count, room.spectators]).toEqual([3, 0]);
    socket.serverSend({ type: "presence:userJoined", room: "big", user: wireUser("dee") });
    expect(room.count).toBe(4);
    expect(counts).toEqual([
      { count: 3, spectators: 0 },
      { count: 4, spectators: 0 },
    ]);
  });

  it("shows a spectator the room without itself: no self, update throws, moves and away send nothing", () => {
    const { client, document } = setup({ awayAfterMs: 1000 });
    const room = client.join("stage", { spectator: true, view: { list: 2 } });
    const socket = FakeWebSocket.last;
    socket.serverOpen();
    answerJoin(
      socket,
      "stage",
      [wireUser("bob", { joinedAt: 1, cursor: { x: 0.5, y: 0.5, visible: true } }), wireUser("cy", { joinedAt: 2 })],
      { sessionId: "s-watch", count: 40, spectators: 7 },
    );
    expect(room.status).toBe("joined");
    expect(room.sessionId).toBe("s-watch");
    expect(room.self).toBeNull();
    expect(room.users.map((user) => [user.id, user.isSelf])).toEqual([
      ["bob", false],
      ["cy", false],
    ]);
    expect(room.others).toEqual(room.users);
    expect(room.cursors.map((cursor) => cursor.userId)).toEqual(["bob"]);
    expect([room.count, room.spectators]).toEqual([40, 7]);

    expect(() => room.update({ typing: true })).toThrow(/spectator/);
    room.moveCursor(0.1, 0.2);
    room.hideCursor();
    document.setVisibility("hidden");
    vi.advanceTimersByTime(5000);
    expect(client.away).toBe(true);
    expect(socket.sent.map((message) => message.type)).toEqual(["presence:join"]);
  });

  it("refuses, at join, a view the server would refuse and a spectator with state", () => {
    const { client } = setup();
    for (const view of [{ list: 1001 }, { list: -1 }, { list: 2.5 }, { list: "20" }, "list:20", null]) {
      expect(() => client.join("big", { view: /** @type {any} */ (view) })).toThrow(TypeError);
    }
    expect(() => client.join("stage", { spectator: true, state: { typing: true } })).toThrow(/spectator/);
    expect(client.rooms.size).toBe(0);
    expect(client.join("big", { view: { list: 0 } }).view).toEqual({ list: 0 });
    expect(client.join("top", { view: { list: 1000 } }).view).toEqual({ list: 1000 });
  });
});

describe("the default url", () => {
  const page = { protocol: "https:", host: "app.example:8443" };

  it("is /ws of the server that served the SDK from /sdk/, not the page's", () => {
    expect(defaultUrl("http://127.0.0.1:8080/sdk/client.js", page)).toBe("ws://127.0.0.1:8080/ws");
    expect(defaultUrl("https://presence.example/sdk/client.js", page)).toBe("wss://presence.example/ws");
    // Behind a proxy that mounts presenced under a prefix.
    expect(defaultUrl("https://example.org/presence/sdk/client.js", undefined)).toBe("wss://example.org/presence/ws");
  });

  it("is /ws of the page's host for a bundled or local copy", () => {
    expect(defaultUrl("https://cdn.example/assets/index-3f2a.js", page)).toBe("wss://app.example:8443/ws");
    expect(defaultUrl("file:///app/node_modules/@presenced/client/src/client.js", { protocol: "http:", host: "localhost:5173" })).toBe(
      "ws://localhost:5173/ws",
    );
    expect(defaultUrl(undefined, page)).toBe("wss://app.example:8443/ws");
  });

  it("asks for a url outside a page", () => {
    expect(() => defaultUrl("file:///x/client.js", undefined)).toThrow(/pass `url`/);
  });
});

describe("helpers", () => {
  it("backoffDelay stays within the capped, doubling window", () => {
    const options = { baseDelayMs: 500, maxDelayMs: 8000 };
    expect(backoffDelay(0, options, () => 0)).toBe(0);
    expect(backoffDelay(0, options, () => 0.9999)).toBe(499);
    expect(backoffDelay(3, options, () => 0.9999)).toBe(3999);
    expect(backoffDelay(10, options, () => 0.9999)).toBe(7999);
    expect(backoffDelay(5000, options, () => 0.5)).toBe(4000);
  });

  it("initials takes the first letters of the first and last words", () => {
    expect(initials("Ada Lovelace")).toBe("AL");
    expect(initials("ada")).toBe("A");
    expect(initials("  émile  zola ")).toBe("ÉZ");
    expect(initials("")).toBe("?");
    expect(initials("👩🏽‍💻 Dev")).toBe("👩🏽‍💻D");
  });
});
