-- Purpose: no stored preference can break a game plan. profiles.preferences is the user's
-- own JSON (update_my_profile writes any object within its bounds), so a
-- micro_task_snoozed_until that is not a time, e.g. {"micro_task_snoozed_until": "soon"},
-- made get_game_plan fail with 22007 for that user, and would have stopped the nudge
-- scheduler for everyone. private.micro_task_snoozed_until reads it as a time or as no
-- snooze. The micro-task's wording moves to private.micro_task_text, which the game plan
-- and the nudge scheduler share.
-- Objects: functions private.micro_task_snoozed_until, private.micro_task_text;
-- public.get_game_plan replaced (same signature, grants and behaviour otherwise).
-- Destructive: none.

create or replace function private.micro_task_snoozed_until(preferences jsonb)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
  return (micro_task_snoozed_until.preferences ->> 'micro_task_snoozed_until')::timestamptz;
exception
  when invalid_datetime_format or datetime_field_overflow or invalid_parameter_value then
    return null;
end;
$$;
comment on function private.micro_task_snoozed_until(jsonb) is
  'preferences.micro_task_snoozed_until as a time; null when absent or not a time (a value a user stored by hand cannot break a read).';
revoke execute on function private.micro_task_snoozed_until(jsonb) from public, anon, authenticated;

create or replace function private.micro_task_text(application_type text, title text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case micro_task_text.application_type
    when 'essay' then format('Write the first paragraph of your essay for %s (15 minutes).', micro_task_text.title)
    when 'form' then format('Fill in the first section of the form for %s (10 minutes).', micro_task_text.title)
    else format('List what %s asks for and do the smallest piece (10 minutes).', micro_task_text.title)
  end
$$;
comment on function private.micro_task_text(text, text) is
  'The micro-task''s wording by application_type (game plan and nudges).';
revoke execute on function private.micro_task_text(text, text) from public, anon, authenticated;

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
  select private.micro_task_snoozed_until(p.preferences) into snoozed_until
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
        'text', private.micro_task_text(top_app.application_type, top_app.title))
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
