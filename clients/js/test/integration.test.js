// Proves the SDK against the real presenced binary: rosters converge, cursor sends are
// coalesced, a dropped connection or a reload restores without the others seeing a
// leave, a closed tab leaves after the grace, a restarted server is rejoined, and away
// shows only when every tab of a user is hidden, and a join the server refuses (no token
// for a server with --jwt-secret) ends in the room status `refused`.

import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createClient } from "../src/index.js";
import { FakeDocument, MemoryStorage } from "./support/fake-websocket.js";
import { startPresenced } from "./support/presenced.js";
import { TEST_JWT_SECRET, nowSeconds, signToken } from "./support/jwt.js";

/** @typedef {import("../src/index.js").PresenceClient} PresenceClient */
/** @typedef {import("../src/index.js").Room} Room */

const GRACE_MS = 2000;

/** @type {import("./support/presenced.js").RunningServer} */
let server;
/** @type {PresenceClient[]} */
let clients = [];
/** @type {Array<{ close: () => void }>} */
let proxies = [];

beforeAll(async () => {
  server = await startPresenced({ reconnectGrace: `${GRACE_MS}ms` });
});

afterAll(async () => {
  await server?.stop();
});

afterEach(() => {
  for (const client of clients) client.close();
  for (const proxy of proxies) proxy.close();
  clients = [];
  proxies = [];
});

/**
 * A client in Node with the `ws` package. Every frame it sends is recorded in `sent`.
 * @param {{ id?: string, name?: string }} user
 * @param {Partial<import("../src/index.js").ClientOptions>} [options]
 */
function connect(user, options = {}) {
  /** @type {any[]} */
  const sent = [];
  class RecordingWebSocket extends WebSocket {
    /**
     * @override
     * @param {any} data
     */
    send(data) {
      sent.push(JSON.parse(String(data)));
      super.send(data);
    }
  }
  const client = createClient({
    url: server.wsUrl,
    user,
    WebSocket: /** @type {any} */ (RecordingWebSocket),
    storage: new MemoryStorage(),
    window: null,
    document: null,
    baseDelayMs: 50,
    maxDelayMs: 300,
    ...options,
  });
  clients.push(client);
  return Object.assign(client, { sent });
}

/**
 * Waits until `check` returns something truthy, polling every 10 ms.
 * @template T
 * @param {() => T} check
 * @param {string} what for the timeout message
 * @param {number} [timeoutMs]
 * @returns {Promise<T>}
 */
