// Proves the React bindings in a DOM (jsdom): the hooks follow the SDK's snapshots,
// <PresenceIndicators/> and <LiveCursors/> render what the seed promises, and the
// provider joins and leaves with its lifetime. The server is a fake WebSocket.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, render, screen } from "@testing-library/react";
import { StrictMode, createElement as h, useRef } from "react";
import { createClient } from "@presenced/client";
import {
  LiveCursors,
  PresenceIndicators,
  PresenceProvider,
  useConnectionState,
  useCursorTracking,
  useErrors,
  useRoomStatus,
  useOthers,
  usePresence,
  useSelf,
} from "../src/index.js";
import { FakeWebSocket, MemoryStorage, wireUser } from "../../js/test/support/fake-websocket.js";

/** @type {import("@presenced/client").PresenceClient[]} */
let clients = [];

function newClient() {
  const client = createClient({
    url: "ws://127.0.0.1:1/ws",
    user: { id: "ada", name: "Ada Lovelace" },
    WebSocket: /** @type {any} */ (FakeWebSocket),
    storage: new MemoryStorage(),
    window: null,
    document: null,
  });
  clients.push(client);
  return client;
}

/** @param {any} message */
function serverSends(message) {
  act(() => FakeWebSocket.last.serverSend(message));
}

/** @param {import("../../js/src/types.js").User[]} users */
function answerJoin(users, room = "lobby") {
  serverSends({ type: "presence:currentUsers", room, users, self: { id: "ada", sessionId: "s-1" } });
}

/** @param {import("react").ReactNode} children */
function renderWithClient(children, client = newClient()) {
  const result = render(h(PresenceProvider, { client, room: "lobby" }, children));
  act(() => FakeWebSocket.last.serverOpen());
  return { ...result, client };
}

beforeEach(() => FakeWebSocket.reset());
afterEach(() => {
  cleanup();
  for (const client of clients) client.close();
  clients = [];
});

describe("<PresenceIndicators/>", () => {
  it("is hidden when alone and shows the others with '1 online' when someone is here", () => {
    renderWithClient(h(PresenceIndicators));
    answerJoin([wireUser("ada", { joinedAt: 1 })]);
    expect(screen.queryByTestId("presence-indicators")).toBeNull();

    serverSends({
      type: "presence:diff",
      room: "lobby",
      left: [],
      joined: [wireUser("grace", { name: "Grace Hopper", color: "#2E7D32", joinedAt: 2 })],
      updated: [],
    });
    const avatars = screen.getAllByTestId("avatar");
    expect(avatars).toHaveLength(1); // self is not listed
    expect(avatars[0].textContent).toBe("GH");
    expect(avatars[0].getAttribute("title")).toBe("Grace Hopper");
    expect(avatars[0].style.backgroundColor).toBe("rgb(46, 125, 50)");
    expect(avatars[0].style.color).toBe("white");
    expect(avatars[0].style.width).toBe("32px");
    expect(screen.getByTestId("online-count").textContent).toBe("1 online");
  });

  it("lists each user once and folds the rest into +N", () => {
    renderWithClient(h(PresenceIndicators, { max: 2 }));
    answerJoin([
      wireUser("ada", { joinedAt: 1 }),
      wireUser("b", { name: "Bo", joinedAt: 2 }),
      wireUser("c", { name: "Cy", joinedAt: 3, sessions: 3 }),
      wireUser("d", { name: "Di", joinedAt: 4 }),
      wireUser("e", { name: "Ed", joinedAt: 5 }),
    ]);
    expect(screen.getAllByTestId("avatar").map((a) => a.textContent)).toEqual(["B", "C"]);
    const overflow = screen.getByTestId("avatar-overflow");
    expect(overflow.textContent).toBe("+2");
    expect(overflow.getAttribute("title")).toBe("Di, Ed");
    expect(screen.getByTestId("online-count").textContent).toBe("4 online");
  });

  it("dims away users and says so on hover", () => {
    renderWithClient(h(PresenceIndicators));
    answerJoin([wireUser("ada"), wireUser("bob", { state: { away: true } })]);
    const avatar = screen.getByTestId("avatar");
    expect(avatar.getAttribute("title")).toBe("Bob (away)");
    expect(avatar.dataset.away).toBe("true");
    expect(avatar.style.opacity).toBe("0.5");
  });
});

