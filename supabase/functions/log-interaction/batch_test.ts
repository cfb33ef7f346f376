/** log-interaction/batch against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { handler } from "./handler.ts";
import { MAX_BATCH_ITEMS } from "./batch.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, request, token, userToken } from "../_shared/testing/fixtures.ts";
import { trackedSkillHash } from "../_shared/tracked_skill.ts";
import { handler as eventsHandler } from "../events/handler.ts";

const admin = adminSql();

function batch(bearer: string, items: unknown): Promise<Response> {
  return handler(request("/log-interaction/batch", { bearer, body: { items } }));
}

/** An ingest item for Alice with its own key. */
const item = (text: string, extra: Record<string, unknown> = {}) =>
  ({ request_id: `bt-${crypto.randomUUID()}`, user_id: ALICE, sender: "ai_coach", content: { text }, ...extra });

Deno.test({
  name: "log-interaction batch",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const ingest = await token({ role: "coach_ingest", batch: crypto.randomUUID() });
    try {
      await t.step("every item gets its own outcome in order; a bad item blocks none of the good ones", async () => {
        const good = item("good", { model: "gpt-4o-mini", prompt_tokens: 1000, completion_tokens: 100, tracked_skill_id: "skill-7" });
        const res = await batch(ingest, [
          good,
          { ...good },
          { ...good, content: { text: "changed" } },
          { ...item("no key"), request_id: undefined },
          item("bad sender", { sender: "robot" }),
          item("nobody", { user_id: crypto.randomUUID() }),
          "not an object",
          item("last"),
        ]);
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.deepEqual(body.items.map((i: { index: number; outcome: string; status: number }) => [i.index, i.outcome, i.status]), [
          [0, "created", 201], [1, "replayed", 200], [2, "refused", 422], [3, "refused", 422],
          [4, "refused", 422], [5, "refused", 422], [6, "refused", 422], [7, "created", 201],
        ]);
        assert.deepEqual([body.created, body.replayed, body.refused], [2, 1, 5]);
        assert.deepEqual(body.items[2].problem, {
          status: 422, code: "PT422", detail: "request_id was already used with a different payload",
          errors: [{ field: "request_id", message: "request_id was already used with a different payload" }],
        });
        assert.deepEqual(body.items[3].problem.errors.map((e: { field: string }) => e.field), ["request_id"]);
        assert.deepEqual(body.items[4].problem.errors.map((e: { field: string }) => e.field), ["sender"]);
        assert.equal(body.items[5].problem.code, "23503");
        assert.equal(body.items[0].interaction.id, body.items[1].interaction.id);
        const [row] = await admin`select cost_usd::float8 as cost, tracked_skill_id_hash from public.coach_interactions where request_id = ${good.request_id}`;
        assert.equal(row.tracked_skill_id_hash, await trackedSkillHash("skill-7"), "the raw tracked skill id is hashed, as on the single route");
        assert.equal(row.cost, body.items[0].interaction.cost_usd);
        assert.ok(row.cost > 0, "cost from model_prices");
        const [{ n }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = any(${[good.request_id]})`;
        assert.equal(n, 1);
      });

      await t.step("text PostgreSQL cannot store (NUL, an unpaired surrogate) refuses its item only", async () => {
        const ok = item("fine");
        const res = await batch(ingest, [item("nul \u0000 here"), item("lone \ud800 surrogate"), ok, item("key", { metadata: { ["bad\u0000key"]: 1 } })]);
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.deepEqual(body.items.map((i: { outcome: string; status: number }) => [i.outcome, i.status]),
          [["refused", 422], ["refused", 422], ["created", 201], ["refused", 422]]);
        assert.deepEqual(body.items[0].problem.errors, [{ field: "content.text", message: "Contains a NUL character (\\u0000), which cannot be stored" }]);
        assert.equal(body.items[1].problem.errors[0].message, "Contains an unpaired surrogate: not valid Unicode");
        const [{ n }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = ${ok.request_id}`;
        assert.equal(n, 1);
      });

      await t.step("a retried batch replays every item and stores nothing new", async () => {
        const items = [item("r1"), item("r2"), item("r3")];
        const first = await (await batch(ingest, items)).json();
        const again = await (await batch(ingest, items)).json();
        assert.deepEqual(again.items.map((i: { outcome: string }) => i.outcome), ["replayed", "replayed", "replayed"]);
        assert.deepEqual(again.items.map((i: { interaction: { id: string } }) => i.interaction.id), first.items.map((i: { interaction: { id: string } }) => i.interaction.id));
        const [{ n }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = any(${items.map((i) => i.request_id)})`;
        assert.equal(n, 3);
      });

      await t.step("concurrent retries of one batch store each item once: one created, the rest replayed or in flight (409)", async () => {
        const items = Array.from({ length: 20 }, (_, n) => item(`concurrent ${n}`));
        const answers = await Promise.all(Array.from({ length: 6 }, async () => (await batch(ingest, items)).json()));
        for (const [n, it] of items.entries()) {
          const outcomes = answers.map((a) => `${a.items[n].outcome}:${a.items[n].status}`);
          assert.equal(outcomes.filter((o) => o === "created:201").length, 1, `${n}: ${outcomes}`);
          assert.ok(outcomes.every((o) => ["created:201", "replayed:200", "refused:409"].includes(o)), `${n}: ${outcomes}`);
          const [{ n: stored }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = ${it.request_id}`;
          assert.equal(stored, 1);
        }
      });

      await t.step("events ride in the same batch: typed results in order, log_event's rules item by item, one key across both routes", async () => {
        const message = item("rated message");
        const hash = await trackedSkillHash("skill-9");
        const rating = { type: "event", request_id: `be-${crypto.randomUUID()}`, user_id: ALICE, kind: "rating", score: 4, payload: { via: "batch" }, tracked_skill_id_hash: hash };
        const res = await batch(ingest, [
          rating,
          message,
          { type: "event", request_id: `be-${crypto.randomUUID()}`, user_id: ALICE, kind: "rating" },
          { type: "event", request_id: `be-${crypto.randomUUID()}`, user_id: ALICE, kind: "read", session_id: crypto.randomUUID() },
          { type: "event", request_id: `be-${crypto.randomUUID()}`, user_id: ALICE, kind: "read", tracked_skill_id: "s", tracked_skill_id_hash: hash },
          { type: "trace", request_id: `be-${crypto.randomUUID()}`, user_id: ALICE, kind: "read" },
          { type: "event", request_id: `be-${crypto.randomUUID()}`, user_id: ALICE, kind: "read", tracked_skill_id_hash: "skill-9" },
          { ...rating },
        ]);
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.deepEqual(body.items.map((i: { index: number; type: string; outcome: string; status: number }) => [i.index, i.type, i.outcome, i.status]), [
          [0, "event", "created", 201], [1, "interaction", "created", 201], [2, "event", "refused", 422], [3, "event", "refused", 422],
          [4, "event", "refused", 422], [5, "interaction", "refused", 422], [6, "event", "refused", 422], [7, "event", "replayed", 200],
        ]);
        assert.deepEqual([body.created, body.replayed, body.refused], [2, 1, 5]);
        assert.deepEqual(body.items[2].problem.errors.map((e: { field: string }) => e.field), ["score"]);
        assert.equal(body.items[3].problem.code, "23503");
        assert.equal(body.items[3].problem.errors[0].field, "session_id");
        assert.deepEqual(body.items[4].problem.errors.map((e: { field: string }) => e.field), ["tracked_skill_id_hash"]);
        assert.ok(body.items[5].problem.errors.some((e: { field: string }) => e.field === "type"));
        assert.deepEqual(body.items[6].problem.errors.map((e: { field: string }) => e.field), ["tracked_skill_id_hash"]);
        assert.equal(body.items[0].event.tracked_skill_id_hash, hash, "a hash computed by the caller is stored as sent");
        assert.equal(body.items[7].event.id, body.items[0].event.id);
        assert.equal(body.items[1].interaction.request_id, message.request_id);

        // The same key through the events route replays the batch's event; an event may name an
        // interaction that an earlier batch logged.
        // The single route takes the raw id and hashes it to the same value.
        const { type: _type, tracked_skill_id_hash: _hash, ...single } = rating;
        const replay = await eventsHandler(request("/events", { bearer: ingest, body: { ...single, tracked_skill_id: "skill-9" } }));
        assert.equal(replay.status, 200);
        assert.equal((await replay.json()).id, body.items[0].event.id);
        const mixed = item("answered");
        const about = { type: "event", request_id: `be-${crypto.randomUUID()}`, user_id: ALICE, kind: "delivered" };
        const first = await (await batch(ingest, [mixed])).json();
        const linked = await (await batch(ingest, [{ ...about, interaction_id: first.items[0].interaction.id }])).json();
        assert.equal(linked.items[0].outcome, "created");
        const [{ n }] = await admin`select count(*)::int as n from public.interaction_events where request_id = ${rating.request_id}`;
        assert.equal(n, 1);
      });

      await t.step("Prefer: return=minimal answers each stored item's id instead of its row", async () => {
        const message = item("minimal");
        const event = { type: "event", request_id: `be-${crypto.randomUUID()}`, user_id: ALICE, kind: "read" };
        const send = () => handler(request("/log-interaction/batch", { bearer: ingest, body: { items: [message, event, item("bad", { sender: "robot" })] }, headers: { Prefer: "return=minimal" } }));
        const res = await send();
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("preference-applied"), "return=minimal");
        const body = await res.json();
        const [{ id }] = await admin`select id from public.coach_interactions where request_id = ${message.request_id}`;
        const [{ id: eventId }] = await admin`select id from public.interaction_events where request_id = ${event.request_id}`;
        assert.deepEqual(body.items.slice(0, 2), [
          { index: 0, type: "interaction", outcome: "created", status: 201, id },
          { index: 1, type: "event", outcome: "created", status: 201, id: eventId },
        ]);
        assert.equal(body.items[2].problem.errors[0].field, "sender", "a refused item still says why");
        const again = await (await send()).json();
        assert.deepEqual(again.items.slice(0, 2).map((i: { outcome: string; id: string }) => [i.outcome, i.id]), [["replayed", id], ["replayed", eventId]]);
      });

      await t.step("a mixed batch takes from both limits and lists both in the RateLimit fields", async () => {
        const user = await userToken(ALICE);
        await admin`delete from private.rate_limit_counters where subject = ${`user:${ALICE}`} and endpoint in ('log-interaction', 'events')`;
        const res = await batch(user, [
          { request_id: `bt-${crypto.randomUUID()}`, sender: "user", content: { text: "hi" } },
          { type: "event", request_id: `be-${crypto.randomUUID()}`, kind: "read" },
          { type: "event", request_id: `be-${crypto.randomUUID()}`, kind: "delivered" },
        ]);
        assert.equal(res.status, 200);
        assert.deepEqual((await res.json()).items.map((i: { outcome: string }) => i.outcome), ["created", "created", "created"]);
        assert.match(res.headers.get("ratelimit") ?? "", /^"log-interaction";r=119;t=\d+, "events";r=118;t=\d+$/);
        assert.match(res.headers.get("ratelimit-policy") ?? "", /^"log-interaction";q=120;w=60, "events";q=120;w=60$/);
        const events = (n: number) => Array.from({ length: n }, () => ({ type: "event", request_id: `be-${crypto.randomUUID()}`, kind: "read" }));
        const over = await batch(user, events(119));
        assert.equal(over.status, 429);
        assert.equal((await over.json())["violated-policies"][0], "events");
        await admin`delete from private.rate_limit_counters where subject = ${`user:${ALICE}`} and endpoint in ('log-interaction', 'events')`;
      });

      await t.step("a signed-in user batches her own messages; someone else's are refused item by item", async () => {
        const res = await batch(alice, [
          { request_id: `bt-${crypto.randomUUID()}`, sender: "user", content: { text: "mine" } },
          { request_id: `bt-${crypto.randomUUID()}`, sender: "user", user_id: BOB, content: { text: "for bob" } },
          { request_id: `bt-${crypto.randomUUID()}`, sender: "user", content: { text: "dated" }, created_at: "2020-01-01T00:00:00Z" },
        ]);
        const body = await res.json();
        assert.deepEqual(body.items.map((i: { outcome: string; status: number }) => [i.outcome, i.status]), [["created", 201], ["refused", 403], ["refused", 422]]);
        assert.equal(body.items[1].problem.errors[0].field, "user_id");
      });

      await t.step("the request itself: not a batch is 422, more than 500 items 422, anon 401", async () => {
        for (const items of [[], "x", Array.from({ length: MAX_BATCH_ITEMS + 1 }, () => item("x"))]) {
          const res = await batch(ingest, items);
          assert.equal(res.status, 422);
          assert.equal((await res.json()).errors[0].field, "items");
        }
        const anon = await handler(request("/log-interaction/batch", { body: { items: [item("x")] } }));
        assert.equal(anon.status, 401);
        await anon.body?.cancel();
      });

      await t.step("a batch takes one request per item from the rate limit, all or none", async () => {
        const user = await userToken(ALICE);
        // A fresh user-scoped counter: Alice's quota is 120 a minute.
        await admin`delete from private.rate_limit_counters where endpoint = 'log-interaction' and subject = ${`user:${ALICE}`}`;
        const items = (n: number) => Array.from({ length: n }, () => ({ request_id: `bt-${crypto.randomUUID()}`, sender: "user", content: { text: "rl" } }));
        const first = await batch(user, items(100));
        assert.equal(first.status, 200);
        assert.match(first.headers.get("ratelimit") ?? "", /;r=20;/);
        await first.body?.cancel();
        const over = await batch(user, items(21));
        assert.equal(over.status, 429);
        assert.match(over.headers.get("ratelimit") ?? "", /;r=20;/, "nothing was taken");
        await over.body?.cancel();
        const rest = await batch(user, items(20));
        assert.equal(rest.status, 200);
        await rest.body?.cancel();
        // Larger than the whole limit (120 a minute): 413, not a 429 to retry; nothing is taken or stored.
        await admin`delete from private.rate_limit_counters where endpoint = 'log-interaction' and subject = ${`user:${ALICE}`}`;
        const huge = items(121);
        const tooLarge = await batch(user, huge);
        assert.equal(tooLarge.status, 413);
        assert.match((await tooLarge.json()).detail, /log-interaction limit, which allows 120 per 60 s; send at most 120 items of this type per batch/);
        const [{ n }] = await admin`select count(*)::int as n from public.coach_interactions where request_id = any(${huge.map((i) => i.request_id)})`;
        assert.equal(n, 0);
        const after = await batch(user, items(120));
        assert.equal(after.status, 200, "the refused batch took nothing");
        await after.body?.cancel();
        await admin`delete from private.rate_limit_counters where endpoint = 'log-interaction' and subject = ${`user:${ALICE}`}`;
      });
    } finally {
      await closeDb();
      await admin.end();
    }
  },
});
