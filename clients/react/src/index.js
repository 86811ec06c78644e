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
  useSelf,
  useCursors,
  useConnectionState,
  useRoomStatus,
  useErrors,
  useCursorTracking,
} from "./hooks.js";
export { PresenceIndicators, Avatar } from "./PresenceIndicators.js";
export { LiveCursors } from "./LiveCursors.js";
