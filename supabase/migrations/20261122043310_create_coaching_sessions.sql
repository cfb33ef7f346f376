-- Purpose: coaching sessions through five stages (seed: Coaching Session Data Storage):
-- 1 check in, 2 starting point, 3 connect, 4 finish, 5 check out. stage_responses is the
-- origin of truth; the AI summary is cached on the session. Each stage's responses are
-- validated in SQL (private.stage_response_errors, matching the zod schemas of the
-- functions): required keys and rating ranges; unknown keys are kept. Owners read their
-- rows directly; an assigned coach reads through the audited RPCs (get_coaching_session);
-- writes go through the session RPCs. Also links interactions to sessions.
-- Objects: tables public.coaching_sessions, public.stage_responses; functions
-- private.stage_name, private.stage_response_errors, private.can_read_session; foreign key
-- and index on coach_interactions.session_id. Destructive: none.

create table public.coaching_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  coach_id uuid references public.profiles (id) on delete set null,
  session_type text not null default 'self_coaching',
  theme text,
  current_stage smallint not null default 1,
  is_complete boolean not null default false,
  completed_at timestamptz,
  summary text,
  summary_data jsonb,
  summary_model text,
  summary_generated_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint coaching_sessions_type_known check (session_type in ('coach_led', 'self_coaching')),
  constraint coaching_sessions_current_stage_range check (current_stage between 1 and 5),
  constraint coaching_sessions_completed_at_with_complete check (is_complete = (completed_at is not null)),
  constraint coaching_sessions_theme_length check (theme is null or char_length(theme) between 1 and 200),
  constraint coaching_sessions_summary_complete check (
    (summary is null and summary_data is null and summary_model is null and summary_generated_at is null)
    or (summary is not null and jsonb_typeof(summary_data) = 'object' and summary_model is not null and summary_generated_at is not null)),
  constraint coaching_sessions_coach_not_self check (coach_id is null or coach_id <> user_id)
);
alter table public.coaching_sessions enable row level security;
comment on table public.coaching_sessions is
  'A coaching session: type, theme, current stage 1..5, completion, and the cached AI summary (markdown in summary, structured in summary_data).';
create index coaching_sessions_user_id_created_at_idx on public.coaching_sessions (user_id, created_at desc);
create index coaching_sessions_coach_id_idx on public.coaching_sessions (coach_id) where coach_id is not null;

create trigger coaching_sessions_set_updated_at
  before update on public.coaching_sessions
  for each row execute function private.trigger_set_updated_at();

create or replace function private.stage_name(stage_number integer)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select (array['check_in', 'starting_point', 'connect', 'finish', 'check_out'])[stage_name.stage_number]
$$;
comment on function private.stage_name(integer) is 'The name of stage 1..5: check_in, starting_point, connect, finish, check_out.';

-- What is wrong with a stage's responses: one message per problem, empty when valid.
create or replace function private.stage_response_errors(stage_number integer, responses jsonb)
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  errors text[] := '{}'::text[];
  spec record;
