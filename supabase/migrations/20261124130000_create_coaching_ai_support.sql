-- Purpose: what the coaching-ai and business-data functions need from the database
-- (issue 11; seed 003 phases 2-5):
--  * Spend caps: tenants.monthly_ai_budget_usd (USD per calendar month, UTC; default 25),
--    changed by the service role only (public.set_tenant_ai_budget); public.tenant_ai_calls,
--    one row per LLM call made for a tenant (route, prompt version, model, cost, status,
--    the coach_interactions row), which private.tenant_ai_spend sums for the check before
--    each call; analysts see spend against budget in analytics.tenant_ai_spend.
--  * The context the endpoints reason over: public.get_tenant_context(tenant_id), one
--    document of the tenant's foundation, goals, strategies, KPIs, actions, issues, figures
--    and team, read as the caller (security invoker: RLS decides; null when the caller is
--    not a member).
--  * The business-data cache ("Redis becomes Postgres"): private.business_data_cache, an
--    unlogged row per tenant with the last computed document and a version that every write
--    to the tenant's goals, actions, issues, figures or members bumps (and so clears), read
--    and filled through private.business_data_cached / private.business_data_store.
--  * Writes a client needs beyond plain inserts: public.upsert_business_foundation,
--    public.record_business_figures, public.set_action_status, public.set_business_issue_status.
--  * The prompts of all eleven routes, version 1, labelled production (moved here from
--    seed.sql, so that a deployed project has them), and the coaching-ai rate limit.
-- Objects: column public.tenants.monthly_ai_budget_usd; tables public.tenant_ai_calls,
-- private.business_data_cache; functions public.set_tenant_ai_budget,
-- private.tenant_ai_spend, analytics.tenant_ai_spend, public.get_tenant_context,
-- private.trigger_bump_business_data, private.business_data_cached,
-- private.business_data_store, public.upsert_business_foundation,
-- public.record_business_figures, public.set_action_status,
-- public.set_business_issue_status; triggers on goals, actions, business_issues,
-- business_figures and tenant_members; rows of public.prompt_templates and
-- private.rate_limit_policies. Destructive: none.

-- Spend caps -------------------------------------------------------------------------------

alter table public.tenants
  add column monthly_ai_budget_usd numeric(12, 2) not null default 25
    constraint tenants_monthly_ai_budget_range check (monthly_ai_budget_usd between 0 and 1000000);
comment on column public.tenants.monthly_ai_budget_usd is
  'What the tenant''s AI coaching calls may cost per calendar month (UTC), in USD; 0 turns them off. Members read it; the service role sets it (set_tenant_ai_budget).';

create table public.tenant_ai_calls (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  interaction_id uuid references public.coach_interactions (id) on delete set null,
  route text not null,
  prompt_version integer,
  model text not null,
  status text not null,
  cost_usd numeric(12, 6) not null default 0,
  created_at timestamptz not null default now(),
  constraint tenant_ai_calls_route_format check (route ~ '^[a-z][a-z0-9-]{0,39}/[a-z][a-z0-9-]{0,59}$'),
  constraint tenant_ai_calls_status_known check (status in ('ok', 'error')),
  constraint tenant_ai_calls_model_length check (char_length(model) between 1 and 200),
  constraint tenant_ai_calls_cost_nonnegative check (cost_usd >= 0)
);
alter table public.tenant_ai_calls enable row level security;
comment on table public.tenant_ai_calls is
  'One row per LLM call made for a tenant by the coaching-ai function: route, prompt version, model, status, cost (USD, 0 when unpriced or offline) and its coach_interactions row. Summed for the monthly spend cap; kept when the interaction''s user is erased.';
-- The spend check sums a tenant's calls of the month.
create index tenant_ai_calls_tenant_id_created_at_idx on public.tenant_ai_calls (tenant_id, created_at);
-- The foreign key to coach_interactions (one call, one interaction).
create unique index tenant_ai_calls_interaction_id_key on public.tenant_ai_calls (interaction_id);

