/**
 * PostgREST's query grammar (src/PostgREST/ApiRequest/QueryParams.hs), read into a tree
 * that plan.ts resolves against the schema cache:
 *
 * - `select`: `*`, columns (`"quoted name"` too), `alias:column`, `column::type`, JSON
 *   paths (`data->a->>b`), embedded resources `alias:target!hint!inner(select)` and spreads
 *   `...target(select)`;
 * - horizontal filters `[path.]field=[not.]op[(modifier)].value` with every operator
 *   PostgREST has (eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, in, is,
 *   isdistinct, cs, cd, ov, sl, sr, nxr, nxl, adj, fts, plfts, phfts, wfts; `(any)` and
 *   `(all)` on the comparison and pattern operators; `(config)` on full-text ones);
 * - logic trees `[path.][not.]or=(…)` / `and=(…)`, nested;
 * - `[path.]order=field[.asc|.desc][.nullsfirst|.nullslast],embed(field)…`,
 *   `[path.]limit`, `[path.]offset` and the `Range` header;
 * - `columns` and `on_conflict` for writes.
 *
 * A `path` is the embedded resource's alias or name, dotted for deeper levels. On a GET
 * RPC a parameter whose value carries no operator is a function argument, as PostgREST
 * partitions them. Grammar errors are PostgREST's PGRST100 (400).
 */
import { restError, type RestResult } from "../errors.ts";

/** A JSON path step: `->key` (json) or `->>key` (text). */
export interface JsonStep {
  arrow: "->" | "->>";
  key: string;
}

/** A column with an optional JSON path. */
export interface Field {
  name: string;
  path: JsonStep[];
}

/** One item of `select`. */
export type SelectItem =
  | { kind: "star" }
  | { kind: "field"; field: Field; alias?: string; cast?: string }
  | { kind: "embed"; target: string; alias?: string; hint?: string; join?: "inner" | "left"; spread: boolean; select: SelectItem[] };

/** A horizontal filter. */
export interface Filter {
  field: Field;
  not: boolean;
  op: string;
  /** `(any)` / `(all)` on comparison and pattern operators. */
  quantifier?: "any" | "all";
  /** The text search configuration of fts, plfts, phfts, wfts. */
  config?: string;
  /** The value; a list for `in` and for a quantified operator. */
  value: string | string[];
}

/** A logic tree: a filter, or `and` / `or` of trees. */
export type Logic =
  | { kind: "filter"; filter: Filter }
  | { kind: "tree"; op: "and" | "or"; not: boolean; children: Logic[] };

/** One `order` term: a field of the resource, or of a to-one embedded one (`embed(field)`). */
export interface OrderTerm {
  relation?: string;
  field: Field;
  desc: boolean;
  nulls?: "first" | "last";
}

/** What the query string asks of one resource level (the root is path ""). */
export interface Level {
  filters: Filter[];
  logic: Logic[];
  order: OrderTerm[];
  limit: number | null;
  offset: number;
}

/** The parsed query. */
export interface QueryRequest {
  select: SelectItem[];
  /** Whether `select` was given (an RPC's result without it is answered as it comes). */
  selected: boolean;
  /** Per embedded path ("" for the root). */
  levels: Map<string, Level>;
  columns: string[] | null;
  onConflict: string[] | null;
  /** The Range header, when it was given and readable. */
  range: { from: number; to: number | null } | null;
}

const OPERATORS = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in", "is", "isdistinct",
  "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj", "fts", "plfts", "phfts", "wfts"];
const QUANTIFIABLE = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"];
const FTS = ["fts", "plfts", "phfts", "wfts"];
/** Keys that are never filters, and those that may also end an embedded path. */
const RESERVED = new Set(["select", "columns", "on_conflict"]);
const RESERVED_EMBEDDABLE = new Set(["order", "limit", "offset", "and", "or"]);
const CAST = /^[A-Za-z_][A-Za-z0-9_ ]*(\[\])?$/;

export class QueryError extends Error {
  constructor(readonly result: RestResult) {
    super("query");
  }
}

/** PostgREST's PGRST100: `failed to parse <what> (<given>)` with the parser's reason. */
export const parseError = (what: string, given: string, details: string) =>
  new QueryError({ status: 400, body: restError("PGRST100", `failed to parse ${what} (${given})`, details) });

