/**
 * `history` (GET): a user's interactions, newest first, through the audited
 * public.get_interaction_history (every call appends an audit.phi_access_log row in the same
 * transaction). Query: user_id (the client, for a coach; required for the service role),
 * limit 1..100 (default 100), before (the id of the oldest interaction already seen),
 * redacted=true|false, purpose (recorded in the audit log).
 */
import { z } from "zod";
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate } from "../_shared/auth.ts";
import { withUser } from "../_shared/db.ts";
import { parseOrThrow, queryOf } from "../_shared/validate.ts";

/** The query string: strict, so unknown parameters are refused. */
export const HistoryQuery = z.strictObject({
  user_id: z.uuid().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(100),
  before: z.uuid().optional(),
  redacted: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  purpose: z.string().min(1).max(200).default("coaching"),
});

/** Handles GET /functions/v1/history. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "GET");
    const claims = await authenticate(req);
    if (!(claims.role === "service_role" || (claims.role === "authenticated" && claims.sub))) {
      throw new HttpError(403, "Forbidden", "Only a signed-in user or the service role can read interaction history.");
    }
    const q = await ctx.timing.measure("validate", () => {
      const q = parseOrThrow(HistoryQuery, queryOf(req), "query string");
      if (claims.role === "service_role" && !q.user_id) {
        throw new HttpError(422, "Unprocessable Content", "The query string has invalid fields: user_id.", {
          errors: [{ field: "user_id", message: "Required for the service role" }],
        });
      }
      return q;
    });
    const items = await ctx.timing.measure("db", () =>
      withUser(claims, (tx) => tx`
        select to_json(h) as item
        from public.get_interaction_history(
          user_id => ${q.user_id ?? null}::uuid,
          page_size => ${q.limit}::integer,
          before => ${q.before ?? null}::uuid,
          redacted => ${q.redacted}::boolean,
          purpose => ${q.purpose}
        ) h`, { traceId: ctx.traceId })
    );
    const list = items.map((r) => r.item as Record<string, unknown>);
    return json({
      items: list,
      next_before: list.length === q.limit ? list[list.length - 1].id : null,
    });
  });
}
