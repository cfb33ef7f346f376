/**
 * coaching-ai against the test run's database and a local OpenAI-compatible test server
 * that this test starts: every route's request shape, good answer, malformed answers,
 * timeout, 429 then success and exceeded budget; access; the offline provider; prompt
 * versions; the deprecated route's headers; the OpenAPI document.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { deprecationHeaders, handler, render, responseSchema } from "./handler.ts";
import { ROUTES } from "./routes.ts";
import { openApiDocument, responseExample } from "./openapi.ts";
import type { TenantContext } from "./context.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, CAROL, request, token, userToken } from "../_shared/testing/fixtures.ts";
import { startLlmTestServer, useLlm as useLlmEnv, useOffline } from "../_shared/testing/llm_server.ts";

const admin = adminSql();
const llm = startLlmTestServer();
const TENANT = "7e4a0000-0000-4000-8000-000000000001";

const useLlm = (timeoutMs?: number) => useLlmEnv(llm, timeoutMs);
const offline = useOffline;

/** The seed tenant's context as Alice reads it. */
async function aliceContext(): Promise<TenantContext> {
  return await admin.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${JSON.stringify({ sub: ALICE, role: "authenticated" })}, true)`;
    const [{ context }] = await tx`select public.get_tenant_context(${TENANT}::uuid) as context`;
    return context as TenantContext;
  });
}

/** Forgets the calls this test took from the coaching-ai limits and this month's spend. */
async function resetLimitsAndSpend(): Promise<void> {
  await admin`delete from private.rate_limit_counters where endpoint = 'coaching-ai'`;
  await admin`delete from public.tenant_ai_calls where tenant_id = ${TENANT}`;
  await admin`update public.tenants set monthly_ai_budget_usd = 25 where id = ${TENANT}`;
}

async function lastCall() {
  const [row] = await admin`
    select c.route, c.prompt_version, c.model, c.status, c.cost_usd::float8 as cost_usd, i.channel, i.sender, i.user_id,
           i.metadata, i.error_code, i.prompt_tokens, i.completion_tokens, i.content
    from public.tenant_ai_calls c join public.coach_interactions i on i.id = c.interaction_id
    where c.tenant_id = ${TENANT} order by c.created_at desc limit 1`;
  return row;
}

async function callCount(): Promise<number> {
  const [{ n }] = await admin`select count(*)::int as n from public.tenant_ai_calls where tenant_id = ${TENANT}`;
  return n;
}

Deno.test({
  name: "coaching-ai handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const context = await aliceContext();
    const post = (name: string, body: unknown, bearer = alice) => handler(request(`/coaching-ai/${name}`, { bearer, body }));
    await resetLimitsAndSpend();
    try {
      for (const route of ROUTES) {
        await t.step(`${route.name}: sends the model, the prompt and the result's JSON schema; a good answer is returned and logged`, async () => {
          useLlm();
          const good = route.prepare(context, route.example).offline();
          llm.script.push({ content: JSON.stringify(good), usage: { prompt_tokens: 1000, completion_tokens: 200 } });
          const res = await post(route.name, route.example);
          assert.equal(res.status, 200, await res.clone().text());
          const sent = llm.requests.at(-1) as {
            model: string; temperature: number; messages: { role: string; content: string }[];
            response_format: { type: string; json_schema: { name: string; strict: boolean; schema: unknown } };
          };
          assert.equal(sent.model, "gpt-4o-mini");
          assert.equal(sent.temperature, 0.2, "the prompt version's parameters");
          assert.deepEqual(sent.messages.map((m) => m.role), ["system", "user"]);
          assert.ok(!sent.messages[1].content.includes("{{"), "every placeholder is filled");
          assert.match(sent.messages[1].content, /7e4a0000-/, "the tenant's data is in the prompt");
          assert.equal(sent.response_format.type, "json_schema");
          assert.equal(sent.response_format.json_schema.strict, true);
          assert.deepEqual(sent.response_format.json_schema.schema, z.toJSONSchema(route.result));
          const body = await res.json();
          responseSchema(route).parse(body);
          assert.deepEqual(body.result, JSON.parse(JSON.stringify(good)));
          assert.deepEqual([body.model, body.prompt, body.cost_usd], ["gpt-4o-mini", { name: route.name, version: 1 }, (1000 * 0.15 + 200 * 0.6) / 1e6]);
          const call = await lastCall();
          assert.deepEqual(
            [call.route, call.prompt_version, call.model, call.status, call.channel, call.sender, call.user_id, call.metadata.operation, call.metadata.prompt_version, call.metadata.tenant_id],
            [route.name, 1, "gpt-4o-mini", "ok", "api", "ai_coach", ALICE, route.name, 1, TENANT]);
          assert.equal(call.cost_usd, body.cost_usd);
          assert.deepEqual(call.content, { text: `${route.name} for tenant ${TENANT}` }, "the log names the route, not the answer");
          assert.equal(res.headers.has("deprecation"), !!route.deprecated);
          if (route.name === "operations/scheduling-suggestions") assert.match(sent.messages[1].content, /Hours per assignee per week: 20\n/);
        });

        await t.step(`${route.name}: an answer that is not JSON or breaks the schema is 502, logged as an error`, async () => {
          useLlm();
          for (const content of ["not json", JSON.stringify({ unexpected: true })]) {
            llm.script.push({ content });
            const res = await post(route.name, route.example);
            assert.equal(res.status, 502);
            assert.match((await res.json()).detail, /not JSON|does not match the schema/);
            const call = await lastCall();
            assert.deepEqual([call.status, call.error_code, call.route], ["error", "llm_malformed", route.name]);
            // The unusable answer was paid for: its tokens and cost count towards the budget.
            assert.deepEqual([call.prompt_tokens, call.completion_tokens, call.cost_usd], [1200, 300, (1200 * 0.15 + 300 * 0.6) / 1e6]);
          }
        });

        await t.step(`${route.name}: a model slower than LLM_TIMEOUT_MS is 504`, async () => {
          useLlm(300);
          llm.script.push({ content: "{}", delayMs: 800 });
          const res = await post(route.name, route.example);
          assert.equal(res.status, 504);
          assert.equal((await lastCall()).error_code, "llm_timeout");
          await new Promise((r) => setTimeout(r, 600)); // let the slow reply drain
        });

        await t.step(`${route.name}: a 429 or a 500 is retried once and the second answer stands`, async () => {
          useLlm();
          for (const status of [429, 500]) {
            const before = llm.requests.length;
            llm.script.push({ status, headers: { "retry-after-ms": "10" } }, { content: JSON.stringify(route.prepare(context, route.example).offline()) });
            const res = await post(route.name, route.example);
            assert.equal(res.status, 200);
            assert.equal(llm.requests.length - before, 2);
          }
        });

        await t.step(`${route.name}: over the monthly budget is 402 and no model call`, async () => {
          useLlm();
          await admin`update public.tenants set monthly_ai_budget_usd = 0 where id = ${TENANT}`;
          try {
            const [before, calls] = [llm.requests.length, await callCount()];
            const res = await post(route.name, route.example);
            assert.equal(res.status, 402);
            const body = await res.json();
            assert.equal(body.budget_usd, 0);
            assert.match(body.detail, /budget of 0\.00 USD/);
            assert.equal(llm.requests.length, before, "no model call");
            assert.equal(await callCount(), calls, "nothing logged");
          } finally {
            await admin`update public.tenants set monthly_ai_budget_usd = 25 where id = ${TENANT}`;
          }
        });
      }

      await t.step("spend counts: a budget smaller than this month's logged costs refuses the next call", async () => {
        useLlm();
        const [{ spent }] = await admin`select spent_usd::float8 as spent from private.tenant_ai_spend(${TENANT}::uuid)`;
        assert.ok(spent > 0);
        await admin`update public.tenants set monthly_ai_budget_usd = ${Math.floor(spent * 100) / 100} where id = ${TENANT}`;
        try {
          const res = await post("coaching/alignment-check", ROUTES[0].example);
          assert.equal(res.status, 402);
        } finally {
          await admin`update public.tenants set monthly_ai_budget_usd = 25 where id = ${TENANT}`;
        }
      });

      await t.step("the offline provider answers every route from the data, model offline, no cost", async () => {
        offline();
        await resetLimitsAndSpend();
        for (const route of ROUTES) {
          const res = await post(route.name, route.example);
          assert.equal(res.status, 200, route.name);
          const body = await res.json();
          assert.deepEqual([body.model, body.cost_usd], ["offline", null]);
          assert.deepEqual(body.result, JSON.parse(JSON.stringify(route.prepare(context, route.example).offline())));
        }
        assert.equal(await callCount(), ROUTES.length);
      });

      await t.step("the offline answers stay valid when every suggestion exists already and an issue has a blank description", async () => {
        offline();
        const goal = "7e4a0000-60a1-4000-8000-000000000001";
        const [{ id: issue }] = await admin`insert into public.business_issues (tenant_id, title, description, impact)
                                            values (${TENANT}, 'Blank issue', '  ', 'high') returning id`;
        const strategies = await admin`insert into public.strategies (tenant_id, goal_id, title)
          select ${TENANT}, ${goal}, t from unnest(array['Aim at the ideal client', 'Lead with the value proposition', 'Go deeper in the niche', 'Quarterly milestones']) t
          returning id`;
        const kpis = await admin`insert into public.kpis (tenant_id, name, unit)
          select ${TENANT}, n, 'x' from unnest(array['Reach 120 active members', 'Monthly revenue', 'Monthly churn rate', 'Actions done for "Reach 120 active members"']) n
          returning id`;
        try {
          for (const [name, body] of [
            ["coaching/strategy-suggestions", { tenant_id: TENANT, goal_id: goal }],
            ["coaching/kpi-recommendations", { tenant_id: TENANT, goal_id: goal }],
            ["operations/root-cause-suggestions", { tenant_id: TENANT, issue_id: issue }],
            ["operations/action-suggestions", { tenant_id: TENANT, issue_id: issue }],
          ] as const) {
            const res = await post(name, body);
            assert.equal(res.status, 200, `${name}: ${await res.clone().text()}`);
          }
        } finally {
          await admin`delete from public.strategies where id = any(${strategies.map((r) => r.id)}::uuid[])`;
          await admin`delete from public.kpis where id = any(${kpis.map((r) => r.id)}::uuid[])`;
          await admin`delete from public.business_issues where id = ${issue}`;
        }
      });

      await t.step("a goal, action or issue the request names is found beyond the context's limits", async () => {
        offline();
        const goals = await admin`insert into public.goals (tenant_id, title, status)
                                  select ${TENANT}, 'Filler goal ' || k, 'active' from generate_series(1, 110) k returning id`;
        const actions = await admin`insert into public.actions (tenant_id, title)
                                    select ${TENANT}, 'Filler action ' || k from generate_series(1, 210) k returning id`;
        try {
          const old = await post("coaching/alignment-check", ROUTES[0].example);
          assert.equal(old.status, 200, await old.clone().text());
          const done = await post("operations/prioritization-suggestions", { tenant_id: TENANT, action_ids: ["7e4a0000-ac71-4000-8000-000000000005"] });
          assert.equal(done.status, 200, await done.clone().text());
        } finally {
          await admin`delete from public.goals where id = any(${goals.map((r) => r.id)}::uuid[])`;
          await admin`delete from public.actions where id = any(${actions.map((r) => r.id)}::uuid[])`;
        }
      });

      await t.step("access: a stranger, an unknown tenant, another tenant's goal → 404; a coach 403; anon and ingest 403", async () => {
        offline();
        const bob = await userToken(BOB);
        const res = await post("coaching/alignment-check", ROUTES[0].example, bob);
        assert.equal(res.status, 404);
        assert.match((await res.json()).detail, /No tenant/);
        assert.equal((await post("coaching/alignment-check", { tenant_id: crypto.randomUUID(), goal_id: crypto.randomUUID() })).status, 404);
        // Bob's own tenant cannot name Alice's goal.
        const [{ id }] = await admin`insert into public.tenants (name, created_by) values ('Bob test tenant', ${BOB}) returning id`;
        await admin`insert into public.tenant_members (tenant_id, user_id, role) values (${id}, ${BOB}, 'owner')`;
        try {
          const cross = await post("coaching/alignment-check", { tenant_id: id, goal_id: (ROUTES[0].example as { goal_id: string }).goal_id }, bob);
          assert.equal(cross.status, 404);
          assert.match((await cross.json()).detail, /No goal/);
          const actions = await post("operations/strategic-alignment", { tenant_id: id, action_ids: ["7e4a0000-ac71-4000-8000-000000000001"] }, bob);
          assert.equal(actions.status, 404);
        } finally {
          await admin`delete from public.tenants where id = ${id}`;
        }
        const carol = await post("coaching/alignment-check", ROUTES[0].example, await userToken(CAROL));
        assert.equal(carol.status, 403);
        assert.match((await carol.json()).detail, /coach reads/);
        assert.equal((await post("coaching/alignment-check", ROUTES[0].example, await token({ role: "anon" }))).status, 403);
        assert.equal((await post("coaching/alignment-check", ROUTES[0].example, await token({ role: "coach_ingest" }))).status, 403);
        assert.equal((await post("coaching/alignment-check", ROUTES[0].example, "")).status, 401);
      });

      await t.step("the service role calls for any tenant; the call is logged for the tenant's owner", async () => {
        offline();
        const res = await post("coaching/alignment-check", ROUTES[0].example, await token({ role: "service_role" }));
        assert.equal(res.status, 200);
        assert.equal((await lastCall()).user_id, ALICE);
      });

      await t.step("bad input: unknown fields, bad ids, unknown routes, other methods", async () => {
        offline();
        const res = await post("coaching/alignment-check", { tenant_id: "nope", goal_id: TENANT, extra: 1 });
        assert.equal(res.status, 422);
        assert.deepEqual((await res.json()).errors.map((e: { field: string }) => e.field).sort(), ["extra", "tenant_id"]);
        const many = await post("operations/prioritization-suggestions", { tenant_id: TENANT, action_ids: [] });
        assert.equal(many.status, 422);
        const hours = await post("operations/scheduling-suggestions", { tenant_id: TENANT, hours_per_week: 0 });
        assert.deepEqual((await hours.json()).errors.map((e: { field: string }) => e.field), ["hours_per_week"]);
        const swot = await post("analysis/operations", { tenant_id: TENANT, analysis_type: "root_cause" });
        assert.equal(swot.status, 422);
        assert.match((await swot.json()).errors[0].message, /root-cause-suggestions/);
        assert.equal((await post("coaching/nothing", {})).status, 404);
        const get = await handler(request("/coaching-ai/coaching/alignment-check", { bearer: alice }));
        assert.equal(get.status, 405);
        assert.equal(get.headers.get("allow"), "POST, OPTIONS");
        const text = await handler(request("/coaching-ai/coaching/alignment-check", { bearer: alice, rawBody: "{" }));
        assert.equal(text.status, 400);
      });

      await t.step("a model answer naming actions it was not given is 502", async () => {
        useLlm();
        const route = ROUTES.find((r) => r.name === "operations/strategic-alignment")!;
        const good = route.prepare(context, route.example).offline() as { actions: { action_id: string }[] };
        good.actions[0].action_id = crypto.randomUUID();
        llm.script.push({ content: JSON.stringify(good) });
        const res = await post(route.name, route.example);
        assert.equal(res.status, 502);
        assert.match((await res.json()).detail, /names actions it was not given/);
      });

      await t.step("the production label decides the prompt version, and the log names it", async () => {
        useLlm();
        const [{ version }] = await admin`select (public.create_prompt_version('coaching/alignment-check', 'System v2 for {{goal}}',
                      'User v2: {{foundation}} {{nope}}', model => 'gpt-4o', parameters => '{"temperature": 0.7}', label => 'production')).version`;
        try {
          llm.script.push({ content: JSON.stringify(ROUTES[0].prepare(context, ROUTES[0].example).offline()) });
          const res = await post("coaching/alignment-check", ROUTES[0].example);
          assert.equal(res.status, 200);
          const sent = llm.requests.at(-1) as { model: string; temperature: number; messages: { content: string }[] };
          assert.deepEqual([sent.model, sent.temperature], ["gpt-4o", 0.7]);
          assert.match(sent.messages[0].content, /^System v2 for \{\n/);
          assert.match(sent.messages[1].content, /^User v2: \{/);
          assert.ok(sent.messages[1].content.endsWith(" "), "an unknown placeholder renders empty");
          assert.ok(version >= 2);
          assert.equal((await res.json()).prompt.version, version);
          assert.equal((await lastCall()).prompt_version, version);
        } finally {
          await admin`select public.set_prompt_label('coaching/alignment-check', 1, 'production')`;
        }
      });

      await t.step("analysis/operations says it is deprecated: Deprecation, Sunset and Link to its successors", async () => {
        offline();
        const res = await post("analysis/operations", { tenant_id: TENANT });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("deprecation"), "@1795478400");
        assert.equal(res.headers.get("sunset"), "Mon, 31 May 2027 00:00:00 GMT");
        assert.equal(res.headers.get("link"),
          '</functions/v1/coaching-ai/operations/root-cause-suggestions>; rel="successor-version", </functions/v1/coaching-ai/operations/action-suggestions>; rel="successor-version"');
        assert.deepEqual(deprecationHeaders(ROUTES[0]), {});
      });

      await t.step("openapi.json lists every route, and every example validates against its schema", async () => {
        const res = await handler(request("/coaching-ai/openapi.json", { bearer: alice }));
        assert.equal(res.status, 200);
        const doc = await res.json();
        assert.equal(doc.openapi, "3.1.0");
        assert.deepEqual(Object.keys(doc.paths).sort(), ROUTES.map((r) => `/${r.name}`).sort());
        for (const route of ROUTES) {
          const op = doc.paths[`/${route.name}`].post;
          assert.equal(op.deprecated ?? false, !!route.deprecated);
          route.request.parse(op.requestBody.content["application/json"].example);
          responseSchema(route).parse(op.responses["200"].content["application/json"].example);
          assert.deepEqual(op.responses["200"].content["application/json"].example, JSON.parse(JSON.stringify(responseExample(route))));
          assert.equal(op.requestBody.content["application/json"].schema.additionalProperties, false);
        }
        assert.deepEqual(openApiDocument(), doc);
      });

      await t.step("render() fills placeholders, with or without spaces, and empties unknown ones", () => {
        assert.equal(render("a {{x}} b {{ y }} c {{z}}", { x: "1", y: "2" }), "a 1 b 2 c ");
      });
    } finally {
      offline();
      await resetLimitsAndSpend();
      await llm.close();
      await admin.end();
      await closeDb();
    }
  },
});
