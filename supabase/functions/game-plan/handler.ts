/**
 * `game-plan` (GET): a user's game plan through public.get_game_plan: the top three open
 * applications by momentum with their breakdown, the check-ins that are due, the micro-task
 * when the top application has stalled for 48 hours (unless snoozed), and the total debt
 * lifted. A signed-in user reads their own; an assigned coach passes user_id (the read is
 * recorded in audit.phi_access_log); the service role must pass user_id. The database
 * decides who may read whose plan: anyone else gets 403.
 */
import { z } from "zod";
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate } from "../_shared/auth.ts";
import { withUser } from "../_shared/db.ts";
import { parseOrThrow, queryOf } from "../_shared/validate.ts";

/** The query string: strict, so unknown parameters are refused. */
export const GamePlanQuery = z.strictObject({
  user_id: z.uuid().optional(),
});

/** Handles GET /functions/v1/game-plan. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "GET");
    const claims = await authenticate(req);
    if (!(claims.role === "service_role" || (claims.role === "authenticated" && claims.sub))) {
      throw new HttpError(403, "Forbidden", "Only a signed-in user or the service role can read a game plan.");
    }
    const q = await ctx.timing.measure("validate", () => {
      const q = parseOrThrow(GamePlanQuery, queryOf(req), "query string");
      if (claims.role === "service_role" && !q.user_id) {
        throw new HttpError(422, "Unprocessable Content", "The query string has invalid fields: user_id.", {
          errors: [{ field: "user_id", message: "Required for the service role" }],
        });
      }
      return q;
    });
    const [row] = await ctx.timing.measure("db", () =>
      withUser(claims, (tx) => tx`select public.get_game_plan(user_id => ${q.user_id ?? null}::uuid) as plan`, {
        traceId: ctx.traceId,
      })
    );
    return json(row.plan);
  });
}
