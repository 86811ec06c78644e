// Launches Debian's Chromium (never a downloaded browser) through playwright-core.

import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * The Chromium to drive: `CHROMIUM_BIN`, else `which chromium`. Throws (and so fails
 * the run, never skips it) when there is none.
 * @returns {string}
 */
export function chromiumPath() {
  if (process.env.CHROMIUM_BIN) return process.env.CHROMIUM_BIN;
  try {
    return execFileSync("which", ["chromium"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(
      "Chromium not found: the e2e tests need Debian's chromium (`apt-get install -y chromium`) " +
        "or CHROMIUM_BIN pointing at a Chromium binary.",
    );
  }
}

/**
 * @param {string[]} [extraArgs] more command-line switches for this browser
 * @returns {Promise<import("playwright-core").Browser>}
 */
export function launchChromium(extraArgs = []) {
  return chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS, ...extraArgs] });
}
