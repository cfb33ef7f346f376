/**
 * PostgREST's schema cache (src/PostgREST/SchemaCache.hs), for the functions, tables,
 * views and foreign keys of the exposed schemas: read once, on the
 * first request, and again when the database says `NOTIFY pgrst, 'reload schema'` (as
 * PostgREST does; local/platform.sql installs the Supabase image's event triggers that
 * send it after DDL) or when the listening connection comes back after an outage.
 * Identifiers come only from here; requests never name a catalog object directly.
 */
import type postgres from "postgres";

/** One argument of a function, as the cache keeps it. */
export interface FunctionArg {
  name: string;
  type: string;
  has_default: boolean;
  /** The VARIADIC argument (the last one). */
  variadic: boolean;
}

/** A function of an exposed schema. */
export interface FunctionInfo {
  schema: string;
  name: string;
  oid: number;
  volatility: "i" | "s" | "v";
  returns_set: boolean;
  return_type: string;
  /** pg_type.typtype of the return type: b(ase), c(omposite), d(omain), e(num), p(seudo), r(ange). */
  return_kind: string;
  /** The return type's columns, when it is composite (the shape of a row with no values). */
  return_columns: string[];
  args: FunctionArg[];
  /**
   * The function's own settings that PostgREST hoists to the transaction
   * (db-hoisted-tx-settings' default, less the isolation level): a `set statement_timeout`
   * in the definition would come too late, the statement's timer already runs.
   */
  settings: Record<string, string>;
}

/** A column of a table or view. */
export interface ColumnInfo {
  name: string;
  /** format_type of the column (for casts of bound values). */
  type: string;
  nullable: boolean;
  /** Has a default (a DEFAULT expression, an identity or a serial). */
  has_default: boolean;
  /** A generated column (cannot be written). */
  generated: boolean;
  /**
   * The SQL of its default, as `Prefer: missing=default` supplies it (PostgREST's
   * colDefault): the DEFAULT expression, or nextval() of a BY DEFAULT identity; null for
   * none, an ALWAYS identity or a generated column.
   */
  default: string | null;
}

/** A table or view of an exposed schema. */
export interface TableInfo {
  schema: string;
  name: string;
  /** pg_class.relkind: r(table), p(artitioned table), v(iew), m(aterialized view), f(oreign table). */
  kind: string;
  columns: ColumnInfo[];
  /** Primary key columns, in key order (empty for views and tables without one). */
  pk: string[];
  /** Column sets with a unique constraint or index (the primary key among them). */
  unique: string[][];
}

/** A foreign key between two relations of the exposed schemas. */
export interface ForeignKey {
  constraint: string;
  /** The referencing table and its columns. */
  table: string;
  columns: string[];
  /** The referenced table and its columns (in the same order). */
  foreign_table: string;
  foreign_columns: string[];
}

/** What the gateway asks of the cache. */
export interface SchemaCache {
  /** schema.name as a table or view, or undefined. */
  table(schema: string, name: string): Promise<TableInfo | undefined>;
  /** Every table and view name of the schema (for the "Perhaps you meant" hint). */
  tableNames(schema: string): Promise<string[]>;
  /** The foreign keys among the schema's tables. */
  foreignKeys(schema: string): Promise<ForeignKey[]>;
  /** The overloads of schema.name (empty when there is none). */
  functions(schema: string, name: string): Promise<FunctionInfo[]>;
  /** Every function name of the schema (for PostgREST's "Perhaps you meant" hints). */
  functionNames(schema: string): Promise<string[]>;
  /** Drops what is cached; the next request reads the catalog again. */
  invalidate(): void;
  /** Stops listening. */
  close(): Promise<void>;
}

async function loadFunctions(sql: postgres.Sql, schemas: string[]): Promise<Map<string, FunctionInfo[]>> {
  const rows = await sql<FunctionInfo[]>`
    select n.nspname as schema,
           p.proname as name,
           p.oid::int as oid,
           p.provolatile as volatility,
           p.proretset as returns_set,
           format_type(p.prorettype, null) as return_type,
           t.typtype as return_kind,
           coalesce((
             select json_agg(a.attname order by a.attnum)
             from pg_catalog.pg_attribute a
             where t.typtype = 'c' and a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped
           ), (
             -- RETURNS TABLE (...) and OUT parameters: the record's columns are those arguments.
             select json_agg(p.proargnames[o.ord] order by o.ord)
             from unnest(p.proargmodes) with ordinality as o(mode, ord)
             where p.prorettype = 'record'::regtype and o.mode in ('o', 't', 'b')
           ), '[]'::json) as return_columns,
           coalesce((
             select json_agg(json_build_object(
                      'name', coalesce(p.proargnames[a.ord], ''),
                      'type', format_type(a.typ, null),
                      'has_default', a.input_ord > p.pronargs - p.pronargdefaults,
                      'variadic', coalesce(p.proargmodes[a.ord], 'i') = 'v'
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
    where n.nspname in (select json_array_elements_text(${JSON.stringify(schemas)}::text::json)) and p.prokind = 'f'`;
  const byName = new Map<string, FunctionInfo[]>();
  for (const f of rows) {
    // A record with named output columns (RETURNS TABLE, OUT parameters) answers as a composite does.
    if (f.return_type === "record" && f.return_columns.length > 0) f.return_kind = "c";
    const key = `${f.schema}.${f.name}`;
    byName.set(key, [...byName.get(key) ?? [], f]);
  }
  return byName;
}

