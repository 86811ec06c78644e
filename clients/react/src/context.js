// <PresenceProvider>: connects (or takes a client), joins one room, and hands both to
// the hooks below it through context.

import { createContext, createElement, useContext, useEffect, useMemo, useState } from "react";
import { createClient } from "@presenced/client";

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
export const PresenceContext = createContext(/** @type {PresenceContextValue | null} */ (null));

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
export function PresenceProvider({
  room: roomName = "default",
  client: givenClient,
  url,
  user,
  initialState,
  view,
  spectator = false,
  options,
  children,
}) {
  const [ownClient, setOwnClient] = useState(/** @type {PresenceClient | null} */ (null));
  const userId = user?.id;
  const userName = user?.name;

  // Create our own client in an effect, not during render: render may run twice (or be
  // thrown away) and a client is a connection.
  useEffect(() => {
    if (givenClient) return undefined;
    const client = createClient({ ...options, url, user: { id: userId, name: userName } });
    setOwnClient(client);
    return () => {
      client.close();
      setOwnClient(null);
    };
    // The name is applied by the effect below without reconnecting; options are read once.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [givenClient, url, userId]);

  const client = givenClient ?? ownClient;

  useEffect(() => {
    if (client && userName !== undefined) client.setName(userName);
  }, [client, userName]);

  // A view written inline (`view={{ list: 20 }}`) is a new object on every render: join
  // again only when what it says changes.
  const viewKey = JSON.stringify(view ?? "full");
  const [room, setRoom] = useState(/** @type {Room | null} */ (null));
  useEffect(() => {
    if (!client) return undefined;
    const joined = client.join(roomName, { state: initialState, view, spectator });
    setRoom(joined);
    return () => {
      joined.leave();
      setRoom(null);
    };
    // initialState is what the room is joined with; later changes go through update().
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, roomName, viewKey, spectator]);

  const value = useMemo(() => ({ client, room }), [client, room]);
  return createElement(PresenceContext.Provider, { value }, children);
}

const NO_PROVIDER = "presenced: hooks and components need a <PresenceProvider> above them";

/**
 * The provider's client and room.
 * @returns {PresenceContextValue}
 */
export function usePresenceContext() {
  const value = useContext(PresenceContext);
  if (!value) throw new Error(NO_PROVIDER);
  return value;
}

/**
 * The room a hook reads: `room` when one is given (a room or null, no provider needed),
 * otherwise the provider's.
 * @internal
 * @param {Room | null | undefined} room
 * @returns {Room | null}
 */
export function useGivenOrProvidedRoom(room) {
  const value = useContext(PresenceContext);
  if (room !== undefined) return room;
  if (!value) throw new Error(NO_PROVIDER);
  return value.room;
}
