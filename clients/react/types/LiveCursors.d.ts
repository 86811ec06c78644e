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
export function LiveCursors({ coordinates, smoothingMs, className, renderCursor }: LiveCursorsProps): ReactElement;
export type LiveCursor = import("@presenced/client").LiveCursor;
export type ReactElement = import("react").ReactElement;
export type ReactNode = import("react").ReactNode;
/**
 * Props of `LiveCursors`.
 */
export type LiveCursorsProps = {
    /**
     * how to read x and y: fractions of the
     * container (what `useCursorTracking` sends; the default) or CSS pixels
     */
    coordinates?: "fraction" | "pixels" | undefined;
    /**
     * length of the glide between positions (80)
     */
    smoothingMs?: number | undefined;
    /**
     * on the layer that holds the cursors
     */
    className?: string | undefined;
    /**
     * draws one cursor (its tip
     * at the top-left corner) instead of the arrow and label; it is placed and glided for you
     */
    renderCursor?: ((cursor: LiveCursor) => ReactNode) | undefined;
};
