/**
 * `/rest/v1/rpc/<fn>` with PostgREST's RPC semantics, over postgres.js connected as
 * `authenticator`: named arguments from the JSON body (POST) or the query string (GET);
 * the JWT's role and claims, request headers, method and path set transaction-locally;
 * PostgREST's return shapes, error JSON and status mapping. Only the `public` schema.
 */
import type postgres from "postgres";
import { databaseErrorResult, restError, type RestError, type RestResult } from "./errors.ts";

export type { RestError, RestResult };

interface FunctionInfo {
  oid: number;
  volatility: "i" | "s" | "v";
  returns_set: boolean;
  return_type: string;
  return_kind: string;
  args: { name: string; type: string; has_default: boolean }[];
  /**
   * The function's own settings that PostgREST hoists to the transaction
   * (db-hoisted-tx-settings' default, less the isolation level): a `set statement_timeout`
   * in the definition would come too late, the statement's timer already runs.
   */
  settings: Record<string, string>;
}

const SCHEMA = "public";

async function lookup(sql: postgres.Sql, name: string): Promise<FunctionInfo[]> {
  return await sql<FunctionInfo[]>`
    select p.oid::int as oid,
           p.provolatile as volatility,
           p.proretset as returns_set,
           format_type(p.prorettype, null) as return_type,
           t.typtype as return_kind,
           coalesce((
             select json_agg(json_build_object(
                      'name', coalesce(p.proargnames[a.ord], ''),
                      'type', format_type(a.typ, null),
                      'has_default', a.input_ord > p.pronargs - p.pronargdefaults
                    ) order by a.ord)
             from (
               select u.typ, u.ord,
                      row_number() over (order by u.ord) as input_ord
               from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as u(typ, ord)
               where coalesce(p.proargmodes[u.ord], 'i') in ('i', 'b', 'v')
             ) a
           ), '[]'::json) as args,
           coalesce((
             select json_object_agg(substr(c.setting, 1, strpos(c.setting, '=') - 1), substr(c.setting, strpos(c.setting, '=') + 1))
             from unnest(p.proconfig) as c(setting)
             where substr(c.setting, 1, strpos(c.setting, '=') - 1) in ('statement_timeout', 'plan_filter.statement_cost_limit')
           ), '{}'::json) as settings
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    join pg_catalog.pg_type t on t.oid = p.prorettype
    where n.nspname = ${SCHEMA} and p.proname = ${name} and p.prokind = 'f'`;
}

function quoteIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

/** Picks the overload whose argument names match the given keys (PostgREST's rule). */
function choose(candidates: FunctionInfo[], keys: string[]): FunctionInfo[] {
  const given = new Set(keys);
  return candidates.filter((f) => {
    const named = f.args.every((a) => a.name !== "");
    if (!named) return false;
    const names = new Set(f.args.map((a) => a.name));
    return keys.every((k) => names.has(k)) && f.args.every((a) => a.has_default || given.has(a.name));
  });
}

/** A function taking one unnamed json/jsonb argument receives the whole body. */
function singleJsonArg(f: FunctionInfo): boolean {
  return f.args.length === 1 && f.args[0].name === "" && (f.args[0].type === "json" || f.args[0].type === "jsonb");
}

export interface RpcRequest {
  name: string;
  method: string;
  path: string;
  headers: Headers;
  query: URLSearchParams;
  /** Raw body text (POST). */
  body: string;
  role: string;
  claims: Record<string, unknown>;
}

const RESERVED_QUERY = new Set(["apikey"]);

