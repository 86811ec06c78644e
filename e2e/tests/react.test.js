// Proves the React bindings in a real headless Chromium against the real presenced: a
// page built on them (pages/react-app.js) reads useRoomStatus() === "refused" with the
// reason from useErrors() when the server requires a token and the page has none, and
// "joined" when the server requires none, and a token function replaces an expired token
// when the page reconnects.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { launchChromium } from "../support/browser.js";
import { startPresenced } from "../support/presenced.js";
import { TEST_JWT_SECRET, nowSeconds, signToken } from "../support/jwt.js";
import { startReactApp } from "../support/react-page.js";

/** @type {import("playwright-core").Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof startReactApp>>} */
let app;

// presenced accepts a token up to 30 s past its `exp` (clock skew). The first token the
// page's auth endpoint gives a user has an `exp` 29 s ago, so it is good for a second or
// two: long enough to join, expired when the page reconnects. Later ones last ten minutes.
const SERVER_LEEWAY_S = 30;
/** @type {Map<string, number[]>} user id → `exp` of each token issued, in order */
const issued = new Map();
/** @param {string} userId */
function issueToken(userId) {
  const list = issued.get(userId) ?? [];
  issued.set(userId, list);
  const exp = list.length === 0 ? nowSeconds() - SERVER_LEEWAY_S + 1 : nowSeconds() + 600;
  list.push(exp);
  return signToken({ sub: userId, exp });
}

before(async () => {
  browser = await launchChromium();
  app = await startReactApp({ issueToken });
});

after(async () => {
  await browser?.close();
  await app?.close();
});

/**
 * @param {import("playwright-core").BrowserContext} context
 * @param {Record<string, string>} params
 */
async function openApp(context, params) {
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${app.url}?${new URLSearchParams(params)}`);
  return Object.assign(page, { errors });
}

/**
 * @param {import("playwright-core").Page} page
 * @param {string} status
 */
async function waitForStatus(page, status) {
  await page.locator(`[data-testid="room-status"][data-status="${status}"]`).waitFor({ timeout: 10_000 });
}

describe("a page on the React bindings", () => {
  it("reads useRoomStatus() === 'refused' with the reason when the server wants a token", async () => {
    const secured = await startPresenced({ args: ["--jwt-secret", TEST_JWT_SECRET] });
    const context = await browser.newContext();
    try {
      const page = await openApp(context, { ws: secured.wsUrl, room: "react-refused", user: "ada" });
      await waitForStatus(page, "refused");
      assert.match((await page.getByTestId("room-status").textContent()) ?? "", /^refused: unauthorized \(.*token.*\)$/);
      assert.deepEqual(page.errors, []);
    } finally {
      await context.close();
      await secured.stop();
    }
  });

  it("reads useRoomStatus() === 'joined' from a server that needs no token", async () => {
    const open = await startPresenced();
    const context = await browser.newContext();
    try {
      const ada = await openApp(context, { ws: open.wsUrl, room: "react-open", user: "ada" });
      await waitForStatus(ada, "joined");
      const bob = await openApp(context, { ws: open.wsUrl, room: "react-open", user: "bob" });
      await waitForStatus(bob, "joined");
      await ada.locator('[data-testid="room-status"][data-others="1"]').waitFor();
      assert.deepEqual([...ada.errors, ...bob.errors], []);
    } finally {
      await context.close();
      await open.stop();
    }
  });

  it("replaces an expired token through the token function when it reconnects", async () => {
    let secured = await startPresenced({ args: ["--jwt-secret", TEST_JWT_SECRET] });
    const context = await browser.newContext();
    try {
      const page = await openApp(context, { ws: secured.wsUrl, room: "react-token", user: "erin", auth: "1" });
      await waitForStatus(page, "joined");
      const firstExp = issued.get("erin")?.[0];
      assert.ok(firstExp !== undefined, "the page asked the endpoint for a token");

      // Wait until the first token is expired for the server too, then make the page
      // reconnect: stop the server and start it again on the same port.
      const expiredAtMs = (firstExp + SERVER_LEEWAY_S + 1) * 1000;
      await page.waitForTimeout(Math.max(0, expiredAtMs - Date.now()));
      await secured.stop("SIGKILL");
      await waitForStatus(page, "reconnecting");
      secured = await startPresenced({ port: secured.port, args: ["--jwt-secret", TEST_JWT_SECRET] });

      await waitForStatus(page, "joined");
      assert.ok((issued.get("erin")?.length ?? 0) >= 2, "a fresh token was fetched for the reconnect");
      assert.deepEqual(page.errors, []);
    } finally {
      await context.close();
      await secured.stop();
    }
  });
});
