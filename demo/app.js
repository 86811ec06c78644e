// The demo page served at `/`: a shared board. Each visitor gets a name (editable, kept
// in localStorage) and a color (from the server), sees everyone else's avatar and live
// cursor, and a badge with the connection state. `?room=NAME` picks the room.
// For a large room, `?view=list:K` lists only the first K others and counts the rest
// ("+12,380", "12,408 online"), and `?spectator=1` watches without being listed.
// Plain DOM on top of the SDK, which the server serves at /sdk/.

import { createClient, initials } from "/sdk/index.js";

/** @typedef {import("../clients/js/src/index.js").PresenceUser} PresenceUser */
/** @typedef {import("../clients/js/src/index.js").LiveCursor} LiveCursor */
/** @typedef {import("../clients/js/src/index.js").ConnectionState} ConnectionState */

const MAX_AVATARS = 5;

const params = new URLSearchParams(location.search);
const roomName = roomFromUrl(params.get("room"));
const view = viewFromUrl(params.get("view"));
const isSpectator = ["1", "true", "yes"].includes(params.get("spectator") ?? "");
const identity = loadIdentity();
const client = createClient({ user: { id: identity.id, name: identity.name } });
const room = client.join(roomName, { view, spectator: isSpectator });
// Handy in the console (`presence.room.users`), and used by the end-to-end tests.
Object.assign(window, { presence: { client, room } });

const $ = (/** @type {string} */ testId) => {
  const element = document.querySelector(`[data-testid="${testId}"]`);
  if (!element) throw new Error(`demo: missing [data-testid="${testId}"]`);
  return /** @type {HTMLElement} */ (element);
};

const board = $("board");
const badge = $("connection-badge");
const nameInput = /** @type {HTMLInputElement} */ ($("name-input"));

// ---- connection badge -------------------------------------------------------------------

/** @type {Record<ConnectionState, string>} */
const BADGE_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  disconnected: "Offline",
};

// A refused join outranks the connection: the socket is up, but this page is in no room,
// and saying "Connected" over an empty roster would hide why.
function renderConnection() {
  const state = client.connection;
  const refusal = room.refusal;
  badge.dataset.state = refusal ? "refused" : state;
  document.body.dataset.connection = state;
  const text = /** @type {HTMLElement} */ (badge.querySelector(".badge-text"));
  if (refusal) {
    text.textContent = `Refused: ${refusal.message || refusal.code}`;
    badge.dataset.code = refusal.code;
    badge.title = `The server refused to let this page join room "${roomName}" (${refusal.code}).`;
    return;
  }
  text.textContent = BADGE_TEXT[state];
  badge.title =
    state === "reconnecting"
      ? "The server is unreachable. Retrying; you will be restored without anyone seeing you leave."
      : "";
}

// ---- roster -------------------------------------------------------------------------------

/**
 * @param {Pick<PresenceUser, "name" | "color" | "away">} user
 * @param {string} [className]
 */
function avatar(user, className = "") {
  const element = document.createElement("div");
  paintAvatar(element, user, className);
  return element;
}

/**
 * @param {HTMLElement} element
 * @param {Pick<PresenceUser, "name" | "color" | "away">} user
 * @param {string} [className]
 */
function paintAvatar(element, user, className = "") {
  element.className = `avatar ${className} ${user.away ? "is-away" : ""}`.trim();
  element.style.backgroundColor = user.color;
  element.textContent = initials(user.name);
}

// Roster elements are kept per user and updated in place: a new element pops in (CSS
// animation), so rebuilding them all on every change would replay it for everyone.
/** @type {Map<string, HTMLElement>} */
const headerAvatars = new Map();
/** @type {Map<string, HTMLLIElement>} */
const peopleItems = new Map();
const overflowAvatar = avatar({ name: "", color: "", away: false }, "overflow");
overflowAvatar.dataset.testid = "avatar-overflow";
// The last line of "Here now" in a list view: how many the view leaves out.
const peopleMore = document.createElement("li");
peopleMore.className = "people-more";
peopleMore.dataset.testid = "people-more";

