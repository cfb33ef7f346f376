-- Purpose: a summary the model wrote can always be saved without touching what the user
-- made, and a replayed interaction is recognised whatever the session's time zone.
--  * private.save_session_summary: a due date the plan cannot have is dropped (null), not
--    saved into a violation of action_plans_timeline_ordered (which failed the whole save):
--    for a new plan one before today (its timeline_start), for an existing plan one before
--    its timeline_start. Plans and milestones the model names twice in one answer (same
--    title, ignoring case and surrounding spaces for plans, as their key does) are taken
--    once, the first, instead of failing with "ON CONFLICT DO UPDATE command cannot affect
--    row a second time".
--  * Milestones get a source, 'summary' or 'manual' (add_milestone). A refresh updates the
--    due date of the milestones the model proposed, and never one the user added, even with
--    the same title. Existing milestones become 'manual': nothing tells which were the
--    model's, and a refresh then leaves them as they are (the safe side).
--  * public.log_coach_interaction runs with TimeZone UTC and extra_float_digits 1: its
--    idempotency hash renders created_at and sentiment as JSON, which followed the session's
--    settings, so a retry through a connection in another time zone was refused (PT422) as a
--    different payload. UTC is the database default on Supabase, so stored keys keep matching.
--  * private._session_owned_by_caller compares owners with IS DISTINCT FROM (a caller
--    without a user id is never the owner, explicitly).
-- Objects: column public.milestones.source and its check; functions
-- private.save_session_summary, private._session_owned_by_caller (bodies); settings of
-- public.log_coach_interaction. Destructive: none.

alter table public.milestones add column source text not null default 'manual';
alter table public.milestones add constraint milestones_source_known check (source in ('summary', 'manual'));
comment on column public.milestones.source is
  'Who proposed the milestone: summary (the AI summary; a refresh may move its due date) or manual (add_milestone; a refresh never touches it).';

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
  due date;
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
  -- One plan per key (its title, trimmed and lower-cased), the first the model named.
  for item in
    select distinct on (lower(btrim(e.value ->> 'title'))) e.value
    from jsonb_array_elements(coalesce(save_session_summary.summary_data -> 'action_plan', '[]')) with ordinality e(value, ord)
    order by lower(btrim(e.value ->> 'title')), e.ord
  loop
    due := (item ->> 'due_date')::date;
    insert into public.action_plans (session_id, user_id, title, description, goal_statement, smart_criteria, priority,
                                     timeline_start, timeline_end, source, source_key)
    values (s.id, s.user_id, item ->> 'title', item ->> 'description', summary_data ->> 'goal_statement',
            (select r.responses -> 'smart_criteria' from public.stage_responses r where r.session_id = s.id and r.stage_number = 4),
            coalesce((item ->> 'priority')::smallint, 3), current_date,
            case when due >= current_date then due end,
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
                              when due < action_plans.timeline_start then null
                              else due end
    returning id into plan_id;
    for ms in
      select distinct on (m.value ->> 'title') m.value
      from jsonb_array_elements(coalesce(item -> 'milestones', '[]')) with ordinality m(value, ord)
      order by m.value ->> 'title', m.ord
    loop
      insert into public.milestones (action_plan_id, title, due_date, source)
      values (plan_id, ms ->> 'title', (ms ->> 'due_date')::date, 'summary')
      on conflict (action_plan_id, title) do update set due_date = excluded.due_date
        where milestones.source = 'summary';
    end loop;
  end loop;
  return s;
end;
$$;
comment on function private.save_session_summary(uuid, text, jsonb, text) is
  'Caches the AI summary on the session and upserts its action plans (keyed by title, first wins) and milestones; a refresh updates the model''s fields of a plan (description, goal, SMART criteria, priority, due date) except those the user edited, never status or title, and the due dates of the model''s milestones only. A due date before the plan''s start is dropped. Service role only.';

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
  if not found or (s.user_id is distinct from (select auth.uid()) and not private.can_read_session(s.id)) then
    raise exception 'Coaching session not found' using errcode = 'PT404';
  end if;
  if s.user_id is distinct from (select auth.uid()) then
    raise exception 'Only the session owner can change a coaching session' using errcode = '42501';
  end if;
  return s;
end;
$$;

alter function public.log_coach_interaction(text, jsonb, text, uuid, text, uuid, uuid, text, jsonb, text, integer,
  integer, integer, integer, numeric, real, text, text, text, text, timestamptz)
  set timezone to 'UTC';
alter function public.log_coach_interaction(text, jsonb, text, uuid, text, uuid, uuid, text, jsonb, text, integer,
  integer, integer, integer, numeric, real, text, text, text, text, timestamptz)
  set extra_float_digits to 1;
