/**
 * `npm run local -- stop` then `start` on an existing cluster, and a Postgres crash, on a
 * stack of their own so the shared one is untouched (issue 8, items 4 and 8). Each test
 * begins with `start`, so each holds alone.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANON_KEY, mintToken, root, startThrowawayStack, statusEnv, type ThrowawayStack } from "../../local/stack.ts";

function cliFor(stack: ThrowawayStack, extra: Record<string, string> = {}) {
  const env = {
    ...process.env,
    LOCAL_STATE_DIR: stack.cfg.stateDir,
    LOCAL_API_PORT: String(stack.cfg.apiPort),
    LOCAL_DB_PORT: String(stack.cfg.dbPort),
    ...extra,
  };
  // Asynchronous, so the test's own HTTP connections keep their timers running meanwhile.
  return (...args: string[]) => new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ["local/cli.ts", ...args], { encoding: "utf8", env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

const gatewayState = (stack: ThrowawayStack) => JSON.parse(readFileSync(join(stack.cfg.stateDir, "gateway.json"), "utf8")) as { pid: number; port: number };
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Whether anything accepts connections on the port. */
const listening = (port: number) => new Promise<boolean>((resolve) => {
  const s = connect(port, "127.0.0.1");
  s.on("connect", () => { s.destroy(); resolve(true); });
  s.on("error", () => resolve(false));
});

let stack: ThrowawayStack;
const functionsDir = join(root, "local", "gateway", "testdata", "functions");
beforeAll(async () => {
  stack = await startThrowawayStack({ prefix: "coach-ledger-restart", fast: true, gateway: false });
});
afterAll(async () => {
  await stack?.dispose();
});

describe("a warm restart (stop, then start on an existing cluster)", () => {
  it("keeps public closed to the API roles and keeps role settings a migration changed", { timeout: 120_000 }, async () => {
    const cli = cliFor(stack, { LOCAL_FUNCTIONS_DIR: functionsDir });
    await cli("start");
    {
      const before = postgres(statusEnv(stack.cfg).DB_URL, { max: 1, onnotice: () => {} });
      // What a later migration may do: change an API role's setting.
      await before`alter role anon set statement_timeout = '4s'`;
      await before.end();

      expect(await cli("stop")).toContain("Stopped the local stack.");
      expect(await cli("start")).toContain("existing cluster");

      const sql = postgres(statusEnv(stack.cfg).DB_URL, { max: 1, onnotice: () => {} });
      try {
        const [{ n }] = await sql`
          select count(*)::int as n
          from pg_default_acl d
          cross join aclexplode(d.defaclacl) a
          where d.defaclrole = 'postgres'::regrole
            and d.defaclnamespace in (0, 'public'::regnamespace)
            and a.grantee in (0, 'anon'::regrole, 'authenticated'::regrole, 'service_role'::regrole)`;
        expect(n, "default privileges granting anything to PUBLIC or an API role").toBe(0);

        await sql`create table public.warm_restart_probe (id int)`;
        await sql`create function public.warm_restart_probe_fn() returns int language sql as 'select 1'`;
        const grants = await sql`
          select r as role,
                 has_table_privilege(r, 'public.warm_restart_probe', 'select, insert, update, delete') as on_table,
                 has_function_privilege(r, 'public.warm_restart_probe_fn()', 'execute') as on_function
          from unnest(array['anon', 'authenticated', 'service_role']) as r`;
        expect(grants).toEqual([
          { role: "anon", on_table: false, on_function: false },
          { role: "authenticated", on_table: false, on_function: false },
          { role: "service_role", on_table: false, on_function: false },
        ]);
        const [{ setting }] = await sql`select setting from pg_db_role_setting s, unnest(s.setconfig) setting
                                        where s.setrole = 'anon'::regrole and setting like 'statement_timeout=%'`;
        expect(setting).toBe("statement_timeout=4s");
      } finally {
        await sql.end();
      }
    }
  });
});

describe("outages and restarts of the gateway", () => {
  it("answers 503 while Postgres is down, recovers, restarts on a new environment, and stop stops what listens", { timeout: 180_000 }, async () => {
    const cli = cliFor(stack, { LOCAL_FUNCTIONS_DIR: functionsDir });
    const api = statusEnv(stack.cfg).API_URL;
    const fixtureEnv = async () => (await (await fetch(`${api}/functions/v1/env`, { headers: { authorization: `Bearer ${ANON_KEY}` } })).json()).fromDotenv;
    const rpc = (token: string) => fetch(`${api}/rest/v1/rpc/get_my_profile`, {
      method: "POST", headers: { apikey: ANON_KEY, authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}",
    });
    {
      await cli("start");
      const first = gatewayState(stack);
      expect(await fixtureEnv()).toBe("loaded from .env");
      const token = await mintToken(stack.cfg, { email: "alice@example.com" });

      // Postgres crashes.
      const postmaster = Number(readFileSync(join(stack.cfg.stateDir, "db", "postmaster.pid"), "utf8").split("\n")[0]);
      process.kill(postmaster, "SIGKILL");
      for (let i = 0; i < 100 && alive(postmaster); i++) await new Promise((r) => setTimeout(r, 50));

      const health = await fetch(`${api}/health`);
      expect(health.status).toBe(503);
      expect(health.headers.get("retry-after")).toBe("1");
      await health.body?.cancel();
      const down = await rpc(token);
      expect(down.status).toBe(503);
      expect(down.headers.get("retry-after")).toBe("1");
      expect((await down.json()).code).toMatch(/^(PGRST000|PGRST001|57P0[123])$/);

      // start brings the database back and keeps the gateway, which recovers on its own.
      expect(await cli("start")).toContain("gateway kept");
      expect(gatewayState(stack).pid).toBe(first.pid);
      const up = await rpc(token);
      expect(up.status).toBe(200);
      expect((await up.json()).display_name).toMatch(/^Alice/);

      // A start with another environment for the functions restarts the gateway.
      const changed = cliFor(stack, { LOCAL_FUNCTIONS_DIR: functionsDir, COACH_LEDGER_FIXTURE_ENV: "changed" });
      expect(await changed("start")).toContain("gateway restarted");
      const second = gatewayState(stack);
      expect(second.pid).not.toBe(first.pid);
      expect(alive(first.pid)).toBe(false);
      expect(await fixtureEnv()).toBe("changed");

      // stop stops the gateway that listens, even when its record is lost.
      rmSync(join(stack.cfg.stateDir, "gateway.json"));
      expect(await changed("stop")).toContain("Stopped the local stack.");
      expect(await listening(stack.cfg.apiPort)).toBe(false);
      expect(alive(second.pid)).toBe(false);
      expect(existsSync(join(stack.cfg.stateDir, "db", "postmaster.pid"))).toBe(false);
    }
  });
});
