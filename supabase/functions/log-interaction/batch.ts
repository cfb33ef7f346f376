/**
 * `log-interaction/batch` (POST): logs up to 500 interactions and events in one request and
 * one transaction, through the set-based public.log_coach_interactions and public.log_events.
 * Callers as on the single routes: the service role and `coach_ingest` tokens for any user
 * (user_id required), a user for their own messages and events, an assigned coach for their
 * client's `human_coach` messages. Each item is the single route's body (log-interaction's,
 * or with `"type": "event"` the events route's) with its own `request_id` (required: it is
 * what makes a retried batch safe). An item may carry `tracked_skill_id_hash`, the keyed hash
 * computed by the caller (the SDK hashes before the id leaves the process), instead of
 * `tracked_skill_id`.
 *
 * The answer is 200 with every item's outcome in order, so a bad item never blocks the good
 * ones: `created` (201 on the single route) or `replayed` (200) with the stored row
 * (`interaction` or `event`), or `refused` with the status the single route would have
 * answered and a problem naming the field. With `Prefer: return=minimal` (as PostgREST reads
 * it) a stored item carries only its `id`, not the row: what a logger that never reads the
 * rows back (the SDK) asks for, and a smaller answer to encode and send. The whole request is
 * refused only when it is not a batch (422), too large (413), or over a rate limit, which a
 * batch takes from once per item (interactions from log-interaction's, events from
 * events'), all or none per limit (429).
 */
import { z } from "zod";
import { type FieldError, HttpError, json, type RequestContext, respond } from "../_shared/http.ts";
import { clientErrorStatus, type JSONValue, type RateLimitOption, type Tx, withUser } from "../_shared/db.ts";
import { fieldErrors, IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE, readJson, unstorable, writerFieldErrors } from "../_shared/validate.ts";
import { trackedSkillHash } from "../_shared/tracked_skill.ts";
import { rateLimitFor } from "../_shared/rate_limit.ts";
import { EventBody } from "../_shared/events.ts";
import { LogInteractionBody, writer } from "./handler.ts";

/** Most items in one batch. */
export const MAX_BATCH_ITEMS = 500;
/** Largest accepted batch body, in bytes (the local gateway's body limit too). */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** The batch: `items`, each validated on its own below. */
const BatchBody = z.strictObject({
  items: z.array(z.unknown()).min(1).max(MAX_BATCH_ITEMS),
});

/** What a batch item may carry besides its route's body. */
const ItemExtras = z.object({
  type: z.enum(["interaction", "event"]).default("interaction"),
  tracked_skill_id_hash: z.string().regex(/^[0-9a-f]{64}$/, "Use the keyed hash: 64 lowercase hex digits").optional(),
});

type ItemType = "interaction" | "event";

/** Each item type: the answer's field for its row, and its rate limit. */
const KINDS = {
  interaction: { row: "interaction", limit: "log-interaction" },
  event: { row: "event", limit: "events" },
} as const;

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
  type: ItemType;
  outcome: "created" | "replayed" | "refused";
  status: number;
  interaction?: Record<string, unknown>;
  event?: Record<string, unknown>;
  /** The stored row's id, in place of the row, under `Prefer: return=minimal`. */
  id?: string;
  problem?: ItemProblem;
}

/** An item that passed validation, ready for its SQL write path. */
interface ValidItem {
  index: number;
  item: Record<string, JSONValue>;
}

/** One row of log_coach_interactions or log_events. */
interface WrittenRow {
  item: number;
  outcome: ItemResult["outcome"];
  row: Record<string, unknown> | null;
  code: string | null;
  field: string | null;
  message: string | null;
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
      throw new HttpError(422, "Unprocessable Content", "The request body must be {\"items\": [...]} with 1 to 500 interactions or events.", {
        errors: fieldErrors(parsed.error),
      });
    }

    // Each item on its own: its single route's schema and rules, and a request_id of its own.
    const results: ItemResult[] = [];
    const valid: Record<ItemType, ValidItem[]> = { interaction: [], event: [] };
    await ctx.timing.measure("validate", async () => {
      for (const [index, value] of parsed.data.items.entries()) {
        const { type, item, errors } = await validateItem(value, service);
        if (errors.length) {
          results[index] = refused(index, type, 422, "22023", `Item ${index} has invalid fields: ${errors.map((e) => e.field).join(", ")}.`, errors);
        } else {
          valid[type].push({ index, item: item! });
        }
      }
    });

    const minimal = prefersMinimal(req);
    if (minimal) ctx.headers["Preference-Applied"] = "return=minimal";
    const types = (["interaction", "event"] as const).filter((type) => valid[type].length > 0);
    if (types.length > 0) {
      const limits = types.map((type) => batchRateLimit(KINDS[type].limit, valid[type].length, ctx));
      const written = await ctx.timing.measure("db", () =>
        withUser(claims, async (tx) => {
          // One transaction: interactions, then events.
          const out: Partial<Record<ItemType, WrittenRow[]>> = {};
          for (const type of types) out[type] = await write(tx, type, valid[type], minimal);
          return out;
        }, { traceId: ctx.traceId, rateLimit: limits }));
      for (const type of types) {
        for (const row of written[type]!) {
          const index = valid[type][row.item].index;
          if (row.outcome === "refused") {
            const status = clientErrorStatus(row.code ?? "") ?? 422;
            results[index] = refused(index, type, status, row.code ?? "22023", row.message ?? "Refused", [{ field: row.field ?? "(item)", message: row.message ?? "Refused" }]);
          } else {
            const stored = minimal ? { id: row.row?.id as string } : { [KINDS[type].row]: row.row ?? undefined };
            results[index] = { index, type, outcome: row.outcome, status: row.outcome === "created" ? 201 : 200, ...stored };
          }
        }
      }
    }
    const counts = { created: 0, replayed: 0, refused: 0 };
    for (const r of results) counts[r.outcome]++;
    return json({ ...counts, items: results }, 200);
  });
}