// The schemas go to SQL as JSON text, not as a JS array: postgres.js serializes arrays
// correctly only once it has read the database's array types, and the cache is read on a
// connection's first request (a first read failed with "malformed array literal").

/** Tables, views and their columns, keys and foreign keys. */
async function loadTables(sql: postgres.Sql, schemas: string[]): Promise<{ tables: Map<string, TableInfo>; fks: Map<string, ForeignKey[]> }> {
  const rows = await sql<TableInfo[]>`
    select n.nspname as schema, c.relname as name, c.relkind as kind,
           coalesce((
             select json_agg(json_build_object(
                      'name', a.attname,
                      'type', format_type(a.atttypid, a.atttypmod),
                      'nullable', not a.attnotnull,
                      'has_default', a.atthasdef or a.attidentity <> '',
                      'generated', a.attgenerated <> '',
                      'default', case when a.attidentity = 'd'
                                        then format('nextval(%L::regclass)', pg_catalog.pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname))
                                      when a.attgenerated = '' and a.attidentity = ''
                                        then pg_catalog.pg_get_expr(d.adbin, d.adrelid) end
                    ) order by a.attnum)
             from pg_catalog.pg_attribute a
             left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
             where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           ), '[]'::json) as columns,
           coalesce((
             select json_agg(a.attname order by k.ord)
             from pg_catalog.pg_constraint pk
             cross join unnest(pk.conkey) with ordinality as k(attnum, ord)
             join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
             where pk.conrelid = c.oid and pk.contype = 'p'
           ), '[]'::json) as pk,
           coalesce((
             select json_agg(u.cols)
             from (
               select (select json_agg(a.attname order by a.attname)
                       from unnest(i.indkey::int2[]) as k(attnum)
                       join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum) as cols
               from pg_catalog.pg_index i
               where i.indrelid = c.oid and i.indisunique and i.indpred is null and 0 <> all (i.indkey::int2[])
             ) u
           ), '[]'::json) as "unique"
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname in (select json_array_elements_text(${JSON.stringify(schemas)}::text::json)) and c.relkind in ('r', 'p', 'v', 'm', 'f')`;
  const tables = new Map<string, TableInfo>();
  for (const t of rows) tables.set(`${t.schema}.${t.name}`, t);
  const fkRows = await sql<(ForeignKey & { schema: string })[]>`
    select n.nspname as schema, c.conname as "constraint", t.relname as "table", f.relname as foreign_table,
           (select json_agg(a.attname order by k.ord) from unnest(c.conkey) with ordinality as k(attnum, ord)
              join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum) as columns,
           (select json_agg(a.attname order by k.ord) from unnest(c.confkey) with ordinality as k(attnum, ord)
              join pg_catalog.pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum) as foreign_columns
    from pg_catalog.pg_constraint c
    join pg_catalog.pg_class t on t.oid = c.conrelid
    join pg_catalog.pg_namespace n on n.oid = t.relnamespace
    join pg_catalog.pg_class f on f.oid = c.confrelid
    join pg_catalog.pg_namespace fn on fn.oid = f.relnamespace
    where c.contype = 'f' and n.nspname in (select json_array_elements_text(${JSON.stringify(schemas)}::text::json)) and fn.nspname = n.nspname
    order by c.conname`;
  const fks = new Map<string, ForeignKey[]>();
  for (const { schema, ...fk } of fkRows) fks.set(schema, [...fks.get(schema) ?? [], fk]);
  return { tables, fks };
}

interface Loaded {
  functions: Map<string, FunctionInfo[]>;
  tables: Map<string, TableInfo>;
  fks: Map<string, ForeignKey[]>;
}

async function load(sql: postgres.Sql, schemas: string[]): Promise<Loaded> {
  const [functions, { tables, fks }] = await Promise.all([loadFunctions(sql, schemas), loadTables(sql, schemas)]);
  return { functions, tables, fks };
}

/** The cache over the exposed schemas; `listen` is false for gateways that share a pool in tests. */
export function createSchemaCache(sql: postgres.Sql, schemas: string[], opts: { listen?: boolean } = {}): SchemaCache {
  let current: Promise<Loaded> | undefined;
  const get = () => {
    if (!current) {
      const loading: Promise<Loaded> = load(sql, schemas).catch((err) => {
        if (current === loading) current = undefined; // a failed read (the database down) is not cached
        throw err;
      });
      current = loading;
    }
    return current;
  };
  // PostgREST reloads on `NOTIFY pgrst` with an empty payload or 'reload schema'; postgres.js
  // re-issues LISTEN after a reconnect and calls onlisten again, when changes may have been missed.
  const listening = opts.listen === false ? undefined : sql.listen(
    "pgrst",
    (payload) => {
      if (payload === "" || payload === "reload schema") current = undefined;
    },
    () => {
      current = undefined;
    },
  ).catch(() => undefined);
  return {
    async functions(schema, name) {
      return (await get()).functions.get(`${schema}.${name}`) ?? [];
    },
    async functionNames(schema) {
      return [...new Set([...(await get()).functions.values()].flat().filter((f) => f.schema === schema).map((f) => f.name))];
    },
    async table(schema, name) {
      return (await get()).tables.get(`${schema}.${name}`);
    },
    async tableNames(schema) {
      return [...(await get()).tables.values()].filter((t) => t.schema === schema).map((t) => t.name);
    },
    async foreignKeys(schema) {
      return (await get()).fks.get(schema) ?? [];
    },
    invalidate() {
      current = undefined;
    },
    async close() {
      const l = await listening;
      await l?.unlisten().catch(() => {});
    },
  };
}
