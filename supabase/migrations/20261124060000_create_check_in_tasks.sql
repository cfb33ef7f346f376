-- Purpose: the 21-day check-in of a submitted application (seed: Coach Execution Engine,
-- section 3): one per user and application, due 21 days after submission, pending until
-- the user completes or dismisses it. completed_at is set by the database. The owner reads
-- their check-ins and may change only their status, and only from pending; the engine's
-- RPCs create them (in the transaction that moves an application to submitted).
-- Objects: type public.check_in_status; table public.check_in_tasks, its policies and
-- triggers; function private.trigger_check_in_status. Destructive: none.

create type public.check_in_status as enum ('pending', 'completed', 'dismissed');
comment on type public.check_in_status is 'The state of a check-in task: pending, then completed or dismissed.';

create table public.check_in_tasks (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  application_id uuid not null references public.applications (id) on delete cascade,
  due_at timestamptz not null,
  status public.check_in_status not null default 'pending',
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  -- One check-in per application per submission. Its index also serves lookups by user_id
  -- (the seed's (user_id) index would duplicate it).
  constraint check_in_tasks_user_application_key unique (user_id, application_id),
  constraint check_in_tasks_completed_at_with_status check ((status = 'completed') = (completed_at is not null))
);
alter table public.check_in_tasks enable row level security;
comment on table public.check_in_tasks is
  'Check-ins 21 days after an application is submitted (due_at = submitted_at + 21 days): "Have you heard back?". status pending | completed | dismissed; completed_at is set by the database.';

create index check_in_tasks_due_at_idx on public.check_in_tasks (due_at) where status = 'pending';
create index check_in_tasks_application_id_idx on public.check_in_tasks (application_id);

create or replace function private.trigger_check_in_status()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and new.status is distinct from old.status and old.status <> 'pending' then
    raise exception 'A % check-in cannot change its status', old.status using errcode = '22023';
  end if;
  new.completed_at := case when new.status = 'completed' then coalesce(
    case when tg_op = 'UPDATE' and old.status = 'completed' then old.completed_at end, now()) end;
  return new;
end;
$$;
comment on function private.trigger_check_in_status() is
  'Trigger on check_in_tasks: a status moves only from pending (22023 otherwise); completed_at is now() when it becomes completed and null otherwise, never what a client sent.';
revoke execute on function private.trigger_check_in_status() from public, anon, authenticated;
create trigger check_in_tasks_status
  before insert or update on public.check_in_tasks
  for each row execute function private.trigger_check_in_status();

grant select on public.check_in_tasks to authenticated;
grant update (status) on public.check_in_tasks to authenticated;
grant select, insert, update, delete on public.check_in_tasks to service_role;

create policy "Check-ins are viewable by their owner"
  on public.check_in_tasks for select to authenticated
  using ((select auth.uid()) = user_id);

create policy "Check-ins can be completed or dismissed by their owner"
  on public.check_in_tasks for update to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);
