-- Purpose: the client API for coaching sessions (supabase.rpc): start a session, save a
-- stage (in order; re-saving keeps the history in interaction_events), complete the
-- session, read a session with its stages, list and update action plans, add and complete
-- milestones; and the internal save of an AI summary with the plans derived from it. Only
-- owners write; owners and their assigned coach read (RLS).
-- Objects: functions public.start_coaching_session, public.save_stage_response,
-- public.complete_coaching_session, public.get_coaching_session, public.list_action_plans,
-- public.update_action_plan, public.add_milestone, public.complete_milestone,
-- private.save_session_summary, private._session_owned_by_caller. Destructive: none.

-- The session, locked for update, when the caller owns it; errors otherwise.
create or replace function private._session_owned_by_caller(session_id uuid)
returns public.coaching_sessions
language plpgsql
security definer
set search_path = ''
as $$
-- Security definer: called by the write RPCs (themselves security definer) to check the
-- caller owns the session; reads the session whatever the caller's RLS.
declare
  s public.coaching_sessions;
begin
  select * into s from public.coaching_sessions c where c.id = _session_owned_by_caller.session_id for update;
  if not found or (s.user_id <> (select auth.uid()) and not private.can_read_session(s.id)) then
    raise exception 'Coaching session not found' using errcode = 'P0002';
  end if;
  if s.user_id <> (select auth.uid()) then
    raise exception 'Only the session owner can change a coaching session' using errcode = '42501';
  end if;
  return s;
end;
$$;
comment on function private._session_owned_by_caller(uuid) is
  'Internal: the session row (locked) when the caller owns it; P0002 when they cannot see it, 42501 when they can but do not own it.';
revoke execute on function private._session_owned_by_caller(uuid) from public, anon, authenticated;

create or replace function public.start_coaching_session(
  session_type text default 'self_coaching',
  theme text default null,
  coach_id uuid default null
)
returns public.coaching_sessions
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users have no INSERT on coaching_sessions; checks the caller first.
declare
  result public.coaching_sessions;
begin
  if (select auth.uid()) is null then
    raise exception 'Only a signed-in user can start a coaching session' using errcode = '42501';
  end if;
  if start_coaching_session.coach_id is not null and not exists (
    select 1 from public.coach_assignments a
    where a.coach_id = start_coaching_session.coach_id and a.client_id = (select auth.uid())
      and a.starts_at <= now() and (a.ends_at is null or a.ends_at > now())
  ) then
    raise exception 'coach_id must be your assigned coach' using errcode = '22023';
  end if;
  insert into public.coaching_sessions (user_id, coach_id, session_type, theme)
  values ((select auth.uid()), start_coaching_session.coach_id, start_coaching_session.session_type, start_coaching_session.theme)
  returning * into result;
  return result;
end;
$$;
comment on function public.start_coaching_session(text, text, uuid) is $$
Starts a coaching session for the caller at stage 1. session_type: coach_led or self_coaching;
coach_id, if given, must be the caller's assigned coach. Returns the session.
Example: supabase.rpc('start_coaching_session', { session_type: 'self_coaching', theme: 'Sleep' })
$$;
grant execute on function public.start_coaching_session(text, text, uuid) to authenticated;

create or replace function public.save_stage_response(
  session_id uuid,
  stage_number integer,
  responses jsonb,
  complete boolean default true
)
returns public.stage_responses
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users have no write grants on sessions, stages or events; checks the
-- caller owns the session first.
declare
  s public.coaching_sessions := private._session_owned_by_caller(save_stage_response.session_id);
  previous public.stage_responses;
  errors text[];
  result public.stage_responses;
