/** Runs against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { handler } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, request, token, userToken } from "../_shared/testing/fixtures.ts";

const admin = adminSql();
const user = crypto.randomUUID();

Deno.test({
  name: "interaction-aggregate handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const service = await token({ role: "service_role" });
    const post = (body: unknown, bearer = service) => handler(request("/interaction-aggregate", { bearer, body }));
    try {
      await t.step("handler() backfills a range and returns per-day counts and the time taken", async () => {
        await admin`insert into auth.users (id, email) values (${user}, ${`aggregate-${user}@example.com`})`;
        await admin`select public.log_coach_interaction(sender => 'user', user_id => ${user}::uuid,
                      content => '{"text": "backfill"}', created_at => '2032-02-02 10:00:00+00')`;
        const res = await post({ from: "2032-02-01", to: "2032-02-03" });
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.deepEqual(body.days, [
          { day: "2032-02-01", users: 0, messages: 0 },
          { day: "2032-02-02", users: 1, messages: 1 },
          { day: "2032-02-03", users: 0, messages: 0 },
        ]);
        assert.equal(typeof body.elapsed_ms, "number");
        const [{ n }] = await admin`select total_messages as n from analytics.coach_interaction_metrics
                                    where user_id = ${user} and day = '2032-02-02'`;
        assert.equal(n, 1);
      });
      await t.step("handler() defaults to to = from", async () => {
        const body = await (await post({ from: "2032-02-02" })).json();
        assert.deepEqual(body.days, [{ day: "2032-02-02", users: 1, messages: 1 }]);
      });
      await t.step("handler() returns 422 when from is after to or the range exceeds 366 days", async () => {
        let res = await post({ from: "2032-02-03", to: "2032-02-01" });
        assert.equal(res.status, 422);
        assert.deepEqual((await res.json()).errors, [{ field: "to", message: "Must be on or after from" }]);
        res = await post({ from: "2031-01-01", to: "2032-01-02" });
        assert.equal(res.status, 422);
        assert.equal((await res.json()).errors[0].message, "A range covers at most 366 days");
        res = await post({ from: "2031-02-30", extra: 1 });
        assert.deepEqual((await res.json()).errors.map((e: { field: string }) => e.field).sort(), ["extra", "from"]);
      });
      await t.step("handler() refuses users with 403 and missing tokens with 401", async () => {
        const res = await post({ from: "2032-02-02" }, await userToken(ALICE));
        assert.equal(res.status, 403);
        await res.body?.cancel();
        assert.equal((await handler(request("/interaction-aggregate", { body: { from: "2032-02-02" } }))).status, 401);
      });
    } finally {
      await closeDb();
      await admin.end();
    }
  },
});
