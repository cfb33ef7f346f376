-- Purpose: the change log the incremental rollup works from. Every statement that inserts
-- interactions or rating events, or deletes interactions (erasure cascades), records the
-- (user, UTC hour) pairs it touched, in the same transaction as the rows: a change becomes
-- visible exactly when its rows do, whatever created_at says (backdated rows) and whatever
-- order transactions commit in. analytics.refresh_interaction_metrics takes the visible
-- entries, recomputes their hours and deletes exactly the entries it took.
-- Objects: table private.interaction_metrics_changes; functions
-- private.trigger_log_interaction_metrics_change(), private.trigger_log_interaction_metrics_erasure(),
-- private.trigger_log_rating_metrics_change(); triggers coach_interactions_log_metrics_change,
-- coach_interactions_log_metrics_erasure, interaction_events_log_metrics_change. Destructive: none.

create table private.interaction_metrics_changes (
  id bigint generated always as identity primary key,
  user_id uuid,
  hour timestamptz not null,
  logged_at timestamptz not null default now(),
  constraint interaction_metrics_changes_hour_whole check (hour = date_bin('1 hour', hour, timestamptz '2000-01-01 00:00:00+00'))
);
-- Only the owner (the triggers and the rollup, security definer) touches it: no grants, so no RLS.
revoke all on private.interaction_metrics_changes from public, anon, authenticated, service_role;
comment on table private.interaction_metrics_changes is
  'Change log of the incremental interaction rollup: (user, UTC hour) touched by an insert or an erasure (user null: the whole hour, e.g. a backfill), written by statement triggers in the writer''s transaction, consumed by analytics.refresh_interaction_metrics.';

create or replace function private.trigger_log_interaction_metrics_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: writers (log_coach_interaction, the batch and ingest paths, the seed)
  -- hold no privilege on the change log. One row per distinct (user, hour) per statement.
  insert into private.interaction_metrics_changes (user_id, hour)
  select distinct n.user_id, date_bin('1 hour', n.created_at, timestamptz '2000-01-01 00:00:00+00') from new_rows n;
  return null;
end;
$$;
comment on function private.trigger_log_interaction_metrics_change() is
  'Statement trigger on coach_interactions (after insert): records the (user, UTC hour) pairs the statement wrote in private.interaction_metrics_changes.';
revoke execute on function private.trigger_log_interaction_metrics_change() from public, anon, authenticated;

create or replace function private.trigger_log_interaction_metrics_erasure()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: as trigger_log_interaction_metrics_change (erasure cascades as postgres).
  insert into private.interaction_metrics_changes (user_id, hour)
  select distinct o.user_id, date_bin('1 hour', o.created_at, timestamptz '2000-01-01 00:00:00+00') from old_rows o;
  return null;
end;
$$;
comment on function private.trigger_log_interaction_metrics_erasure() is
  'Statement trigger on coach_interactions (after delete: erasure cascades): records the (user, UTC hour) pairs removed, so that the all-user model usage is recomputed without them.';
revoke execute on function private.trigger_log_interaction_metrics_erasure() from public, anon, authenticated;

create or replace function private.trigger_log_rating_metrics_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: as trigger_log_interaction_metrics_change. Only ratings feed the rollup.
  insert into private.interaction_metrics_changes (user_id, hour)
  select distinct n.user_id, date_bin('1 hour', n.created_at, timestamptz '2000-01-01 00:00:00+00') from new_rows n
  where n.kind = 'rating';
  return null;
end;
$$;
comment on function private.trigger_log_rating_metrics_change() is
  'Statement trigger on interaction_events (after insert): records the (user, UTC hour) pairs of new ratings in private.interaction_metrics_changes.';
revoke execute on function private.trigger_log_rating_metrics_change() from public, anon, authenticated;

create trigger coach_interactions_log_metrics_change
  after insert on public.coach_interactions
  referencing new table as new_rows
  for each statement execute function private.trigger_log_interaction_metrics_change();
-- Interactions are deleted only when their user is erased (cascade): their hours are recomputed
-- so that the all-user model usage forgets them too (per-user rows go by cascade).
create trigger coach_interactions_log_metrics_erasure
  after delete on public.coach_interactions
  referencing old table as old_rows
  for each statement execute function private.trigger_log_interaction_metrics_erasure();
create trigger interaction_events_log_metrics_change
  after insert on public.interaction_events
  referencing new table as new_rows
  for each statement execute function private.trigger_log_rating_metrics_change();
