-- Purpose: assessment summaries (issue 10; seed SPR-003: "Assessment summaries persisted and
-- queriable by sessionId and groupId", the finalize route's persistAssessmentSummary, and
-- "latest summary by sessionId" for the dashboard).
--  * public.assessments: one summary per (session, group, rubric version): overall score
--    and per-criterion scores on the rubric's 0..5 scale, strengths and improvements, the
--    model that scored it, the hashed tracked skill id. Append-only; indexed by session and
--    by group.
--  * public.persist_assessment_summary: the callback write path, for the service role and
--    coach_ingest tokens. Idempotent by request_id: a replay returns the original row
--    (replayed = true), another payload under the same key fails with PT422; concurrent
--    retries wait for the first and replay it, so they make one row. A second summary for
--    the same (session, group, rubric version) under another key fails with PT409.
--  * public.get_latest_assessment(session_id) and public.list_assessments(session_id |
--    group_id, limit, before): for the owner, their assigned coach (each read recorded in
--    audit.phi_access_log) and the service role. Ingest tokens write summaries but do not
--    read them (DESIGN: coach_ingest is write-only). The table itself is readable by its
--    owner only, so a coach's read cannot bypass the audit.
-- Objects: table public.assessments; type public.persisted_assessment; functions
-- private.assessment_violation, public.persist_assessment_summary,
-- private.assessments_page, public.get_latest_assessment, public.list_assessments.
-- Destructive: none.

