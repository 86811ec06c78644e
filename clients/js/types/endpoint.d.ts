/**
 * The default WebSocket endpoint: `/ws` beside the `/sdk/` folder this module was served
 * from, when it was served over http(s) from one; otherwise `/ws` on the page's host.
 * @param {string | undefined} moduleUrl `import.meta.url` of the SDK's client module
 * @param {{ protocol: string, host: string } | undefined} pageLocation the page's `location`, if any
 * @returns {string}
 */
export function defaultUrl(moduleUrl: string | undefined, pageLocation: {
    protocol: string;
    host: string;
} | undefined): string;
