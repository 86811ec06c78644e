/**
 * One user's circle. Dimmed while the user is away.
 * @param {{ user: PresenceUser }} props
 * @returns {ReactElement}
 */
export function Avatar({ user }: {
    user: PresenceUser;
}): ReactElement;
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
export function PresenceIndicators({ max, className, style, renderAvatar, renderCount }: PresenceIndicatorsProps): ReactElement | null;
/**
 * Props of `PresenceIndicators`.
 */
export type PresenceIndicatorsProps = {
    /**
     * how many circles before "+N" (5); N counts every other user
     * in the room, also those a list view does not list
     */
    max?: number | undefined;
    /**
     * on the outer element
     */
    className?: string | undefined;
    /**
     * on the outer element
     */
    style?: import("react").CSSProperties | undefined;
    /**
     * draws one user instead of `<Avatar/>`
     */
    renderAvatar?: ((user: PresenceUser) => ReactNode) | undefined;
    /**
     * replaces "N online":
     * `count` is how many others are in the room, `others` the ones listed
     */
    renderCount?: ((count: number, others: ReadonlyArray<PresenceUser>) => ReactNode) | undefined;
};
export type PresenceUser = import("@presenced/client").PresenceUser;
export type ReactElement = import("react").ReactElement;
export type ReactNode = import("react").ReactNode;
