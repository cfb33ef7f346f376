/** The gateway gives functions the platform variables and a .env beside them, as `supabase functions serve` does. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort, root, startGateway, stopStack, waitForGateway } from "../../local/stack.ts";
import { stack } from "../helpers.ts";

describe("function environment", () => {
  it("a function sees SUPABASE_* and the variables of the .env in its functions directory", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "coach-ledger-gateway-env-"));
    const cfg = { ...stack().cfg, stateDir, apiPort: await freePort() };
    try {
      startGateway(cfg, { GATEWAY_FUNCTIONS_DIR: join(root, "local", "gateway", "testdata", "functions") });
      await waitForGateway(cfg);
      const res = await fetch(`http://127.0.0.1:${cfg.apiPort}/functions/v1/env`, { headers: { authorization: `Bearer ${stack().env.ANON_KEY}` } });
      expect(await res.json()).toEqual({
        fromDotenv: "loaded from .env", supabaseUrl: `http://127.0.0.1:${cfg.apiPort}`, hasServiceRoleKey: true, hasDbUrl: true,
      });
    } finally {
      await stopStack(cfg);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
