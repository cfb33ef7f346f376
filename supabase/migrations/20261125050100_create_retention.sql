-- Purpose: retention, part 2 of issue 16. public.retention_policies holds a window per kind
-- of data and what happens at its end: strip (the content goes, the de-identified row stays:
-- model, tokens, cost, latency, timestamps, persona, so metrics and cost history survive)
-- or delete. A pg_cron job (private.run_retention, hourly) applies them in bounded batches
-- (at most 100 batches of 1,000 rows per kind a run; a run that does not finish is resumed
-- by the next; a second run finds nothing), never touching data under a legal hold, and
-- records what it changed in audit.privacy_log. The append-only guard lets exactly these changes
-- through, in a transaction the retention batch registered, and nothing else.
-- Kinds applied here: interaction_content (strip only: interactions are never deleted, their
-- cost is history), interaction_events and stage_responses (strip or delete). Session media
-- keep their own window (public.media_retention_settings, the media-retention function).
-- Objects: table public.retention_policies (three rows); tables private.retention_xacts and
-- private.retention_progress; columns content_removed_at on coach_interactions,
-- interaction_events and stage_responses; functions private.trigger_refuse_change and
-- public.get_interaction_history (bodies: the latter returns the new column),
-- public.set_retention_policy, private.apply_retention_batch, private.run_retention,
-- private.trigger_reset_retention_progress and its trigger on legal_holds,
-- private.trigger_reset_retention_progress_on_backfill and its triggers on coach_interactions
-- and interaction_events, private.trigger_stage_responses_rewritten and its trigger on
-- stage_responses; pg_cron job retention. Destructive: none.

-- The policies ------------------------------------------------------------------------

create table public.retention_policies (
  data_kind text primary key,
  table_name text not null,
  retain_for interval not null,
  action text not null,
  description text not null,
  updated_at timestamptz not null default now(),
  updated_by uuid,
  updated_by_role text not null default 'postgres',
  constraint retention_policies_data_kind_known check (data_kind in ('interaction_content', 'interaction_events', 'stage_responses')),
  constraint retention_policies_action_known check (action in ('strip', 'delete')),
  -- Interactions carry cost and metrics: their content may go, the row never does.
  constraint retention_policies_interactions_strip_only check (data_kind <> 'interaction_content' or action = 'strip'),
  constraint retention_policies_window_range check (retain_for >= interval '1 day' and retain_for <= interval '100 years')
);
alter table public.retention_policies enable row level security;
comment on table public.retention_policies is
  'How long each kind of personal data is kept (retain_for, counted from created_at; for stage responses from updated_at) and what happens then: strip (content removed, de-identified row kept, content_removed_at set) or delete. Applied hourly by private.run_retention, except under a legal hold. Changed by the service role through set_retention_policy (audited).';
comment on column public.retention_policies.table_name is 'The table the policy applies to, schema-qualified.';

revoke all on public.retention_policies from public, anon, authenticated, service_role;
grant select on public.retention_policies to service_role;
create policy "Retention policies are readable by the service role"
  on public.retention_policies for select to service_role
  using (true);

-- Defaults: two years of content, then only the de-identified rows. Set them per deployment.
insert into public.retention_policies (data_kind, table_name, retain_for, action, description) values
  ('interaction_content', 'public.coach_interactions', interval '730 days', 'strip',
   'Messages: content and metadata are removed; sender, channel, persona, model, tokens, cost, latency, sentiment, status and timestamps stay.'),
  ('interaction_events', 'public.interaction_events', interval '730 days', 'strip',
   'Events: payload and category are removed; kind, score (ratings), references and timestamps stay.'),
  ('stage_responses', 'public.stage_responses', interval '730 days', 'strip',
   'Session stage answers: responses are emptied; the stage, its completion time and timestamps stay.');

alter table public.coach_interactions add column content_removed_at timestamptz;
comment on column public.coach_interactions.content_removed_at is
  'When retention removed this message''s content and metadata (content is then {"text": ""}); null while it is whole.';
alter table public.interaction_events add column content_removed_at timestamptz;
comment on column public.interaction_events.content_removed_at is
  'When retention removed this event''s payload and category; null while it is whole.';
alter table public.stage_responses add column content_removed_at timestamptz;
comment on column public.stage_responses.content_removed_at is
  'When retention emptied this stage''s responses; null while they are whole.';

