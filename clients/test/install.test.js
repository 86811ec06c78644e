// Proves that the two packages install as an app would install them (issue 15): both are
// packed with `npm pack`, the tarballs are installed into a fresh app with react and
// esbuild from the registry, the app is bundled with esbuild (for Node and for the
// browser) and rendered on the server with react-dom/server, its TypeScript is checked
// against the installed declarations (with skipLibCheck off, so they must compile with
// only what the app installed), and a later `npm install` in the same app still works.
// Needs the npm registry. Run: npm run test:install

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const clients = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const sdkVersion = JSON.parse(readFileSync(path.join(clients, "js/package.json"), "utf8")).version;
const reactPackage = JSON.parse(readFileSync(path.join(clients, "react/package.json"), "utf8"));

/** @type {string} */
let work;
/** @type {string} */
let app;

/**
 * Runs a command, failing with its output when it fails.
 * @param {string} cwd
 * @param {string} command
 * @param {string[]} args
 */
function run(cwd, command, args) {
  try {
    return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const { stdout, stderr } = /** @type {{ stdout?: string, stderr?: string }} */ (error);
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}\n${stdout ?? ""}\n${stderr ?? ""}`);
  }
}

const npm = (/** @type {string} */ cwd, /** @type {string[]} */ ...args) =>
  run(cwd, "npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"]);

before(() => {
  work = mkdtempSync(path.join(tmpdir(), "presenced-install-"));
  for (const pkg of ["js", "react"]) npm(path.join(clients, pkg), "pack", "--pack-destination", work);
  app = path.join(work, "app");
  run(work, "mkdir", ["app"]);
  writeFileSync(
    path.join(app, "package.json"),
    JSON.stringify({ name: "presence-app", private: true, type: "module" }, null, 2),
  );
  writeFileSync(
    path.join(app, "server.js"),
    `import { createElement as h } from "react";
import { renderToString } from "react-dom/server";
import { createClient } from "@presenced/client";
import { LiveCursors, PresenceIndicators, PresenceProvider, useRoomStatus } from "@presenced/react";

function Status() {
  return h("output", null, useRoomStatus());
}

// No connection while rendering on the server: a client that waits for connect().
class NoWebSocket {}
const client = createClient({
  url: "ws://127.0.0.1:9/ws",
  autoConnect: false,
  WebSocket: /** @type {any} */ (NoWebSocket),
  storage: null,
  window: null,
  document: null,
});
console.log(
  renderToString(
    h(PresenceProvider, { client, room: "lobby" }, h(Status), h(PresenceIndicators), h("div", null, h(LiveCursors))),
  ),
);
`,
  );
  writeFileSync(
    path.join(app, "typed.ts"),
    `import { createClient } from "@presenced/client";
import { createPresenceHooks, shallow } from "@presenced/react";

type State = { typing: boolean };
const hooks = createPresenceHooks<State>();

export function useTyping(): ReadonlyArray<string> {
  const { update } = hooks.usePresence();
  update({ typing: true });
  // @ts-expect-error: a misspelled key
  update({ tpying: true });
  return hooks.useOthers((others) => others.filter((user) => user.state.typing).map((user) => user.name), shallow);
}

const room = createClient({ url: "ws://127.0.0.1:9/ws", autoConnect: false }).join("lobby");
// @ts-expect-error: a misspelled event name
room.on("userz", () => {});
`,
  );
  writeFileSync(
    path.join(app, "tsconfig.json"),
    JSON.stringify(
      {
        compilerOptions: {
          target: "es2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          lib: ["es2022", "dom"],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: [],
        },
        files: ["typed.ts"],
      },
      null,
      2,
    ),
  );
  writeFileSync(
    path.join(app, "browser.js"),
    `import { createElement as h } from "react";
import { createRoot } from "react-dom/client";
import { LiveCursors, PresenceIndicators, PresenceProvider } from "@presenced/react";

createRoot(document.getElementById("root")).render(
  h(PresenceProvider, { room: "lobby" }, h(PresenceIndicators), h(LiveCursors)),
);
`,
  );
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed packages", () => {
  it("depend on each other by version, with react as a peer", () => {
    assert.equal(reactPackage.dependencies["@presenced/client"], sdkVersion);
    assert.ok(reactPackage.peerDependencies.react, "react is a peer dependency");
    assert.equal(reactPackage.dependencies.react, undefined);
    assert.deepEqual(readdirSync(work).filter((name) => name.endsWith(".tgz")).sort(), [
      `presenced-client-${sdkVersion}.tgz`,
      `presenced-react-${reactPackage.version}.tgz`,
    ]);
  });

  it("install into a fresh app, bundle with esbuild, type-check, render on the server, and install again", () => {
    npm(
      app,
      "install",
      `../presenced-client-${sdkVersion}.tgz`,
      `../presenced-react-${reactPackage.version}.tgz`,
      "react@^19.1.0",
      "react-dom@^19.1.0",
      "esbuild@^0.28.0",
      "typescript@~5.9.3",
      "@types/react@^19.1.0",
    );

    const esbuild = path.join(app, "node_modules/.bin/esbuild");
    // react-dom/server is CommonJS that requires Node's built-ins: an ES module bundle
    // for Node needs a `require`, as esbuild's documentation shows.
    const requireShim = 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);';
    run(app, esbuild, [
      "server.js",
      "--bundle",
      "--platform=node",
      "--format=esm",
      `--banner:js=${requireShim}`,
      "--outfile=dist/server.mjs",
      "--log-level=warning",
    ]);
    run(app, esbuild, ["browser.js", "--bundle", "--platform=browser", "--format=esm", "--outfile=dist/browser.js", "--log-level=warning"]);

    run(app, path.join(app, "node_modules/.bin/tsc"), ["-p", "tsconfig.json"]);

    const html = run(app, "node", ["dist/server.mjs"]);
    assert.match(html, /<output>joining<\/output>/);
    assert.match(html, /data-testid="live-cursors"/);

    // A later install in the same app: with the old `file:../js` dependency this one
    // crashed on the dangling link the tarball left behind.
    npm(app, "install");
    npm(app, "ls", "--all");
    const installed = JSON.parse(readFileSync(path.join(app, "node_modules/@presenced/client/package.json"), "utf8"));
    assert.equal(installed.version, sdkVersion);
  });
});
