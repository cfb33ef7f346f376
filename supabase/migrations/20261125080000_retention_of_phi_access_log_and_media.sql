-- Purpose: retention of the PHI access log (issue 16), without losing its verifiability.
-- The log is a hash chain anchored by signed checkpoints (audit-checkpoint). A policy
-- ('phi_access_log', delete only; six years, the retention HIPAA sets for compliance
-- documentation, 45 CFR 164.316(b)(2), and no shorter) lets the hourly retention job delete a
-- prefix of the chain, and only through a recorded checkpoint: the rows up to and including
-- a checkpoint's position go, and (position, hash) of that checkpoint becomes the log's
-- anchor (audit.phi_access_log_anchor). The first row kept chains to it, so the in-database
-- verifier and npm run audit:verify (which holds the exported checkpoints and the public key)
-- check the rest from a signed starting point. A prefix stops before the first row that is
-- not yet past the window, before the first row read by or about a person under a legal
-- hold, and before the last row, and never takes a row that no longer verifies. Each prune is recorded in audit.privacy_log (retention_applied).
-- Session media join the same table, so that every kind of personal data has its policy in
-- one place: 'media_audio' (30 days) and 'media_transcript' (kept: retain_for null), delete
-- only, applied as before by the media-retention function. set_retention_policy (audited) is
-- now how their window changes; public.media_retention_settings, which the media triggers
-- read and every signed-in user may read, follows it and is no longer written directly, and
-- a new window applies to the files already stored (their expires_at from their upload).
-- Retention of stage answers now empties the session's AI summary too (written from them),
-- and the check on a completed stage's answers lets stripped ones be empty.
-- Objects: retention_policies' kind and action checks, retain_for nullable for media, rows
-- for phi_access_log, media_audio and media_transcript; the service role's UPDATE on
-- public.media_retention_settings revoked; constraint stage_responses_valid; column
-- private.retention_xacts.through_seq; table audit.phi_access_log_anchor; indexes on
-- audit.phi_access_log (subject_user_id, chain_seq) and (actor_id, chain_seq); functions
-- private.prune_phi_access_log (new), private.trigger_refuse_change,
-- audit.phi_access_log_breaks, public.set_retention_policy, private.apply_retention_batch,
-- private.run_retention (bodies).
-- Destructive: none by itself; the job deletes log rows older than the window.

-- The policy ------------------------------------------------------------------------------

alter table public.retention_policies drop constraint retention_policies_data_kind_known;
alter table public.retention_policies add constraint retention_policies_data_kind_known
  check (data_kind in ('interaction_content', 'interaction_events', 'stage_responses', 'phi_access_log', 'media_audio',
                       'media_transcript'));
-- The log is a chain: a row can only go as part of a prefix, never lose its content. Six
-- years at least: the log is the record of who read whose data, and no API caller may
-- shorten it (only a migration could).
alter table public.retention_policies add constraint retention_policies_phi_access_log_delete_only
  check (data_kind <> 'phi_access_log' or action = 'delete');
alter table public.retention_policies add constraint retention_policies_phi_access_log_minimum
  check (data_kind <> 'phi_access_log' or retain_for >= interval '6 years');
-- Who read whose data, by person: the prune's legal-hold stop, the export's data_access.
create index phi_access_log_subject_user_id_chain_seq_idx on audit.phi_access_log (subject_user_id, chain_seq);
create index phi_access_log_actor_id_chain_seq_idx on audit.phi_access_log (actor_id, chain_seq) where actor_id is not null;
insert into public.retention_policies (data_kind, table_name, retain_for, action, description) values
  ('phi_access_log', 'audit.phi_access_log', interval '6 years', 'delete',
   'Who read whose data: rows past the window are deleted as a prefix of the hash chain, up to a signed checkpoint, which becomes the chain''s anchor.')
on conflict (data_kind) do nothing;

-- Session media: a window in whole days (1 to 3650, as media_retention_settings allows) or
-- none (kept); their objects are deleted, never stripped.
alter table public.retention_policies alter column retain_for drop not null;
alter table public.retention_policies add constraint retention_policies_window_required
  check (retain_for is not null or data_kind in ('media_audio', 'media_transcript'));
