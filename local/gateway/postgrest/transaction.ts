/**
 * The transaction every /rest/v1 request runs in, as PostgREST opens it
 * (src/PostgREST/Query.hs, Query/PreQuery.hs): read only for GET and HEAD (and stable
 * functions), the impersonated role's own settings (statement_timeout: anon 3 s,
 * authenticated 8 s on Supabase), the role, the JWT's claims, the request's headers,
 * cookies, method and path, the `Prefer: timezone`, then a function's hoisted settings,
 * transaction-locally.
 */
import type postgres from "postgres";
import { preferredTimezone } from "./preferences.ts";

/** Who is asking and how. */
export interface RequestContext {
  method: string;
  path: string;
  headers: Headers;
  role: string;
  claims: Record<string, unknown>;
}

/** Thrown inside a transaction to roll it back and answer `result` instead. */
export class Rollback<T> extends Error {
  constructor(readonly result: T) {
    super("rollback");
  }
}

/**
 * Runs `work` in one transaction as the request's role; a Rollback thrown by `work` rolls
 * back and its result is returned.
 */
export async function asRequest<T>(
  sql: postgres.Sql,
  ctx: RequestContext,
  opts: { readOnly: boolean; settings?: Record<string, string> },
  work: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  const headers: Record<string, string> = {};
  for (const [k, v] of ctx.headers) headers[k.toLowerCase()] = v;
  const timezone = preferredTimezone(ctx.headers.get("prefer"));
  try {
    return await sql.begin(opts.readOnly ? "read only" : "read write", async (tx) => {
      // The role's own settings apply to the transaction, as PostgREST applies impersonated
      // role settings (`set role` alone would not); then the function's hoisted settings, which win.
      // Evaluated in order: the role's settings, the request, the preferred timezone (an
      // unknown one is PostgreSQL's 22023, a 400), then the function's settings, which win.
      await tx`select (select count(set_config(kv.k, kv.v, true))
                       from pg_catalog.pg_roles r
                       cross join unnest(r.rolconfig) as c(setting)
                       cross join lateral (select substr(c.setting, 1, strpos(c.setting, '=') - 1) as k,
                                                  substr(c.setting, strpos(c.setting, '=') + 1) as v) kv
                       join pg_catalog.pg_settings ps
                         on ps.name = kv.k
                        and (ps.context = 'user' or has_parameter_privilege(session_user, ps.name, 'set'))
                       where r.rolname = ${ctx.role} and kv.k <> 'default_transaction_isolation'),
                      set_config('role', ${ctx.role}, true),
                      set_config('request.jwt.claims', ${JSON.stringify(ctx.claims)}, true),
                      set_config('request.headers', ${JSON.stringify(headers)}, true),
                      set_config('request.cookies', '{}', true),
                      set_config('request.method', ${ctx.method}, true),
                      set_config('request.path', ${ctx.path}, true),
                      set_config('search_path', 'public, extensions', true),
                      case when ${timezone}::text is null then null else set_config('timezone', ${timezone}::text, true) end,
                      (select count(set_config(f.k, f.v, true)) from json_each_text(${JSON.stringify(opts.settings ?? {})}::text::json) as f(k, v))`;
      return await work(tx);
    }) as T;
  } catch (err) {
    if (err instanceof Rollback) return err.result as T;
    throw err;
  }
}

/** What a function or trigger asked of the response (PostgREST's response.status / response.headers GUCs). */
export async function responseSettings(tx: postgres.TransactionSql): Promise<{ status: string | null; headers: string | null }> {
  const [gucs] = await tx<{ status: string | null; headers: string | null }[]>`
    select nullif(current_setting('response.status', true), '') as status,
           nullif(current_setting('response.headers', true), '') as headers`;
  return gucs;
}
