/** Shared by the Deno tests of functions: seeded users, tokens and an admin connection. */
import postgres from "postgres";
import { SignJWT } from "jose";
import { requireEnv } from "../env.ts";

export const ALICE = "a11ce000-0000-4000-8000-000000000001";
export const BOB = "b0b00000-0000-4000-8000-000000000002";
export const CAROL = "ca401000-0000-4000-8000-000000000003";

/** A secret that is not the project's: tokens signed with it must be refused. */
export const FOREIGN_SECRET = "not-this-projects-secret-but-long-enough-for-hs256";

/** Signs claims as they are, with the test stack's secret or another. */
export async function sign(claims: Record<string, unknown>, secret = requireEnv("SUPABASE_JWT_SECRET")): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(secret));
}

/**
 * A token with the claims the platform puts in one, valid for ten minutes, `claims` on top:
 * for role authenticated what GoTrue issues (iss SUPABASE_URL/auth/v1, aud, iat, exp, aal,
 * amr, session_id, is_anonymous); for anon and service_role what the CLI's API keys carry
 * (iss "supabase-demo", iat, exp); for another role (coach_ingest) what
 * `npm run local -- token --role` mints (iss SUPABASE_URL/auth/v1, iat, exp).
 */
export async function token(claims: Record<string, unknown>, secret?: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const authIssuer = `${requireEnv("SUPABASE_URL").replace(/\/+$/, "")}/auth/v1`;
  const base: Record<string, unknown> = claims.role === "authenticated"
    ? {
      iss: authIssuer, aud: "authenticated", iat: now, exp: now + 600,
      aal: "aal1", amr: [{ method: "password", timestamp: now }], session_id: crypto.randomUUID(), is_anonymous: false,
    }
    : { iss: claims.role === "anon" || claims.role === "service_role" ? "supabase-demo" : authIssuer, iat: now, exp: now + 600 };
  return await sign({ ...base, ...claims }, secret);
}

/** A signed-in user's token. */
export function userToken(sub: string): Promise<string> {
  return token({ sub, role: "authenticated" });
}

/** A connection as postgres, for checking what a handler stored. */
export function adminSql(): postgres.Sql {
  return postgres(requireEnv("SUPABASE_DB_URL"), { max: 2, onnotice: () => {} });
}

/** A request to a function handler. */
export function request(
  path: string,
  opts: {
    method?: string; bearer?: string; body?: unknown; rawBody?: string; headers?: Record<string, string>; signal?: AbortSignal;
  } = {},
): Request {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  if (body !== undefined) headers["content-type"] ??= "application/json";
  return new Request(`http://functions.test${path}`, {
    method: opts.method ?? (body ? "POST" : "GET"), headers, body, signal: opts.signal,
  });
}

/**
 * Runs fn with the functions' pool pointed at a database that is down, then restores it:
 * "refused" is a closed port (connections fail at once); "silent" is a port that accepts
 * TCP connections and never answers, like a hung or unreachable server, so only the
 * connect timeout ends the attempt.
 */
export async function withDatabaseDown(
  closeDb: () => Promise<void>,
  fn: () => Promise<void>,
  mode: "refused" | "silent" = "refused",
): Promise<void> {
  await closeDb();
  const url = Deno.env.get("SUPABASE_DB_URL")!;
  const held: Deno.Conn[] = [];
  let listener: Deno.Listener | undefined;
  let port = 1;
  if (mode === "silent") {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = (listener.addr as Deno.NetAddr).port;
    (async () => {
      for await (const conn of listener!) held.push(conn);
    })().catch(() => {});
  }
  Deno.env.set("SUPABASE_DB_URL", `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`);
  try {
    await fn();
  } finally {
    await closeDb();
    Deno.env.set("SUPABASE_DB_URL", url);
    listener?.close();
    for (const c of held) {
      try {
        c.close();
      } catch { /* already closed by the client */ }
    }
  }
}