alter table public.retention_policies add constraint retention_policies_media_window
  check (data_kind not in ('media_audio', 'media_transcript')
         or retain_for is null
         or (retain_for = make_interval(days => extract(day from retain_for)::integer) and retain_for <= interval '3650 days'));
alter table public.retention_policies add constraint retention_policies_media_delete_only
  check (data_kind not in ('media_audio', 'media_transcript') or action = 'delete');
comment on column public.retention_policies.retain_for is
  'How long the data is kept (from created_at; stage responses from updated_at; media from upload); null only for media: kept.';
insert into public.retention_policies (data_kind, table_name, retain_for, action, description)
select 'media_' || m.kind, 'public.session_media', case when m.retain_days is null then null else make_interval(days => m.retain_days) end,
       'delete',
       case m.kind when 'audio' then 'Session recordings: the object is deleted through the Storage API by the media-retention function; its row stays, marked expired.'
                   else 'Session transcripts: as recordings; kept while the window is empty.' end
from public.media_retention_settings m
on conflict (data_kind) do nothing;
-- One way to change a window: set_retention_policy, audited. The media triggers keep reading
-- media_retention_settings, which follows it.
revoke update on public.media_retention_settings from service_role;
drop policy "Media retention settings are changed by the service role" on public.media_retention_settings;
comment on table public.media_retention_settings is
  'The privacy window of session media per kind, as the media triggers read it: retain_days after upload (null: kept). Audio 30 days, transcripts kept. Follows public.retention_policies (media_audio, media_transcript), which the service role changes with set_retention_policy; readable by everyone signed in.';

-- Stage answers emptied by retention ------------------------------------------------------

-- A completed stage's answers must be valid for their stage; once retention has emptied them
-- (content_removed_at set) they are {} and that is all (without this, stripping a completed
-- stage failed the check, and with it the whole retention run).
alter table public.stage_responses drop constraint stage_responses_valid;
alter table public.stage_responses add constraint stage_responses_valid check (
  completed_at is null or content_removed_at is not null
  or cardinality(private.stage_response_errors(stage_number::integer, responses)) = 0);

-- The anchor ------------------------------------------------------------------------------

create table audit.phi_access_log_anchor (
  singleton boolean primary key default true,
  through_seq bigint not null default 0,
  through_hash text not null default repeat('0', 64),
  -- The id in audit.phi_access_checkpoints (append-only: no foreign key needed to keep it).
  checkpoint_id bigint,
  pruned_at timestamptz,
  constraint phi_access_log_anchor_singleton check (singleton),
  constraint phi_access_log_anchor_seq_nonnegative check (through_seq >= 0),
  constraint phi_access_log_anchor_hash_format check (through_hash ~ '^[0-9a-f]{64}$'),
  constraint phi_access_log_anchor_checkpointed check ((through_seq = 0) = (checkpoint_id is null))
);
alter table audit.phi_access_log_anchor enable row level security;
revoke all on audit.phi_access_log_anchor from public, anon, authenticated, service_role;
grant select on audit.phi_access_log_anchor to service_role;
create policy "The PHI access log's anchor is readable by the service role"
  on audit.phi_access_log_anchor for select to service_role
  using (true);
comment on table audit.phi_access_log_anchor is
  'Where audit.phi_access_log starts after retention: rows up to through_seq were deleted, and the first row kept has prev_hash through_hash, the hash of the recorded checkpoint checkpoint_id. (0, zeros) while nothing has been deleted. Written only by private.prune_phi_access_log.';
insert into audit.phi_access_log_anchor default values;

alter table private.retention_xacts add column through_seq bigint;
comment on column private.retention_xacts.through_seq is
  'For audit.phi_access_log: the last chain position this transaction may delete (its new anchor).';

-- The guard -------------------------------------------------------------------------------