grant select, insert on public.tenant_ai_calls to service_role;
grant select on public.tenant_ai_calls to authenticated;
create policy "Tenant owners and admins read their AI calls"
  on public.tenant_ai_calls for select to authenticated
  using (private.tenant_role(tenant_id) in ('owner', 'admin'));
create policy "AI calls are readable by the service role"
  on public.tenant_ai_calls for select to service_role
  using (true);

create or replace function public.set_tenant_ai_budget(tenant_id uuid, monthly_budget_usd numeric)
returns public.tenants
language plpgsql
volatile
security invoker
set search_path = ''
as $$
-- Security invoker: only the service role may update the column (users hold update(name)).
declare
  changed public.tenants;
begin
  if set_tenant_ai_budget.monthly_budget_usd is null or set_tenant_ai_budget.monthly_budget_usd not between 0 and 1000000 then
    raise exception 'monthly_budget_usd must be between 0 and 1000000' using errcode = '22023',
      constraint = 'tenants_monthly_ai_budget_range';
  end if;
  update public.tenants t set monthly_ai_budget_usd = set_tenant_ai_budget.monthly_budget_usd
  where t.id = set_tenant_ai_budget.tenant_id
  returning * into changed;
  if changed.id is null then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  return changed;
end;
$$;
comment on function public.set_tenant_ai_budget(uuid, numeric) is $$
Sets a tenant's monthly AI budget in USD (0 to 1,000,000; 0 turns its AI calls off). Service role only; PT404 for an
unknown tenant.
Example: select public.set_tenant_ai_budget('7e4a0000-0000-4000-8000-000000000001', 40);
$$;
revoke execute on function public.set_tenant_ai_budget(uuid, numeric) from public, anon, authenticated;
grant execute on function public.set_tenant_ai_budget(uuid, numeric) to service_role;

create or replace function private.tenant_ai_spend(tenant_id uuid, at timestamptz default now())
returns table (budget_usd numeric, spent_usd numeric, month_start timestamptz, calls integer)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: sums every call of the tenant whoever made it (callable by the
  -- service role only: execute is granted to nobody else).
  with m as (select date_trunc('month', tenant_ai_spend.at at time zone 'UTC') at time zone 'UTC' as start)
  select t.monthly_ai_budget_usd, coalesce(sum(c.cost_usd), 0), m.start, count(c.id)::integer
  from public.tenants t cross join m
  left join public.tenant_ai_calls c on c.tenant_id = t.id and c.created_at >= m.start
    and c.created_at < m.start + interval '1 month'
  where t.id = tenant_ai_spend.tenant_id
  group by t.monthly_ai_budget_usd, m.start
$$;
comment on function private.tenant_ai_spend(uuid, timestamptz) is
  'The tenant''s monthly AI budget, what its calls cost in the UTC month containing `at` (default now), that month''s start and how many calls; no row for an unknown tenant. Read by coaching-ai before each LLM call.';
revoke execute on function private.tenant_ai_spend(uuid, timestamptz) from public, anon, authenticated;
grant execute on function private.tenant_ai_spend(uuid, timestamptz) to service_role;