/**
 * Makes `container`'s children exactly `elements`, in order, moving only what is out of
 * place: an element that stays attached keeps its finished animation.
 * @param {HTMLElement} container
 * @param {HTMLElement[]} elements
 */
function placeChildren(container, elements) {
  elements.forEach((element, i) => {
    if (container.children[i] !== element) container.insertBefore(element, container.children[i] ?? null);
  });
  while (container.children.length > elements.length) container.lastElementChild?.remove();
}

/**
 * The element of each user from `cache`, made by `create` for a user seen for the first
 * time; the elements of users no longer listed are dropped from the cache.
 * @template {HTMLElement} E
 * @param {Map<string, E>} cache
 * @param {ReadonlyArray<PresenceUser>} users
 * @param {() => E} create
 * @returns {E[]}
 */
function elementsFor(cache, users, create) {
  const ids = new Set(users.map((user) => user.id));
  for (const id of cache.keys()) if (!ids.has(id)) cache.delete(id);
  return users.map((user) => {
    let element = cache.get(user.id);
    if (!element) {
      element = create();
      cache.set(user.id, element);
    }
    return element;
  });
}

/** @param {number} n */
const formatCount = (n) => n.toLocaleString();

function renderUsers() {
  const users = room.users;
  const others = room.others;
  const self = room.self;
  // How many are here: the SDK's count is the whole room, of which a list view holds
  // only the first few (for a full view it is `users.length`).
  const count = Math.max(room.count, users.length);
  const othersInRoom = Math.max(others.length, count - (self ? 1 : 0));

  // Header: the others once each, "+N" past MAX_AVATARS (or past those listed), and how
  // many are here (you included, as "Here now" counts); hidden when alone.
  const shown = others.slice(0, MAX_AVATARS);
  const avatarElements = elementsFor(headerAvatars, shown, () => document.createElement("div"));
  shown.forEach((user, i) => {
    const element = avatarElements[i];
    paintAvatar(element, user);
    element.dataset.testid = "avatar";
    element.dataset.userId = user.id;
    element.title = user.away ? `${user.name} (away)` : user.name;
  });
  const hidden = others.slice(MAX_AVATARS);
  const hiddenCount = othersInRoom - shown.length;
  if (hiddenCount > 0) {
    const unlisted = hiddenCount - hidden.length;
    const names = hidden.map((user) => user.name).join(", ");
    overflowAvatar.textContent = `+${formatCount(hiddenCount)}`;
    overflowAvatar.title = unlisted > 0 ? `${names}${names ? " and " : ""}${formatCount(unlisted)} more` : names;
    avatarElements.push(overflowAvatar);
  }
  placeChildren($("avatars"), avatarElements);
  $("online-count").textContent = `${formatCount(count)} online`;
  $("presence-indicators").hidden = othersInRoom === 0;
  board.classList.toggle("has-others", othersInRoom > 0);
  const spectators = $("spectator-count");
  spectators.hidden = room.spectators === 0;
  spectators.textContent = `${formatCount(room.spectators)} watching`;

  // You.
  const selfAvatar = $("self-avatar");
  selfAvatar.textContent = initials(nameInput.value || identity.name);
  selfAvatar.style.backgroundColor = self?.color ?? "";

  // Everyone listed, with what they are doing, and how many more a list view leaves out.
  $("people-count").textContent = formatCount(count);
  const items = elementsFor(peopleItems, users, () => {
    const item = document.createElement("li");
    item.className = "person";
    item.dataset.testid = "person";
    const name = document.createElement("span");
    name.className = "person-name";
    const meta = document.createElement("span");
    item.append(avatar({ name: "", color: "", away: false }), name, meta);
    return item;
  });
  users.forEach((user, i) => {
    const item = items[i];
    item.dataset.userId = user.id;
    const [face, name, meta] = /** @type {HTMLElement[]} */ ([...item.children]);
    paintAvatar(face, user);
    name.textContent = user.isSelf ? `${user.name} (you)` : user.name;
    meta.className = `person-meta ${user.away ? "is-away" : ""}`;
    meta.textContent = user.away ? "away" : "active";
  });
  const unlisted = count - users.length;
  if (unlisted > 0) {
    peopleMore.textContent = `and ${formatCount(unlisted)} more`;
    items.push(peopleMore);
  }
  placeChildren($("people-list"), items);
}

