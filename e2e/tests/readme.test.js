// Runs the READMEs' browser snippets as written (the React one bundled with esbuild)
// (issue 15: the root README's cursor
// snippet sent pixels, and a page built from it put the cursor at x ≈ 101,035 px). Each
// snippet is the module script of a page served at presenced's own origin (so its
// `/sdk/index.js` import resolves), with a `board` element and the app functions it
// calls; a demo page in the same room watches. The pointer crosses the snippet's board,
// and the demo must draw the cursor at the same fraction of its own board.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { launchChromium } from "../support/browser.js";
import { startPresenced } from "../support/presenced.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * The first ```js (or ```jsx) block after `heading` in a Markdown file of the repository.
 * @param {string} file
 * @param {string} heading a line of the file, e.g. "## Quick start"
 */
function snippetAfter(file, heading) {
  const text = readFileSync(path.join(repoRoot, file), "utf8");
  const start = text.indexOf(`${heading}\n`);
  assert.ok(start >= 0, `${file} has no "${heading}"`);
  const match = /```jsx?\n([\s\S]*?)```/.exec(text.slice(start));
  assert.ok(match, `${file} has no js block after "${heading}"`);
  return match[1];
}

/** @type {Awaited<ReturnType<typeof startPresenced>>} */
let server;
/** @type {import("playwright-core").Browser} */
let browser;

