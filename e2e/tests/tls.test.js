// The demo over HTTPS and WSS (`--tls-cert`, `--tls-key`) in Chromium: two pages join and
// see each other through wss://, and a certificate swapped with SIGHUP leaves the open
// pages connected while a new page is served the new certificate. The certificates are
// self-signed, made with openssl for 127.0.0.1; Chromium is told to accept them.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { launchChromium } from "../support/browser.js";
import { startPresenced } from "../support/presenced.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "presenced-e2e-tls-"));
const certFile = path.join(dir, "cert.pem");
const keyFile = path.join(dir, "key.pem");

/** Writes a fresh self-signed certificate for 127.0.0.1 named `name`, as a renewal does. */
function issue(name) {
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", `${keyFile}.new`, "-out", `${certFile}.new`, "-days", "1",
    "-subj", `/CN=${name}`, "-addext", "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });
  renameSync(`${keyFile}.new`, keyFile);
  renameSync(`${certFile}.new`, certFile);
  return readFileSync(certFile, "utf8");
}

/** The common name of the certificate the server presents to a new connection. */
function servedName(port) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const name = socket.getPeerCertificate().subject?.CN;
      socket.end();
      resolve(name);
    });
    socket.once("error", reject);
  });
}

/** @type {Awaited<ReturnType<typeof startPresenced>>} */
let server;
/** @type {import("playwright-core").Browser} */
let browser;

before(async () => {
  issue("first");
  server = await startPresenced({ args: ["--tls-cert", certFile, "--tls-key", keyFile] });
  browser = await launchChromium(["--ignore-certificate-errors"]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** @param {string} room */
async function visit(room) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${server.httpUrl}/?room=${encodeURIComponent(room)}`);
  await page.waitForFunction(() => /** @type {any} */ (window).presence?.room?.status === "joined");
  const id = await page.evaluate(() => String(/** @type {any} */ (window).presence.room.self.id));
  return { context, page, errors, id };
}

describe("the demo over TLS", () => {
  it("joins over wss:// and keeps its pages through a SIGHUP certificate swap", async () => {
    assert.match(server.httpUrl, /^https:\/\//);
    assert.equal(await servedName(server.port), "first");
    const room = `e2e-tls-${process.pid}`;
    const ada = await visit(room);
    const bob = await visit(room);
    for (const [me, other] of [[ada, bob], [bob, ada]]) {
      await me.page.locator(`[data-testid="avatar"][data-user-id="${other.id}"]`).waitFor();
    }
    const resources = await ada.page.evaluate(() => performance.getEntriesByType("resource").map((e) => e.name));
    assert.ok(resources.some((url) => url.startsWith("https://")), "assets came over https");

    issue("second");
    process.kill(server.pid, "SIGHUP");
    const deadline = Date.now() + 10_000;
    while ((await servedName(server.port)) !== "second") {
      assert.ok(Date.now() < deadline, "SIGHUP never swapped the certificate");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The open pages never noticed; a new one joins with the new certificate.
    const cy = await visit(room);
    for (const me of [ada, bob]) {
      await me.page.locator(`[data-testid="avatar"][data-user-id="${cy.id}"]`).waitFor();
      const badge = await me.page.getByTestId("connection-badge").getAttribute("data-state");
      assert.equal(badge, "connected");
      assert.equal(await me.page.locator('[data-testid="activity"] li[data-kind="info"]').count(), 0, "no reconnect");
    }
    for (const visitor of [ada, bob, cy]) {
      assert.deepEqual(visitor.errors, []);
      await visitor.context.close();
    }
  });
});