// ---- cursors ------------------------------------------------------------------------------

/** @type {Map<string, HTMLElement>} */
const cursorElements = new Map();
const ARROW = "M1 1 L1 17 L5.5 13 L8.5 20 L11.5 18.7 L8.6 12 L14.5 12 Z";

/** @param {ReadonlyArray<LiveCursor>} cursors */
function renderCursors(cursors) {
  const layer = $("cursors");
  const seen = new Set();
  for (const cursor of cursors) {
    seen.add(cursor.userId);
    let element = cursorElements.get(cursor.userId);
    if (!element) {
      element = document.createElement("div");
      element.className = "cursor";
      element.dataset.testid = "cursor";
      element.dataset.userId = cursor.userId;
      element.innerHTML = `<svg width="20" height="22" viewBox="0 0 20 22"><path d="${ARROW}" stroke="white" stroke-width="1.5" stroke-linejoin="round"/></svg><span class="cursor-label" data-testid="cursor-label"></span>`;
      // Appear where the user is, then glide from there on.
      element.style.transition = "none";
      layer.append(element);
      cursorElements.set(cursor.userId, element);
      requestAnimationFrame(() => element?.style.removeProperty("transition"));
    }
    element.style.left = `${cursor.x * 100}%`;
    element.style.top = `${cursor.y * 100}%`;
    /** @type {SVGPathElement} */ (element.querySelector("path")).setAttribute("fill", cursor.color);
    const label = /** @type {HTMLElement} */ (element.querySelector(".cursor-label"));
    label.textContent = cursor.name;
    label.style.backgroundColor = cursor.color;
  }
  for (const [userId, element] of cursorElements) {
    if (!seen.has(userId)) {
      element.remove();
      cursorElements.delete(userId);
    }
  }
}

// Positions travel as fractions of the board, so windows of different sizes agree.
board.addEventListener("pointermove", (event) => {
  const box = board.getBoundingClientRect();
  const x = (event.clientX - box.left) / box.width;
  const y = (event.clientY - box.top) / box.height;
  if (x >= 0 && x <= 1 && y >= 0 && y <= 1) room.moveCursor(x, y);
});
board.addEventListener("pointerleave", () => room.hideCursor());

// ---- activity -----------------------------------------------------------------------------

/**
 * @param {"joined" | "left" | "info"} kind
 * @param {string} text
 * @param {string} [color]
 */
function logActivity(kind, text, color = "#9aa0b4") {
  const list = $("activity");
  const item = document.createElement("li");
  item.dataset.kind = kind;
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.style.backgroundColor = color;
  const label = document.createElement("span");
  label.textContent = text;
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  item.append(dot, label, time);
  list.prepend(item);
  while (list.children.length > 6) list.lastElementChild?.remove();
}

// ---- name ---------------------------------------------------------------------------------

/** @type {ReturnType<typeof setTimeout> | undefined} */
let renameTimer;
nameInput.value = identity.name;
nameInput.addEventListener("input", () => {
  $("self-avatar").textContent = initials(nameInput.value || identity.name);
  clearTimeout(renameTimer);
  renameTimer = setTimeout(applyName, 400);
});
nameInput.addEventListener("change", applyName);
nameInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter") nameInput.blur();
});

function applyName() {
  clearTimeout(renameTimer);
  const name = nameInput.value.trim().slice(0, 40);
  if (!name || name === identity.name) return;
  identity.name = name;
  saveIdentity(identity);
  client.setName(name);
}

// ---- room link ----------------------------------------------------------------------------

$("room-name").textContent = roomName;
const copyButton = $("copy-link");
copyButton.addEventListener("click", async () => {
  const url = new URL(location.href);
  url.searchParams.set("room", roomName);
  try {
    await navigator.clipboard.writeText(url.toString());
    copyButton.textContent = "Copied!";
  } catch {
    prompt("Copy this link:", url.toString());
  }
  setTimeout(() => (copyButton.textContent = "Copy link"), 1500);
});

