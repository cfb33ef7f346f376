/**
 * The local Realtime server against the test run's database: a write to coach_assignments
 * reaches the server over LISTEN and drops its cached read checks.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createRealtime } from "./realtime.ts";
import { createAuthorizer } from "./realtime/authorization.ts";

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`realtime_test.ts needs ${name}; run it through npm test`);
  return v;
}

const keys = {
  jwtSecret: "super-secret-jwt-token-with-at-least-32-characters-long",
  anonKey: "", serviceRoleKey: "", publishableKey: "", secretKey: "",
};

Deno.test({
  name: "createRealtime() drops cached read checks when coach assignments are written",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const admin = postgres(need("SUPABASE_DB_URL"), { max: 1, onnotice: () => {} });
    const sql = postgres(need("GATEWAY_TEST_DB_URL"), { max: 4, prepare: false, onnotice: () => {} });
    const authorizer = createAuthorizer(sql);
    const realtime = await createRealtime({ keys, sql, log: () => {}, authorizer });
    const claims = { sub: "u", role: "authenticated", exp: Math.floor(Date.now() / 1000) + 600 };
    const tag = crypto.randomUUID().slice(0, 8);
    const [{ id: client }] = await admin`insert into auth.users (id, email) values (gen_random_uuid(), ${`rs-client-${tag}@example.com`}) returning id`;
    const [{ id: coach }] = await admin`insert into auth.users (id, email, raw_app_meta_data)
                                       values (gen_random_uuid(), ${`rs-coach-${tag}@example.com`}, '{"role": "coach"}') returning id`;
    try {
      for (const write of [
        () => admin`insert into public.coach_assignments (coach_id, client_id) values (${coach}, ${client})`,
        () => admin`update public.coach_assignments set ends_at = now() + interval '1 day' where coach_id = ${coach}`,
        () => admin`delete from public.coach_assignments where coach_id = ${coach}`,
      ]) {
        authorizer.cache.set("some:topic", claims, true, authorizer.cache.generation);
        assert.equal(authorizer.cache.get("some:topic", claims), true);
        await write();
        const t0 = Date.now();
        while (authorizer.cache.get("some:topic", claims) !== undefined && Date.now() - t0 < 10_000) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(authorizer.cache.get("some:topic", claims), undefined);
      }
    } finally {
      await admin`delete from auth.users where id in (${client}, ${coach})`;
      await realtime.close();
      await admin.end();
      await sql.end();
    }
  },
});
