// Where the SDK connects when the app names no `url`. An SDK imported from presenced's
// own `/sdk/` (perhaps by a page of another origin) belongs to the server that served it;
// a copy bundled into an app connects to the page's server.

/**
 * The default WebSocket endpoint: `/ws` beside the `/sdk/` folder this module was served
 * from, when it was served over http(s) from one; otherwise `/ws` on the page's host.
 * @param {string | undefined} moduleUrl `import.meta.url` of the SDK's client module
 * @param {{ protocol: string, host: string } | undefined} pageLocation the page's `location`, if any
 * @returns {string}
 */
export function defaultUrl(moduleUrl, pageLocation) {
  const served = servedSdkFolder(moduleUrl);
  if (served) {
    const endpoint = new URL("../ws", served);
    endpoint.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
    return endpoint.href;
  }
  if (!pageLocation?.host) {
    throw new TypeError("presenced: pass `url` (e.g. ws://127.0.0.1:8080/ws) outside a browser page");
  }
  return `${pageLocation.protocol === "https:" ? "wss:" : "ws:"}//${pageLocation.host}/ws`;
}

/**
 * The `/sdk/` folder the module was served from, or null for a bundled or local copy
 * (bundlers rename files, so only presenced's own layout matches).
 * @param {string | undefined} moduleUrl
 * @returns {URL | null}
 */
function servedSdkFolder(moduleUrl) {
  if (typeof moduleUrl !== "string") return null;
  let url;
  try {
    url = new URL(moduleUrl);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (!url.pathname.endsWith("/sdk/client.js")) return null;
  return new URL("./", url);
}
