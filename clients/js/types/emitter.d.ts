/**
 * Subscribe with `on(event, listener)`; the returned function unsubscribes.
 * @template {Record<string, unknown[]>} Events event name → listener arguments
 */
export class Emitter<Events extends Record<string, unknown[]>> {
    /**
     * Calls `listener` every time `event` is emitted.
     * @template {keyof Events} K
     * @param {K} event
     * @param {(...args: Events[K]) => void} listener
     * @returns {() => void} a function that removes the listener
     */
    on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): () => void;
    /**
     * Removes a listener added with `on`.
     * @template {keyof Events} K
     * @param {K} event
     * @param {(...args: Events[K]) => void} listener
     */
    off<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): void;
    /**
     * @protected
     * @template {keyof Events} K
     * @param {K} event
     * @param {Events[K]} args
     */
    protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void;
    #private;
}