begin
  if s.is_complete then
    raise exception 'The coaching session is complete; its stages can no longer change' using errcode = '55000';
  end if;
  if save_stage_response.stage_number is null or save_stage_response.stage_number not between 1 and 5 then
    raise exception 'stage_number must be from 1 to 5' using errcode = '22023';
  end if;
  if save_stage_response.stage_number > s.current_stage then
    raise exception 'Stage % cannot be saved before stage % is complete', save_stage_response.stage_number, s.current_stage
      using errcode = '55000';
  end if;
  if save_stage_response.complete then
    errors := private.stage_response_errors(save_stage_response.stage_number, save_stage_response.responses);
    if cardinality(errors) > 0 then
      raise exception 'Stage % responses are invalid: %', save_stage_response.stage_number, array_to_string(errors, '; ')
        using errcode = '22023', detail = array_to_json(errors)::text;
    end if;
  elsif jsonb_typeof(save_stage_response.responses) is distinct from 'object' then
    raise exception 'responses must be a JSON object' using errcode = '22023';
  end if;

  select * into previous from public.stage_responses r
  where r.session_id = s.id and r.stage_number = save_stage_response.stage_number;
  if found then
    -- Re-saving keeps the history: the replaced responses go to the event log.
    insert into public.interaction_events (user_id, session_id, kind, category, payload, actor_id, actor_role)
    values (s.user_id, s.id, 'session_state', 'stage_response_replaced',
            jsonb_build_object('stage_number', previous.stage_number, 'responses', previous.responses,
                               'completed_at', previous.completed_at, 'replaced_at', now()),
            (select auth.uid()), 'authenticated');
    update public.stage_responses r
       set responses = save_stage_response.responses,
           completed_at = case when save_stage_response.complete then coalesce(r.completed_at, now()) end
     where r.id = previous.id
    returning * into result;
  else
    insert into public.stage_responses (session_id, stage_number, responses, completed_at)
    values (s.id, save_stage_response.stage_number, save_stage_response.responses,
            case when save_stage_response.complete then now() end)
    returning * into result;
  end if;

  if save_stage_response.complete and save_stage_response.stage_number = s.current_stage and s.current_stage < 5 then
    update public.coaching_sessions c set current_stage = s.current_stage + 1 where c.id = s.id;
  end if;
  return result;
end;
$$;
comment on function public.save_stage_response(uuid, integer, jsonb, boolean) is $$
Saves the caller's responses for a stage of their session. Stages go in order: stage n can be saved
once stage n-1 is complete; completing the current stage advances the session. complete => false
saves a draft without validation. Re-saving a stage replaces it and logs the previous responses as a
session_state event. A complete session cannot change. Errors: 22023 invalid responses (each
problem listed), 55000 out of order or session complete, P0002 unknown session, 42501 not the owner.
Example: supabase.rpc('save_stage_response', { session_id, stage_number: 1, responses: { presence_level: 7, ... } })
$$;
grant execute on function public.save_stage_response(uuid, integer, jsonb, boolean) to authenticated;

create or replace function public.complete_coaching_session(session_id uuid)
returns public.coaching_sessions
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users have no UPDATE on coaching_sessions; checks ownership first.
declare
  s public.coaching_sessions := private._session_owned_by_caller(complete_coaching_session.session_id);
  result public.coaching_sessions;
begin
  if s.is_complete then
    return s;
  end if;
  if (select count(*) from public.stage_responses r where r.session_id = s.id and r.completed_at is not null) < 5 then
    raise exception 'All five stages must be complete before the session is' using errcode = '55000';
  end if;
  update public.coaching_sessions c set is_complete = true, completed_at = now()
  where c.id = s.id returning * into result;
  return result;
end;
$$;
comment on function public.complete_coaching_session(uuid) is $$
Marks the caller's session complete once all five stages are complete (idempotent). Returns the session.
$$;
grant execute on function public.complete_coaching_session(uuid) to authenticated;