/** Calls a function in `public` as PostgREST would and shapes the result. */
export async function callRpc(sql: postgres.Sql, req: RpcRequest): Promise<RestResult> {
  const authenticated = req.role !== "anon";
  const fail = (status: number, e: RestError): RestResult => ({ status, body: e });

  const profile = req.headers.get(req.method === "POST" ? "content-profile" : "accept-profile");
  if (profile && profile !== SCHEMA) {
    return fail(406, restError("PGRST106", `The schema must be one of the following: ${SCHEMA}`, null, null));
  }

  // Arguments: the JSON body for POST, the query string for GET and HEAD.
  let args: Record<string, unknown> = {};
  let rawBody: unknown = {};
  if (req.method === "POST") {
    if (req.body.trim() !== "") {
      try {
        rawBody = JSON.parse(req.body);
      } catch {
        return fail(400, restError("PGRST102", "Empty or invalid json"));
      }
    }
    if (rawBody === null || typeof rawBody !== "object" || Array.isArray(rawBody)) {
      args = {};
    } else {
      args = rawBody as Record<string, unknown>;
    }
    const filters = [...req.query.keys()].filter((k) => !RESERVED_QUERY.has(k));
    if (filters.length > 0) {
      return fail(501, restError("PGRST000",
        `Filtering or shaping RPC results (${filters.join(", ")}) is not supported by the local gateway; it needs hosted Supabase or supabase start.`));
    }
  } else if (req.method === "GET" || req.method === "HEAD") {
    for (const [k, v] of req.query) if (!RESERVED_QUERY.has(k)) args[k] = v;
  } else if (["PUT", "PATCH", "DELETE"].includes(req.method)) {
    return fail(405, restError("PGRST101", `Cannot use the ${req.method} method on RPC`));
  } else {
    return fail(405, restError("PGRST117", `Unsupported HTTP method: ${req.method}`));
  }

  try {
    return await plan(sql, req, args, rawBody);
  } catch (err) {
    const mapped = databaseErrorResult(err, authenticated);
    if (mapped) return mapped;
    throw err;
  }
}