/** Whether a value is `[not.]op[(…)].…` with an operator PostgREST knows (how a GET RPC tells filters from arguments). */
export function hasOperator(value: string): boolean {
  const v = value.startsWith("not.") ? value.slice(4) : value;
  const m = /^([a-z]+)(\([^)]*\))?\./.exec(v);
  return m !== null && OPERATORS.includes(m[1]);
}

/** Splits on top-level commas: not inside parentheses or double quotes (a backslash escapes inside quotes). */
function splitTop(s: string, what: string, whole: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === "(") depth++;
    else if (c === ")") {
      depth--;
      if (depth < 0) throw parseError(what, whole, `unexpected ")" expecting field name`);
    } else if (c === "," && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted) throw parseError(what, whole, `unexpected end of input expecting '"'`);
  if (depth !== 0) throw parseError(what, whole, `unexpected end of input expecting ")"`);
  out.push(s.slice(start));
  return out;
}

/**
 * PostgREST's list elements (`in.(…)`, `eq(any).{…}`): each element is a double-quoted
 * string (a backslash escapes; the closing quote must end the element) or raw text up to
 * the next comma; a quote that does not close as one falls back to raw text, quote and all.
 */
function splitList(s: string): string[] {
  if (s === "") return [];
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let value: string | null = null;
    if (s[i] === '"') {
      let j = i + 1;
      let cur = "";
      while (j < s.length && s[j] !== '"') {
        if (s[j] === "\\" && j + 1 < s.length) j++;
        cur += s[j++];
      }
      if (j < s.length && (j + 1 === s.length || s[j + 1] === ",")) {
        value = cur;
        i = j + 1;
      }
    }
    if (value === null) {
      const comma = s.indexOf(",", i);
      const end = comma < 0 ? s.length : comma;
      value = s.slice(i, end);
      i = end;
    }
    out.push(value);
    if (i >= s.length) return out;
    i++; // the comma
  }
}

/** An identifier: plain, or double-quoted (which may hold any character). */
function unquote(name: string, what: string, whole: string): string {
  const n = name.trim();
  if (n.startsWith('"')) {
    if (n.length < 2 || !n.endsWith('"')) throw parseError(what, whole, `unexpected end of input expecting '"'`);
    return n.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  if (!/^[^\s,.:()!>"'-][^\s,.:()!>"']*$/.test(n) || n.includes("->")) {
    throw parseError(what, whole, `unexpected "${n.slice(0, 1) || " "}" expecting field name (* or [a..z0..9_$])`);
  }
  return n;
}

/** `column->a->>b` (or `"col"->0`) as a field. */
export function parseField(raw: string, what: string, whole: string): Field {
  const m = /^("(?:[^"\\]|\\.)*"|[^-]+|[^>]*?)((?:->>?(?:"(?:[^"\\]|\\.)*"|[^-]+?))*)$/s.exec(raw.trim());
  if (!m) throw parseError(what, whole, `unexpected "${raw.slice(0, 1)}" expecting field name (* or [a..z0..9_$])`);
  const name = unquote(m[1], what, whole);
  const path: JsonStep[] = [];
  const steps = m[2].matchAll(/(->>?)("(?:[^"\\]|\\.)*"|[^-]+)/g);
  for (const s of steps) {
    const key = s[2].startsWith('"') ? s[2].slice(1, -1).replace(/\\(.)/g, "$1") : s[2];
    if (key === "") throw parseError(what, whole, "unexpected end of input expecting a JSON key");
    path.push({ arrow: s[1] as "->" | "->>", key });
  }
  // Only the last step may be ->> (text has no further path).
  if (path.slice(0, -1).some((s) => s.arrow === "->>")) {
    throw parseError(what, whole, `unexpected "->" after "->>": a text value has no further path`);
  }
  return { name, path };
}

function parseSelectItems(raw: string, whole: string): SelectItem[] {
  if (raw.trim() === "") return [{ kind: "star" }];
  return splitTop(raw, "select parameter", whole).map((part) => parseSelectItem(part.trim(), whole));
}

