/** game-plan against the test run's database and its seed (Alice's five pursuits, Carol her coach). */
import assert from "node:assert/strict";
import { handler } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, CAROL, request, token, userToken } from "../_shared/testing/fixtures.ts";

const admin = adminSql();

Deno.test({
  name: "game-plan handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const get = async (bearer: string | undefined, query = "", headers: Record<string, string> = {}) =>
      await handler(request(`/game-plan${query}`, { bearer, headers }));
    try {
      await t.step("a user reads their own plan: top three by momentum, due check-ins, micro-task, debt lifted", async () => {
        const res = await get(await userToken(ALICE));
        assert.equal(res.status, 200);
        const plan = await res.json();
        assert.equal(plan.user_id, ALICE);
        assert.deepEqual(plan.top.map((x: { title: string }) => x.title),
          ["STEM Futures Scholarship", "Community Leaders Grant", "Night-shift bursary"]);
        for (const x of plan.top) {
          assert.equal(typeof x.momentum, "number");
          assert.ok(x.momentum >= 0 && x.momentum <= 1);
          assert.ok(x.deadline_proximity >= 0 && x.deadline_proximity <= 1);
        }
        assert.ok(plan.top[0].momentum >= plan.top[1].momentum && plan.top[1].momentum >= plan.top[2].momentum);
        assert.deepEqual(plan.check_ins_due.map((c: { title: string }) => c.title), ["City Bursary"]);
        assert.equal(plan.micro_task.text, "Write the first paragraph of your essay for STEM Futures Scholarship (15 minutes).");
        assert.equal(plan.total_debt_lifted, 0);
      });

      await t.step("her assigned coach reads it with user_id, and the read is audited", async () => {
        const traceId = `game-plan-audit-${crypto.randomUUID()}`;
        const res = await get(await userToken(CAROL), `?user_id=${ALICE}`, { "x-request-id": traceId });
        assert.equal(res.status, 200);
        assert.equal((await res.json()).user_id, ALICE);
        const rows = await admin`select actor_id, subject_user_id, resource, row_count, purpose
                                 from audit.phi_access_log where trace_id = ${traceId}`;
        assert.deepEqual([...rows], [{ actor_id: CAROL, subject_user_id: ALICE, resource: "game_plan", row_count: 3, purpose: "coaching" }]);
      });

      await t.step("a stranger gets 403 and nothing is recorded", async () => {
        const traceId = `game-plan-denied-${crypto.randomUUID()}`;
        const res = await get(await userToken(BOB), `?user_id=${ALICE}`, { "x-request-id": traceId });
        assert.equal(res.status, 403);
        assert.match(res.headers.get("content-type") ?? "", /^application\/problem\+json/);
        await res.body?.cancel();
        const [{ n }] = await admin`select count(*)::int as n from audit.phi_access_log where trace_id = ${traceId}`;
        assert.equal(n, 0);
      });

      await t.step("the service role must name the user", async () => {
        const service = await token({ role: "service_role" });
        const missing = await get(service);
        assert.equal(missing.status, 422);
        assert.deepEqual((await missing.json()).errors, [{ field: "user_id", message: "Required for the service role" }]);
        const res = await get(service, `?user_id=${BOB}`);
        assert.equal(res.status, 200);
        assert.equal((await res.json()).user_id, BOB);
      });

      await t.step("bad input: unknown or malformed parameters are 422, other methods 405, other roles 403, no token 401", async () => {
        const alice = await userToken(ALICE);
        const unknown = await get(alice, "?at=2031-01-01");
        assert.equal(unknown.status, 422);
        assert.deepEqual((await unknown.json()).errors, [{ field: "at", message: "Unknown field" }]);
        const malformed = await get(alice, "?user_id=alice");
        assert.equal(malformed.status, 422);
        assert.equal((await malformed.json()).errors[0].field, "user_id");
        const post = await handler(request("/game-plan", { bearer: alice, method: "POST", body: {} }));
        assert.equal(post.status, 405);
        await post.body?.cancel();
        for (const role of ["anon", "coach_ingest"]) {
          const res = await get(await token({ role }));
          assert.equal(res.status, 403, role);
          await res.body?.cancel();
        }
        const none = await get(undefined);
        assert.equal(none.status, 401);
        await none.body?.cancel();
      });
    } finally {
      await admin.end();
      await closeDb();
    }
  },
});
