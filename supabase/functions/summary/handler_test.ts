/**
 * The summary handler against the test run's database and a local OpenAI-compatible test
 * server that this test starts (no network beyond loopback).
 */
import assert from "node:assert/strict";
import { handler, offlineSummary, SessionSummary } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, CAROL, request, token, userToken } from "../_shared/testing/fixtures.ts";
import { startLlmTestServer, useLlm as useLlmEnv, useOffline } from "../_shared/testing/llm_server.ts";

const admin = adminSql();
const llm = startLlmTestServer();

/** A date n days from today (UTC), as the model writes due dates. */
const inDays = (n: number) => new Date(Date.now() + n * 86_400_000).toISOString().slice(0, 10);

const GOOD: SessionSummary = {
  executive_summary: "You want steadier mornings and have a plan to get there.",
  key_insights: ["Evenings set up mornings"],
  goal_statement: "Walk 20 minutes every weekday morning",
  action_plan: [
    { title: "Buy an alarm clock", description: "So the phone can leave the bedroom", priority: 1, due_date: inDays(7),
      milestones: [{ title: "Alarm clock on the nightstand", due_date: inDays(4) }] },
    { title: "Lay out shoes the night before", description: "", priority: 2, due_date: null, milestones: [] },
  ],
  success_metrics: ["Walks logged each weekday"],
  support_and_accountability: ["Weekly check-in with Carol"],
};

/** A new completed five-stage session for Alice; returns its id. */
async function completedSession(): Promise<string> {
  const [{ id }] = await admin`
    insert into public.coaching_sessions (user_id, session_type, theme, current_stage, is_complete, completed_at)
    values (${ALICE}, 'self_coaching', 'Mornings', 5, true, now()) returning id`;
  await admin`insert into public.stage_responses (session_id, stage_number, responses, completed_at)
    select ${id}::uuid, n, r.responses, now()
    from public.stage_responses r
    join generate_series(1, 5) n on r.stage_number = n
    where r.session_id = 'a11ce000-5e55-4000-8000-000000000001'`;
  return id;
}

const useLlm = (timeoutMs?: number) => useLlmEnv(llm, timeoutMs);
const offline = useOffline;

async function summaryCalls(sessionId: string) {
  return [...await admin`select model, status, error_code, latency_ms, prompt_tokens, completion_tokens, cost_usd, channel,
                                metadata ->> 'operation' as operation, sender
                         from public.coach_interactions where session_id = ${sessionId} order by created_at`];
}

/** Forgets the summary generations Alice has taken from her rate limit (they add up over the steps). */
async function resetAliceLimit(): Promise<void> {
  await admin`delete from private.rate_limit_counters where endpoint = 'summary' and subject = ${"user:" + ALICE}`;
}

