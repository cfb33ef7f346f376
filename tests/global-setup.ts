/**
 * Vitest global setup: use the stack the test runner started (COACH_LEDGER_TEST_STACK=1 and
 * the LOCAL_* ports in the environment), or start a throwaway stack on free ports in a
 * temp directory and always tear it down afterwards.
 */
import type { TestProject } from "vitest/node";
import { ensureSystemPackages, stackConfig, startThrowawayStack, statusEnv, type StackConfig } from "../local/stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stack: { cfg: StackConfig; env: Record<string, string> };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.COACH_LEDGER_TEST_STACK === "1") {
    const cfg = stackConfig();
    project.provide("stack", { cfg, env: statusEnv(cfg) });
    return async () => {};
  }
  ensureSystemPackages();
  const stack = await startThrowawayStack({ prefix: "coach-ledger-e2e", fast: true });
  project.provide("stack", { cfg: stack.cfg, env: statusEnv(stack.cfg) });
  return stack.dispose;
}
