/**
 * `/rest/v1/rpc/<fn>` with PostgREST's RPC semantics, over postgres.js connected as
 * `authenticator`: the function from the schema cache (postgrest/schema_cache.ts); named
 * arguments from the JSON body (POST) or the query string (GET; a VARIADIC argument may
 * repeat); the JWT's role and claims, request headers, method and path set
 * transaction-locally; PostgREST's return shapes (a composite with no row is an object of
 * nulls), db-max-rows on set-returning functions, `response.status` / `response.headers`
 * set by the function, error JSON, hints and status mapping. Only the `public` schema.
 */
import type postgres from "postgres";
import { databaseErrorResult, restError, type RestError, type RestResult } from "./errors.ts";
import type { FunctionInfo, SchemaCache } from "./postgrest/schema_cache.ts";
import { noRpcHint } from "./postgrest/fuzzy.ts";
import { parseQuery, QueryError, quoteIdent, shapeSql, type Shaping } from "./postgrest/query.ts";

export type { RestError, RestResult };

const SCHEMA = "public";

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

/** How the RPC route is configured (config.toml [api]). */
export interface RpcOptions {
  /** db-max-rows: at most this many rows of a set-returning function are answered. */
  maxRows: number;
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
export async function callRpc(sql: postgres.Sql, cache: SchemaCache, req: RpcRequest, opts: RpcOptions): Promise<RestResult> {
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
  } else if (req.method === "GET" || req.method === "HEAD") {
    // Filled from the query string below: a repeated key is a VARIADIC argument's values.
  } else if (["PUT", "PATCH", "DELETE"].includes(req.method)) {
    return fail(405, restError("PGRST101", `Cannot use the ${req.method} method on RPC`));
  } else {
    return fail(405, restError("PGRST117", `Unsupported HTTP method: ${req.method}`));
  }

  // The query string: shaping (select, filters, order, limit, offset, Range) and, for GET,
  // the arguments (parameters without an operator), as PostgREST partitions them.
  let shaping: Shaping | null;
  try {
    const parsed = parseQuery(req.query, { rpcRead: req.method !== "POST", range: req.headers.get("range"), ignore: RESERVED_QUERY });
    shaping = parsed.shaping;
    if (req.method !== "POST") args = parsed.args;
  } catch (err) {
    if (err instanceof QueryError) return err.result;
    throw err;
  }

  try {
    return await plan(sql, cache, req, args, rawBody, opts, shaping);
  } catch (err) {
    const mapped = databaseErrorResult(err, authenticated);
    if (mapped) return mapped;
    throw err;
  }
}

