/**
 * PostgREST's Plan (src/PostgREST/Plan.hs): a parsed query (query.ts) resolved against the
 * schema cache into a tree of resources: which relation each level reads, through which
 * foreign key an embedded one joins its parent (many-to-one, one-to-many, one-to-one,
 * many-to-many through a junction table), its columns and its filters, order and page.
 * Names the cache does not hold are refused here with PostgREST's codes (PGRST200,
 * PGRST201, PGRST108, PGRST118) or PostgreSQL's 42703, so SQL is only ever built from
 * catalog names (build.ts).
 */
import { restError } from "../errors.ts";
import type { ForeignKey, SchemaCache } from "./schema_cache.ts";
import { closest } from "./fuzzy.ts";
import { type Field, type Filter, type Level, type Logic, type OrderTerm, QueryError, type QueryRequest, type SelectItem } from "./query.ts";

/** What a level reads: a table or view, or an RPC's rows (a relation named for the function). */
export interface Relation {
  schema: string;
  name: string;
  /** Column name → type. */
  columns: Map<string, string>;
  /** The table whose foreign keys an RPC's rows share (a function returning setof that table). */
  table?: string;
}

/** How an embedded resource joins its parent: child.childColumns = parent.parentColumns, or through a junction. */
export interface Join {
  toOne: boolean;
  parentColumns: string[];
  childColumns: string[];
  /** Many-to-many: junction.junctionParent = parent.parentColumns and junction.junctionChild = child.childColumns. */
  junction?: { schema: string; name: string; parentSide: string[]; childSide: string[] };
}

/** A planned select item. */
export type PlannedItem =
  | { kind: "star" }
  | { kind: "field"; field: Field; key: string; cast?: string }
  | { kind: "embed"; node: ReadNode };

/** One level of a read. */
export interface ReadNode {
  relation: Relation;
  /** The key the level's rows appear under in its parent (the alias, else the target). */
  key: string;
  /** The embedded path that filters on this level use (alias, else target; dotted below the root). */
  path: string;
  join?: Join;
  inner: boolean;
  spread: boolean;
  items: PlannedItem[];
  level: Level;
  /** Root-level filters `embed=is.null` / `embed=not.is.null`. */
  nullFilters: { key: string; isNull: boolean }[];
}

const emptyLevel = (): Level => ({ filters: [], logic: [], order: [], limit: null, offset: 0 });

/** The relation of a table or view of the cache. */
export async function tableRelation(cache: SchemaCache, schema: string, name: string): Promise<Relation | undefined> {
  const t = await cache.table(schema, name);
  if (!t) return undefined;
  return { schema, name, columns: new Map(t.columns.map((c) => [c.name, c.type])), table: name };
}

/** PostgREST's PGRST205 for a table or view it does not hold, with its "Perhaps you meant" hint. */
export async function tableNotFound(cache: SchemaCache, schema: string, name: string): Promise<QueryError> {
  const near = closest(name, await cache.tableNames(schema), 0.75);
  return new QueryError({
    status: 404,
    body: restError("PGRST205", `Could not find the table '${schema}.${name}' in the schema cache`, null,
      near === null ? null : `Perhaps you meant the table '${schema}.${near}'`),
  });
}

const columnMissing = (relation: Relation, column: string) =>
  new QueryError({ status: 400, body: restError("42703", `column ${relation.name}.${column} does not exist`) });

function checkField(relation: Relation, field: Field): void {
  if (!relation.columns.has(field.name)) throw columnMissing(relation, field.name);
}

