import { defineConfig } from "vitest/config";

// Integration tests start real processes and real servers; the machine has two cores,
// so files run with limited parallelism and generous per-test timeouts.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ["default"],
  },
});
