/**
 * @typedef {object} BackoffOptions
 * @property {number} baseDelayMs the window of the first retry
 * @property {number} maxDelayMs the cap of the window
 */
/**
 * The delay before retry number `attempt` (0 for the first retry): a uniformly random
 * whole number of milliseconds in `[0, min(maxDelayMs, baseDelayMs * 2^attempt))`.
 * @param {number} attempt
 * @param {BackoffOptions} options
 * @param {() => number} [random] returns a number in [0, 1); `Math.random` by default
 * @returns {number}
 */
export function backoffDelay(attempt: number, { baseDelayMs, maxDelayMs }: BackoffOptions, random?: () => number): number;
export type BackoffOptions = {
    /**
     * the window of the first retry
     */
    baseDelayMs: number;
    /**
     * the cap of the window
     */
    maxDelayMs: number;
};
