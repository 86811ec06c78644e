// <PresenceIndicators/>: the others as 32 px circles with white initials on their
// color, the name on hover, "+N" past `max`, and "N online". Renders nothing when alone.
// Render props replace an avatar or the count; the fixed colors are CSS variables
// (--presenced-*) with the defaults as fallbacks, so a theme sets them in CSS.

import { Fragment, createElement as h } from "react";
import { initials } from "@presenced/client";
import { useOthers } from "./hooks.js";

/** @typedef {import("@presenced/client").PresenceUser} PresenceUser */
/** @typedef {import("react").ReactElement} ReactElement */
/** @typedef {import("react").ReactNode} ReactNode */

const AVATAR_PX = 32;

/** @type {import("react").CSSProperties} */
const circle = {
  width: AVATAR_PX,
  height: AVATAR_PX,
  borderRadius: "50%",
  display: "flex",
  alignItems: "center",
  justifyContent: "center",
  color: "var(--presenced-avatar-text, white)",
  fontSize: 13,
  fontWeight: 600,
  fontFamily: "var(--presenced-font, system-ui, sans-serif)",
  border: "2px solid var(--presenced-avatar-ring, white)",
  boxSizing: "border-box",
  marginLeft: -6,
  boxShadow: "0 1px 3px rgba(0,0,0,0.25)",
  userSelect: "none",
};

/**
 * One user's circle. Dimmed while the user is away.
 * @param {{ user: PresenceUser }} props
 * @returns {ReactElement}
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
 * @property {string} [className] on the outer element
 * @property {import("react").CSSProperties} [style] on the outer element
 * @property {(user: PresenceUser) => ReactNode} [renderAvatar] draws one user instead of `<Avatar/>`
 * @property {(count: number, others: ReadonlyArray<PresenceUser>) => ReactNode} [renderCount] replaces "N online"
 */

/**
 * The others in the room, as avatars with "N online". Hidden when nobody else is here.
 * CSS variables: `--presenced-avatar-text`, `--presenced-avatar-ring`,
 * `--presenced-overflow-background`, `--presenced-muted`, `--presenced-font`.
 * @param {PresenceIndicatorsProps} props
 * @returns {ReactElement | null}
 */
export function PresenceIndicators({ max = 5, className, style, renderAvatar, renderCount }) {
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
      shown.map((user) =>
        renderAvatar ? h(Fragment, { key: user.id }, renderAvatar(user)) : h(Avatar, { key: user.id, user }),
      ),
      hidden.length > 0 &&
        h(
          "div",
          {
            "data-testid": "avatar-overflow",
            title: hidden.map((user) => user.name).join(", "),
            style: { ...circle, backgroundColor: "var(--presenced-overflow-background, #5f6368)" },
          },
          `+${hidden.length}`,
        ),
    ),
    renderCount
      ? renderCount(others.length, others)
      : h(
          "span",
          {
            "data-testid": "online-count",
            style: {
              fontSize: 14,
              color: "var(--presenced-muted, #555)",
              fontFamily: "var(--presenced-font, system-ui, sans-serif)",
            },
          },
          `${others.length} online`,
        ),
  );
}
