/** @typedef {import("@presenced/client").LiveCursor} LiveCursor */
/**
 * Props of `LiveCursors`.
 * @typedef {object} LiveCursorsProps
 * @property {"fraction" | "pixels"} [coordinates] how to read x and y: fractions of the
 *   container (what `useCursorTracking` sends; the default) or CSS pixels
 * @property {number} [smoothingMs] length of the glide between positions (80)
 * @property {string} [className]
 */
/**
 * Draws the others' live cursors. Put it inside the element the cursors move over,
 * which must be positioned (e.g. `position: relative`).
 * @param {LiveCursorsProps} props
 */
export function LiveCursors({ coordinates, smoothingMs, className }: LiveCursorsProps): import("react").DetailedReactHTMLElement<{
    className: string | undefined;
    "aria-hidden": true;
    "data-testid": string;
    style: {
        position: "absolute";
        inset: number;
        pointerEvents: "none";
        overflow: "hidden";
    };
}, HTMLElement>;
export type LiveCursor = import("@presenced/client").LiveCursor;
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
    className?: string | undefined;
};