async function waitFor(check, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** @param {Room} room */
const otherIds = (room) => room.others.map((user) => user.id).sort();

/**
 * A TCP proxy to the server, whose connections the test can cut like a network drop
 * (no close frame), which can stay down (dropping every new connection at once) until
 * it is brought up again, and which can stop accepting like a closed tab that never returns.
 * @param {number} [port] the server's port
 * @returns {Promise<{ url: string, cut: () => void, setDown: (down: boolean) => void, close: () => void }>}
 */
async function startProxy(port = server.port) {
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  let down = false;
  const listener = net.createServer((downstream) => {
    if (down) {
      downstream.destroy();
      return;
    }
    const upstream = net.connect(port, "127.0.0.1");
    for (const socket of [downstream, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
    }
    downstream.pipe(upstream).pipe(downstream);
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  await new Promise((resolve) => listener.listen(0, "127.0.0.1", () => resolve(undefined)));
  const proxyPort = /** @type {net.AddressInfo} */ (listener.address()).port;
  const cut = () => {
    for (const socket of sockets) socket.destroy();
  };
  const proxy = {
    url: `ws://127.0.0.1:${proxyPort}/ws`,
    cut,
    setDown: (/** @type {boolean} */ value) => {
      down = value;
      if (down) cut();
    },
    close: () => {
      listener.close();
      cut();
    },
  };
  proxies.push(proxy);
  return proxy;
}

describe("rosters", () => {
  it("converge: everyone sees everyone else once, with a color", async () => {
    const ada = connect({ id: "ada", name: "Ada" }).join("converge");
    const bob = connect({ id: "bob", name: "Bob" }).join("converge");
    const cy = connect({ id: "cy", name: "Cy" }).join("converge");
    await waitFor(
      () => [ada, bob, cy].every((room) => room.others.length === 2),
      "three rosters of three",
    );
    expect(otherIds(ada)).toEqual(["bob", "cy"]);
    expect(otherIds(bob)).toEqual(["ada", "cy"]);
    expect(otherIds(cy)).toEqual(["ada", "bob"]);
    expect(ada.self).toMatchObject({ id: "ada", name: "Ada", isSelf: true });
    const colors = ada.users.map((user) => user.color);
    for (const color of colors) expect(color).toMatch(/^#[0-9A-Fa-f]{6}$/);
    expect(new Set(colors).size).toBe(3);
    expect(bob.users.find((u) => u.id === "ada")?.color).toBe(ada.self?.color);

    // A second tab of bob: still one bob. (A second session is not itself broadcast,
    // so an update from that tab is the barrier that shows the server has it.)
    const bobTab2 = connect({ id: "bob", name: "Bob" }).join("converge");
    await waitFor(() => bobTab2.status === "joined", "bob's second tab joined");
    expect(bobTab2.self?.sessions).toBe(2);
    bobTab2.update({ tab: 2 });
    await waitFor(() => ada.others.find((u) => u.id === "bob")?.state.tab === 2, "the second tab's update");
    expect(ada.others.filter((u) => u.id === "bob")).toHaveLength(1);
    expect(ada.others.find((u) => u.id === "bob")?.sessions).toBe(2);

    // An explicit leave is seen at once, long before the grace.
    const leftAt = Date.now();
    cy.leave();
    await waitFor(() => otherIds(ada).length === 1 && otherIds(bob).length === 1, "cy gone for ada and bob");
    expect(Date.now() - leftAt).toBeLessThan(GRACE_MS);
    expect(otherIds(ada)).toEqual(["bob"]);
  });

  it("carry state updates and renames to the others", async () => {
    const adaClient = connect({ id: "ada", name: "Ada" });
    const ada = adaClient.join("updates", { state: { mood: "calm" } });
    const bob = connect({ id: "bob", name: "Bob" }).join("updates");
    await waitFor(() => bob.others.find((u) => u.id === "ada")?.state.mood === "calm", "ada's initial state");
    ada.update({ mood: null, typing: true });
    await waitFor(() => bob.others.find((u) => u.id === "ada")?.state.typing === true, "ada's update");
    expect(bob.others.find((u) => u.id === "ada")?.state).toEqual({ typing: true });
    adaClient.setName("Ada L.");
    await waitFor(() => bob.others.find((u) => u.id === "ada")?.name === "Ada L.", "ada's new name");
  });
});

describe("closing", () => {
  it("can close a client that is still connecting", async () => {
    const client = connect({ id: "ada", name: "Ada" });
    client.join("early");
    expect(client.connection).toBe("connecting");
    client.close();
    expect(client.connection).toBe("disconnected");
    // `ws` reports the aborted handshake on the next tick; an unhandled "error" there
    // would fail the run. Let that tick pass.
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.connection).toBe("disconnected");
  });
});

describe("cursors", () => {
  it("coalesce sends and arrive at the latest position", async () => {
    const adaClient = connect({ id: "ada", name: "Ada" }, { cursorIntervalMs: 50 });
    const ada = adaClient.join("cursors");
    const bob = connect({ id: "bob", name: "Bob" }).join("cursors");
    let frames = 0;
    bob.on("cursors", () => (frames += 1));
    await waitFor(() => ada.status === "joined" && bob.others.length === 1, "both joined");

    // A burst within one interval: one send at once, one for the latest at its end.
    for (let i = 0; i <= 100; i++) ada.moveCursor(i / 100, 0.5);
    expect(adaClient.sent.filter((m) => m.type === "presence:cursor")).toHaveLength(1);
    await waitFor(() => bob.cursors[0]?.x === 1, "bob sees the end of the burst");
    expect(adaClient.sent.filter((m) => m.type === "presence:cursor")).toHaveLength(2);

    // A steady stream for 400 ms: at most one send per interval.
    const startedAt = Date.now();
    let moves = 0;
    while (Date.now() - startedAt < 400) {
      moves += 1;
      ada.moveCursor(0.25, moves / 1000);
      await new Promise((resolve) => setTimeout(resolve, 4));
    }
    const elapsed = Date.now() - startedAt;
    const last = moves / 1000;
    await waitFor(() => bob.cursors[0]?.y === last, "bob sees the latest position");
    const sends = adaClient.sent.filter((m) => m.type === "presence:cursor").length - 2;
    expect(moves).toBeGreaterThan(20);
    expect(sends).toBeLessThanOrEqual(Math.ceil(elapsed / 50) + 2);
    expect(frames).toBeLessThan(moves);
    expect(bob.cursors).toEqual([{ userId: "ada", name: "Ada", color: ada.self?.color, x: 0.25, y: last }]);

    ada.hideCursor();
    await waitFor(() => bob.cursors.length === 0, "ada's cursor hidden");
  });
});

describe("reconnecting", () => {
  it("restores after a dropped connection, and the others see no leave", async () => {
    const proxy = await startProxy();
    const adaClient = connect({ id: "ada", name: "Ada" }, { url: proxy.url });
    const ada = adaClient.join("restore", { state: { mood: "calm" } });
    const bob = connect({ id: "bob", name: "Bob" }).join("restore");
    await waitFor(() => bob.others.length === 1 && ada.others.length === 1, "both see each other");
    const before = ada.self;
    /** @type {string[]} */
    const bobSawLeave = [];
    bob.on("userLeft", (user) => bobSawLeave.push(user.id));
    bob.on("users", (users) => {
      if (!users.some((user) => user.id === "ada")) bobSawLeave.push("ada (missing from roster)");
    });
    /** @type {Array<{ restored: boolean }>} */
    const joins = [];
    ada.on("joined", (info) => joins.push(info));
    /** @type {string[]} */
    const states = [];
    adaClient.on("connection", (state) => states.push(state));

    // Made while disconnected (the moment the drop is noticed): sent after the restore.
    adaClient.on("connection", (state) => {
      if (state !== "reconnecting") return;
      ada.update({ mood: "busy" });
      ada.moveCursor(0.4, 0.6);
    });

    const cutAt = Date.now();
    proxy.cut();
    await waitFor(() => joins.length > 0, "ada rejoined");
    expect(joins[0]).toEqual({ restored: true });
    expect(states).toEqual(["reconnecting", "connected"]);
    expect(ada.self).toMatchObject({ color: before?.color, joinedAt: before?.joinedAt });
    await waitFor(() => bob.others[0]?.state.mood === "busy", "the offline update reached bob");
    await waitFor(() => bob.cursors[0]?.x === 0.4, "the offline cursor move reached bob");

    // The absence of a leave can only be seen by waiting out the grace.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, GRACE_MS + 500 - (Date.now() - cutAt))));
    expect(bobSawLeave).toEqual([]);
    expect(otherIds(bob)).toEqual(["ada"]);
  });

  it("keeps the roster across a reconnect: only what changed meanwhile is told, once", async () => {
    const proxy = await startProxy();
    const ada = connect({ id: "ada", name: "Ada" }, { url: proxy.url }).join("resync");
    const bob = connect({ id: "bob", name: "Bob" }).join("resync");
    const cy = connect({ id: "cy", name: "Cy" }).join("resync");
    await waitFor(() => ada.others.length === 2 && bob.others.length === 2, "three in the room");
    /** @type {string[]} */
    const told = [];
    ada.on("userJoined", (user) => told.push(`joined ${user.id}`));
    ada.on("userLeft", (user) => told.push(`left ${user.id}`));
    ada.on("userUpdated", (user) => told.push(`updated ${user.id}`));
    /** @type {Array<{ restored: boolean }>} */
    const joins = [];
    ada.on("joined", (info) => joins.push(info));

    // Ada's network goes down; meanwhile cy leaves, dee arrives and bob changes his state.
    proxy.setDown(true);
    await waitFor(() => ada.status === "reconnecting", "ada noticed the drop");
    cy.leave();
    const dee = connect({ id: "dee", name: "Dee" }).join("resync");
    await waitFor(() => dee.status === "joined", "dee joined");
    bob.update({ typing: true });
    await waitFor(
      () => otherIds(dee).join() === "ada,bob" && dee.others.find((user) => user.id === "bob")?.state.typing === true,
      "the changes reached dee",
    );
    proxy.setDown(false);

    await waitFor(() => joins.length > 0, "ada rejoined");
    expect(joins[0]).toEqual({ restored: true });
    expect(otherIds(ada)).toEqual(["bob", "dee"]);
    expect(told.sort()).toEqual(["joined dee", "left cy", "updated bob"]);
  });

  it("restores after a reload: the session id survives in the tab's storage", async () => {
    const proxy = await startProxy();
    const storage = new MemoryStorage();
    const tab = new EventTarget();
    const before = connect({ id: "ada", name: "Ada" }, { url: proxy.url, storage, window: tab }).join("reload");
    const bob = connect({ id: "bob", name: "Bob" }).join("reload");
    await waitFor(() => bob.others.length === 1 && before.status === "joined", "both joined");
    /** @type {string[]} */
    const bobSawLeave = [];
    bob.on("userLeft", (user) => bobSawLeave.push(user.id));

    // The page goes away: pagehide, then the socket dies with the page.
    tab.dispatchEvent(new Event("pagehide"));
    proxy.close();
    const after = connect({ id: "ada", name: "Ada" }, { storage }).join("reload");
    /** @type {Array<{ restored: boolean }>} */
    const joins = [];
    after.on("joined", (info) => joins.push(info));
    await waitFor(() => joins.length > 0, "the reloaded page joined");
    expect(joins[0]).toEqual({ restored: true });
    expect(after.sessionId).toBe(before.sessionId);

    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 500));
    expect(bobSawLeave).toEqual([]);
    expect(otherIds(bob)).toEqual(["ada"]);
  });

  it("restores an anonymous user under the id the server gave it", async () => {
    const proxy = await startProxy();
    const anon = connect({ name: "Anon" }, { url: proxy.url }).join("anon");
    await waitFor(() => anon.self, "anon joined");
    const id = anon.self?.id;
    expect(id).toMatch(/^anon-/);
    /** @type {Array<{ restored: boolean }>} */
    const joins = [];
    anon.on("joined", (info) => joins.push(info));
    proxy.cut();
    await waitFor(() => joins.length > 0, "anon rejoined");
    expect(joins[0]).toEqual({ restored: true });
    expect(anon.self?.id).toBe(id);
  });

  it("removes a closed tab after the grace", async () => {
    const proxy = await startProxy();
    connect({ id: "ada", name: "Ada" }, { url: proxy.url }).join("closing");
    const bob = connect({ id: "bob", name: "Bob" }).join("closing");
    await waitFor(() => bob.others.length === 1, "bob sees ada");
    const closedAt = Date.now();
    proxy.close(); // the tab is gone and never comes back
    await waitFor(() => bob.others.length === 0, "ada removed", GRACE_MS + 5000);
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS - 200);
  });

  for (const signal of /** @type {const} */ (["SIGTERM", "SIGKILL"])) {
    it(`rejoins a server restarted on the same port (${signal})`, async () => {
      const adaClient = connect({ id: "ada", name: "Ada" });
      const bobClient = connect({ id: "bob", name: "Bob" });
      const ada = adaClient.join("restart");
      const bob = bobClient.join("restart");
      await waitFor(() => ada.others.length === 1 && bob.others.length === 1, "both see each other");

      await server.stop(signal);
      await waitFor(
        () => adaClient.connection === "reconnecting" && bobClient.connection === "reconnecting",
        "both reconnecting",
      );
      expect(otherIds(ada)).toEqual(["bob"]); // the last roster stays on screen

      server = await startPresenced({ port: server.port, reconnectGrace: `${GRACE_MS}ms` });
      await waitFor(
        () =>
          adaClient.connection === "connected" &&
          bobClient.connection === "connected" &&
          ada.status === "joined" &&
          otherIds(ada).join() === "bob" &&
          otherIds(bob).join() === "ada",
        "both back and seeing each other",
        10_000,
      );
    });
  }
});

describe("away", () => {
  it("shows a user away only while every one of its tabs is hidden", async () => {
    const tab1 = new FakeDocument();
    const tab2 = new FakeDocument();
    const ada1Client = connect({ id: "ada", name: "Ada" }, { document: tab1, awayAfterMs: 100 });
    const ada1 = ada1Client.join("away");
    const ada2 = connect({ id: "ada", name: "Ada" }, { document: tab2, awayAfterMs: 100 }).join("away");
    const bob = connect({ id: "bob", name: "Bob" }).join("away");
    const adaSeenByBob = () => bob.others.find((user) => user.id === "ada");
    await waitFor(() => ada1.status === "joined" && ada2.status === "joined" && adaSeenByBob(), "all joined");

    tab1.setVisibility("hidden");
    await waitFor(
      () => ada1Client.sent.some((m) => m.type === "presence:update" && m.state.away === true),
      "tab 1 said away",
      2000,
    );
    // A barrier: once bob sees this later update, the server has handled tab 1's away.
    ada1.update({ barrier: 1 });
    await waitFor(() => adaSeenByBob()?.state.barrier === 1, "the barrier update");
    expect(adaSeenByBob()?.away).toBe(false); // tab 2 is still visible

    tab2.setVisibility("hidden");
    await waitFor(() => adaSeenByBob()?.away === true, "ada away once both tabs are hidden");

    tab1.setVisibility("visible");
    await waitFor(() => adaSeenByBob()?.away === false, "ada active again as soon as one tab is visible");
  });
});

describe("refusals", () => {
  /** @type {import("./support/presenced.js").RunningServer} */
  let secured;
  beforeAll(async () => {
    secured = await startPresenced({ args: ["--jwt-secret", TEST_JWT_SECRET] });
  });
  afterAll(async () => {
    await secured?.stop();
  });

  it("a join with no token ends in `refused` (unauthorized), and one with a token joins", async () => {
    const client = connect({ id: "ada", name: "Ada" }, { url: secured.wsUrl });
    const room = client.join("vip");
    /** @type {string[]} */
    const statuses = [];
    room.on("status", (status) => statuses.push(status));
    await waitFor(() => room.status === "refused", "the refusal");
    expect(statuses).toEqual(["refused"]);
    expect(room.refusal).toMatchObject({ code: "unauthorized", ref: "join:vip" });
    expect(room.refusal?.message).toMatch(/token/);
    expect(client.errors.map((error) => error.code)).toEqual(["unauthorized"]);
    expect(client.connection).toBe("connected"); // the connection is fine; the join is not

    const token = signToken({ sub: "bob", name: "Bob", exp: nowSeconds() + 600 });
    const bob = connect({}, { url: secured.wsUrl, token }).join("vip");
    await waitFor(() => bob.status === "joined", "bob joined with a token");
    expect(bob.self).toMatchObject({ id: "bob", name: "Bob" });
  });

  // presenced accepts a token up to 30 s past its `exp` (clock skew). A token whose `exp`
  // is 29 s ago is therefore good for a second or two: long enough to join, expired by
  // the time the connection is cut.
  const SERVER_LEEWAY_S = 30;
  const shortLivedToken = (/** @type {string} */ sub) => {
    const exp = nowSeconds() - SERVER_LEEWAY_S + 1;
    return { token: signToken({ sub, exp }), expiredAtMs: (exp + SERVER_LEEWAY_S + 1) * 1000 };
  };

  it("a token function replaces an expired token on reconnect; a fixed token ends in `refused`", async () => {
    const proxy = await startProxy(secured.port);
    /** @type {number[]} */
    const expiries = [];
    const fresh = () => {
      // The first token is about to expire; later ones are good for ten minutes.
      if (expiries.length === 0) {
        const { token, expiredAtMs } = shortLivedToken("ada");
        expiries.push(expiredAtMs);
        return Promise.resolve(token);
      }
      expiries.push((nowSeconds() + 600) * 1000);
      return Promise.resolve(signToken({ sub: "ada", exp: nowSeconds() + 600 }));
    };
    const ada = connect({}, { url: proxy.url, token: fresh }).join("expiring");
    const fixed = shortLivedToken("bob");
    const bob = connect({}, { url: proxy.url, token: fixed.token }).join("expiring");
    await waitFor(() => ada.status === "joined" && bob.status === "joined", "both joined with short-lived tokens");

    const until = Math.max(expiries[0], fixed.expiredAtMs);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, until - Date.now())));
    /** @type {string[]} */
    const adaStatuses = [];
    ada.on("status", (status) => adaStatuses.push(status));
    proxy.cut();

    await waitFor(() => bob.status === "refused", "bob's rejoin refused");
    expect(bob.refusal).toMatchObject({ code: "unauthorized" });
    expect(bob.refusal?.message).toMatch(/expired/i);
    await waitFor(() => ada.status === "joined" && adaStatuses.includes("reconnecting"), "ada rejoined");
    expect(expiries).toHaveLength(2); // the function was called again for the reconnect
    expect(ada.self?.id).toBe("ada");
  });
});