-- get_interaction_history lists coach_interactions' columns: it gains content_removed_at
-- (the body is otherwise the one in place, from 20261124170000).
create or replace function public.get_interaction_history(
  user_id uuid default null,
  page_size integer default 100,
  before uuid default null,
  redacted boolean default false,
  purpose text default 'coaching'
)
returns setof public.coach_interactions
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: coaches and services read other users' rows, which RLS does not show
-- them directly; this function checks the caller first and records every read.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  target uuid := coalesce(get_interaction_history.user_id, caller);
  cursor_at timestamptz;
  cursor_id uuid;
  names text[];
  n integer;
begin
  if target is null then
    raise exception 'user_id is required for service callers' using errcode = '22023';
  end if;
  if caller_role = 'authenticated' then
    if caller is null or (target <> caller and not private.is_assigned_coach(target)) then
      raise exception 'Only the user, their assigned coach or the service role can read these interactions'
        using errcode = '42501';
    end if;
  elsif caller_role not in ('service_role', 'postgres') then
    raise exception 'Role % cannot read interactions', caller_role using errcode = '42501';
  end if;
  if get_interaction_history.page_size is null or get_interaction_history.page_size not between 1 and 100 then
    raise exception 'page_size must be between 1 and 100' using errcode = '22023';
  end if;
  if get_interaction_history.purpose is null or char_length(get_interaction_history.purpose) not between 1 and 200 then
    raise exception 'purpose must be 1 to 200 characters' using errcode = '22023';
  end if;
  if get_interaction_history.before is not null then
    select i.created_at, i.id into cursor_at, cursor_id
    from public.coach_interactions i
    where i.id = get_interaction_history.before and i.user_id = target;
    if not found then
      raise exception 'before does not name an interaction of this user' using errcode = '22023';
    end if;
  end if;
  if get_interaction_history.redacted then
    names := private.profile_name_parts(target);
  end if;

  return query
  select i.id, i.user_id, i.session_id, i.conversation_id, i.request_id, i.sender, i.channel, i.coach_persona,
         case when get_interaction_history.redacted then private.redact_content(i.content, names) else i.content end,
         case when get_interaction_history.redacted then private.redact_content(i.metadata, names) else i.metadata end,
         i.model, i.latency_ms, i.prompt_tokens, i.completion_tokens, i.cached_tokens, i.cost_usd, i.sentiment,
         i.momentum_state, i.status, i.error_code, i.tracked_skill_id_hash, i.created_at, i.actor_id, i.actor_role,
         i.content_removed_at
  from public.coach_interactions i
  where i.user_id = target
    and (cursor_at is null or (i.created_at, i.id) < (cursor_at, cursor_id))
  order by i.created_at desc, i.id desc
  limit get_interaction_history.page_size;
  get diagnostics n = row_count;

  perform audit.record_phi_access(
    target,
    case when get_interaction_history.redacted then 'coach_interactions:redacted' else 'coach_interactions' end,
    n, get_interaction_history.purpose);
  return;
end;
$$;

create or replace function public.set_retention_policy(data_kind text, retain_for interval, action text, reason text)
returns public.retention_policies
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: no API role may write retention_policies; this checks its caller first.
declare
  before public.retention_policies;
  after public.retention_policies;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can set retention policies' using errcode = '42501';
  end if;
  if set_retention_policy.reason is null or char_length(trim(set_retention_policy.reason)) = 0 or char_length(set_retention_policy.reason) > 1000 then
    raise exception 'reason is required: 1 to 1000 characters' using errcode = '22023';
  end if;
  select p.* into before from public.retention_policies p where p.data_kind = set_retention_policy.data_kind for update;
  if before.data_kind is null then
    raise exception 'data_kind must be one of interaction_content, interaction_events, stage_responses' using errcode = '22023';
  end if;
  if set_retention_policy.retain_for is null or set_retention_policy.retain_for < interval '1 day'
     or set_retention_policy.retain_for > interval '100 years' then
    raise exception 'retain_for must be between 1 day and 100 years' using errcode = '22023',
      constraint = 'retention_policies_window_range';
  end if;
  if set_retention_policy.action is null or set_retention_policy.action not in ('strip', 'delete') then
    raise exception 'action must be strip or delete' using errcode = '22023', constraint = 'retention_policies_action_known';
  end if;
  if set_retention_policy.data_kind = 'interaction_content' and set_retention_policy.action <> 'strip' then
    raise exception 'Interactions are stripped, never deleted: their cost and metrics are history' using errcode = '22023',
      constraint = 'retention_policies_interactions_strip_only';
  end if;
  update public.retention_policies p
  set retain_for = set_retention_policy.retain_for, action = set_retention_policy.action, updated_at = now(),
      updated_by = auth.uid(), updated_by_role = private.caller_role()
  where p.data_kind = set_retention_policy.data_kind
  returning * into after;
  -- Another window or action changes what is due: every user is read again for this kind.
  delete from private.retention_progress rp where rp.data_kind = after.data_kind;
  perform private.log_privacy_operation('retention_policy_set', null, null, set_retention_policy.reason,
    jsonb_build_object('data_kind', after.data_kind,
                       'before', jsonb_build_object('retain_for', before.retain_for::text, 'action', before.action),
                       'after', jsonb_build_object('retain_for', after.retain_for::text, 'action', after.action)));
  return after;
