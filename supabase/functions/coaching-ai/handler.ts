/**
 * `coaching-ai`: the AI coaching endpoints for organisations (issue 11; seed 003 phases 2-4),
 * one function routed by path: POST /functions/v1/coaching-ai/<group>/<name> for the eleven
 * routes of routes.ts, and GET /functions/v1/coaching-ai/openapi.json for their OpenAPI 3.1
 * document.
 *
 * A request names ids (tenant, goal, actions, issue), never the data. The function
 *  1. reads the tenant's context as the caller (public.get_tenant_context: RLS decides), so a
 *     tenant, goal, action or issue the caller cannot see is 404, never 403 (ids do not leak);
 *     a coach reads a tenant's data but does not spend its budget (403);
 *  2. takes one call from the caller's "coaching-ai" rate limit (429 with Retry-After);
 *  3. reads the route's production prompt (prompt_templates) and the tenant's spend this
 *     month (sent together with 2): over the monthly budget → 402 and no model call;
 *  4. asks the model (_shared/llm.ts) for JSON matching the route's result schema; a timeout
 *     is 504, an answer that is not JSON, breaks the schema or names ids it was not given is
 *     502 (one retry on 429/5xx is the provider's);
 *  5. logs the call, failed ones too (a malformed answer with the tokens it cost), as a
 *     coach_interactions row (ai_coach, channel api, metadata.operation = the route, the
 *     prompt's name and version, the tenant; its content names the route and the tenant,
 *     never the answer) and a tenant_ai_calls row (its cost counts towards the budget), and
 *     answers.
 * Without OPENAI_API_KEY the offline provider answers every route from the data alone, with
 * model "offline" and no cost. analysis/operations is deprecated: it answers with
 * Deprecation, Sunset and Link headers (RFC 9745, RFC 8594) naming its successors.
 */
import { z } from "zod";
import { allowMethods, HttpError, json, type RequestContext, respond } from "../_shared/http.ts";
import { authenticate, type Claims, isUser } from "../_shared/auth.ts";
import { callerOf, type JSONValue, withServiceRole, withUser } from "../_shared/db.ts";
import { createProvider, LlmError, llmHttpError, type LlmResult, type SamplingParameters } from "../_shared/llm.ts";
import { noteLog } from "../_shared/log.ts";
import { enforceRateLimit } from "../_shared/rate_limit.ts";
import { parseOrThrow, readJson } from "../_shared/validate.ts";
import type { TenantContext } from "./context.ts";
import { type Route, routeOf, ROUTES } from "./routes.ts";
import { openApiDocument } from "./openapi.ts";

/** Largest request body: a tenant id, a goal or issue id, or up to 50 action ids. */
const MAX_BODY_BYTES = 8192;

/** The response of every route: the model's result and how it was obtained. */
export function responseSchema(route: Route) {
  return z.strictObject({
    route: z.literal(route.name),
    tenant_id: z.uuid(),
    result: route.result,
    model: z.string().describe('The model that answered; "offline" for the offline provider.'),
    prompt: z.strictObject({ name: z.string(), version: z.int() }),
    usage: z.strictObject({ prompt_tokens: z.int().nullable(), completion_tokens: z.int().nullable(), cached_tokens: z.int().nullable() }),
    cost_usd: z.number().nullable().describe("What the call cost (model_prices); null when unpriced or offline."),
    interaction_id: z.uuid().describe("The coach_interactions row that logs the call."),
  });
}

interface Prompt {
  version: number;
  system_template: string;
  user_template: string;
  model: string | null;
  parameters: SamplingParameters;
}
interface Spend {
  budget_usd: string;
  spent_usd: string;
  month_start: Date;
}

/** A template with its {{placeholders}} filled; an unknown placeholder becomes empty. */
export function render(template: string, vars: Record<string, string>): string {
  return template.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (_, name: string) => vars[name] ?? "");
}

/** The headers of a deprecated route: when it was deprecated, when it goes, and what replaces it. */
export function deprecationHeaders(route: Route): Record<string, string> {
  if (!route.deprecated) return {};
  const d = route.deprecated;
  return {
    Deprecation: `@${Math.floor(Date.parse(d.since) / 1000)}`,
    Sunset: new Date(d.sunset).toUTCString(),
    Link: d.successors.map((s) => `</functions/v1/coaching-ai/${s}>; rel="successor-version"`).join(", "),
  };
}

