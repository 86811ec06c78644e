// presenced browser SDK: who is here, where their cursors are, and whether we are
// connected. Dependency-free ES modules for browsers and Node 20 (pass `ws` there).
//
//   import { createClient } from "/sdk/index.js";
//   const client = createClient({ user: { id: "u1", name: "Ada" } });
//   const room = client.join("lobby");
//   room.on("users", (users) => render(users));
//   // Fractions of the board (0 to 1), as <LiveCursors/> and the demo draw them.
//   board.onpointermove = (e) => room.moveCursor(e.offsetX / board.clientWidth, e.offsetY / board.clientHeight);

export { createClient, PresenceClient } from "./client.js";
export { Room } from "./room.js";
export { backoffDelay } from "./backoff.js";
export { initials } from "./initials.js";

/** @typedef {import("./types.js").User} User */
/** @typedef {import("./types.js").PresenceUser} PresenceUser */
/** @typedef {import("./types.js").LiveCursor} LiveCursor */
/** @typedef {import("./types.js").CursorPosition} CursorPosition */
/** @typedef {import("./types.js").ConnectionState} ConnectionState */
/** @typedef {import("./types.js").RoomStatus} RoomStatus */
/** @typedef {import("./types.js").PresenceError} PresenceError */
/** @typedef {import("./types.js").WebSocketLike} WebSocketLike */
/** @typedef {import("./client.js").ClientOptions} ClientOptions */
/** @typedef {import("./client.js").TokenSource} TokenSource */
/** @typedef {import("./room.js").JoinOptions} JoinOptions */
/** @typedef {import("./room.js").RoomView} RoomView */
/** @typedef {import("./room.js").RoomCount} RoomCount */
/** @typedef {import("./client.js").ClientEvents} ClientEvents */
/** @typedef {import("./room.js").RoomEvents} RoomEvents */
/** @typedef {import("./session-store.js").SessionStorageLike} SessionStorageLike */
/** @typedef {import("./types.js").WebSocketConstructor} WebSocketConstructor */