end;
$$;
comment on function public.set_retention_policy(text, interval, text, text) is
  'Service role: sets one kind''s retention window (1 day to 100 years) and action (strip, or delete except for interaction_content), with a reason; the next run reads every user again for that kind. Audited in audit.privacy_log with the policy before and after.';
revoke execute on function public.set_retention_policy(text, interval, text, text) from public, anon, authenticated;
grant execute on function public.set_retention_policy(text, interval, text, text) to service_role;

-- A released hold lets retention reach what it kept: the user's progress starts again.
create or replace function private.trigger_reset_retention_progress()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  delete from private.retention_progress p where p.user_id = new.user_id;
  return null;
end;
$$;
comment on function private.trigger_reset_retention_progress() is
  'Trigger on legal_holds: when a hold is released, clears the user''s retention progress, so the next run reads their rows from the start and reaches what the hold kept.';
revoke execute on function private.trigger_reset_retention_progress() from public, anon, authenticated;

-- What lets retention through the append-only guard -------------------------------------

create table private.retention_xacts (
  xact_id xid8 not null default pg_current_xact_id(),
  table_name text not null,
  action text not null,
  cutoff timestamptz not null,
  at timestamptz not null,
  primary key (xact_id, table_name)
);
revoke all on private.retention_xacts from public, anon, authenticated, service_role;
comment on table private.retention_xacts is
  'Retention batches, with the transaction that ran each: the append-only guard lets that transaction strip (or delete) that table''s rows older than the cutoff and not under a legal hold, and nothing else. private.run_retention clears its own rows and those of finished transactions (a finished transaction''s row lets nothing through).';

create table private.retention_progress (
  data_kind text not null,
  user_id uuid not null,
  done_before timestamptz not null,
  primary key (data_kind, user_id)
);
revoke all on private.retention_progress from public, anon, authenticated, service_role;
comment on table private.retention_progress is
  'Per kind and user, the time before which retention has applied (its cutoff when it last finished the user): the next batch reads only newer rows. Released legal holds clear the user''s rows here, so what the hold kept is reached again.';

create trigger legal_holds_reset_retention_progress
  after update of released_at on public.legal_holds
  for each row when (old.released_at is null and new.released_at is not null)
  execute function private.trigger_reset_retention_progress();

create or replace function private.trigger_refuse_change()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  old_row jsonb := to_jsonb(old);
  retention private.retention_xacts;