-- As in 20261125050100, with one more delete let through: a prefix of the PHI access log
-- in the transaction that prunes it, up to the position it registered, past the window, and
-- read by and about no one under a legal hold.
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
  if tg_op in ('UPDATE', 'DELETE') then
    select r.* into retention from private.retention_xacts r
    where r.xact_id = pg_current_xact_id() and r.table_name = tg_table_schema || '.' || tg_table_name;
    -- The PHI access log's retention: a prefix up to the registered position, past the window,
    -- about no one under a legal hold.
    if tg_op = 'DELETE' and tg_table_schema = 'audit' and tg_table_name = 'phi_access_log' then
      if retention.through_seq is not null
         and (old_row ->> 'chain_seq')::bigint <= retention.through_seq
         and (old_row ->> 'accessed_at')::timestamptz < retention.cutoff
         and not exists (select 1 from public.legal_holds h
                         where h.user_id in ((old_row ->> 'subject_user_id')::uuid, (old_row ->> 'actor_id')::uuid)
                           and h.released_at is null) then
        return old;
      end if;
    -- Retention, in a transaction whose batch registered this table: a row older than the
    -- cutoff and under no legal hold may be stripped exactly as the policy says (content
    -- removed once, content_removed_at set, nothing else changed) or, for events, deleted.
    elsif retention.table_name is not null
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
  'Trigger function for append-only tables: refuses UPDATE, TRUNCATE and DELETE, except the deletion of an erased user''s rows in the transaction that erased them, retention''s strip (or delete) of rows past their window and under no legal hold in a transaction a retention batch registered, and the PHI access log''s prune (a prefix up to a checkpoint, past the window, read by and about no one under a hold).';

-- The prune -------------------------------------------------------------------------------

create or replace function private.prune_phi_access_log(at timestamptz default now(), max_rows integer default 100000)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: deletes audit rows, which no API role may; run by private.run_retention
-- (pg_cron as the owner, or the service role), which checks the caller.
declare
  policy public.retention_policies;
  -- Never a clock ahead of now: the window counts back from the present, whoever asks.
  clock timestamptz := least(prune_phi_access_log.at, now());
  cutoff timestamptz;
  anchor audit.phi_access_log_anchor;
  last_seq bigint;
  stop_seq bigint;
  target audit.phi_access_checkpoints;
  broken_at bigint;
  n integer;
