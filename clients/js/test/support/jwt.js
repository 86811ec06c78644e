// Signs HS256 JSON Web Tokens for tests against a presenced started with `--jwt-secret`,
// with Node's crypto only. Shared by the SDK's integration tests and the e2e tests.

import { createHmac } from "node:crypto";

/** A secret long enough that presenced does not warn about it (32 bytes or more). */
export const TEST_JWT_SECRET = "presenced-test-secret-of-32-bytes-at-least";

/**
 * @param {Record<string, unknown>} claims e.g. `{ sub: "ada", name: "Ada", exp }` (`exp` in Unix seconds)
 * @param {string} [secret]
 * @returns {string}
 */
export function signToken(claims, secret = TEST_JWT_SECRET) {
  const encode = (/** @type {unknown} */ value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  const signature = createHmac("sha256", secret).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

/** The current time in Unix seconds, as `exp` and `iat` count it. */
export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}
