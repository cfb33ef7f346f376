/**
 * `interaction-aggregate` (POST, service role only): backfills the daily interaction
 * metrics for a range of UTC days through analytics.aggregate_interaction_metrics.
 * Body {from, to} (YYYY-MM-DD; to defaults to from; at most 366 days). Returns the users
 * and messages rolled up per day and the time taken. Idempotent: a range can be rerun.
 *
 * Its statement timeout is BACKFILL_STATEMENT_TIMEOUT (120 s), not the service role's 8 s: a
 * rollup of one day holding a million interactions takes about 2 s (docs/testing), so a
 * range of busy days needs more than 8 s, and it stays under the 150 s in which Supabase's
 * edge runtime must answer. A range that needs longer fails whole (504, nothing changes);
 * split it. The service role's share of the pool stays bounded (PER_TOKEN_MAX in db.ts).
 */
import { z } from "zod";
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate } from "../_shared/auth.ts";
import { callerOf, withServiceRole } from "../_shared/db.ts";
import { parseOrThrow, readJson } from "../_shared/validate.ts";

const MAX_DAYS = 366;
/** The statement timeout of a backfill (see above). */
export const BACKFILL_STATEMENT_TIMEOUT = "120s";
const DAY_MS = 86_400_000;

/** The request body: strict. */
export const AggregateBody = z.strictObject({
  from: z.iso.date(),
  to: z.iso.date().optional(),
}).superRefine((b, ctx) => {
  const from = Date.parse(b.from);
  const to = Date.parse(b.to ?? b.from);
  if (to < from) ctx.addIssue({ code: "custom", path: ["to"], message: "Must be on or after from" });
  else if ((to - from) / DAY_MS + 1 > MAX_DAYS) ctx.addIssue({ code: "custom", path: ["to"], message: `A range covers at most ${MAX_DAYS} days` });
});

/** Handles POST /functions/v1/interaction-aggregate. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "POST");
    const claims = await authenticate(req);
    if (claims.role !== "service_role") {
      throw new HttpError(403, "Forbidden", "Only the service role can aggregate interaction metrics.");
    }
    const raw = await readJson(req, 4096);
    const body = await ctx.timing.measure("validate", () => parseOrThrow(AggregateBody, raw));
    const started = performance.now();
    const days = await ctx.timing.measure("db", () =>
      withServiceRole((tx) => tx`
        select to_char(day, 'YYYY-MM-DD') as day, users, messages
        from analytics.aggregate_interaction_metrics(${body.from}::date, ${body.to ?? body.from}::date)`,
        { traceId: ctx.traceId, statementTimeout: BACKFILL_STATEMENT_TIMEOUT, caller: callerOf(claims) })
    );
    return json({
      from: body.from,
      to: body.to ?? body.from,
      days: days.map((d) => ({ day: d.day, users: d.users, messages: d.messages })),
      elapsed_ms: Math.round(performance.now() - started),
    });
  });
}