-- What is wrong with an assessment's criteria, strengths or improvements, or null. Immutable:
-- the table's CHECK constraints use it, and the write path calls it first to name the field.
create or replace function private.assessment_violation(field text, value jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  entry record;
  score numeric;
begin
  if assessment_violation.field = 'criteria' then
    if assessment_violation.value is null or jsonb_typeof(assessment_violation.value) <> 'object' then
      return 'must be an object of criterion: score';
    end if;
    if (select count(*) from jsonb_object_keys(assessment_violation.value)) not between 1 and 20 then
      return 'must have 1 to 20 criteria';
    end if;
    for entry in select e.key, e.value from jsonb_each(assessment_violation.value) e loop
      if entry.key !~ '^[a-z][a-z0-9_]{0,39}$' then
        return format('criterion %s: use a lowercase identifier of at most 40 characters', left(entry.key, 40));
      end if;
      if jsonb_typeof(entry.value) <> 'number' then
        return format('criterion %s: the score must be a number', entry.key);
      end if;
      score := (entry.value #>> '{}')::numeric;
      if score < 0 or score > 5 then
        return format('criterion %s: the score must be between 0 and 5', entry.key);
      end if;
    end loop;
    return null;
  end if;
  -- strengths, improvements: lists of short texts.
  if assessment_violation.value is null or jsonb_typeof(assessment_violation.value) <> 'array' then
    return 'must be a list of texts';
  end if;
  if jsonb_array_length(assessment_violation.value) > 10 then
    return 'must have at most 10 items';
  end if;
  for entry in select e.value from jsonb_array_elements(assessment_violation.value) e loop
    if jsonb_typeof(entry.value) <> 'string'
       or char_length(btrim(entry.value #>> '{}')) not between 1 and 500
       or (entry.value #>> '{}') ~ '[[:cntrl:]]' then
      return 'items must be texts of 1 to 500 characters without control characters';
    end if;
  end loop;
  return null;
end;
$$;
comment on function private.assessment_violation(text, jsonb) is
  'Validates an assessment field: criteria (an object of 1..20 lowercase criterion keys to numbers 0..5), strengths or improvements (at most 10 texts of 1..500 characters, no control characters). Returns what is wrong, or null.';
revoke execute on function private.assessment_violation(text, jsonb) from public, anon, authenticated;

create table public.assessments (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.coaching_sessions (id) on delete cascade,
  group_id uuid,
  user_id uuid not null references public.profiles (id) on delete cascade,
  request_id text not null,
  rubric_version integer not null,
  overall_score numeric(3, 2) not null,
  criteria jsonb not null,
  strengths text[] not null default '{}',
  improvements text[] not null default '{}',
  model text,
  tracked_skill_id_hash text,
  created_at timestamptz not null default now(),
  actor_id uuid,
  actor_role text not null,
  constraint assessments_request_id_key unique (request_id),
  constraint assessments_session_group_rubric_key unique nulls not distinct (session_id, group_id, rubric_version),
  constraint assessments_request_id_format check (request_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  constraint assessments_rubric_version_range check (rubric_version between 1 and 1000),
  constraint assessments_overall_score_range check (overall_score between 0 and 5),
  constraint assessments_criteria_valid check (private.assessment_violation('criteria', criteria) is null),
  constraint assessments_strengths_valid check (private.assessment_violation('strengths', to_jsonb(strengths)) is null),
  constraint assessments_improvements_valid check (private.assessment_violation('improvements', to_jsonb(improvements)) is null),
  constraint assessments_model_length check (model is null or char_length(model) between 1 and 200),
  constraint assessments_tracked_skill_id_hash_format check (tracked_skill_id_hash is null or tracked_skill_id_hash ~ '^[0-9a-f]{64}$'),
  constraint assessments_actor_role_known check (actor_role in ('service_role', 'coach_ingest', 'postgres'))
);
alter table public.assessments enable row level security;
comment on table public.assessments is
  'Assessment summaries: one per (session, group, rubric version), with overall and per-criterion scores (0..5), strengths, improvements, model and the hashed tracked skill id. Written by persist_assessment_summary only; read directly by the owner, by an assigned coach through the audited RPCs.';
comment on column public.assessments.group_id is
  'The caller''s opaque grouping key (e.g. sessions scored together in one programme); null when not grouped.';
comment on column public.assessments.criteria is
  'Per-criterion scores of the rubric: {"criterion": score 0..5, ...}, 1 to 20 criteria.';
comment on column public.assessments.tracked_skill_id_hash is
  'HMAC-SHA-256 (hex) of the tracked skill id, keyed by TRACKED_SKILL_HASH_KEY; the raw id is never stored.';

create index assessments_session_id_created_at_idx on public.assessments (session_id, created_at desc, id desc);
create index assessments_group_id_created_at_idx on public.assessments (group_id, created_at desc, id desc) where group_id is not null;
create index assessments_user_id_created_at_idx on public.assessments (user_id, created_at desc);

create trigger assessments_refuse_update_delete
  before update or delete on public.assessments
  for each row execute function private.trigger_refuse_change();
create trigger assessments_refuse_truncate
  before truncate on public.assessments
  for each statement execute function private.trigger_refuse_change();

grant select on public.assessments to authenticated, service_role;

create policy "Assessments are viewable by their owner"
  on public.assessments for select to authenticated
  using ((select auth.uid()) = user_id);

create type public.persisted_assessment as (
  assessment public.assessments,
  replayed boolean
);
comment on type public.persisted_assessment is
  'What persist_assessment_summary returns: the stored assessment and whether this call was a replay.';

create or replace function public.persist_assessment_summary(
  request_id text,
  session_id uuid,
  overall_score numeric,
  criteria jsonb,
  rubric_version integer default 1,
  group_id uuid default null,
  strengths text[] default '{}',
  improvements text[] default '{}',
  model text default null,
  tracked_skill_id_hash text default null,
  created_at timestamptz default null
)
returns public.persisted_assessment
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: no API role may insert into assessments; this is the write path and
-- checks its caller first.
declare
  caller_role text := private.caller_role();
  target uuid;
  problem text;
  existing public.assessments;
  stored public.assessments;
  given jsonb;
begin
  if caller_role not in ('service_role', 'coach_ingest', 'postgres') then
    raise exception 'Only the service role or an ingest token can persist assessments' using errcode = '42501';
  end if;
  if persist_assessment_summary.request_id is null or persist_assessment_summary.request_id !~ '^[A-Za-z0-9._:-]{1,128}$' then
    raise exception 'request_id is required: 1 to 128 letters, digits or . _ : -' using errcode = '22023',
      constraint = 'assessments_request_id_format';
  end if;
  select s.user_id into target from public.coaching_sessions s where s.id = persist_assessment_summary.session_id;
  if target is null then
    raise exception 'session_id does not name a coaching session' using errcode = '23503',
      constraint = 'assessments_session_id_fkey';
  end if;
  if persist_assessment_summary.rubric_version is null or persist_assessment_summary.rubric_version not between 1 and 1000 then
    raise exception 'rubric_version must be between 1 and 1000' using errcode = '22023',
      constraint = 'assessments_rubric_version_range';
  end if;
  if persist_assessment_summary.overall_score is null or persist_assessment_summary.overall_score not between 0 and 5 then
    raise exception 'overall_score must be between 0 and 5' using errcode = '22023',
      constraint = 'assessments_overall_score_range';
  end if;
  problem := private.assessment_violation('criteria', persist_assessment_summary.criteria);
  if problem is not null then
    raise exception 'criteria %', problem using errcode = '22023', constraint = 'assessments_criteria_valid';
  end if;
  problem := private.assessment_violation('strengths', to_jsonb(coalesce(persist_assessment_summary.strengths, '{}')));
  if problem is not null then
    raise exception 'strengths %', problem using errcode = '22023', constraint = 'assessments_strengths_valid';
  end if;
  problem := private.assessment_violation('improvements', to_jsonb(coalesce(persist_assessment_summary.improvements, '{}')));
  if problem is not null then
    raise exception 'improvements %', problem using errcode = '22023', constraint = 'assessments_improvements_valid';
  end if;
  -- Checked here rather than left to the table's constraints: a constraint's error carries
  -- the whole failing row in its DETAIL (free text, and a raw id passed by mistake).
  if persist_assessment_summary.model is not null and char_length(persist_assessment_summary.model) not between 1 and 200 then
    raise exception 'model must be 1 to 200 characters' using errcode = '22023', constraint = 'assessments_model_length';
  end if;
  if persist_assessment_summary.tracked_skill_id_hash is not null and persist_assessment_summary.tracked_skill_id_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'tracked_skill_id_hash must be 64 lowercase hex digits (the keyed hash, never a raw id)' using errcode = '22023',
      constraint = 'assessments_tracked_skill_id_hash_format';
  end if;

  -- Concurrent calls with one key queue here; the first commits, the rest replay it.
  perform pg_advisory_xact_lock(hashtextextended('assessment/' || persist_assessment_summary.request_id, 7));

  given := jsonb_build_object(
    'session_id', persist_assessment_summary.session_id, 'group_id', persist_assessment_summary.group_id,
    'rubric_version', persist_assessment_summary.rubric_version,
    'overall_score', round(persist_assessment_summary.overall_score, 2),
    'criteria', persist_assessment_summary.criteria,
    'strengths', to_jsonb(coalesce(persist_assessment_summary.strengths, '{}')),
    'improvements', to_jsonb(coalesce(persist_assessment_summary.improvements, '{}')),
    'model', persist_assessment_summary.model, 'tracked_skill_id_hash', persist_assessment_summary.tracked_skill_id_hash,
    -- A backfill's timestamp is part of its payload; a live call's (now) is not.
    'created_at', persist_assessment_summary.created_at);
  select * into existing from public.assessments a where a.request_id = persist_assessment_summary.request_id;
  if found then
    if given is distinct from jsonb_build_object(
      'session_id', existing.session_id, 'group_id', existing.group_id, 'rubric_version', existing.rubric_version,
      'overall_score', existing.overall_score, 'criteria', existing.criteria, 'strengths', to_jsonb(existing.strengths),
      'improvements', to_jsonb(existing.improvements), 'model', existing.model,
      'tracked_skill_id_hash', existing.tracked_skill_id_hash,
      'created_at', case when persist_assessment_summary.created_at is not null then existing.created_at end) then
      raise exception 'request_id was already used with a different payload' using errcode = 'PT422',
        hint = 'Use a new request_id for a new assessment.';
    end if;
    return row(existing, true)::public.persisted_assessment;
  end if;

  select * into existing from public.assessments a
  where a.session_id = persist_assessment_summary.session_id
    and a.group_id is not distinct from persist_assessment_summary.group_id
    and a.rubric_version = persist_assessment_summary.rubric_version;
  if found then
    raise exception 'This session already has an assessment for this group and rubric version (%)', existing.id
      using errcode = 'PT409', hint = 'Replay its request_id to read it, or score with a new rubric version.';
  end if;

  begin
    insert into public.assessments (
      session_id, group_id, user_id, request_id, rubric_version, overall_score, criteria, strengths, improvements,
      model, tracked_skill_id_hash, created_at, actor_id, actor_role)
    values (
      persist_assessment_summary.session_id, persist_assessment_summary.group_id, target,
      persist_assessment_summary.request_id, persist_assessment_summary.rubric_version,
      round(persist_assessment_summary.overall_score, 2), persist_assessment_summary.criteria,
      coalesce(persist_assessment_summary.strengths, '{}'), coalesce(persist_assessment_summary.improvements, '{}'),
      persist_assessment_summary.model, persist_assessment_summary.tracked_skill_id_hash,
      coalesce(persist_assessment_summary.created_at, now()), auth.uid(), caller_role)
    returning * into stored;
  exception when unique_violation then
    -- Another key wrote the same (session, group, rubric version) at the same moment.
    raise exception 'This session already has an assessment for this group and rubric version' using errcode = 'PT409',
      hint = 'Replay its request_id to read it, or score with a new rubric version.';
  end;
  return row(stored, false)::public.persisted_assessment;
end;
$$;
comment on function public.persist_assessment_summary(text, uuid, numeric, jsonb, integer, uuid, text[], text[], text, text, timestamptz) is $$
The assessment callback write path (service role and coach_ingest tokens): stores one summary for a coaching session
and returns {assessment, replayed}. overall_score and each criterion score are 0..5 (two decimals); criteria is
{"criterion": score} with 1..20 lowercase keys; strengths and improvements at most 10 texts of 1..500 characters;
tracked_skill_id_hash is the HMAC the functions compute (never a raw id); created_at backdates a backfill. Idempotent by request_id: a replay returns
the original with replayed = true, another payload under the same key fails with PT422; concurrent retries make one
row. One summary per (session, group, rubric version): another key for the same fails with PT409. Invalid values
fail with 22023 naming the constraint (e.g. assessments_overall_score_range); an unknown session with 23503.
Example: select * from public.persist_assessment_summary(request_id => 'fin-1', session_id => '…', overall_score => 3.8,
  criteria => '{"clarity": 4, "empathy": 3.5}');
$$;
revoke execute on function public.persist_assessment_summary(text, uuid, numeric, jsonb, integer, uuid, text[], text[], text, text, timestamptz)
  from public, anon, authenticated;
grant execute on function public.persist_assessment_summary(text, uuid, numeric, jsonb, integer, uuid, text[], text[], text, text, timestamptz)
  to service_role, coach_ingest;

-- A page of assessments for the readers list_assessments and get_latest_assessment admit:
-- the owner, an assigned coach (audited), the service role and ingest tokens.
create or replace function private.assessments_page(
  by_session uuid, by_group uuid, max_rows integer, before_id uuid, resource text
)
returns setof public.assessments
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: coaches have no SELECT on other users' assessments; this checks the
-- caller per subject user and records a coach's read. Argument errors carry a CONSTRAINT
-- diagnostic (list_assessments_*) only so that functions can name the field.
declare
  caller_role text := private.caller_role();
  caller uuid := auth.uid();
  cursor_row public.assessments;
  page public.assessments[];
  subject uuid;
begin
  if (assessments_page.by_session is null) = (assessments_page.by_group is null) then
    raise exception 'Give exactly one of session_id and group_id' using errcode = '22023', constraint = 'list_assessments_target';
  end if;
  if assessments_page.max_rows is null or assessments_page.max_rows not between 1 and 200 then
    raise exception 'limit must be between 1 and 200' using errcode = '22023', constraint = 'list_assessments_limit';
  end if;
  if caller_role = 'authenticated' and caller is null or caller_role not in ('authenticated', 'service_role', 'postgres') then
    raise exception 'Only a signed-in user or the service role can read assessments' using errcode = '42501';
  end if;
  if assessments_page.before_id is not null then
    -- The cursor under the same read rule as the page: another user's id is unknown here.
    select * into cursor_row from public.assessments a
    where a.id = assessments_page.before_id
      and (caller_role <> 'authenticated' or a.user_id = caller or private.is_assigned_coach(a.user_id));
    if not found then
      raise exception 'before does not name an assessment' using errcode = '22023', constraint = 'list_assessments_before';
    end if;
  end if;

  -- One static query per access path, so that each keeps its index in a cached generic plan.
  if assessments_page.by_session is not null then
    select coalesce(array_agg(x order by (x).created_at desc, (x).id desc), '{}') into page
    from (
      select a as x from public.assessments a
      where a.session_id = assessments_page.by_session
        and (assessments_page.before_id is null or (a.created_at, a.id) < (cursor_row.created_at, cursor_row.id))
        and (caller_role <> 'authenticated' or a.user_id = caller or private.is_assigned_coach(a.user_id))
      order by a.created_at desc, a.id desc
      limit assessments_page.max_rows
    ) s;
  else
    select coalesce(array_agg(x order by (x).created_at desc, (x).id desc), '{}') into page
    from (
      select a as x from public.assessments a
      where a.group_id = assessments_page.by_group
        and (assessments_page.before_id is null or (a.created_at, a.id) < (cursor_row.created_at, cursor_row.id))
        and (caller_role <> 'authenticated' or a.user_id = caller or private.is_assigned_coach(a.user_id))
      order by a.created_at desc, a.id desc
      limit assessments_page.max_rows
    ) s;
  end if;

  if caller_role = 'authenticated' then
    for subject in select distinct p.user_id from unnest(page) p where p.user_id <> caller loop
      perform audit.record_phi_access(subject, assessments_page.resource,
        (select count(*)::integer from unnest(page) p where p.user_id = subject), 'coaching');
    end loop;
  end if;
  return query select * from unnest(page);
end;
$$;
comment on function private.assessments_page(uuid, uuid, integer, uuid, text) is
  'Newest-first page of assessments of one session or one group that the caller may read (own, assigned client''s, all for the service role), after the assessment before_id (which must be readable too); records an assigned coach''s read per client in audit.phi_access_log.';
revoke execute on function private.assessments_page(uuid, uuid, integer, uuid, text) from public, anon, authenticated;


-- SQL over the private page, so the argument can be "limit" as issue 10 names it
-- (plpgsql_check flags a reserved word as a plpgsql parameter name). Security definer so the
-- caller reaches the page without rights in schema private; the page judges the caller by
-- its role setting and claims, which security definer does not change.
create or replace function public.list_assessments(
  session_id uuid default null,
  group_id uuid default null,
  "limit" integer default 50,
  before uuid default null
)
returns setof public.assessments
language sql
volatile
security definer
set search_path = ''
as $$
  select * from private.assessments_page(list_assessments.session_id, list_assessments.group_id,
    list_assessments."limit", list_assessments.before, 'assessments')
$$;
comment on function public.list_assessments(uuid, uuid, integer, uuid) is $$
Assessments of one coaching session (session_id) or one group (group_id), newest first; limit 1..200 (default 50);
before = the id of the last assessment of the previous page (keyset pagination). The owner reads their own, an
assigned coach their clients' (recorded in audit.phi_access_log), the service role all (ingest tokens: none). Give
exactly one of session_id and group_id (22023 otherwise). Call with POST: supabase.rpc('list_assessments',
{ group_id, limit: 20 }) (on GET, PostgREST reads ?limit= as its own).
$$;
revoke execute on function public.list_assessments(uuid, uuid, integer, uuid) from public, anon;
grant execute on function public.list_assessments(uuid, uuid, integer, uuid) to authenticated, service_role;

create or replace function public.get_latest_assessment(session_id uuid)
returns setof public.assessments
language sql
volatile
security definer
set search_path = ''
as $$
  select * from private.assessments_page(get_latest_assessment.session_id, null, 1, null, 'assessments')
$$;
comment on function public.get_latest_assessment(uuid) is $$
The newest assessment of a coaching session (the dashboard's summary), or no row. Readers as list_assessments.
Example: supabase.rpc('get_latest_assessment', { session_id }).maybeSingle()
$$;
revoke execute on function public.get_latest_assessment(uuid) from public, anon;
grant execute on function public.get_latest_assessment(uuid) to authenticated, service_role;
