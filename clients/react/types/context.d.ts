/**
 * Props of `PresenceProvider`. Give either `client` (shared, never closed by the
 * provider) or the options to create one (`url`, `user`, `options`), closed on unmount.
 * @typedef {object} PresenceProviderProps
 * @property {string} [room] the room to join; `"default"` when omitted
 * @property {PresenceClient} [client] an existing client
 * @property {string} [url] the WebSocket endpoint; `ws(s)://<this host>/ws` by default
 * @property {{ id?: string, name?: string }} [user] who joins; a changed `name` renames
 * @property {Record<string, unknown>} [initialState] the state to join with (not for a spectator)
 * @property {import("@presenced/client").RoomView} [view] `"full"` (the default) or
 *   `{ list: K }`: only the first K others are listed, `useCount()` counts the room
 * @property {boolean} [spectator] watch the room without being listed in it
 * @property {import("@presenced/client").ClientOptions} [options] more client options (its `url` and `user` are overridden by the props)
 * @property {import("react").ReactNode} [children]
 */
/**
 * Connects to presenced and joins `room` for everything below it. Leaves the room when
 * unmounted or when `room`, `view` or `spectator` changes. A page reload is not an unmount: the tab's session
 * is restored by the next load, and the others see no leave.
 * @param {PresenceProviderProps} props
 * @returns {import("react").ReactElement}
 */
export function PresenceProvider({ room: roomName, client: givenClient, url, user, initialState, view, spectator, options, children, }: PresenceProviderProps): import("react").ReactElement;
/**
 * The provider's client and room.
 * @returns {PresenceContextValue}
 */
export function usePresenceContext(): PresenceContextValue;
/**
 * The room a hook reads: `room` when one is given (a room or null, no provider needed),
 * otherwise the provider's.
 * @internal
 * @param {Room | null | undefined} room
 * @returns {Room | null}
 */
export function useGivenOrProvidedRoom(room: Room | null | undefined): Room | null;
/** @typedef {import("@presenced/client").PresenceClient} PresenceClient */
/** @typedef {import("@presenced/client").Room} Room */
/** @typedef {import("@presenced/client").ClientOptions} ClientOptions */
/**
 * What the provider shares. `room` is null until the provider has joined (after mount).
 * @typedef {object} PresenceContextValue
 * @property {PresenceClient | null} client
 * @property {Room | null} room
 */
/** @type {import("react").Context<PresenceContextValue | null>} */
export const PresenceContext: import("react").Context<PresenceContextValue | null>;
/**
 * Props of `PresenceProvider`. Give either `client` (shared, never closed by the
 * provider) or the options to create one (`url`, `user`, `options`), closed on unmount.
 */
export type PresenceProviderProps = {
    /**
     * the room to join; `"default"` when omitted
     */
    room?: string | undefined;
    /**
     * an existing client
     */
    client?: import("@presenced/client").PresenceClient | undefined;
    /**
     * the WebSocket endpoint; `ws(s)://<this host>/ws` by default
     */
    url?: string | undefined;
    /**
     * who joins; a changed `name` renames
     */
    user?: {
        id?: string;
        name?: string;
    } | undefined;
    /**
     * the state to join with (not for a spectator)
     */
    initialState?: Record<string, unknown> | undefined;
    /**
     * `"full"` (the default) or
     * `{ list: K }`: only the first K others are listed, `useCount()` counts the room
     */
    view?: import("@presenced/client/room.js").RoomView | undefined;
    /**
     * watch the room without being listed in it
     */
    spectator?: boolean | undefined;
    /**
     * more client options (its `url` and `user` are overridden by the props)
     */
    options?: import("@presenced/client/client.js").ClientOptions | undefined;
    children?: import("react").ReactNode;
};
export type PresenceClient = import("@presenced/client").PresenceClient;
export type Room = import("@presenced/client").Room;
export type ClientOptions = import("@presenced/client").ClientOptions;
/**
 * What the provider shares. `room` is null until the provider has joined (after mount).
 */
export type PresenceContextValue = {
    client: PresenceClient | null;
    room: Room | null;
};
