/**
 * PostgREST's QueryBuilder (src/PostgREST/Query/QueryBuilder.hs, SqlFragment.hs): SQL for
 * a planned read (plan.ts) and for inserts, updates and deletes. Identifiers come only from
 * the plan (the schema cache) and are quoted; every value from the request is a bound
 * parameter. An embedded level is a lateral subquery: to-many levels aggregate their rows
 * with json_agg (`[]` when none), to-one levels give one object or null, spreads give
 * their columns to the parent.
 */
import type { Field, Filter, Logic } from "./query.ts";
import { quoteIdent as q } from "./query.ts";
import type { PlannedItem, ReadNode, Relation } from "./plan.ts";

/** OID of PostgreSQL's `unknown` type. */
const UNKNOWN = 705;

/**
 * Bound parameters, numbered as they are added. They are sent as PostgREST sends them:
 * text of type `unknown`, so PostgreSQL infers each one's type from where it is used
 * (`"done" = $1` makes $1 a boolean) and postgres.js applies none of its own
 * serializers (which would turn the string "true" into 'f' for a boolean).
 */
export class Params {
  readonly values: string[] = [];
  bind(value: string): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
  /** The values, typed for postgres.js. */
  typed(sql: { typed: (value: string, oid: number) => unknown }): never[] {
    return this.values.map((v) => sql.typed(v, UNKNOWN)) as never[];
  }
}

/** A PostgreSQL array literal of text elements (for `in` and `(any)` / `(all)`). */
export function arrayLiteral(values: string[]): string {
  return `{${values.map((v) => `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`).join(",")}}`;
}

/** A relation's qualified name. */
export const relationSql = (r: Relation) => `${q(r.schema)}.${q(r.name)}`;

/**
 * A field of `alias`, with its JSON path: keys are bound parameters, an integer step is an
 * array index, and a column that is not json or jsonb is read through to_jsonb first, as
 * PostgREST does.
 */
export function fieldSql(alias: string, relation: Relation, f: Field, p: Params): string {
  const col = `${alias}.${q(f.name)}`;
  if (f.path.length === 0) return col;
  const type = relation.columns.get(f.name);
  let s = type === "json" || type === "jsonb" ? col : `to_jsonb(${col})`;
  for (const step of f.path) s += /^-?\d{1,9}$/.test(step.key) ? `${step.arrow}${Number(step.key)}` : `${step.arrow}${p.bind(step.key)}::text`;
  return s;
}

const COMPARE: Record<string, string> = {
  eq: "=", neq: "<>", gt: ">", gte: ">=", lt: "<", lte: "<=", like: "like", ilike: "ilike", match: "~", imatch: "~*",
  cs: "@>", cd: "<@", ov: "&&", sl: "<<", sr: ">>", nxr: "&<", nxl: "&>", adj: "-|-",
};
const TSQUERY: Record<string, string> = { fts: "to_tsquery", plfts: "plainto_tsquery", phfts: "phraseto_tsquery", wfts: "websearch_to_tsquery" };

/** One filter as SQL (PostgREST's pgFmtFilter). */
export function filterSql(alias: string, relation: Relation, f: Filter, p: Params): string {
  const col = fieldSql(alias, relation, f.field, p);
  const pattern = (v: string) => (f.op === "like" || f.op === "ilike" ? v.replaceAll("*", "%") : v);
  let expr: string;
  if (f.quantifier) {
    expr = `${col} ${COMPARE[f.op]} ${f.quantifier}(${p.bind(arrayLiteral((f.value as string[]).map(pattern)))})`;
  } else if (f.op === "in") {
    expr = `${col} = any(${p.bind(arrayLiteral(f.value as string[]))})`;
  } else if (f.op === "is") {
    expr = `${col} is ${f.value === "not_null" ? "not null" : f.value}`;
  } else if (f.op === "isdistinct") {
    expr = `${col} is distinct from ${p.bind(f.value as string)}`;
  } else if (f.op in TSQUERY) {
    // A tsvector column is searched as it is; text (or json) through to_tsvector, as PostgREST does.
    const cfg = f.config ? `${p.bind(f.config)}::regconfig, ` : "";
    const isVector = f.field.path.length === 0 && relation.columns.get(f.field.name) === "tsvector";
    expr = `${isVector ? col : `to_tsvector(${cfg}${col})`} @@ ${TSQUERY[f.op]}(${cfg}${p.bind(f.value as string)})`;
  } else {
    expr = `${col} ${COMPARE[f.op]} ${p.bind(pattern(f.value as string))}`;
  }
  return f.not ? `not (${expr})` : expr;
}

