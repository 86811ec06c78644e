// <PresenceIndicators/>: the others as 32 px circles with white initials on their
// color, the name on hover, "+N" past `max`, and "N online". Renders nothing when alone.
// N counts the whole room (useCount), so in a room joined with a list view, which lists
// only the first few, it reads "3 avatars, +12,404, 12,407 online".
// Render props replace an avatar or the count; the fixed colors are CSS variables
// (--presenced-*) with the defaults as fallbacks, so a theme sets them in CSS.

import { Fragment, createElement as h } from "react";
import { initials } from "@presenced/client";
import { useCount, useOthers, useSelf } from "./hooks.js";

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

/** @type {import("react").CSSProperties} */
const overflowPill = { ...circle, width: "auto", minWidth: AVATAR_PX, padding: "0 6px", borderRadius: AVATAR_PX / 2 };

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
 * @property {number} [max] how many circles before "+N" (5); N counts every other user
 *   in the room, also those a list view does not list
 * @property {string} [className] on the outer element
 * @property {import("react").CSSProperties} [style] on the outer element
 * @property {(user: PresenceUser) => ReactNode} [renderAvatar] draws one user instead of `<Avatar/>`
 * @property {(count: number, others: ReadonlyArray<PresenceUser>) => ReactNode} [renderCount] replaces "N online":
 *   `count` is how many others are in the room, `others` the ones listed
 */

/**
 * The others in the room, as avatars with "N online". Hidden when nobody else is here.
 * With a list view it shows the listed few and "+N" for the rest of the room.
 * CSS variables: `--presenced-avatar-text`, `--presenced-avatar-ring`,
 * `--presenced-overflow-background`, `--presenced-muted`, `--presenced-font`.
 * @param {PresenceIndicatorsProps} props
 * @returns {ReactElement | null}
 */
export function PresenceIndicators({ max = 5, className, style, renderAvatar, renderCount }) {
  const others = useOthers();
  const count = useCount();
  const isSelfListed = useSelf() !== null;
  // Everyone else in the room. A list view lists only some of them; and a count that is
  // a cursor interval behind the roster must not show fewer than are listed.
  const othersInRoom = Math.max(others.length, count - (isSelfListed ? 1 : 0));
  if (othersInRoom === 0) return null;
  const shown = others.slice(0, Math.max(0, max));
  const hidden = others.slice(shown.length);
  const hiddenCount = othersInRoom - shown.length;
  const unlisted = hiddenCount - hidden.length;
  const hiddenNames = hidden.map((user) => user.name).join(", ");
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
      hiddenCount > 0 &&
        h(
          "div",
          {
            "data-testid": "avatar-overflow",
            title:
              unlisted === 0
                ? hiddenNames
                : `${hiddenNames}${hiddenNames ? " and " : ""}${unlisted.toLocaleString()} more`,
            // A pill that stays a circle for "+3" and widens for "+12,404".
            style: { ...overflowPill, backgroundColor: "var(--presenced-overflow-background, #5f6368)" },
          },
          `+${hiddenCount.toLocaleString()}`,
        ),
    ),
    renderCount
      ? renderCount(othersInRoom, others)
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
          `${othersInRoom.toLocaleString()} online`,
        ),
  );
}
