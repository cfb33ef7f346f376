-- Purpose: action plans with SMART criteria and their milestones, derived from stage 4
-- and the AI summary (or added by hand) and then managed by the user. Status moves only
-- along allowed transitions; completed_at of a milestone is set by the database.
-- Objects: tables public.action_plans, public.milestones; functions
-- private.trigger_action_plan_status, private.trigger_milestone_completed_at.
-- Destructive: none.

create table public.action_plans (
  id uuid primary key default gen_random_uuid(),
  session_id uuid references public.coaching_sessions (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  title text not null,
  description text,
  goal_statement text,
  smart_criteria jsonb,
  priority smallint not null default 3,
  status text not null default 'pending',
  timeline_start date,
  timeline_end date,
  source text not null default 'manual',
  source_key text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint action_plans_title_length check (char_length(btrim(title)) between 1 and 200),
  constraint action_plans_priority_range check (priority between 1 and 5),
  constraint action_plans_status_known check (status in ('pending', 'in_progress', 'completed', 'blocked')),
  constraint action_plans_source_known check (source in ('stage_4', 'summary', 'manual')),
  constraint action_plans_timeline_ordered check (timeline_end is null or timeline_start is null or timeline_end >= timeline_start),
  constraint action_plans_smart_criteria_object check (smart_criteria is null or jsonb_typeof(smart_criteria) = 'object'),
  -- Plans derived from a session are keyed, so a refreshed summary updates them in place.
  constraint action_plans_session_source_key unique (session_id, source, source_key)
);
alter table public.action_plans enable row level security;
comment on table public.action_plans is
  'Action plans: title, description, goal, SMART criteria, priority 1..5, status pending/in_progress/completed/blocked, timeline; from stage 4, the AI summary, or manual.';
create index action_plans_user_id_created_at_idx on public.action_plans (user_id, created_at desc);

create table public.milestones (
  id uuid primary key default gen_random_uuid(),
  action_plan_id uuid not null references public.action_plans (id) on delete cascade,
  title text not null,
  description text,
  due_date date,
  completed boolean not null default false,
  completed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint milestones_title_length check (char_length(btrim(title)) between 1 and 200),
  constraint milestones_completed_at_with_completed check (completed = (completed_at is not null)),
  constraint milestones_plan_title_key unique (action_plan_id, title)
);
alter table public.milestones enable row level security;
comment on table public.milestones is 'Milestones of an action plan; completed_at is set by the database when completed turns true.';

create trigger action_plans_set_updated_at
  before update on public.action_plans
  for each row execute function private.trigger_set_updated_at();
create trigger milestones_set_updated_at
  before update on public.milestones
  for each row execute function private.trigger_set_updated_at();

create or replace function private.trigger_action_plan_status()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status is distinct from old.status and not (old.status, new.status) in (
    ('pending', 'in_progress'), ('pending', 'blocked'), ('pending', 'completed'),
    ('in_progress', 'completed'), ('in_progress', 'blocked'), ('in_progress', 'pending'),
    ('blocked', 'in_progress'), ('blocked', 'pending'),
    ('completed', 'in_progress')
  ) then
    raise exception 'An action plan cannot move from % to %', old.status, new.status using errcode = '22023';
  end if;
  return new;
end;
$$;
comment on function private.trigger_action_plan_status() is
  'Trigger on action_plans: allows pending->in_progress/blocked/completed, in_progress->completed/blocked/pending, blocked->in_progress/pending, completed->in_progress.';
revoke execute on function private.trigger_action_plan_status() from public, anon, authenticated;
create trigger action_plans_status_transition
  before update of status on public.action_plans
  for each row execute function private.trigger_action_plan_status();

create or replace function private.trigger_milestone_completed_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.completed is distinct from old.completed then
    new.completed_at := case when new.completed then now() end;
  else
    new.completed_at := old.completed_at;
  end if;
  return new;
end;
$$;
comment on function private.trigger_milestone_completed_at() is
  'Trigger on milestones: completed_at is now() when completed turns true, null when it turns false, never set by clients.';
revoke execute on function private.trigger_milestone_completed_at() from public, anon, authenticated;
create trigger milestones_completed_at
  before insert or update on public.milestones
  for each row execute function private.trigger_milestone_completed_at();

grant select on public.action_plans, public.milestones to authenticated;
grant select, insert, update, delete on public.action_plans, public.milestones to service_role;

-- Owners read directly; an assigned coach reads through the audited list_action_plans.
create policy "Action plans are viewable by their owner"
  on public.action_plans for select to authenticated
  using ((select auth.uid()) = user_id);

create policy "Milestones are viewable by the plan's owner"
  on public.milestones for select to authenticated
  using (exists (select 1 from public.action_plans p where p.id = action_plan_id and p.user_id = (select auth.uid())));
