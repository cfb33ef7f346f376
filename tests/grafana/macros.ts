/**
 * The Grafana PostgreSQL datasource's macros and template variables, expanded as Grafana
 * does before sending a query (https://grafana.com/docs/grafana/latest/datasources/postgres/query-editor/#macros),
 * for the macros our dashboards and alerts use.
 */

/** A dashboard time range and variable values. */
export interface QueryContext {
  from: Date;
  to: Date;
  /** Variable name -> selected values (a multi-value variable's "All" is every value). */
  variables: Record<string, string[]>;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
const quote = (v: string) => `'${v.replaceAll("'", "''")}'`;

function intervalSeconds(spec: string): number {
  const m = /^'?(\d+)([smhdw])'?$/.exec(spec.trim());
  if (!m) throw new Error(`Unsupported interval ${spec}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as "s"];
}

/** Expands $__timeFilter, $__timeFrom/To, $__unixEpochFrom/To, $__timeGroup(Alias) and $variables. */
export function expandMacros(sql: string, ctx: QueryContext): string {
  let out = sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, col) => `${col.trim()} BETWEEN '${iso(ctx.from)}' AND '${iso(ctx.to)}'`)
    .replace(/\$__timeFrom\(\)/g, `'${iso(ctx.from)}'`)
    .replace(/\$__timeTo\(\)/g, `'${iso(ctx.to)}'`)
    .replace(/\$__unixEpochFrom\(\)/g, String(Math.floor(ctx.from.getTime() / 1000)))
    .replace(/\$__unixEpochTo\(\)/g, String(Math.floor(ctx.to.getTime() / 1000)))
    .replace(/\$__timeGroupAlias\(([^,]+),([^)]+)\)/g, (_, col, iv) =>
      `floor(extract(epoch from ${col.trim()})/${intervalSeconds(iv)})*${intervalSeconds(iv)} AS "time"`)
    .replace(/\$__timeGroup\(([^,]+),([^)]+)\)/g, (_, col, iv) =>
      `floor(extract(epoch from ${col.trim()})/${intervalSeconds(iv)})*${intervalSeconds(iv)}`);
  for (const [name, values] of Object.entries(ctx.variables)) {
    const list = values.map(quote).join(",");
    out = out.replaceAll(`\${${name}:sqlstring}`, list).replaceAll(`\${${name}}`, list).replace(new RegExp(`\\$${name}\\b`, "g"), list);
  }
  const left = /\$__\w+|\$\{?\w+/.exec(out);
  if (left) throw new Error(`Unexpanded Grafana macro or variable ${left[0]} in: ${sql}`);
  return out;
}
