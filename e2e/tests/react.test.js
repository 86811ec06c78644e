// Proves the React bindings in a real headless Chromium against the real presenced: a
// page built on them (pages/react-app.js) reads useRoomStatus() === "refused" with the
// reason from useErrors() when the server requires a token and the page has none, and
// "joined" when the server requires none.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { launchChromium } from "../support/browser.js";
import { startPresenced } from "../support/presenced.js";
import { TEST_JWT_SECRET } from "../support/jwt.js";
import { startReactApp } from "../support/react-page.js";

/** @type {import("playwright-core").Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof startReactApp>>} */
let app;

before(async () => {
  browser = await launchChromium();
  app = await startReactApp();
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
});
