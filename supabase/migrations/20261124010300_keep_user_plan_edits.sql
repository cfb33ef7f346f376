-- Purpose: a summary refresh never overwrites what the user edited, and the session RPCs
-- answer client mistakes with 4xx codes.
--  * Which fields are whose: the model proposes a plan's description, goal, SMART criteria,
--    priority and due date (timeline_end), and a refresh may update them, until the user
--    edits one: from then on that field is the user's (action_plans.user_edited_fields) and
--    no refresh touches it. Status, title and timeline_start are the user's from the start
--    (a refresh never wrote them). A milestone the model proposes again (same title on the
--    same plan) gets the proposed due date; completions are never touched.
--  * "Coaching session not found" was P0002 and "out of order / session complete" 55000,
--    which PostgREST answers with 500. They are now PT404 and PT409 (PostgREST's custom
--    status codes: 404 and 409; the functions map PTnnn the same way), and
--    update_my_profile's "no profile" is PT404.
-- Objects: column public.action_plans.user_edited_fields; functions
-- private._session_owned_by_caller, public.save_stage_response,
-- public.complete_coaching_session, public.update_action_plan, public.update_my_profile,
-- private.save_session_summary (bodies). Destructive: none.

alter table public.action_plans add column user_edited_fields text[] not null default '{}';
alter table public.action_plans add constraint action_plans_user_edited_fields_known check (
  user_edited_fields <@ array['title', 'description', 'priority', 'timeline_start', 'timeline_end']::text[]);
comment on column public.action_plans.user_edited_fields is
  'Fields the user has edited (update_action_plan); a summary refresh never overwrites them.';

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
    raise exception 'Coaching session not found' using errcode = 'PT404';
  end if;
  if s.user_id <> (select auth.uid()) then
    raise exception 'Only the session owner can change a coaching session' using errcode = '42501';
  end if;
  return s;
end;
$$;
comment on function private._session_owned_by_caller(uuid) is
  'Internal: the session row (locked) when the caller owns it; PT404 when they cannot see it (unknown or someone else''s, one answer), 42501 when they can but do not own it (their assigned coach).';

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
  problem text;
  result public.stage_responses;
begin
  if s.is_complete then
    raise exception 'The coaching session is complete; its stages can no longer change' using errcode = 'PT409';
  end if;
  if save_stage_response.stage_number is null or save_stage_response.stage_number not between 1 and 5 then
    raise exception 'stage_number must be from 1 to 5' using errcode = '22023';
  end if;
  if save_stage_response.stage_number > s.current_stage then
    raise exception 'Stage % cannot be saved before stage % is complete', save_stage_response.stage_number, s.current_stage
      using errcode = 'PT409';
  end if;
  problem := private.json_bound_violation('stage_responses', save_stage_response.responses);
  if problem is not null then
    raise exception 'responses %', problem using errcode = '23514', constraint = 'stage_responses_responses_bounded';
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
session_state event. A complete session cannot change. responses are bounded
(private.json_bound_violation). Errors: 22023 invalid responses (each problem listed), 23514 responses
too large or too deep, PT409 (HTTP 409) out of order or session complete, PT404 (HTTP 404) unknown
session or someone else's, 42501 the owner's coach (not the owner).
Example: supabase.rpc('save_stage_response', { session_id, stage_number: 1, responses: { presence_level: 7, ... } })
$$;

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
    raise exception 'All five stages must be complete before the session is' using errcode = 'PT409';
  end if;
  update public.coaching_sessions c set is_complete = true, completed_at = now()
  where c.id = s.id returning * into result;
  return result;
end;
$$;
comment on function public.complete_coaching_session(uuid) is $$
Marks the caller's session complete once all five stages are complete (idempotent). Returns the session.
Errors: PT409 (HTTP 409) while a stage is incomplete, PT404 unknown session.
$$;

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
  edited text[] := array_remove(array[
    case when update_action_plan.title is not null then 'title' end,
    case when update_action_plan.description is not null then 'description' end,
    case when update_action_plan.priority is not null then 'priority' end,
    case when update_action_plan.timeline_start is not null then 'timeline_start' end,
    case when update_action_plan.timeline_end is not null then 'timeline_end' end], null);
