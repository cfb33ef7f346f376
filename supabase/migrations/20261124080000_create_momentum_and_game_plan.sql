-- Purpose: momentum and the game plan (seed: Coach Execution Engine, sections 5, 7 and 8).
--  * private.momentum_parts(deadline, trust_score, at): deadline proximity, linear over a
--    30-day horizon (0 at 30 days or more before the deadline, 1 at the deadline), and
--    momentum = proximity x 0.6 + trust x 0.4, rounded to 2 places. Null past the
--    deadline: such an application leaves the plan.
--  * private.persist_momentum_scores(at): writes momentum_score of every open (draft)
--    application, and clears it for those that left the plan; a pg_cron job runs it hourly
--    (the seed's game plan job persists scores). The game plan computes on read.
--  * public.get_game_plan(user_id?, at?): the top three open applications by momentum
--    (ties: earlier deadline, then larger amount) with their breakdown; the check-ins that
--    are due; a micro-task when the top application has not progressed for 48 hours and the
--    user has not snoozed (worded by application_type); total debt lifted (amounts of
--    awarded applications the user confirmed, computed on read: the seed's option A). The
--    user reads their own; the service role and the user's assigned coach pass user_id (a
--    coach's read is recorded in audit.phi_access_log).
--  * public.respond_to_check_in(check_in_id, status): the owner completes or dismisses a
--    pending check-in.
--  * public.snooze_micro_task(until, at?): the owner snoozes the micro-task until a time
--    that is in the future and not past the nearest deadline of their open applications
--    (profiles.preferences.micro_task_snoozed_until: the seed's decision).
-- Objects: functions private.momentum_parts, private.persist_momentum_scores,
-- public.get_game_plan, public.respond_to_check_in, public.snooze_micro_task; pg_cron job
-- application-momentum-persist. Destructive: none.

create or replace function private.momentum_parts(deadline timestamptz, trust_score numeric, at timestamptz default now())
returns table (deadline_proximity numeric, momentum numeric)
language sql
immutable
set search_path = ''
as $$
  with p as (
    select case
      when momentum_parts.deadline is null then 0::numeric
      when momentum_parts.deadline < momentum_parts.at then null
      else greatest(0, least(1, 1 - extract(epoch from momentum_parts.deadline - momentum_parts.at)::numeric / (30 * 86400)))
    end as proximity
  )
  select round(p.proximity, 4), round(p.proximity * 0.6 + coalesce(momentum_parts.trust_score, 0) * 0.4, 2) from p
$$;
comment on function private.momentum_parts(timestamptz, numeric, timestamptz) is
  'Deadline proximity (linear over 30 days: 0 at 30 days or more, 1 at the deadline; 0 without a deadline; null past it) and momentum = proximity x 0.6 + trust x 0.4 (2 places).';
grant execute on function private.momentum_parts(timestamptz, numeric, timestamptz) to authenticated, service_role;

create or replace function private.persist_momentum_scores(at timestamptz default now())
returns integer
language sql
volatile
set search_path = ''
as $$
  with scored as (
    select a.id, case when a.status = 'draft' then m.momentum end as score
    from public.applications a
    join public.opportunities o on o.id = a.opportunity_id
    cross join lateral private.momentum_parts(o.deadline, o.trust_score, persist_momentum_scores.at) m
  ), changed as (
    update public.applications a set momentum_score = s.score
    from scored s
    where a.id = s.id and a.momentum_score is distinct from s.score
    returning 1
  )
  select count(*)::int from changed
$$;
comment on function private.persist_momentum_scores(timestamptz) is
  'Persists momentum_score for open (draft) applications and clears it for the others and those past their deadline; returns how many rows changed. Run hourly by pg_cron.';
revoke execute on function private.persist_momentum_scores(timestamptz) from public, anon, authenticated;

create extension if not exists pg_cron with schema pg_catalog;
select cron.schedule('application-momentum-persist', '7 * * * *', $$select private.persist_momentum_scores()$$);

create or replace function public.get_game_plan(user_id uuid default null, at timestamptz default now())
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: a coach reads a client's plan without rights on their tables; the
-- caller is checked first. Volatile: a coach's read is recorded.
declare
  caller uuid := (select auth.uid());
  role_name text := private.caller_role();
  target uuid := coalesce(get_game_plan.user_id, caller);
  plan jsonb;
  top_app record;
  snoozed_until timestamptz;
begin
  if target is null then
    raise exception 'Pass the user_id of the game plan to read' using errcode = '22023';
  end if;
  if not (target = caller or role_name in ('service_role', 'postgres') or private.is_assigned_coach(target, get_game_plan.at)) then
    raise exception 'Only the user, their assigned coach or the service role can read a game plan' using errcode = '42501';
  end if;
  select (p.preferences ->> 'micro_task_snoozed_until')::timestamptz into snoozed_until
  from public.profiles p where p.id = target;

  select a.id, o.title, o.application_type, a.last_progress_at into top_app
  from public.applications a
  join public.opportunities o on o.id = a.opportunity_id
  cross join lateral private.momentum_parts(o.deadline, o.trust_score, get_game_plan.at) m
  where a.user_id = target and a.status = 'draft' and m.momentum is not null
  order by m.momentum desc, o.deadline nulls last, o.amount desc nulls last, a.id
  limit 1;

  plan := jsonb_build_object(
    'user_id', target,
    'at', get_game_plan.at,
    'top', coalesce((
      select jsonb_agg(t.item order by t.rank)
      from (
        select row_number() over (order by m.momentum desc, o.deadline nulls last, o.amount desc nulls last, a.id) as rank,
               jsonb_build_object('application_id', a.id, 'opportunity_id', o.id, 'title', o.title, 'provider', o.provider,
                                  'amount', o.amount, 'deadline', o.deadline,
                                  'coach_state', public.db_to_coach_state(a.status, a.metadata),
                                  'momentum', m.momentum, 'deadline_proximity', m.deadline_proximity, 'trust_score', o.trust_score,
                                  'last_progress_at', a.last_progress_at) as item
        from public.applications a
        join public.opportunities o on o.id = a.opportunity_id
        cross join lateral private.momentum_parts(o.deadline, o.trust_score, get_game_plan.at) m
        where a.user_id = target and a.status = 'draft' and m.momentum is not null
      ) t where t.rank <= 3), '[]'::jsonb),
    'check_ins_due', coalesce((
      select jsonb_agg(jsonb_build_object('check_in_id', c.id, 'application_id', c.application_id, 'title', o.title, 'due_at', c.due_at)
                       order by c.due_at)
      from public.check_in_tasks c
      join public.applications a on a.id = c.application_id
      join public.opportunities o on o.id = a.opportunity_id
      where c.user_id = target and c.status = 'pending' and c.due_at <= get_game_plan.at), '[]'::jsonb),
    'micro_task', case
      when top_app.id is not null and top_app.last_progress_at <= get_game_plan.at - interval '48 hours'
           and (snoozed_until is null or snoozed_until <= get_game_plan.at)
      then jsonb_build_object(
        'application_id', top_app.id,
        'stalled_since', top_app.last_progress_at,
        'text', case top_app.application_type
          when 'essay' then format('Write the first paragraph of your essay for %s (15 minutes).', top_app.title)
          when 'form' then format('Fill in the first section of the form for %s (10 minutes).', top_app.title)
          else format('List what %s asks for and do the smallest piece (10 minutes).', top_app.title)
        end)
    end,
    'micro_task_snoozed_until', case when snoozed_until > get_game_plan.at then snoozed_until end,
    'total_debt_lifted', (
      select coalesce(sum(o.amount), 0)
      from public.applications a join public.opportunities o on o.id = a.opportunity_id
      where a.user_id = target and a.status = 'awarded' and a.confirmed_at is not null)
  );
  if target is distinct from caller and role_name not in ('service_role', 'postgres') then
    perform audit.record_phi_access(target, 'game_plan', jsonb_array_length(plan -> 'top'), 'coaching');
  end if;
  return plan;
end;
$$;
comment on function public.get_game_plan(uuid, timestamptz) is $$
The game plan of the caller (or of user_id, for the service role and the user's assigned coach; a coach's read is audited):
top (up to three open applications by momentum, with deadline_proximity and trust_score), check_ins_due, micro_task (when the
top application has not progressed for 48 hours and the user has not snoozed), micro_task_snoozed_until, total_debt_lifted.
Example: supabase.rpc('get_game_plan')
$$;
grant execute on function public.get_game_plan(uuid, timestamptz) to authenticated, service_role;

create or replace function public.respond_to_check_in(check_in_id uuid, status public.check_in_status)
returns public.check_in_tasks
language plpgsql
volatile
security invoker
set search_path = ''
as $$
-- Security invoker: the owner's UPDATE on status (RLS, column grant) and the table's
-- trigger (only from pending; completed_at) are the rules.
declare
  result public.check_in_tasks;
begin
  if respond_to_check_in.status is distinct from 'completed' and respond_to_check_in.status is distinct from 'dismissed' then
    raise exception 'A check-in is answered completed or dismissed' using errcode = '22023';
  end if;
  update public.check_in_tasks c set status = respond_to_check_in.status
   where c.id = respond_to_check_in.check_in_id
  returning * into result;
  if result.id is null then
    raise exception 'Check-in not found' using errcode = 'PT404';
  end if;
  return result;
end;
$$;
comment on function public.respond_to_check_in(uuid, public.check_in_status) is $$
The owner completes or dismisses a pending check-in ("Have you heard back?"). PT404 for someone else's, 22023 for one already
answered. Example: supabase.rpc('respond_to_check_in', { check_in_id, status: 'completed' })
$$;
grant execute on function public.respond_to_check_in(uuid, public.check_in_status) to authenticated;

create or replace function public.snooze_micro_task(until timestamptz, at timestamptz default now())
returns public.profiles
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users have no direct UPDATE on profiles.preferences outside
-- update_my_profile; this changes one key of the caller's own profile.
declare
  caller uuid := (select auth.uid());
  nearest timestamptz;
  result public.profiles;
begin
  if caller is null then
    raise exception 'Only a signed-in user can snooze their micro-task' using errcode = '42501';
  end if;
  if snooze_micro_task.until is null or snooze_micro_task.until <= snooze_micro_task.at then
    raise exception 'A snooze must end in the future' using errcode = '22023';
  end if;
  select min(o.deadline) into nearest
  from public.applications a join public.opportunities o on o.id = a.opportunity_id
  where a.user_id = caller and a.status = 'draft' and o.deadline > snooze_micro_task.at;
  if nearest is not null and snooze_micro_task.until > nearest then
    raise exception 'A snooze cannot end after your nearest deadline (%)', to_char(nearest at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
      using errcode = '22023';
  end if;
  update public.profiles p
     set preferences = p.preferences || jsonb_build_object('micro_task_snoozed_until', snooze_micro_task.until)
   where p.id = caller
  returning * into result;
  if result.id is null then
    raise exception 'No profile for this user' using errcode = 'PT404';
  end if;
  return result;
end;
$$;
comment on function public.snooze_micro_task(timestamptz, timestamptz) is $$
Snoozes the caller's micro-task until a future time that is not after the nearest deadline of their open applications
(profiles.preferences.micro_task_snoozed_until). 22023 otherwise. Example: supabase.rpc('snooze_micro_task', { until })
$$;
grant execute on function public.snooze_micro_task(timestamptz, timestamptz) to authenticated;
