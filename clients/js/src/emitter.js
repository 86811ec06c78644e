// A tiny typed event emitter. The SDK uses it instead of EventTarget so that the
// same code runs in browsers and in Node without polyfills, and so that listeners
// get plain values (a snapshot, a state name) rather than Event objects.

/**
 * Subscribe with `on(event, listener)`; the returned function unsubscribes.
 * @template {Record<string, unknown[]>} Events event name → listener arguments
 */
export class Emitter {
  /** @type {Map<keyof Events, Set<(...args: any[]) => void>>} */
  #listeners = new Map();

  /**
   * Calls `listener` every time `event` is emitted.
   * @template {keyof Events} K
   * @param {K} event
   * @param {(...args: Events[K]) => void} listener
   * @returns {() => void} a function that removes the listener
   */
  on(event, listener) {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /**
   * Removes a listener added with `on`.
   * @template {keyof Events} K
   * @param {K} event
   * @param {(...args: Events[K]) => void} listener
   */
  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
  }

  /**
   * @protected
   * @template {keyof Events} K
   * @param {K} event
   * @param {Events[K]} args
   */
  emit(event, ...args) {
    const set = this.#listeners.get(event);
    if (!set) return;
    // Copy first: a listener may unsubscribe itself (or others) while we iterate.
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        // One faulty listener must not stop the others nor break message handling.
        reportListenerError(error);
      }
    }
  }
}

/** @param {unknown} error */
function reportListenerError(error) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else console.error(error);
}
