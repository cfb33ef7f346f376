/**
 * `assessments` (issue 10; seed SPR-003: the finalize route's persistAssessmentSummary and
 * "latest summary by sessionId"):
 *
 * - POST persists one assessment summary through public.persist_assessment_summary, for the
 *   service role and `coach_ingest` tokens (the AI backend's callback). Idempotent by the
 *   Idempotency-Key header or request_id (one of them is required): 201 with the stored row,
 *   200 with the same row on a replay (Idempotent-Replayed: true), 422 for a key reused with
 *   another payload, 409 when the session already has a summary for that group and rubric
 *   version. A tracked skill id (X-Tracked-Skill-Id or tracked_skill_id) is stored only as its
 *   HMAC (_shared/tracked_skill.ts). Rate limited (policy "assessments").
 * - GET lists summaries of one session (session_id) or one group (group_id), newest first,
 *   through public.list_assessments: limit 1..200 (default 50), before (keyset, answered as
 *   next_before); latest=true gives the session's newest only (get_latest_assessment). The
 *   owner reads their own, an assigned coach their clients' (audited), the service role all;
 *   ingest tokens none (403).
 */
import { z } from "zod";
import { allowMethods, HttpError, json, type RequestContext, respond } from "../_shared/http.ts";
import { authenticate, type Claims } from "../_shared/auth.ts";
import { type JSONValue, withUser } from "../_shared/db.ts";
import { IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE, idempotencyKeyOf, invalidFields, parseOrThrow, queryOf, readJson } from "../_shared/validate.ts";
import { MAX_TRACKED_SKILL_ID, noteTrackedSkillHeader, requestTrackedSkillHash } from "../_shared/tracked_skill.ts";
import { rateLimitFor } from "../_shared/rate_limit.ts";

/** Largest accepted body, in bytes. */
export const MAX_BODY_BYTES = 32 * 1024;

const SERVICE_ROLES = new Set(["service_role", "coach_ingest"]);
const score = z.number().min(0).max(5);
const note = z.string().regex(/^\P{Cc}*$/u, "No control characters").trim().min(1).max(500);

/** The POST body: strict, so unknown fields are refused. Ranges as assessments' constraints. */
export const AssessmentBody = z.strictObject({
  request_id: z.string().regex(IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE).optional(),
  session_id: z.uuid(),
  group_id: z.uuid().optional(),
  rubric_version: z.int().min(1).max(1000).default(1),
  overall_score: score,
  criteria: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, "Use lowercase identifiers of at most 40 characters"), score)
    .refine((c) => Object.keys(c).length >= 1 && Object.keys(c).length <= 20, "Give 1 to 20 criteria"),
  strengths: z.array(note).max(10).default([]),
  improvements: z.array(note).max(10).default([]),
  model: z.string().min(1).max(200).optional(),
  tracked_skill_id: z.string().min(1).max(MAX_TRACKED_SKILL_ID).optional(),
  created_at: z.iso.datetime({ offset: true }).optional(),
});

/** The GET query string: strict, so unknown parameters are refused. */
export const AssessmentQuery = z.strictObject({
  session_id: z.uuid().optional(),
  group_id: z.uuid().optional(),
  latest: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.uuid().optional(),
}).superRefine((q, ctx) => {
  if ((q.session_id === undefined) === (q.group_id === undefined)) {
    ctx.addIssue({ code: "custom", path: ["session_id"], message: "Give exactly one of session_id and group_id" });
  }
  if (q.latest && q.session_id === undefined) {
    ctx.addIssue({ code: "custom", path: ["latest"], message: "latest=true needs session_id" });
  }
});

/** Handles /functions/v1/assessments. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "GET", "POST");
    const claims = await authenticate(req);
    if (!SERVICE_ROLES.has(claims.role) && !(claims.role === "authenticated" && claims.sub)) {
      throw new HttpError(403, "Forbidden", "Only a signed-in user, the service role or an ingest token can use assessments.");
    }
    if (req.method === "GET") {
      if (claims.role === "coach_ingest") {
        throw new HttpError(403, "Forbidden", "An ingest token writes assessments; read them as the user, their coach or with the service role.");
      }
      return await list(req, claims, ctx);
    }
    if (!SERVICE_ROLES.has(claims.role)) {
      throw new HttpError(403, "Forbidden", "Assessments are written by the service role or an ingest token (the scoring callback).");
    }
    return await post(req, claims, ctx);
  });
}

async function post(req: Request, claims: Claims, ctx: RequestContext): Promise<Response> {
  await noteTrackedSkillHeader(req);
    const raw = await readJson(req, MAX_BODY_BYTES);
  const { body, key, trackedSkillHash } = await ctx.timing.measure("validate", async () => {
    const body = parseOrThrow(AssessmentBody, raw);
    const errors: { field: string; message: string }[] = [];
    const key = idempotencyKeyOf(req, body.request_id, errors);
    if (key === undefined && !errors.length) {
      errors.push({ field: "request_id", message: "Required (or the Idempotency-Key header): a retry must not score twice" });
    }
    if (errors.length) throw invalidFields(errors);
    return { body, key: key!, trackedSkillHash: await requestTrackedSkillHash(req, body.tracked_skill_id) };
  });
  const rows = await ctx.timing.measure("db", () =>
    withUser(claims, (tx) => tx`
      select to_json(r.assessment) as assessment, r.replayed
      from public.persist_assessment_summary(
        request_id => ${key},
        session_id => ${body.session_id}::uuid,
        overall_score => ${body.overall_score}::numeric,
        criteria => ${tx.json(body.criteria as { [k: string]: JSONValue })}::jsonb,
        rubric_version => ${body.rubric_version}::integer,
        group_id => ${body.group_id ?? null}::uuid,
        strengths => ${body.strengths}::text[],
        improvements => ${body.improvements}::text[],
        model => ${body.model ?? null},
        tracked_skill_id_hash => ${trackedSkillHash},
        created_at => ${body.created_at ?? null}::timestamptz
      ) r`, { traceId: ctx.traceId, rateLimit: rateLimitFor("assessments", ctx) })
  );
  const { assessment, replayed } = rows[0] as { assessment: Record<string, unknown>; replayed: boolean };
  return json(assessment, replayed ? 200 : 201, replayed ? { "Idempotent-Replayed": "true" } : {});
}

async function list(req: Request, claims: Claims, ctx: RequestContext): Promise<Response> {
  const q = await ctx.timing.measure("validate", () => {
    return parseOrThrow(AssessmentQuery, queryOf(req), "query string");
  });
  const items = await ctx.timing.measure("db", () =>
    withUser(claims, async (tx) => {
      const rows = q.latest
        ? await tx`select to_json(a) as a from public.get_latest_assessment(${q.session_id!}::uuid) a`
        : await tx`select to_json(a) as a from public.list_assessments(
            session_id => ${q.session_id ?? null}::uuid, group_id => ${q.group_id ?? null}::uuid,
            "limit" => ${q.limit}::integer, before => ${q.before ?? null}::uuid) a`;
      return rows.map((r) => r.a as Record<string, unknown>);
    }, { traceId: ctx.traceId })
  );
  if (q.latest) return json({ assessment: items[0] ?? null });
  return json({ assessments: items, next_before: items.length === q.limit ? items[items.length - 1].id : null });
}
