/**
 * PostgREST's query grammar (src/PostgREST/ApiRequest/QueryParams.hs), as far as the
 * stand-in serves it on RPC results: `select` (columns, `alias:column`, `column::type`,
 * `*`), horizontal filters `column=[not.]op.value` with eq, neq, gt, gte, lt, lte, like,
 * ilike, match, imatch, is, isdistinct and in, `order` (asc, desc, nullsfirst, nullslast),
 * `limit`, `offset` and the `Range` header. Reserved keys are PostgREST's; on a GET RPC a
 * parameter whose value carries no operator is a function argument, as PostgREST
 * partitions them. What PostgREST has and the stand-in does not yet (embedding, JSON
 * paths, `or` / `and`, the array, range and full-text operators) answers 501 naming it.
 */
import { restError, type RestResult } from "../errors.ts";

/** A filter: column, negated or not, operator and value (a list for `in`). */
export interface Filter {
  column: string;
  not: boolean;
  op: string;
  value: string | string[];
}

/** One output column of `select`. */
export interface SelectItem {
  column: string;
  alias?: string;
  cast?: string;
}

/** How the result is shaped. */
export interface Shaping {
  select: SelectItem[] | "*";
  filters: Filter[];
  order: { column: string; desc: boolean; nulls?: "first" | "last" }[];
  limit: number | null;
  offset: number;
}

/** The operators the stand-in serves, and those PostgREST has that it does not yet. */
const SERVED = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "is", "isdistinct", "in"];
const NOT_YET = ["cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj", "fts", "plfts", "phfts", "wfts"];
/** PostgREST's reserved keys, and those that may end an embedded path. */
const RESERVED = new Set(["select", "columns", "on_conflict"]);
const RESERVED_EMBEDDABLE = new Set(["order", "limit", "offset", "and", "or"]);
/** Column names and casts the stand-in takes: identifiers (values are always bound parameters). */
const IDENT = /^[A-Za-z_][A-Za-z0-9_$]*$/;
const CAST = /^[A-Za-z_][A-Za-z0-9_]*(\[\])?$/;

class QueryError extends Error {
  constructor(readonly result: RestResult) {
    super("query");
  }
}

const parseError = (what: string, given: string, details: string) =>
  new QueryError({ status: 400, body: restError("PGRST100", `failed to parse ${what} (${given})`, details) });
const notYet = (what: string) =>
  new QueryError({
    status: 501,
    body: restError("PGRST000", `${what} is not served by the local gateway yet; it needs hosted Supabase or supabase start.`),
  });

/** Whether a value is `[not.]op.…` with an operator PostgREST knows. */
export function hasOperator(value: string): boolean {
  const v = value.startsWith("not.") ? value.slice(4) : value;
  const op = v.split(".")[0];
  return v.includes(".") && (SERVED.includes(op) || NOT_YET.includes(op)) ||
    /^(eq|neq|gt|gte|lt|lte|like|ilike|match|imatch)\((any|all)\)\./.test(v);
}

function parseFilter(column: string, raw: string): Filter {
  if (!IDENT.test(column)) {
    if (column.includes("->")) throw notYet("Filtering on a JSON path");
    if (column.includes(".")) throw notYet("Filtering an embedded resource");
    throw parseError("filter", `${column}=${raw}`, "unexpected column name");
  }
  let v = raw;
  let not = false;
  if (v.startsWith("not.")) {
    not = true;
    v = v.slice(4);
  }
  const dot = v.indexOf(".");
  const op = dot < 0 ? v : v.slice(0, dot);
  const value = dot < 0 ? "" : v.slice(dot + 1);
  if (/^\w+\((any|all)\)$/.test(op)) throw notYet(`The ${op} operator modifier`);
  if (NOT_YET.includes(op)) throw notYet(`The ${op} operator`);
  if (!SERVED.includes(op) || dot < 0) {
    throw parseError("filter", raw, `unexpected "${raw.slice(0, 1)}" expecting "not" or operator (eq, gt, ...)`);
  }
  if (op === "is") {
    if (!/^(null|not_null|true|false|unknown)$/i.test(value)) {
      throw parseError("filter", raw, `unexpected "${value.slice(0, 1)}" expecting null or trilean value (unknown, true, false)`);
    }
    return { column, not, op, value: value.toLowerCase() };
  }
  if (op === "in") {
    const m = /^\((.*)\)$/s.exec(value);
    if (!m) throw parseError("filter", raw, `unexpected "${value.slice(0, 1)}" expecting "("`);
    return { column, not, op, value: splitList(m[1]) };
  }
  return { column, not, op, value };
}