begin
  if jsonb_typeof(responses) is distinct from 'object' then
    return array['responses must be a JSON object'];
  end if;
  -- (key, kind): text = non-empty string; list = array of non-empty strings;
  -- rating = integer 1..10; object = JSON object.
  for spec in
    select * from (values
      (1, 'presence_level', 'rating'), (1, 'emotional_state', 'text'), (1, 'previous_actions', 'list'), (1, 'readiness_score', 'rating'),
      (2, 'topic', 'text'), (2, 'problem_statement', 'text'), (2, 'current_state_rating', 'rating'), (2, 'strengths', 'list'),
      (2, 'obstacles', 'list'), (2, 'resources', 'list'),
      (3, 'options', 'list'), (3, 'insights', 'list'), (3, 'challenges', 'list'), (3, 'barriers', 'list'),
      (4, 'goal_statement', 'text'), (4, 'smart_criteria', 'smart'), (4, 'action_steps', 'list'), (4, 'obstacles', 'list'),
      (4, 'contingency_plans', 'list'),
      (5, 'key_learnings', 'list'), (5, 'insights', 'list'), (5, 'session_value_rating', 'rating'), (5, 'clarity_level', 'rating')
    ) v(stage, key, kind)
    where v.stage = stage_response_errors.stage_number
  loop
    if not responses ? spec.key then
      errors := errors || (spec.key || ' is required');
    elsif spec.kind = 'text' and (jsonb_typeof(responses -> spec.key) <> 'string' or btrim(responses ->> spec.key) = '') then
      errors := errors || (spec.key || ' must be a non-empty string');
    elsif spec.kind = 'rating' and (jsonb_typeof(responses -> spec.key) <> 'number'
          or (responses ->> spec.key)::numeric not in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)) then
      errors := errors || (spec.key || ' must be an integer from 1 to 10');
    elsif spec.kind = 'list' and (jsonb_typeof(responses -> spec.key) <> 'array' or exists (
          select 1 from jsonb_array_elements(responses -> spec.key) e
          where jsonb_typeof(e) <> 'string' or btrim(e #>> '{}') = '')) then
      errors := errors || (spec.key || ' must be a list of non-empty strings');
    elsif spec.kind = 'smart' then
      if jsonb_typeof(responses -> spec.key) <> 'object' then
        errors := errors || (spec.key || ' must be an object');
      else
        errors := errors || coalesce((
          select array_agg(spec.key || '.' || c || ' must be a non-empty string' order by o)
          from unnest(array['specific', 'measurable', 'achievable', 'relevant', 'time_bound']) with ordinality u(c, o)
          where jsonb_typeof(responses -> spec.key -> c) is distinct from 'string' or btrim(responses -> spec.key ->> c) = ''
        ), '{}');
      end if;
    end if;
  end loop;
  return errors;
end;
$$;
comment on function private.stage_response_errors(integer, jsonb) is
  'Validation of a stage''s responses (required keys, types, ratings 1..10, SMART criteria): the list of problems, empty when valid. Unknown keys are allowed.';
grant execute on function private.stage_response_errors(integer, jsonb) to authenticated, service_role;

create table public.stage_responses (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.coaching_sessions (id) on delete cascade,
  stage_number smallint not null,
  stage_name text generated always as (private.stage_name(stage_number)) stored,
  responses jsonb not null default '{}'::jsonb,
  completed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint stage_responses_stage_number_range check (stage_number between 1 and 5),
  constraint stage_responses_valid check (
    completed_at is null or cardinality(private.stage_response_errors(stage_number, responses)) = 0),
  constraint stage_responses_session_stage_key unique (session_id, stage_number)
);
alter table public.stage_responses enable row level security;
comment on table public.stage_responses is
  'The origin of truth of a session: one row per stage (1 check_in .. 5 check_out), responses as JSON; completed stages are validated.';

create trigger stage_responses_set_updated_at
  before update on public.stage_responses
  for each row execute function private.trigger_set_updated_at();

create or replace function private.can_read_session(session_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: policies on child tables ask this without recursing through the
  -- session's own policy. Answers only for the caller.
  select exists (
    select 1 from public.coaching_sessions s
    where s.id = can_read_session.session_id
      and ((select auth.uid()) = s.user_id or private.is_assigned_coach(s.user_id))
  )
$$;
comment on function private.can_read_session(uuid) is 'True when the caller owns the session or is the owner''s assigned coach.';
revoke execute on function private.can_read_session(uuid) from public, anon;
grant execute on function private.can_read_session(uuid) to authenticated, service_role;

grant select on public.coaching_sessions, public.stage_responses to authenticated;
grant select, insert, update, delete on public.coaching_sessions, public.stage_responses to service_role;

create policy "Coaching sessions are viewable by their owner"
  on public.coaching_sessions for select to authenticated
  using ((select auth.uid()) = user_id);

create policy "Stage responses are viewable by the session's owner"
  on public.stage_responses for select to authenticated
  using (exists (select 1 from public.coaching_sessions s where s.id = session_id and s.user_id = (select auth.uid())));

-- Interactions may belong to a session (e.g. the AI summary call).
alter table public.coach_interactions
  add constraint coach_interactions_session_id_fkey foreign key (session_id)
  references public.coaching_sessions (id) on delete cascade;
create index coach_interactions_session_id_idx on public.coach_interactions (session_id) where session_id is not null;