/** A logic tree as SQL. */
export function logicSql(alias: string, relation: Relation, l: Logic, p: Params): string {
  if (l.kind === "filter") return filterSql(alias, relation, l.filter, p);
  const inner = l.children.map((c) => logicSql(alias, relation, c, p)).join(` ${l.op} `);
  const expr = `(${inner || (l.op === "and" ? "true" : "false")})`;
  return l.not ? `not ${expr}` : expr;
}

/** Fresh table aliases for one statement. */
export class Aliases {
  private n = 0;
  next(): string {
    return `pgrst_${++this.n}`;
  }
}

/** The join of a child level (`alias`) to its parent (`parentAlias`). */
function joinSql(child: ReadNode, alias: string, parentAlias: string, aliases: Aliases): string {
  const j = child.join!;
  if (j.junction) {
    const jt = aliases.next();
    const toParent = j.junction.parentSide.map((c, i) => `${jt}.${q(c)} = ${parentAlias}.${q(j.parentColumns[i])}`);
    const toChild = j.junction.childSide.map((c, i) => `${jt}.${q(c)} = ${alias}.${q(j.childColumns[i])}`);
    return `exists (select 1 from ${q(j.junction.schema)}.${q(j.junction.name)} as ${jt} where ${[...toParent, ...toChild].join(" and ")})`;
  }
  return j.childColumns.map((c, i) => `${alias}.${q(c)} = ${parentAlias}.${q(j.parentColumns[i])}`).join(" and ");
}

/** A level's FROM, WHERE and output list; the root's source may be a CTE (an RPC's rows, a mutation's). */
interface LevelSql {
  list: string[];
  from: string;
  where: string[];
  orderBy: string;
}

function levelSql(n: ReadNode, alias: string, source: string, p: Params, aliases: Aliases, parentAlias?: string): LevelSql {
  const list: string[] = [];
  const joins: string[] = [];
  const where: string[] = [];
  const childAliases = new Map<string, { node: ReadNode; alias: string }>();
  for (const item of n.items) list.push(...itemSql(item));
  function itemSql(item: PlannedItem): string[] {
    if (item.kind === "star") return [`${alias}.*`];
    if (item.kind === "field") {
      const expr = fieldSql(alias, n.relation, item.field, p);
      return [`${item.cast ? `cast(${expr} as ${item.cast})` : expr} as ${q(item.key)}`];
    }
    const child = item.node;
    const ca = aliases.next();
    childAliases.set(child.key, { node: child, alias: ca });
    joins.push(`left join lateral (${childSql(child, ca, alias, p, aliases)}) as ${ca} on true`);
    if (child.inner) where.push(child.join!.toOne ? `${ca}.pgrst_present` : `${ca}.pgrst_n > 0`);
    if (child.spread) return spreadKeys(child).map((k) => `${ca}.${q(k)}`);
    return [`${ca}.pgrst_body as ${q(child.key)}`];
  }
  if (parentAlias !== undefined) where.push(joinSql(n, alias, parentAlias, aliases));
  for (const f of n.level.filters) where.push(filterSql(alias, n.relation, f, p));
  for (const l of n.level.logic) where.push(logicSql(alias, n.relation, l, p));
  for (const nf of n.nullFilters) {
    const c = childAliases.get(nf.key)!;
    const present = c.node.join!.toOne ? `${c.alias}.pgrst_present` : `${c.alias}.pgrst_n > 0`;
    where.push(nf.isNull ? `not coalesce(${present}, false)` : `coalesce(${present}, false)`);
  }
  const orderBy = n.level.order.map((o) => {
    let expr: string;
    if (o.relation !== undefined) {
      const c = childAliases.get(o.relation)!;
      const ra = aliases.next();
      expr = `(select ${fieldSql(ra, c.node.relation, o.field, p)} from ${relationSql(c.node.relation)} as ${ra} where ${joinSql(c.node, ra, alias, aliases)} limit 1)`;
    } else expr = fieldSql(alias, n.relation, o.field, p);
    return `${expr} ${o.desc ? "desc" : "asc"}${o.nulls ? ` nulls ${o.nulls}` : ""}`;
  }).join(", ");
  return { list, from: `${source} as ${alias}${joins.length ? ` ${joins.join(" ")}` : ""}`, where, orderBy };
}