begin
  -- The deletes allowed: the rows of a user whose erasure this transaction registered (the
  -- cascade from deleting their auth.users row). Tables without a user_id (the audit logs)
  -- never qualify.
  if tg_op = 'DELETE' and exists (
    select 1 from private.user_erasures e
    where e.user_id = (old_row ->> 'user_id')::uuid and e.xact_id = pg_current_xact_id()
  ) then
    return old;
  end if;
  -- The one update allowed with erasure: in a transaction that erases a user, a row of
  -- someone else that referenced one of the erased user's sessions loses the reference as
  -- the session goes (on delete set null), and nothing else about the row changes.
  if tg_op = 'UPDATE'
     and (old_row ->> 'session_id') is not null
     and to_jsonb(new) = old_row || jsonb_build_object('session_id', null)
     and exists (select 1 from private.erased_sessions e
                 where e.session_id = (old_row ->> 'session_id')::uuid and e.xact_id = pg_current_xact_id()) then
    return new;
  end if;
  -- Retention, in a transaction whose batch registered this table: a row older than the
  -- cutoff and under no legal hold may be stripped exactly as the policy says (content
  -- removed once, content_removed_at set, nothing else changed) or, for events, deleted.
  if tg_op in ('UPDATE', 'DELETE') then
    select r.* into retention from private.retention_xacts r
    where r.xact_id = pg_current_xact_id() and r.table_name = tg_table_schema || '.' || tg_table_name;
    if retention.table_name is not null
       and (old_row ->> 'created_at')::timestamptz < retention.cutoff
       and not private.legal_hold_applies((old_row ->> 'user_id')::uuid, (old_row ->> 'session_id')::uuid) then
      if tg_op = 'DELETE' and retention.action = 'delete' and tg_table_name = 'interaction_events' then
        return old;
      end if;
      if tg_op = 'UPDATE' and retention.action = 'strip' and old_row ->> 'content_removed_at' is null
         and to_jsonb(new) = old_row || jsonb_build_object('content_removed_at', to_jsonb(retention.at)) || (case tg_table_name
               when 'coach_interactions' then jsonb_build_object('content', '{"text": ""}'::jsonb, 'metadata', '{}'::jsonb)
               when 'interaction_events' then jsonb_build_object('payload', '{}'::jsonb, 'category', null)
             end) then
        return new;
      end if;
    end if;
  end if;
  raise exception '% is append-only: rows cannot be updated or deleted', tg_table_schema || '.' || tg_table_name
    using errcode = '42501',
          hint = 'Rows leave only when their user is erased (their auth.users row deleted), and change only by retention.';
end;
$$;
comment on function private.trigger_refuse_change() is
  'Trigger function for append-only tables: refuses UPDATE, TRUNCATE and DELETE, except the deletion of an erased user''s rows in the transaction that erased them, and retention''s strip (or delete) of rows past their window and under no legal hold in a transaction a retention batch registered.';

