/**
 * `/rest/v1/rpc/<fn>` with PostgREST's RPC semantics, over postgres.js connected as
 * `authenticator`: named arguments from the JSON body (POST) or the query string (GET);
 * the JWT's role and claims, request headers, method and path set transaction-locally;
 * PostgREST's return shapes, error JSON and status mapping. Only the `public` schema.
 */
import type postgres from "postgres";

/** A PostgREST-style error body. */
export interface RestError {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

/** A response: status, JSON body (or none) and extra headers. */
export interface RestResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface FunctionInfo {
  oid: number;
  volatility: "i" | "s" | "v";
  returns_set: boolean;
  return_type: string;
  return_kind: string;
  args: { name: string; type: string; has_default: boolean }[];
}

const SCHEMA = "public";

/** HTTP status for a SQLSTATE, per PostgREST's table (42501 depends on authentication). */
export function statusForSqlState(code: string, authenticated: boolean): number {
  if (/^PT\d{3}$/.test(code)) return Number(code.slice(2));
  const exact: Record<string, number> = {
    "23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400,
    "42883": 404, "42P01": 404, "42P17": 500,
  };
  if (code in exact) return exact[code];
  if (code === "42501") return authenticated ? 403 : 401;
  const prefix: [string, number][] = [
    ["08", 503], ["09", 500], ["0L", 403], ["0P", 403], ["25", 500], ["28", 403], ["2D", 500],
    ["38", 500], ["39", 500], ["3B", 500], ["40", 500], ["53", 503], ["54", 500], ["55", 500],
    ["57", 500], ["58", 500], ["F0", 500], ["HV", 500], ["P0", 500], ["XX", 500],
  ];
  for (const [p, status] of prefix) if (code.startsWith(p)) return status;
  return 400;
}

function restError(code: string, message: string, details: string | null = null, hint: string | null = null): RestError {
  return { code, message, details, hint };
}

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
           ), '[]'::json) as args
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
  } else {
    return fail(405, restError("PGRST117", `Unsupported HTTP method: ${req.method}`));
  }

  const keys = Object.keys(args);
  const candidates = await lookup(sql, req.name);
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

  try {
    const rows = await sql.begin(readOnly ? "read only" : "read write", async (tx) => {
      await tx`select set_config('role', ${req.role}, true),
                      set_config('request.jwt.claims', ${JSON.stringify(req.claims)}, true),
                      set_config('request.headers', ${JSON.stringify(headers)}, true),
                      set_config('request.cookies', '{}', true),
                      set_config('request.method', ${req.method}, true),
                      set_config('request.path', ${req.path}, true),
                      set_config('search_path', 'public, extensions', true)`;
      return await tx.unsafe<{ body: unknown; n: number }[]>(query, wholeBody || from ? [param] : []);
    });
    const { body, n } = rows[0];
    if (isVoid) return { status: 204 };
    const wantsObject = (req.headers.get("accept") ?? "").includes("application/vnd.pgrst.object+json");
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
  } catch (err) {
    const e = err as { code?: string; message?: string; detail?: string; hint?: string };
    if (typeof e.code !== "string" || !/^[0-9A-Z]{5}$/.test(e.code)) throw err;
    return fail(statusForSqlState(e.code, authenticated),
      restError(e.code, e.message ?? "", e.detail ?? null, e.hint ?? null));
  }
}
