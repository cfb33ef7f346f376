/**
 * `business-data` (GET ?tenant_id=…; seed 003 phase 5, its `GET /multitenant/conversations/
 * business-data`): a tenant's revenue, customers, operations (goals, actions, issues: counts
 * and the items that matter) and team, from our tables, read as the caller (RLS decides;
 * a tenant the caller is not a member of is 404).
 *
 * Cached per tenant for five minutes in Postgres (private.business_data_cache: "Redis
 * becomes Postgres"). Any write to the tenant's goals, actions, issues, figures or members
 * clears the entry at once (a trigger bumps the tenant's version), and a document computed
 * across such a write is never stored. Responses say where they came from:
 *   Cache-Status (RFC 9211): `coach-ledger; hit; ttl=<s>` or `coach-ledger; fwd=miss; stored`
 *   (`fwd=miss; detail=partial` or `detail=changed` when not stored), Age (seconds since it
 *   was computed) and Cache-Control: `private, no-cache` (a browser asks again each time,
 *   since a write clears the entry early; `no-store` for a document not stored).
 *
 * Each section is computed on its own (a savepoint and a statement timeout each): when one
 * fails, the others are returned, the failed one is null and `warnings` names it; the
 * document is then not cached. Only the database being unreachable fails the whole request.
 */
import { z } from "zod";
import { allowMethods, HttpError, json, type RequestContext, respond } from "../_shared/http.ts";
import { authenticate, type Claims, isUser } from "../_shared/auth.ts";
import { type JSONValue, toHttpError, type Tx, withUser } from "../_shared/db.ts";
import { parseOrThrow, queryOf } from "../_shared/validate.ts";

/** The query string. */
export const BusinessDataQuery = z.strictObject({ tenant_id: z.uuid() });

/** How long a document is served from the cache. */
export const TTL_SECONDS = 300;
/** How long one section may take before it is given up as a warning. */
export const SECTION_TIMEOUT_MS = 2000;

