/** @typedef {import("@presenced/client").PresenceUser} PresenceUser */
/**
 * A roster entry whose custom state has the declared shape. Any key may be missing (a
 * user who has not set it yet); `away` is set by the SDK.
 * @template {object} State
 * @typedef {Readonly<Omit<PresenceUser, "state"> & { state: Readonly<Partial<State> & { away?: boolean }> }>} UserWith
 */
/**
 * What `update` takes: some of the declared keys, each with its type, or `null` to delete it.
 * @template {object} State
 * @typedef {{ [K in keyof State]?: State[K] | null }} StatePatch
 */
/**
 * The hooks and the provider, typed for one shape of custom state.
 * @template {object} State
 * @typedef {object} PresenceHooks
 * @property {(props: Omit<import("./context.js").PresenceProviderProps, "initialState"> & { initialState?: StatePatch<State> }) => import("react").ReactElement} PresenceProvider
 * @property {() => ReadonlyArray<UserWith<State>>} useUsers
 * @property {{ (): ReadonlyArray<UserWith<State>>; <T>(selector: (others: ReadonlyArray<UserWith<State>>) => T, isEqual?: (a: T, b: T) => boolean): T }} useOthers
 * @property {{ (userId: string): UserWith<State> | null; <T>(userId: string, selector: (user: UserWith<State>) => T, isEqual?: (a: T, b: T) => boolean): T | null }} useOther
 * @property {() => UserWith<State> | null} useSelf
 * @property {typeof useCount} useCount
 * @property {typeof useSpectators} useSpectators
 * @property {() => Omit<import("./hooks.js").Presence, "users" | "others" | "self" | "update"> & { users: ReadonlyArray<UserWith<State>>, others: ReadonlyArray<UserWith<State>>, self: UserWith<State> | null, update: (patch: StatePatch<State>) => void }} usePresence
 * @property {typeof useCursors} useCursors
 * @property {typeof useConnectionState} useConnectionState
 * @property {typeof useRoomStatus} useRoomStatus
 * @property {typeof useErrors} useErrors
 * @property {typeof useCursorTracking} useCursorTracking
 */
/**
 * The hooks and the provider typed for the app's custom state, declared once:
 *
 *     type State = { typing: boolean; mood?: string };
 *     export const { PresenceProvider, usePresence, useOthers } = createPresenceHooks<State>();
 *
 * @template {object} State
 * @returns {PresenceHooks<State>}
 */
export function createPresenceHooks<State extends object>(): PresenceHooks<State>;
export type PresenceUser = import("@presenced/client").PresenceUser;
/**
 * A roster entry whose custom state has the declared shape. Any key may be missing (a
 * user who has not set it yet); `away` is set by the SDK.
 */
export type UserWith<State extends object> = Readonly<Omit<PresenceUser, "state"> & {
    state: Readonly<Partial<State> & {
        away?: boolean;
    }>;
}>;
/**
 * What `update` takes: some of the declared keys, each with its type, or `null` to delete it.
 */
export type StatePatch<State extends object> = { [K in keyof State]?: State[K] | null; };
/**
 * The hooks and the provider, typed for one shape of custom state.
 */
export type PresenceHooks<State extends object> = {
    PresenceProvider: (props: Omit<import("./context.js").PresenceProviderProps, "initialState"> & {
        initialState?: StatePatch<State>;
    }) => import("react").ReactElement;
    useUsers: () => ReadonlyArray<UserWith<State>>;
    useOthers: {
        (): ReadonlyArray<UserWith<State>>;
        <T>(selector: (others: ReadonlyArray<UserWith<State>>) => T, isEqual?: (a: T, b: T) => boolean): T;
    };
    useOther: {
        (userId: string): UserWith<State> | null;
        <T>(userId: string, selector: (user: UserWith<State>) => T, isEqual?: (a: T, b: T) => boolean): T | null;
    };
    useSelf: () => UserWith<State> | null;
    useCount: typeof useCount;
    useSpectators: typeof useSpectators;
    usePresence: () => Omit<import("./hooks.js").Presence, "users" | "others" | "self" | "update"> & {
        users: ReadonlyArray<UserWith<State>>;
        others: ReadonlyArray<UserWith<State>>;
        self: UserWith<State> | null;
        update: (patch: StatePatch<State>) => void;
    };
    useCursors: typeof useCursors;
    useConnectionState: typeof useConnectionState;
    useRoomStatus: typeof useRoomStatus;
    useErrors: typeof useErrors;
    useCursorTracking: typeof useCursorTracking;
};
import { useCount } from "./hooks.js";
import { useSpectators } from "./hooks.js";
import { useCursors } from "./hooks.js";
import { useConnectionState } from "./hooks.js";
import { useRoomStatus } from "./hooks.js";
import { useErrors } from "./hooks.js";
import { useCursorTracking } from "./hooks.js";
