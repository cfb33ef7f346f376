/**
 * `log-interaction/batch` (POST): logs up to 500 interactions in one request and one
 * transaction, through the set-based public.log_coach_interactions. Callers as on the single
 * route: the service role and `coach_ingest` tokens for any user (user_id required), a user
 * for their own messages, an assigned coach for their client. Each item is the single route's
 * body with its own `request_id` (required: it is what makes a retried batch safe).
 *
 * The answer is 200 with every item's outcome in order, so a bad item never blocks the good
 * ones: `created` (201 on the single route) or `replayed` (200) with the stored row, or
 * `refused` with the status the single route would have answered and a problem naming the
 * field. The whole request is refused only when it is not a batch (422), too large (413), or
 * over the rate limit, which a batch takes from once per item, all or none (429).
 */
import { z } from "zod";
import { type FieldError, HttpError, json, respond } from "../_shared/http.ts";
import { clientErrorStatus, type JSONValue, withUser } from "../_shared/db.ts";
import { fieldErrors, IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE, readJson, unstorable, writerFieldErrors } from "../_shared/validate.ts";
import { trackedSkillHash } from "../_shared/tracked_skill.ts";
import { rateLimitFor } from "../_shared/rate_limit.ts";
import { LogInteractionBody, writer } from "./handler.ts";

/** Most items in one batch. */
export const MAX_BATCH_ITEMS = 500;
/** Largest accepted batch body, in bytes (the local gateway's body limit too). */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** The batch: `items`, each validated on its own below. */
const BatchBody = z.strictObject({
  items: z.array(z.unknown()).min(1).max(MAX_BATCH_ITEMS),
});

/** A refused item's problem: the single route's status, the code, and the fields at fault. */
interface ItemProblem {
  status: number;
  code: string;
  detail: string;
  errors: FieldError[];
}

/** One item of the answer. */
export interface ItemResult {
  index: number;
  outcome: "created" | "replayed" | "refused";
  status: number;
  interaction?: Record<string, unknown>;
  problem?: ItemProblem;
}

/** Handles POST /functions/v1/log-interaction/batch. */
export function batchHandler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    const { claims, service } = await writer(req);
    // What Postgres cannot store (NUL, unpaired surrogates, huge numbers, deep nesting) is
    // refused item by item below, not for the whole body.
    const raw = await readJson(req, MAX_BATCH_BYTES, { checkStorable: false });
    const parsed = BatchBody.safeParse(raw);
    if (!parsed.success) {
      throw new HttpError(422, "Unprocessable Content", "The request body must be {\"items\": [...]} with 1 to 500 interactions.", {
        errors: fieldErrors(parsed.error),
      });
    }

    // Each item on its own: the single route's schema and rules, and a request_id of its own.
    const results: ItemResult[] = [];
    const valid: { index: number; item: Record<string, JSONValue> }[] = [];
    await ctx.timing.measure("validate", async () => {
      for (const [index, value] of parsed.data.items.entries()) {
        const one = LogInteractionBody.safeParse(value);
        const errors = one.success ? writerFieldErrors(one.data, service) : fieldErrors(one.error);
        if (one.success && one.data.request_id === undefined) errors.push({ field: "request_id", message: `Required in a batch: ${IDEMPOTENCY_KEY_RULE}` });
        if (one.success && one.data.request_id !== undefined && !IDEMPOTENCY_KEY.test(one.data.request_id)) {
          errors.push({ field: "request_id", message: IDEMPOTENCY_KEY_RULE });
        }
        if (one.success) errors.push(...unstorable(value));
        if (!one.success || errors.length) {
          results[index] = refused(index, 422, "22023", `Item ${index} has invalid fields: ${errors.map((e) => e.field).join(", ")}.`, errors);
          continue;
        }
        const { tracked_skill_id, ...rest } = one.data;
        const item: Record<string, JSONValue> = { ...(rest as Record<string, JSONValue>) };
        if (tracked_skill_id !== undefined) item.tracked_skill_id_hash = await trackedSkillHash(tracked_skill_id);
        valid.push({ index, item });
      }
    });

    if (valid.length > 0) {
      // A batch larger than the whole limit can never be taken: say so instead of a 429 to retry.
      const limit = rateLimitFor("log-interaction", ctx);
      const onTake = limit.onTake;
      limit.onTake = (take) => {
        if (!take.allowed && take.quota !== null && valid.length > take.quota) {
          throw new HttpError(413, "Content Too Large",
            `This batch needs ${valid.length} requests of the log-interaction limit, which allows ${take.quota} per ${take.window_seconds} s; send at most ${take.quota} items per batch.`);
        }
        onTake(take);
      };
      const rows = await ctx.timing.measure("db", () =>
        withUser(claims, (tx) => tx<{ item: number; outcome: ItemResult["outcome"]; interaction: Record<string, unknown> | null; code: string | null; field: string | null; message: string | null }[]>`
          select r.item, r.outcome, to_json(r.interaction) as interaction, r.code, r.field, r.message
          from public.log_coach_interactions(${tx.json(valid.map((v) => v.item))}::jsonb) r`,
          { traceId: ctx.traceId, rateLimit: { ...limit, amount: valid.length } }));
      for (const row of rows) {
        const index = valid[row.item].index;
        if (row.outcome === "refused") {
          const status = clientErrorStatus(row.code ?? "") ?? 422;
          results[index] = refused(index, status, row.code ?? "22023", row.message ?? "Refused", [{ field: row.field ?? "(item)", message: row.message ?? "Refused" }]);
        } else {
          results[index] = { index, outcome: row.outcome, status: row.outcome === "created" ? 201 : 200, interaction: row.interaction ?? undefined };
        }
      }
    }
    const counts = { created: 0, replayed: 0, refused: 0 };
    for (const r of results) counts[r.outcome]++;
    return json({ ...counts, items: results }, 200);
  });
}

function refused(index: number, status: number, code: string, detail: string, errors: FieldError[]): ItemResult {
  return { index, outcome: "refused", status, problem: { status, code, detail, errors } };
}