/** The sections, each one query as the caller, returning one JSON value. */
export const SECTIONS = {
  revenue: (tx: Tx, tenant: string) => tx`
    with m as (select b.month, b.revenue_usd from public.business_figures b
               where b.tenant_id = ${tenant}::uuid and b.revenue_usd is not null order by b.month desc limit 12)
    select jsonb_build_object(
      'currency', 'USD',
      'latest_month', (select max(month) from m),
      'latest', (select revenue_usd from m order by month desc limit 1),
      'previous', (select revenue_usd from m order by month desc offset 1 limit 1),
      'change_pct', (select round(100 * (a.revenue_usd - b.revenue_usd) / nullif(b.revenue_usd, 0), 1)
                     from (select * from m order by month desc limit 1) a, (select * from m order by month desc offset 1 limit 1) b),
      'trailing_3_months_avg', (select round(avg(revenue_usd), 2) from (select revenue_usd from m order by month desc limit 3) x),
      'months', coalesce((select jsonb_agg(jsonb_build_object('month', month, 'revenue_usd', revenue_usd) order by month) from m), '[]')
    ) as value`,
  customers: (tx: Tx, tenant: string) => tx`
    with m as (select b.month, b.customers, b.churned_customers from public.business_figures b
               where b.tenant_id = ${tenant}::uuid and b.customers is not null order by b.month desc limit 12)
    select jsonb_build_object(
      'latest_month', (select max(month) from m),
      'customers', (select customers from m order by month desc limit 1),
      'churned', (select churned_customers from m order by month desc limit 1),
      'churn_rate_pct', (select round(100.0 * a.churned_customers / nullif(b.customers, 0), 1)
                         from (select * from m order by month desc limit 1) a, (select * from m order by month desc offset 1 limit 1) b),
      'net_change', (select a.customers - b.customers
                     from (select * from m order by month desc limit 1) a, (select * from m order by month desc offset 1 limit 1) b),
      'months', coalesce((select jsonb_agg(jsonb_build_object('month', month, 'customers', customers, 'churned', churned_customers) order by month) from m), '[]')
    ) as value`,
  operations: (tx: Tx, tenant: string) => tx`
    with g as (select * from public.goals x where x.tenant_id = ${tenant}::uuid),
         a as (select * from public.actions x where x.tenant_id = ${tenant}::uuid),
         i as (select * from public.business_issues x where x.tenant_id = ${tenant}::uuid),
         open_a as (select * from a where a.status in ('todo', 'in_progress', 'blocked'))
    select jsonb_build_object(
      'goals', jsonb_build_object(
        'total', (select count(*) from g),
        'by_status', coalesce((select jsonb_object_agg(status, n) from (select status, count(*) as n from g group by status) s), '{}'),
        'active', coalesce((select jsonb_agg(jsonb_build_object('id', id, 'title', title, 'horizon', horizon, 'due_date', due_date, 'owner_id', owner_id)
                                              order by due_date nulls last, title)
                            from (select * from g where status = 'active' order by due_date nulls last, title limit 10) x), '[]')),
      'actions', jsonb_build_object(
        'total', (select count(*) from a),
        'by_status', coalesce((select jsonb_object_agg(status, n) from (select status, count(*) as n from a group by status) s), '{}'),
        'overdue', coalesce((select jsonb_agg(jsonb_build_object('id', id, 'title', title, 'due_date', due_date, 'priority', priority, 'assignee_id', assignee_id)
                                               order by due_date, title)
                             from (select * from open_a where due_date < current_date order by due_date, title limit 10) x), '[]'),
        'blocked', coalesce((select jsonb_agg(jsonb_build_object('id', id, 'title', title, 'due_date', due_date, 'priority', priority) order by title)
                             from (select * from open_a where status = 'blocked' order by title limit 10) x), '[]'),
        'due_next_7_days', coalesce((select jsonb_agg(jsonb_build_object('id', id, 'title', title, 'due_date', due_date, 'priority', priority)
                                                       order by due_date, title)
                                     from (select * from open_a where due_date between current_date and current_date + 7 order by due_date, title limit 10) x), '[]')),
      'issues', jsonb_build_object(
        'total', (select count(*) from i),
        'by_status', coalesce((select jsonb_object_agg(status, n) from (select status, count(*) as n from i group by status) s), '{}'),
        'open_high_impact', coalesce((select jsonb_agg(jsonb_build_object('id', id, 'title', title, 'impact', impact, 'status', status)
                                                        order by impact = 'critical' desc, created_at)
                                      from (select * from i where status in ('open', 'investigating') and impact in ('high', 'critical')
                                            order by impact = 'critical' desc, created_at limit 10) x), '[]'))
    ) as value`,
  team: (tx: Tx, tenant: string) => tx`
    with m as (select * from public.tenant_members x where x.tenant_id = ${tenant}::uuid)
    select jsonb_build_object(
      'members', (select count(*) from m),
      'by_role', coalesce((select jsonb_object_agg(role, n) from (select role, count(*) as n from m group by role) r), '{}'),
      'team_size', (select b.team_size from public.business_figures b where b.tenant_id = ${tenant}::uuid and b.team_size is not null
                    order by b.month desc limit 1),
      'workload', coalesce((select jsonb_agg(jsonb_build_object('user_id', m.user_id, 'role', m.role, 'open_actions', w.n, 'open_hours', w.hours)
                                             order by w.hours desc, m.user_id)
                            from m cross join lateral (
                              select count(a.id) as n, coalesce(sum(a.estimated_hours), 0) as hours from public.actions a
                              where a.tenant_id = m.tenant_id and a.assignee_id = m.user_id and a.status in ('todo', 'in_progress', 'blocked')) w
                            where m.role <> 'coach'), '[]')
    ) as value`,
} as const;

type Section = keyof typeof SECTIONS;

interface Cached {
  member_role: string;
  version: string;
  payload: Record<string, unknown> | null;
  age_seconds: number | null;
}