before(async () => {
  server = await startPresenced();
  // A page answered by Playwright's router has no network address, so Chromium counts
  // it as public and its local network access checks would stop its WebSocket to
  // presenced on 127.0.0.1. The snippets' pages stand for pages presenced itself serves
  // (local), so those checks are off for this browser only.
  browser = await launchChromium(["--disable-features=LocalNetworkAccessChecks"]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Opens a page at presenced's origin whose module script is `snippet`.
 * @param {string} snippet
 * @param {string} [body] more HTML before the script
 */
async function openSnippet(snippet, body = "") {
  const context = await browser.newContext({ viewport: { width: 1000, height: 1400 } });
  const url = `${server.httpUrl}/readme-snippet.html`;
  await context.route(url, (route) =>
    route.fulfill({
      contentType: "text/html; charset=utf-8",
      body: `<!doctype html><meta charset="utf-8">
<div id="board" style="position: relative; width: 800px; height: 400px; margin: 20px; background: #eee"></div>
<p id="badge"></p>${body}
<script>
  // The app's own functions that the snippets call.
  window.renderAvatars = (users, label) => { window.avatarsLabel = label; window.avatarIds = users.map((user) => user.id); };
  window.drawCursors = (cursors) => { window.drawnCursors = cursors; };
</script>
<script type="module">${snippet.replaceAll("</script", "<\\/script")}</script>`,
    }),
  );
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url);
  return { context, page, errors };
}

/**
 * The demo in `room`, as the snippet's user sees others.
 * @param {string} room
 */
async function openDemo(room) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${server.httpUrl}/?room=${encodeURIComponent(room)}`);
  await page.waitForFunction(() => /** @type {any} */ (window).presence?.room.status === "joined");
  return { context, page };
}

/**
 * Closes the pages and waits until the server lists nobody in the README's room, so the
 * next test (the snippets all join "lobby") starts with it empty rather than racing the
 * closed pages' grace.
 * @param {...{ context: import("playwright-core").BrowserContext }} visitors
 */
async function closeAll(...visitors) {
  for (const visitor of visitors) await visitor.context.close();
  const deadline = Date.now() + 15_000;
  for (;;) {
    const answer = await fetch(`${server.httpUrl}/api/rooms/lobby`);
    const { users } = /** @type {{ users: unknown[] }} */ (await answer.json());
    if (users.length === 0) return;
    assert.ok(Date.now() < deadline, `lobby still lists ${JSON.stringify(users)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Moves the pointer over the snippet's board to (fx, fy) and waits until the demo draws
 * u-42's cursor tip at the same fraction of its board.
 * @param {import("playwright-core").Page} snippetPage
 * @param {import("playwright-core").Page} demoPage
 * @param {number} fx
 * @param {number} fy
 */
async function assertCursorCrosses(snippetPage, demoPage, fx, fy) {
  const board = await snippetPage.locator("#board").boundingBox();
  assert.ok(board);
  await snippetPage.mouse.move(board.x + board.width * fx, board.y + board.height * fy, { steps: 6 });
  await demoPage.waitForFunction(
    ({ fx, fy }) => {
      const boardBox = document.querySelector('[data-testid="board"]')?.getBoundingClientRect();
      const cursor = document.querySelector('[data-testid="cursor"][data-user-id="u-42"]');
      if (!boardBox || !cursor) return false;
      const box = cursor.getBoundingClientRect();
      return (
        Math.abs(box.left - (boardBox.left + boardBox.width * fx)) < 3 &&
        Math.abs(box.top - (boardBox.top + boardBox.height * fy)) < 3
      );
    },
    { fx, fy },
    { timeout: 5000 },
  );
}

describe("the READMEs' snippets, run as written", () => {
  it("README.md 'Add presence to an app': avatars, a count, and a cursor in fractions", async () => {
    const snippet = snippetAfter("README.md", "## Add presence to an app");
    const demo = await openDemo("my-doc");
    const app = await openSnippet(snippet);
    try {
      await demo.page.locator('[data-testid="avatar"][data-user-id="u-42"]').waitFor();
      await app.page.waitForFunction(() => /** @type {any} */ (window).avatarsLabel === "2 online");
      await assertCursorCrosses(app.page, demo.page, 0.25, 0.5);
      await assertCursorCrosses(app.page, demo.page, 0.8, 0.2);
      assert.deepEqual(app.errors, []);
    } finally {
      await closeAll(app, demo);
    }
  });

  it("clients/js/README.md 'Quick start': avatars, cursors, the badge, state and a cursor in fractions", async () => {
    const snippet = snippetAfter("clients/js/README.md", "## Quick start");
    const demo = await openDemo("lobby");
    const app = await openSnippet(snippet);
    try {
      await demo.page.locator('[data-testid="avatar"][data-user-id="u-42"]').waitFor();
      await app.page.waitForFunction(() => document.getElementById("badge")?.textContent === "connected");
      await app.page.waitForFunction(() => /** @type {any} */ (window).avatarsLabel === "2 online");
      await demo.page.waitForFunction(
        () => /** @type {any} */ (window).presence.room.others.find((/** @type {any} */ user) => user.id === "u-42")?.state.typing === true,
      );
      await assertCursorCrosses(app.page, demo.page, 0.4, 0.6);
      // The demo's pointer reaches the snippet's drawCursors.
      const demoBoard = await demo.page.getByTestId("board").boundingBox();
      assert.ok(demoBoard);
      await demo.page.mouse.move(demoBoard.x + demoBoard.width * 0.5, demoBoard.y + demoBoard.height * 0.5, { steps: 4 });
      await app.page.waitForFunction(() => {
        const cursors = /** @type {any} */ (window).drawnCursors;
        return Array.isArray(cursors) && cursors.some((cursor) => Math.abs(cursor.x - 0.5) < 0.01 && Math.abs(cursor.y - 0.5) < 0.01);
      });
      assert.deepEqual(app.errors, []);
    } finally {
      await closeAll(app, demo);
    }
  });

  it("clients/react/README.md: the provider, the indicators and the cursor tracking, bundled as written", async () => {
    const snippet = snippetAfter("clients/react/README.md", "# @presenced/react");
    // An app's bundler: React and the bindings from this repository's installs.
    const bundle = await build({
      stdin: { contents: snippet, loader: "jsx", resolveDir: path.join(repoRoot, "e2e/pages") },
      bundle: true,
      format: "esm",
      jsx: "automatic",
      write: false,
      logLevel: "silent",
      nodePaths: [path.join(repoRoot, "clients/react/node_modules"), path.join(repoRoot, "node_modules")],
      define: { "process.env.NODE_ENV": '"development"' },
    });
    const demo = await openDemo("lobby");
    const app = await openSnippet(bundle.outputFiles[0].text, '<div id="root" style="width: 900px"></div>');
    try {
      await demo.page.locator('[data-testid="avatar"][data-user-id="u-42"]').waitFor();
      // The demo's visitor shows in the snippet's <PresenceIndicators/>.
      await app.page.getByTestId("online-count").waitFor();
      assert.equal(await app.page.getByTestId("online-count").textContent(), "1 online");
      // useCursorTracking sends fractions of the Board: move over it and check the demo.
      const board = await app.page.getByTestId("live-cursors").boundingBox();
      assert.ok(board);
      await app.page.mouse.move(board.x + board.width * 0.3, board.y + board.height * 0.7, { steps: 6 });
      await demo.page.waitForFunction(
        () => {
          const boardBox = document.querySelector('[data-testid="board"]')?.getBoundingClientRect();
          const cursor = document.querySelector('[data-testid="cursor"][data-user-id="u-42"]');
          if (!boardBox || !cursor) return false;
          const box = cursor.getBoundingClientRect();
          return (
            Math.abs(box.left - (boardBox.left + boardBox.width * 0.3)) < 3 &&
            Math.abs(box.top - (boardBox.top + boardBox.height * 0.7)) < 3
          );
        },
        null,
        { timeout: 5000 },
      );
      assert.deepEqual(app.errors, []);
    } finally {
      await closeAll(app, demo);
    }
  });
});
