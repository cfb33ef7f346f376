/** Runs against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { handler, MAX_BODY_BYTES } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, CAROL, request, token, userToken, withDatabaseDown } from "../_shared/testing/fixtures.ts";
import { trackedSkillHash } from "../_shared/tracked_skill.ts";

const admin = adminSql();

function post(bearer: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return handler(request("/log-interaction", { bearer, body, headers }));
}

Deno.test({
  name: "log-interaction handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const service = await token({ role: "service_role" });
    const ingest = await token({ role: "coach_ingest" });
    try {
      await t.step("handler() returns 201 with the stored row on the first write", async () => {
        const key = crypto.randomUUID();
        const res = await post(alice, { sender: "user", content: { text: "Walked today" }, sentiment: 0.5 }, { "Idempotency-Key": key, "x-request-id": "req-42" });
        assert.equal(res.status, 201);
        const row = await res.json();
        assert.equal(row.user_id, ALICE);
        assert.equal(row.request_id, key);
        assert.equal(row.sentiment, 0.5);
        assert.ok(row.id && row.created_at);
        assert.equal(res.headers.get("x-request-id"), "req-42");
        assert.match(res.headers.get("server-timing") ?? "", /validate;dur=.*db;dur=/);
      });
      await t.step("handler() returns 200 with the same row on a replay, and stores it once", async () => {
        const body = { sender: "user", content: { text: "Replay me" }, request_id: crypto.randomUUID() };
        const first = await (await post(alice, body)).json();
        const res = await post(alice, body);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("idempotent-replayed"), "true");
        assert.deepEqual(await res.json(), first);
        const [{ n }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = ${body.request_id}`;
        assert.equal(n, 1);
      });
      await t.step("handler() returns 422 for a key reused with another payload", async () => {
        const key = crypto.randomUUID();
        assert.equal((await post(alice, { sender: "user", content: { text: "one" }, request_id: key })).status, 201);
        const res = await post(alice, { sender: "user", content: { text: "two" }, request_id: key });
        assert.equal(res.status, 422);
        assert.equal((await res.json()).detail, "request_id was already used with a different payload");
      });
      await t.step("handler() returns 409 while the same key is in flight", async () => {
        const key = crypto.randomUUID();
        const holder = await admin.reserve();
        try {
          // The key's lock: (user, actor scope, key), as log_coach_interaction takes it.
          await holder`select pg_advisory_lock(hashtextextended(${`${ALICE}/${ALICE}/${key}`}, 7))`;
          const res = await post(alice, { sender: "user", content: { text: "slow" }, request_id: key });
          assert.equal(res.status, 409);
          assert.match((await res.json()).detail, /still being processed/);
        } finally {
          await holder`select pg_advisory_unlock_all()`;
          holder.release();
        }
        assert.equal((await post(alice, { sender: "user", content: { text: "slow" }, request_id: key })).status, 201);
      });
      await t.step("handler() stores one row under concurrent retries of one key", async () => {
        const body = { sender: "user", content: { text: "Concurrent" }, request_id: crypto.randomUUID() };
        const statuses = await Promise.all(Array.from({ length: 8 }, async () => {
          const res = await post(alice, body);
          await res.body?.cancel();
          return res.status;
        }));
        assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses}`);
        assert.ok(statuses.every((s) => s === 201 || s === 200 || s === 409), `statuses: ${statuses}`);
        const [{ n }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = ${body.request_id}`;
        assert.equal(n, 1);
        assert.equal((await post(alice, body)).status, 200);
      });
      await t.step("handler() keeps a tracked skill id only as its keyed hash, never the raw id", async () => {
        const key = crypto.randomUUID();
        const res = await post(alice, { sender: "user", content: { text: "skill" }, request_id: key }, { "X-Tracked-Skill-Id": "skill-raw-7781" });
        const row = await res.json();
        assert.equal(row.tracked_skill_id_hash, await trackedSkillHash("skill-raw-7781"));
        const [{ hits }] = await admin`select count(*)::int as hits from public.coach_interactions c where c::text like '%skill-raw-7781%'`;
        assert.equal(hits, 0);
      });
      await t.step("handler() refuses a tracked skill id that differs between header and body, naming the field", async () => {
        const res = await post(alice, { sender: "user", content: { text: "skill" }, tracked_skill_id: "a" }, { "X-Tracked-Skill-Id": "b" });
        assert.equal(res.status, 422);
        assert.deepEqual((await res.json()).errors.map((e: { field: string }) => e.field), ["tracked_skill_id"]);
      });
      await t.step("handler() lets coach_ingest log an AI message for any user, with cost computed", async () => {
        const res = await post(ingest, {
          sender: "ai_coach", user_id: BOB, content: { text: "Try a walk" }, model: "gpt-4o-mini",
          prompt_tokens: 1000, completion_tokens: 200, cost_usd: 9, latency_ms: 640, channel: "jitai",
        });
        assert.equal(res.status, 201);
        const row = await res.json();
        assert.equal(row.actor_role, "coach_ingest");
        assert.equal(Number(row.cost_usd), (1000 * 0.15 + 200 * 0.6) / 1e6);
      });
      await t.step("handler() lets an assigned coach log a human_coach message for the client", async () => {
        const res = await post(await userToken(CAROL), { sender: "human_coach", user_id: ALICE, content: { text: "Nice work" } });
        assert.equal(res.status, 201);
        const row = await res.json();
        assert.equal(row.user_id, ALICE);
        assert.equal(row.actor_id, CAROL);
      });
      await t.step("handler() returns 400 for unreadable JSON", async () => {
        const res = await handler(request("/log-interaction", { bearer: alice, rawBody: "{not json" }));
        assert.equal(res.status, 400);
        assert.equal(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
        await res.body?.cancel();
      });
      await t.step("handler() returns 413 for a body over 64 KiB", async () => {
        const res = await post(alice, { sender: "user", content: { text: "x".repeat(MAX_BODY_BYTES) } });
        assert.equal(res.status, 413);
        await res.body?.cancel();
      });
      await t.step("handler() returns 422 listing every bad field", async () => {
        const res = await post(alice, { sender: "robot", content: { body: 1 }, sentiment: 3, surprise: true });
        assert.equal(res.status, 422);
        const problem = await res.json();
        assert.deepEqual(problem.errors.map((e: { field: string }) => e.field).sort(), ["content.text", "sender", "sentiment", "surprise"]);
      });
      await t.step("handler() returns 403 when a user logs for someone they do not coach", async () => {
        const res = await post(alice, { sender: "user", content: { text: "x" }, user_id: BOB });
        assert.equal(res.status, 403);
        assert.equal((await res.json()).detail, "Only the user, their assigned coach or the service role can log interactions for this user");
      });
      await t.step("handler() returns 422 when the service role omits user_id", async () => {
        const res = await post(service, { sender: "ai_coach", content: { text: "x" } });
        assert.equal(res.status, 422);
        assert.equal((await res.json()).errors[0].field, "user_id");
      });
      await t.step("handler() returns 422 when Idempotency-Key and request_id differ", async () => {
        const res = await post(alice, { sender: "user", content: { text: "x" }, request_id: "a" }, { "Idempotency-Key": "b" });
        assert.equal(res.status, 422);
        assert.equal((await res.json()).errors[0].field, "request_id");
      });
      await t.step("handler() returns 403 when a user logs an AI message, and stores nothing", async () => {
        const key = crypto.randomUUID();
        const res = await post(alice, { sender: "ai_coach", content: { text: "x" }, request_id: key });
        assert.equal(res.status, 403);
        assert.equal((await res.json()).detail, "A user can only log messages with sender user");
        const [{ n }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = ${key}`;
        assert.equal(n, 0);
      });
      await t.step("handler() returns 401 without a token and 403 for the anon key", async () => {
        assert.equal((await handler(request("/log-interaction", { body: {} }))).status, 401);
        const res = await post(await token({ role: "anon" }), { sender: "user", content: { text: "x" } });
        assert.equal(res.status, 403);
        await res.body?.cancel();
      });
      await t.step("handler() returns 405 for GET", async () => {
        const res = await handler(request("/log-interaction", { bearer: alice }));
        assert.equal(res.status, 405);
        await res.body?.cancel();
      });
      await t.step("handler() puts the IETF RateLimit headers on a successful write", async () => {
        const res = await post(alice, { sender: "user", content: { text: "counted" } });
        assert.equal(res.status, 201);
        await res.body?.cancel();
        assert.equal(res.headers.get("ratelimit-policy"), '"log-interaction";q=120;w=60');
        assert.match(res.headers.get("ratelimit") ?? "", /^"log-interaction";r=\d+;t=\d+$/);
        assert.match(res.headers.get("access-control-expose-headers") ?? "", /ratelimit, ratelimit-policy, retry-after/);
        const ai = await post(ingest, { sender: "ai_coach", user_id: ALICE, content: { text: "counted per token" } });
        await ai.body?.cancel();
        assert.equal(ai.headers.get("ratelimit-policy"), '"log-interaction";q=120000;w=60');
      });
      await t.step("handler() answers 429 with Retry-After and RateLimit once a user's limit is used up, and stores nothing", async () => {
        const user = crypto.randomUUID();
        await admin`insert into auth.users (id, email) values (${user}, ${`limited-${user}@example.com`})`;
        // Use up the user's window through the same SQL rule the handler calls.
        const claims = { role: "authenticated", sub: user };
        const [{ remaining }] = await admin`select min(r) as remaining from (
          select (private.take_rate_limit('log-interaction', ${admin.json(claims)}::jsonb)).remaining as r from generate_series(1, 120)) x`;
        assert.equal(remaining, 0);
        const key = crypto.randomUUID();
        const res = await post(await userToken(user), { sender: "user", content: { text: "one too many" }, request_id: key });
        assert.equal(res.status, 429);
        const limit = /^"log-interaction";r=0;t=(\d+)$/.exec(res.headers.get("ratelimit") ?? "");
        assert.ok(limit, `RateLimit: ${res.headers.get("ratelimit")}`);
        assert.equal(res.headers.get("retry-after"), limit[1]);
        assert.equal(res.headers.get("ratelimit-policy"), '"log-interaction";q=120;w=60');
        const problem = await res.json();
        assert.equal(problem.type, "https://iana.org/assignments/http-problem-types#quota-exceeded");
        assert.deepEqual(problem["violated-policies"], ["log-interaction"]);
        assert.match(problem.detail, /used all 120 requests to log-interaction allowed per 60 s/);
        const [{ n }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = ${key}`;
        assert.equal(n, 0);
        const other = await post(alice, { sender: "user", content: { text: "Alice is not limited by another user" } });
        assert.equal(other.status, 201);
        await other.body?.cancel();
      });
      await t.step("handler() counts a request that passed validation even when the write is refused", async () => {
        const remaining = (res: Response) => Number(/;r=(\d+);/.exec(res.headers.get("ratelimit") ?? "")?.[1]);
        const ok = await post(alice, { sender: "user", content: { text: "counted once" } });
        await ok.body?.cancel();
        const refused = await post(alice, { sender: "user", content: { text: "not for Bob" }, user_id: BOB });
        assert.equal(refused.status, 403);
        await refused.body?.cancel();
        const after = await post(alice, { sender: "user", content: { text: "counted after" } });
        await after.body?.cancel();
        assert.equal(remaining(refused), remaining(ok) - 1);
        assert.equal(remaining(after), remaining(ok) - 2, "the refused write's take is committed on its own, not rolled back with the write");
      });
      await t.step("handler() does not make one token's requests wait for each other's writes (no counter row lock held by a write)", async () => {
        const holder = await admin.reserve();
        let bob: Promise<Response> | undefined;
        try {
          // The barrier: Bob's write blocks on his profile row, which the test holds.
          await holder`begin`;
          await holder`select 1 from public.profiles where id = ${BOB} for update`;
          bob = post(ingest, { sender: "ai_coach", user_id: BOB, content: { text: "waits for the lock" } });
          for (let i = 0; ; i++) {
            const [{ n }] = await admin`select count(*)::int as n from pg_stat_activity
              where application_name = 'coach-ledger-functions' and wait_event_type = 'Lock'`;
            if (n > 0) break;
            assert.ok(i < 1000, "Bob's write never reached the lock");
            await new Promise((r) => setTimeout(r, 10));
          }
          let bobDone = false;
          bob.then(() => bobDone = true, () => bobDone = true);
          const other = await post(ingest, { sender: "ai_coach", user_id: ALICE, content: { text: "same token, other user" } });
          assert.equal(other.status, 201);
          await other.body?.cancel();
          assert.equal(bobDone, false, "the same token's second write had to wait until its first write's transaction ended");
        } finally {
          await holder`rollback`;
          holder.release();
        }
        const res = await bob!;
        assert.equal(res.status, 201);
        await res.body?.cancel();
      });
      await t.step("handler() returns 503 when the database is unavailable", async () => {
        await withDatabaseDown(closeDb, async () => {
          const res = await post(alice, { sender: "user", content: { text: "x" } });
          assert.equal(res.status, 503);
          assert.equal(res.headers.get("retry-after"), "1");
          await res.body?.cancel();
        });
      });
    } finally {
      await closeDb();
      await admin.end();
    }
  },
});
