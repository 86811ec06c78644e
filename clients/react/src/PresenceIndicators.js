// <PresenceIndicators/>: the others as 32 px circles with white initials on their
// color, the name on hover, "+N" past `max`, and "N online". Renders nothing when alone.

import { createElement as h } from "react";
import { initials } from "@presenced/client";
import { useOthers } from "./hooks.js";

/** @typedef {import("@presenced/client").PresenceUser} PresenceUser */

const AVATAR_PX = 32;

/** @type {import("react").CSSProperties} */
const circle = {
  width: AVATAR_PX,
  height: AVATAR_PX,
  borderRadius: "50%",
  display: "flex",
  alignItems: "center",
  justifyContent: "center",
  color: "white",
  fontSize: 13,
  fontWeight: 600,
  fontFamily: "system-ui, sans-serif",
  border: "2px solid white",
  boxSizing: "border-box",
  marginLeft: -6,
  boxShadow: "0 1px 3px rgba(0,0,0,0.25)",
  userSelect: "none",
};

/**
 * One user's circle. Dimmed while the user is away.
 * @param {{ user: PresenceUser }} props
 */
export function Avatar({ user }) {
  return h(
    "div",
    {
      title: user.away ? `${user.name} (away)` : user.name,
      "data-testid": "avatar",
      "data-user-id": user.id,
      "data-away": user.away ? "true" : undefined,
      style: { ...circle, backgroundColor: user.color, opacity: user.away ? 0.5 : 1 },
    },
    initials(user.name),
  );
}

/**
 * Props of `PresenceIndicators`.
 * @typedef {object} PresenceIndicatorsProps
 * @property {number} [max] how many circles before "+N" (5)
 * @property {string} [className]
 * @property {import("react").CSSProperties} [style]
 */

/**
 * The others in the room, as avatars with "N online". Hidden when nobody else is here.
 * @param {PresenceIndicatorsProps} props
 */
export function PresenceIndicators({ max = 5, className, style }) {
  const others = useOthers();
  if (others.length === 0) return null;
  const shown = others.slice(0, Math.max(0, max));
  const hidden = others.slice(shown.length);
  return h(
    "div",
    {
      className,
      "data-testid": "presence-indicators",
      style: { display: "flex", alignItems: "center", gap: 10, ...style },
    },
    h(
      "div",
      { style: { display: "flex", paddingLeft: 6 } },
      shown.map((user) => h(Avatar, { key: user.id, user })),
      hidden.length > 0 &&
        h(
          "div",
          {
            "data-testid": "avatar-overflow",
            title: hidden.map((user) => user.name).join(", "),
            style: { ...circle, backgroundColor: "#5f6368" },
          },
          `+${hidden.length}`,
        ),
    ),
    h(
      "span",
      { "data-testid": "online-count", style: { fontSize: 14, color: "#555", fontFamily: "system-ui, sans-serif" } },
      `${others.length} online`,
    ),
  );
}
