// A page built on the React bindings, for the e2e tests: a PresenceProvider with what the
// URL says (`ws`, `room`, `user`, `auth`), and a status line from useRoomStatus() and useErrors().
// support/react-page.js bundles it with esbuild; the tests serve it on an origin of its own.

import { createElement as h } from "react";
import { createRoot } from "react-dom/client";
import { PresenceProvider, useErrors, useOthers, useRoomStatus } from "../../clients/react/src/index.js";

const params = new URLSearchParams(location.search);

function Status() {
  const status = useRoomStatus();
  const errors = useErrors();
  const others = useOthers();
  const last = errors.at(-1);
  return h(
    "p",
    { "data-testid": "room-status", "data-status": status, "data-others": others.length },
    status,
    last ? `: ${last.code} (${last.message})` : "",
  );
}

async function fetchToken() {
  const response = await fetch(`/token?user=${encodeURIComponent(params.get("user") ?? "")}`);
  if (!response.ok) throw new Error(`token endpoint: ${response.status}`);
  return response.text();
}

const root = document.getElementById("root");
if (!root) throw new Error("react-app: no #root");
createRoot(root).render(
  h(
    PresenceProvider,
    {
      url: params.get("ws") ?? undefined,
      room: params.get("room") ?? "lobby",
      user: { id: params.get("user") ?? undefined, name: params.get("name") ?? undefined },
      // With `auth=1`, a token from this page's own endpoint before every connect.
      options: params.has("auth") ? { token: fetchToken, maxDelayMs: 1000 } : undefined,
    },
    h(Status),
  ),
);