create or replace function analytics.tenant_ai_spend(from_month date, to_month date)
returns table (
  month date, tenant_id uuid, budget_usd numeric, spent_usd numeric, share_of_budget numeric,
  calls integer, errors integer, by_route jsonb
)
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Security definer: reads tenant_ai_calls, which analysts cannot; returns totals per tenant
-- and month (a tenant is an organisation; no user ids, no content).
begin
  if private.caller_role() not in ('coach_analyst', 'service_role', 'postgres') then
    raise exception 'Only analysts and the service role read AI spend' using errcode = '42501';
  end if;
  return query
  with c as (
    select date_trunc('month', x.created_at at time zone 'UTC')::date as month, x.*
    from public.tenant_ai_calls x
    where x.created_at >= date_trunc('month', tenant_ai_spend.from_month)::timestamp at time zone 'UTC'
      and x.created_at < (date_trunc('month', tenant_ai_spend.to_month) + interval '1 month')::timestamp at time zone 'UTC'
  ),
  r as (
    select c.month, c.tenant_id, jsonb_object_agg(c.route, c.n order by c.route) as by_route
    from (select c.month, c.tenant_id, c.route, count(*) as n from c group by 1, 2, 3) c
    group by c.month, c.tenant_id
  )
  select c.month, c.tenant_id, t.monthly_ai_budget_usd, sum(c.cost_usd),
         case when t.monthly_ai_budget_usd > 0 then round(sum(c.cost_usd) / t.monthly_ai_budget_usd, 4) end,
         count(*)::integer, (count(*) filter (where c.status = 'error'))::integer,
         (select r.by_route from r where r.month = c.month and r.tenant_id = c.tenant_id)
  from c join public.tenants t on t.id = c.tenant_id
  group by c.month, c.tenant_id, t.monthly_ai_budget_usd
  order by c.month, c.tenant_id;
