// Feeds the protocol's golden frames (crates/presence-protocol/tests/fixtures, the same
// files the Rust tests pin) to the SDK, so the SDK and the server agree on the wire shape.

import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { createClient } from "../src/index.js";
import { FakeDocument, FakeWebSocket, MemoryStorage } from "./support/fake-websocket.js";

const dir = fileURLToPath(new URL("../../../crates/presence-protocol/tests/fixtures/server/", import.meta.url));

/** @param {string} name */
function frame(name) {
  return JSON.parse(readFileSync(dir + name, "utf8"));
}

beforeEach(() => {
  FakeWebSocket.reset();
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

it("builds the roster the golden frames describe", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  expect(files.length).toBeGreaterThanOrEqual(6);
  const client = createClient({
    url: "ws://127.0.0.1:1/ws",
    user: { id: "ada", name: "Ada" },
    WebSocket: /** @type {any} */ (FakeWebSocket),
    storage: new MemoryStorage(),
    window: new EventTarget(),
    document: new FakeDocument(),
    random: () => 0.5,
  });
  const room = client.join("lobby");
  const socket = FakeWebSocket.last;
  socket.serverOpen();
  /** @type {unknown[]} */
  const errors = [];
  client.on("error", (error) => errors.push(error));

  socket.serverSend(frame("1-currentUsers.json"));
  expect(room.users.map((u) => u.id)).toEqual(["ada"]);
  expect(room.self?.color).toBe("#1E88E5");

  socket.serverSend(frame("2-userJoined.json"));
  socket.serverSend(frame("3-userUpdated.json"));
  const bob = room.others.find((u) => u.id === "bob");
  expect(bob?.state).toEqual({ typing: true });
  expect(bob?.sessions).toBe(2);

  socket.serverSend(frame("4-cursors.json"));
  expect(room.cursors).toEqual([{ userId: "bob", name: "Bob", color: "#D32F2F", x: 0.5, y: 0.25 }]);

  socket.serverSend(frame("5-diff.json"));
  socket.serverSend(frame("6-userLeft.json"));
  expect(room.users.map((u) => u.id)).toEqual(["ada", "cat"]);

  socket.serverSend(frame("8-error.json"));
  expect(errors).toEqual([expect.objectContaining({ code: "not_joined", ref: 7 })]);
  client.close();
});