create or replace function public.get_coaching_session(session_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: an assigned coach reads a client's session, which RLS does not show
-- them directly; the caller is checked first and a coach's read is audited.
declare
  s public.coaching_sessions;
  result jsonb;
begin
  select * into s from public.coaching_sessions c where c.id = get_coaching_session.session_id;
  if not found or not (private.caller_role() in ('service_role', 'postgres') or private.can_read_session(s.id)) then
    return null;
  end if;
  select to_jsonb(s) || jsonb_build_object('stages', coalesce((
    select jsonb_agg(to_jsonb(r) order by r.stage_number) from public.stage_responses r where r.session_id = s.id
  ), '[]'::jsonb)) into result;
  if s.user_id is distinct from (select auth.uid()) then
    perform audit.record_phi_access(s.user_id, 'coaching_sessions', 1, 'coaching');
  end if;
  return result;
end;
$$;
comment on function public.get_coaching_session(uuid) is $$
A session with its stages (ordered), or null when the caller cannot see it. The owner, their
assigned coach and the service role can; a read by anyone but the owner is recorded in
audit.phi_access_log. Example: supabase.rpc('get_coaching_session', { session_id })
$$;
grant execute on function public.get_coaching_session(uuid) to authenticated, service_role;

create or replace function public.list_action_plans(owner_id uuid default null)
returns table (
  id uuid, session_id uuid, user_id uuid, title text, description text, goal_statement text, smart_criteria jsonb,
  priority smallint, status text, timeline_start date, timeline_end date, source text, created_at timestamptz,
  updated_at timestamptz, coaching_theme text, milestones jsonb
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: an assigned coach reads a client's plans, which RLS does not show them
-- directly; the caller is checked first and a coach's read is audited.
declare
  target uuid := coalesce(list_action_plans.owner_id, (select auth.uid()));
  n integer;
begin
  if target is null then
    raise exception 'owner_id is required for service callers' using errcode = '22023';
  end if;
  if private.caller_role() not in ('service_role', 'postgres')
     and target is distinct from (select auth.uid()) and not private.is_assigned_coach(target) then
    raise exception 'Only the user, their assigned coach or the service role can read these action plans' using errcode = '42501';
  end if;
  return query
  select p.id, p.session_id, p.user_id, p.title, p.description, p.goal_statement, p.smart_criteria, p.priority,
         p.status, p.timeline_start, p.timeline_end, p.source, p.created_at, p.updated_at,
         coalesce(s.theme, s.summary_data ->> 'goal_statement'),
         coalesce((select jsonb_agg(to_jsonb(m) order by m.due_date nulls last, m.created_at)
                   from public.milestones m where m.action_plan_id = p.id), '[]'::jsonb)
  from public.action_plans p
  left join public.coaching_sessions s on s.id = p.session_id
  where p.user_id = target
  order by p.priority, p.timeline_end nulls last, p.created_at;
  get diagnostics n = row_count;
  if target is distinct from (select auth.uid()) then
    perform audit.record_phi_access(target, 'action_plans', n, 'coaching');
  end if;
end;
$$;
comment on function public.list_action_plans(uuid) is $$
A user's action plans with the coaching theme of the session each came from and their milestones,
by priority then due date. owner_id defaults to the caller; an assigned coach names a client (audited);
the service role names anyone. Example: supabase.rpc('list_action_plans')
$$;
grant execute on function public.list_action_plans(uuid) to authenticated, service_role;

create or replace function public.update_action_plan(
  action_plan_id uuid,
  status text default null,
  title text default null,
  description text default null,
  priority smallint default null,
  timeline_start date default null,
  timeline_end date default null
)
returns public.action_plans
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users have no UPDATE on action_plans; checks ownership first.
declare
  result public.action_plans;
begin
  update public.action_plans p
     set status = coalesce(update_action_plan.status, p.status),
         title = coalesce(update_action_plan.title, p.title),
         description = coalesce(update_action_plan.description, p.description),
         priority = coalesce(update_action_plan.priority, p.priority),
         timeline_start = coalesce(update_action_plan.timeline_start, p.timeline_start),
         timeline_end = coalesce(update_action_plan.timeline_end, p.timeline_end)
   where p.id = update_action_plan.action_plan_id and p.user_id = (select auth.uid())
  returning * into result;
  if result.id is null then
    raise exception 'Only the owner can update this action plan' using errcode = '42501';
  end if;
  return result;
end;
$$;
comment on function public.update_action_plan(uuid, text, text, text, smallint, date, date) is $$
Updates the caller's action plan; null leaves a field as it is. Status moves only along allowed
transitions (22023 otherwise); updated_at is maintained. Example:
  supabase.rpc('update_action_plan', { action_plan_id, status: 'in_progress' })
$$;
grant execute on function public.update_action_plan(uuid, text, text, text, smallint, date, date) to authenticated;

create or replace function public.add_milestone(action_plan_id uuid, title text, description text default null, due_date date default null)
returns public.milestones
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users have no INSERT on milestones; checks plan ownership first.
declare
  result public.milestones;
begin
  if not exists (select 1 from public.action_plans p where p.id = add_milestone.action_plan_id and p.user_id = (select auth.uid())) then
    raise exception 'Only the owner of the action plan can add milestones' using errcode = '42501';
  end if;
  insert into public.milestones (action_plan_id, title, description, due_date)
  values (add_milestone.action_plan_id, add_milestone.title, add_milestone.description, add_milestone.due_date)
  returning * into result;
  return result;
end;
$$;
comment on function public.add_milestone(uuid, text, text, date) is $$
Adds a milestone to the caller's action plan. Example: supabase.rpc('add_milestone', { action_plan_id, title: 'Buy shoes', due_date: '2026-12-01' })
$$;
grant execute on function public.add_milestone(uuid, text, text, date) to authenticated;

create or replace function public.complete_milestone(milestone_id uuid, completed boolean default true)
returns public.milestones
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users have no UPDATE on milestones; checks plan ownership first.
declare
  result public.milestones;
begin
  update public.milestones m set completed = complete_milestone.completed
  where m.id = complete_milestone.milestone_id
    and exists (select 1 from public.action_plans p where p.id = m.action_plan_id and p.user_id = (select auth.uid()))
  returning * into result;
  if result.id is null then
    raise exception 'Only the owner of the action plan can complete its milestones' using errcode = '42501';
  end if;
  return result;
end;
$$;
comment on function public.complete_milestone(uuid, boolean) is $$
Marks the caller's milestone completed (or not, with completed => false); completed_at is set by the
database. Example: supabase.rpc('complete_milestone', { milestone_id })
$$;
grant execute on function public.complete_milestone(uuid, boolean) to authenticated;

-- Caches an AI summary on the session and creates or refreshes the plans and milestones
-- derived from it (keyed by title, so a refresh does not duplicate them and keeps their
-- status). Called by the summary function as the service role.
create or replace function private.save_session_summary(
  session_id uuid, summary text, summary_data jsonb, model text
)
returns public.coaching_sessions
language plpgsql
volatile
set search_path = ''
as $$
declare
  s public.coaching_sessions;
  item jsonb;
  plan_id uuid;
  ms jsonb;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can save a session summary' using errcode = '42501';
  end if;
  update public.coaching_sessions c
     set summary = save_session_summary.summary, summary_data = save_session_summary.summary_data,
         summary_model = save_session_summary.model, summary_generated_at = now()
   where c.id = save_session_summary.session_id
  returning * into s;
  if s.id is null then
    raise exception 'Coaching session not found' using errcode = 'P0002';
  end if;
  for item in select value from jsonb_array_elements(coalesce(save_session_summary.summary_data -> 'action_plan', '[]')) loop
    insert into public.action_plans (session_id, user_id, title, description, goal_statement, smart_criteria, priority,
                                     timeline_start, timeline_end, source, source_key)
    values (s.id, s.user_id, item ->> 'title', item ->> 'description', summary_data ->> 'goal_statement',
            (select r.responses -> 'smart_criteria' from public.stage_responses r where r.session_id = s.id and r.stage_number = 4),
            coalesce((item ->> 'priority')::smallint, 3), current_date, (item ->> 'due_date')::date,
            'summary', lower(btrim(item ->> 'title')))
    on conflict on constraint action_plans_session_source_key do update
      set description = excluded.description, goal_statement = excluded.goal_statement,
          priority = excluded.priority, timeline_end = excluded.timeline_end
    returning id into plan_id;
    for ms in select value from jsonb_array_elements(coalesce(item -> 'milestones', '[]')) loop
      insert into public.milestones (action_plan_id, title, due_date)
      values (plan_id, ms ->> 'title', (ms ->> 'due_date')::date)
      on conflict (action_plan_id, title) do update set due_date = excluded.due_date;
    end loop;
  end loop;
  return s;
end;
$$;
comment on function private.save_session_summary(uuid, text, jsonb, text) is
  'Caches the AI summary on the session and upserts its action plans (keyed by title) and milestones. Service role only.';
revoke execute on function private.save_session_summary(uuid, text, jsonb, text) from public, anon, authenticated;
grant execute on function private.save_session_summary(uuid, text, jsonb, text) to service_role;