end;
$$;
comment on function analytics.tenant_ai_spend(date, date) is $$
AI coaching spend per tenant and calendar month (UTC) between two months: the budget (today's), what the calls cost,
the share of the budget spent (null for a zero budget), calls, failed calls and calls per route. Totals only.
Example: select * from analytics.tenant_ai_spend('2026-11-01', '2026-11-30');
$$;
revoke execute on function analytics.tenant_ai_spend(date, date) from public, anon, authenticated;
grant execute on function analytics.tenant_ai_spend(date, date) to coach_analyst, service_role;

-- The endpoints' context --------------------------------------------------------------------

create or replace function public.get_tenant_context(
  tenant_id uuid,
  goal_ids uuid[] default null,
  action_ids uuid[] default null,
  issue_ids uuid[] default null
)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  -- Security invoker: every read is the caller's, so RLS decides what is in it; a tenant the
  -- caller does not belong to is not visible and the answer is null.
  select jsonb_build_object(
    'tenant', jsonb_build_object('id', t.id, 'name', t.name, 'monthly_ai_budget_usd', t.monthly_ai_budget_usd),
    'role', case when private.caller_role() in ('service_role', 'postgres') then 'service_role' else private.tenant_role(t.id) end,
    'owner_id', (select m.user_id from public.tenant_members m where m.tenant_id = t.id and m.role = 'owner'
                 order by m.created_at, m.user_id limit 1),
    'foundation', (select jsonb_build_object('purpose', f.purpose, 'vision', f.vision, 'mission', f.mission,
                     'core_values', to_jsonb(f.core_values), 'niche', f.niche, 'ideal_client', f.ideal_client,
                     'value_proposition', f.value_proposition)
                   from public.business_foundations f where f.tenant_id = t.id),
    'goals', coalesce((select jsonb_agg(jsonb_build_object('id', g.id, 'title', g.title, 'description', g.description,
                         'horizon', g.horizon, 'status', g.status, 'owner_id', g.owner_id, 'due_date', g.due_date)
                         order by g.created_at, g.id)
                       from (select * from public.goals g where g.tenant_id = t.id
                             order by g.id = any (coalesce(get_tenant_context.goal_ids, '{}')) desc,
                                      g.status in ('active', 'draft', 'on_hold') desc, g.created_at desc, g.id
                             limit 100 + coalesce(cardinality(get_tenant_context.goal_ids), 0)) g), '[]'),
    'strategies', coalesce((select jsonb_agg(jsonb_build_object('id', s.id, 'goal_id', s.goal_id, 'title', s.title,
                              'description', s.description, 'status', s.status) order by s.created_at, s.id)
                            from (select * from public.strategies s where s.tenant_id = t.id order by s.created_at, s.id limit 200) s), '[]'),
    'kpis', coalesce((select jsonb_agg(jsonb_build_object('id', k.id, 'goal_id', k.goal_id, 'name', k.name, 'unit', k.unit,
                        'baseline', k.baseline, 'target', k.target, 'current_value', k.current_value, 'direction', k.direction)
                        order by k.created_at, k.id)
                      from (select * from public.kpis k where k.tenant_id = t.id order by k.created_at, k.id limit 100) k), '[]'),
    -- Open actions first, then the most recent done or cancelled ones.
    'actions', coalesce((select jsonb_agg(jsonb_build_object('id', a.id, 'goal_id', a.goal_id, 'title', a.title,
                           'due_date', a.due_date, 'priority', a.priority, 'status', a.status, 'assignee_id', a.assignee_id,
                           'estimated_hours', a.estimated_hours, 'dependencies', to_jsonb(a.dependencies))
                           order by a.created_at, a.id)
                         from (select * from public.actions a where a.tenant_id = t.id
                               order by a.id = any (coalesce(get_tenant_context.action_ids, '{}')) desc,
                                        a.status in ('done', 'cancelled'), a.updated_at desc, a.id
                               limit 200 + coalesce(cardinality(get_tenant_context.action_ids), 0)) a), '[]'),
    'issues', coalesce((select jsonb_agg(jsonb_build_object('id', i.id, 'title', i.title, 'description', i.description,
                          'impact', i.impact, 'status', i.status) order by i.created_at, i.id)
                        from (select * from public.business_issues i where i.tenant_id = t.id
                              order by i.id = any (coalesce(get_tenant_context.issue_ids, '{}')) desc,
                                       i.status in ('resolved', 'wont_fix'), i.created_at desc, i.id
                              limit 100 + coalesce(cardinality(get_tenant_context.issue_ids), 0)) i), '[]'),
    'figures', coalesce((select jsonb_agg(jsonb_build_object('month', b.month, 'revenue_usd', b.revenue_usd,
                           'customers', b.customers, 'churned_customers', b.churned_customers, 'team_size', b.team_size)
                           order by b.month)
                         from (select * from public.business_figures b where b.tenant_id = t.id order by b.month desc limit 12) b), '[]'),
    'team', coalesce((select jsonb_agg(jsonb_build_object('user_id', m.user_id, 'role', m.role) order by m.created_at, m.user_id)
                      from public.tenant_members m where m.tenant_id = t.id), '[]')
  )
  from public.tenants t
  where t.id = get_tenant_context.tenant_id
$$;
comment on function public.get_tenant_context(uuid, uuid[], uuid[], uuid[]) is $$
Everything the AI coaching endpoints reason over for one tenant, as the caller may read it: the tenant (with its monthly
AI budget), the caller's role, the first owner, the foundation, goals (100, open ones first), strategies (200), KPIs
(100), actions (200, open ones first), issues (100, open ones first), the last 12 months of figures and the team. The
goals, actions and issues named in goal_ids, action_ids and issue_ids are always in it (on top of those limits) when
the caller may read them. Null when the tenant does not exist or the caller is not a member. Members and the service
role.
Example: supabase.rpc('get_tenant_context', { tenant_id: '7e4a0000-0000-4000-8000-000000000001' })
$$;
revoke execute on function public.get_tenant_context(uuid, uuid[], uuid[], uuid[]) from public, anon;
grant execute on function public.get_tenant_context(uuid, uuid[], uuid[], uuid[]) to authenticated, service_role;

-- The business-data cache -----------------------------------------------------------------

-- Unlogged: a cache, rebuilt on demand (emptied after a crash, never replicated).
create unlogged table private.business_data_cache (
  tenant_id uuid primary key,
  version bigint not null default 0,
  payload jsonb,
  computed_at timestamptz
);
alter table private.business_data_cache enable row level security;
-- Nobody reads it directly: the security definer functions below do, for members. The
-- policy says so where the linter can see it (the service role bypasses RLS anyway).
create policy "The business-data cache is readable by the service role"
  on private.business_data_cache for select to service_role
  using (true);
comment on table private.business_data_cache is
  'The business-data function''s cache (seed 003: "business_data:{tenant_id}", 5 minutes): the last document computed for a tenant and the version of its data; a write to the tenant''s goals, actions, issues, figures or members bumps the version and clears the document. Unlogged.';

create or replace function private.trigger_bump_business_data()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- Security definer: the writer cannot touch the cache itself. Runs after each written row;
-- the cache row stays locked until the writer commits, so a reader's store that raced the
-- write waits for it and then sees the new version (private.business_data_store).
declare
  affected uuid := case when tg_op = 'DELETE' then old.tenant_id else new.tenant_id end;
begin
  insert into private.business_data_cache as c (tenant_id, version) values (affected, 1)
  on conflict (tenant_id) do update set version = c.version + 1, payload = null, computed_at = null;
  if tg_op = 'UPDATE' and old.tenant_id is distinct from new.tenant_id then
    insert into private.business_data_cache as c (tenant_id, version) values (old.tenant_id, 1)
    on conflict (tenant_id) do update set version = c.version + 1, payload = null, computed_at = null;
  end if;
  return null;
end;
$$;
comment on function private.trigger_bump_business_data() is
  'Trigger (after each row of goals, actions, business_issues, business_figures, tenant_members): bumps the tenant''s business-data version and clears its cached document.';
revoke execute on function private.trigger_bump_business_data() from public, anon, authenticated;

do $$
declare
  t text;
begin
  foreach t in array array['goals', 'actions', 'business_issues', 'business_figures', 'tenant_members'] loop
    execute format('create trigger %I after insert or update or delete on public.%I for each row execute function private.trigger_bump_business_data()',
      t || '_bump_business_data', t);
  end loop;
end
$$;

create or replace function private.business_data_cached(tenant_id uuid, at timestamptz default now())
returns table (member_role text, version bigint, payload jsonb, age_seconds double precision)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads the cache, which nobody else can. One row when the caller is a
  -- member (or the service role and the tenant exists), none otherwise: the payload is the
  -- cached document when there is one younger than five minutes at `at`, else null.
  select r.role, coalesce(c.version, 0),
         case when c.computed_at > business_data_cached.at - interval '5 minutes' then c.payload end,
         case when c.computed_at > business_data_cached.at - interval '5 minutes'
              then greatest(extract(epoch from business_data_cached.at - c.computed_at)::float8, 0) end
  from (select case when private.caller_role() in ('service_role', 'postgres')
                     and exists (select 1 from public.tenants t where t.id = business_data_cached.tenant_id) then 'service_role'
                    else private.tenant_role(business_data_cached.tenant_id) end as role) r
  left join private.business_data_cache c on c.tenant_id = business_data_cached.tenant_id
  where r.role is not null
$$;
comment on function private.business_data_cached(uuid, timestamptz) is
  'For the business-data function: the caller''s role in the tenant, the version of its data and the cached document when it is younger than five minutes at `at` (default now; payload and age_seconds null otherwise). No row when the caller is not a member.';
revoke execute on function private.business_data_cached(uuid, timestamptz) from public, anon;
grant execute on function private.business_data_cached(uuid, timestamptz) to authenticated, service_role;

create or replace function private.business_data_store(tenant_id uuid, read_version bigint, payload jsonb)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: writes the cache, which nobody else can; only for a member of the tenant.
-- Stores the document only when the tenant's data is still at the version read before it
-- was computed, so a document computed across a write is never cached.
declare
  stored integer;
begin
  if not (private.caller_role() in ('service_role', 'postgres') or private.tenant_role(business_data_store.tenant_id) is not null) then
    return false;
  end if;
  insert into private.business_data_cache as c (tenant_id, version, payload, computed_at)
  values (business_data_store.tenant_id, business_data_store.read_version, business_data_store.payload, now())
  on conflict on constraint business_data_cache_pkey do update set payload = excluded.payload, computed_at = excluded.computed_at
    where c.version = business_data_store.read_version;
  get diagnostics stored = row_count;
  return stored = 1;
end;
$$;
comment on function private.business_data_store(uuid, bigint, jsonb) is
  'For the business-data function: caches a tenant''s document if its data is still at read_version (true when stored). Members and the service role.';
revoke execute on function private.business_data_store(uuid, bigint, jsonb) from public, anon;
grant execute on function private.business_data_store(uuid, bigint, jsonb) to authenticated, service_role;

-- Writes a client needs beyond plain inserts -------------------------------------------------

create or replace function public.upsert_business_foundation(
  tenant_id uuid,
  purpose text default null,
  vision text default null,
  mission text default null,
  core_values text[] default '{}',
  niche text default null,
  ideal_client text default null,
  value_proposition text default null
)
returns public.business_foundations
language plpgsql
volatile
security invoker
set search_path = ''
as $$
-- Security invoker: the table's policies decide (owners, admins and members write).
declare
  saved public.business_foundations;
begin
  if private.tenant_role(upsert_business_foundation.tenant_id) is null and private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  insert into public.business_foundations as f (tenant_id, purpose, vision, mission, core_values, niche, ideal_client, value_proposition)
  values (upsert_business_foundation.tenant_id, upsert_business_foundation.purpose, upsert_business_foundation.vision,
          upsert_business_foundation.mission, coalesce(upsert_business_foundation.core_values, '{}'), upsert_business_foundation.niche,
          upsert_business_foundation.ideal_client, upsert_business_foundation.value_proposition)
  on conflict on constraint business_foundations_pkey do update set
    purpose = excluded.purpose, vision = excluded.vision, mission = excluded.mission, core_values = excluded.core_values,
    niche = excluded.niche, ideal_client = excluded.ideal_client, value_proposition = excluded.value_proposition
  returning * into saved;
  return saved;
end;
$$;
comment on function public.upsert_business_foundation(uuid, text, text, text, text[], text, text, text) is $$
Writes the tenant's foundation (all of it: a field left out becomes null). Owners, admins and members; a coach gets
42501, a non-member PT404.
Example: supabase.rpc('upsert_business_foundation', { tenant_id, purpose: '…', core_values: ['…'] })
$$;
revoke execute on function public.upsert_business_foundation(uuid, text, text, text, text[], text, text, text) from public, anon;
grant execute on function public.upsert_business_foundation(uuid, text, text, text, text[], text, text, text) to authenticated, service_role;

create or replace function public.record_business_figures(
  tenant_id uuid,
  month date,
  revenue_usd numeric default null,
  customers integer default null,
  churned_customers integer default null,
  team_size integer default null
)
returns public.business_figures
language plpgsql
volatile
security invoker
set search_path = ''
as $$
-- Security invoker: the table's policies decide (owners, admins and members write).
declare
  saved public.business_figures;
begin
  if private.tenant_role(record_business_figures.tenant_id) is null and private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  if record_business_figures.month is null then
    raise exception 'month is required' using errcode = '22023', constraint = 'business_figures_month_first_day';
  end if;
  insert into public.business_figures as b (tenant_id, month, revenue_usd, customers, churned_customers, team_size)
  values (record_business_figures.tenant_id, date_trunc('month', record_business_figures.month)::date,
          record_business_figures.revenue_usd, record_business_figures.customers,
          record_business_figures.churned_customers, record_business_figures.team_size)
  on conflict on constraint business_figures_pkey do update set
    revenue_usd = excluded.revenue_usd, customers = excluded.customers,
    churned_customers = excluded.churned_customers, team_size = excluded.team_size
  returning * into saved;
  return saved;
end;
$$;
comment on function public.record_business_figures(uuid, date, numeric, integer, integer, integer) is $$
Records a tenant's figures for the month containing `month` (revenue in USD, customers, churned customers, team size),
replacing that month's. Owners, admins and members; a coach gets 42501, a non-member PT404; negative figures 23514.
Example: supabase.rpc('record_business_figures', { tenant_id, month: '2026-11-01', revenue_usd: 12450, customers: 97 })
$$;
revoke execute on function public.record_business_figures(uuid, date, numeric, integer, integer, integer) from public, anon;
grant execute on function public.record_business_figures(uuid, date, numeric, integer, integer, integer) to authenticated, service_role;

create or replace function public.set_action_status(action_id uuid, status text)
returns public.actions
language plpgsql
volatile
security invoker
set search_path = ''
as $$
-- Security invoker: the table's policies decide; an action the caller cannot see is PT404.
declare
  saved public.actions;
begin
  if set_action_status.status is null or set_action_status.status not in ('todo', 'in_progress', 'blocked', 'done', 'cancelled') then
    raise exception 'status must be one of todo, in_progress, blocked, done, cancelled' using errcode = '22023',
      constraint = 'actions_status_known';
  end if;
  if not exists (select 1 from public.actions a where a.id = set_action_status.action_id) then
    raise exception 'Action not found' using errcode = 'PT404';
  end if;
  update public.actions a set status = set_action_status.status where a.id = set_action_status.action_id
  returning * into saved;
  if saved.id is null then
    raise exception 'Only the tenant''s owners, admins and members change its actions' using errcode = '42501';
  end if;
  return saved;
end;
$$;
comment on function public.set_action_status(uuid, text) is $$
Moves an action to todo | in_progress | blocked | done | cancelled. Owners, admins and members; a coach gets 42501; an
action the caller cannot see PT404.
Example: supabase.rpc('set_action_status', { action_id: '7e4a0000-ac71-4000-8000-000000000003', status: 'done' })
$$;
revoke execute on function public.set_action_status(uuid, text) from public, anon;
grant execute on function public.set_action_status(uuid, text) to authenticated, service_role;

create or replace function public.set_business_issue_status(issue_id uuid, status text)
returns public.business_issues
language plpgsql
volatile
security invoker
set search_path = ''
as $$
-- Security invoker: the table's policies decide; an issue the caller cannot see is PT404.
declare
  saved public.business_issues;
begin
  if set_business_issue_status.status is null
     or set_business_issue_status.status not in ('open', 'investigating', 'resolved', 'wont_fix') then
    raise exception 'status must be one of open, investigating, resolved, wont_fix' using errcode = '22023',
      constraint = 'business_issues_status_known';
  end if;
  if not exists (select 1 from public.business_issues i where i.id = set_business_issue_status.issue_id) then
    raise exception 'Issue not found' using errcode = 'PT404';
  end if;
  update public.business_issues i set status = set_business_issue_status.status where i.id = set_business_issue_status.issue_id
  returning * into saved;
  if saved.id is null then
    raise exception 'Only the tenant''s owners, admins and members change its issues' using errcode = '42501';
  end if;
  return saved;
end;
$$;
comment on function public.set_business_issue_status(uuid, text) is $$
Moves an issue to open | investigating | resolved | wont_fix. Owners, admins and members; a coach gets 42501; an issue the
caller cannot see PT404.
Example: supabase.rpc('set_business_issue_status', { issue_id: '7e4a0000-155e-4000-8000-000000000001', status: 'resolved' })
$$;
revoke execute on function public.set_business_issue_status(uuid, text) from public, anon;
grant execute on function public.set_business_issue_status(uuid, text) to authenticated, service_role;

-- Rate limit and prompts --------------------------------------------------------------------

-- Each AI coaching call costs money: sized like summary's per user, with room for a backend.
insert into private.rate_limit_policies (endpoint, role, quota, window_seconds) values
  ('coaching-ai', 'authenticated', 120, 3600),
  ('coaching-ai', 'service_role', 5000, 3600)
on conflict (endpoint, role) do nothing;

-- Version 1 of every route's prompt, labelled production. Placeholders are filled by the
-- function from get_tenant_context (see docs/ai-coaching.md).
insert into public.prompt_templates (name, version, label, system_template, user_template, parameters) values
  ('coaching/alignment-check', 1, 'production', 'You are a business coach. Judge how well one goal serves the organisation''s foundation. Score alignment from 0 to 100 and name the parts of the foundation it serves or ignores. Be specific and brief.', E'Foundation:\n{{foundation}}\n\nGoal:\n{{goal}}', '{"temperature": 0.2}'),
  ('coaching/alignment-explanation', 1, 'production', 'You are a business coach. Explain, in plain language for a small-business owner, why a goal is or is not aligned with the organisation''s purpose, vision, mission and values. Cite the words of the foundation you rely on.', E'Foundation:\n{{foundation}}\n\nGoal:\n{{goal}}\n\nAlignment score so far: {{score}}', '{"temperature": 0.2}'),
  ('coaching/alignment-suggestions', 1, 'production', 'You are a business coach. Suggest up to five concrete changes that would bring a goal closer to the organisation''s foundation. Each suggestion says what to change and why.', E'Foundation:\n{{foundation}}\n\nGoal:\n{{goal}}', '{"temperature": 0.2}'),
  ('coaching/strategy-suggestions', 1, 'production', 'You are a strategy coach. Propose up to five strategies for reaching a goal, fitting the organisation''s niche, ideal client and value proposition, and different from the strategies it already has.', E'Foundation:\n{{foundation}}\n\nGoal:\n{{goal}}\n\nExisting strategies:\n{{strategies}}', '{"temperature": 0.2}'),
  ('coaching/kpi-recommendations', 1, 'production', 'You are a business coach. Recommend up to five KPIs that show progress on a goal: name, unit, a realistic target and whether it should increase, decrease or hold. Prefer measures the organisation can collect today.', E'Goal:\n{{goal}}\n\nExisting KPIs:\n{{kpis}}\n\nRecent monthly figures:\n{{figures}}', '{"temperature": 0.2}'),
  ('operations/strategic-alignment', 1, 'production', 'You are an operations coach. For each action, judge how directly it advances the organisation''s goals (0 to 100) and flag actions that serve no goal.', E'Goals:\n{{goals}}\n\nActions:\n{{actions}}', '{"temperature": 0.2}'),
  ('operations/prioritization-suggestions', 1, 'production', 'You are an operations coach. Suggest a priority (low, medium, high, critical) for each action from its goal''s importance, due date, dependencies and status, and say why when it differs from the current one.', E'Goals:\n{{goals}}\n\nActions:\n{{actions}}\n\nToday: {{today}}', '{"temperature": 0.2}'),
  ('operations/scheduling-suggestions', 1, 'production', 'You are an operations coach. Propose start and due dates for open actions so that dependencies come first, no assignee works on them more than the hours per week given, and deadlines hold where they can.', E'Actions:\n{{actions}}\n\nTeam (open_hours: estimated hours of open work):\n{{team}}\n\nHours per assignee per week: {{hours_per_week}}\n\nToday: {{today}}', '{"temperature": 0.2}'),
  ('operations/root-cause-suggestions', 1, 'production', 'You are an operations coach. For one issue, pre-fill a Five Whys chain, a fishbone of likely causes (people, process, tools, environment, materials, measurement) and the SWOT elements specific to this issue. Mark guesses as such.', E'Foundation:\n{{foundation}}\n\nIssue:\n{{issue}}\n\nRelated actions:\n{{actions}}', '{"temperature": 0.2}'),
  ('operations/action-suggestions', 1, 'production', 'You are an operations coach. Draft an action plan for one issue: up to seven actions with title, priority, estimated hours and dependencies among them, each tied to the cause it addresses.', E'Issue:\n{{issue}}\n\nGoals:\n{{goals}}\n\nTeam:\n{{team}}', '{"temperature": 0.2}'),
  ('analysis/operations', 1, 'production', 'You are a business analyst. Write a SWOT analysis of the organisation''s operations from its goals, actions, open issues and recent figures: up to five items per quadrant.', E'Foundation:\n{{foundation}}\n\nGoals:\n{{goals}}\n\nActions:\n{{actions}}\n\nIssues:\n{{issues}}\n\nFigures:\n{{figures}}', '{"temperature": 0.2}')
on conflict (name, version) do nothing;
