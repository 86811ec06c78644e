// Proves the demo page at `/` in a real headless Chromium against the real presenced
// binary: two visitors see each other, cursors land where the pointer is, a reload is
// never seen as a leave, a closed tab leaves after the grace (the unload grace when the
// page could say it was closing), a server restart shows "reconnecting" and then everyone
// again, a restart with --state-file is seen by nobody, and a join the server refuses
// shows a red badge with the reason. Screenshots go to e2e/artifacts/.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../support/browser.js";
import { startPresenced } from "../support/presenced.js";
import { TEST_JWT_SECRET } from "../support/jwt.js";

const GRACE_MS = 2000;
const artifacts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../artifacts");
mkdirSync(artifacts, { recursive: true });

/** @type {Awaited<ReturnType<typeof startPresenced>>} */
let server;
/** @type {import("playwright-core").Browser} */
let browser;

before(async () => {
  server = await startPresenced({ reconnectGrace: `${GRACE_MS}ms` });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

let roomCounter = 0;
/** @param {string} label */
function freshRoom(label) {
  roomCounter += 1;
  return `e2e-${label}-${process.pid}-${roomCounter}`;
}

/**
 * A visitor: a browser context of its own (own localStorage, so its own user) with the
 * demo open in `room`, joined.
 * @param {string} room
 */
async function visit(room, target = server) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${target.httpUrl}/?room=${encodeURIComponent(room)}`);
  await waitJoined(page);
  const self = await page.evaluate(() => {
    const user = /** @type {any} */ (window).presence.room.self;
    return { id: String(user.id), name: String(user.name), color: String(user.color) };
  });
  return { context, page, errors, ...self };
}

/** @param {import("playwright-core").Page} page */
async function waitJoined(page) {
  await page.waitForFunction(() => /** @type {any} */ (window).presence?.room.status === "joined", null, {
    timeout: 10_000,
  });
}

/**
 * @param {import("playwright-core").Page} page
 * @param {string} name
 */
async function screenshot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}

/**
 * @param {import("playwright-core").Page} page
 * @param {string} userId
 */
function avatarOf(page, userId) {
  return page.locator(`[data-testid="avatar"][data-user-id="${userId}"]`);
}

/** @param {{ errors: string[] }[]} visitors */
function assertNoPageErrors(visitors) {
  for (const visitor of visitors) assert.deepEqual(visitor.errors, []);
}

describe("the demo page", () => {
  it("shows two visitors each other's avatar and '2 online', as many as 'Here now' lists", async () => {
    const room = freshRoom("pair");
    const ada = await visit(room);
    await ada.page.locator('[data-testid="presence-indicators"]').waitFor({ state: "hidden" });
    await screenshot(ada.page, "01-alone");

    const bob = await visit(room);
    for (const [me, other] of [
      [ada, bob],
      [bob, ada],
    ]) {
      const avatar = avatarOf(me.page, other.id);
      await avatar.waitFor();
      assert.equal(await me.page.locator('[data-testid="avatar"]').count(), 1, "only the other is listed");
      // The header counts everyone here, you included, as "Here now" does (issue 15).
      assert.equal(await me.page.getByTestId("online-count").textContent(), "2 online");
      assert.equal(await me.page.getByTestId("people-count").textContent(), "2");
      assert.equal(await avatar.getAttribute("title"), other.name);
      const look = await avatar.evaluate((element) => {
        const style = getComputedStyle(element);
        return { text: element.textContent, color: style.color, background: style.backgroundColor, width: style.width };
      });
      assert.equal(look.color, "rgb(255, 255, 255)");
      assert.equal(look.background, hexToRgb(other.color));
      assert.equal(look.width, "32px");
      assert.match(look.text ?? "", /^[A-Z]{1,2}$/);
      assert.equal(await me.page.getByTestId("connection-badge").getAttribute("data-state"), "connected");
    }
    assert.notEqual(ada.color, bob.color);
    await screenshot(ada.page, "02-two-visitors");
    assertNoPageErrors([ada, bob]);
    await ada.context.close();
    await bob.context.close();
  });

  it("shows a mouse move in one visitor's board as a cursor at the same place in the other's", async () => {
    const room = freshRoom("cursor");
    const ada = await visit(room);
    const bob = await visit(room);
    await avatarOf(ada.page, bob.id).waitFor();

    for (const [fx, fy] of [
      [0.3, 0.6],
      [0.72, 0.18],
    ]) {
      const board = await bob.page.getByTestId("board").boundingBox();
      assert.ok(board);
      await bob.page.mouse.move(board.x + board.width * fx, board.y + board.height * fy, { steps: 8 });

      // The cursor's tip (its top-left corner) must settle on the same spot of ada's board.
      await ada.page.waitForFunction(
        ({ userId, fx, fy }) => {
          const boardBox = document.querySelector('[data-testid="board"]')?.getBoundingClientRect();
          const cursor = document.querySelector(`[data-testid="cursor"][data-user-id="${userId}"]`);
          if (!boardBox || !cursor) return false;
          const box = cursor.getBoundingClientRect();
          return (
            Math.abs(box.left - (boardBox.left + boardBox.width * fx)) < 2 &&
            Math.abs(box.top - (boardBox.top + boardBox.height * fy)) < 2
          );
        },
        { userId: bob.id, fx, fy },
        { timeout: 5000 },
      );
    }
    const label = ada.page.locator(`[data-testid="cursor"][data-user-id="${bob.id}"] [data-testid="cursor-label"]`);
    assert.equal(await label.textContent(), bob.name);
    await screenshot(ada.page, "03-live-cursor");
    assertNoPageErrors([ada, bob]);
    await ada.context.close();
    await bob.context.close();
  });

  it("never shows a reload as a leave", async () => {
    const room = freshRoom("reload");
    const ada = await visit(room);
    const bob = await visit(room);
    await avatarOf(ada.page, bob.id).waitFor();
    const sessionBefore = await bob.page.evaluate(() => /** @type {any} */ (window).presence.room.sessionId);

    // Watch from ada's side: the SDK's roster and every painted frame of the page.
    await ada.page.evaluate((userId) => {
      const w = /** @type {any} */ (window);
      w.__bobWentMissing = [];
      w.presence.room.on("userLeft", (/** @type {any} */ user) => w.__bobWentMissing.push(`userLeft ${user.id}`));
      w.presence.room.on("users", (/** @type {any[]} */ users) => {
        if (!users.some((user) => user.id === userId)) w.__bobWentMissing.push("missing from the roster");
      });
      const watch = () => {
        if (!document.querySelector(`[data-testid="avatar"][data-user-id="${userId}"]`)) {
          w.__bobWentMissing.push("avatar not painted");
        }
        requestAnimationFrame(watch);
      };
      requestAnimationFrame(watch);
    }, bob.id);

    const reloadedAt = Date.now();
    await bob.page.reload();
    await waitJoined(bob.page);
    const sessionAfter = await bob.page.evaluate(() => /** @type {any} */ (window).presence.room.sessionId);
    assert.equal(sessionAfter, sessionBefore, "the reload restored the same session");
    assert.equal(await bob.page.evaluate(() => /** @type {any} */ (window).presence.room.self.id), bob.id);
    await avatarOf(bob.page, ada.id).waitFor();

    // A wrong leave would come when the grace ends: wait it out, then look.
    await ada.page.waitForTimeout(Math.max(0, GRACE_MS + 700 - (Date.now() - reloadedAt)));
    assert.deepEqual(await ada.page.evaluate(() => /** @type {any} */ (window).__bobWentMissing), []);
    assert.equal(await ada.page.getByTestId("online-count").textContent(), "2 online");
    const activity = await ada.page.locator('[data-testid="activity"] li[data-kind="left"]').count();
    assert.equal(activity, 0, "no 'left' in the activity list");
    await screenshot(ada.page, "04-after-reload");
    assertNoPageErrors([ada, bob]);
    await ada.context.close();
    await bob.context.close();
  });

  it("removes a closed visitor's avatar after the reconnect grace", async () => {
    const room = freshRoom("close");
    const ada = await visit(room);
    const bob = await visit(room);
    await avatarOf(ada.page, bob.id).waitFor();

    const closedAt = Date.now();
    await bob.context.close();
    await ada.page.locator('[data-testid="presence-indicators"]').waitFor({ state: "hidden", timeout: GRACE_MS + 8000 });
    const elapsed = Date.now() - closedAt;
    assert.ok(elapsed >= GRACE_MS - 300, `bob left after ${elapsed} ms, before the ${GRACE_MS} ms grace`);
    assert.equal(await avatarOf(ada.page, bob.id).count(), 0);
    assert.equal(await ada.page.locator('[data-testid="activity"] li[data-kind="left"]').count(), 1);
    await screenshot(ada.page, "05-after-close");
    assertNoPageErrors([ada]);
    await ada.context.close();
  });

  it("removes a tab closed by its visitor within the unload grace, not the reconnect grace", async () => {
    // A minute of reconnect grace: only the leave the page sends on pagehide can make bob
    // go within the wait below.
    const patient = await startPresenced({ reconnectGrace: "60s", args: ["--unload-grace", "1s"] });
    try {
      const room = freshRoom("unload");
      const ada = await visit(room, patient);
      const bob = await visit(room, patient);
      await avatarOf(ada.page, bob.id).waitFor();

      await bob.page.close({ runBeforeUnload: true });
      await avatarOf(ada.page, bob.id).waitFor({ state: "detached", timeout: 20_000 });
      assert.equal(await ada.page.locator('[data-testid="activity"] li[data-kind="left"]').count(), 1);
      assertNoPageErrors([ada]);
      await ada.context.close();
      await bob.context.close();
    } finally {
      await patient.stop();
    }
  });

  it("shows 'reconnecting' while the server is gone and both visitors again once it is back", async () => {
    const room = freshRoom("restart");
    const ada = await visit(room);
    const bob = await visit(room);
    await avatarOf(ada.page, bob.id).waitFor();

    await server.stop("SIGKILL");
    for (const visitor of [ada, bob]) {
      await visitor.page.locator('[data-testid="connection-badge"][data-state="reconnecting"]').waitFor({ timeout: 10_000 });
      assert.match((await visitor.page.getByTestId("connection-badge").textContent()) ?? "", /reconnecting/i);
    }
    await screenshot(ada.page, "06-reconnecting");

    server = await startPresenced({ port: server.port, reconnectGrace: `${GRACE_MS}ms` });
    for (const [me, other] of [
      [ada, bob],
      [bob, ada],
    ]) {
      await me.page.locator('[data-testid="connection-badge"][data-state="connected"]').waitFor({ timeout: 20_000 });
      await me.page.waitForFunction(
        (userId) =>
          /** @type {any} */ (window).presence.room.status === "joined" &&
          document.querySelector(`[data-testid="avatar"][data-user-id="${userId}"]`) !== null &&
          document.querySelector('[data-testid="online-count"]')?.textContent === "2 online",
        other.id,
        { timeout: 20_000 },
      );
    }
    await screenshot(ada.page, "07-back-after-restart");
    assertNoPageErrors([ada, bob]);
    await ada.context.close();
    await bob.context.close();
  });

  it("restarts a node with --state-file unseen: every page restored, no left or joined, same order", async () => {
    const stateFile = path.join(os.tmpdir(), `presenced-e2e-state-${process.pid}.json`);
    const args = ["--state-file", stateFile];
    let node = await startPresenced({ reconnectGrace: "30s", args });
    try {
      const room = freshRoom("state-file");
      const ada = await visit(room, node);
      const bob = await visit(room, node);
      const cy = await visit(room, node);
      const visitors = [ada, bob, cy];
      for (const me of visitors) {
        await me.page.locator('[data-testid="online-count"]', { hasText: "3 online" }).waitFor();
      }
      /** @param {import("playwright-core").Page} page */
      const order = (page) =>
        page.locator('[data-testid="avatar"]').evaluateAll((avatars) => avatars.map((a) => a.getAttribute("data-user-id")));
      /** @param {import("playwright-core").Page} page */
      const roster = (page) =>
        page.evaluate(() => /** @type {any} */ (window).presence.room.users.map((u) => [u.id, u.color, u.joinedAt]));
      /** @param {import("playwright-core").Page} page */
      const joinedAndLeft = (page) =>
        page.locator('[data-testid="activity"] li[data-kind="joined"], [data-testid="activity"] li[data-kind="left"]').count();
      const before = await Promise.all(visitors.map((v) => Promise.all([order(v.page), roster(v.page), joinedAndLeft(v.page)])));

      await node.stop("SIGTERM");
      node = await startPresenced({ port: node.port, reconnectGrace: "30s", args });
      for (const [index, me] of visitors.entries()) {
        await me.page.locator('[data-testid="connection-badge"][data-state="connected"]').waitFor({ timeout: 20_000 });
        await me.page.waitForFunction(() => /** @type {any} */ (window).presence.room.status === "joined", undefined, {
          timeout: 20_000,
        });
        await me.page.locator('[data-testid="online-count"]', { hasText: "3 online" }).waitFor();
        const [wasOrder, wasRoster, wasEvents] = before[index];
        assert.deepEqual(await order(me.page), wasOrder, "the same order");
        assert.deepEqual(await roster(me.page), wasRoster, "the same users, colors and joinedAt");
        assert.equal(await joinedAndLeft(me.page), wasEvents, "no left or joined in the activity list");
        const restored = await me.page.locator('[data-testid="activity"] li[data-kind="info"]', {
          hasText: "Session restored",
        });
        await restored.last().waitFor();
      }
      await screenshot(ada.page, "08-restored-after-state-file-restart");
      assertNoPageErrors(visitors);
      for (const visitor of visitors) await visitor.context.close();
    } finally {
      await node.stop();
    }
  });

  it("shows a refused join as a red badge with the reason, not as 'Connected'", async () => {
    // Issue 15: with --jwt-secret and no token the demo said "Connected" over an empty roster.
    const secured = await startPresenced({ args: ["--jwt-secret", TEST_JWT_SECRET] });
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      /** @type {string[]} */
      const errors = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      await page.goto(`${secured.httpUrl}/?room=${encodeURIComponent(freshRoom("refused"))}`);
      const badge = page.locator('[data-testid="connection-badge"][data-state="refused"]');
      await badge.waitFor({ timeout: 10_000 });
      assert.equal(await badge.getAttribute("data-code"), "unauthorized");
      assert.match((await badge.textContent()) ?? "", /Refused: .*token/);
      const look = await badge.evaluate((element) => getComputedStyle(element).color);
      assert.equal(look, "rgb(185, 28, 28)", "the refusal is red");
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).presence.room.status), "refused");
      await screenshot(page, "08-refused");
      assert.deepEqual(errors, []);
      await context.close();
    } finally {
      await secured.stop();
    }
  });

  it("animates only a new avatar, not the ones already shown", async () => {
    const room = freshRoom("animate");
    const ada = await visit(room);
    const bob = await visit(room);
    const bobAvatar = avatarOf(ada.page, bob.id);
    await bobAvatar.waitFor();
    // Let bob's own pop-in finish, then watch which avatars start an animation.
    await ada.page.waitForFunction(
      (userId) => document.querySelector(`[data-testid="avatar"][data-user-id="${userId}"]`)?.getAnimations().length === 0,
      bob.id,
    );
    await ada.page.evaluate((userId) => {
      const w = /** @type {any} */ (window);
      w.__bobAvatar = document.querySelector(`[data-testid="avatar"][data-user-id="${userId}"]`);
      w.__animated = [];
      document.addEventListener("animationstart", (event) => {
        const target = /** @type {HTMLElement} */ (event.target);
        if (event.animationName === "pop-in") w.__animated.push(target.dataset.userId ?? target.className);
      });
    }, bob.id);

    const cy = await visit(room);
    await avatarOf(ada.page, cy.id).waitFor();
    await ada.page.waitForFunction((userId) => /** @type {any} */ (window).__animated.includes(userId), cy.id);
    const seen = await ada.page.evaluate((userId) => {
      const w = /** @type {any} */ (window);
      return {
        animated: w.__animated,
        sameBob: w.__bobAvatar === document.querySelector(`[data-testid="avatar"][data-user-id="${userId}"]`),
      };
    }, bob.id);
    assert.deepEqual(seen.animated, [cy.id], "only cy's avatar popped in");
    assert.ok(seen.sameBob, "bob's avatar is the same element, updated in place");
    assert.equal(await ada.page.getByTestId("online-count").textContent(), "3 online");
    assert.equal(await ada.page.getByTestId("people-count").textContent(), "3");
    assertNoPageErrors([ada, bob, cy]);
    for (const visitor of [ada, bob, cy]) await visitor.context.close();
  });

  it("follows prefers-color-scheme: a light and a dark theme", async () => {
    const room = freshRoom("theme");
    /** @type {Record<string, { background: string, ink: string }>} */
    const looks = {};
    for (const scheme of /** @type {const} */ (["light", "dark"])) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: scheme });
      const page = await context.newPage();
      await page.goto(`${server.httpUrl}/?room=${encodeURIComponent(room)}`);
      await waitJoined(page);
      looks[scheme] = await page.evaluate(() => {
        const style = getComputedStyle(document.documentElement);
        return { background: style.backgroundColor, ink: style.color };
      });
      await screenshot(page, `09-theme-${scheme}`);
      await context.close();
    }
    assert.deepEqual(looks.light, { background: "rgb(245, 246, 250)", ink: "rgb(31, 35, 48)" });
    assert.deepEqual(looks.dark, { background: "rgb(15, 17, 23)", ink: "rgb(232, 234, 241)" });
  });

  it("shows a visitor's new name to the other", async () => {
    const room = freshRoom("rename");
    const ada = await visit(room);
    const bob = await visit(room);
    await avatarOf(bob.page, ada.id).waitFor();
    await ada.page.getByTestId("name-input").fill("Grace Hopper");
    await ada.page.getByTestId("name-input").press("Enter");
    await bob.page.locator(`[data-testid="avatar"][data-user-id="${ada.id}"][title="Grace Hopper"]`).waitFor();
    assert.equal(await avatarOf(bob.page, ada.id).textContent(), "GH");
    // The name is kept for the next visit of this browser.
    await ada.page.reload();
    await waitJoined(ada.page);
    assert.equal(await ada.page.getByTestId("name-input").inputValue(), "Grace Hopper");
    assertNoPageErrors([ada, bob]);
    await ada.context.close();
    await bob.context.close();
  });
});

/** @param {string} hex */
function hexToRgb(hex) {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
}
