/**
 * `/rest/v1/<table or view>`: PostgREST's table and view routes over postgres.js connected
 * as `authenticator`, in the steps PostgREST takes them (src/PostgREST/App.hs): read the
 * request (query.ts, preferences.ts, the payload here), plan it against the schema cache
 * (plan.ts), build the SQL (build.ts), run it in one transaction as the request's role
 * (transaction.ts) and shape the response (Content-Range, counts, Location,
 * Preference-Applied, singular objects; response.ts). RLS decides what each role reads and
 * writes. Not served: CSV and GeoJSON output, embedding through views; each answers 501
 * naming itself.
 */
import type postgres from "postgres";
import { databaseErrorResult, restError, type RestResult } from "../errors.ts";
import { mutationWhere, Params, readSql, relationSql } from "./build.ts";
import { planRead, type ReadNode, type Relation, tableNotFound, tableRelation } from "./plan.ts";
import { parsePreferences, preferenceApplied, type Preferences } from "./preferences.ts";
import { parseQuery, QueryError, quoteIdent as q, type QueryRequest } from "./query.ts";
import { contentRange, responseGucs } from "./response.ts";
import type { ColumnInfo, SchemaCache, TableInfo } from "./schema_cache.ts";
import { asRequest, type RequestContext, responseSettings, Rollback } from "./transaction.ts";

/** A request for a table or view. */
export interface TableRequest extends RequestContext {
  name: string;
  query: URLSearchParams;
  /** Raw body text (POST, PATCH). */
  body: string;
}

export interface TableOptions {
  /** The exposed schemas; the first is the default (config.toml [api] schemas). */
  schemas: string[];
  /** config.toml [api] max_rows (db-max-rows): caps every level of a read. */
  maxRows: number;
}

const IGNORED = new Set(["apikey"]);
const WRITE_METHODS = new Set(["POST", "PATCH", "DELETE", "PUT"]);

/** PostgREST's PGRST106 and the schema a request's profile header names. */
export function schemaOf(req: { method: string; headers: Headers }, schemas: string[]): string {
  const profile = req.headers.get(WRITE_METHODS.has(req.method) ? "content-profile" : "accept-profile");
  if (profile === null) return schemas[0];
  if (!schemas.includes(profile)) {
    throw new QueryError({ status: 406, body: restError("PGRST106", `Invalid schema: ${profile}`, null, `Only the following schemas are exposed: ${schemas.join(", ")}`) });
  }
  return profile;
}

/** Whether the client asked for one object (`Accept: application/vnd.pgrst.object+json`). */
export function wantsSingular(headers: Headers): boolean {
  return /application\/vnd\.pgrst\.object(\+json)?/.test(headers.get("accept") ?? "");
}

/** Refuses Accept types the stand-in does not produce. */
function checkAccept(headers: Headers): void {
  const accept = headers.get("accept");
  if (!accept) return;
  const types = accept.split(",").map((t) => t.split(";")[0].trim().toLowerCase());
  if (types.some((t) => t === "*/*" || t === "application/*" || t === "application/json" || t.startsWith("application/vnd.pgrst.object"))) return;
  if (types.some((t) => t === "text/csv" || t === "application/geo+json" || t.startsWith("application/vnd.pgrst.plan"))) {
    throw new QueryError({ status: 501, body: restError("PGRST000", `${types.join(", ")} output is not served by the local gateway; it needs hosted Supabase or supabase start.`) });
  }
  throw new QueryError({ status: 406, body: restError("PGRST107", `None of these media types are available: ${types.join(", ")}`) });
}

/** PostgREST's set_config step that counts inserted rows (SqlFragment.addConfigPgrstInserted). */
const INSERTED = (sign: "+" | "-") =>
  `set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) ${sign} 1)::text, true) <> '${sign === "+" ? "0" : "-1"}'`;

/** The rows a counted upsert inserted in this transaction. */
async function insertedRows(tx: postgres.TransactionSql): Promise<number> {
  const [row] = await tx.unsafe<{ n: number | null }[]>(`select nullif(current_setting('pgrst.inserted', true), '')::int as n`);
  return row.n ?? 0;
}