describe("<LiveCursors/>", () => {
  it("draws the others' cursors at their position with a name label, and hides them", () => {
    renderWithClient(h("div", { style: { position: "relative" } }, h(LiveCursors)));
    answerJoin([wireUser("ada"), wireUser("bob", { color: "#C62828" })]);
    expect(screen.queryAllByTestId("cursor")).toHaveLength(0);

    serverSends({ type: "presence:cursors", room: "lobby", cursors: [{ userId: "bob", x: 0.25, y: 0.5, visible: true }] });
    const cursor = screen.getByTestId("cursor");
    expect(cursor.dataset.userId).toBe("bob");
    expect(cursor.style.left).toBe("25%");
    expect(cursor.style.top).toBe("50%");
    expect(cursor.style.transition).toContain("left 80ms");
    expect(cursor.textContent).toBe("Bob");
    expect(cursor.querySelector("path")?.getAttribute("fill")).toBe("#C62828");

    serverSends({ type: "presence:cursors", room: "lobby", cursors: [{ userId: "bob", x: 0.75, y: 0.1, visible: true }] });
    expect(screen.getByTestId("cursor").style.left).toBe("75%");

    serverSends({ type: "presence:cursors", room: "lobby", cursors: [{ userId: "bob", x: 0.75, y: 0.1, visible: false }] });
    expect(screen.queryAllByTestId("cursor")).toHaveLength(0);
  });

  it("can place cursors in pixels", () => {
    renderWithClient(h(LiveCursors, { coordinates: "pixels" }));
    answerJoin([wireUser("ada"), wireUser("bob", { cursor: { x: 120, y: 40, visible: true } })]);
    expect(screen.getByTestId("cursor").style.left).toBe("120px");
  });
});

