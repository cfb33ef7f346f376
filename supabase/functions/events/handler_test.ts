/** Runs against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { handler, MAX_BODY_BYTES } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, request, token, userToken, withDatabaseDown } from "../_shared/testing/fixtures.ts";
import { trackedSkillHash } from "../_shared/tracked_skill.ts";

const admin = adminSql();
const ALICE_SESSION = "a11ce000-5e55-4000-8000-000000000001";
const BOB_SESSION = "b0b00000-5e55-4000-8000-000000000002";

function post(bearer: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return handler(request("/functions/v1/events", { bearer, body, headers }));
}
function get(bearer: string, query: string): Promise<Response> {
  return handler(request(`/functions/v1/events${query}`, { bearer }));
}
async function fields(res: Response): Promise<string[]> {
  assert.equal(res.status, 422);
  assert.match(res.headers.get("content-type") ?? "", /application\/problem\+json/);
  return (await res.json()).errors.map((e: { field: string }) => e.field);
}

Deno.test({
  name: "events handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const bob = await userToken(BOB);
    const service = await token({ role: "service_role" });
    const ingest = await token({ role: "coach_ingest" });
    const anon = await token({ role: "anon" });
    const group = crypto.randomUUID();
    try {
      await t.step("POST returns 201 with the event, its request id, user, session and group", async () => {
        const key = crypto.randomUUID();
        const res = await post(alice, { kind: "rating", score: 4, session_id: ALICE_SESSION, group_id: group, category: "session" },
          { "Idempotency-Key": key, "x-request-id": "trace-ev-1" });
        assert.equal(res.status, 201);
        const row = await res.json();
        assert.deepEqual([row.request_id, row.user_id, row.session_id, row.group_id, row.score], [key, ALICE, ALICE_SESSION, group, 4]);
        assert.equal(res.headers.get("x-request-id"), "trace-ev-1");
        assert.match(res.headers.get("ratelimit") ?? "", /^"events";r=\d+;t=\d+$/);
      });
      await t.step("POST replays a key with 200 and the same event, stored once", async () => {
        const body = { kind: "read", request_id: crypto.randomUUID(), group_id: group };
        const first = await (await post(alice, body)).json();
        const res = await post(alice, body);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("idempotent-replayed"), "true");
        assert.deepEqual(await res.json(), first);
        const [{ n }] = await admin`select count(*)::int as n from public.interaction_events where request_id = ${body.request_id}`;
        assert.equal(n, 1);
      });
      await t.step("POST concurrent retries of one key make one event", async () => {
        const body = { kind: "delivered", request_id: crypto.randomUUID() };
        const answers = await Promise.all([1, 2, 3, 4].map(() => post(alice, body)));
        const statuses = answers.map((r) => r.status).sort();
        await Promise.all(answers.map((r) => r.body?.cancel()));
        assert.ok(statuses.every((s) => [200, 201, 409].includes(s)), String(statuses));
        assert.equal(statuses.filter((s) => s === 201).length, 1);
        const [{ n }] = await admin`select count(*)::int as n from public.interaction_events where request_id = ${body.request_id}`;
        assert.equal(n, 1);
      });
      await t.step("POST returns 422 for a key reused with another payload", async () => {
        const key = crypto.randomUUID();
        assert.equal((await post(alice, { kind: "read", request_id: key })).status, 201);
        const res = await post(alice, { kind: "delivered", request_id: key });
        assert.equal(res.status, 422);
        assert.equal((await res.json()).detail, "request_id was already used with a different payload");
      });
      await t.step("POST returns 409 while the same key is in flight", async () => {
        const key = crypto.randomUUID();
        const holder = await admin.reserve();
        try {
          await holder`select pg_advisory_lock(hashtextextended(${`${ALICE}/${ALICE}/event/${key}`}, 7))`;
          const res = await post(alice, { kind: "read", request_id: key });
          assert.equal(res.status, 409);
          assert.match((await res.json()).detail, /still being processed/);
        } finally {
          await holder`select pg_advisory_unlock_all()`;
          holder.release();
        }
      });
      await t.step("POST keeps a tracked skill id only as its keyed hash", async () => {
        const res = await post(alice, { kind: "feedback", category: "skill", payload: { helpful: true } }, { "X-Tracked-Skill-Id": "ev-skill-5521" });
        const row = await res.json();
        assert.equal(row.tracked_skill_id_hash, await trackedSkillHash("ev-skill-5521"));
        const [{ hits }] = await admin`select count(*)::int as hits from public.interaction_events e where e::text like '%ev-skill-5521%'`;
        assert.equal(hits, 0);
      });
      await t.step("POST lets an ingest token log and backdate a user's session event", async () => {
        const res = await post(ingest, { kind: "session_state", user_id: ALICE, session_id: ALICE_SESSION, group_id: group,
          payload: { state: "assessed" }, created_at: "2026-03-05T10:30:00Z" });
        assert.equal(res.status, 201);
        const row = await res.json();
        assert.deepEqual([row.actor_role, row.created_at], ["coach_ingest", "2026-03-05T10:30:00+00:00"]);
      });
      // Every validation branch answers 422 problem+json naming the field, and writes nothing.
      const [{ before }] = await admin`select count(*)::int as before from public.interaction_events`;
      const invalid: [string, string, unknown, Record<string, string>?][] = [
        ["an unknown kind", alice, { kind: "teleported" }],
        ["a missing kind", alice, {}],
        ["a rating without a score", alice, { kind: "rating" }],
        ["a score on another kind", alice, { kind: "read", score: 3 }],
        ["a score of 0", alice, { kind: "rating", score: 0 }],
        ["a score of 6", alice, { kind: "rating", score: 6 }],
        ["a fractional score", alice, { kind: "rating", score: 4.5 }],
        ["a malformed session id", alice, { kind: "read", session_id: "not-a-uuid" }],
        ["a malformed group id", alice, { kind: "read", group_id: "42" }],
        ["a malformed interaction id", alice, { kind: "read", interaction_id: "x" }],
        ["a malformed user id", service, { kind: "read", user_id: "bob" }],
        ["an empty category", alice, { kind: "read", category: "" }],
        ["a category of 101 characters", alice, { kind: "read", category: "c".repeat(101) }],
        ["a category with a control character", alice, { kind: "read", category: "a\u0007b" }],
        ["a category with a C1 control character", alice, { kind: "read", category: "a\u0085b" }],
        ["a payload that is not an object", alice, { kind: "read", payload: [1] }],
        ["an unknown field", alice, { kind: "read", mood: "great" }],
        ["a malformed request_id", alice, { kind: "read", request_id: "has space" }],
        ["a malformed Idempotency-Key", alice, { kind: "read" }, { "Idempotency-Key": "no/slash" }],
        ["a request_id that differs from the Idempotency-Key", alice, { kind: "read", request_id: "a" }, { "Idempotency-Key": "b" }],
        ["created_at from a user", alice, { kind: "read", created_at: "2026-01-01T00:00:00Z" }],
        ["a created_at that is not a timestamp", service, { kind: "read", user_id: BOB, created_at: "yesterday" }],
        ["no user_id from the service role", service, { kind: "read" }],
        ["no user_id from an ingest token", ingest, { kind: "read" }],
        ["an empty tracked skill id", alice, { kind: "read", tracked_skill_id: "" }],
        ["a tracked skill id of 257 characters", alice, { kind: "read" }, { "X-Tracked-Skill-Id": "s".repeat(257) }],
        ["tracked skill ids that differ", alice, { kind: "read", tracked_skill_id: "a" }, { "X-Tracked-Skill-Id": "b" }],
      ];
      const expected = [
        "kind", "kind", "score", "score", "score", "score", "score", "session_id", "group_id", "interaction_id", "user_id",
        "category", "category", "category", "category", "payload", "", "request_id", "Idempotency-Key", "request_id", "created_at",
        "created_at", "user_id", "user_id", "tracked_skill_id", "X-Tracked-Skill-Id", "tracked_skill_id",
      ];
      for (const [i, [what, bearer, body, headers]] of invalid.entries()) {
        await t.step(`POST refuses ${what} with 422 naming ${expected[i] || "the body"}`, async () => {
          const got = await fields(await post(bearer, body, headers));
          if (expected[i]) assert.ok(got.includes(expected[i]), `${what}: ${got}`);
          else assert.ok(got.length > 0);
        });
      }
      await t.step("a request refused for its body still logs the hash of its X-Tracked-Skill-Id, never the id", async () => {
        const lines: string[] = [];
        const log = console.log;
        console.log = (line: string) => lines.push(line);
        try {
          await (await post(alice, { kind: "teleported" }, { "X-Tracked-Skill-Id": "refused-skill-31" })).body?.cancel();
        } finally {
          console.log = log;
        }
        const line = JSON.parse(lines.at(-1)!);
        assert.deepEqual([line.status, line.tracked_skill_id_hash], [422, await trackedSkillHash("refused-skill-31")]);
        assert.ok(!lines.join("\n").includes("refused-skill-31"));
      });
      await t.step("POST refuses ids that are not the caller's, naming the field (one answer for others' and unknown)", async () => {
        assert.deepEqual(await fields(await post(alice, { kind: "read", session_id: BOB_SESSION })), ["session_id"]);
        assert.deepEqual(await fields(await post(alice, { kind: "read", session_id: crypto.randomUUID() })), ["session_id"]);
        assert.deepEqual(await fields(await post(alice, { kind: "read", interaction_id: crypto.randomUUID() })), ["interaction_id"]);
        assert.deepEqual(await fields(await post(service, { kind: "read", user_id: crypto.randomUUID() })), ["user_id"]);
      });
      await t.step("POST refuses a payload over the bound and a body over MAX_BODY_BYTES", async () => {
        const deep = JSON.parse("{\"a\":".repeat(40) + "1" + "}".repeat(40));
        assert.deepEqual(await fields(await post(alice, { kind: "read", payload: deep })), ["payload"]);
        const res = await handler(request("/functions/v1/events", { bearer: alice, rawBody: JSON.stringify({ kind: "read", payload: { x: "y".repeat(MAX_BODY_BYTES) } }) }));
        assert.equal(res.status, 413);
        await res.body?.cancel();
      });
      await t.step("POST refuses malformed JSON with 400", async () => {
        const res = await handler(request("/functions/v1/events", { bearer: alice, rawBody: "{kind" }));
        assert.equal(res.status, 400);
        await res.body?.cancel();
      });
      await t.step("nothing refused was stored", async () => {
        const [{ after }] = await admin`select count(*)::int as after from public.interaction_events`;
        assert.equal(after, before);
      });
      await t.step("POST refuses Alice writing Bob's event (403), anon (403) and no token (401)", async () => {
        assert.equal((await post(alice, { kind: "read", user_id: BOB })).status, 403);
        assert.equal((await post(anon, { kind: "read" })).status, 403);
        const res = await handler(request("/functions/v1/events", { body: { kind: "read" } }));
        assert.equal(res.status, 401);
        await res.body?.cancel();
      });
      await t.step("PUT is 405 with Allow", async () => {
        const res = await handler(request("/functions/v1/events", { method: "PUT", bearer: alice, body: {} }));
        assert.equal(res.status, 405);
        assert.equal(res.headers.get("allow"), "GET, POST, OPTIONS");
        await res.body?.cancel();
      });

      // GET --------------------------------------------------------------------------------
      await t.step("GET lists the caller's events by group, newest first, with keyset pages", async () => {
        const all = await (await get(alice, `?group_id=${group}`)).json();
        assert.equal(all.events.length, 3);
        assert.ok(all.events.every((e: { user_id: string; group_id: string }) => e.user_id === ALICE && e.group_id === group));
        const times = all.events.map((e: { created_at: string }) => Date.parse(e.created_at));
        assert.deepEqual(times, [...times].sort((a, b) => b - a));
        const first = await (await get(alice, `?group_id=${group}&limit=2`)).json();
        assert.equal(first.events.length, 2);
        assert.equal(first.next_before, first.events[1].id);
        const rest = await (await get(alice, `?group_id=${group}&limit=200&before=${first.next_before}`)).json();
        assert.deepEqual([...first.events, ...rest.events].map((e: { id: string }) => e.id), all.events.map((e: { id: string }) => e.id));
        assert.equal(rest.next_before, null);
      });
      await t.step("GET pages through events that share one timestamp to the microsecond, losing none", async () => {
        const tied = crypto.randomUUID();
        const made: string[] = [];
        for (let i = 0; i < 3; i++) {
          const res = await post(ingest, { kind: "read", user_id: ALICE, group_id: tied, created_at: "2026-03-06T09:00:00.123456Z" });
          made.push((await res.json()).id);
        }
        const seen: string[] = [];
        let before: string | null = null;
        for (let page = 0; page < 4; page++) {
          const body: { events: { id: string }[]; next_before: string | null } =
            await (await get(alice, `?group_id=${tied}&limit=1${before ? `&before=${before}` : ""}`)).json();
          seen.push(...body.events.map((e) => e.id));
          before = body.next_before;
          if (!before) break;
        }
        assert.deepEqual([...seen].sort(), [...made].sort());
        assert.equal(new Set(seen).size, 3);
      });
      await t.step("GET filters by session, kind, since and until", async () => {
        const bySession = await (await get(alice, `?session_id=${ALICE_SESSION}&kind=session_state`)).json();
        assert.ok(bySession.events.length >= 1);
        assert.ok(bySession.events.every((e: { session_id: string; kind: string }) => e.session_id === ALICE_SESSION && e.kind === "session_state"));
        const window = await (await get(alice, `?group_id=${group}&since=2026-03-05T10:00:00Z&until=2026-03-05T11:00:00Z`)).json();
        assert.deepEqual(window.events.map((e: { created_at: string }) => e.created_at), ["2026-03-05T10:30:00+00:00"]);
        const empty = await (await get(alice, `?group_id=${group}&until=2026-03-05T10:30:00Z&since=2026-03-05T10:00:00Z`)).json();
        assert.deepEqual(empty.events, [], "until is exclusive");
      });
      await t.step("GET shows Bob none of Alice's events, and the service role hers by user_id", async () => {
        assert.deepEqual((await (await get(bob, `?group_id=${group}`)).json()).events, []);
        const svc = await (await get(service, `?user_id=${ALICE}&group_id=${group}`)).json();
        assert.equal(svc.events.length, 3);
      });
      const badQueries: [string, string, string][] = [
        ["limit=0", "limit", "a limit of 0"],
        ["limit=201", "limit", "a limit of 201"],
        ["limit=ten", "limit", "a limit that is not a number"],
        ["kind=teleported", "kind", "an unknown kind"],
        ["session_id=x", "session_id", "a malformed session id"],
        ["group_id=x", "group_id", "a malformed group id"],
        ["since=yesterday", "since", "a since that is not a timestamp"],
        ["until=2026-13-01T00:00:00Z", "until", "a malformed until"],
        ["since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until", "an until before since"],
        ["before=x", "before", "a malformed cursor"],
        [`before=${crypto.randomUUID()}`, "before", "a cursor that is not one of the caller's events"],
        ["colour=red", "", "an unknown parameter"],
        [`user_id=${BOB}`, "user_id", "a user naming someone else"],
      ];
      for (const [query, field, what] of badQueries) {
        await t.step(`GET refuses ${what} with 422 naming ${field || "it"}`, async () => {
          const got = await fields(await get(alice, `?${query}`));
          if (field) assert.ok(got.includes(field), `${query}: ${got}`);
          else assert.ok(got.length > 0);
        });
      }
      await t.step("GET needs user_id from the service role, and is refused to ingest tokens", async () => {
        assert.deepEqual(await fields(await get(service, "")), ["user_id"]);
        const res = await get(ingest, "");
        assert.equal(res.status, 403);
        await res.body?.cancel();
      });
      await t.step("GET and POST answer 503 with Retry-After while the database is down", async () => {
        await withDatabaseDown(closeDb, async () => {
          for (const res of [await post(alice, { kind: "read" }), await get(alice, "")]) {
            assert.equal(res.status, 503);
            assert.equal(res.headers.get("retry-after"), "1");
            assert.ok((await res.json()).trace_id);
          }
        });
      });
    } finally {
      await closeDb();
      await admin.end();
    }
  },
});
