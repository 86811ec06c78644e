// Type tests of the published types (types/*.d.ts, reached by the packages' names as an
// app reaches them). `npm run typecheck` checks this file; nothing runs it. Each
// `@ts-expect-error` must meet an error, so a type that stops catching a mistake fails
// the check.

import { createElement, type ReactElement } from "react";
import { createClient, type PresenceUser } from "@presenced/client";
import {
  LiveCursors,
  PresenceIndicators,
  createPresenceHooks,
  shallow,
  useCount,
  useSpectators,
  useOther,
  useOthers,
  usePresence,
} from "@presenced/react";

// ---- custom state, declared once ----------------------------------------------------
type State = { typing: boolean; mood?: string };
const typed = createPresenceHooks<State>();

export function TypedState(): ReactElement | null {
  const { update, self, others } = typed.usePresence();
  update({ typing: true });
  update({ mood: null }); // null deletes a key
  // @ts-expect-error: a misspelled key
  update({ tpying: true });
  // @ts-expect-error: a key of the wrong type
  update({ typing: "yes" });

  const typing: boolean | undefined = self?.state.typing;
  // @ts-expect-error: a misspelled key when reading
  self?.state.tpying;
  const moods: Array<string | undefined> = others.map((user) => user.state.mood);

  const names = typed.useOthers((all) => all.map((user) => user.name), shallow);
  const firstTyping: boolean | undefined | null = typed.useOther("bob", (user) => user.state.typing);
  // @ts-expect-error: a misspelled key in a selector
  typed.useOthers((all) => all.map((user) => user.state.tpying));
  return createElement(
    typed.PresenceProvider,
    { room: "lobby", initialState: { typing: false } },
    String([typing, moods, names, firstTyping]),
  );
}

// @ts-expect-error: initial state is checked too
createElement(typed.PresenceProvider, { room: "lobby", initialState: { tpying: false } });

// ---- the untyped hooks ----------------------------------------------------------------
export function Untyped(): ReactElement | null {
  const others: ReadonlyArray<PresenceUser> = useOthers();
  const ids: string[] = useOthers((all) => all.map((user) => user.id), shallow);
  const count: number = useOthers((all) => all.length);
  const bob: PresenceUser | null = useOther("bob");
  const bobName: string | null = useOther("bob", (user) => user.name);
  const everyone: number = useCount();
  const inBigRoom: number = useCount(bigRoom);
  const watching: number = useSpectators(null);
  // @ts-expect-error: a room, not its name
  useCount("lobby");
  usePresence().update({ anything: 1 }); // no declared shape: any key
  // @ts-expect-error: a selector's isEqual compares what it selects
  useOthers((all) => all.length, (a: string, b: string) => a === b);
  return createElement(
    "div",
    null,
    createElement(PresenceIndicators, {
      className: "who",
      renderAvatar: (user) => createElement("img", { alt: user.name }),
      renderCount: (n) => `${n} here`,
    }),
    createElement(LiveCursors, { className: "cursors", renderCursor: (cursor) => cursor.name }),
    String([others, ids, count, bob, bobName, everyone, inBigRoom, watching]),
  );
}

// ---- large rooms ----------------------------------------------------------------------
const bigClient = createClient({ url: "ws://127.0.0.1:8080/ws", autoConnect: false });
const bigRoom = bigClient.join("keynote", { view: { list: 20 }, spectator: true });
bigRoom.on("count", ({ count, spectators }) => count + spectators);
const typedCount: number = typed.useCount(bigRoom) + typed.useSpectators();
// @ts-expect-error: a view is "full" or { list: K }
bigClient.join("keynote", { view: { list: "20" } });
// @ts-expect-error: a view is "full" or { list: K }
bigClient.join("keynote", { view: "list" });
createElement(typed.PresenceProvider, { room: "keynote", view: { list: 20 }, spectator: true });
// @ts-expect-error: a view is "full" or { list: K }
createElement(typed.PresenceProvider, { room: "keynote", view: "list:20" });
export { typedCount };

// ---- event names ----------------------------------------------------------------------
const client = createClient({ url: "ws://127.0.0.1:8080/ws", autoConnect: false });
const room = client.join("lobby");
room.on("userJoined", (user) => user.name);
room.on("status", (status) => status === "refused");
// @ts-expect-error: a misspelled event name
room.on("userz", () => {});
// @ts-expect-error: a misspelled client event
client.on("conection", () => {});