describe("hooks", () => {
  it("follow the roster and the connection state", () => {
    /** @type {any[]} */
    const renders = [];
    function Probe() {
      const others = useOthers();
      const self = useSelf();
      const connection = useConnectionState();
      renders.push({ others: others.map((u) => u.id), self: self?.name ?? null, connection });
      return null;
    }
    renderWithClient(h(Probe));
    answerJoin([wireUser("ada", { name: "Ada Lovelace" }), wireUser("bob")]);
    expect(renders.at(-1)).toEqual({ others: ["bob"], self: "Ada Lovelace", connection: "connected" });

    act(() => FakeWebSocket.last.serverClose(1012));
    expect(renders.at(-1)).toMatchObject({ others: ["bob"], connection: "reconnecting" });
  });

  it("useRoomStatus and useErrors show a refused join, with its reason", () => {
    /** @type {any[]} */
    const renders = [];
    function Probe() {
      const status = useRoomStatus();
      const errors = useErrors();
      renders.push({ status, errors: errors.map((error) => `${error.code}: ${error.message}`) });
      return null;
    }
    renderWithClient(h(Probe));
    expect(renders.at(-1)).toEqual({ status: "joining", errors: [] });
    serverSends({ type: "presence:error", code: "unauthorized", message: "a token is required to join", ref: "join:lobby" });
    expect(renders.at(-1)).toEqual({ status: "refused", errors: ["unauthorized: a token is required to join"] });
  });

  it("useRoomStatus follows a reconnect: joined, reconnecting, joined", () => {
    vi.useFakeTimers();
    try {
      /** @type {string[]} */
      const statuses = [];
      function Probe() {
        const status = useRoomStatus();
        if (statuses.at(-1) !== status) statuses.push(status);
        return null;
      }
      renderWithClient(h(Probe));
      answerJoin([wireUser("ada")]);
      act(() => FakeWebSocket.last.serverClose(1012));
      act(() => {
        vi.advanceTimersByTime(10_000); // past any backoff
      });
      act(() => FakeWebSocket.last.serverOpen());
      answerJoin([wireUser("ada")]);
      expect(statuses).toEqual(["joining", "joined", "reconnecting", "joined"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("do not re-render a roster component when only cursors move", () => {
    let renders = 0;
    function Roster() {
      useOthers();
      renders += 1;
      return null;
    }
    renderWithClient(h(Roster));
    answerJoin([wireUser("ada"), wireUser("bob")]);
    const before = renders;
    serverSends({ type: "presence:cursors", room: "lobby", cursors: [{ userId: "bob", x: 1, y: 1, visible: true }] });
    expect(renders).toBe(before);
  });

  it("usePresence().update sends a presence:update and shows it on self", () => {
    /** @type {ReturnType<typeof usePresence> | null} */
    let presence = null;
    function Probe() {
      presence = usePresence();
      return null;
    }
    renderWithClient(h(Probe));
    answerJoin([wireUser("ada")]);
    act(() => presence?.update({ status: "typing" }));
    expect(FakeWebSocket.last.sentOfType("presence:update").at(-1)?.state).toEqual({ status: "typing" });
    expect(/** @type {any} */ (presence)?.self?.state).toEqual({ status: "typing" });
  });

  it("useCursorTracking sends the pointer as fractions of the element", () => {
    function Board() {
      const ref = useRef(/** @type {HTMLDivElement | null} */ (null));
      useCursorTracking(ref);
      return h("div", { ref, "data-testid": "board" });
    }
    renderWithClient(h(Board));
    answerJoin([wireUser("ada")]);
    const board = screen.getByTestId("board");
    board.getBoundingClientRect = () => /** @type {DOMRect} */ ({ left: 100, top: 50, width: 400, height: 200 });
    // jsdom has no PointerEvent; a MouseEvent named pointermove carries the coordinates.
    act(() => {
      board.dispatchEvent(new MouseEvent("pointermove", { clientX: 200, clientY: 100, bubbles: true }));
    });
    expect(FakeWebSocket.last.sentOfType("presence:cursor")).toEqual([
      { type: "presence:cursor", room: "lobby", x: 0.25, y: 0.25, visible: true },
    ]);
  });

  it("need a provider", () => {
    function Lonely() {
      useOthers();
      return null;
    }
    expect(() => render(h(Lonely))).toThrow(/PresenceProvider/);
  });
});

describe("<PresenceProvider>", () => {
  it("joins on mount and leaves on unmount, keeping a given client open", () => {
    const { unmount, client } = renderWithClient(null);
    expect(FakeWebSocket.last.sentOfType("presence:join")).toHaveLength(1);
    answerJoin([wireUser("ada")]);
    unmount();
    expect(FakeWebSocket.last.sent.at(-1)).toEqual({ type: "presence:leave", room: "lobby" });
    expect(client.connection).toBe("connected");
  });

  it("survives StrictMode's double effects with one live client and one joined room", () => {
    const props = {
      room: "lobby",
      url: "ws://127.0.0.1:1/ws",
      user: { id: "ada", name: "Ada" },
      options: { WebSocket: /** @type {any} */ (FakeWebSocket), storage: new MemoryStorage(), window: null, document: null },
    };
    render(h(StrictMode, null, h(PresenceProvider, props, h(PresenceIndicators))));
    const live = FakeWebSocket.instances.filter((socket) => socket.closedByClient === null);
    expect(live).toHaveLength(1);
    act(() => FakeWebSocket.last.serverOpen());
    expect(FakeWebSocket.last.sentOfType("presence:join")).toHaveLength(1);
    answerJoin([wireUser("ada"), wireUser("bob")]);
    expect(screen.getByTestId("online-count").textContent).toBe("1 online");
  });

  it("creates and closes its own client from url and user, and renames without reconnecting", () => {
    const props = {
      room: "lobby",
      url: "ws://127.0.0.1:1/ws",
      user: { id: "ada", name: "Ada" },
      options: { WebSocket: /** @type {any} */ (FakeWebSocket), storage: new MemoryStorage(), window: null, document: null },
    };
    const { rerender, unmount } = render(h(PresenceProvider, props));
    expect(FakeWebSocket.instances).toHaveLength(1);
    act(() => FakeWebSocket.last.serverOpen());
    answerJoin([wireUser("ada")]);
    rerender(h(PresenceProvider, { ...props, user: { id: "ada", name: "Ada L." } }));
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(FakeWebSocket.last.sentOfType("presence:join").at(-1)?.user).toEqual({ id: "ada", name: "Ada L.", sessionId: "s-1" });
    unmount();
    expect(FakeWebSocket.last.closedByClient?.code).toBe(1000);
  });
});
