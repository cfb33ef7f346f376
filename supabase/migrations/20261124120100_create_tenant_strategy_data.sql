-- Purpose: the business data the coaching endpoints reason over (issue 11; seed 003: the
-- Account and Traction services' data, here our own tenant-scoped tables): the business
-- foundation, goals, strategies per goal, KPIs, actions, issues and monthly figures.
-- Every table carries tenant_id; its members read it and owners, admins and members write
-- it (coaches read only), all through private.tenant_role. References between the tables
-- and to people stay inside the tenant: composite foreign keys on (tenant_id, id) and on
-- (tenant_id, user_id) of tenant_members, so a goal of tenant B or a non-member cannot be
-- named from tenant A, whatever the caller's rights. A member who leaves stops owning or
-- being assigned anything (set null).
-- Objects: tables public.business_foundations, public.goals, public.strategies,
-- public.kpis, public.actions, public.business_issues, public.business_figures, their
-- indexes, triggers, grants and policies. Destructive: none.

create table public.business_foundations (
  tenant_id uuid primary key references public.tenants (id) on delete cascade,
  purpose text,
  vision text,
  mission text,
  core_values text[] not null default '{}',
  niche text,
  ideal_client text,
  value_proposition text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint business_foundations_text_length check (
    coalesce(char_length(purpose), 0) <= 2000 and coalesce(char_length(vision), 0) <= 2000
    and coalesce(char_length(mission), 0) <= 2000 and coalesce(char_length(niche), 0) <= 2000
    and coalesce(char_length(ideal_client), 0) <= 2000 and coalesce(char_length(value_proposition), 0) <= 2000),
  constraint business_foundations_core_values_bounded check (
    cardinality(core_values) <= 20 and char_length(array_to_string(core_values, '')) <= 4000)
);
comment on table public.business_foundations is
  'A tenant''s foundation: purpose, vision, mission, core values, niche, ideal client, value proposition (one row per tenant).';

create table public.goals (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  title text not null,
  description text,
  horizon text not null default 'year',
  status text not null default 'active',
  owner_id uuid,
  due_date date,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint goals_tenant_id_id_key unique (tenant_id, id),
  constraint goals_owner_is_member foreign key (tenant_id, owner_id)
    references public.tenant_members (tenant_id, user_id) on delete set null (owner_id),
  constraint goals_title_length check (char_length(btrim(title)) between 1 and 200),
  constraint goals_description_length check (description is null or char_length(description) <= 4000),
  constraint goals_horizon_known check (horizon in ('quarter', 'year', 'three_years', 'long_term')),
  constraint goals_status_known check (status in ('draft', 'active', 'on_hold', 'achieved', 'abandoned'))
);
comment on table public.goals is
  'A tenant''s goals: title, description, horizon (quarter | year | three_years | long_term), status (draft | active | on_hold | achieved | abandoned), owner (a member), due date.';
create index goals_tenant_id_owner_id_idx on public.goals (tenant_id, owner_id);

create table public.strategies (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  goal_id uuid not null,
  title text not null,
  description text,
  status text not null default 'active',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint strategies_goal_fkey foreign key (tenant_id, goal_id) references public.goals (tenant_id, id) on delete cascade,
  constraint strategies_title_length check (char_length(btrim(title)) between 1 and 200),
  constraint strategies_description_length check (description is null or char_length(description) <= 4000),
  constraint strategies_status_known check (status in ('proposed', 'active', 'retired'))
);
comment on table public.strategies is 'How a goal is pursued: title, description, status (proposed | active | retired).';
create index strategies_tenant_id_goal_id_idx on public.strategies (tenant_id, goal_id);

create table public.kpis (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  goal_id uuid,
  name text not null,
  unit text not null,
  baseline numeric,
  target numeric,
  current_value numeric,
  direction text not null default 'increase',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint kpis_goal_fkey foreign key (tenant_id, goal_id) references public.goals (tenant_id, id) on delete set null (goal_id),
  constraint kpis_name_length check (char_length(btrim(name)) between 1 and 200),
  constraint kpis_unit_length check (char_length(btrim(unit)) between 1 and 40),
  constraint kpis_direction_known check (direction in ('increase', 'decrease', 'maintain')),
  constraint kpis_values_finite check (
    (baseline is null or abs(baseline) < 1e15) and (target is null or abs(target) < 1e15)
    and (current_value is null or abs(current_value) < 1e15))
);
comment on table public.kpis is
  'Key performance indicators: name, unit, baseline, target, current value, direction (increase | decrease | maintain), optionally of a goal.';
create index kpis_tenant_id_goal_id_idx on public.kpis (tenant_id, goal_id);

create table public.actions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  goal_id uuid,
  title text not null,
  due_date date,
  priority text not null default 'medium',
  status text not null default 'todo',
  assignee_id uuid,
  estimated_hours numeric(7, 2),
  dependencies uuid[] not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint actions_goal_fkey foreign key (tenant_id, goal_id) references public.goals (tenant_id, id) on delete set null (goal_id),
  constraint actions_assignee_is_member foreign key (tenant_id, assignee_id)
    references public.tenant_members (tenant_id, user_id) on delete set null (assignee_id),
  constraint actions_title_length check (char_length(btrim(title)) between 1 and 200),
  constraint actions_priority_known check (priority in ('low', 'medium', 'high', 'critical')),
  constraint actions_status_known check (status in ('todo', 'in_progress', 'blocked', 'done', 'cancelled')),
  constraint actions_estimated_hours_range check (estimated_hours is null or estimated_hours between 0 and 10000),
  constraint actions_dependencies_bounded check (cardinality(dependencies) <= 50 and not (id = any (dependencies)))
);
comment on table public.actions is
  'Actions: title, due date, priority (low | medium | high | critical), status (todo | in_progress | blocked | done | cancelled), assignee (a member), estimated hours, dependencies (ids of the tenant''s other actions), optionally of a goal.';