// ---- wiring -------------------------------------------------------------------------------

let wasReconnecting = false;
client.on("connection", (state) => {
  renderConnection();
  if (state === "reconnecting" && !wasReconnecting) logActivity("info", "Connection lost, reconnecting…");
  if (state === "connected" && wasReconnecting) logActivity("info", "Connected again");
  wasReconnecting = state === "reconnecting";
});
room.on("users", renderUsers);
room.on("count", renderUsers);
room.on("cursors", renderCursors);
// In a list view a user entering or leaving the listed few has not come or gone (one
// listed before them left, or arrived before them): only a full view logs arrivals.
if (view === "full") {
  room.on("userJoined", (user) => logActivity("joined", `${user.name} joined`, user.color));
  room.on("userLeft", (user) => logActivity("left", `${user.name} left`, user.color));
} else {
  document.body.dataset.view = "list";
}
room.on("joined", ({ restored }) => {
  if (restored) logActivity("info", "Session restored: nobody saw you leave");
});
room.on("status", renderConnection);
room.on("error", (error) => logActivity("info", `Server refused: ${error.message || error.code}`));
if (isSpectator) showSpectatorMode();
renderConnection();
renderUsers();

// A spectator is not listed: nobody sees its name or pointer (the SDK drops its cursor
// moves), so the page says so instead of inviting it to move and rename.
function showSpectatorMode() {
  document.body.dataset.spectator = "true";
  nameInput.disabled = true;
  nameInput.title = "Spectators are not listed: nobody sees this name.";
  $("you-hint").textContent = "You are watching as a spectator: nobody here sees you or your pointer.";
  const hint = $("board-hint");
  /** @type {HTMLElement} */ (hint.querySelector("h1")).textContent = "You are watching";
  /** @type {HTMLElement} */ (hint.querySelector("p")).textContent =
    "Nobody here sees you. The pointers of the people listed on the right show up live.";
}

// ---- identity -----------------------------------------------------------------------------

/**
 * @param {string | null} raw
 * @returns {string}
 */
function roomFromUrl(raw) {
  // The server accepts 1 to 128 of A-Z a-z 0-9 . _ - : /; make anything else fit.
  const cleaned = (raw ?? "").trim().replace(/[^A-Za-z0-9._\-:/]+/g, "-").slice(0, 128);
  return cleaned || "lobby";
}

/**
 * `?view=list:K` is a list view of K others (at most 1000, what the server accepts);
 * anything else is the full roster.
 * @param {string | null} raw
 * @returns {"full" | { list: number }}
 */
function viewFromUrl(raw) {
  const match = /^list:(\d{1,7})$/.exec((raw ?? "").trim());
  return match ? { list: Math.min(Number(match[1]), 1000) } : "full";
}

/** @returns {{ id: string, name: string }} */
function loadIdentity() {
  try {
    const stored = JSON.parse(localStorage.getItem("presenced-demo:identity") ?? "null");
    if (typeof stored?.id === "string" && typeof stored?.name === "string") return stored;
  } catch {
    // Private mode or garbage: make a new one.
  }
  const identity = { id: `u-${randomHex(12)}`, name: randomName() };
  saveIdentity(identity);
  return identity;
}

/** @param {{ id: string, name: string }} value */
function saveIdentity(value) {
  try {
    localStorage.setItem("presenced-demo:identity", JSON.stringify(value));
  } catch {
    // Not persisted: the name lasts until the reload.
  }
}

/** @param {number} length */
function randomHex(length) {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(length / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, length);
}

function randomName() {
  const adjectives = ["Brave", "Calm", "Clever", "Curious", "Eager", "Gentle", "Happy", "Lucky", "Nimble", "Quiet", "Swift", "Witty"];
  const animals = ["Otter", "Falcon", "Panda", "Fox", "Heron", "Koala", "Lynx", "Marten", "Owl", "Puffin", "Seal", "Wombat"];
  const pick = (/** @type {string[]} */ list) => list[Math.floor(Math.random() * list.length)];
  return `${pick(adjectives)} ${pick(animals)}`;
}
