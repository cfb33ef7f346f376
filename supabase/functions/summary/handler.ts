/**
 * `summary` (POST {session_id, refresh?}): the AI summary of a completed coaching session.
 * 404 when the caller cannot see the session, 409 until stage 5 is complete. Returns the
 * summary cached on the session unless refresh is true; otherwise builds a prompt from all
 * stage responses, asks the LLM (_shared/llm.ts) for a structured summary, and in one
 * transaction caches it and creates or refreshes the action plans and milestones it
 * proposes. Every LLM call, failed ones included, is logged as a coach_interactions row
 * (ai_coach, channel api, metadata.operation = summary) with model, latency, tokens, cost.
 * A timeout answers 504; a malformed or schema-violating answer 502, and nothing is saved.
 *
 * Only the session's owner and the service role may spend on a generation: an assigned
 * coach reads sessions but does not spend, so a coach gets the cached summary, or 403 when
 * there is none or when asking for a refresh. Generations are rate limited (policy
 * "summary", per user or per token; 429 with Retry-After). Abandoning the request (the
 * client goes away) cancels the LLM call.
 */
import { z } from "zod";
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate, type Claims } from "../_shared/auth.ts";
import { callerOf, type JSONValue, type Tx, withServiceRole, withUser } from "../_shared/db.ts";
import { createProvider, LlmError, llmHttpError, type LlmResult } from "../_shared/llm.ts";
import { noteLog } from "../_shared/log.ts";
import { enforceRateLimit } from "../_shared/rate_limit.ts";
import { parseOrThrow, readJson } from "../_shared/validate.ts";
import { StageSchemas } from "../_shared/stages.ts";

/** The request body. */
export const SummaryRequest = z.strictObject({
  session_id: z.uuid(),
  refresh: z.boolean().optional(),
});

const day = z.iso.date().nullable();

/** The structured summary the LLM must return (strict JSON schema: every key required). */
export const SessionSummary = z.strictObject({
  // Bounded so that an answer always fits what the database stores (the summary's JSON and
  // markdown, plan descriptions up to 4,000 and goals up to 1,000 characters): a longer
  // answer is the model's fault, a 502, not a 422 for the client.
  executive_summary: z.string().min(1).max(4000),
  key_insights: z.array(z.string().min(1).max(500)).min(1).max(20),
  goal_statement: z.string().min(1).max(1000),
  action_plan: z.array(z.strictObject({
    title: z.string().min(1).max(200),
    description: z.string().max(2000),
    priority: z.int().min(1).max(5),
    due_date: day,
    milestones: z.array(z.strictObject({ title: z.string().min(1).max(200), due_date: day })).max(20),
  })).min(1).max(10),
  success_metrics: z.array(z.string().min(1).max(500)).max(20),
  support_and_accountability: z.array(z.string().min(1).max(500)).max(20),
});
export type SessionSummary = z.infer<typeof SessionSummary>;

interface Stage {
  stage_number: number;
  stage_name: string;
  responses: Record<string, unknown>;
  completed_at: string | null;
  /** Set when retention emptied the answers (issue 16). */
  content_removed_at?: string | null;
}
interface Session {
  id: string;
  user_id: string;
  theme: string | null;
  session_type: string;
  summary: string | null;
  summary_data: SessionSummary | null;
  summary_model: string | null;
  summary_generated_at: string | null;
  stages: Stage[];
}

const SYSTEM_PROMPT = `You are an experienced coach writing the summary of a coaching session that followed five stages:
check in, starting point, connect, finish, check out. Use only what the client said in the stage responses.
Write for the client, in the second person, plainly. Action plan items come from the finish stage's action steps,
each with a priority from 1 (highest) to 5 and a due date (YYYY-MM-DD) when the client named a time frame.`;

/** The user prompt: every stage's responses, in order. */
export function buildPrompt(session: Session): string {
  const lines = [`Session theme: ${session.theme ?? "not given"} (${session.session_type}).`, ""];
  for (const s of session.stages) {
    lines.push(`Stage ${s.stage_number} (${s.stage_name}):`, JSON.stringify(s.responses, null, 2), "");
  }
  return lines.join("\n");
}