comment on column public.actions.dependencies is
  'Ids of actions of the same tenant this one waits for (checked on write; an action deleted later simply no longer matches).';
create index actions_tenant_id_goal_id_idx on public.actions (tenant_id, goal_id);
create index actions_tenant_id_assignee_id_idx on public.actions (tenant_id, assignee_id);

-- Dependencies name actions of the same tenant (an array cannot carry a foreign key).
create or replace function private.trigger_check_action_dependencies()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- Security definer: counts the tenant's actions whatever the writer may read.
begin
  if cardinality(new.dependencies) > 0 and (
    select count(*) from public.actions a where a.tenant_id = new.tenant_id and a.id = any (new.dependencies)
  ) <> (select count(distinct d) from unnest(new.dependencies) d) then
    raise exception 'dependencies must name other actions of the same tenant' using errcode = '23503',
      constraint = 'actions_dependencies_known';
  end if;
  return new;
end;
$$;
comment on function private.trigger_check_action_dependencies() is
  'Trigger on actions (before insert or update of dependencies): every dependency names an action of the same tenant (23503, actions_dependencies_known).';
revoke execute on function private.trigger_check_action_dependencies() from public, anon, authenticated;
create trigger actions_check_dependencies
  before insert or update of dependencies on public.actions
  for each row execute function private.trigger_check_action_dependencies();

create table public.business_issues (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  title text not null,
  description text,
  impact text not null default 'medium',
  status text not null default 'open',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint business_issues_title_length check (char_length(btrim(title)) between 1 and 200),
  constraint business_issues_description_length check (description is null or char_length(description) <= 4000),
  constraint business_issues_impact_known check (impact in ('low', 'medium', 'high', 'critical')),
  constraint business_issues_status_known check (status in ('open', 'investigating', 'resolved', 'wont_fix'))
);
comment on table public.business_issues is
  'A tenant''s open problems: title, description, impact (low | medium | high | critical), status (open | investigating | resolved | wont_fix).';
create index business_issues_tenant_id_status_idx on public.business_issues (tenant_id, status);

create table public.business_figures (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  month date not null,
  revenue_usd numeric(14, 2),
  customers integer,
  churned_customers integer,
  team_size integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, month),
  constraint business_figures_month_first_day check (extract(day from month) = 1),
  constraint business_figures_nonnegative check (
    coalesce(revenue_usd, 0) >= 0 and coalesce(customers, 0) >= 0 and coalesce(churned_customers, 0) >= 0
    and coalesce(team_size, 0) >= 0)
);
comment on table public.business_figures is
  'Monthly figures per tenant (month = its first day): revenue (USD), customers, churned customers, team size. Stands in for the seed''s Account and Billing data.';

-- Updated-at, grants and the same four policies on every table.
do $$
declare
  t text;
begin
  foreach t in array array['business_foundations', 'goals', 'strategies', 'kpis', 'actions', 'business_issues', 'business_figures'] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('create trigger %I before update on public.%I for each row execute function private.trigger_set_updated_at()',
      t || '_set_updated_at', t);
    execute format('grant select, insert, update, delete on public.%I to authenticated, service_role', t);
    execute format('create policy %I on public.%I for select to authenticated using (private.tenant_role(tenant_id) is not null)',
      'Tenant members read', t);
    execute format('create policy %I on public.%I for insert to authenticated with check (private.tenant_role(tenant_id) in (''owner'', ''admin'', ''member''))',
      'Tenant owners, admins and members add', t);
    execute format('create policy %I on public.%I for update to authenticated using (private.tenant_role(tenant_id) in (''owner'', ''admin'', ''member'')) with check (private.tenant_role(tenant_id) in (''owner'', ''admin'', ''member''))',
      'Tenant owners, admins and members change', t);
    execute format('create policy %I on public.%I for delete to authenticated using (private.tenant_role(tenant_id) in (''owner'', ''admin'', ''member''))',
      'Tenant owners, admins and members delete', t);
  end loop;
end
$$;
