/**
 * `/rest/v1/rpc/<fn>` with PostgREST's RPC semantics, over postgres.js connected as
 * `authenticator`, in PostgREST's steps: the function from the schema cache
 * (postgrest/schema_cache.ts) with named arguments from the JSON body (POST) or the query
 * string (GET; a VARIADIC argument may repeat); the result's shaping (select with
 * embedding, filters, order, page) planned and built as a table's is (postgrest/plan.ts,
 * postgrest/build.ts) over the call's rows; the transaction as the request's role
 * (postgrest/transaction.ts); PostgREST's return shapes (a composite with no row is an
 * object of nulls), db-max-rows, `response.status` / `response.headers` set by the
 * function, error JSON, hints and status mapping.
 */
import type postgres from "postgres";
import { databaseErrorResult, restError, type RestError, type RestResult } from "./errors.ts";
import type { FunctionInfo, SchemaCache } from "./postgrest/schema_cache.ts";
import { noRpcHint } from "./postgrest/fuzzy.ts";
import { parseQuery, QueryError, quoteIdent, type QueryRequest } from "./postgrest/query.ts";
import { Params, readSql } from "./postgrest/build.ts";
import { planRead, type Relation } from "./postgrest/plan.ts";
import { contentRange, responseGucs } from "./postgrest/response.ts";
import { capLevels, pageOf, schemaOf, wantsSingular } from "./postgrest/tables.ts";
import { asRequest, responseSettings, Rollback } from "./postgrest/transaction.ts";

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
  try {
    schemaOf({ method: req.method === "POST" ? "POST" : "GET", headers: req.headers }, [SCHEMA]);
    const parsed = parseQuery(req.query, { rpcRead: req.method !== "POST", range: req.method === "GET" ? req.headers.get("range") : null, ignore: RESERVED_QUERY });
    if (req.method !== "POST") args = parsed.args;
    return await plan(sql, cache, req, args, rawBody, opts, parsed.request);
  } catch (err) {
    if (err instanceof QueryError) return err.result;
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
  request: QueryRequest,
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
  const p = new Params();
  const argsParam = wholeBody || used.length > 0 ? p.bind(wholeBody ? JSON.stringify(rawBody) : JSON.stringify(args)) : "";
  const call = wholeBody
    ? `${callee}(${argsParam}::text::${fn.args[0].type})`
    : `${callee}(${used.map((a) => `${a.variadic ? "variadic " : ""}${quoteIdent(a.name)} => _args.${quoteIdent(a.name)}`).join(", ")})`;
  const from = wholeBody || used.length === 0
    ? ""
    : ` from json_to_record(${argsParam}::text::json) as _args(${used.map((a) => `${quoteIdent(a.name)} ${a.type}`).join(", ")})`;
  // The call's rows: a lateral join when it must see _args. Internal aliases are
  // pgrst_-prefixed, as PostgREST's, so that no column of the result shadows them.
  const source = from ? `${from.slice(" from ".length)} cross join lateral ${call} as pgrst_call` : `${call} as pgrst_call`;
  const isVoid = fn.return_type === "void";
  const composite = fn.return_kind === "c";
  const exact = /count=exact/.test(req.headers.get("prefer") ?? "");
  const singular = wantsSingular(req.headers);
  // Shaping applies to rows (a set, or one composite value); scalars take paging only
  // (PostgREST names a scalar's column pgrst_scalar, which no client filters on).
  const root = request.levels.get("")!;
  const shaped = request.selected || root.filters.length > 0 || root.logic.length > 0 || root.order.length > 0 || request.levels.size > 1;
  if (shaped && !composite) {
    return fail(501, restError("PGRST000",
      "Filtering or shaping the result of a function that returns scalar values is not served by the local gateway; it needs hosted Supabase or supabase start."));
  }
  const page = fn.returns_set ? pageOf(request, opts.maxRows) : { limit: null, offset: 0 };
  let query: string;
  if (composite || fn.returns_set) {
    // The rows as a relation named for the function; a function returning a table's type shares its foreign keys.
    const table = composite ? await cache.table(SCHEMA, fn.return_type.replace(/^public\./, "")) : undefined;
    const relation: Relation = {
      schema: SCHEMA,
      name: req.name,
      columns: new Map(!composite ? [[req.name, fn.return_type]] : table ? table.columns.map((c) => [c.name, c.type]) : fn.return_columns.map((c) => [c, ""])),
      ...(table ? { table: table.name } : {}),
    };
    const scalarRequest: QueryRequest = composite ? request : { ...request, select: [{ kind: "field", field: { name: req.name, path: [] }, alias: "pgrst_value" }] };
    const node = await planRead(cache, relation, scalarRequest);
    capLevels(node, opts.maxRows);
    const s = readSql(node, "pgrst_source", page, p);
    const value = composite ? "pgrst_page" : "pgrst_page.pgrst_value";
    query = `with pgrst_source as materialized (select ${composite ? "pgrst_call.*" : `pgrst_call as ${quoteIdent(req.name)}`} from ${source}),
                  pgrst_page as (${s.page})
             select ${fn.returns_set && !singular ? `coalesce(json_agg(${value}), '[]'::json)::text` : `(json_agg(${value})->0)::text`} as body,
                    count(*)::int as n,
                    ${exact ? `(select count(*) from ${s.fromWhere})::int` : "null::int"} as total
             from pgrst_page`;
  } else if (isVoid) {
    query = `select ${call}::text as body, 1 as n, null::int as total${from}`;
  } else {
    query = `select to_json(${call})::text as body, 1 as n, null::int as total${from}`;
  }
  const rows: RestResult | { body: string | null; n: number; total: number | null; gucs: { status: string | null; headers: string | null } } = await asRequest(sql, req, { readOnly, settings: fn.settings }, async (tx) => {
    const [result] = await tx.unsafe<{ body: string | null; n: number; total: number | null }[]>(query, p.typed(tx));
    // PostgREST checks a singular response inside the transaction and rolls it back when
    // the result is not one row: nothing the call wrote (an audit row, say) is kept.
    if (singular && fn.returns_set && result.n !== 1) {
      throw new Rollback<RestResult>({ status: 406, body: restError("PGRST116", "Cannot coerce the result to a single JSON object", `The result contains ${result.n} rows`) });
    }
    return { ...result, gucs: await responseSettings(tx) };
  });
  if (!("gucs" in rows)) return rows;
  const { body, n, total, gucs } = rows;
  const response = responseGucs(gucs);
  if ("error" in response) return response.error;
  const result = ((): RestResult => {
    if (isVoid) return { status: 204 };
    if (!fn.returns_set) return { status: 200, raw: body ?? "null" };
    return { status: 200, raw: body!, headers: { "Content-Range": contentRange(page.offset, n, total) } };
  })();
  return {
    ...result,
    status: response.status ?? result.status,
    headers: { ...result.headers, ...response.headers },
  };
}

