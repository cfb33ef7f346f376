/**
 * PostgREST's schema cache, for the functions of the exposed schemas: read once, on the
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

/** What the gateway asks of the cache. */
export interface SchemaCache {
  /** The overloads of schema.name (empty when there is none). */
  functions(schema: string, name: string): Promise<FunctionInfo[]>;
  /** Every function name of the schema (for PostgREST's "Perhaps you meant" hints). */
  functionNames(schema: string): Promise<string[]>;
  /** Drops what is cached; the next request reads the catalog again. */
  invalidate(): void;
  /** Stops listening. */
  close(): Promise<void>;
}

async function load(sql: postgres.Sql, schemas: string[]): Promise<Map<string, FunctionInfo[]>> {
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
    where n.nspname = any(${schemas}) and p.prokind = 'f'`;
  const byName = new Map<string, FunctionInfo[]>();
  for (const f of rows) {
    // A record with named output columns (RETURNS TABLE, OUT parameters) answers as a composite does.
    if (f.return_type === "record" && f.return_columns.length > 0) f.return_kind = "c";
    const key = `${f.schema}.${f.name}`;
    byName.set(key, [...byName.get(key) ?? [], f]);
  }
  return byName;
}

/** The cache over the exposed schemas; `listen` is false for gateways that share a pool in tests. */
export function createSchemaCache(sql: postgres.Sql, schemas: string[], opts: { listen?: boolean } = {}): SchemaCache {
  let current: Promise<Map<string, FunctionInfo[]>> | undefined;
  const get = () => {
    if (!current) {
      const loading: Promise<Map<string, FunctionInfo[]>> = load(sql, schemas).catch((err) => {
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
      return (await get()).get(`${schema}.${name}`) ?? [];
    },
    async functionNames(schema) {
      return [...new Set([...(await get()).values()].flat().filter((f) => f.schema === schema).map((f) => f.name))];
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