/** The deterministic summary the offline provider returns: stages 4 and 5 restated. */
export function offlineSummary(session: Session): SessionSummary {
  const stage = (n: number) => session.stages.find((s) => s.stage_number === n)?.responses;
  // Completed stages passed the same rules in SQL; parsing gives them their types.
  const connect = StageSchemas[3].parse(stage(3));
  const finish = StageSchemas[4].parse(stage(4));
  const checkOut = StageSchemas[5].parse(stage(5));
  const learnings = checkOut.key_learnings;
  const insights = [...checkOut.insights, ...connect.insights].slice(0, 8);
  // Stage answers may be up to 4,000 characters; the summary's fields are shorter.
  const cut = (text: string, max: number) => text.length > max ? `${text.slice(0, max - 1)}…` : text;
  return {
    executive_summary: cut(`Your goal: ${finish.goal_statement}.${learnings.length ? ` What you learned: ${learnings.join("; ")}.` : ""}`, 4000),
    key_insights: (insights.length ? insights : [finish.goal_statement]).map((x) => cut(x, 500)),
    goal_statement: cut(finish.goal_statement, 1000),
    action_plan: (finish.action_steps.length ? finish.action_steps : [finish.goal_statement]).slice(0, 10).map((title, i) => ({
      title: cut(title, 200), description: "", priority: Math.min(i + 1, 5), due_date: null, milestones: [],
    })),
    success_metrics: [finish.smart_criteria.measurable, finish.smart_criteria.time_bound].map((x) => cut(x, 500)),
    support_and_accountability: finish.contingency_plans.slice(0, 20).map((x) => cut(x, 500)),
  };
}

/** The summary as markdown, for the session's summary column. */
export function renderMarkdown(s: SessionSummary): string {
  const list = (xs: string[]) => xs.map((x) => `- ${x}`).join("\n") || "- (none)";
  return [
    "## Executive summary", s.executive_summary, "",
    "## Key insights", list(s.key_insights), "",
    "## Goal", s.goal_statement, "",
    "## Action plan",
    s.action_plan.map((a) => `${a.priority}. **${a.title}**${a.due_date ? ` (by ${a.due_date})` : ""}${a.description ? `: ${a.description}` : ""}`).join("\n"), "",
    "## Success metrics", list(s.success_metrics), "",
    "## Support and accountability", list(s.support_and_accountability),
  ].join("\n");
}

function logCall(tx: Tx, session: Session, r: {
  model: string; latencyMs: number; text: string; usage?: LlmResult<unknown>["usage"]; errorCode?: string;
}) {
  return tx<{ cost_usd: number | null }[]>`select ((public.log_coach_interaction(
    sender => 'ai_coach', user_id => ${session.user_id}::uuid, session_id => ${session.id}::uuid, channel => 'api',
    content => ${tx.json({ text: r.text } as { [k: string]: JSONValue })}::jsonb,
    metadata => ${tx.json({ operation: "summary" })}::jsonb,
    request_id => ${`summary:${crypto.randomUUID()}`}, model => ${r.model}, latency_ms => ${r.latencyMs}::integer,
    prompt_tokens => ${r.usage?.promptTokens ?? null}::integer, completion_tokens => ${r.usage?.completionTokens ?? null}::integer,
    cached_tokens => ${r.usage?.cachedTokens ?? null}::integer,
    status => ${r.errorCode ? "error" : "ok"}, error_code => ${r.errorCode ?? null})).interaction).cost_usd::float8 as cost_usd`;
}

function cached(session: Session): Response {
  return json({
    session_id: session.id, summary: session.summary, summary_data: session.summary_data,
    model: session.summary_model, generated_at: session.summary_generated_at, cached: true,
  });
}