/** Computes every section in its own savepoint; a failed one becomes a warning. */
async function compute(tx: Tx, tenant: string, traceId: string) {
  const doc: Record<string, unknown> = {};
  const warnings: { section: Section; detail: string }[] = [];
  await tx`select set_config('statement_timeout', ${String(SECTION_TIMEOUT_MS)}, true)`;
  for (const section of Object.keys(SECTIONS) as Section[]) {
    try {
      const [row] = await tx.savepoint((sp) => SECTIONS[section](sp, tenant));
      doc[section] = row.value;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const mapped = toHttpError(err);
      if (mapped instanceof HttpError && mapped.status === 503) throw mapped;
      console.error(JSON.stringify({ level: "error", trace_id: traceId, function: "business-data", section, code: e.code ?? null, error: e.message ?? String(err) }));
      doc[section] = null;
      warnings.push({
        section,
        detail: e.code === "57014"
          ? `The ${section} section took longer than ${SECTION_TIMEOUT_MS} ms and was left out.`
          : `The ${section} section could not be computed and was left out.`,
      });
    }
  }
  return { doc, warnings };
}

/** How long storing a document may wait for a writer of the tenant's data to commit. */
export const STORE_LOCK_TIMEOUT_MS = 200;

/**
 * Caches the document if the tenant's data is still at the version it was computed at. A
 * writer still in its transaction holds the cache row (its trigger bumped the version);
 * rather than wait for it, the document is answered uncached (true when stored).
 */
async function store(tx: Tx, tenant: string, version: string, body: Record<string, unknown>): Promise<boolean> {
  try {
    return await tx.savepoint(async (sp) => {
      await sp`select set_config('lock_timeout', ${String(STORE_LOCK_TIMEOUT_MS)}, true)`;
      const [{ stored }] = await sp`select private.business_data_store(${tenant}::uuid, ${version}::bigint, ${sp.json(body as JSONValue)}::jsonb) as stored`;
      return stored as boolean;
    });
  } catch (err) {
    if ((err as { code?: string }).code === "55P03") return false; // lock_not_available: a write is committing
    throw err;
  }
}

/** Handles GET /functions/v1/business-data. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "GET");
    const claims = await authenticate(req);
    if (!(claims.role === "service_role" || isUser(claims))) {
      throw new HttpError(403, "Forbidden", "Only a signed-in member of the tenant or the service role can read its business data.");
    }
    const { tenant_id } = parseOrThrow(BusinessDataQuery, queryOf(req), "query string");
    return await answer(ctx, claims, tenant_id);
  });
}

async function answer(ctx: RequestContext, claims: Claims, tenant: string): Promise<Response> {
  return await ctx.timing.measure("db", () =>
    withUser(claims, async (tx) => {
      const [cached] = await tx<Cached[]>`select member_role, version::text, payload, age_seconds from private.business_data_cached(${tenant}::uuid)`;
      if (!cached) throw new HttpError(404, "Not Found", "No tenant with this tenant_id is visible to you.");
      if (cached.payload) {
        const age = Math.floor(cached.age_seconds ?? 0);
        const ttl = Math.max(0, TTL_SECONDS - age);
        return json(cached.payload, 200, {
          "Cache-Control": "private, no-cache", Age: String(age), "Cache-Status": `coach-ledger; hit; ttl=${ttl}`,
        });
      }
      const { doc, warnings } = await compute(tx, tenant, ctx.traceId);
      const body = { tenant_id: tenant, generated_at: new Date().toISOString(), ...doc, warnings };
      if (warnings.length) {
        return json(body, 200, { "Cache-Control": "no-store", Age: "0", "Cache-Status": "coach-ledger; fwd=miss; detail=partial" });
      }
      const stored = await store(tx, tenant, cached.version, body);
      return json(body, 200, {
        "Cache-Control": stored ? "private, no-cache" : "no-store", Age: "0",
        "Cache-Status": stored ? "coach-ledger; fwd=miss; stored" : "coach-ledger; fwd=miss; detail=changed",
      });
    }, { traceId: ctx.traceId }));
}
