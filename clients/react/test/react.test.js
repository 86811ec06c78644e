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
  useCount,
  useCursorTracking,
  useErrors,
  useOther,
  useRoomStatus,
  useSpectators,
  shallow,
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

/**
 * @param {import("react").ReactNode} children
 * @param {Partial<import("../src/context.js").PresenceProviderProps>} [props] more provider props
 */
function renderWithClient(children, client = newClient(), props = {}) {
  const result = render(h(PresenceProvider, { client, room: "lobby", ...props }, children));
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
    // White initials unless the app's CSS sets --presenced-avatar-text (issue 15).
    expect(avatars[0].style.color).toBe("var(--presenced-avatar-text, white)");
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

describe("render props, class names and CSS variables", () => {
  it("<PresenceIndicators/> takes renderAvatar, renderCount and className", () => {
    renderWithClient(
      h(PresenceIndicators, {
        className: "who-is-here",
        renderAvatar: (user) => h("img", { "data-testid": "custom-avatar", alt: user.name }),
        renderCount: (count) => h("b", { "data-testid": "custom-count" }, `${count} here`),
      }),
    );
    answerJoin([wireUser("ada"), wireUser("bob"), wireUser("cy")]);
    expect(screen.getByTestId("presence-indicators").className).toBe("who-is-here");
    expect(screen.getAllByTestId("custom-avatar").map((img) => img.getAttribute("alt"))).toEqual(["Bob", "Cy"]);
    expect(screen.queryAllByTestId("avatar")).toHaveLength(0);
    expect(screen.getByTestId("custom-count").textContent).toBe("2 here");
    expect(screen.queryByTestId("online-count")).toBeNull();
  });

  it("<PresenceIndicators/> and <LiveCursors/> use CSS variables for their fixed colors", () => {
    renderWithClient(h("div", null, h(PresenceIndicators, { max: 1 }), h(LiveCursors)));
    answerJoin([wireUser("ada"), wireUser("bob", { cursor: { x: 0.5, y: 0.5, visible: true } }), wireUser("cy")]);
    expect(screen.getByTestId("avatar").style.border).toBe("2px solid var(--presenced-avatar-ring, white)");
    expect(screen.getByTestId("avatar-overflow").style.backgroundColor).toBe("var(--presenced-overflow-background, #5f6368)");
    expect(screen.getByTestId("online-count").style.color).toBe("var(--presenced-muted, #555)");
    const cursor = screen.getByTestId("cursor");
    expect(cursor.querySelector("path")?.getAttribute("stroke")).toBe("var(--presenced-cursor-outline, white)");
    expect(/** @type {HTMLElement} */ (cursor.querySelector("span")).style.color).toBe(
      "var(--presenced-cursor-label-text, white)",
    );
  });

  it("<LiveCursors/> takes renderCursor and className, and still places the cursor", () => {
    renderWithClient(
      h(LiveCursors, {
        className: "cursor-layer",
        renderCursor: (cursor) => h("i", { "data-testid": "custom-cursor" }, cursor.name.toUpperCase()),
      }),
    );
    answerJoin([wireUser("ada"), wireUser("bob", { cursor: { x: 0.25, y: 0.75, visible: true } })]);
    expect(screen.getByTestId("live-cursors").className).toBe("cursor-layer");
    expect(screen.getByTestId("custom-cursor").textContent).toBe("BOB");
    expect(screen.getByTestId("cursor").style.left).toBe("25%");
    expect(screen.getByTestId("cursor").querySelector("svg")).toBeNull();
  });
});

describe("selectors", () => {
  it("useOthers(selector, shallow) re-renders only when the selection changes", () => {
    /** @type {string[][]} */
    const renders = [];
    function Names() {
      renders.push([...useOthers((others) => others.map((user) => user.name), shallow)]);
      return null;
    }
    renderWithClient(h(Names));
    answerJoin([wireUser("ada"), wireUser("bob")]);
    const before = renders.length;
    expect(renders.at(-1)).toEqual(["Bob"]);
    // Bob's state changes: the names do not, so no render.
    serverSends({ type: "presence:diff", room: "lobby", left: [], joined: [], updated: [wireUser("bob", { state: { typing: true } })] });
    expect(renders).toHaveLength(before);
    serverSends({ type: "presence:diff", room: "lobby", left: [], joined: [], updated: [wireUser("bob", { name: "Robert" })] });
    expect(renders.at(-1)).toEqual(["Robert"]);
    expect(renders).toHaveLength(before + 1);
  });

  it("useOther(id, selector) follows one user, and is null while that user is away from the room", () => {
    /** @type {unknown[]} */
    const renders = [];
    function Typing() {
      renders.push(useOther("bob", (user) => user.state.typing === true));
      return null;
    }
    renderWithClient(h(Typing));
    answerJoin([wireUser("ada"), wireUser("cy")]);
    expect(renders.at(-1)).toBeNull();
    serverSends({ type: "presence:diff", room: "lobby", left: [], joined: [wireUser("bob")], updated: [] });
    expect(renders.at(-1)).toBe(false);
    const before = renders.length;
    // Someone else changes: no render.
    serverSends({ type: "presence:diff", room: "lobby", left: [], joined: [], updated: [wireUser("cy", { state: { typing: true } })] });
    expect(renders).toHaveLength(before);
    serverSends({ type: "presence:diff", room: "lobby", left: [], joined: [], updated: [wireUser("bob", { state: { typing: true } })] });
    expect(renders.at(-1)).toBe(true);
    serverSends({ type: "presence:diff", room: "lobby", left: ["bob"], joined: [], updated: [] });
    expect(renders.at(-1)).toBeNull();
  });

  it("useCount counts everyone, self included, and re-renders only when the number changes", () => {
    /** @type {number[]} */
    const renders = [];
    function Count() {
      renders.push(useCount());
      return null;
    }
    renderWithClient(h(Count));
    expect(renders.at(-1)).toBe(0);
    answerJoin([wireUser("ada"), wireUser("bob")]);
    expect(renders.at(-1)).toBe(2);
    const before = renders.length;
    serverSends({ type: "presence:diff", room: "lobby", left: [], joined: [], updated: [wireUser("bob", { state: { typing: true } })] });
    expect(renders).toHaveLength(before);
    serverSends({ type: "presence:diff", room: "lobby", left: [], joined: [wireUser("cy")], updated: [] });
    expect(renders.at(-1)).toBe(3);
  });

  it("shallow compares one level: arrays item by item, objects key by key", () => {
    expect(shallow([1, "a"], [1, "a"])).toBe(true);
    expect(shallow([1, "a"], [1, "b"])).toBe(false);
    expect(shallow([1], [1, 2])).toBe(false);
    expect(shallow({ a: 1, b: "x" }, { b: "x", a: 1 })).toBe(true);
    expect(shallow({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(shallow({ a: { deep: 1 } }, { a: { deep: 1 } })).toBe(false);
    expect(shallow([], {})).toBe(false);
    expect(shallow(NaN, NaN)).toBe(true);
  });
});

describe("large rooms: list views, counts and spectators (issue 14)", () => {
  /**
   * The server's answer to a join in a large room.
   * @param {import("../../js/src/types.js").User[]} users
   * @param {number} count
   * @param {number} spectators
   */
  function answerLargeJoin(users, count, spectators) {
    serverSends({ type: "presence:currentUsers", room: "lobby", users, self: { id: "ada", sessionId: "s-1" }, count, spectators });
  }

  it("useCount reads the server's count of a list view, useSpectators its spectators, each re-rendering only on a change", () => {
    /** @type {Array<[number, number]>} */
    const renders = [];
    function Counts() {
      renders.push([useCount(), useSpectators()]);
      return null;
    }
    renderWithClient(h(Counts), newClient(), { view: { list: 2 } });
    expect(FakeWebSocket.last.sentOfType("presence:join")[0].view).toEqual({ list: 2 });
    expect(renders.at(-1)).toEqual([0, 0]);
    answerLargeJoin([wireUser("ada", { joinedAt: 3 }), wireUser("bob", { joinedAt: 1 }), wireUser("cy", { joinedAt: 2 })], 1200, 3);
    expect(renders.at(-1)).toEqual([1200, 3]);

    const before = renders.length;
    serverSends({ type: "presence:diff", room: "lobby", left: [], joined: [], updated: [wireUser("bob", { state: { typing: true } })] });
    serverSends({ type: "presence:count", room: "lobby", count: 1200, spectators: 3 });
    expect(renders).toHaveLength(before);
    serverSends({ type: "presence:count", room: "lobby", count: 1201, spectators: 3 });
    expect(renders.at(-1)).toEqual([1201, 3]);
    serverSends({ type: "presence:count", room: "lobby", count: 1201, spectators: 4 });
    expect(renders.at(-1)).toEqual([1201, 4]);
  });

  it("useCount(room) and useSpectators(room) read a given room, with no provider", () => {
    const client = newClient();
    const room = client.join("lobby", { view: { list: 0 } });
    /** @type {Array<[number, number]>} */
    const renders = [];
    function Counts() {
      renders.push([useCount(room), useSpectators(room)]);
      return null;
    }
    render(h(Counts));
    act(() => FakeWebSocket.last.serverOpen());
    answerLargeJoin([wireUser("ada")], 12_408, 2);
    expect(renders.at(-1)).toEqual([12_408, 2]);
  });

  it("<PresenceIndicators/> shows the listed avatars and +N for the rest of the room", () => {
    renderWithClient(h(PresenceIndicators, { max: 1 }), newClient(), { view: { list: 2 } });
    answerLargeJoin(
      [wireUser("ada", { joinedAt: 3 }), wireUser("b", { name: "Bo", joinedAt: 1 }), wireUser("c", { name: "Cy", joinedAt: 2 })],
      1200,
      0,
    );
    expect(screen.getAllByTestId("avatar").map((a) => a.textContent)).toEqual(["B"]);
    const overflow = screen.getByTestId("avatar-overflow");
    // 1,199 others in the room: one shown, so +1,198, of whom Cy is listed.
    expect(overflow.textContent).toBe(`+${(1198).toLocaleString()}`);
    expect(overflow.getAttribute("title")).toBe(`Cy and ${(1197).toLocaleString()} more`);
    expect(screen.getByTestId("online-count").textContent).toBe(`${(1199).toLocaleString()} online`);

    serverSends({ type: "presence:count", room: "lobby", count: 1300, spectators: 0 });
    expect(screen.getByTestId("avatar-overflow").textContent).toBe(`+${(1298).toLocaleString()}`);
    expect(screen.getByTestId("online-count").textContent).toBe(`${(1299).toLocaleString()} online`);
  });

  it("<PresenceIndicators/> with a view of no one lists nobody and still counts the room", () => {
    renderWithClient(h(PresenceIndicators), newClient(), { view: { list: 0 } });
    answerLargeJoin([wireUser("ada")], 5, 0);
    expect(screen.queryAllByTestId("avatar")).toHaveLength(0);
    expect(screen.getByTestId("avatar-overflow").textContent).toBe("+4");
    expect(screen.getByTestId("avatar-overflow").getAttribute("title")).toBe("4 more");
    expect(screen.getByTestId("online-count").textContent).toBe("4 online");
    serverSends({ type: "presence:count", room: "lobby", count: 1, spectators: 0 });
    expect(screen.queryByTestId("presence-indicators")).toBeNull(); // alone again
  });

  it("<PresenceIndicators/> for a spectator counts everyone listed, as it is not one of them", () => {
    renderWithClient(h(PresenceIndicators, { max: 5 }), newClient(), { spectator: true, view: { list: 2 } });
    expect(FakeWebSocket.last.sentOfType("presence:join")[0]).toMatchObject({ spectator: true, view: { list: 2 } });
    answerLargeJoin([wireUser("bob", { joinedAt: 1 }), wireUser("cy", { joinedAt: 2 })], 40, 7);
    expect(screen.getAllByTestId("avatar").map((a) => a.dataset.userId)).toEqual(["bob", "cy"]);
    expect(screen.getByTestId("avatar-overflow").textContent).toBe("+38");
    expect(screen.getByTestId("online-count").textContent).toBe("40 online");
  });

  it("<PresenceProvider> joins again when the view changes, not when an equal view is rendered again", () => {
    const client = newClient();
    const { rerender } = renderWithClient(null, client, { view: { list: 2 } });
    rerender(h(PresenceProvider, { client, room: "lobby", view: { list: 2 } }, null));
    expect(FakeWebSocket.last.sentOfType("presence:join")).toHaveLength(1);
    rerender(h(PresenceProvider, { client, room: "lobby", view: { list: 5 } }, null));
    expect(FakeWebSocket.last.sent.slice(1).map((message) => [message.type, message.view])).toEqual([
      ["presence:leave", undefined],
      ["presence:join", { list: 5 }],
    ]);
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