/** The candidate relationships from `parent` to `target` (PostgREST's findRel). */
function relationships(fks: ForeignKey[], parent: Relation, target: string, tables: Map<string, { unique: string[][]; pk: string[] }>): { child: string; join: Join; name: string; cardinality: string; fk: string }[] {
  const out: { child: string; join: Join; name: string; cardinality: string; fk: string }[] = [];
  const from = parent.table;
  if (!from) return out;
  const isUnique = (table: string, cols: string[]) =>
    (tables.get(table)?.unique ?? []).some((u) => u.length === cols.length && cols.every((c) => u.includes(c)));
  for (const fk of fks) {
    // many-to-one: the parent holds the key (the target by table name, or by the key's column).
    if (fk.table === from && (fk.foreign_table === target || fk.columns.length === 1 && fk.columns[0] === target)) {
      out.push({ child: fk.foreign_table, name: fk.foreign_table, fk: fk.constraint, cardinality: isUnique(fk.table, fk.columns) ? "one-to-one" : "many-to-one",
        join: { toOne: true, parentColumns: fk.columns, childColumns: fk.foreign_columns } });
    }
    // one-to-many (one-to-one when the child's key columns are unique): the child holds the key.
    if (fk.foreign_table === from && fk.table === target) {
      const one = isUnique(fk.table, fk.columns);
      out.push({ child: fk.table, name: fk.table, fk: fk.constraint, cardinality: one ? "one-to-one" : "one-to-many",
        join: { toOne: one, parentColumns: fk.foreign_columns, childColumns: fk.columns } });
    }
  }
  // many-to-many: a junction table whose primary key holds both keys' columns.
  for (const a of fks) {
    if (a.foreign_table !== from) continue;
    for (const b of fks) {
      if (b === a || b.table !== a.table || b.foreign_table !== target) continue;
      const pk = tables.get(a.table)?.pk ?? [];
      if (![...a.columns, ...b.columns].every((c) => pk.includes(c))) continue;
      out.push({ child: target, name: target, fk: `${a.table}`, cardinality: "many-to-many",
        join: { toOne: false, parentColumns: a.foreign_columns, childColumns: b.foreign_columns,
          junction: { schema: parent.schema, name: a.table, parentSide: a.columns, childSide: b.columns } } });
    }
  }
  return out;
}

