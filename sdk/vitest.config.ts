/**
 * The SDK's own vitest run (`npx vitest run --root sdk` from the repository root, or
 * `npm test` here): its unit tests against local fake servers, no stack needed. The root's
 * vitest.config.ts includes only tests/**, so the two runs never pick up each other's files.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Generous: a shared 2-core machine may be slow; no test asserts a duration.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
