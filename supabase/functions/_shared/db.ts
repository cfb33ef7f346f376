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

let pool: postgres.Sql | undefined;

/** The shared pool, created on first use. */
export function db(): postgres.Sql {
  return pool ??= postgres(requireEnv("SUPABASE_DB_URL"), {
    prepare: false,
    max: 5,
    idle_timeout: 20,
    connection: { application_name: "coach-ledger-functions" },
  });
}

/** Database roles a token may act as through functions. */
export const API_ROLES = new Set(["anon", "authenticated", "service_role"]);

async function withClaims<T>(role: string, claims: Record<string, unknown>, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return await db().begin(async (tx) => {
    await tx`select set_config('role', ${role}, true),
                    set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    return await fn(tx);
  }) as T;
}

/** Runs fn in a transaction as the caller: the token's role (one of API_ROLES) and claims. */
export async function withUser<T>(claims: Claims, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (!API_ROLES.has(claims.role)) {
    throw new HttpError(403, "Forbidden", `A token with role ${claims.role} cannot call this function.`);
  }
  return await withClaims(claims.role, claims, fn);
}

/** Runs fn in a transaction as service_role (bypasses RLS; use for server-side work only). */
export async function withServiceRole<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
  return await withClaims("service_role", { role: "service_role" }, fn);
}

/** Closes the pool (tests). */
export async function closeDb(): Promise<void> {
  await pool?.end({ timeout: 5 });
  pool = undefined;
}