-- A row written with a created_at before a user's progress (a backfill by the service role
-- or an ingest token) would be behind the mark the next batch reads from: its user is read
-- again from the start. A row younger than a day cannot be (no window is shorter), so the
-- usual write costs one scan of its own rows.
create or replace function private.trigger_reset_retention_progress_on_backfill()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: the writers (the API roles' write paths) have no rights on
  -- private.retention_progress.
  if exists (select 1 from new_rows n where n.created_at < now() - interval '1 day') then
    delete from private.retention_progress p
    using (select distinct n.user_id from new_rows n where n.created_at < now() - interval '1 day') b
    where p.user_id = b.user_id;
  end if;
  return null;
end;
$$;
comment on function private.trigger_reset_retention_progress_on_backfill() is
  'Statement trigger on coach_interactions and interaction_events: when rows older than a day are written (a backfill), clears their users'' retention progress so that retention reaches them.';
revoke execute on function private.trigger_reset_retention_progress_on_backfill() from public, anon, authenticated;

create trigger coach_interactions_reset_retention_progress
  after insert on public.coach_interactions
  referencing new table as new_rows
  for each statement execute function private.trigger_reset_retention_progress_on_backfill();
create trigger interaction_events_reset_retention_progress
  after insert on public.interaction_events
  referencing new table as new_rows
  for each statement execute function private.trigger_reset_retention_progress_on_backfill();

-- Stage answers saved again after retention emptied them are whole again: they are no longer
-- marked removed, so retention reaches them in turn and the export does not call them removed.
create or replace function private.trigger_stage_responses_rewritten()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if old.content_removed_at is not null and new.content_removed_at is not distinct from old.content_removed_at
     and new.responses is distinct from old.responses then
    new.content_removed_at := null;
  end if;
  return new;
end;
$$;
comment on function private.trigger_stage_responses_rewritten() is
  'Trigger on stage_responses: answers saved again after retention emptied them clear content_removed_at.';
revoke execute on function private.trigger_stage_responses_rewritten() from public, anon, authenticated;

create trigger stage_responses_rewritten
  before update on public.stage_responses
  for each row execute function private.trigger_stage_responses_rewritten();

-- Applying the policies -----------------------------------------------------------------

create or replace function private.apply_retention_batch(data_kind text, batch_size integer default 1000, at timestamptz default now())
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: strips or deletes other users' rows, so only the service role (and the
-- owner, for pg_cron) may run it, and the guard checks each row again.
-- One batch: up to batch_size rows of one kind past their window (at - retain_for), user by
-- user in id order from where the last batch stopped (private.retention_progress), skipping
-- what a legal hold covers. Returns how many rows it stripped or deleted: fewer than
-- batch_size means the kind is done up to its cutoff.
declare
  policy public.retention_policies;
  cutoff timestamptz;
  remaining integer := apply_retention_batch.batch_size;
  done integer;
  u record;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can apply retention' using errcode = '42501';
  end if;
  if apply_retention_batch.batch_size is null or apply_retention_batch.batch_size not between 1 and 10000 then
    raise exception 'batch_size must be between 1 and 10000' using errcode = '22023';
  end if;
  select p.* into policy from public.retention_policies p where p.data_kind = apply_retention_batch.data_kind;
  if policy.data_kind is null then
    raise exception 'data_kind must be one of interaction_content, interaction_events, stage_responses' using errcode = '22023';
  end if;
  cutoff := apply_retention_batch.at - policy.retain_for;
  -- Holds placed from now on wait for this transaction to commit (place_legal_hold takes the
  -- exclusive form of this lock), and every hold committed before is seen below: once a
  -- placement returns, no retention already under way strips what it covers.
  perform pg_advisory_xact_lock_shared(hashtextextended('legal-hold', 0));
  insert into private.retention_xacts (table_name, action, cutoff, at)
  values (policy.table_name, policy.action, cutoff, apply_retention_batch.at)
  on conflict (xact_id, table_name) do update set action = excluded.action, cutoff = excluded.cutoff, at = excluded.at;

  for u in
    select p.id, coalesce(rp.done_before, '-infinity'::timestamptz) as done_before
    from public.profiles p
    left join private.retention_progress rp on rp.data_kind = policy.data_kind and rp.user_id = p.id
    where coalesce(rp.done_before, '-infinity'::timestamptz) < cutoff
      -- A user-wide hold keeps the whole user as is; their progress stays where it was.
      and not exists (select 1 from public.legal_holds h where h.user_id = p.id and h.session_id is null and h.released_at is null)
    order by p.id
  loop
    if policy.data_kind = 'interaction_content' then
      with due as (
        select i.id from public.coach_interactions i
        where i.user_id = u.id and i.created_at >= u.done_before and i.created_at < cutoff and i.content_removed_at is null
          and (i.session_id is null or not private.legal_hold_applies(u.id, i.session_id))
        order by i.created_at
        limit remaining
      )
      update public.coach_interactions c
      set content = '{"text": ""}'::jsonb, metadata = '{}'::jsonb, content_removed_at = apply_retention_batch.at
      from due where c.id = due.id and c.content_removed_at is null;
    elsif policy.data_kind = 'interaction_events' and policy.action = 'strip' then
      with due as (
        select e.id from public.interaction_events e
        where e.user_id = u.id and e.created_at >= u.done_before and e.created_at < cutoff and e.content_removed_at is null
          -- An event's session is its own, else its interaction's (a rating of a message).
          and not private.legal_hold_applies(u.id, coalesce(e.session_id,
                (select i.session_id from public.coach_interactions i where i.id = e.interaction_id)))
        order by e.created_at
        limit remaining
      )
      update public.interaction_events e
      set payload = '{}'::jsonb, category = null, content_removed_at = apply_retention_batch.at
      from due where e.id = due.id and e.content_removed_at is null;
    elsif policy.data_kind = 'interaction_events' then
      with due as (
        select e.id from public.interaction_events e
        where e.user_id = u.id and e.created_at >= u.done_before and e.created_at < cutoff
          -- An event's session is its own, else its interaction's (a rating of a message).
          and not private.legal_hold_applies(u.id, coalesce(e.session_id,
                (select i.session_id from public.coach_interactions i where i.id = e.interaction_id)))
        order by e.created_at
        limit remaining
      )
      delete from public.interaction_events e using due where e.id = due.id;
    elsif policy.action = 'strip' then
      -- Stage responses: by their last change, session by session of the user.
      with due as (
        select r.id from public.stage_responses r
        join public.coaching_sessions s on s.id = r.session_id
        where s.user_id = u.id and r.updated_at < cutoff and r.content_removed_at is null
          and not private.legal_hold_applies(u.id, s.id)
        order by r.updated_at
        limit remaining
      )
      update public.stage_responses r
      set responses = '{}'::jsonb, content_removed_at = apply_retention_batch.at
      from due where r.id = due.id and r.content_removed_at is null;
    else
      with due as (
        select r.id from public.stage_responses r
        join public.coaching_sessions s on s.id = r.session_id
        where s.user_id = u.id and r.updated_at < cutoff
          and not private.legal_hold_applies(u.id, s.id)
        order by r.updated_at
        limit remaining
      )
      delete from public.stage_responses r using due where r.id = due.id;
    end if;
    get diagnostics done = row_count;
    remaining := remaining - done;
    if remaining = 0 then
      -- The batch is full; this user may have more, so their progress stays where it was.
      exit;
    end if;
    insert into private.retention_progress (data_kind, user_id, done_before)
    values (policy.data_kind, u.id, cutoff)
    on conflict on constraint retention_progress_pkey do update set done_before = excluded.done_before;
  end loop;
  return apply_retention_batch.batch_size - remaining;