/** Finds the function, builds the call and runs it as the request's role (PostgREST's Plan, Query and Response). */
async function plan(sql: postgres.Sql, req: RpcRequest, args: Record<string, unknown>, rawBody: unknown): Promise<RestResult> {
  const fail = (status: number, e: RestError): RestResult => ({ status, body: e });
  const keys = Object.keys(args);
  // No function name holds a NUL (PostgreSQL cannot even be asked about one): not found.
  const candidates = req.name.includes("\0") ? [] : await lookup(sql, req.name);
  let wholeBody = false;
  const matches = choose(candidates, keys);
  if (matches.length > 1) {
    return fail(300, restError("PGRST203",
      `Could not choose the best candidate function between: ${matches.map((m) => `${SCHEMA}.${req.name}(${m.args.map((a) => `${a.name} => ${a.type}`).join(", ")})`).join(", ")}`,
      null, "Try renaming the parameters or the function itself in the database so function overloading can be resolved"));
  }
  let fn: FunctionInfo | undefined = matches[0];
  if (!fn && req.method === "POST") {
    fn = candidates.find(singleJsonArg);
    wholeBody = fn !== undefined;
  }
  if (!fn) {
    const sorted = [...keys].sort();
    return fail(404, restError("PGRST202",
      `Could not find the function ${SCHEMA}.${req.name}${sorted.length ? `(${sorted.join(", ")})` : " without parameters"} in the schema cache`,
      `Searched for the function ${SCHEMA}.${req.name}${sorted.length ? ` with parameters ${sorted.join(", ")}` : " without parameters"} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
      null));
  }

  const readOnly = req.method !== "POST" || fn.volatility !== "v";
  const callee = `${quoteIdent(SCHEMA)}.${quoteIdent(req.name)}`;
  const used = fn.args.filter((a) => a.name !== "" && keys.includes(a.name));
  const call = wholeBody
    ? `${callee}($1::text::${fn.args[0].type})`
    : `${callee}(${used.map((a) => `${quoteIdent(a.name)} => _args.${quoteIdent(a.name)}`).join(", ")})`;
  const from = wholeBody || used.length === 0
    ? ""
    : ` from json_to_record($1::text::json) as _args(${used.map((a) => `${quoteIdent(a.name)} ${a.type}`).join(", ")})`;
  const isVoid = fn.return_type === "void";
  let query: string;
  if (fn.returns_set) {
    // Set-returning: the call must see _args, so it goes in a lateral join.
    query = from
      ? `select coalesce(json_agg(_f), '[]'::json) as body, count(*)::int as n${from} cross join lateral ${call} as _f`
      : `select coalesce(json_agg(_f), '[]'::json) as body, count(*)::int as n from ${call} as _f`;
  } else if (isVoid) {
    query = `select ${call} as body, 1 as n${from}`;
  } else {
    query = `select to_json(${call}) as body, 1 as n${from}`;
  }
  const param = wholeBody ? JSON.stringify(rawBody) : JSON.stringify(args);
  const headers: Record<string, string> = {};
  for (const [k, v] of req.headers) headers[k.toLowerCase()] = v;

  const wantsObject = (req.headers.get("accept") ?? "").includes("application/vnd.pgrst.object+json");
  const rows = await sql.begin(readOnly ? "read only" : "read write", async (tx) => {
    // The role's own settings (statement_timeout: anon 3 s, authenticated 8 s on Supabase)
    // apply to the transaction, as PostgREST applies impersonated role settings (`set role`
    // alone would not); then the function's own hoisted settings, which win.
    await tx`select (select count(set_config(kv.k, kv.v, true))
                     from pg_catalog.pg_roles r
                     cross join unnest(r.rolconfig) as c(setting)
                     cross join lateral (select substr(c.setting, 1, strpos(c.setting, '=') - 1) as k,
                                                substr(c.setting, strpos(c.setting, '=') + 1) as v) kv
                     join pg_catalog.pg_settings ps
                       on ps.name = kv.k
                      and (ps.context = 'user' or has_parameter_privilege(session_user, ps.name, 'set'))
                     where r.rolname = ${req.role} and kv.k <> 'default_transaction_isolation'),
                    (select count(set_config(f.k, f.v, true)) from json_each_text(${JSON.stringify(fn.settings)}::text::json) as f(k, v)),
                    set_config('role', ${req.role}, true),
                    set_config('request.jwt.claims', ${JSON.stringify(req.claims)}, true),
                    set_config('request.headers', ${JSON.stringify(headers)}, true),
                    set_config('request.cookies', '{}', true),
                    set_config('request.method', ${req.method}, true),
                    set_config('request.path', ${req.path}, true),
                    set_config('search_path', 'public, extensions', true)`;
    const result = await tx.unsafe<{ body: unknown; n: number }[]>(query, wholeBody || from ? [param] : []);
    // PostgREST checks a singular response inside the transaction and rolls it back when
    // the result is not one row: nothing the call wrote (an audit row, say) is kept.
    if (wantsObject && fn.returns_set && result[0].n !== 1) throw new NotSingular(result[0].n);
    return result;
  }).catch((err) => {
    if (err instanceof NotSingular) return err;
    throw err;
  });
  if (rows instanceof NotSingular) {
    return fail(406, restError("PGRST116", "Cannot coerce the result to a single JSON object", `The result contains ${rows.rows} rows`));
  }
  const { body, n } = rows[0];
  if (isVoid) return { status: 204 };
  if (fn.returns_set) {
    const list = body as unknown[];
    const out: Record<string, string> = { "Content-Range": n > 0 ? `0-${n - 1}/*` : "*/*" };
    if (/count=exact/.test(req.headers.get("prefer") ?? "")) {
      out["Content-Range"] = n > 0 ? `0-${n - 1}/${n}` : `*/0`;
    }
    if (wantsObject) {
      if (list.length !== 1) {
        return fail(406, restError("PGRST116", "Cannot coerce the result to a single JSON object",
          `The result contains ${list.length} rows`));
      }
      return { status: 200, body: list[0], headers: out };
    }
    return { status: 200, body: list, headers: out };
  }
  return { status: 200, body };
}

/** Thrown inside the transaction to roll it back when a singular response has not one row. */
class NotSingular extends Error {
  readonly rows: number;
  constructor(rows: number) {
    super("not one row");
    this.rows = rows;
  }
}