/** Finds the function, builds the call and runs it as the request's role (PostgREST's Plan, Query and Response). */
async function plan(
  sql: postgres.Sql,
  cache: SchemaCache,
  req: RpcRequest,
  args: Record<string, unknown>,
  rawBody: unknown,
  opts: RpcOptions,
  shaping: Shaping | null,
): Promise<RestResult> {
  const fail = (status: number, e: RestError): RestResult => ({ status, body: e });
  const keys = Object.keys(args);
  const candidates = await cache.functions(SCHEMA, req.name);
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
    const withParams = sorted.length === 0 ? " without parameters" : ` with parameter${sorted.length > 1 ? "s" : ""} ${sorted.join(", ")}`;
    const hint = noRpcHint(SCHEMA, req.name, keys, await cache.functionNames(SCHEMA), candidates.map((c) => c.args.map((a) => a.name)));
    return fail(404, restError("PGRST202",
      `Could not find the function ${SCHEMA}.${req.name}${sorted.length ? `(${sorted.join(", ")})` : " without parameters"} in the schema cache`,
      `Searched for the function ${SCHEMA}.${req.name}${withParams}${req.method === "POST" ? " or with a single unnamed json/jsonb parameter" : ""}, but no matches were found in the schema cache.`,
      hint));
  }

  const readOnly = req.method !== "POST" || fn.volatility !== "v";
  const callee = `${quoteIdent(SCHEMA)}.${quoteIdent(req.name)}`;
  const used = fn.args.filter((a) => a.name !== "" && keys.includes(a.name));
  // A GET's json/jsonb argument is JSON text in the query string: the value it denotes, not a string.
  if (req.method !== "POST") {
    for (const a of used) {
      if ((a.type === "json" || a.type === "jsonb") && typeof args[a.name] === "string") {
        try {
          args[a.name] = JSON.parse(args[a.name] as string);
        } catch {
          return fail(400, restError("22P02", `invalid input syntax for type ${a.type}`, `The value of ${a.name} is not JSON.`));
        }
      }
    }
  }
  // A VARIADIC argument is passed as the array it collects (a single value becomes one element).
  for (const a of used) if (a.variadic && !Array.isArray(args[a.name])) args[a.name] = [args[a.name]];
  const call = wholeBody
    ? `${callee}($1::text::${fn.args[0].type})`
    : `${callee}(${used.map((a) => `${a.variadic ? "variadic " : ""}${quoteIdent(a.name)} => _args.${quoteIdent(a.name)}`).join(", ")})`;
  const from = wholeBody || used.length === 0
    ? ""
    : ` from json_to_record($1::text::json) as _args(${used.map((a) => `${quoteIdent(a.name)} ${a.type}`).join(", ")})`;
  const isVoid = fn.return_type === "void";
  const exact = /count=exact/.test(req.headers.get("prefer") ?? "");
  // The call's rows: a lateral join when it must see _args.
  // Internal aliases are pgrst_-prefixed, as PostgREST's, so that no column of the result shadows them.
  const source = from ? `${from.slice(" from ".length)} cross join lateral ${call} as pgrst_call` : `${call} as pgrst_call`;
  let query: string;
  let shapeParams: string[] = [];
  const limit = Math.min(shaping?.limit ?? opts.maxRows, opts.maxRows);
  const offset = shaping?.offset ?? 0;
  // Paging (limit, offset, Range) applies to any set; a single value ignores the Range header.
  const paging = shaping !== null && shaping.select === "*" && shaping.filters.length === 0 && shaping.order.length === 0;
  if (paging && !fn.returns_set && !shapingFromQuery(req.query)) shaping = null;
  if (shaping && !(fn.returns_set && (fn.return_kind === "c" || paging))) {
    return fail(501, restError("PGRST000",
      "Filtering or shaping the result of a function that does not return a set of rows (setof a table or composite type) is not served by the local gateway yet; it needs hosted Supabase or supabase start."));
  }
  if (shaping && fn.return_kind === "c") {
    let shaped: ReturnType<typeof shapeSql>;
    try {
      shaped = shapeSql(shaping, fn.return_columns, req.name, wholeBody || from ? 2 : 1);
    } catch (err) {
      if (err instanceof QueryError) return err.result;
      throw err;
    }
    shapeParams = shaped.params;
    const orderBy = shaped.orderBy ? ` order by ${shaped.orderBy}` : "";
    query = `with pgrst_source as materialized (select pgrst_call.* from ${source})
             select coalesce((select json_agg(pgrst_page.*) from (select ${shaped.list} from pgrst_source where ${shaped.where}${orderBy}
                                                        limit ${limit} offset ${offset}) as pgrst_page), '[]'::json) as body,
                    ${exact ? `(select count(*) from pgrst_source where ${shaped.where})::int` : "null::int"} as n`;
  } else if (fn.returns_set) {
    // db-max-rows: at most maxRows rows are answered; `n` counts every row only for count=exact.
    query = `with pgrst_source as materialized (select pgrst_call as pgrst_value from ${source})
             select coalesce((select json_agg(pgrst_page.pgrst_value) from (select pgrst_value from pgrst_source limit ${limit} offset ${offset}) as pgrst_page), '[]'::json) as body,
                    ${exact ? "(select count(*) from pgrst_source)::int" : "null::int"} as n`;
  } else if (isVoid) {
    query = `select ${call} as body, 1 as n${from}`;
  } else if (fn.return_kind === "c") {
    // A composite with no row is an object whose fields are all null, as PostgREST answers it.
    query = `select row_to_json(pgrst_call.*) as body, 1 as n from ${source}`;
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
    const result = await tx.unsafe<{ body: unknown; n: number | null }[]>(query, [...(wholeBody || from ? [param] : []), ...shapeParams]);
    // PostgREST checks a singular response inside the transaction and rolls it back when
    // the result is not one row: nothing the call wrote (an audit row, say) is kept.
    const rowsOut = fn.returns_set ? (result[0].body as unknown[]).length : 1;
    if (wantsObject && fn.returns_set && rowsOut !== 1) throw new NotSingular(rowsOut);
    // What the function asked of the response (PostgREST's response.status / response.headers GUCs).
    const [gucs] = await tx<{ status: string | null; headers: string | null }[]>`
      select nullif(current_setting('response.status', true), '') as status,
             nullif(current_setting('response.headers', true), '') as headers`;
    return { ...result[0], gucs };
  }).catch((err) => {
    if (err instanceof NotSingular) return err;
    throw err;
  });
  if (rows instanceof NotSingular) {
    return fail(406, restError("PGRST116", "Cannot coerce the result to a single JSON object", `The result contains ${rows.rows} rows`));
  }
  const { body, n, gucs } = rows;
  const response = responseGucs(gucs);
  if ("error" in response) return response.error;
  const shaped = ((): RestResult => {
    if (isVoid) return { status: 204 };
    if (!fn.returns_set) return { status: 200, body };
    const list = body as unknown[];
    const total = exact ? String(n) : "*";
    const headers: Record<string, string> = { "Content-Range": list.length > 0 ? `${offset}-${offset + list.length - 1}/${total}` : `*/${total}` };
    return { status: 200, body: wantsObject ? list[0] : list, headers };
  })();
  return {
    ...shaped,
    status: response.status ?? shaped.status,
    headers: { ...shaped.headers, ...response.headers },
  };
}