function parseSelectItem(part: string, whole: string): SelectItem {
  if (part === "*") return { kind: "star" };
  if (part === "") throw parseError("select parameter", whole, `unexpected "," expecting field name (* or [a..z0..9_$])`);
  const paren = part.indexOf("(");
  if (paren >= 0 && part.endsWith(")") && !part.slice(0, paren).includes("->")) {
    let head = part.slice(0, paren);
    const inner = part.slice(paren + 1, -1);
    const spread = head.startsWith("...");
    if (spread) head = head.slice(3);
    let alias: string | undefined;
    const colon = head.search(/:(?!:)/);
    if (colon > 0 && !spread) {
      alias = unquote(head.slice(0, colon), "select parameter", whole);
      head = head.slice(colon + 1);
    }
    const [targetRaw, ...marks] = head.split("!");
    const target = unquote(targetRaw, "select parameter", whole);
    if (target === "count" || /^(sum|avg|max|min)$/.test(target) && inner === "") {
      throw new QueryError({ status: 400, body: restError("PGRST123", "Use of aggregate functions is not allowed") });
    }
    let hint: string | undefined;
    let join: "inner" | "left" | undefined;
    for (const mark of marks) {
      if (mark === "inner" || mark === "left") join = mark;
      else if (hint === undefined && mark !== "") hint = unquote(mark, "select parameter", whole);
      else throw parseError("select parameter", whole, `unexpected "${mark.slice(0, 1) || "!"}" expecting "inner", "left" or a hint`);
    }
    return { kind: "embed", target, spread, select: parseSelectItems(inner, whole), ...(alias ? { alias } : {}), ...(hint ? { hint } : {}), ...(join ? { join } : {}) };
  }
  if (part.startsWith("...")) throw parseError("select parameter", whole, `unexpected "." expecting an embedded resource after "..."`);
  // alias:field->path::cast, or an aggregate (field.sum()).
  if (/\.(count|sum|avg|max|min)\(\)/.test(part) || /^count\(\)/.test(part.replace(/^[^:]*:/, ""))) {
    throw new QueryError({ status: 400, body: restError("PGRST123", "Use of aggregate functions is not allowed") });
  }
  let rest = part;
  let alias: string | undefined;
  const colon = /^("(?:[^"\\]|\\.)*"|[^:"]+):(?!:)/.exec(rest);
  if (colon) {
    alias = unquote(colon[1], "select parameter", whole);
    rest = rest.slice(colon[0].length);
  }
  let cast: string | undefined;
  const castAt = rest.lastIndexOf("::");
  if (castAt >= 0) {
    cast = rest.slice(castAt + 2).trim();
    rest = rest.slice(0, castAt);
    if (!CAST.test(cast)) throw parseError("select parameter", whole, `unexpected "${cast.slice(0, 1)}" expecting a type name`);
  }
  const field = parseField(rest, "select parameter", whole);
  return { kind: "field", field, ...(alias ? { alias } : {}), ...(cast ? { cast } : {}) };
}

/** `[not.]op[(modifier)].value` for `field`. */
function parseFilter(field: Field, raw: string, whole: string): Filter {
  let v = raw;
  let not = false;
  if (v.startsWith("not.")) {
    not = true;
    v = v.slice(4);
  }
  const m = /^([a-z]+)(?:\(([^)]*)\))?\.(.*)$/s.exec(v);
  if (!m || !OPERATORS.includes(m[1])) {
    throw parseError("filter", whole, `unexpected "${v.slice(0, 1) || " "}" expecting "not" or operator (eq, gt, ...)`);
  }
  const [, op, modifier, value] = m;
  const filter: Filter = { field, not, op, value };
  if (modifier !== undefined) {
    if (FTS.includes(op)) {
      if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(modifier)) throw parseError("filter", whole, `unexpected "${modifier.slice(0, 1)}" expecting a text search configuration`);
      filter.config = modifier;
    } else if (QUANTIFIABLE.includes(op) && (modifier === "any" || modifier === "all")) {
      filter.quantifier = modifier;
      const list = /^\{(.*)\}$/s.exec(value);
      if (!list) throw parseError("filter", whole, `unexpected "${value.slice(0, 1) || " "}" expecting "{"`);
      filter.value = splitList(list[1]);
    } else {
      throw parseError("filter", whole, `unexpected "(" expecting "." after ${op}`);
    }
  }
  if (op === "is") {
    if (!/^(null|not_null|true|false|unknown)$/i.test(value)) {
      throw parseError("filter", whole, `unexpected "${value.slice(0, 1) || " "}" expecting null or trilean value (unknown, true, false)`);
    }
    filter.value = value.toLowerCase();
  }
  if (op === "in") {
    const list = /^\((.*)\)$/s.exec(value);
    if (!list) throw parseError("filter", whole, `unexpected "${value.slice(0, 1) || " "}" expecting "("`);
    filter.value = splitList(list[1]);
  }
  return filter;
}