/** The keys a spread level gives its parent. */
function spreadKeys(n: ReadNode): string[] {
  return n.items.flatMap((i) =>
    i.kind === "star" ? [...n.relation.columns.keys()] : i.kind === "field" ? [i.key] : i.node.spread ? spreadKeys(i.node) : [i.node.key]
  );
}

/** An embedded level: one row with pgrst_body (json) and pgrst_n / pgrst_present, or a spread's columns. */
function childSql(n: ReadNode, alias: string, parentAlias: string, p: Params, aliases: Aliases): string {
  const s = levelSql(n, alias, relationSql(n.relation), p, aliases, parentAlias);
  const where = s.where.length ? ` where ${s.where.join(" and ")}` : "";
  const page = `${s.orderBy ? ` order by ${s.orderBy}` : ""}${n.level.limit !== null ? ` limit ${n.level.limit}` : ""}${n.level.offset ? ` offset ${n.level.offset}` : ""}`;
  if (n.spread) return `select ${s.list.join(", ")}, true as pgrst_present from ${s.from}${where}${page}`;
  if (n.join!.toOne) {
    return `select row_to_json(pgrst_row) as pgrst_body, true as pgrst_present from (select ${s.list.join(", ")} from ${s.from}${where}${page}) as pgrst_row`;
  }
  return `select coalesce(json_agg(pgrst_row), '[]'::json) as pgrst_body, count(*) as pgrst_n from (select ${s.list.join(", ")} from ${s.from}${where}${page}) as pgrst_row`;
}

/** A read of the root level: the page's SQL and the SQL of its unpaged row set (for counts). */
export interface ReadSql {
  /** select … from … where … order by … limit … offset … */
  page: string;
  /** from … where … (for `select count(*) …`). */
  fromWhere: string;
}

/** The root level over `source` (a relation or a CTE name), paged. */
export function readSql(root: ReadNode, source: string, page: { limit: number | null; offset: number }, p: Params): ReadSql {
  const aliases = new Aliases();
  const s = levelSql(root, "pgrst_0", source, p, aliases);
  const fromWhere = `${s.from}${s.where.length ? ` where ${s.where.join(" and ")}` : ""}`;
  return {
    page: `select ${s.list.join(", ")} from ${fromWhere}${s.orderBy ? ` order by ${s.orderBy}` : ""}${page.limit !== null ? ` limit ${page.limit}` : ""}${page.offset ? ` offset ${page.offset}` : ""}`,
    fromWhere,
  };
}

/** The WHERE of an update or delete on `alias` (the root level's filters and logic trees). */
export function mutationWhere(root: ReadNode, alias: string, p: Params): string {
  const conds = [
    ...root.level.filters.map((f) => filterSql(alias, root.relation, f, p)),
    ...root.level.logic.map((l) => logicSql(alias, root.relation, l, p)),
  ];
  return conds.length ? conds.join(" and ") : "true";
}
