// Serves pages/react-app.js, bundled with esbuild, from a small HTTP server on
// 127.0.0.1 (an origin other than presenced's, as an app's would be; on loopback, so
// Chromium's local network access checks let it reach presenced), so a test can drive
// the React bindings in Chromium against the real presenced.

import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../..");

const PAGE =
  '<!doctype html><meta charset="utf-8"><title>react app</title><div id="root"></div><script type="module" src="/app.js"></script>';

/** @type {Promise<string> | null} */
let bundled = null;

/**
 * The page's script, bundled once per run. React resolves from the React bindings' own
 * install (clients/react, or a workspace root above it), so the bindings and the page share
 * one copy of React.
 * @returns {Promise<string>}
 */
function bundle() {
  bundled ??= build({
    entryPoints: [path.join(repoRoot, "e2e/pages/react-app.js")],
    bundle: true,
    format: "esm",
    write: false,
    logLevel: "silent",
    nodePaths: [path.join(repoRoot, "clients/react/node_modules"), path.join(repoRoot, "node_modules")],
    define: { "process.env.NODE_ENV": '"development"' },
  }).then((result) => result.outputFiles[0].text);
  return bundled;
}

/**
 * Starts the page's server. With `issueToken`, it also answers `GET /token?user=ID` with
 * a token for that user, as an app's auth endpoint would (the page asks it when its URL
 * has `auth=1`).
 * @param {{ issueToken?: (userId: string) => string }} [options]
 * @returns {Promise<{ url: string, close: () => Promise<void> }>} `url` is the page's, without a query
 */
export async function startReactApp({ issueToken } = {}) {
  const script = await bundle();
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname === "/token" && issueToken) {
      response.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      response.end(issueToken(url.searchParams.get("user") ?? ""));
      return;
    }
    const isScript = url.pathname === "/app.js";
    response.writeHead(200, {
      "content-type": isScript ? "text/javascript; charset=utf-8" : "text/html; charset=utf-8",
    });
    response.end(isScript ? script : PAGE);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}
