// <LiveCursors/>: the others' cursors over the nearest positioned ancestor, an arrow
// in each user's color with a name label. The SDK delivers positions about every 50 ms;
// a CSS transition of the same length glides between them, so motion looks continuous
// without a render per animation frame. `renderCursor` draws a cursor of the app's own;
// the fixed colors are CSS variables (--presenced-*) with the defaults as fallbacks.

import { createElement as h } from "react";
import { useCursors } from "./hooks.js";

/** @typedef {import("@presenced/client").LiveCursor} LiveCursor */
/** @typedef {import("react").ReactElement} ReactElement */
/** @typedef {import("react").ReactNode} ReactNode */

/**
 * Props of `LiveCursors`.
 * @typedef {object} LiveCursorsProps
 * @property {"fraction" | "pixels"} [coordinates] how to read x and y: fractions of the
 *   container (what `useCursorTracking` sends; the default) or CSS pixels
 * @property {number} [smoothingMs] length of the glide between positions (80)
 * @property {string} [className] on the layer that holds the cursors
 * @property {(cursor: LiveCursor) => ReactNode} [renderCursor] draws one cursor (its tip
 *   at the top-left corner) instead of the arrow and label; it is placed and glided for you
 */

/**
 * Draws the others' live cursors. Put it inside the element the cursors move over,
 * which must be positioned (e.g. `position: relative`). CSS variables:
 * `--presenced-cursor-outline`, `--presenced-cursor-label-text`, `--presenced-font`.
 * @param {LiveCursorsProps} props
 * @returns {ReactElement}
 */
export function LiveCursors({ coordinates = "fraction", smoothingMs = 80, className, renderCursor }) {
  const cursors = useCursors();
  return h(
    "div",
    {
      className,
      "aria-hidden": true,
      "data-testid": "live-cursors",
      style: { position: "absolute", inset: 0, pointerEvents: "none", overflow: "hidden" },
    },
    cursors.map((cursor) => h(Cursor, { key: cursor.userId, cursor, coordinates, smoothingMs, renderCursor })),
  );
}

/**
 * @param {{ cursor: LiveCursor, coordinates: "fraction" | "pixels", smoothingMs: number, renderCursor?: (cursor: LiveCursor) => ReactNode }} props
 * @returns {ReactElement}
 */
function Cursor({ cursor, coordinates, smoothingMs, renderCursor }) {
  const position =
    coordinates === "fraction"
      ? { left: `${cursor.x * 100}%`, top: `${cursor.y * 100}%` }
      : { left: `${cursor.x}px`, top: `${cursor.y}px` };
  return h(
    "div",
    {
      "data-testid": "cursor",
      "data-user-id": cursor.userId,
      style: {
        position: "absolute",
        ...position,
        transition: `left ${smoothingMs}ms linear, top ${smoothingMs}ms linear`,
        willChange: "left, top",
      },
    },
    renderCursor ? renderCursor(cursor) : defaultCursor(cursor),
  );
}

/**
 * The arrow in the user's color, outlined, and the name on a label of the same color.
 * @param {LiveCursor} cursor
 * @returns {ReactNode}
 */
function defaultCursor(cursor) {
  return [
    h(
      "svg",
      { key: "arrow", width: 20, height: 22, viewBox: "0 0 20 22", style: { display: "block", overflow: "visible" } },
      h("path", {
        d: "M1 1 L1 17 L5.5 13 L8.5 20 L11.5 18.7 L8.6 12 L14.5 12 Z",
        fill: cursor.color,
        stroke: "var(--presenced-cursor-outline, white)",
        strokeWidth: 1.5,
        strokeLinejoin: "round",
      }),
    ),
    h(
      "span",
      {
        key: "label",
        style: {
          position: "absolute",
          left: 14,
          top: 18,
          padding: "2px 8px",
          borderRadius: 10,
          background: cursor.color,
          color: "var(--presenced-cursor-label-text, white)",
          fontSize: 12,
          fontWeight: 600,
          fontFamily: "var(--presenced-font, system-ui, sans-serif)",
          whiteSpace: "nowrap",
          boxShadow: "0 1px 2px rgba(0,0,0,0.2)",
        },
      },
      cursor.name,
    ),
  ];
}
