// Reconnect delays: exponential backoff with "full jitter" (AWS architecture blog,
// "Exponential Backoff And Jitter"). Full jitter spreads a crowd of clients that lost
// the same server over the whole window, so a restarted node is not hit by all of
// them in the same millisecond.

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
export function backoffDelay(attempt, { baseDelayMs, maxDelayMs }, random = Math.random) {
  const window = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * window);
}