/** PGRST115: the body's primary key is not the URL's (or there is no such row in the body). */
function putMismatch(): QueryError {
  return new QueryError({ status: 400, body: restError("PGRST115", "Payload values do not match URL in primary key column(s)") });
}

/**
 * PUT's rules (PostgREST's ApiRequest and mutatePlan for MutationSingleUpsert): no
 * limit/offset (PGRST114), and filters that are exactly `eq` on every primary key column,
 * with no `or`/`and` (PGRST105, 405).
 */
function checkPut(request: QueryRequest, table: TableInfo): void {
  const root = request.levels.get("")!;
  if (root.limit !== null || root.offset !== 0) {
    throw new QueryError({ status: 400, body: restError("PGRST114", "limit/offset querystring parameters are not allowed for PUT") });
  }
  const fields = new Set(root.filters.map((f) => f.field.name));
  const exact = root.logic.length === 0 && table.pk.length > 0 && fields.size === table.pk.length && table.pk.every((c) => fields.has(c)) &&
    root.filters.every((f) => f.op === "eq" && !f.not && f.quantifier === undefined);
  if (!exact) throw new QueryError({ status: 405, body: restError("PGRST105", "Filters must include all and only primary key columns with 'eq' operators") });
}

/** Serves one table or view request. */
export async function serveTable(sql: postgres.Sql, cache: SchemaCache, req: TableRequest, opts: TableOptions): Promise<RestResult> {
  try {
    if (!["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT"].includes(req.method)) {
      return { status: 405, body: restError("PGRST117", `Unsupported HTTP method: ${req.method}`) };
    }
    const schema = schemaOf(req, opts.schemas);
    const prefs = parsePreferences(req.headers.get("prefer"));
    const { request } = parseQuery(req.query, { rpcRead: false, range: req.method === "GET" ? req.headers.get("range") : null, ignore: IGNORED });
    const payload = req.method === "POST" || req.method === "PATCH" || req.method === "PUT" ? parsePayload(req.body, request.columns) : null;
    if (req.method === "GET" || req.method === "HEAD") checkAccept(req.headers);
    const table = await cache.table(schema, req.name);
    if (!table) throw await tableNotFound(cache, schema, req.name);
    const relation = (await tableRelation(cache, schema, req.name))!;
    if (req.method === "GET" || req.method === "HEAD") return await read(sql, cache, req, relation, request, prefs, opts);
    return await write(sql, cache, req, table, relation, request, payload, prefs);
  } catch (err) {
    if (err instanceof QueryError) return err.result;
    const mapped = databaseErrorResult(err, req.role !== "anon");
    if (mapped) return mapped;
    throw err;
  }
}

/** Caps every embedded level at max_rows, as PostgREST's db-max-rows does. */
export function capLevels(n: ReadNode, maxRows: number): void {
  for (const item of n.items) {
    if (item.kind !== "embed") continue;
    const l = item.node.level;
    item.node.level = { ...l, limit: Math.min(l.limit ?? maxRows, maxRows) };
    capLevels(item.node, maxRows);
  }
}

/** The page of the root level: the Range header intersected with limit and offset, capped at max_rows. */
export function pageOf(request: QueryRequest, maxRows: number): { limit: number; offset: number } {
  const root = request.levels.get("")!;
  let lower = root.offset;
  let upper = root.limit === null ? Infinity : root.offset + root.limit - 1;
  if (request.range) {
    lower = Math.max(lower, request.range.from);
    upper = Math.min(upper, request.range.to ?? Infinity);
  }
  const size = upper === Infinity ? maxRows : Math.max(0, upper - lower + 1);
  return { limit: Math.min(size, maxRows), offset: lower };
}

/** A count of the unpaged rows (`Prefer: count=…`), inside the transaction. */
async function countRows(tx: postgres.TransactionSql, mode: Preferences["count"], fromWhere: string, params: never[], maxRows: number): Promise<number | null> {
  if (!mode) return null;
  const planned = async () => {
    const [plan] = await tx.unsafe<{ "QUERY PLAN": [{ Plan: { "Plan Rows": number } }] }[]>(`explain (format json) select 1 from ${fromWhere}`, params);
    return plan["QUERY PLAN"][0].Plan["Plan Rows"];
  };
  if (mode === "planned") return await planned();
  if (mode === "exact") {
    const [row] = await tx.unsafe<{ n: number }[]>(`select count(*)::bigint::text as n from ${fromWhere}`, params);
    return Number(row.n);
  }
  // estimated: exact up to max_rows, beyond it the larger of that and the planner's estimate.
  const [row] = await tx.unsafe<{ n: string }[]>(`select count(*)::text as n from (select 1 from ${fromWhere} limit ${maxRows + 1}) as pgrst_capped`, params);
  const exact = Number(row.n);
  return exact > maxRows ? Math.max(exact, await planned()) : exact;
}