/** One item: its type, and either its body for SQL (the tracked skill id hashed) or its field errors. */
async function validateItem(value: unknown, service: boolean): Promise<{ type: ItemType; item?: Record<string, JSONValue>; errors: FieldError[] }> {
  // The item's own fields, then the extras a batch item may add; an unknown type is refused
  // against the interaction schema's fields as well, so every mistake is listed at once.
  const { type: rawType, tracked_skill_id_hash: rawHash, ...body } = (value !== null && typeof value === "object" && !Array.isArray(value)
    ? value
    : {}) as Record<string, unknown>;
  const extras = ItemExtras.safeParse({ type: rawType, tracked_skill_id_hash: rawHash });
  const type: ItemType = extras.success ? extras.data.type : rawType === "event" ? "event" : "interaction";
  // Chosen here, not in a table at load time: handler.ts imports this module and is still
  // loading when it runs.
  const schema = type === "event" ? EventBody : LogInteractionBody;
  const one = schema.safeParse(value !== null && typeof value === "object" && !Array.isArray(value) ? body : value);
  const errors = extras.success ? [] : fieldErrors(extras.error);
  if (!one.success) return { type, errors: [...errors, ...fieldErrors(one.error)] };
  errors.push(...writerFieldErrors(one.data, service));
  if (one.data.request_id === undefined) errors.push({ field: "request_id", message: `Required in a batch: ${IDEMPOTENCY_KEY_RULE}` });
  else if (!IDEMPOTENCY_KEY.test(one.data.request_id)) errors.push({ field: "request_id", message: IDEMPOTENCY_KEY_RULE });
  if (one.data.tracked_skill_id !== undefined && rawHash !== undefined) {
    errors.push({ field: "tracked_skill_id_hash", message: "Send tracked_skill_id or tracked_skill_id_hash, not both" });
  }
  errors.push(...unstorable(value));
  if (errors.length) return { type, errors };
  const { tracked_skill_id, ...rest } = one.data;
  const item: Record<string, JSONValue> = { ...(rest as Record<string, JSONValue>) };
  if (tracked_skill_id !== undefined) item.tracked_skill_id_hash = await trackedSkillHash(tracked_skill_id);
  else if (extras.success && extras.data.tracked_skill_id_hash !== undefined) item.tracked_skill_id_hash = extras.data.tracked_skill_id_hash;
  return { type, item, errors };
}

/**
 * Takes `amount` requests from endpoint's limit, all or none. A batch larger than the whole
 * limit can never be taken: that is 413 (send smaller batches), not a 429 to retry.
 */
function batchRateLimit(endpoint: string, amount: number, ctx: RequestContext): RateLimitOption {
  const limit = rateLimitFor(endpoint, ctx);
  return {
    endpoint,
    amount,
    onTake: (take) => {
      if (!take.allowed && take.quota !== null && amount > take.quota) {
        throw new HttpError(413, "Content Too Large",
          `This batch needs ${amount} requests of the ${endpoint} limit, which allows ${take.quota} per ${take.window_seconds} s; send at most ${take.quota} items of this type per batch.`);
      }
      limit.onTake(take);
    },
  };
}

/** True when the request's Prefer header asks for return=minimal (RFC 7240; tokens are case-insensitive). */
function prefersMinimal(req: Request): boolean {
  return (req.headers.get("prefer") ?? "").split(",").some((p) => p.trim().toLowerCase() === "return=minimal");
}

/** Writes one type's valid items through its set-based SQL function; `minimal` reads back only each row's id. */
async function write(tx: Tx, type: ItemType, items: ValidItem[], minimal: boolean): Promise<WrittenRow[]> {
  const payload = tx.json(items.map((v) => v.item));
  const rows = type === "interaction"
    ? await tx`select r.item, r.outcome, r.code, r.field, r.message,
                      case when ${minimal}::boolean then json_build_object('id', (r.interaction).id) else to_json(r.interaction) end as row
               from public.log_coach_interactions(${payload}::jsonb) r`
    : await tx`select r.item, r.outcome, r.code, r.field, r.message,
                      case when ${minimal}::boolean then json_build_object('id', (r.event).id) else to_json(r.event) end as row
               from public.log_events(${payload}::jsonb) r`;
  return rows as unknown as WrittenRow[];
}

function refused(index: number, type: ItemType, status: number, code: string, detail: string, errors: FieldError[]): ItemResult {
  return { index, type, outcome: "refused", status, problem: { status, code, detail, errors } };
}
