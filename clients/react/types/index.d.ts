export { LiveCursors } from "./LiveCursors.js";
export { PresenceProvider, PresenceContext, usePresenceContext } from "./context.js";
export { usePresence, useUsers, useOthers, useSelf, useCursors, useConnectionState, useRoomStatus, useErrors, useCursorTracking } from "./hooks.js";
export { PresenceIndicators, Avatar } from "./PresenceIndicators.js";
