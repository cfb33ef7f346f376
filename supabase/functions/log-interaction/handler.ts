/**
 * `log-interaction` (POST): logs one coach interaction through public.log_coach_interaction.
 * Callers: a user (their own messages, no user_id), their assigned coach (user_id = the
 * client, sender human_coach), the service role or a `coach_ingest` token (user_id required). Idempotent by the Idempotency-Key header or the request_id field:
 * 201 with the stored row on the first write, 200 with the same row on a replay, 409 while
 * the same key is in flight, 422 for a key reused with another payload. A raw tracked skill
 * id (body `tracked_skill_id` or header X-Tracked-Skill-Id) is turned into its keyed hash
 * here (_shared/tracked_skill.ts) and never stored or logged. Rate limited per user or per token (policy "log-interaction":
 * RateLimit headers on every response that got past validation, 429 with Retry-After).
 * `POST /functions/v1/log-interaction/batch` logs up to 500 at once (batch.ts).
 */
import { z } from "zod";
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate } from "../_shared/auth.ts";
import { type JSONValue, withUser } from "../_shared/db.ts";
import { IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE, idempotencyKeyOf, invalidFields, parseOrThrow, readJson, writerFieldErrors } from "../_shared/validate.ts";
import { MAX_TRACKED_SKILL_ID, noteTrackedSkillHeader, requestTrackedSkillHash } from "../_shared/tracked_skill.ts";
import { rateLimitFor } from "../_shared/rate_limit.ts";
import { batchHandler } from "./batch.ts";

/** Largest accepted body, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

type JsonObject = { [key: string]: JSONValue };
const SERVICE_ROLES = new Set(["service_role", "coach_ingest"]);
const count = z.int().nonnegative().max(100_000_000);

/** The request body: strict, so unknown fields are refused. */
export const LogInteractionBody = z.strictObject({
  request_id: z.string().regex(IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE).optional(),
  user_id: z.uuid().optional(),
  sender: z.enum(["user", "ai_coach", "human_coach", "system"]),
  channel: z.enum(["chat", "jitai", "voice", "email", "dashboard", "api"]).optional(),
  session_id: z.uuid().optional(),
  conversation_id: z.uuid().optional(),
  coach_persona: z.string().min(1).max(100).optional(),
  content: z.looseObject({ text: z.string() }),
  metadata: z.record(z.string(), z.unknown()).optional(),
  model: z.string().min(1).max(200).optional(),
  latency_ms: count.optional(),
  prompt_tokens: count.optional(),
  completion_tokens: count.optional(),
  cached_tokens: count.optional(),
  cost_usd: z.number().nonnegative().max(1_000_000).optional(),
  sentiment: z.number().min(-1).max(1).optional(),
  momentum_state: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, "Use a lowercase identifier such as rising").optional(),
  status: z.enum(["ok", "error"]).optional(),
  error_code: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).optional(),
  tracked_skill_id: z.string().min(1).max(MAX_TRACKED_SKILL_ID).optional(),
  created_at: z.iso.datetime({ offset: true }).optional(),
}).superRefine((b, ctx) => {
  if (b.cached_tokens !== undefined && (b.prompt_tokens === undefined || b.cached_tokens > b.prompt_tokens)) {
    ctx.addIssue({ code: "custom", path: ["cached_tokens"], message: "Cannot exceed prompt_tokens" });
  }
  if ((b.status === "error") !== (b.error_code !== undefined)) {
    ctx.addIssue({ code: "custom", path: ["error_code"], message: "Required exactly when status is error" });
  }
});

/**
 * The caller of a POST that logs interactions (single or batch): a signed-in user, the
 * service role or an ingest token (`service`), else 403.
 */
export async function writer(req: Request): Promise<{ claims: Awaited<ReturnType<typeof authenticate>>; service: boolean }> {
  allowMethods(req, "POST");
  const claims = await authenticate(req);
  const service = SERVICE_ROLES.has(claims.role);
  if (!service && !(claims.role === "authenticated" && claims.sub)) {
    throw new HttpError(403, "Forbidden", "Only a signed-in user, the service role or an ingest token can log interactions.");
  }
  return { claims, service };
}

/** Handles POST /functions/v1/log-interaction, and POST /functions/v1/log-interaction/batch (batch.ts). */
export function handler(req: Request): Promise<Response> {
  if (/\/log-interaction\/batch\/?$/.test(new URL(req.url).pathname)) return batchHandler(req);
  return respond(req, async (ctx) => {
    const { claims, service } = await writer(req);
    await noteTrackedSkillHeader(req);
    const raw = await readJson(req, MAX_BODY_BYTES);
    const { body, trackedSkillHash } = await ctx.timing.measure("validate", async () => {
      const body = parseOrThrow(LogInteractionBody, raw);
      const errors = writerFieldErrors(body, service);
      const key = idempotencyKeyOf(req, body.request_id, errors);
      if (errors.length) throw invalidFields(errors);
      body.request_id = key;
      return { body, trackedSkillHash: await requestTrackedSkillHash(req, body.tracked_skill_id) };
    });

    const rows = await ctx.timing.measure("db", () =>
      withUser(claims, (tx) => tx`
        select to_json(r.interaction) as interaction, r.replayed
        from public.log_coach_interaction(
          sender => ${body.sender},
          content => ${tx.json(body.content as JsonObject)}::jsonb,
          request_id => ${body.request_id ?? null},
          user_id => ${body.user_id ?? null}::uuid,
          channel => ${body.channel ?? null},
          session_id => ${body.session_id ?? null}::uuid,
          conversation_id => ${body.conversation_id ?? null}::uuid,
          coach_persona => ${body.coach_persona ?? null},
          metadata => ${tx.json((body.metadata ?? {}) as JsonObject)}::jsonb,
          model => ${body.model ?? null},
          latency_ms => ${body.latency_ms ?? null}::integer,
          prompt_tokens => ${body.prompt_tokens ?? null}::integer,
          completion_tokens => ${body.completion_tokens ?? null}::integer,
          cached_tokens => ${body.cached_tokens ?? null}::integer,
          cost_usd => ${body.cost_usd ?? null}::numeric,
          sentiment => ${body.sentiment ?? null}::real,
          momentum_state => ${body.momentum_state ?? null},
          status => ${body.status ?? null},
          error_code => ${body.error_code ?? null},
          tracked_skill_id_hash => ${trackedSkillHash},
          created_at => ${body.created_at ?? null}::timestamptz
        ) r`, { traceId: ctx.traceId, rateLimit: rateLimitFor("log-interaction", ctx) })
    );
    const { interaction, replayed } = rows[0] as { interaction: Record<string, unknown>; replayed: boolean };
    return json(interaction, replayed ? 200 : 201, replayed ? { "Idempotent-Replayed": "true" } : {});
  });
}