/** `a,"b,c",d` → ["a", "b,c", "d"] (PostgREST's list values: double quotes protect commas). */
function splitList(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === "\\" && i + 1 < s.length) cur += s[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (s.length > 0) out.push(cur);
  return out;
}

function parseSelect(raw: string): SelectItem[] | "*" {
  if (raw.trim() === "" || raw.trim() === "*") return "*";
  if (/[()!]/.test(raw)) throw notYet("Embedding resources in select");
  if (raw.includes("->")) throw notYet("JSON paths in select");
  const items: SelectItem[] = [];
  for (const part of raw.split(",")) {
    const m = /^(?:([A-Za-z_][A-Za-z0-9_$]*):)?([A-Za-z_][A-Za-z0-9_$]*|\*)(?:::([A-Za-z_][A-Za-z0-9_]*(?:\[\])?))?$/.exec(part.trim());
    if (!m) throw parseError("select parameter", raw, `unexpected "${part.trim().slice(0, 1)}" expecting field name (* or [a..z0..9_$])`);
    if (m[2] === "*") {
      if (m[1] || m[3]) throw parseError("select parameter", raw, "a star takes no alias or cast");
      return "*";
    }
    items.push({ column: m[2], ...(m[1] ? { alias: m[1] } : {}), ...(m[3] ? { cast: m[3] } : {}) });
  }
  return items;
}

function parseOrder(raw: string): Shaping["order"] {
  const out: Shaping["order"] = [];
  for (const term of raw.split(",")) {
    const [column, ...mods] = term.trim().split(".");
    if (column.includes("->")) throw notYet("Ordering by a JSON path");
    if (!IDENT.test(column) || mods.length > 2) throw parseError("order", raw, `unexpected "${term.slice(0, 1)}" expecting field name`);
    let desc = false;
    let nulls: "first" | "last" | undefined;
    for (const m of mods) {
      if (m === "asc" || m === "desc") desc = m === "desc";
      else if (m === "nullsfirst" || m === "nullslast") nulls = m === "nullsfirst" ? "first" : "last";
      else throw parseError("order", raw, `unexpected "${m.slice(0, 1)}" expecting "asc", "desc", "nullsfirst" or "nullslast"`);
    }
    out.push({ column, desc, ...(nulls ? { nulls } : {}) });
  }
  return out;
}

/** A non-negative integer, or null (PostgREST ignores a limit or offset it cannot read). */
const count = (v: string | null) => (v !== null && /^\d{1,15}$/.test(v) ? Number(v) : null);

/**
 * Splits a request's query into shaping and (for a GET RPC) function arguments; throws a
 * QueryError with PostgREST's answer when the query cannot be used.
 */