function prices(spend: Spend) {
  return { budget: Number(spend.budget_usd), spent: Number(spend.spent_usd) };
}

/** Handles /functions/v1/coaching-ai/... */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    const path = new URL(req.url).pathname.replace(/^.*?\/coaching-ai\/?/, "").replace(/\/+$/, "");
    if (path === "openapi.json") {
      allowMethods(req, "GET", "HEAD");
      return json(openApiDocument(), 200, { "Cache-Control": "public, max-age=300" });
    }
    allowMethods(req, "POST");
    const route = routeOf(path);
    if (route) Object.assign(ctx.headers, deprecationHeaders(route));
    const claims = await authenticate(req);
    if (!route) {
      throw new HttpError(404, "Not Found", `No route ${path || "(none)"}; the routes are ${ROUTES.map((r) => r.name).join(", ")}.`);
    }
    if (!(claims.role === "service_role" || isUser(claims))) {
      throw new HttpError(403, "Forbidden", "Only a signed-in member of the tenant or the service role can call the AI coaching endpoints.");
    }
    const body = parseOrThrow(route.request, await readJson(req, MAX_BODY_BYTES)) as { tenant_id: string };
    return await answer(req, ctx, claims, route, body);
  });
}

async function answer(req: Request, ctx: RequestContext, claims: Claims, route: Route, body: { tenant_id: string }): Promise<Response> {
  // The ids the request names are read whatever the context's limits (RLS still decides).
  const named = body as { goal_id?: string; issue_id?: string; action_ids?: string[] };
  const [{ context }] = await ctx.timing.measure("db", () =>
    withUser(claims, (tx) => tx`select public.get_tenant_context(${body.tenant_id}::uuid,
      goal_ids => ${named.goal_id ? [named.goal_id] : null}::uuid[], action_ids => ${named.action_ids ?? null}::uuid[],
      issue_ids => ${named.issue_id ? [named.issue_id] : null}::uuid[]) as context`));
  const tenant = context as TenantContext | null;
  if (!tenant) throw new HttpError(404, "Not Found", "No tenant with this tenant_id is visible to you.");
  if (tenant.role === "coach") {
    throw new HttpError(403, "Forbidden", "A coach reads the tenant's data; its owners, admins and members make AI coaching calls (they spend its budget).");
  }
  const prepared = route.prepare(tenant, body);
  const userId = isUser(claims) ? claims.sub : tenant.owner_id;
  if (!userId) throw new HttpError(409, "Conflict", "The tenant has no owner to log the call for.");

  const caller = callerOf(claims);
  // The rate-limit take and the prompt and budget read go out together (one round trip less);
  // a refused take wins, and the read is simply not used.
  const read = ctx.timing.measure("db", () =>
    withServiceRole(async (tx) => {
      const [p] = await tx<Prompt[]>`select version, system_template, user_template, model, parameters from public.prompt_templates
                                     where name = ${route.name} and label = 'production'`;
      const [s] = await tx<Spend[]>`select budget_usd::text, spent_usd::text, month_start from private.tenant_ai_spend(${body.tenant_id}::uuid)`;
      return [p, s] as const;
    }, { traceId: ctx.traceId, caller }));
  read.catch(() => {}); // awaited below; this only keeps a failure after a refused take from going unhandled
  await enforceRateLimit("coaching-ai", claims, ctx);
  const [prompt, spend] = await read;
  if (!prompt) {
    throw new HttpError(503, "Service Unavailable", `No prompt version of ${route.name} is labelled production; an operator sets one (set_prompt_label).`);
  }
  const { budget, spent } = prices(spend);
  if (spent >= budget) {
    const resets = new Date(spend.month_start);
    resets.setUTCMonth(resets.getUTCMonth() + 1);
    throw new HttpError(402, "Payment Required",
      `The tenant's AI budget of ${budget.toFixed(2)} USD for this month is spent (${spent.toFixed(4)} USD); no model was called. It resets on ${resets.toISOString().slice(0, 10)}.`, {
        extensions: { budget_usd: budget, spent_usd: spent, resets_at: resets.toISOString() },
      });
  }

  const provider = createProvider();
  // The log names the route and the tenant, never the answer: coach_interactions rows are
  // read by the user's personal coach and broadcast on the user's topic, who need not be
  // members of the tenant.
  const log = (r: { model: string; latencyMs: number; text: string; usage?: LlmResult<unknown>["usage"]; errorCode?: string }) =>
    withServiceRole(async (tx) => {
      const content: Record<string, JSONValue> = { text: r.text };
      const [row] = await tx<{ interaction_id: string; cost_usd: string | null }[]>`
        with logged as (
          select (public.log_coach_interaction(
            sender => 'ai_coach', user_id => ${userId}::uuid, channel => 'api', content => ${tx.json(content)}::jsonb,
            metadata => ${tx.json({ operation: route.name, tenant_id: body.tenant_id, prompt_name: route.name, prompt_version: prompt.version })}::jsonb,
            request_id => ${`coaching-ai:${crypto.randomUUID()}`}, model => ${r.model}, latency_ms => ${r.latencyMs}::integer,
            prompt_tokens => ${r.usage?.promptTokens ?? null}::integer, completion_tokens => ${r.usage?.completionTokens ?? null}::integer,
            cached_tokens => ${r.usage?.cachedTokens ?? null}::integer,
            status => ${r.errorCode ? "error" : "ok"}, error_code => ${r.errorCode ?? null})).interaction as i
        )
        insert into public.tenant_ai_calls (tenant_id, interaction_id, route, prompt_version, model, status, cost_usd)
        select ${body.tenant_id}::uuid, (l.i).id, ${route.name}, ${prompt.version}::integer, ${r.model},
               ${r.errorCode ? "error" : "ok"}, coalesce((l.i).cost_usd, 0)
        from logged l
        returning interaction_id, (select (l.i).cost_usd::text from logged l) as cost_usd`;
      return row;
    }, { traceId: ctx.traceId, caller });

  let result: LlmResult<unknown>;
  try {
    result = await ctx.timing.measure("llm", async () => {
      const r = await provider.completeJson({
        system: render(prompt.system_template, prepared.vars), user: render(prompt.user_template, prepared.vars),
        schemaName: route.name.replace(/[^a-z0-9]+/g, "_"), schema: route.result, fallback: prepared.offline,
        model: prompt.model, parameters: prompt.parameters,
      }, { signal: req.signal });
      const problem = prepared.check?.(r.data);
      if (problem) throw new LlmError("malformed", `The language model's answer ${problem}.`, r.model, r.latencyMs, r.usage);
      return r;
    });
  } catch (err) {
    if (!(err instanceof LlmError)) throw err;
    noteLog(req, {
      provider: provider.name, model: err.model, llm_latency_ms: err.latencyMs, prompt_tokens: err.usage?.promptTokens,
      completion_tokens: err.usage?.completionTokens, cached_tokens: err.usage?.cachedTokens,
    });
    await log({ model: err.model, latencyMs: err.latencyMs, usage: err.usage, text: err.message, errorCode: `llm_${err.kind}` });
    throw llmHttpError(err);
  }
  noteLog(req, {
    provider: provider.name, model: result.model, prompt_tokens: result.usage.promptTokens,
    completion_tokens: result.usage.completionTokens, cached_tokens: result.usage.cachedTokens, llm_latency_ms: result.latencyMs,
  });
  const logged = await ctx.timing.measure("db", () =>
    log({ model: result.model, latencyMs: result.latencyMs, usage: result.usage, text: `${route.name} for tenant ${body.tenant_id}` }));
  const cost = logged.cost_usd === null ? null : Number(logged.cost_usd);
  noteLog(req, { cost_usd: cost });
  const response = responseSchema(route).parse({
    route: route.name, tenant_id: body.tenant_id, result: result.data, model: result.model,
    prompt: { name: route.name, version: prompt.version },
    usage: { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.completionTokens, cached_tokens: result.usage.cachedTokens },
    cost_usd: cost, interaction_id: logged.interaction_id,
  });
  return json(response);
}
