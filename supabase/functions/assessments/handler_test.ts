/** Runs against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { handler } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, CAROL, request, token, userToken, withDatabaseDown } from "../_shared/testing/fixtures.ts";
import { trackedSkillHash } from "../_shared/tracked_skill.ts";

const admin = adminSql();
const ALICE_SESSION = "a11ce000-5e55-4000-8000-000000000001";
const ALICE_GROUP = "a11ce000-6a0e-4000-8000-000000000001";

function post(bearer: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return handler(request("/functions/v1/assessments", { bearer, body, headers }));
}
function get(bearer: string, query: string): Promise<Response> {
  return handler(request(`/functions/v1/assessments${query}`, { bearer }));
}
async function fields(res: Response): Promise<string[]> {
  assert.equal(res.status, 422);
  return (await res.json()).errors.map((e: { field: string }) => e.field);
}

Deno.test({
  name: "assessments handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const bob = await userToken(BOB);
    const carol = await userToken(CAROL);
    const ingest = await token({ role: "coach_ingest" });
    const service = await token({ role: "service_role" });
    // A session of Bob's of its own, so the test can score it whatever ran before.
    const [{ id: session }] = await admin`insert into public.coaching_sessions (user_id) values (${BOB}) returning id`;
    const group = crypto.randomUUID();
    const key = `assess-fn-${crypto.randomUUID()}`;
    const summary = {
      session_id: session, group_id: group, overall_score: 3.25, criteria: { clarity: 3.5, empathy: 3 },
      strengths: ["Listens first"], improvements: ["Agree a next step"], model: "gpt-4o-mini",
    };
    try {
      await t.step("POST by an ingest token returns 201 with the stored row; the raw skill id is kept only as its hash", async () => {
        const res = await post(ingest, summary, { "Idempotency-Key": key, "X-Tracked-Skill-Id": "assess-skill-8812" });
        assert.equal(res.status, 201);
        assert.match(res.headers.get("ratelimit") ?? "", /^"assessments";r=\d+;t=\d+$/);
        const row = await res.json();
        assert.deepEqual([row.user_id, row.session_id, row.group_id, row.request_id, row.overall_score, row.rubric_version],
          [BOB, session, group, key, 3.25, 1]);
        assert.equal(row.tracked_skill_id_hash, await trackedSkillHash("assess-skill-8812"));
        const [{ hits }] = await admin`select count(*)::int as hits from public.assessments a where a::text like '%assess-skill-8812%'`;
        assert.equal(hits, 0);
      });
      await t.step("POST replays with 200 and the same row; concurrent retries of a new key make one row", async () => {
        const res = await post(ingest, summary, { "Idempotency-Key": key, "X-Tracked-Skill-Id": "assess-skill-8812" });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("idempotent-replayed"), "true");
        await res.body?.cancel();
        const v2 = { ...summary, rubric_version: 2, request_id: `assess-fn-${crypto.randomUUID()}` };
        const answers = await Promise.all([1, 2, 3, 4, 5].map(() => post(service, v2)));
        const statuses = answers.map((r) => r.status).sort();
        await Promise.all(answers.map((r) => r.body?.cancel()));
        assert.deepEqual(statuses, [200, 200, 200, 200, 201]);
        const [{ n }] = await admin`select count(*)::int as n from public.assessments where request_id = ${v2.request_id}`;
        assert.equal(n, 1);
      });
      await t.step("POST answers 422 for a key reused with another payload, 409 for a second summary of the same rubric", async () => {
        const reused = await post(ingest, { ...summary, overall_score: 4 }, { "Idempotency-Key": key, "X-Tracked-Skill-Id": "assess-skill-8812" });
        assert.equal(reused.status, 422);
        assert.equal((await reused.json()).detail, "request_id was already used with a different payload");
        const again = await post(ingest, { ...summary, request_id: `assess-fn-${crypto.randomUUID()}` });
        assert.equal(again.status, 409);
        await again.body?.cancel();
      });
      const invalid: [string, Record<string, unknown>, string][] = [
        ["no request_id or Idempotency-Key", { ...summary }, "request_id"],
        ["an overall score above 5", { ...summary, request_id: "x", overall_score: 5.5 }, "overall_score"],
        ["an overall score below 0", { ...summary, request_id: "x", overall_score: -1 }, "overall_score"],
        ["a criterion score above 5", { ...summary, request_id: "x", criteria: { clarity: 7 } }, "criteria.clarity"],
        ["a criterion key that is not an identifier", { ...summary, request_id: "x", criteria: { "Not OK": 3 } }, "criteria.Not OK"],
        ["no criteria", { ...summary, request_id: "x", criteria: {} }, "criteria"],
        ["a rubric version of 0", { ...summary, request_id: "x", rubric_version: 0 }, "rubric_version"],
        ["eleven strengths", { ...summary, request_id: "x", strengths: Array(11).fill("s") }, "strengths"],
        ["a blank improvement", { ...summary, request_id: "x", improvements: [" "] }, "improvements.0"],
        ["a malformed session id", { ...summary, request_id: "x", session_id: "s-1" }, "session_id"],
        ["an unknown session", { ...summary, request_id: "x", session_id: crypto.randomUUID() }, "session_id"],
        ["an unknown field", { ...summary, request_id: "x", colour: "red" }, ""],
      ];
      for (const [what, body, field] of invalid) {
        await t.step(`POST refuses ${what} with 422 naming ${field || "it"}`, async () => {
          const got = await fields(await post(ingest, body));
          if (field) assert.ok(got.includes(field), `${what}: ${got}`);
          else assert.ok(got.length > 0);
        });
      }
      await t.step("POST is refused to users, even the session's owner or coach (403)", async () => {
        for (const bearer of [bob, carol]) {
          const res = await post(bearer, { ...summary, request_id: "user-try" });
          assert.equal(res.status, 403);
          await res.body?.cancel();
        }
      });
      await t.step("GET by session and by group as the owner; latest=true gives the newest", async () => {
        const bySession = await (await get(bob, `?session_id=${session}`)).json();
        assert.deepEqual(bySession.assessments.map((a: { rubric_version: number }) => a.rubric_version), [2, 1]);
        const byGroup = await (await get(bob, `?group_id=${group}&limit=1`)).json();
        assert.equal(byGroup.assessments.length, 1);
        const next = await (await get(bob, `?group_id=${group}&limit=1&before=${byGroup.next_before}`)).json();
        assert.equal(next.assessments[0].rubric_version, 1);
        const latest = await (await get(bob, `?session_id=${session}&latest=true`)).json();
        assert.equal(latest.assessment.rubric_version, 2);
      });
      await t.step("GET by Alice's coach is audited; a stranger gets nothing", async () => {
        const trace = `assess-audit-${crypto.randomUUID()}`;
        const res = await handler(request(`/functions/v1/assessments?group_id=${ALICE_GROUP}`, { bearer: carol, headers: { "x-request-id": trace } }));
        assert.equal((await res.json()).assessments.length, 2);
        const [{ n }] = await admin`select count(*)::int as n from audit.phi_access_log where trace_id = ${trace} and resource = 'assessments'`;
        assert.equal(n, 1);
        assert.deepEqual((await (await get(bob, `?session_id=${ALICE_SESSION}&latest=true`)).json()).assessment, null);
        assert.deepEqual((await (await get(alice, `?group_id=${group}`)).json()).assessments, []);
      });
      for (const [query, field] of [["", "session_id"], [`session_id=${session}&group_id=${group}`, "session_id"],
        [`group_id=${group}&latest=true`, "latest"], [`session_id=${session}&limit=0`, "limit"],
        [`session_id=${session}&limit=201`, "limit"], [`session_id=${session}&before=${crypto.randomUUID()}`, "before"]]) {
        await t.step(`GET refuses ?${query} with 422 naming ${field}`, async () => {
          assert.ok((await fields(await get(bob, `?${query}`))).includes(field));
        });
      }
      await t.step("GET is refused to ingest tokens (403): they write summaries, they do not read them", async () => {
        const res = await get(ingest, `?session_id=${session}`);
        assert.equal(res.status, 403);
        await res.body?.cancel();
      });
      await t.step("POST answers 503 while the database is down", async () => {
        await withDatabaseDown(closeDb, async () => {
          const res = await post(ingest, { ...summary, request_id: "down" });
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