/** Resolves a parsed query against the cache, starting from `root`. */
export async function planRead(cache: SchemaCache, root: Relation, request: QueryRequest): Promise<ReadNode> {
  const fks = await cache.foreignKeys(root.schema);
  const tableKeys = new Map<string, { unique: string[][]; pk: string[] }>();
  for (const name of await cache.tableNames(root.schema)) {
    const t = (await cache.table(root.schema, name))!;
    tableKeys.set(name, { unique: t.unique, pk: t.pk });
  }
  const used = new Set<string>();

  async function node(relation: Relation, items: SelectItem[], path: string, key: string): Promise<ReadNode> {
    const level = request.levels.get(path) ?? emptyLevel();
    if (request.levels.has(path)) used.add(path);
    const planned: PlannedItem[] = [];
    for (const item of items) {
      if (item.kind === "star") planned.push(item);
      else if (item.kind === "field") {
        checkField(relation, item.field);
        // Unaliased, a JSON path is named for its last key that is not an array index, else the column.
        const lastKey = [...item.field.path].reverse().find((s) => !/^-?\d+$/.test(s.key));
        planned.push({ kind: "field", field: item.field, key: item.alias ?? lastKey?.key ?? item.field.name, ...(item.cast ? { cast: item.cast } : {}) });
      } else {
        planned.push({ kind: "embed", node: await embed(relation, item, path) });
      }
    }
    const out: ReadNode = { relation, key, path, inner: false, spread: false, items: planned, level, nullFilters: [] };
    checkLevel(out);
    return out;
  }

  async function embed(parent: Relation, item: Extract<SelectItem, { kind: "embed" }>, parentPath: string): Promise<ReadNode> {
    let found = relationships(fks, parent, item.target, tableKeys);
    if (item.hint !== undefined) {
      const h = item.hint;
      found = found.filter((r) => r.fk === h || r.join.parentColumns.includes(h) || r.join.childColumns.includes(h) ||
        r.join.junction?.name === h || r.join.junction?.parentSide.includes(h) || r.join.junction?.childSide.includes(h));
    }
    if (found.length === 0) {
      const viewInvolved = (await cache.table(parent.schema, parent.table ?? ""))?.kind === "v" || (await cache.table(parent.schema, item.target))?.kind === "v";
      if (viewInvolved) {
        throw new QueryError({ status: 501, body: restError("PGRST000",
          `Embedding through a view ('${parent.name}' and '${item.target}') is not served by the local gateway; it needs hosted Supabase or supabase start.`) });
      }
      const near = closest(item.target, [...tableKeys.keys()], 0.75);
      throw new QueryError({ status: 400, body: restError("PGRST200",
        `Could not find a relationship between '${parent.name}' and '${item.target}' in the schema cache`,
        `Searched for a foreign key relationship between '${parent.name}' and '${item.target}'${item.hint ? ` using the hint '${item.hint}'` : ""} in the schema '${parent.schema}', but no matches were found.`,
        near !== null && near !== item.target ? `Perhaps you meant '${near}' instead of '${item.target}'.` : null) });
    }
    if (found.length > 1) {
      throw new QueryError({ status: 300, body: {
        code: "PGRST201",
        message: `Could not embed because more than one relationship was found for '${parent.name}' and '${item.target}'`,
        details: found.map((r) => ({
          cardinality: r.cardinality,
          embedding: `${parent.name} with ${r.child}`,
          relationship: r.join.junction
            ? `${r.join.junction.name} using ${r.fk}`
            : `${r.fk} using ${parent.name}(${r.join.parentColumns.join(", ")}) and ${r.child}(${r.join.childColumns.join(", ")})`,
        })),
        hint: `Try changing '${item.target}' to one of the following: ${found.map((r) => `'${item.target}!${r.fk}'`).join(", ")}. Find the desired relationship in the 'details' key.`,
      } });
    }
    const rel = found[0];
    const relation = (await tableRelation(cache, parent.schema, rel.child))!;
    const key = item.alias ?? item.target;
    // Filters on an embedded level name its alias (or, as PostgREST v14 still allows, its target).
    const aliasPath = parentPath ? `${parentPath}.${key}` : key;
    const targetPath = parentPath ? `${parentPath}.${item.target}` : item.target;
    const path = request.levels.has(aliasPath) || !request.levels.has(targetPath) ? aliasPath : targetPath;
    const child = await node(relation, item.select, path, key);
    child.join = rel.join;
    child.inner = item.join === "inner";
    child.spread = item.spread;
    if (child.spread && !rel.join.toOne) {
      throw new QueryError({ status: 400, body: restError("PGRST119", `A spread operation on '${item.target}' is not possible`,
        `'${parent.name}' and '${item.target}' do not form a many-to-one or one-to-one relationship`) });
    }
    return child;
  }

  /** Filters, logic and order of a level name its columns, or (root `is` filters, order) its embedded resources. */
  function checkLevel(n: ReadNode): void {
    const embeds = new Map(n.items.filter((i) => i.kind === "embed").map((i) => [(i as { node: ReadNode }).node.key, (i as { node: ReadNode }).node]));
    const keep: Filter[] = [];
    for (const f of n.level.filters) {
      const e = embeds.get(f.field.name);
      if (e && !n.relation.columns.has(f.field.name) && f.op === "is" && f.value === "null" && f.field.path.length === 0) {
        n.nullFilters.push({ key: e.key, isNull: !f.not });
        continue;
      }
      checkField(n.relation, f.field);
      keep.push(f);
    }
    n.level = { ...n.level, filters: keep };
    const walk = (l: Logic): void => {
      if (l.kind === "filter") checkField(n.relation, l.filter.field);
      else l.children.forEach(walk);
    };
    n.level.logic.forEach(walk);
    for (const o of n.level.order) checkOrder(n, o, embeds);
  }

  function checkOrder(n: ReadNode, o: OrderTerm, embeds: Map<string, ReadNode>): void {
    if (o.relation === undefined) return checkField(n.relation, o.field);
    const e = embeds.get(o.relation);
    if (!e) {
      throw new QueryError({ status: 400, body: restError("PGRST108", `'${o.relation}' is not an embedded resource in this request`, null,
        `Verify that '${o.relation}' is included in the 'select' query parameter.`) });
    }
    if (!e.join?.toOne) {
      throw new QueryError({ status: 400, body: restError("PGRST118", `A related order on '${o.relation}' is not possible`,
        `'${n.relation.name}' and '${o.relation}' do not form a many-to-one or one-to-one relationship`) });
    }
    checkField(e.relation, o.field);
  }

  const rootNode = await node(root, request.select, "", root.name);
  for (const path of request.levels.keys()) {
    if (path === "" || used.has(path)) continue;
    const name = path.split(".").pop()!;
    throw new QueryError({ status: 400, body: restError("PGRST108", `'${name}' is not an embedded resource in this request`, null,
      `Verify that '${name}' is included in the 'select' query parameter.`) });
  }
  return rootNode;
}