/** Applies what a function or trigger set on the response (response.status / response.headers). */
function withGucs(result: RestResult, gucs: { status: string | null; headers: string | null }): RestResult {
  const response = responseGucs(gucs);
  if ("error" in response) return response.error;
  return { ...result, status: response.status ?? result.status, headers: { ...result.headers, ...response.headers } };
}

async function read(sql: postgres.Sql, cache: SchemaCache, req: TableRequest, relation: Relation, request: QueryRequest, prefs: Preferences, opts: TableOptions): Promise<RestResult> {
  const root = await planRead(cache, relation, request);
  capLevels(root, opts.maxRows);
  const page = pageOf(request, opts.maxRows);
  const singular = wantsSingular(req.headers);
  const p = new Params();
  const s = readSql(root, relationSql(relation), page, p);
  return await asRequest(sql, req, { readOnly: true }, async (tx) => {
    const [row] = await tx.unsafe<{ body: string; page: number }[]>(
      `with pgrst_source as (${s.page})
       select ${singular ? "(json_agg(pgrst_source)->0)::text" : "coalesce(json_agg(pgrst_source), '[]'::json)::text"} as body,
              count(*)::int as page
       from pgrst_source`,
      p.typed(tx),
    );
    if (singular && row.page !== 1) {
      return { status: 406, body: restError("PGRST116", "Cannot coerce the result to a single JSON object", `The result contains ${row.page} rows`) };
    }
    const total = await countRows(tx, prefs.count, s.fromWhere, p.typed(tx), opts.maxRows);
    const gucs = await responseSettings(tx);
    const headers: Record<string, string> = { "Content-Range": contentRange(page.offset, row.page, total) };
    const applied = preferenceApplied(prefs, { method: req.method, resolutionApplies: false });
    if (applied) headers["Preference-Applied"] = applied;
    let status = 200;
    if (total !== null) {
      if (page.offset > total) {
        return { status: 416, body: restError("PGRST103", "Requested range not satisfiable", `An offset of ${page.offset} was requested, but there are only ${total} rows.`), headers: { "Content-Range": `*/${total}` } };
      }
      if (row.page < total) status = 206;
    }
    return withGucs({ status, raw: req.method === "HEAD" ? undefined : row.body, headers }, gucs);
  });
}

/** A POST or PATCH body: the rows as JSON text (an array), and the columns they set. */
interface Payload {
  rows: string;
  count: number;
  columns: string[];
}

/** PostgREST's payload rules (src/PostgREST/ApiRequest/Payload.hs). */
function parsePayload(body: string, columns: string[] | null): Payload {
  let value: unknown;
  try {
    value = body.trim() === "" ? {} : JSON.parse(body);
  } catch {
    throw new QueryError({ status: 400, body: restError("PGRST102", "Empty or invalid json") });
  }
  const rows = Array.isArray(value) ? value : value !== null && typeof value === "object" ? [value] : [];
  if (rows.some((r) => r === null || typeof r !== "object" || Array.isArray(r))) {
    throw new QueryError({ status: 400, body: restError("PGRST102", "All object keys must match") });
  }
  if (columns) return { rows: JSON.stringify(rows), count: rows.length, columns };
  const keys = rows.length ? Object.keys(rows[0]) : [];
  const same = (r: object) => {
    const k = Object.keys(r);
    return k.length === keys.length && keys.every((x) => x in r);
  };
  if (!rows.every(same)) throw new QueryError({ status: 400, body: restError("PGRST102", "All object keys must match") });
  return { rows: JSON.stringify(rows), count: rows.length, columns: keys };
}

