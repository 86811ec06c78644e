// The e2e tests start the real binary the same way as the SDK's integration tests.
export { startPresenced, presencedBin } from "../../clients/js/test/support/presenced.js";
