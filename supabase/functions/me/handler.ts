/**
 * `me` (GET): who the caller is: the token's user id, email and role, and their profile as
 * RLS lets them see it. 401 without a valid token; 404 when the caller has no profile
 * (the anon and service_role keys are not users).
 */
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate, isUser } from "../_shared/auth.ts";
import { withUser } from "../_shared/db.ts";
import type { Database } from "../_shared/database.types.ts";

/** get_my_profile's row (the generated types, `npm run gen:types`). */
type Profile = Database["public"]["Functions"]["get_my_profile"]["Returns"];

/** Handles GET /functions/v1/me. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "GET");
    const claims = await authenticate(req);
    if (!isUser(claims)) {
      const article = /^[aeiou]/i.test(claims.role) ? "An" : "A";
      throw new HttpError(404, "Not Found", `${article} ${claims.role} token belongs to no user, so it has no profile.`);
    }
    const [profile] = await ctx.timing.measure("db", () =>
      withUser(claims, (tx) => tx<Profile[]>`select * from public.get_my_profile() where id is not null`)
    );
    if (!profile) throw new HttpError(404, "Not Found", "The signed-in user has no profile.");
    return json({ id: claims.sub, email: claims.email ?? null, role: claims.role, profile });
  });
}