/** A logic tree's body `(a.eq.1,and(b.gt.2,c.is.null))`. */
function parseLogic(op: "and" | "or", not: boolean, raw: string, whole: string): Logic {
  const body = /^\((.*)\)$/s.exec(raw);
  if (!body) throw parseError("logic tree", whole, `unexpected "${raw.slice(0, 1) || " "}" expecting "("`);
  const children = splitTop(body[1], "logic tree", whole).map((part): Logic => {
    const p = part.trim();
    const nested = /^(not\.)?(and|or)(\(.*\))$/s.exec(p);
    if (nested) return parseLogic(nested[2] as "and" | "or", nested[1] !== undefined, nested[3], whole);
    // field.[not.]op.value: the field ends at the first dot not inside quotes (JSON paths may follow it).
    const m = /^("(?:[^"\\]|\\.)*"|[^.]+)\.(.*)$/s.exec(part.trimStart());
    if (!m) throw parseError("logic tree", whole, `unexpected "${p.slice(0, 1) || ")"}" expecting field name`);
    const filter = parseFilter(parseField(m[1], "logic tree", whole), m[2], whole);
    // Inside a logic tree a value may be double-quoted (to hold commas or parentheses; a
    // backslash escapes) and is otherwise taken as it is, untrimmed (pLogicSingleVal).
    if (typeof filter.value === "string" && /^"(?:[^"\\]|\\.)*"$/s.test(filter.value)) filter.value = filter.value.slice(1, -1).replace(/\\(.)/g, "$1");
    return { kind: "filter", filter };
  });
  return { kind: "tree", op, not, children };
}

function parseOrder(raw: string, whole: string): OrderTerm[] {
  return splitTop(raw, "order", whole).map((term) => {
    let t = term.trim();
    let relation: string | undefined;
    const emb = /^([^()]+)\(([^()]+)\)(.*)$/s.exec(t);
    if (emb) {
      relation = unquote(emb[1], "order", whole);
      t = emb[2] + emb[3];
    }
    const mods: string[] = [];
    for (;;) {
      const m = /\.(asc|desc|nullsfirst|nullslast)$/.exec(t);
      if (!m) break;
      mods.unshift(m[1]);
      t = t.slice(0, m.index);
    }
    if (mods.length > 2 || mods.filter((x) => x === "asc" || x === "desc").length > 1 || mods.filter((x) => x.startsWith("nulls")).length > 1) {
      throw parseError("order", whole, `unexpected "${mods[mods.length - 1]}" expecting end of input`);
    }
    if (t.includes(".") && !t.startsWith('"')) {
      const bad = t.slice(t.indexOf(".") + 1);
      throw parseError("order", whole, `unexpected "${bad.slice(0, 1)}" expecting "asc", "desc", "nullsfirst" or "nullslast"`);
    }
    const field = parseField(t, "order", whole);
    const dir = mods.find((x) => x === "asc" || x === "desc");
    const nulls = mods.find((x) => x.startsWith("nulls"));
    return { ...(relation ? { relation } : {}), field, desc: dir === "desc", ...(nulls ? { nulls: nulls === "nullsfirst" ? "first" as const : "last" as const } : {}) };
  });
}

/**
 * limit and offset: PostgREST ignores a value it cannot read as an integer and a negative
 * offset; a negative limit is its PGRST103 (416).
 */