begin
  if prune_phi_access_log.max_rows is null or prune_phi_access_log.max_rows < 1 then
    raise exception 'max_rows must be at least 1' using errcode = '22023';
  end if;
  select p.* into policy from public.retention_policies p where p.data_kind = 'phi_access_log';
  cutoff := clock - policy.retain_for;
  -- One prune at a time (the anchor's row lock). Holds placed from now on wait for this
  -- transaction (as for the other kinds), and every hold committed before is seen below.
  perform pg_advisory_xact_lock_shared(hashtextextended('legal-hold', 0));
  select a.* into anchor from audit.phi_access_log_anchor a where a.singleton for update;
  select max(l.chain_seq) into last_seq from audit.phi_access_log l;

  -- The first position that must stay: the first row not yet past the window, the first row
  -- read by or about a person under a legal hold (the first, per held person, through the
  -- indexes on subject and actor), and in any case the last row (the chain goes on from it).
  select least(
    last_seq,
    (select min(l.chain_seq) from audit.phi_access_log l
     where l.chain_seq > anchor.through_seq and l.accessed_at >= cutoff),
    (select min(f.seq) from (select distinct h.user_id from public.legal_holds h where h.released_at is null) h
     cross join lateral (
       select min(x.seq) as seq from (
         (select l.chain_seq as seq from audit.phi_access_log l
          where l.subject_user_id = h.user_id and l.chain_seq > anchor.through_seq order by l.chain_seq limit 1)
         union all
         (select l.chain_seq from audit.phi_access_log l
          where l.actor_id = h.user_id and l.chain_seq > anchor.through_seq order by l.chain_seq limit 1)) x) f))
  into stop_seq;

  -- The new anchor: a recorded checkpoint before stop_seq whose hash is the row's there; the
  -- furthest within max_rows of the current anchor, else the nearest within ten times that
  -- (a log whose checkpoints are further apart waits: the run says it is not done).
  select c.* into target
  from audit.phi_access_checkpoints c
  join audit.phi_access_log l on l.chain_seq = c.chain_seq and l.row_hash = c.head_hash
  where c.chain_seq > anchor.through_seq and c.chain_seq < stop_seq
    and c.chain_seq - anchor.through_seq <= 10 * prune_phi_access_log.max_rows::bigint
  order by (c.chain_seq - anchor.through_seq <= prune_phi_access_log.max_rows) desc,
           case when c.chain_seq - anchor.through_seq <= prune_phi_access_log.max_rows then -c.chain_seq else c.chain_seq end,
           c.id
  limit 1;
  if target.id is null then
    return jsonb_build_object('rows', 0, 'through_seq', anchor.through_seq, 'cutoff', cutoff,
                              'done', coalesce(stop_seq, 0) <= anchor.through_seq + 1);
  end if;

  -- Nothing broken goes: the rows to delete must still chain from the anchor and hash to their
  -- fields. A break stops retention here, so that the evidence stays for the verifiers.
  select min(b.chain_seq) into broken_at
  from (select l.chain_seq, l.prev_hash, l.row_hash, private._phi_access_row_hash(l.prev_hash, l) as own,
               coalesce(lag(l.row_hash) over (order by l.chain_seq), anchor.through_hash) as expected_prev,
               coalesce(lag(l.chain_seq) over (order by l.chain_seq), anchor.through_seq) as previous_seq
        from audit.phi_access_log l
        where l.chain_seq > anchor.through_seq and l.chain_seq <= target.chain_seq) b
  where b.own <> b.row_hash or b.prev_hash <> b.expected_prev or b.chain_seq <> b.previous_seq + 1;
  if broken_at is not null then
    raise warning 'The PHI access log is broken at position %: retention leaves it as it is', broken_at;
    return jsonb_build_object('rows', 0, 'through_seq', anchor.through_seq, 'cutoff', cutoff, 'done', false,
                              'broken_at', broken_at);
  end if;

  insert into private.retention_xacts (table_name, action, cutoff, at, through_seq)
  values ('audit.phi_access_log', 'delete', cutoff, clock, target.chain_seq)
  on conflict (xact_id, table_name) do update
    set action = excluded.action, cutoff = excluded.cutoff, at = excluded.at, through_seq = excluded.through_seq;
  delete from audit.phi_access_log l where l.chain_seq > anchor.through_seq and l.chain_seq <= target.chain_seq;
  get diagnostics n = row_count;
  update audit.phi_access_log_anchor a
  set through_seq = target.chain_seq, through_hash = target.head_hash, checkpoint_id = target.id, pruned_at = now()
  where a.singleton;
  return jsonb_build_object('rows', n, 'through_seq', target.chain_seq, 'checkpoint_id', target.id, 'cutoff', cutoff,
                            'done', stop_seq <= target.chain_seq + 1);
end;
$$;
comment on function private.prune_phi_access_log(timestamptz, integer) is
  'Retention of the PHI access log at `at` (never later than now): deletes the rows up to a recorded checkpoint whose hash is the row''s there (the furthest within max_rows of the current anchor, else the nearest within ten times that), stopping before the first row not past the window, the first read by or about a person under a legal hold, and the last row, and never deleting a row that no longer verifies (broken_at); that checkpoint''s (position, hash) becomes audit.phi_access_log_anchor. Returns {rows, through_seq, checkpoint_id, cutoff, done, broken_at?}; done is false while rows past the window remain before the stop. Called by private.run_retention.';
revoke execute on function private.prune_phi_access_log(timestamptz, integer) from public, anon, authenticated, service_role;

-- The verifier ----------------------------------------------------------------------------

-- As in 20261124010000, starting from the anchor: the first row kept must be at the position
-- after it and chain to its hash, and the anchor must be a recorded checkpoint.
create or replace function audit.phi_access_log_breaks()
returns table (chain_seq bigint, id bigint, problem text)
language sql
stable
set search_path = ''
as $$
  with anchor as (
    select coalesce((select a.through_seq from audit.phi_access_log_anchor a where a.singleton), 0) as seq,
           coalesce((select a.through_hash from audit.phi_access_log_anchor a where a.singleton), repeat('0', 64)) as hash
  ),
  ordered as (
    select l as r,
           lag(l.row_hash) over w as expected_prev,
           lag(l.chain_seq) over w as previous_seq
    from audit.phi_access_log l
    window w as (order by l.chain_seq)
  ),
  problems as (
    select (o.r).chain_seq, (o.r).id, p.problem, p.ord
    from ordered o
    cross join anchor a
    cross join lateral (values
      (1, case when (o.r).chain_seq <> coalesce(o.previous_seq, a.seq) + 1
               then format('chain positions %s to %s are missing', coalesce(o.previous_seq, a.seq) + 1, (o.r).chain_seq - 1) end),
      (2, case when (o.r).prev_hash <> coalesce(o.expected_prev, a.hash)
               then case when o.expected_prev is null and a.seq > 0
                         then 'prev_hash is not the hash of the anchor the log was pruned to'
                         else 'prev_hash is not the previous row''s row_hash' end end),
      (3, case when (o.r).row_hash <> private._phi_access_row_hash((o.r).prev_hash, o.r)
               then 'row_hash does not match the row''s fields' end)
    ) p(ord, problem)
    where p.problem is not null
    union all
    -- Rows removed from the end of the chain: the head knows a later position.
    select h.last_seq, null::bigint,
           format('chain positions %s to %s are missing at the end',
                  coalesce((select max(l.chain_seq) from audit.phi_access_log l), (select a.seq from anchor a)) + 1, h.last_seq), 4
    from audit.phi_access_chain_head h
    where h.last_seq > coalesce((select max(l.chain_seq) from audit.phi_access_log l), (select a.seq from anchor a))
    union all
    -- A pruned prefix is anchored by a recorded checkpoint, or it is a deletion.
    select a.seq, null::bigint,
           format('the log starts after position %s, which no recorded checkpoint names with that hash', a.seq), 0
    from anchor a
    where a.seq > 0 and not exists (select 1 from audit.phi_access_checkpoints c where c.chain_seq = a.seq and c.head_hash = a.hash)
  )
  select p.chain_seq, p.id, p.problem from problems p order by p.chain_seq, p.ord
$$;
comment on function audit.phi_access_log_breaks() is $$
Every break in the PHI access log's hash chain, in chain order, one row per problem: missing chain
positions (deleted rows), a prev_hash that is not the previous row's row_hash (or, for the first row
kept after retention, the anchor's hash), a row_hash that does not match the row's fields (an edited
row), an anchor that no recorded checkpoint names. Empty when intact.
Example: select * from audit.phi_access_log_breaks();
$$;

-- The job ---------------------------------------------------------------------------------

-- As in 20261125050100, with the kind phi_access_log (delete only) and the media kinds (delete
-- only, whole days or kept), whose window media_retention_settings then follows.
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
    raise exception 'data_kind must be one of interaction_content, interaction_events, stage_responses, phi_access_log, media_audio, media_transcript'
      using errcode = '22023';
  end if;
  if set_retention_policy.data_kind in ('media_audio', 'media_transcript') then
    -- Media: whole days, 1 to 3650, or null to keep them.
    if set_retention_policy.retain_for is not null
       and (set_retention_policy.retain_for <> make_interval(days => extract(day from set_retention_policy.retain_for)::integer)
            or set_retention_policy.retain_for < interval '1 day' or set_retention_policy.retain_for > interval '3650 days') then
      raise exception 'retain_for must be whole days between 1 and 3650 for media, or null to keep them' using errcode = '22023',
        constraint = 'retention_policies_media_window';
    end if;
    if set_retention_policy.action is distinct from 'delete' then
      raise exception 'Media objects are deleted, never stripped' using errcode = '22023',
        constraint = 'retention_policies_media_delete_only';
    end if;
  elsif set_retention_policy.retain_for is null or set_retention_policy.retain_for < interval '1 day'
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
  if set_retention_policy.data_kind = 'phi_access_log' and set_retention_policy.action <> 'delete' then
    raise exception 'The PHI access log is deleted as a prefix of its chain, never stripped' using errcode = '22023',
      constraint = 'retention_policies_phi_access_log_delete_only';
  end if;
  if set_retention_policy.data_kind = 'phi_access_log' and set_retention_policy.retain_for < interval '6 years' then
    raise exception 'The PHI access log is kept at least 6 years' using errcode = '22023',
      constraint = 'retention_policies_phi_access_log_minimum';
  end if;
  update public.retention_policies p
  set retain_for = set_retention_policy.retain_for, action = set_retention_policy.action, updated_at = now(),
      updated_by = auth.uid(), updated_by_role = private.caller_role()
  where p.data_kind = set_retention_policy.data_kind
  returning * into after;
  -- Another window or action changes what is due: every user is read again for this kind.
  delete from private.retention_progress rp where rp.data_kind = after.data_kind;
  -- Media: the window the media triggers read follows, and so do the files already there
  -- (pending or stored): their expiry counts from their upload under the new window, none
  -- when the kind is now kept. The media-retention function deletes what is then due.
  update public.media_retention_settings m
  set retain_days = extract(day from after.retain_for)::integer
  where 'media_' || m.kind = after.data_kind;
  update public.session_media m
  set expires_at = m.created_at + after.retain_for
  where 'media_' || m.kind = after.data_kind and m.status in ('pending', 'stored')
    and m.expires_at is distinct from m.created_at + after.retain_for;
  perform private.log_privacy_operation('retention_policy_set', null, null, set_retention_policy.reason,
    jsonb_build_object('data_kind', after.data_kind,
                       'before', jsonb_build_object('retain_for', before.retain_for::text, 'action', before.action),
                       'after', jsonb_build_object('retain_for', after.retain_for::text, 'action', after.action)));
  return after;
end;
$$;
comment on function public.set_retention_policy(text, interval, text, text) is
  'Service role: sets one kind''s retention window (1 day to 100 years; phi_access_log at least 6 years; media: whole days up to 3650, or null to keep) and action (strip, or delete except for interaction_content; phi_access_log and media are delete only), with a reason; the next run reads every user again for that kind, and a media window applies to the files already stored. Audited in audit.privacy_log with the policy before and after.';

-- As in 20261125050100, except that it refuses phi_access_log (pruned as a prefix by
-- private.prune_phi_access_log: per-user batches would not keep the chain) and the media
-- kinds, names each kind it handles, so that no other kind falls through to the stage
-- answers' branch, empties a session's AI summary (summary '', summary_data {}) when its
-- stage answers are stripped or deleted (it was written from them), and takes a clock in the
-- future as now.
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
  -- Never a clock ahead of now: a window cannot be skipped by asking for a later time.
  clock timestamptz := least(apply_retention_batch.at, now());
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
  if policy.data_kind is null or policy.data_kind in ('phi_access_log', 'media_audio', 'media_transcript') then
    raise exception 'data_kind must be one of interaction_content, interaction_events, stage_responses' using errcode = '22023',
      hint = 'The PHI access log is pruned as a whole prefix by private.run_retention; media by the media-retention function.';
  end if;
  cutoff := clock - policy.retain_for;
  -- Holds placed from now on wait for this transaction to commit (place_legal_hold takes the
  -- exclusive form of this lock), and every hold committed before is seen below: once a
  -- placement returns, no retention already under way strips what it covers.
  perform pg_advisory_xact_lock_shared(hashtextextended('legal-hold', 0));
  insert into private.retention_xacts (table_name, action, cutoff, at)
  values (policy.table_name, policy.action, cutoff, clock)
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
      set content = '{"text": ""}'::jsonb, metadata = '{}'::jsonb, content_removed_at = clock
      from due where c.id = due.id and c.content_removed_at is null;
      get diagnostics done = row_count;
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
      set payload = '{}'::jsonb, category = null, content_removed_at = clock
      from due where e.id = due.id and e.content_removed_at is null;
      get diagnostics done = row_count;
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
      get diagnostics done = row_count;
    elsif policy.data_kind = 'stage_responses' and policy.action = 'strip' then
      -- Stage responses: by their last change, session by session of the user.
      with due as (
        select r.id from public.stage_responses r
        join public.coaching_sessions s on s.id = r.session_id
        where s.user_id = u.id and r.updated_at < cutoff and r.content_removed_at is null
          and not private.legal_hold_applies(u.id, s.id)
        order by r.updated_at
        limit remaining
      )
      ,
      stripped as (
        update public.stage_responses r
        set responses = '{}'::jsonb, content_removed_at = clock
        from due where r.id = due.id and r.content_removed_at is null
        returning r.session_id
      ),
      -- The session's AI summary was written from these answers: it goes with them (emptied,
      -- so that its model and time stay).
      summaries as (
        update public.coaching_sessions s set summary = '', summary_data = '{}'::jsonb
        where s.id in (select st.session_id from stripped st) and s.summary <> ''
      )
      select count(*) into done from stripped;
    elsif policy.data_kind = 'stage_responses' then
      with due as (
        select r.id from public.stage_responses r
        join public.coaching_sessions s on s.id = r.session_id
        where s.user_id = u.id and r.updated_at < cutoff
          and not private.legal_hold_applies(u.id, s.id)
        order by r.updated_at
        limit remaining
      ),
      deleted as (
        delete from public.stage_responses r using due where r.id = due.id
        returning r.session_id
      ),
      summaries as (
        update public.coaching_sessions s set summary = '', summary_data = '{}'::jsonb
        where s.id in (select d.session_id from deleted d) and s.summary <> ''
      )
      select count(*) into done from deleted;
    end if;
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

