-- Purpose: which human coach works with which client, and when. Membership checks for
-- RLS go through private.is_assigned_coach(client_id). Assignments are managed by the
-- service role (admin tools); coach and client can each read their own.
-- Objects: table public.coach_assignments; functions private.is_assigned_coach,
-- private.trigger_check_coach_role; the SELECT policy on public.profiles.
-- Destructive: replaces the policy "Profiles are viewable by their owner" with one that
-- also admits the assigned coach (same rows for owners).

create table public.coach_assignments (
  id uuid primary key default gen_random_uuid(),
  coach_id uuid not null references public.profiles (id) on delete cascade,
  client_id uuid not null references public.profiles (id) on delete cascade,
  starts_at timestamptz not null default now(),
  ends_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint coach_assignments_not_self check (coach_id <> client_id),
  constraint coach_assignments_window_valid check (ends_at is null or ends_at > starts_at),
  -- An assignment is identified by coach, client and start. The key exists in both column
  -- orders so that lookups by coach (is_assigned_coach, the coach's policy) and by client
  -- (the client's policy, the client_id foreign key) each have a leading column.
  constraint coach_assignments_coach_client_start_key unique (coach_id, client_id, starts_at),
  constraint coach_assignments_client_coach_start_key unique (client_id, coach_id, starts_at)
);
alter table public.coach_assignments enable row level security;

comment on table public.coach_assignments is
  'A human coach assigned to a client for a window [starts_at, ends_at); ends_at null means open-ended.';

-- One open assignment per coach and client.
create unique index coach_assignments_open_pair_key
  on public.coach_assignments (coach_id, client_id) where ends_at is null;

create trigger coach_assignments_set_updated_at
  before update on public.coach_assignments
  for each row execute function private.trigger_set_updated_at();

create or replace function private.trigger_check_coach_role()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: reads the coach's profile whatever the writer may see.
  if not exists (select 1 from public.profiles p where p.id = new.coach_id and p.role = 'coach') then
    raise exception 'Only a profile with role coach can be assigned as a coach'
      using errcode = '23514';
  end if;
  return new;
end;
$$;
comment on function private.trigger_check_coach_role() is
  'Trigger on coach_assignments: refuses an assignment whose coach_id is not a profile with role coach.';
revoke execute on function private.trigger_check_coach_role() from public, anon, authenticated;

create trigger coach_assignments_check_coach_role
  before insert or update of coach_id on public.coach_assignments
  for each row execute function private.trigger_check_coach_role();

grant select on public.coach_assignments to authenticated;
grant select, insert, update, delete on public.coach_assignments to service_role;

create policy "Coach assignments are viewable by their coach and their client"
  on public.coach_assignments for select to authenticated
  using ((select auth.uid()) = coach_id or (select auth.uid()) = client_id);

create or replace function private.is_assigned_coach(client_id uuid, at timestamptz default now())
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer so RLS policies on other tables can call it without recursing
  -- through coach_assignments' own policies. It answers only for the caller (auth.uid()).
  select (select auth.uid()) is not null and exists (
    select 1
    from public.coach_assignments a
    where a.coach_id = (select auth.uid())
      and a.client_id = is_assigned_coach.client_id
      and a.starts_at <= is_assigned_coach.at
      and (a.ends_at is null or a.ends_at > is_assigned_coach.at)
  )
$$;
comment on function private.is_assigned_coach(uuid, timestamptz) is
  'True when the caller (auth.uid()) is a coach actively assigned to client_id at the given time.';
revoke execute on function private.is_assigned_coach(uuid, timestamptz) from public, anon;
grant execute on function private.is_assigned_coach(uuid, timestamptz) to authenticated, service_role;

-- One SELECT policy per role (splinter 0006): the owner's policy from create_profiles is
-- replaced by one that also lets the client's assigned coach read the profile.
drop policy "Profiles are viewable by their owner" on public.profiles;
create policy "Profiles are viewable by their owner and their assigned coach"
  on public.profiles for select to authenticated
  using ((select auth.uid()) = id or private.is_assigned_coach(id));