begin
  update public.action_plans p
     set status = coalesce(update_action_plan.status, p.status),
         title = coalesce(update_action_plan.title, p.title),
         description = coalesce(update_action_plan.description, p.description),
         priority = coalesce(update_action_plan.priority, p.priority),
         timeline_start = coalesce(update_action_plan.timeline_start, p.timeline_start),
         timeline_end = coalesce(update_action_plan.timeline_end, p.timeline_end),
         user_edited_fields = (select coalesce(array_agg(distinct f order by f), '{}') from unnest(p.user_edited_fields || edited) f)
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
transitions (22023 otherwise); updated_at is maintained. A field the user sets here is theirs from
then on (user_edited_fields): a summary refresh never overwrites it. Example:
  supabase.rpc('update_action_plan', { action_plan_id, status: 'in_progress' })
$$;

create or replace function public.update_my_profile(
  display_name text default null,
  timezone text default null,
  preferences jsonb default null
)
returns public.profiles
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  result public.profiles;
  problem text;
begin
  if (select auth.uid()) is null then
    raise exception 'Only a signed-in user can update their profile' using errcode = '42501';
  end if;
  if update_my_profile.timezone is not null and not private.is_valid_timezone(update_my_profile.timezone) then
    raise exception 'Unknown time zone: %', update_my_profile.timezone
      using errcode = '22023', hint = 'Use an IANA name such as Europe/Berlin.';
  end if;
  if update_my_profile.preferences is not null and jsonb_typeof(update_my_profile.preferences) <> 'object' then
    raise exception 'preferences must be a JSON object' using errcode = '22023';
  end if;
  problem := private.json_bound_violation('profile_preferences', update_my_profile.preferences);
  if problem is not null then
    raise exception 'preferences %', problem using errcode = '23514', constraint = 'profiles_preferences_bounded';
  end if;
  update public.profiles p
     set display_name = coalesce(update_my_profile.display_name, p.display_name),
         timezone = coalesce(update_my_profile.timezone, p.timezone),
         preferences = coalesce(update_my_profile.preferences, p.preferences)
   where p.id = (select auth.uid())
  returning p.* into result;
  if result.id is null then
    raise exception 'The caller has no profile to update' using errcode = 'PT404';
  end if;
  return result;
end;
$$;
comment on function public.update_my_profile(text, text, jsonb) is $$
Updates the caller's display name, time zone and/or preferences (null leaves a field as it is;
preferences is replaced whole, and bounded by private.json_bound_violation). Returns the updated profile.
Errors: 22023 for an unknown time zone or non-object preferences; 23514 for a display name over 200
characters or preferences too large; 42501 when not signed in; PT404 when the caller has no profile.
Example: select public.update_my_profile(timezone => 'Europe/Berlin');
  -- supabase.rpc('update_my_profile', { timezone: 'Europe/Berlin' })
$$;

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
    raise exception 'Coaching session not found' using errcode = 'PT404';
  end if;
  for item in select value from jsonb_array_elements(coalesce(save_session_summary.summary_data -> 'action_plan', '[]')) loop
    insert into public.action_plans (session_id, user_id, title, description, goal_statement, smart_criteria, priority,
                                     timeline_start, timeline_end, source, source_key)
    values (s.id, s.user_id, item ->> 'title', item ->> 'description', summary_data ->> 'goal_statement',
            (select r.responses -> 'smart_criteria' from public.stage_responses r where r.session_id = s.id and r.stage_number = 4),
            coalesce((item ->> 'priority')::smallint, 3), current_date, (item ->> 'due_date')::date,
            'summary', lower(btrim(item ->> 'title')))
    on conflict on constraint action_plans_session_source_key do update
      -- The model's fields, unless the user has made them theirs.
      set description = case when 'description' = any(action_plans.user_edited_fields) then action_plans.description
                             else excluded.description end,
          goal_statement = excluded.goal_statement,
          smart_criteria = excluded.smart_criteria,
          priority = case when 'priority' = any(action_plans.user_edited_fields) then action_plans.priority
                          else excluded.priority end,
          timeline_end = case when 'timeline_end' = any(action_plans.user_edited_fields) then action_plans.timeline_end
                              else excluded.timeline_end end
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
  'Caches the AI summary on the session and upserts its action plans (keyed by title) and milestones; a refresh updates the model''s fields of a plan (description, goal, SMART criteria, priority, due date) except those the user edited, and never status or title. Service role only.';
