// A page on another origin imports the SDK from presenced's /sdk/index.js and, with no
// `url`, connects to the presenced that served it (issue 15). The import works because
// the server sends `Access-Control-Allow-Origin: *` on /sdk/* (module scripts are
// fetched in CORS mode).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { launchChromium } from "../support/browser.js";
import { startPresenced } from "../support/presenced.js";

/** @type {Awaited<ReturnType<typeof startPresenced>>} */
let server;
/** @type {import("playwright-core").Browser} */
let browser;
/** @type {http.Server} */
let app;
let appUrl = "";

before(async () => {
  server = await startPresenced();
  browser = await launchChromium();
  // The app's own server, on another port of 127.0.0.1: another origin.
  app = http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(`<!doctype html><meta charset="utf-8"><p id="status">loading</p>
<script type="module">
  import { createClient } from "${server.httpUrl}/sdk/index.js";
  const client = createClient({ user: { id: "u-cross", name: "Cross" } });
  const room = client.join("cross-origin");
  window.presence = { client, room };
  room.on("status", (status) => (document.getElementById("status").textContent = status));
</script>`);
  });
  await new Promise((resolve) => app.listen(0, "127.0.0.1", () => resolve(undefined)));
  appUrl = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (app.address()).port}/`;
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => (app ? app.close(() => resolve(undefined)) : resolve(undefined)));
});

describe("a page on another origin", () => {
  it(
    "imports /sdk/index.js from presenced and joins through it, with no url given",
    async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        /** @type {string[]} */
        const errors = [];
        page.on("pageerror", (error) => errors.push(String(error)));
        await page.goto(appUrl);
        await page.locator("#status", { hasText: "joined" }).waitFor({ timeout: 10_000 });
        const selfId = await page.evaluate(() => /** @type {any} */ (window).presence.room.self?.id);
        assert.equal(selfId, "u-cross");
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    },
  );
});
