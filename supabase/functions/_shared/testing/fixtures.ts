/** Shared by the Deno tests of functions: seeded users, tokens and an admin connection. */
import postgres from "postgres";
import { SignJWT } from "jose";
import { requireEnv } from "../env.ts";

export const ALICE = "a11ce000-0000-4000-8000-000000000001";
export const BOB = "b0b00000-0000-4000-8000-000000000002";
export const CAROL = "ca401000-0000-4000-8000-000000000003";

/** A token signed with the test stack's secret, valid for ten minutes. */
export async function token(claims: Record<string, unknown>): Promise<string> {
  return await new SignJWT({ exp: Math.floor(Date.now() / 1000) + 600, ...claims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(requireEnv("SUPABASE_JWT_SECRET")));
}

/** A signed-in user's token. */
export function userToken(sub: string): Promise<string> {
  return token({ sub, role: "authenticated", aud: "authenticated" });
}

/** A connection as postgres, for checking what a handler stored. */
export function adminSql(): postgres.Sql {
  return postgres(requireEnv("SUPABASE_DB_URL"), { max: 2, onnotice: () => {} });
}

/** A request to a function handler. */
export function request(
  path: string,
  opts: { method?: string; bearer?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Request {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  if (body !== undefined) headers["content-type"] ??= "application/json";
  return new Request(`http://functions.test${path}`, { method: opts.method ?? (body ? "POST" : "GET"), headers, body });
}

/** Runs fn with the functions' pool pointed at a closed port, then restores it. */
export async function withDatabaseDown(closeDb: () => Promise<void>, fn: () => Promise<void>): Promise<void> {
  await closeDb();
  const url = Deno.env.get("SUPABASE_DB_URL")!;
  Deno.env.set("SUPABASE_DB_URL", "postgresql://postgres:postgres@127.0.0.1:1/postgres");
  try {
    await fn();
  } finally {
    await closeDb();
    Deno.env.set("SUPABASE_DB_URL", url);
  }
}
