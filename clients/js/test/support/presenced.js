// Starts the real `presenced` binary for tests: on 127.0.0.1, port 0 unless a port is
// given (to restart on the same one), and waits for the one line it prints when ready,
// `listening on http://ADDR` (`https://` with --tls-cert), instead of sleeping. Shared by the SDK's integration
// tests and the e2e tests. Every started server is killed when the test process exits.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

/** @type {Set<import("node:child_process").ChildProcess>} */
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * The binary under test: `PRESENCED_BIN` (relative to the current directory), or
 * `target/debug/presenced` of this repository. Fails clearly when it is missing.
 * @returns {string}
 */
export function presencedBin() {
  const bin = process.env.PRESENCED_BIN
    ? path.resolve(process.env.PRESENCED_BIN)
    : path.join(repoRoot, "target/debug/presenced");
  if (!existsSync(bin)) {
    throw new Error(
      `presenced binary not found at ${bin}. Build it with \`cargo build -p presence-server\` ` +
        "in the repository root, or point PRESENCED_BIN at it.",
    );
  }
  return bin;
}

/**
 * @typedef {object} RunningServer
 * @property {string} httpUrl e.g. http://127.0.0.1:41234 (https:// with --tls-cert)
 * @property {string} wsUrl e.g. ws://127.0.0.1:41234/ws (wss:// with --tls-cert)
 * @property {number} port
 * @property {number} pid the process, for signals other than the stop
 * @property {() => string} output what the server wrote to stderr so far (for failure messages)
 * @property {(signal?: NodeJS.Signals) => Promise<void>} stop sends `signal` (SIGTERM) and waits for the exit
 */

/**
 * @param {{ port?: number, args?: string[], reconnectGrace?: string }} [options]
 * @returns {Promise<RunningServer>}
 */
export async function startPresenced({ port = 0, args = [], reconnectGrace = "2s" } = {}) {
  const bin = presencedBin();
  // Restarting on the port of a server that just exited can meet the old socket for a
  // moment; only then is a failed start retried.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(bin, port, ["--reconnect-grace", reconnectGrace, ...args]);
    } catch (error) {
      if (port === 0 || attempt >= 20 || !/in use|AddrInUse|address already/i.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * @param {string} bin
 * @param {number} port
 * @param {string[]} args
 * @returns {Promise<RunningServer>}
 */
function spawnOnce(bin, port, args) {
  const child = spawn(bin, ["--listen", `127.0.0.1:${port}`, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  running.add(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exited = new Promise((resolve) => {
    child.once("exit", () => {
      running.delete(child);
      resolve(undefined);
    });
  });

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`presenced printed no "listening on" line within 20 s\n${stderr}`));
    }, 20_000);
    let stdout = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk) => {
      stdout += chunk;
      const match = /^listening on (https?:\/\/(\S+?):(\d+))\s*$/m.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      const httpUrl = match[1];
      resolve({
        httpUrl,
        wsUrl: `${httpUrl.replace(/^http/, "ws")}/ws`,
        port: Number(match[3]),
        pid: /** @type {number} */ (child.pid),
        output: () => stderr,
        stop: async (signal = "SIGTERM") => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
      });
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`presenced exited (${code ?? signal}) before listening\n${stderr}`));
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
