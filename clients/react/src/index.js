// React bindings for presenced, on top of @presenced/client.
//
//   <PresenceProvider room="lobby" user={{ id, name }}>
//     <PresenceIndicators />
//     <Board />            // useCursorTracking(ref) + <LiveCursors/> inside
//   </PresenceProvider>

export { PresenceProvider, PresenceContext, usePresenceContext } from "./context.js";
export {
  usePresence,
  useUsers,
  useOthers,
  useOther,
  useCount,
  useSpectators,
  useSelf,
  useCursors,
  useConnectionState,
  useRoomStatus,
  useErrors,
  useCursorTracking,
  shallow,
} from "./hooks.js";
export { createPresenceHooks } from "./create-presence-hooks.js";
export { PresenceIndicators, Avatar } from "./PresenceIndicators.js";
export { LiveCursors } from "./LiveCursors.js";

/** @typedef {import("./hooks.js").Presence} Presence */
/** @template {object} State @typedef {import("./create-presence-hooks.js").PresenceHooks<State>} PresenceHooks */
/** @template {object} State @typedef {import("./create-presence-hooks.js").UserWith<State>} UserWith */
/** @template {object} State @typedef {import("./create-presence-hooks.js").StatePatch<State>} StatePatch */
/** @typedef {import("./context.js").PresenceProviderProps} PresenceProviderProps */
/** @typedef {import("./PresenceIndicators.js").PresenceIndicatorsProps} PresenceIndicatorsProps */
/** @typedef {import("./LiveCursors.js").LiveCursorsProps} LiveCursorsProps */
