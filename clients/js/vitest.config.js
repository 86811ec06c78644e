import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // The integration tests wait out a 2 s reconnect grace and restart the server.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
