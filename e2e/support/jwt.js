// The e2e tests sign tokens the same way as the SDK's integration tests.
export { TEST_JWT_SECRET, signToken, nowSeconds } from "../../clients/js/test/support/jwt.js";