/** The body's rows as a recordset of the table's type; with missing=default, absent keys take the columns' defaults. */
function bodyRecords(table: TableInfo, relation: Relation, payload: Payload, prefs: Preferences, p: Params): string {
  const type = `null::${relationSql(relation)}`;
  const rows = p.bind(payload.rows);
  if (prefs.missing !== "default") return `json_populate_recordset(${type}, ${rows}::text::json)`;
  // A default is evaluated only for a row that lacks the key (a sequence is not advanced for nothing).
  const defaults = payload.columns
    .map((c) => table.columns.find((x) => x.name === c)!)
    .filter((c): c is ColumnInfo & { default: string } => c.default !== null)
    .map((c) => {
      const key = p.bind(c.name);
      return `case when pgrst_elem ? ${key}::text then '{}'::jsonb else jsonb_build_object(${key}::text, ${c.default}) end`;
    });
  if (defaults.length === 0) return `json_populate_recordset(${type}, ${rows}::text::json)`;
  return `jsonb_populate_recordset(${type}, (select coalesce(jsonb_agg(${defaults.join(" || ")} || pgrst_elem order by pgrst_ord), '[]'::jsonb)
                                                from jsonb_array_elements(${rows}::text::jsonb) with ordinality as pgrst_e(pgrst_elem, pgrst_ord)))`;
}

