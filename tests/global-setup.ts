/**
 * Vitest global setup: use the stack the test runner started (COACH_LEDGER_STATE_DIR and
 * the LOCAL_* ports in the environment), or start a throwaway stack on free ports in a
 * temp directory and always tear it down afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import {
  ensureSystemPackages, freePort, startDatabase, startGateway, stopStack, waitForGateway, type StackConfig,
  stackConfig, statusEnv,
} from "../local/stack.ts";

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
  const stateDir = mkdtempSync(join(tmpdir(), "coach-ledger-e2e-"));
  const cfg = stackConfig({ ...process.env, LOCAL_STATE_DIR: stateDir, LOCAL_API_PORT: String(await freePort()), LOCAL_DB_PORT: String(await freePort()), LOCAL_DB_FAST: "1" });
  try {
    startDatabase(cfg);
    startGateway(cfg);
    await waitForGateway(cfg);
  } catch (err) {
    await stopStack(cfg);
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  project.provide("stack", { cfg, env: statusEnv(cfg) });
  return async () => {
    await stopStack(cfg);
    rmSync(stateDir, { recursive: true, force: true });
  };
}