end;
$$;
comment on function private.apply_retention_batch(text, integer, timestamptz) is
  'Service role, retention''s unit of work: strips or deletes up to batch_size (1..10000) rows of one kind (interaction_content, interaction_events, stage_responses) past their window at `at`, as its policy says, skipping what a legal hold covers; returns how many. Fewer than batch_size: the kind is done up to its cutoff. private.run_retention calls it in a loop.';
revoke execute on function private.apply_retention_batch(text, integer, timestamptz) from public, anon, authenticated;
grant execute on function private.apply_retention_batch(text, integer, timestamptz) to service_role;

create or replace function private.run_retention(batch_size integer default 1000, max_batches integer default 100, at timestamptz default now())
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: the retention job (pg_cron, as the owner) and the service role run it;
-- it checks its caller first. One transaction: pg_cron's background workers cannot commit
-- inside a procedure ("invalid transaction termination", seen with this stack's pg_cron),
-- so a run is bounded instead: at most max_batches batches of batch_size rows per kind; what
-- is left goes to the next run, which starts where this one stopped. It locks only the rows
-- it changes, which nothing else writes (they are past their window). Records each kind
-- that changed rows in audit.privacy_log.
declare
  policy public.retention_policies;
  n integer;
  total integer;
  batches integer;
  summary jsonb := '{}'::jsonb;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can run retention' using errcode = '42501';
  end if;
  if run_retention.max_batches is null or run_retention.max_batches not between 1 and 10000 then
    raise exception 'max_batches must be between 1 and 10000' using errcode = '22023';
  end if;
  -- One run at a time: a second waits for the first to commit, then finds what is left.
  perform pg_advisory_xact_lock(hashtextextended('retention-run', 0));
  for policy in select p.* from public.retention_policies p order by p.data_kind loop
    total := 0;
    batches := 0;
    loop
      n := private.apply_retention_batch(policy.data_kind, run_retention.batch_size, run_retention.at);
      total := total + n;
      batches := batches + 1;
      exit when n < run_retention.batch_size or batches >= run_retention.max_batches;
    end loop;
    summary := summary || jsonb_build_object(policy.data_kind, jsonb_build_object(
      'action', policy.action, 'rows', total, 'batches', batches, 'done', n < run_retention.batch_size));
    if total > 0 then
      perform private.log_privacy_operation('retention_applied', null, null, null, jsonb_build_object(
        'data_kind', policy.data_kind, 'action', policy.action, 'retain_for', policy.retain_for::text,
        'cutoff', run_retention.at - policy.retain_for, 'rows', total, 'batches', batches,
        'done', n < run_retention.batch_size));
    end if;
  end loop;
  -- This run's registrations, and any left by finished transactions (direct batch calls).
  delete from private.retention_xacts
  where xact_id = pg_current_xact_id() or coalesce(pg_xact_status(xact_id), 'committed') <> 'in progress';
  return summary;
end;
$$;
comment on function private.run_retention(integer, integer, timestamptz) is
  'The retention job (pg_cron retention, hourly at minute 40): applies every policy at `at`, per kind at most max_batches batches of batch_size rows, in one transaction; returns {kind: {action, rows, batches, done}} and records each kind that changed rows in audit.privacy_log (retention_applied). done false: the next run goes on where this one stopped.';
revoke execute on function private.run_retention(integer, integer, timestamptz) from public, anon, authenticated;
grant execute on function private.run_retention(integer, integer, timestamptz) to service_role;

select cron.schedule('retention', '40 * * * *', 'select private.run_retention()');