async function write(
  sql: postgres.Sql,
  cache: SchemaCache,
  req: TableRequest,
  table: TableInfo,
  relation: Relation,
  request: QueryRequest,
  payload: Payload | null,
  prefs: Preferences,
): Promise<RestResult> {
  for (const c of payload?.columns ?? []) {
    if (!relation.columns.has(c)) {
      throw new QueryError({ status: 400, body: restError("PGRST204", `Could not find the '${c}' column of '${relation.name}' in the schema cache`) });
    }
  }
  const conflict = req.method === "PUT" ? table.pk : request.onConflict ?? table.pk;
  for (const c of conflict) {
    if (!relation.columns.has(c)) throw new QueryError({ status: 400, body: restError("42703", `column ${relation.name}.${c} does not exist`) });
  }
  if (req.method === "PUT") checkPut(request, table);
  // The representation's select (filters belong to the mutation itself).
  const root = await planRead(cache, relation, request);
  const representation = prefs.return === "representation";
  const headersOnly = prefs.return === "headers-only" && req.method === "POST" && table.pk.length > 0;
  const singular = wantsSingular(req.headers);
  const p = new Params();
  const cols = payload?.columns ?? [];
  let mutation: string;
  // A merging upsert (and PUT) counts the rows it inserts, as PostgREST does, in the
  // transaction's `pgrst.inserted`: +1 for each row offered, -1 for each that updated instead.
  const counted = (req.method === "PUT" || (prefs.resolution === "merge-duplicates" && conflict.length > 0)) && cols.length > 0;
  if (req.method === "PUT" && cols.length === 0) throw putMismatch();
  if (req.method === "POST" || req.method === "PUT") {
    const merge = req.method === "PUT" || prefs.resolution === "merge-duplicates";
    const upsert = req.method === "PUT" || (prefs.resolution !== undefined && conflict.length > 0);
    const onConflict = !upsert ? "" : !merge || cols.length === 0
      ? ` on conflict (${conflict.map(q).join(", ")}) do nothing`
      : ` on conflict (${conflict.map(q).join(", ")}) do update set ${cols.map((c) => `${q(c)} = excluded.${q(c)}`).join(", ")}${counted ? ` where ${INSERTED("-")}` : ""}`;
    // PUT writes only the body's row whose primary key matches the URL's (the CASE keeps the count to those).
    const offered = req.method === "PUT"
      ? ` where case when ${mutationWhere(root, "pgrst_body", p)} then ${INSERTED("+")} else false end`
      : counted ? ` where ${INSERTED("+")}` : "";
    mutation = cols.length === 0
      ? `insert into ${relationSql(relation)} as pgrst_0 select from generate_series(1, ${payload!.count})${onConflict}`
      : `insert into ${relationSql(relation)} as pgrst_0 (${cols.map(q).join(", ")}) select ${cols.map((c) => `pgrst_body.${q(c)}`).join(", ")} from ${bodyRecords(table, relation, payload!, prefs, p)} as pgrst_body${offered}${onConflict}`;
  } else if (req.method === "PATCH") {
    mutation = cols.length === 0
      ? `select from ${relationSql(relation)} as pgrst_0 where false`
      : `update ${relationSql(relation)} as pgrst_0 set ${cols.map((c) => `${q(c)} = pgrst_body.${q(c)}`).join(", ")}
         from ${bodyRecords(table, relation, payload!, prefs, p)} as pgrst_body where ${mutationWhere(root, "pgrst_0", p)}`;
  } else {
    mutation = `delete from ${relationSql(relation)} as pgrst_0 where ${mutationWhere(root, "pgrst_0", p)}`;
  }
  const needsRows = representation || headersOnly;
  const readOnly = req.method === "PATCH" && cols.length === 0;

  return await asRequest(sql, req, { readOnly }, async (tx) => {
    let affected: number;
    let body: string | undefined;
    let location: string | undefined;
    if (needsRows && !readOnly) {
      const returning = representation ? "pgrst_0.*" : table.pk.map((c) => `pgrst_0.${q(c)}`).join(", ");
      const shaped = representation ? readSql({ ...root, level: { filters: [], logic: [], order: root.level.order, limit: null, offset: 0 }, nullFilters: [] }, "pgrst_mut", { limit: null, offset: 0 }, p) : null;
      const [row] = await tx.unsafe<{ body: string | null; n: number; pk: Record<string, unknown> | null }[]>(
        `with pgrst_mut as (${mutation} returning ${returning})
         select ${shaped ? `(select ${singular ? "(json_agg(pgrst_source)->0)::text" : "coalesce(json_agg(pgrst_source), '[]'::json)::text"} from (${shaped.page}) as pgrst_source)` : "null::text"} as body,
                (select count(*)::int from pgrst_mut) as n,
                (select row_to_json(pgrst_mut) from pgrst_mut limit 1) as pk`,
        p.typed(tx),
      );
      affected = row.n;
      body = row.body ?? undefined;
      if (headersOnly && affected === 1 && row.pk) {
        const qs = new URLSearchParams();
        for (const c of table.pk) qs.append(c, row.pk[c] === null ? "is.null" : `eq.${row.pk[c]}`);
        location = `/${relation.name}?${qs}`;
      }
    } else if (readOnly) {
      affected = 0;
      body = representation ? "[]" : undefined;
    } else {
      const result = await tx.unsafe(mutation, p.typed(tx));
      affected = result.count ?? 0;
    }
    if (req.method === "PUT" && affected !== 1) throw new Rollback<RestResult>(putMismatch().result);
    if (singular && affected !== 1) {
      throw new Rollback<RestResult>({ status: 406, body: restError("PGRST116", "Cannot coerce the result to a single JSON object", `The result contains ${affected} rows`) });
    }
    if (prefs.handling === "strict" && prefs.maxAffected !== undefined && (req.method === "PATCH" || req.method === "DELETE") && affected > prefs.maxAffected) {
      throw new Rollback<RestResult>({ status: 400, body: restError("PGRST124", "Query result exceeds max-affected preference constraint", `The query affects ${affected} rows`) });
    }
    const inserted = counted ? await insertedRows(tx) : affected;
    const gucs = await responseSettings(tx);
    const total = prefs.count === "exact" ? affected : null;
    const headers: Record<string, string> = {};
    // PUT answers no Content-Range (PostgREST's MutationSingleUpsert response).
    if (req.method !== "PUT") headers["Content-Range"] = req.method === "PATCH" ? contentRange(0, affected, total) : `*/${total ?? "*"}`;
    if (location) headers.Location = location;
    const applied = preferenceApplied(prefs, { method: req.method, resolutionApplies: req.method === "POST" && (request.onConflict !== null || table.pk.length > 0) });
    if (applied) headers["Preference-Applied"] = applied;
    let status: number;
    if (req.method === "POST") status = prefs.resolution === "merge-duplicates" && inserted <= 0 ? 200 : 201;
    else if (req.method === "PUT") status = representation ? (inserted > 0 ? 201 : 200) : 204;
    else status = representation ? 200 : 204;
    return withGucs({ status, raw: representation ? body : undefined, headers }, gucs);
  });
}

