/**
 * Database access for functions: a postgres.js pool over SUPABASE_DB_URL (on hosted
 * Supabase the transaction pooler, hence prepare: false). A user-scoped call runs in a
 * transaction that sets the role and request.jwt.claims exactly as PostgREST does, so
 * RLS applies to functions as it does to supabase-js.
 */
import postgres from "postgres";
import { requireEnv } from "./env.ts";
import type { Claims } from "./auth.ts";
import { HttpError } from "./http.ts";

/** A transaction handle. */
export type Tx = postgres.TransactionSql;
/** A value postgres.js sends as JSON (tx.json). */
export type JSONValue = postgres.JSONValue;

let pool: postgres.Sql | undefined;

/** The shared pool, created on first use. */
export function db(): postgres.Sql {
  return pool ??= postgres(requireEnv("SUPABASE_DB_URL"), {
    prepare: false,
    max: 10,
    idle_timeout: 20,
    connection: { application_name: "coach-ledger-functions" },
  });
}

/** Database roles a token may act as through functions. */
export const API_ROLES = new Set(["anon", "authenticated", "service_role", "coach_ingest"]);

/** Per-call request facts, set like PostgREST's request.headers. */
export interface CallOptions {
  requestId?: string;
}

async function withClaims<T>(
  role: string,
  claims: Record<string, unknown>,
  fn: (tx: Tx) => Promise<T>,
  opts: CallOptions,
): Promise<T> {
  try {
    return await db().begin(async (tx) => {
      const headers = JSON.stringify(opts.requestId ? { "x-request-id": opts.requestId } : {});
      // Not awaited before fn runs: fn's first query is pipelined behind this one on the
      // same connection (one round trip less). Order is kept, and if this statement fails
      // the transaction is aborted, so fn's query cannot run without the role.
      const setup = tx`select set_config('role', ${role}, true),
                      set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                      set_config('request.headers', ${headers}, true)`;
      const [, result] = await Promise.all([setup, fn(tx)]);
      return result;
    }) as T;
  } catch (err) {
    throw toHttpError(err);
  }
}

/** Runs fn in a transaction as the caller: the token's role (one of API_ROLES) and claims. */
export async function withUser<T>(claims: Claims, fn: (tx: Tx) => Promise<T>, opts: CallOptions = {}): Promise<T> {
  if (!API_ROLES.has(claims.role)) {
    throw new HttpError(403, "Forbidden", `A token with role ${claims.role} cannot call this function.`);
  }
  return await withClaims(claims.role, claims, fn, opts);
}

/** Runs fn in a transaction as service_role (bypasses RLS; use for server-side work only). */
export async function withServiceRole<T>(fn: (tx: Tx) => Promise<T>, opts: CallOptions = {}): Promise<T> {
  return await withClaims("service_role", { role: "service_role" }, fn, opts);
}

const CONNECTION_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "CONNECT_TIMEOUT", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED"]);

/**
 * Maps a database error to the HTTP error a client should see: the database unreachable →
 * 503; a refused permission → 403; invalid values → 422; PostgREST-style PTnnn codes → nnn.
 * Anything else is returned unchanged (a 500 when it reaches respond()).
 */
export function toHttpError(err: unknown): unknown {
  if (err instanceof HttpError) return err;
  const e = err as { code?: string; message?: string; hint?: string; constraint_name?: string; errno?: string };
  const code = e?.code ?? "";
  const detail = e?.message ?? "Database error";
  if (CONNECTION_ERRORS.has(code) || CONNECTION_ERRORS.has(e?.errno ?? "") || /^(08|57P0[1-3]|53)/.test(code)) {
    return new HttpError(503, "Service Unavailable", "The database is unavailable; retry later.", { headers: { "Retry-After": "1" } });
  }
  const pt = /^PT(\d{3})$/.exec(code);
  if (pt) return new HttpError(Number(pt[1]), pt[1] === "409" ? "Conflict" : "Unprocessable Content", detail);
  if (code === "42501") return new HttpError(403, "Forbidden", detail);
  if (/^(23514|23502|23503|22023|22P02|22001|22003|22007|22008)$/.test(code)) {
    const field = e.constraint_name ? constraintField(e.constraint_name) : undefined;
    return new HttpError(422, "Unprocessable Content", detail, field ? { errors: [{ field, message: detail }] } : {});
  }
  return err;
}

/** The field a named constraint guards: coach_interactions_sentiment_range → sentiment. */
function constraintField(name: string): string {
  return name.replace(/^[a-z]+_[a-z]+s_/, "").replace(/_(range|known|format|length|nonnegative|object|has_text|with_error|within_prompt)$/, "");
}

/** Closes the pool (tests). */
export async function closeDb(): Promise<void> {
  await pool?.end({ timeout: 5 });
  pool = undefined;
}
