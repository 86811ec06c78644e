// Proves the demo's large-room mode (issue 14) in a real headless Chromium against the
// real presenced binary: a page opened with `?view=list:2` lists only the first two
// others by arrival, counts the whole room live ("6 online", "+3"), lets the next user
// in when a listed one leaves, and shows the cursors of the listed users only; a page
// opened with `&spectator=1` sees the room without being listed, counted or seen, and
// list-view pages count it as watching. Screenshots go to e2e/artifacts/.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../support/browser.js";
import { startPresenced } from "../support/presenced.js";

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
 * demo open in `room` with `query` added to its URL, joined. `id` is the demo's user id
 * from localStorage, as a spectator has no `room.self` to read it from.
 * @param {string} room
 * @param {string} [query] e.g. `&view=list:2`
 */
async function visit(room, query = "") {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${server.httpUrl}/?room=${encodeURIComponent(room)}${query}`);
  await page.waitForFunction(() => /** @type {any} */ (window).presence?.room.status === "joined");
  const id = await page.evaluate(() => String(JSON.parse(localStorage.getItem("presenced-demo:identity") ?? "{}").id));
  return { context, page, errors, id };
}

/**
 * Visitors with the full roster, each joined before the next arrives, so that they
 * arrive (`joinedAt`) in the order given.
 * @param {string} room
 * @param {number} how
 */
async function visitInTurn(room, how) {
  const visitors = [];
  for (let i = 0; i < how; i++) visitors.push(await visit(room));
  return visitors;
}

/**
 * Waits until the element with `testId` reads exactly `expected`; says what it read if not.
 * @param {import("playwright-core").Page} page
 * @param {string} testId
 * @param {string} expected
 */
async function waitForText(page, testId, expected) {
  try {
    await page.waitForFunction(
      ({ testId, expected }) => document.querySelector(`[data-testid="${testId}"]`)?.textContent === expected,
      { testId, expected },
    );
  } catch (error) {
    const actual = await page.evaluate((testId) => document.querySelector(`[data-testid="${testId}"]`)?.textContent ?? null, testId);
    throw new Error(`[data-testid="${testId}"] reads ${JSON.stringify(actual)}, not ${JSON.stringify(expected)}`, { cause: error });
  }
}

/**
 * Waits until the header's avatars are exactly the users `ids`, in that order.
 * @param {import("playwright-core").Page} page
 * @param {string[]} ids
 */
async function waitForAvatars(page, ids) {
  try {
    await page.waitForFunction(
      (ids) =>
        JSON.stringify(
          [...document.querySelectorAll('[data-testid="avatars"] [data-testid="avatar"]')].map(
            (element) => /** @type {HTMLElement} */ (element).dataset.userId,
          ),
        ) === JSON.stringify(ids),
      ids,
    );
  } catch (error) {
    const actual = await page
      .locator('[data-testid="avatars"] [data-testid="avatar"]')
      .evaluateAll((elements) => elements.map((element) => /** @type {HTMLElement} */ (element).dataset.userId));
    throw new Error(`the avatars are ${JSON.stringify(actual)}, not ${JSON.stringify(ids)}`, { cause: error });
  }
}

/**
 * The ids of the roster the page's SDK holds, in its order (oldest first).
 * @param {import("playwright-core").Page} page
 */
function rosterOf(page) {
  return page.evaluate(() => /** @type {any} */ (window).presence.room.users.map((/** @type {any} */ user) => user.id));
}

/**
 * Moves the mouse over the page's board to the fractions `fx`, `fy` of its size.
 * @param {import("playwright-core").Page} page
 * @param {number} fx
 * @param {number} fy
 */
async function pointAt(page, fx, fy) {
  const board = await page.getByTestId("board").boundingBox();
  assert.ok(board);
  await page.mouse.move(board.x + board.width * fx, board.y + board.height * fy, { steps: 4 });
}

/**
 * @param {import("playwright-core").Page} page
 * @param {string} userId
 */
function cursorOf(page, userId) {
  return page.locator(`[data-testid="cursor"][data-user-id="${userId}"]`);
}

/**
 * @param {import("playwright-core").Page} page
 * @param {string} name
 */
async function screenshot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}

/** @param {{ errors: string[] }[]} visitors */
function assertNoPageErrors(visitors) {
  for (const visitor of visitors) assert.deepEqual(visitor.errors, []);
}

describe("the demo in a large room (issue 14)", () => {
  it("with ?view=list:2 lists the first two others, counts the whole room, and lets the next one in", async () => {
    const room = freshRoom("list");
    const [ann, ben, cat, dan] = await visitInTurn(room, 4);
    await waitForText(dan.page, "online-count", "4 online");

    const eve = await visit(room, "&view=list:2");
    // Ann and Ben came first: they are listed. Cat and Dan are only counted.
    await waitForAvatars(eve.page, [ann.id, ben.id]);
    assert.deepEqual(await rosterOf(eve.page), [ann.id, ben.id, eve.id]);
    await waitForText(eve.page, "online-count", "5 online");
    await waitForText(eve.page, "avatar-overflow", "+2");
    assert.equal(await eve.page.getByTestId("avatar-overflow").getAttribute("title"), "2 more");
    await waitForText(eve.page, "people-count", "5");
    await waitForText(eve.page, "people-more", "and 2 more");
    assert.equal(await eve.page.locator('[data-testid="person"]').count(), 3, "Ann, Ben and Eve herself");
    // The others, with full views, list Eve as any visitor.
    for (const other of [ann, ben, cat, dan]) {
      await waitForText(other.page, "online-count", "5 online");
      await other.page.locator(`[data-testid="person"][data-user-id="${eve.id}"]`).waitFor();
    }
    await screenshot(eve.page, "10-large-room-list");

    // A sixth visitor is counted, live, but not listed.
    const fay = await visit(room);
    await waitForText(eve.page, "online-count", "6 online");
    await waitForText(eve.page, "avatar-overflow", "+3");
    await waitForText(eve.page, "people-more", "and 3 more");
    await waitForAvatars(eve.page, [ann.id, ben.id]);
    assert.deepEqual(await rosterOf(eve.page), [ann.id, ben.id, eve.id]);

    // Cursors come only for the listed users: Dan's move reaches Cat (a full view), and
    // by the time Ben's later move reaches Eve, Dan's would have reached her too.
    await pointAt(dan.page, 0.2, 0.3);
    await cursorOf(cat.page, dan.id).waitFor();
    await pointAt(ben.page, 0.6, 0.4);
    await cursorOf(eve.page, ben.id).waitFor();
    assert.equal(await cursorOf(eve.page, dan.id).count(), 0, "no cursor of a user outside the view");

    // Ann goes: Cat, next by arrival, enters Eve's view.
    await ann.context.close();
    await eve.page.locator(`[data-testid="avatar"][data-user-id="${ann.id}"]`).waitFor({
      state: "detached",
      timeout: GRACE_MS + 8000,
    });
    await waitForAvatars(eve.page, [ben.id, cat.id]);
    assert.deepEqual(await rosterOf(eve.page), [ben.id, cat.id, eve.id]);
    await waitForText(eve.page, "online-count", "5 online");
    await waitForText(eve.page, "avatar-overflow", "+2");
    await waitForText(dan.page, "online-count", "5 online");

    assertNoPageErrors([ben, cat, dan, eve, fay]);
    for (const visitor of [ben, cat, dan, eve, fay]) await visitor.context.close();
  });

  it("with &spectator=1 sees the room unlisted and uncounted, and list views count it as watching", async () => {
    const room = freshRoom("spectator");
    const [ann, ben, cat] = await visitInTurn(room, 3);
    const eve = await visit(room, "&view=list:2");
    await waitForText(eve.page, "online-count", "4 online");
    assert.equal(await eve.page.getByTestId("spectator-count").isHidden(), true, "nobody watching yet");

    const spy = await visit(room, "&view=list:2&spectator=1");
    // The spectator: no entry of its own, the first two others, everyone counted but itself.
    assert.equal(await spy.page.evaluate(() => /** @type {any} */ (window).presence.room.self), null);
    assert.deepEqual(await rosterOf(spy.page), [ann.id, ben.id]);
    await waitForAvatars(spy.page, [ann.id, ben.id]);
    await waitForText(spy.page, "online-count", "4 online");
    await waitForText(spy.page, "avatar-overflow", "+2");
    await waitForText(spy.page, "people-more", "and 2 more");
    await waitForText(spy.page, "spectator-count", "1 watching");
    assert.equal(await spy.page.getByTestId("name-input").isDisabled(), true);
    await screenshot(spy.page, "11-large-room-spectator");

    // The list view counts it as watching, not as here; nobody lists it.
    await waitForText(eve.page, "spectator-count", "1 watching");
    await waitForText(eve.page, "online-count", "4 online");
    for (const other of [ann, ben, cat]) {
      await waitForText(other.page, "online-count", "4 online");
      assert.equal(await other.page.locator(`[data-testid="person"][data-user-id="${spy.id}"]`).count(), 0);
    }

    // Its pointer is shown to nobody; a listed user's pointer reaches it.
    await pointAt(spy.page, 0.5, 0.5);
    await pointAt(ben.page, 0.3, 0.7);
    await cursorOf(ann.page, ben.id).waitFor();
    await cursorOf(spy.page, ben.id).waitFor();
    assert.equal(await cursorOf(ann.page, spy.id).count(), 0, "no cursor of the spectator");

    // The spectator goes: the list view stops counting it once its session is gone.
    await spy.context.close();
    await eve.page.getByTestId("spectator-count").waitFor({ state: "hidden", timeout: GRACE_MS + 8000 });
    await waitForText(eve.page, "online-count", "4 online");

    assertNoPageErrors([ann, ben, cat, eve]);
    for (const visitor of [ann, ben, cat, eve]) await visitor.context.close();
  });
});