-- As in 20261125050100, with the PHI access log pruned once per run (at most
-- batch_size * max_batches rows past the current anchor, unless the nearest checkpoint is further).
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
-- is left goes to the next run, which starts where this one stopped. It locks the rows it
-- changes, which nothing else writes (they are past their window), and the sessions whose AI
-- summaries it empties, until it commits. Records each kind that changed rows in
-- audit.privacy_log.
declare
  policy public.retention_policies;
  n integer;
  total integer;
  batches integer;
  pruned jsonb;
  summary jsonb := '{}'::jsonb;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can run retention' using errcode = '42501';
  end if;
  if run_retention.max_batches is null or run_retention.max_batches not between 1 and 10000 then
    raise exception 'max_batches must be between 1 and 10000' using errcode = '22023';
  end if;
  if run_retention.batch_size is null or run_retention.batch_size not between 1 and 10000 then
    raise exception 'batch_size must be between 1 and 10000' using errcode = '22023';
  end if;
  -- One run at a time: a second waits for the first to commit, then finds what is left.
  perform pg_advisory_xact_lock(hashtextextended('retention-run', 0));
  -- Media are applied by the media-retention function (it deletes objects through the
  -- Storage API, which SQL cannot call).
  for policy in select p.* from public.retention_policies p where p.data_kind not in ('media_audio', 'media_transcript')
                order by p.data_kind loop
    if policy.data_kind = 'phi_access_log' then
      pruned := private.prune_phi_access_log(run_retention.at, run_retention.batch_size * run_retention.max_batches);
      summary := summary || jsonb_build_object(policy.data_kind, jsonb_build_object(
        'action', policy.action, 'rows', (pruned ->> 'rows')::integer, 'through_seq', (pruned ->> 'through_seq')::bigint,
        'done', (pruned ->> 'done')::boolean));
      if (pruned ->> 'rows')::integer > 0 then
        perform private.log_privacy_operation('retention_applied', null, null, null, jsonb_build_object(
          'data_kind', policy.data_kind, 'action', policy.action, 'retain_for', policy.retain_for::text,
          'cutoff', pruned -> 'cutoff', 'rows', (pruned ->> 'rows')::integer, 'through_seq', (pruned ->> 'through_seq')::bigint,
          'checkpoint_id', (pruned ->> 'checkpoint_id')::bigint, 'done', (pruned ->> 'done')::boolean));
      end if;
      continue;
    end if;
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
        'cutoff', least(run_retention.at, now()) - policy.retain_for, 'rows', total, 'batches', batches,
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
  'The retention job (pg_cron retention, hourly at minute 40): applies every policy but the media ones (the media-retention function''s) at `at`, per kind at most max_batches batches of batch_size rows, in one transaction (the PHI access log: one prune up to a checkpoint); returns {kind: {action, rows, batches or through_seq, done}} and records each kind that changed rows in audit.privacy_log (retention_applied). done false: the next run goes on where this one stopped.';