/** Handles POST /functions/v1/summary. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "POST");
    const claims: Claims = await authenticate(req);
    if (!(claims.role === "service_role" || (claims.role === "authenticated" && claims.sub))) {
      throw new HttpError(403, "Forbidden", "Only a signed-in user or the service role can request a summary.");
    }
    const body = parseOrThrow(SummaryRequest, await readJson(req, 4096));
    const [{ session }] = await ctx.timing.measure("db", () =>
      withUser(claims, (tx) => tx`select public.get_coaching_session(${body.session_id}::uuid) as session`));
    const s = session as Session | null;
    if (!s) throw new HttpError(404, "Not Found", "No coaching session with this id is visible to you.");
    if (!s.stages.some((st) => st.stage_number === 5 && st.completed_at)) {
      throw new HttpError(409, "Conflict", "The summary is generated once stage 5 (check out) is complete.");
    }
    // Retention emptied the answers (and the summary written from them): nothing is left to
    // summarise, and a new summary of empty answers would be a paid call for nothing.
    if ((body.refresh || !s.summary) && s.stages.some((st) => st.content_removed_at)) {
      throw new HttpError(410, "Gone", "The session's answers were removed by retention; its summary cannot be generated again.");
    }
    const spender = claims.role === "service_role" || s.user_id === claims.sub;
    if (!spender && (body.refresh || !s.summary)) {
      throw new HttpError(403, "Forbidden", body.refresh
        ? "Only the session's owner or the service role can refresh its summary; a coach reads the cached one."
        : "This session has no summary yet; only the session's owner or the service role can generate one.");
    }
    if (s.summary && !body.refresh) return cached(s);

    await enforceRateLimit("summary", claims, ctx);
    const provider = createProvider();
    const caller = callerOf(claims);
    let result: LlmResult<SessionSummary>;
    try {
      result = await ctx.timing.measure("llm", () => provider.completeJson({
        system: SYSTEM_PROMPT, user: buildPrompt(s), schemaName: "session_summary", schema: SessionSummary,
        fallback: () => offlineSummary(s),
      }, { signal: req.signal }));
    } catch (err) {
      if (!(err instanceof LlmError)) throw err;
      noteLog(req, {
      provider: provider.name, model: err.model, llm_latency_ms: err.latencyMs, prompt_tokens: err.usage?.promptTokens,
      completion_tokens: err.usage?.completionTokens, cached_tokens: err.usage?.cachedTokens,
    });
      await withServiceRole((tx) => logCall(tx, s, {
        model: err.model, latencyMs: err.latencyMs, usage: err.usage, text: err.message, errorCode: `llm_${err.kind}`,
      }), { caller });
      throw llmHttpError(err);
    }
    // On the log line whatever becomes of the save: the call was made and paid for.
    noteLog(req, {
      provider: provider.name, model: result.model, prompt_tokens: result.usage.promptTokens,
      completion_tokens: result.usage.completionTokens, cached_tokens: result.usage.cachedTokens,
      llm_latency_ms: result.latencyMs,
    });
    const markdown = renderMarkdown(result.data);
    const done = { model: result.model, latencyMs: result.latencyMs, usage: result.usage };
    let saved: Session;
    try {
      // The summary and the log of the call that wrote it commit together.
      saved = await ctx.timing.measure("db", () => withServiceRole(async (tx) => {
        const [row] = await tx`select to_json(s) as session from private.save_session_summary(
          ${s.id}::uuid, ${markdown}, ${tx.json(result.data as unknown as JSONValue)}::jsonb, ${result.model}) s`;
        const [{ cost_usd }] = await logCall(tx, s, { ...done, text: result.data.executive_summary });
        noteLog(req, { cost_usd });
        return row.session as Session;
      }, { traceId: ctx.traceId, caller }));
    } catch (err) {
      // The call was made and paid for: it is logged whatever became of the save (in a
      // transaction of its own; if the database is down, this fails too and the first
      // error stands). A summary the database refuses is the model's fault, not the
      // client's: 502, never 422.
      const refused = err instanceof HttpError && err.status === 422;
      await withServiceRole((tx) => logCall(tx, s, {
        ...done, text: err instanceof Error ? err.message : String(err), errorCode: refused ? "llm_unstorable" : "summary_not_saved",
      }), { traceId: ctx.traceId, caller }).catch(() => {});
      if (refused) throw new HttpError(502, "Bad Gateway", `The model's summary could not be stored: ${err.message}`);
      throw err;
    }
    return json({
      session_id: s.id, summary: saved.summary, summary_data: saved.summary_data, model: saved.summary_model,
      generated_at: saved.summary_generated_at, cached: false,
    });
  });
}