export function parseQuery(query: URLSearchParams, opts: { rpcRead: boolean; range: string | null; ignore: Set<string> }): { shaping: Shaping | null; args: Record<string, string | string[]> } {
  const shaping: Shaping = { select: "*", filters: [], order: [], limit: null, offset: 0 };
  let shaped = false;
  const args: Record<string, string | string[]> = {};
  for (const key of new Set(query.keys())) {
    if (opts.ignore.has(key)) continue;
    const values = query.getAll(key);
    const value = values[values.length - 1];
    const last = key.split(".").pop()!;
    if (RESERVED.has(key) || RESERVED_EMBEDDABLE.has(last)) {
      if (key !== last) throw notYet(`${last} on an embedded resource`);
      shaped = true;
      if (key === "select") shaping.select = parseSelect(value);
      else if (key === "order") shaping.order = parseOrder(value);
      else if (key === "limit") shaping.limit = count(value);
      else if (key === "offset") shaping.offset = count(value) ?? 0;
      else if (key === "or" || key === "and") throw notYet(`The ${key} filter`);
      else throw notYet(`The ${key} parameter`);
      continue;
    }
    // A GET RPC's parameters without an operator are the function's arguments.
    if (opts.rpcRead && !key.includes(".") && !values.some(hasOperator)) {
      args[key] = values.length > 1 ? values : value;
      continue;
    }
    shaped = true;
    for (const v of values) shaping.filters.push(parseFilter(key, v));
  }
  const range = opts.range ? /^(?:items=)?(\d{1,15})-(\d{1,15})?$/.exec(opts.range.trim()) : null;
  if (range) {
    shaped = true;
    const from = Number(range[1]);
    shaping.offset = from;
    if (range[2] !== undefined && Number(range[2]) >= from) {
      const size = Number(range[2]) - from + 1;
      shaping.limit = shaping.limit === null ? size : Math.min(shaping.limit, size);
    }
  }
  return { shaping: shaped ? shaping : null, args };
}

export { QueryError };

/** A quoted SQL identifier (names come only from the schema cache). */
export function quoteIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}
const q = quoteIdent;

/**
 * The SQL of a shaped read of `_src` (a relation with `columns`): output list, WHERE and
 * ORDER BY clauses with values as parameters numbered from `firstParam`. Unknown columns
 * are PostgreSQL's 42703 (400), as PostgREST's generated query would get.
 */
export function shapeSql(shaping: Shaping, columns: string[], relation: string, firstParam: number): { list: string; where: string; orderBy: string; params: string[] } {
  const known = (c: string) => {
    if (!columns.includes(c)) {
      throw new QueryError({ status: 400, body: restError("42703", `column ${relation}.${c} does not exist`) });
    }
    return q(c);
  };
  const params: string[] = [];
  const bind = (v: string) => {
    params.push(v);
    return `$${firstParam + params.length - 1}`;
  };
  const list = shaping.select === "*"
    ? "*"
    : shaping.select.map((s) => `${known(s.column)}${s.cast ? `::${s.cast}` : ""} as ${q(s.alias ?? s.column)}`).join(", ");
  const conds = shaping.filters.map((f) => {
    const col = known(f.column);
    let expr: string;
    const v = f.value as string;
    switch (f.op) {
      case "eq": expr = `${col} = ${bind(v)}`; break;
      case "neq": expr = `${col} <> ${bind(v)}`; break;
      case "gt": expr = `${col} > ${bind(v)}`; break;
      case "gte": expr = `${col} >= ${bind(v)}`; break;
      case "lt": expr = `${col} < ${bind(v)}`; break;
      case "lte": expr = `${col} <= ${bind(v)}`; break;
      case "like": expr = `${col} like ${bind(v.replaceAll("*", "%"))}`; break;
      case "ilike": expr = `${col} ilike ${bind(v.replaceAll("*", "%"))}`; break;
      case "match": expr = `${col} ~ ${bind(v)}`; break;
      case "imatch": expr = `${col} ~* ${bind(v)}`; break;
      case "isdistinct": expr = `${col} is distinct from ${bind(v)}`; break;
      case "is": expr = `${col} is ${v === "not_null" ? "not null" : v}`; break;
      case "in": {
        const list = f.value as string[];
        expr = list.length === 0 ? "false" : `${col} in (${list.map(bind).join(", ")})`;
        break;
      }
      default: throw notYet(`The ${f.op} operator`);
    }
    return f.not ? `not (${expr})` : expr;
  });
  const orderBy = shaping.order.map((o) => `${known(o.column)} ${o.desc ? "desc" : "asc"}${o.nulls ? ` nulls ${o.nulls}` : ""}`).join(", ");
  return { list, where: conds.length ? conds.join(" and ") : "true", orderBy, params };
}
