/** Runs against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { handler } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, CAROL, request, token, userToken, withDatabaseDown } from "../_shared/testing/fixtures.ts";

const admin = adminSql();

function get(bearer: string, query = "", headers: Record<string, string> = {}): Promise<Response> {
  return handler(request(`/history${query}`, { bearer, headers }));
}

Deno.test({
  name: "history handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const service = await token({ role: "service_role" });
    try {
      await t.step("handler() returns the caller's interactions newest first", async () => {
        const res = await get(alice);
        assert.equal(res.status, 200);
        const { items } = await res.json();
        assert.ok(items.length >= 4);
        assert.ok(items.every((i: { user_id: string }) => i.user_id === ALICE));
        const times = items.map((i: { created_at: string }) => Date.parse(i.created_at));
        assert.deepEqual(times, [...times].sort((a, b) => b - a));
      });
      await t.step("handler() pages with limit and before", async () => {
        const first = await (await get(alice, "?limit=2")).json();
        assert.equal(first.items.length, 2);
        assert.equal(first.next_before, first.items[1].id);
        const second = await (await get(alice, `?limit=2&before=${first.next_before}`)).json();
        assert.ok(Date.parse(second.items[0].created_at) <= Date.parse(first.items[1].created_at));
        assert.ok(!second.items.some((i: { id: string }) => first.items.some((j: { id: string }) => j.id === i.id)));
      });
      await t.step("handler() redacts on request", async () => {
        let seeded;
        for (let before = ""; !seeded;) {
          const page = await (await get(alice, `?limit=100&redacted=true${before}`)).json();
          seeded = page.items.find((i: { request_id: string }) => i.request_id === "seed-alice-1");
          assert.ok(seeded || page.next_before, "seed-alice-1 is in Alice's history");
          before = `&before=${page.next_before}`;
        }
        assert.equal(seeded.content.text, "I keep skipping my morning walk. Text me at [PHONE] if I forget again.");
      });
      await t.step("handler() writes a PHI access row per call with the request id", async () => {
        const res = await get(await userToken(CAROL), `?user_id=${ALICE}&limit=3&purpose=weekly%20review`, { "x-request-id": "hist-audit-1" });
        assert.equal(res.status, 200);
        await res.body?.cancel();
        const rows = await admin`select actor_id, actor_role, subject_user_id, row_count, purpose
                                 from audit.phi_access_log where trace_id = 'hist-audit-1'`;
        assert.deepEqual([...rows], [{ actor_id: CAROL, actor_role: "authenticated", subject_user_id: ALICE, row_count: 3, purpose: "weekly review" }]);
      });
      await t.step("handler() lets the service role read anyone named by user_id", async () => {
        const { items } = await (await get(service, `?user_id=${BOB}`)).json();
        assert.ok(items.length >= 2 && items.every((i: { user_id: string }) => i.user_id === BOB));
      });
      await t.step("handler() returns 403 for a stranger and writes no audit row", async () => {
        const res = await get(await userToken(BOB), `?user_id=${ALICE}`, { "x-request-id": "hist-denied-1" });
        assert.equal(res.status, 403);
        await res.body?.cancel();
        const [{ n }] = await admin`select count(*)::int as n from audit.phi_access_log where trace_id = 'hist-denied-1'`;
        assert.equal(n, 0);
      });
      await t.step("handler() returns 422 for bad or unknown query parameters", async () => {
        let res = await get(alice, "?limit=0");
        assert.equal(res.status, 422);
        assert.equal((await res.json()).errors[0].field, "limit");
        res = await get(alice, "?limit=101&sort=asc");
        assert.deepEqual((await res.json()).errors.map((e: { field: string }) => e.field).sort(), ["limit", "sort"]);
        res = await get(service);
        assert.equal(res.status, 422);
        assert.equal((await res.json()).errors[0].field, "user_id");
      });
      await t.step("handler() returns 401 without a token and 405 for POST", async () => {
        assert.equal((await handler(request("/history"))).status, 401);
        const res = await handler(request("/history", { bearer: alice, body: {} }));
        assert.equal(res.status, 405);
        await res.body?.cancel();
      });
      await t.step("handler() returns 503 when the database is unavailable", async () => {
        await withDatabaseDown(closeDb, async () => {
          const res = await get(alice);
          assert.equal(res.status, 503);
          await res.body?.cancel();
        });
      });
    } finally {
      await closeDb();
      await admin.end();
    }
  },
});
