/** `npm run local -- reset` and `stop`, on a stack of their own (no gateway) so the shared one is untouched. */
import { execFileSync } from "node:child_process";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { stackHealth, startThrowawayStack, statusEnv } from "../../local/stack.ts";

describe("npm run local -- reset / stop", () => {
  it("reset rebuilds the database from migrations and seed, with pg_cron's scheduler running on it; stop stops it", { timeout: 120_000 }, async () => {
    const stack = await startThrowawayStack({ prefix: "coach-ledger-reset", fast: true, gateway: false });
    const env = { ...process.env, LOCAL_STATE_DIR: stack.cfg.stateDir, LOCAL_API_PORT: String(stack.cfg.apiPort), LOCAL_DB_PORT: String(stack.cfg.dbPort) };
    const cli = (...args: string[]) => execFileSync(process.execPath, ["local/cli.ts", ...args], { encoding: "utf8", env });
    try {
      const sql = postgres(statusEnv(stack.cfg).DB_URL, { max: 1, onnotice: () => {} });
      await sql`insert into auth.users (id, email) values (gen_random_uuid(), 'leftover@example.com')`;
      await sql.end();

      expect(cli("reset")).toContain("Rebuilt the database from platform.sql, migrations and seed.");
      const after = postgres(statusEnv(stack.cfg).DB_URL, { max: 1, onnotice: () => {} });
      const emails = (await after`select email from auth.users order by email`).map((r) => r.email);
      const [{ n }] = await after`select count(*)::int as n from supabase_migrations.schema_migrations`;
      // pg_cron's scheduler runs on the new database (it ended with the old one).
      let scheduler = 0;
      for (let i = 0; i < 50 && scheduler === 0; i++) {
        [{ scheduler }] = await after`select count(*)::int as scheduler from pg_stat_activity where application_name = 'pg_cron scheduler'`;
        if (scheduler === 0) await new Promise((r) => setTimeout(r, 100));
      }
      await after.end();
      expect(scheduler).toBe(1);
      expect(emails).toEqual(["alice@example.com", "bob@example.com", "carol@example.com"]);
      expect(n).toBeGreaterThan(10);

      expect(cli("stop")).toContain("Stopped the local stack.");
      expect((await stackHealth(stack.cfg)).db).toBe(false);
    } finally {
      await stack.dispose();
    }
  });
});
