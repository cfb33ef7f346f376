/** Test fixture: shows the environment a function sees. */
export function handler(_req: Request): Response {
  return Response.json({
    fromDotenv: Deno.env.get("COACH_LEDGER_FIXTURE_ENV") ?? null,
    supabaseUrl: Deno.env.get("SUPABASE_URL") ?? null,
    hasServiceRoleKey: Boolean(Deno.env.get("SUPABASE_SERVICE_ROLE_KEY")),
    hasDbUrl: Boolean(Deno.env.get("SUPABASE_DB_URL")),
  });
}