function count(key: "limit" | "offset", v: string): number | null {
  if (!/^-?\d{1,15}$/.test(v)) return null;
  const n = Number(v);
  if (n >= 0) return n;
  if (key === "offset") return null;
  throw new QueryError({ status: 416, body: restError("PGRST103", "Requested range not satisfiable", "Limit should be greater than or equal to zero.") });
}

/** Splits `a.b.key` into the embedded path (`a.b`) and the key; quoted names may hold dots. */
function splitPath(key: string): { path: string; last: string } {
  const parts = key.match(/"(?:[^"\\]|\\.)*"|[^."]+/g) ?? [key];
  // A JSON path's keys belong to the last part: rejoin from the first part holding "->".
  const arrow = parts.findIndex((p) => p.includes("->"));
  const split = arrow >= 0 ? arrow : parts.length - 1;
  const lastStart = split;
  return {
    path: parts.slice(0, lastStart).map((p) => p.replace(/^"(.*)"$/s, "$1")).join("."),
    last: parts.slice(lastStart).join("."),
  };
}

function level(levels: Map<string, Level>, path: string): Level {
  let l = levels.get(path);
  if (!l) levels.set(path, l = { filters: [], logic: [], order: [], limit: null, offset: 0 });
  return l;
}

/**
 * Reads a request's query string (and Range header) into a QueryRequest and, for a GET
 * RPC, the function arguments; throws a QueryError with PostgREST's answer.
 */
export function parseQuery(query: URLSearchParams, opts: { rpcRead: boolean; range: string | null; ignore: Set<string> }): { request: QueryRequest; args: Record<string, string | string[]> } {
  const request: QueryRequest = { select: [{ kind: "star" }], selected: false, levels: new Map(), columns: null, onConflict: null, range: null };
  const args: Record<string, string | string[]> = {};
  level(request.levels, "");
  for (const key of new Set(query.keys())) {
    if (opts.ignore.has(key)) continue;
    const values = query.getAll(key);
    const value = values[values.length - 1];
    if (RESERVED.has(key)) {
      if (key === "select") {
        request.select = parseSelectItems(value, value);
        request.selected = true;
      } else {
        const names = splitTop(value, key, value).map((c) => unquote(c, key, value));
        if (key === "columns") request.columns = names;
        else request.onConflict = names;
      }
      continue;
    }
    // `[path.]not.or` / `[path.]not.and`: the negation belongs to the key's last part.
    const negated = /^(?:(.*)\.)?not\.(and|or)$/.exec(key);
    const { path, last } = negated ? { path: negated[1] ?? "", last: `not.${negated[2]}` } : splitPath(key);
    const notLogic = /^not\.(and|or)$/.exec(last);
    if (RESERVED_EMBEDDABLE.has(last) || notLogic) {
      const l = level(request.levels, path);
      for (const v of values) {
        if (last === "order") l.order = parseOrder(v, v);
        else if (last === "limit") l.limit = count("limit", v) ?? l.limit;
        else if (last === "offset") l.offset = count("offset", v) ?? l.offset;
        else l.logic.push(parseLogic((notLogic ? notLogic[1] : last) as "and" | "or", notLogic !== null, v, v));
      }
      continue;
    }
    // A GET RPC's parameters without an operator are the function's arguments.
    if (opts.rpcRead && path === "" && !key.includes("->") && !values.some(hasOperator)) {
      args[key] = values.length > 1 ? values : value;
      continue;
    }
    const field = parseField(last, "filter", key);
    const l = level(request.levels, path);
    for (const v of values) l.filters.push(parseFilter(field, v, v));
  }
  // PostgREST reads `Range: 0-9` (not `items=0-9`, which it ignores), on GET only.
  const range = opts.range ? /^(\d{1,15})-(\d{1,15})?$/.exec(opts.range.trim()) : null;
  if (range) {
    request.range = { from: Number(range[1]), to: range[2] === undefined ? null : Number(range[2]) };
    if (request.range.to !== null && request.range.to < request.range.from) {
      throw new QueryError({ status: 416, body: restError("PGRST103", "Requested range not satisfiable",
        "The lower boundary must be lower than or equal to the upper boundary in the Range header.") });
    }
  }
  return { request, args };
}

/** A quoted SQL identifier (names come only from the schema cache). */
export function quoteIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}