Deno.test({
  name: "summary handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const post = (body: unknown, bearer = alice) => handler(request("/summary", { bearer, body }));
    await resetAliceLimit();
    try {
      await t.step("handler() sends the model, the stage responses and a JSON-schema response format", async () => {
        useLlm();
        const id = await completedSession();
        llm.script.push({ content: JSON.stringify(GOOD) });
        const res = await post({ session_id: id });
        assert.equal(res.status, 200);
        const sent = llm.requests.at(-1) as { model: string; messages: { role: string; content: string }[]; response_format: { type: string; json_schema: { name: string; strict: boolean; schema: { required: string[] } } } };
        assert.equal(sent.model, "gpt-4o-mini");
        assert.deepEqual(sent.messages.map((m) => m.role), ["system", "user"]);
        assert.match(sent.messages[1].content, /Stage 4 \(finish\)/);
        assert.match(sent.messages[1].content, /Walk 20 minutes every weekday morning/);
        assert.equal(sent.response_format.type, "json_schema");
        assert.equal(sent.response_format.json_schema.name, "session_summary");
        assert.equal(sent.response_format.json_schema.strict, true);
        assert.deepEqual(sent.response_format.json_schema.schema.required.sort(),
          ["action_plan", "executive_summary", "goal_statement", "key_insights", "success_metrics", "support_and_accountability"]);
      });

      await t.step("handler() caches a good answer, creates plans and milestones, and logs the call with cost", async () => {
        useLlm();
        const id = await completedSession();
        llm.script.push({ content: JSON.stringify(GOOD), usage: { prompt_tokens: 1000, completion_tokens: 200, cached_tokens: 400 } });
        const lines: string[] = [];
        const log = console.log;
        console.log = (line: string) => lines.push(line);
        let res: Response;
        try {
          res = await post({ session_id: id });
        } finally {
          console.log = log;
        }
        const body = await res.json();
        // The request's log line carries the LLM call: provider, model, tokens, cost, latency.
        const line = JSON.parse(lines.at(-1)!);
        assert.deepEqual(
          [line.function, line.status, line.user_id, line.provider, line.model, line.prompt_tokens, line.completion_tokens, line.cached_tokens, line.cost_usd],
          ["summary", 200, ALICE, "openai", "gpt-4o-mini", 1000, 200, 400, (600 * 0.15 + 400 * 0.075 + 200 * 0.6) / 1e6]);
        assert.equal(typeof line.llm_latency_ms, "number");
        assert.ok(!lines.join("\n").includes("alarm clock"), "no content in the log");
        assert.equal(body.cached, false);
        assert.equal(body.model, "gpt-4o-mini");
        assert.deepEqual(body.summary_data, GOOD);
        assert.ok(body.summary.includes(`## Action plan\n1. **Buy an alarm clock** (by ${inDays(7)})`));
        const plans = await admin`select p.title, p.priority, p.source, p.timeline_end::text, count(m.id)::int as milestones
                                  from public.action_plans p left join public.milestones m on m.action_plan_id = p.id
                                  where p.session_id = ${id} group by p.id order by p.priority`;
        assert.deepEqual([...plans], [
          { title: "Buy an alarm clock", priority: 1, source: "summary", timeline_end: inDays(7), milestones: 1 },
          { title: "Lay out shoes the night before", priority: 2, source: "summary", timeline_end: null, milestones: 0 },
        ]);
        const [call] = await summaryCalls(id);
        assert.deepEqual({ ...call, cost_usd: Number(call.cost_usd) }, {
          model: "gpt-4o-mini", status: "ok", error_code: null, latency_ms: call.latency_ms, prompt_tokens: 1000, completion_tokens: 200,
          cost_usd: (600 * 0.15 + 400 * 0.075 + 200 * 0.6) / 1e6, channel: "api", operation: "summary", sender: "ai_coach",
        });
      });

      await t.step("handler() returns the cached summary without calling the model, and refresh does not duplicate plans", async () => {
        useLlm();
        const id = await completedSession();
        llm.script.push({ content: JSON.stringify(GOOD) });
        await (await post({ session_id: id })).body?.cancel();
        const before = llm.requests.length;
        const again = await (await post({ session_id: id })).json();
        assert.equal(again.cached, true);
        assert.equal(llm.requests.length, before);
        llm.script.push({ content: JSON.stringify({ ...GOOD, executive_summary: "Refreshed." }) });
        const refreshed = await (await post({ session_id: id, refresh: true })).json();
        assert.equal(refreshed.summary_data.executive_summary, "Refreshed.");
        const [{ n }] = await admin`select count(*)::int as n from public.action_plans where session_id = ${id}`;
        assert.equal(n, 2);
      });

      await t.step("handler() answers 502 for malformed or schema-violating output and saves nothing", async () => {
        useLlm();
        const id = await completedSession();
        llm.script.push({ content: "Here is your summary: great session!" });
        let res = await post({ session_id: id });
        assert.equal(res.status, 502);
        assert.match((await res.json()).detail, /not JSON/);
        llm.script.push({ content: JSON.stringify({ ...GOOD, action_plan: [{ title: "x", priority: 9 }] }) });
        res = await post({ session_id: id });
        assert.equal(res.status, 502);
        assert.match((await res.json()).detail, /does not match the schema: action_plan\.0\./);
        // Longer than the database stores: the model's fault (502), not the client's (422).
        llm.script.push({ content: JSON.stringify({ ...GOOD, action_plan: [{ ...GOOD.action_plan[0], description: "d".repeat(4001) }] }) });
        res = await post({ session_id: id });
        assert.equal(res.status, 502);
        assert.match((await res.json()).detail, /does not match the schema: action_plan\.0\.description/);
        const [{ summary }] = await admin`select summary from public.coaching_sessions where id = ${id}`;
        assert.equal(summary, null);
        const [{ n }] = await admin`select count(*)::int as n from public.action_plans where session_id = ${id}`;
        assert.equal(n, 0);
        assert.deepEqual((await summaryCalls(id)).map((c) => [c.status, c.error_code]), [["error", "llm_malformed"], ["error", "llm_malformed"], ["error", "llm_malformed"]]);
      });

      await t.step("handler() saves what the model proposes without touching what the user added", async () => {
        useLlm();
        const id = await completedSession();
        llm.script.push({ content: JSON.stringify({ ...GOOD, action_plan: [
          { ...GOOD.action_plan[0], due_date: inDays(-3), milestones: [
            { title: "Alarm clock on the nightstand", due_date: inDays(4) }, { title: "Alarm clock on the nightstand", due_date: inDays(6) },
          ] },
          { ...GOOD.action_plan[0], title: "  buy an ALARM clock ", description: "named twice" },
          GOOD.action_plan[1],
        ] }) });
        const res = await post({ session_id: id });
        assert.equal(res.status, 200);
        await res.body?.cancel();
        // A due date before the plan starts (today) is dropped; a plan named twice is taken once, the first.
        const plans = await admin`select title, description, timeline_end::text from public.action_plans where session_id = ${id} order by priority`;
        assert.deepEqual([...plans], [
          { title: "Buy an alarm clock", description: "So the phone can leave the bedroom", timeline_end: null },
          { title: "Lay out shoes the night before", description: "", timeline_end: null },
        ]);
        // A milestone named twice in one answer is taken once, the first.
        const [plan] = await admin`select id from public.action_plans where session_id = ${id} and title = 'Buy an alarm clock'`;
        assert.deepEqual([...await admin`select due_date::text from public.milestones where action_plan_id = ${plan.id}`],
          [{ due_date: inDays(4) }]);
        // Alice adds a milestone of her own; a refresh proposing the same title leaves it, and
        // moves the due date of the model's milestone. The refresh's plan due date, before the
        // plan's start (today), is dropped.
        await admin.begin(async (tx) => {
          await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: ALICE, role: "authenticated" })}, true)`;
          await tx`select public.add_milestone(${plan.id}::uuid, 'Tell Carol', null, ${inDays(10)}::date)`;
        });
        await admin`update public.action_plans set timeline_end = ${inDays(30)}::date where id = ${plan.id}`;
        llm.script.push({ content: JSON.stringify({ ...GOOD, action_plan: [{ ...GOOD.action_plan[0], due_date: inDays(-1), milestones: [
          { title: "Alarm clock on the nightstand", due_date: inDays(5) }, { title: "Tell Carol", due_date: inDays(1) },
        ] }] }) });
        await (await post({ session_id: id, refresh: true })).body?.cancel();
        const milestones = await admin`select title, source, due_date::text from public.milestones where action_plan_id = ${plan.id} order by title`;
        assert.deepEqual([...milestones], [
          { title: "Alarm clock on the nightstand", source: "summary", due_date: inDays(5) },
          { title: "Tell Carol", source: "manual", due_date: inDays(10) },
        ]);
        const [{ timeline_end }] = await admin`select timeline_end::text from public.action_plans where id = ${plan.id}`;
        assert.equal(timeline_end, null);
      });

      await t.step("handler() answers 502 when the database refuses the model's summary, and logs the call", async () => {
        useLlm();
        const id = await completedSession();
        llm.script.push({ content: JSON.stringify({ ...GOOD, action_plan: [{ ...GOOD.action_plan[0], title: "   " }] }), usage: { prompt_tokens: 10, completion_tokens: 5 } });
        const res = await post({ session_id: id });
        assert.equal(res.status, 502);
        assert.match((await res.json()).detail, /^The model's summary could not be stored: .*action_plans_title_length/);
        const [{ summary }] = await admin`select summary from public.coaching_sessions where id = ${id}`;
        assert.equal(summary, null);
        assert.deepEqual((await summaryCalls(id)).map((c) => [c.status, c.error_code, c.prompt_tokens]), [["error", "llm_unstorable", 10]]);
      });

      await t.step("handler() answers 504 when the model times out", async () => {
        useLlm(200);
        const id = await completedSession();
        llm.script.push({ content: JSON.stringify(GOOD), delayMs: 600 }, { content: JSON.stringify(GOOD), delayMs: 600 });
        const res = await post({ session_id: id });
        assert.equal(res.status, 504);
        await res.body?.cancel();
        assert.deepEqual((await summaryCalls(id)).map((c) => c.error_code), ["llm_timeout"]);
        llm.script.length = 0;
      });

      await t.step("handler() retries once after a 429 and then succeeds", async () => {
        useLlm();
        const id = await completedSession();
        const before = llm.requests.length;
        llm.script.push({ status: 429, headers: { "retry-after-ms": "10" } }, { content: JSON.stringify(GOOD) });
        const res = await post({ session_id: id });
        assert.equal(res.status, 200);
        await res.body?.cancel();
        assert.equal(llm.requests.length - before, 2);
      });

      await t.step("handler() makes LLM_TIMEOUT_MS the deadline of the whole call, retries included", async () => {
        useLlm(2000);
        const id = await completedSession();
        const before = llm.requests.length;
        // Each attempt alone fits in 2 s (with a per-attempt timeout the call would succeed
        // after 2.4 s); the first and its retry together do not.
        llm.script.push(
          { status: 500, delayMs: 1200, headers: { "retry-after-ms": "1" } },
          { content: JSON.stringify(GOOD), delayMs: 1200 },
        );
        const res = await post({ session_id: id });
        assert.equal(res.status, 504);
        await res.body?.cancel();
        assert.equal(llm.requests.length - before, 2, "the retry was sent, and cut off by the deadline");
        assert.deepEqual((await summaryCalls(id)).map((c) => c.error_code), ["llm_timeout"]);
        llm.script.length = 0;
      });

      await t.step("handler() cancels the LLM call when the client goes away, and saves nothing", async () => {
        useLlm();
        const id = await completedSession();
        const before = llm.aborted;
        llm.script.push({ content: JSON.stringify(GOOD), bodyDelayMs: 30_000 });
        const client = new AbortController();
        const arrived = llm.nextRequest();
        const abandoned = llm.nextAbort();
        const pending = handler(request("/summary", { bearer: alice, body: { session_id: id }, signal: client.signal }));
        await arrived;
        client.abort();
        const res = await pending; // without cancelling, this would wait for the model's whole answer
        assert.equal(res.status, 499);
        await res.body?.cancel();
        await abandoned;
        assert.equal(llm.aborted - before, 1, "the model's server saw its client go away");
        const [{ summary }] = await admin`select summary from public.coaching_sessions where id = ${id}`;
        assert.equal(summary, null);
        assert.deepEqual((await summaryCalls(id)).map((c) => [c.status, c.error_code]), [["error", "llm_aborted"]]);
      });

      await t.step("handler() lets an assigned coach read the cached summary but not generate or refresh one", async () => {
        offline();
        const carol = await userToken(CAROL);
        const id = await completedSession();
        let res = await post({ session_id: id }, carol);
        assert.equal(res.status, 403);
        assert.match((await res.json()).detail, /no summary yet; only the session's owner or the service role can generate one/);
        assert.deepEqual(await summaryCalls(id), [], "no LLM call was made or logged for the coach");
        await (await post({ session_id: id })).body?.cancel();
        res = await post({ session_id: id }, carol);
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.cached, true);
        assert.equal(body.model, "offline");
        res = await post({ session_id: id, refresh: true }, carol);
        assert.equal(res.status, 403);
        assert.match((await res.json()).detail, /Only the session's owner or the service role can refresh/);
        assert.equal((await summaryCalls(id)).length, 1, "only the owner's generation was made");
      });

      await t.step("handler() lets the service role generate and refresh any session's summary", async () => {
        offline();
        const service = await token({ role: "service_role" });
        const id = await completedSession();
        const res = await post({ session_id: id, refresh: true }, service);
        assert.equal(res.status, 200);
        assert.equal((await res.json()).cached, false);
        assert.equal(res.headers.get("ratelimit-policy"), '"summary";q=1000;w=3600');
      });

      await t.step("handler() rate-limits generations: RateLimit headers on a generation, none on a cached answer, 429 when used up", async () => {
        offline();
        await resetAliceLimit();
        const id = await completedSession();
        let res = await post({ session_id: id });
        assert.equal(res.status, 200);
        await res.body?.cancel();
        assert.equal(res.headers.get("ratelimit-policy"), '"summary";q=20;w=3600');
        assert.match(res.headers.get("ratelimit") ?? "", /^"summary";r=19;t=\d+$/);
        res = await post({ session_id: id });
        assert.equal((await res.json()).cached, true);
        assert.equal(res.headers.get("ratelimit"), null, "a cached answer spends nothing");
        await admin`select (private.take_rate_limit('summary', ${admin.json({ role: "authenticated", sub: ALICE })}::jsonb)).remaining
                    from generate_series(1, 19)`;
        const calls = (await summaryCalls(id)).length;
        res = await post({ session_id: id, refresh: true });
        assert.equal(res.status, 429);
        assert.match(res.headers.get("ratelimit") ?? "", /^"summary";r=0;t=\d+$/);
        assert.ok(Number(res.headers.get("retry-after")) >= 1);
        assert.deepEqual((await res.json())["violated-policies"], ["summary"]);
        assert.equal((await summaryCalls(id)).length, calls, "a refused refresh calls no model");
        await resetAliceLimit();
      });

      await t.step("handler() uses the offline provider without OPENAI_API_KEY and says so", async () => {
        offline();
        const id = await completedSession();
        const body = await (await post({ session_id: id })).json();
        assert.equal(body.model, "offline");
        assert.equal(body.summary_data.goal_statement, "Walk 20 minutes every weekday morning for the next four weeks");
        assert.deepEqual(body.summary_data.action_plan.map((a: { title: string }) => a.title),
          ["Buy an alarm clock", "Charge the phone in the kitchen", "Lay out shoes the night before"]);
        assert.deepEqual((await summaryCalls(id)).map((c) => [c.model, c.status]), [["offline", "ok"]]);
      });

      await t.step("handler() logs the call whatever the length of the client's x-request-id (up to 128 characters)", async () => {
        offline();
        const id = await completedSession();
        const res = await handler(request("/summary", { bearer: alice, body: { session_id: id }, headers: { "x-request-id": "r".repeat(128) } }));
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("x-request-id"), "r".repeat(128));
        assert.deepEqual((await summaryCalls(id)).map((c) => c.status), ["ok"]);
      });

      await t.step("handler() answers 410 once retention emptied the answers, and calls no model", async () => {
        offline();
        const id = await completedSession();
        assert.equal((await post({ session_id: id })).status, 200);
        // What private.apply_retention_batch does past the window: answers and summary emptied.
        await admin`update public.stage_responses set responses = '{}', content_removed_at = now() where session_id = ${id}`;
        await admin`update public.coaching_sessions set summary = '', summary_data = '{}' where id = ${id}`;
        const before = (await summaryCalls(id)).length;
        for (const body of [{ session_id: id }, { session_id: id, refresh: true }]) {
          const res = await post(body);
          assert.equal(res.status, 410);
          assert.match((await res.json()).detail, /removed by retention/);
        }
        assert.equal((await summaryCalls(id)).length, before, "no model call was made or logged");
      });

      await t.step("handler() answers 404 for a session the caller cannot see and 409 before stage 5", async () => {
        offline();
        const id = await completedSession();
        let res = await post({ session_id: id }, await userToken(BOB));
        assert.equal(res.status, 404);
        await res.body?.cancel();
        res = await post({ session_id: "b0b00000-5e55-4000-8000-000000000002" }, await userToken(BOB));
        assert.equal(res.status, 409);
        await res.body?.cancel();
        res = await post({ session_id: "not-a-uuid" });
        assert.equal(res.status, 422);
        await res.body?.cancel();
      });
    } finally {
      offline();
      await resetAliceLimit();
      await llm.close();
      await closeDb();
      await admin.end();
    }
  },
});

Deno.test("offlineSummary() fits the schema however long the stage answers are", () => {

  const long = (c: string) => c.repeat(4000);
  const list = (n: number) => Array.from({ length: n }, (_, i) => `${long("x").slice(0, 3990)} ${i}`);
  const session = {
    id: crypto.randomUUID(), user_id: crypto.randomUUID(), theme: null, session_type: "self_coaching",
    summary: null, summary_data: null, summary_model: null, summary_generated_at: null,
    stages: [
      { stage_number: 3, stage_name: "connect", completed_at: "x", responses: { options: ["o"], insights: list(12), challenges: ["c"], barriers: ["b"] } },
      { stage_number: 4, stage_name: "finish", completed_at: "x", responses: {
        goal_statement: long("g"), action_steps: list(15), obstacles: ["o"], contingency_plans: list(30),
        smart_criteria: { specific: "s", measurable: long("m"), achievable: "a", relevant: "r", time_bound: long("t") } } },
      { stage_number: 5, stage_name: "check_out", completed_at: "x", responses: {
        key_learnings: list(3), insights: list(3), session_value_rating: 5, clarity_level: 5 } },
    ],
  };
  const parsed = SessionSummary.safeParse(offlineSummary(session));
  assert.ok(parsed.success, parsed.success ? "" : JSON.stringify(parsed.error.issues.slice(0, 3)));
});