/**
 * The response.status and response.headers a function set (PostgREST: an array of
 * single-key objects with string values; a later value of a header wins). Invalid values
 * are PostgREST's PGRST112 and PGRST111 (500).
 */
function responseGucs(gucs: { status: string | null; headers: string | null }): { status?: number; headers: Record<string, string> } | { error: RestResult } {
  const out: { status?: number; headers: Record<string, string> } = { headers: {} };
  if (gucs.status !== null) {
    const status = Number(gucs.status);
    // Deno's Response takes 200-599 only.
    if (!/^\d+$/.test(gucs.status) || status < 200 || status > 599) {
      return { error: { status: 500, body: restError("PGRST112", "Status code must be a positive integer") } };
    }
    out.status = status;
  }
  if (gucs.headers !== null) {
    const invalid = { error: { status: 500, body: restError("PGRST111", "response.headers guc must be a JSON array composed of objects with a single key and a string value") } };
    let parsed: unknown;
    try {
      parsed = JSON.parse(gucs.headers);
    } catch {
      return invalid;
    }
    if (!Array.isArray(parsed)) return invalid;
    for (const item of parsed) {
      const entries = item && typeof item === "object" && !Array.isArray(item) ? Object.entries(item) : [];
      if (entries.length !== 1 || typeof entries[0][1] !== "string" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(entries[0][0]) || /[\r\n\0]/.test(entries[0][1])) {
        return invalid;
      }
      out.headers[entries[0][0]] = entries[0][1] as string;
    }
  }
  return out;
}

/** Whether the query string itself (not just a Range header) asks for shaping. */
function shapingFromQuery(query: URLSearchParams): boolean {
  return ["select", "order", "limit", "offset", "or", "and"].some((k) => query.has(k));
}

/** Thrown inside the transaction to roll it back when a singular response has not one row. */
class NotSingular extends Error {
  readonly rows: number;
  constructor(rows: number) {
    super("not one row");
    this.rows = rows;
  }
}
