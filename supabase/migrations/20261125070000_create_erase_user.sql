-- Purpose: erasure that keeps de-identified metrics (issue 16). public.erase_user(user_id,
-- reason), for the service role, deletes the user's auth.users row (so Supabase Auth's
-- sessions and identities go with it), which cascades through everything they own; media
-- objects are then deleted through the Storage API by the media-retention function, which
-- the erasure invokes through pg_net. Before the cascade removes their raw rows:
--  * their pending rollup changes are applied, so their hourly and daily metrics are exact;
--  * those metric rows are re-keyed to a random pseudonym (user id and user key drawn at
--    random, not derived from anything, kept nowhere else) and marked erased; the rollup
--    never recomputes or removes erased rows;
--  * their LLM calls per hour and model are added to private.erased_model_usage, which the
--    all-user model usage adds to what it reads from raw rows;
-- so every rollup keeps its totals, before and after any later recompute. The erasure
-- leaves a tombstone in audit.privacy_log ('user_erased': who, whom, when, why, how many
-- rows of each kind) and clears what referenced the user outside foreign keys (rate-limit
-- counters, retention progress, tenants they created). Deleting the auth.users row any
-- other way (Supabase Auth's admin deleteUser) takes the same path and leaves a tombstone
-- without a reason. A legal hold refuses erase_user with PT409 (and deleteUser with 55000).
-- Objects: audit.privacy_log's operation check; columns erased on
-- analytics.coach_interaction_metrics and analytics.coach_interaction_metrics_hourly (their
-- foreign keys to profiles dropped); table private.erased_model_usage; functions
-- private.apply_interaction_metrics_changes (new, the body of the refresh moved),
-- private.user_has_rows_in_hour, private.media_key_of_erased_user (new),
-- analytics.refresh_interaction_metrics, private.model_usage_for_range,
-- private.recompute_interaction_hours, private.derive_daily_interaction_metrics,
-- private.trigger_register_erasure (waits for a retention run), public.claim_due_session_media
-- (bodies); private.trigger_deidentify_erased_profile and its trigger on profiles (which also
-- refuses a profile's deletion outside an erasure); public.erase_user; the service role's
-- SELECT on the two metric tables, now column by column;
-- trigger coach_interactions_log_metrics_erasure and its function dropped.
-- Destructive: drops two foreign keys and one trigger; no data is removed.

-- The tombstone ---------------------------------------------------------------------------

alter table audit.privacy_log drop constraint privacy_log_operation_known;
alter table audit.privacy_log add constraint privacy_log_operation_known check (operation in (
  'legal_hold_placed', 'legal_hold_released', 'retention_policy_set', 'retention_applied', 'data_exported', 'user_erased'));

-- Metrics under a pseudonym ---------------------------------------------------------------

alter table analytics.coach_interaction_metrics_hourly add column erased boolean not null default false;
alter table analytics.coach_interaction_metrics add column erased boolean not null default false;
comment on column analytics.coach_interaction_metrics_hourly.erased is
  'True for the rows of an erased user, kept under a random pseudonym (user_id and user_key drawn at random at erasure, linked to nothing): the rollup never recomputes or removes them, so totals survive erasure.';
comment on column analytics.coach_interaction_metrics.erased is
  'True for the rows of an erased user, kept under a random pseudonym (see coach_interaction_metrics_hourly.erased).';
grant select (erased) on analytics.coach_interaction_metrics_hourly, analytics.coach_interaction_metrics to coach_analyst;
-- The service role reads these tables column by column: a table-level grant would also show
-- the system columns, and xmin is the same on an erased user's re-keyed rows and on their
-- tombstone (one transaction), which would link the pseudonym back to them. With column
-- grants, system columns cannot be read. (A column added later needs its own grant.)
do $grants$
declare t text;
begin
  foreach t in array array['analytics.coach_interaction_metrics_hourly', 'analytics.coach_interaction_metrics'] loop
    execute format('revoke select on %s from service_role', t);
    execute format('grant select (%s) on %s to service_role',
      (select string_agg(quote_ident(a.attname), ', ' order by a.attnum) from pg_attribute a
       where a.attrelid = t::regclass and a.attnum > 0 and not a.attisdropped), t);
  end loop;
end
$grants$;
-- A pseudonym is no profile: erasure re-keys the rows instead of the cascade removing them.
alter table analytics.coach_interaction_metrics_hourly drop constraint coach_interaction_metrics_hourly_user_id_fkey;
alter table analytics.coach_interaction_metrics drop constraint coach_interaction_metrics_user_id_fkey;

create table private.erased_model_usage (
  hour timestamptz not null,
  model text not null,
  calls integer not null,
  prompt_tokens bigint not null,
  completion_tokens bigint not null,
  cached_tokens bigint not null,
  cost_usd numeric(16, 8) not null,
  primary key (hour, model),
  constraint erased_model_usage_hour_whole check (hour = date_bin('1 hour', hour, timestamptz '2000-01-01 00:00:00+00')),
  constraint erased_model_usage_counts_nonnegative check (
    calls > 0 and prompt_tokens >= 0 and completion_tokens >= 0 and cached_tokens >= 0 and cost_usd >= 0)
);
revoke all on private.erased_model_usage from public, anon, authenticated, service_role;
comment on table private.erased_model_usage is
  'LLM calls, tokens and cost per UTC hour and model of erased users, summed over all of them (no user, no pseudonym): private.model_usage_for_range adds them to the raw rows, so analytics.coach_model_usage_hourly keeps its totals after an erasure.';

create or replace function private.model_usage_for_range(range_start timestamptz, range_end timestamptz)
returns table (hour timestamptz, model text, calls integer, prompt_tokens bigint, completion_tokens bigint, cached_tokens bigint, cost_usd numeric)
language plpgsql
stable
set search_path = ''
set plan_cache_mode = 'force_custom_plan'
set jit = off
as $$
begin
  return query
  select u.hour, u.model, sum(u.calls)::integer, sum(u.prompt_tokens)::bigint, sum(u.completion_tokens)::bigint,
         sum(u.cached_tokens)::bigint, sum(u.cost_usd)
  from (
    select date_bin('1 hour', i.created_at, timestamptz '2000-01-01 00:00:00+00') as hour, i.model, count(*) as calls,
           coalesce(sum(i.prompt_tokens), 0) as prompt_tokens, coalesce(sum(i.completion_tokens), 0) as completion_tokens,
           coalesce(sum(i.cached_tokens), 0) as cached_tokens, coalesce(sum(i.cost_usd), 0) as cost_usd
    from public.coach_interactions i
    where i.created_at >= model_usage_for_range.range_start and i.created_at < model_usage_for_range.range_end
      and i.model is not null
    group by 1, 2
    union all
    select e.hour, e.model, e.calls, e.prompt_tokens, e.completion_tokens, e.cached_tokens, e.cost_usd
    from private.erased_model_usage e
    where e.hour >= model_usage_for_range.range_start and e.hour < model_usage_for_range.range_end
  ) u
  group by 1, 2;
end;
$$;
comment on function private.model_usage_for_range(timestamptz, timestamptz) is
  'LLM calls, tokens and cost per model per UTC hour in [range_start, range_end), all users: the raw rows plus erased users'' calls (private.erased_model_usage). Called by private.recompute_interaction_hours.';
revoke execute on function private.model_usage_for_range(timestamptz, timestamptz) from public, anon, authenticated;

-- As in 20261125030003, except that erased rows are never removed: they have no raw rows.
create or replace function private.recompute_interaction_hours(hours timestamptz[])
returns table (user_id uuid, day date)
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = 'force_custom_plan'
set jit = off
as $$
declare
  run record;
begin
  for run in
    select min(h.hour) as range_start, max(h.hour) + interval '1 hour' as range_end
    from (
      select x.hour, (x.hour at time zone 'UTC')::date as day,
             x.hour - (row_number() over (partition by (x.hour at time zone 'UTC')::date order by x.hour)) * interval '1 hour' as grp
      from (select distinct date_bin('1 hour', u.hour, timestamptz '2000-01-01 00:00:00+00') as hour
            from unnest(recompute_interaction_hours.hours) as u(hour) where u.hour is not null) x
    ) h
    group by h.day, h.grp
    order by 1
  loop
    return query
    with fresh as materialized (
      select f.* from private.interaction_metrics_for_range(run.range_start, run.range_end) f
    ),
    keyed as (
      select u.user_id, private.user_key(u.user_id) as user_key from (select distinct f.user_id from fresh f) u
    ),
    upserted as (
      insert into analytics.coach_interaction_metrics_hourly as m (
        user_id, hour, user_key, total_messages, user_messages, ai_coach_messages, human_coach_messages, system_messages,
        response_count, response_time_sum_ms, response_time_min_ms, response_time_max_ms, response_time_buckets,
        response_time_counts, satisfaction_sum, satisfaction_count, coach_personas, coach_persona_counts, prompt_tokens,
        completion_tokens, cached_tokens, cost_usd, error_count)
      select f.user_id, f.hour, k.user_key, f.total_messages, f.user_messages, f.ai_coach_messages, f.human_coach_messages,
             f.system_messages, f.response_count, f.response_time_sum_ms, f.response_time_min_ms, f.response_time_max_ms,
             f.response_time_buckets, f.response_time_counts, f.satisfaction_sum, f.satisfaction_count, f.coach_personas,
             f.coach_persona_counts, f.prompt_tokens, f.completion_tokens, f.cached_tokens, f.cost_usd, f.error_count
      from fresh f join keyed k on k.user_id = f.user_id
      on conflict on constraint coach_interaction_metrics_hourly_pkey do update set
        total_messages = excluded.total_messages, user_messages = excluded.user_messages,
        ai_coach_messages = excluded.ai_coach_messages, human_coach_messages = excluded.human_coach_messages,
        system_messages = excluded.system_messages, response_count = excluded.response_count,
        response_time_sum_ms = excluded.response_time_sum_ms, response_time_min_ms = excluded.response_time_min_ms,
        response_time_max_ms = excluded.response_time_max_ms, response_time_buckets = excluded.response_time_buckets,
        response_time_counts = excluded.response_time_counts, satisfaction_sum = excluded.satisfaction_sum,
        satisfaction_count = excluded.satisfaction_count, coach_personas = excluded.coach_personas,
        coach_persona_counts = excluded.coach_persona_counts, prompt_tokens = excluded.prompt_tokens,
        completion_tokens = excluded.completion_tokens, cached_tokens = excluded.cached_tokens,
        cost_usd = excluded.cost_usd, error_count = excluded.error_count, computed_at = now()
      where (m.total_messages, m.user_messages, m.ai_coach_messages, m.human_coach_messages, m.system_messages,
             m.response_count, m.response_time_sum_ms, m.response_time_min_ms, m.response_time_max_ms,
             m.response_time_buckets, m.response_time_counts, m.satisfaction_sum, m.satisfaction_count, m.coach_personas,
             m.coach_persona_counts, m.prompt_tokens, m.completion_tokens, m.cached_tokens, m.cost_usd, m.error_count)
        is distinct from
            (excluded.total_messages, excluded.user_messages, excluded.ai_coach_messages, excluded.human_coach_messages,
             excluded.system_messages, excluded.response_count, excluded.response_time_sum_ms, excluded.response_time_min_ms,
             excluded.response_time_max_ms, excluded.response_time_buckets, excluded.response_time_counts,
             excluded.satisfaction_sum, excluded.satisfaction_count, excluded.coach_personas, excluded.coach_persona_counts,
             excluded.prompt_tokens, excluded.completion_tokens, excluded.cached_tokens, excluded.cost_usd, excluded.error_count)
      returning m.user_id, m.hour
    ),
    removed as (
      delete from analytics.coach_interaction_metrics_hourly m
      where m.hour >= run.range_start and m.hour < run.range_end and not m.erased
        and not exists (select 1 from fresh f where f.user_id = m.user_id and f.hour = m.hour)
      returning m.user_id, m.hour
    )
    select distinct c.user_id, (c.hour at time zone 'UTC')::date
    from (select u.user_id, u.hour from upserted u union all select r.user_id, r.hour from removed r) c;

    with usage as materialized (
      select * from private.model_usage_for_range(run.range_start, run.range_end)
    ),
    upserted as (
      insert into analytics.coach_model_usage_hourly as m (hour, model, calls, prompt_tokens, completion_tokens, cached_tokens, cost_usd)
      select * from usage
      on conflict on constraint coach_model_usage_hourly_pkey do update set
        calls = excluded.calls, prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
        cached_tokens = excluded.cached_tokens, cost_usd = excluded.cost_usd, computed_at = now()
      where (m.calls, m.prompt_tokens, m.completion_tokens, m.cached_tokens, m.cost_usd)
        is distinct from (excluded.calls, excluded.prompt_tokens, excluded.completion_tokens, excluded.cached_tokens, excluded.cost_usd)
    )
    delete from analytics.coach_model_usage_hourly m
    where m.hour >= run.range_start and m.hour < run.range_end
      and not exists (select 1 from usage u where u.hour = m.hour and u.model = m.model);
  end loop;
end;
$$;
comment on function private.recompute_interaction_hours(timestamptz[]) is
  'Brings the hourly and model-usage rows of the given UTC hours in line with the raw interactions and ratings (changed rows replaced, vanished rows removed, equal rows kept; erased users'' rows and model usage kept); returns the (user, day) pairs whose hourly rows changed. Caller holds the rollup lock.';
revoke execute on function private.recompute_interaction_hours(timestamptz[]) from public, anon, authenticated;

-- As in 20261125030003, and a daily row is erased when its hourly rows are (computed_at then
-- the end of its day).
create or replace function private.derive_daily_interaction_metrics(user_ids uuid[], days date[])
returns integer
language plpgsql
volatile
set search_path = ''
set plan_cache_mode = 'force_custom_plan'
set jit = off
as $$
declare
  written integer;
begin
  delete from analytics.coach_interaction_metrics m
  using (select distinct p.user_id, p.day from unnest(derive_daily_interaction_metrics.user_ids, derive_daily_interaction_metrics.days) as p(user_id, day)) p
  where m.user_id = p.user_id and m.day = p.day;

  insert into analytics.coach_interaction_metrics (
    user_id, day, user_key, total_messages, user_messages, ai_coach_messages, human_coach_messages, system_messages,
    response_count, response_time_avg, response_time_p95, satisfaction_avg, satisfaction_count, coach_persona_mix,
    prompt_tokens, completion_tokens, cached_tokens, cost_usd, error_count, error_rate, computed_at,
    response_time_sum_ms, response_time_min_ms, response_time_max_ms, response_time_buckets, response_time_counts,
    satisfaction_sum, coach_persona_counts, erased)
  with h as materialized (
    select h.*, p.day from analytics.coach_interaction_metrics_hourly h
    join (select distinct p.user_id, p.day from unnest(derive_daily_interaction_metrics.user_ids, derive_daily_interaction_metrics.days) as p(user_id, day)) p
      on p.user_id = h.user_id and h.hour >= p.day::timestamp at time zone 'UTC' and h.hour < (p.day + 1)::timestamp at time zone 'UTC'
  ),
  sums as (
    select h.user_id, h.day, min(h.user_key) as user_key, sum(h.total_messages)::integer as total_messages,
           sum(h.user_messages)::integer as user_messages, sum(h.ai_coach_messages)::integer as ai_coach_messages,
           sum(h.human_coach_messages)::integer as human_coach_messages, sum(h.system_messages)::integer as system_messages,
           sum(h.response_count)::integer as response_count, sum(h.response_time_sum_ms) as response_time_sum_ms,
           min(h.response_time_min_ms) as response_time_min_ms, max(h.response_time_max_ms) as response_time_max_ms,
           sum(h.satisfaction_sum)::integer as satisfaction_sum, sum(h.satisfaction_count)::integer as satisfaction_count,
           sum(h.prompt_tokens)::bigint as prompt_tokens, sum(h.completion_tokens)::bigint as completion_tokens,
           sum(h.cached_tokens)::bigint as cached_tokens, sum(h.cost_usd) as cost_usd, sum(h.error_count)::integer as error_count,
           bool_or(h.erased) as erased
    from h group by h.user_id, h.day
  ),
  histograms as (
    select b.user_id, b.day, array_agg(b.bucket order by b.bucket) as buckets, array_agg(b.n order by b.bucket) as counts
    from (
      select h.user_id, h.day, u.bucket, sum(u.n)::integer as n
      from h cross join lateral unnest(h.response_time_buckets, h.response_time_counts) as u(bucket, n)
      group by 1, 2, 3
    ) b
    group by 1, 2
  ),
  personas as (
    select p.user_id, p.day, jsonb_object_agg(p.persona, p.n) as counts,
           jsonb_object_agg(p.persona, round(p.n::numeric / s.ai_coach_messages_plus_human, 4)) as mix
    from (
      select h.user_id, h.day, u.persona, sum(u.n)::integer as n
      from h cross join lateral unnest(h.coach_personas, h.coach_persona_counts) as u(persona, n)
      group by 1, 2, 3
    ) p
    join (select s.user_id, s.day, s.ai_coach_messages + s.human_coach_messages as ai_coach_messages_plus_human from sums s) s
      on s.user_id = p.user_id and s.day = p.day
    group by 1, 2
  )
  select s.user_id, s.day, s.user_key, s.total_messages, s.user_messages, s.ai_coach_messages, s.human_coach_messages,
         s.system_messages, s.response_count, round(s.response_time_sum_ms / nullif(s.response_count, 0), 1),
         round(analytics.response_time_percentile(hi.buckets, hi.counts, 0.95, s.response_time_min_ms, s.response_time_max_ms), 1),
         round(s.satisfaction_sum::numeric / nullif(s.satisfaction_count, 0), 2), s.satisfaction_count,
         coalesce(p.mix, '{}'), s.prompt_tokens, s.completion_tokens, s.cached_tokens, s.cost_usd, s.error_count,
         case when s.total_messages = 0 then 0 else round(s.error_count::numeric / s.total_messages, 4) end,
         -- An erased user's day is final; its time stamp is the day's end, not when it was merged.
         case when s.erased then (s.day + 1)::timestamp at time zone 'UTC' else now() end, s.response_time_sum_ms, s.response_time_min_ms, s.response_time_max_ms, coalesce(hi.buckets, '{}'),
         coalesce(hi.counts, '{}'), s.satisfaction_sum, coalesce(p.counts, '{}'), s.erased
  from sums s
  left join histograms hi on hi.user_id = s.user_id and hi.day = s.day
  left join personas p on p.user_id = s.user_id and p.day = s.day;
  get diagnostics written = row_count;
  return written;
end;
$$;
comment on function private.derive_daily_interaction_metrics(uuid[], date[]) is
  'Replaces the daily rows of the (user, day) pairs (parallel arrays) with the merge of their hourly rows: sums and counts add, histograms add bucket by bucket, p95 from the merged histogram; erased when the hourly rows are. Caller holds the rollup lock.';
revoke execute on function private.derive_daily_interaction_metrics(uuid[], date[]) from public, anon, authenticated;

create or replace function private.user_has_rows_in_hour(user_id uuid, hour timestamptz)
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (select 1 from public.coach_interactions i
                 where i.user_id = user_has_rows_in_hour.user_id
                   and i.created_at >= user_has_rows_in_hour.hour and i.created_at < user_has_rows_in_hour.hour + interval '1 hour')
      or exists (select 1 from public.interaction_events e
                 where e.user_id = user_has_rows_in_hour.user_id and e.kind = 'rating'
                   and e.created_at >= user_has_rows_in_hour.hour and e.created_at < user_has_rows_in_hour.hour + interval '1 hour')
$$;
comment on function private.user_has_rows_in_hour(uuid, timestamptz) is
  'Whether the user has interactions or ratings in the UTC hour starting at hour: the whole-hour change-log entries an erasure must apply before it re-keys the user''s metrics.';
revoke execute on function private.user_has_rows_in_hour(uuid, timestamptz) from public, anon, authenticated;

-- The refresh's work, moved out of analytics.refresh_interaction_metrics so that an erasure
-- can apply the pending changes of one user (and of whole hours) before it re-keys them.
create or replace function private.apply_interaction_metrics_changes(max_days integer, only_user uuid default null)
returns table (hours integer, user_days integer, changes integer)
language plpgsql
volatile
set search_path = ''
as $$
declare
  taken_days date[];
  all_hours timestamptz[];
  taken_count integer;
  pairs_users uuid[];
  pairs_days date[];
begin
  -- Whole UTC days, newest first (today first; a backfill drains over several runs), so that a
  -- day's daily rows are always rebuilt from a complete set of recomputed hours. For one user:
  -- their entries, and whole-hour entries of hours in which they have rows, of every day.
  select array_agg(d.day) into taken_days
  from (select distinct (c.hour at time zone 'UTC')::date as day from private.interaction_metrics_changes c
        where apply_interaction_metrics_changes.only_user is null
           or c.user_id = apply_interaction_metrics_changes.only_user
           or (c.user_id is null and private.user_has_rows_in_hour(apply_interaction_metrics_changes.only_user, c.hour))
        order by 1 desc limit greatest(apply_interaction_metrics_changes.max_days, 1)) d;
  if taken_days is null then
    return query select 0, 0, 0;
    return;
  end if;

  -- Take exactly the entries visible now (a writer that commits later leaves its own entry for
  -- the next run). A message logged before a coach's reply may change which message the reply
  -- answers: for each conversation the changed hour touched, the first message after that hour
  -- is looked up, and its hour is recomputed too if it is a coach's reply within the look-back.
  with taken as (
    delete from private.interaction_metrics_changes c
    where (c.hour at time zone 'UTC')::date = any(taken_days)
      and (apply_interaction_metrics_changes.only_user is null
           or c.user_id = apply_interaction_metrics_changes.only_user
           or (c.user_id is null and private.user_has_rows_in_hour(apply_interaction_metrics_changes.only_user, c.hour)))
    returning c.user_id, c.hour
  ),
  keys as (select distinct t.user_id, t.hour from taken t),
  later_replies as (
    select date_bin('1 hour', n.created_at, timestamptz '2000-01-01 00:00:00+00') as hour
    from keys k
    cross join lateral (
      select distinct i.conversation_id from public.coach_interactions i
      where i.user_id = k.user_id and i.created_at >= k.hour and i.created_at < k.hour + interval '1 hour'
        and i.conversation_id is not null
    ) c
    cross join lateral (
      select i.sender, i.created_at from public.coach_interactions i
      where i.user_id = k.user_id and i.conversation_id = c.conversation_id and i.created_at >= k.hour + interval '1 hour'
      order by i.created_at, i.id
      limit 1
    ) n
    where k.user_id is not null and n.sender = 'human_coach'
      and n.created_at < (date_trunc('day', k.hour at time zone 'UTC') + interval '2 days') at time zone 'UTC'
  )
  select (select count(*) from taken)::integer,
         array(select k.hour from keys k union select l.hour from later_replies l)
  into taken_count, all_hours;

  select array_agg(r.user_id), array_agg(r.day) into pairs_users, pairs_days
  from (select distinct x.user_id, x.day from private.recompute_interaction_hours(all_hours) x) r;
  perform private.derive_daily_interaction_metrics(coalesce(pairs_users, '{}'), coalesce(pairs_days, '{}'));
  return query select cardinality(all_hours), coalesce(cardinality(pairs_users), 0), taken_count;
end;
$$;
comment on function private.apply_interaction_metrics_changes(integer, uuid) is
  'Internal: takes the change-log entries of the newest max_days days with changes (when only_user is given: only theirs, and whole-hour entries of hours in which they have rows), recomputes their hours (and the hours of coach replies they may affect) and rebuilds the touched daily rows. Returns hours recomputed, (user, day) rows rebuilt, entries taken. Caller holds the rollup lock.';
revoke execute on function private.apply_interaction_metrics_changes(integer, uuid) from public, anon, authenticated, service_role;

create or replace function analytics.refresh_interaction_metrics(max_days integer default 7)
returns table (hours integer, user_days integer, changes integer)
language plpgsql
volatile
security definer
set search_path = ''
set work_mem = '256MB'
as $$
-- Security definer: reads raw interactions and the private change log, which its callers
-- (pg_cron as postgres, the service role) may not read directly.
declare
  result record;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can refresh interaction metrics' using errcode = '42501';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));
  select * into result from private.apply_interaction_metrics_changes(refresh_interaction_metrics.max_days);
  update private.interaction_metrics_state
  set refreshed_at = now(), refreshed_hours = result.hours, refreshed_changes = result.changes;
  return query select result.hours, result.user_days, result.changes;
end;
$$;
comment on function analytics.refresh_interaction_metrics(integer) is $$
The incremental rollup (pg_cron every 2 minutes): recomputes from raw rows the UTC hours that
interactions or ratings touched since the last run (the newest max_days days with changes; older
ones wait for the next run), and rebuilds the daily rows of the (user, day) pairs whose hourly rows
changed. Erased users' rows are kept as they are. Returns hours recomputed, (user, day) rows
rebuilt, changes taken. Callers: pg_cron and the service role. Example:
  select * from analytics.refresh_interaction_metrics();
$$;

-- An erasure no longer changes any hour's totals (below), so its deletes log nothing: the
-- entries would only have named the erased user beside their hours until the next refresh.
drop trigger coach_interactions_log_metrics_erasure on public.coach_interactions;
drop function private.trigger_log_interaction_metrics_erasure();

-- De-identification, before the cascade -------------------------------------------------

create or replace function private.trigger_deidentify_erased_profile()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- Security definer: runs in the cascade from auth.users (as supabase_auth_admin on
-- Supabase, or as erase_user's owner), which has no rights on the rollup or in private.
declare
  pseudonym uuid := gen_random_uuid();
  pseudonym_key text := encode(extensions.gen_random_bytes(32), 'hex');
  removed jsonb;
  hourly_rows integer;
  daily_rows integer;
  media_objects integer;
  media_request bigint;
  via text := coalesce(nullif(current_setting('coach_ledger.erasure_via', true), ''), 'auth.users delete');
begin
  -- A profile goes only with its user: the erasure registered by the auth.users trigger in
  -- this transaction. A profile deleted on its own would leave its metrics keyed to the
  -- person (they no longer reference profiles) and a tombstone for an account still there.
  if not exists (select 1 from private.user_erasures e where e.user_id = old.id and e.xact_id = pg_current_xact_id()) then
    raise exception 'A profile is deleted only with its user: use public.erase_user (or delete the auth.users row)'
      using errcode = '42501';
  end if;
  -- What goes, counted before it goes (for the tombstone; counts only).
  select jsonb_build_object(
    'interactions', (select count(*) from public.coach_interactions x where x.user_id = old.id),
    'events', (select count(*) from public.interaction_events x where x.user_id = old.id),
    'sessions', (select count(*) from public.coaching_sessions x where x.user_id = old.id),
    'action_plans', (select count(*) from public.action_plans x where x.user_id = old.id),
    'assessments', (select count(*) from public.assessments x where x.user_id = old.id),
    'applications', (select count(*) from public.applications x where x.user_id = old.id),
    'opportunities', (select count(*) from public.opportunities x where x.owner_id = old.id),
    'session_media', (select count(*) from public.session_media x where x.user_id = old.id),
    'notifications', (select count(*) from public.notification_log x where x.user_id = old.id),
    'tenant_memberships', (select count(*) from public.tenant_members x where x.user_id = old.id)
  ) into removed;

  -- The rollup: apply this user's pending changes (and whole-hour ones) so that their rows are
  -- exact, then move their contribution under the pseudonym. The rollup lock keeps the refresh
  -- out meanwhile.
  perform pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));
  perform private.apply_interaction_metrics_changes(36500, old.id);
  insert into private.erased_model_usage as e (hour, model, calls, prompt_tokens, completion_tokens, cached_tokens, cost_usd)
  select date_bin('1 hour', i.created_at, timestamptz '2000-01-01 00:00:00+00'), i.model, count(*),
         coalesce(sum(i.prompt_tokens), 0), coalesce(sum(i.completion_tokens), 0), coalesce(sum(i.cached_tokens), 0),
         coalesce(sum(i.cost_usd), 0)
  from public.coach_interactions i
  where i.user_id = old.id and i.model is not null
  group by 1, 2
  on conflict (hour, model) do update set
    calls = e.calls + excluded.calls, prompt_tokens = e.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = e.completion_tokens + excluded.completion_tokens,
    cached_tokens = e.cached_tokens + excluded.cached_tokens, cost_usd = e.cost_usd + excluded.cost_usd;
  -- computed_at becomes the end of the row's hour or day, so that it does not point at the
  -- moment of this erasure (and so at the tombstone).
  update analytics.coach_interaction_metrics_hourly h
  set user_id = pseudonym, user_key = pseudonym_key, erased = true, computed_at = h.hour + interval '1 hour'
  where h.user_id = old.id;
  get diagnostics hourly_rows = row_count;
  update analytics.coach_interaction_metrics m
  set user_id = pseudonym, user_key = pseudonym_key, erased = true, computed_at = (m.day + 1)::timestamp at time zone 'UTC'
  where m.user_id = old.id;
  get diagnostics daily_rows = row_count;

  -- What refers to the user outside foreign keys.
  delete from private.rate_limit_counters c where c.subject = 'user:' || old.id::text;
  delete from private.retention_progress p where p.user_id = old.id;
  delete from private.interaction_metrics_changes c where c.user_id = old.id;
  update public.tenants t set created_by = null where t.created_by = old.id;
  -- Realtime's copies of their messages and nudges (each broadcast stores the row it sent).
  delete from realtime.messages r where r.topic in ('coach_interactions:' || old.id::text, 'nudges:' || old.id::text);

  -- Their media objects lose their rows in the cascade; the media-retention function deletes
  -- them through the Storage API (claim_due_session_media returns them as 'erased' at once).
  -- pg_net sends the request after this transaction commits, and never if it rolls back.
  select count(*) into media_objects from storage.objects o
  where o.bucket_id = 'session-media' and o.name like 'u/' || old.id::text || '/%';
  if media_objects > 0 then
    media_request := private.invoke_edge_function('media-retention', jsonb_build_object('source', 'erasure'));
  end if;

  perform private.log_privacy_operation('user_erased', old.id, null,
    coalesce(nullif(current_setting('coach_ledger.erasure_reason', true), ''), null),
    jsonb_build_object('via', via, 'removed', removed,
                       'metrics_kept', jsonb_build_object('hourly_rows', hourly_rows, 'daily_rows', daily_rows),
                       'media_objects', media_objects, 'media_deletion_request', media_request));
  return old;
end;
$$;
comment on function private.trigger_deidentify_erased_profile() is
  'Trigger on profiles (before delete: the cascade of an erasure; any other delete is refused): applies the user''s pending rollup changes, moves their hourly and daily metrics under a random pseudonym (marked erased) and their LLM usage into private.erased_model_usage, clears what refers to them outside foreign keys, asks the media-retention function (through pg_net) to delete their media objects, and appends the tombstone (user_erased) to audit.privacy_log.';
revoke execute on function private.trigger_deidentify_erased_profile() from public, anon, authenticated;

-- Named to fire after profiles_refuse_delete_under_hold (triggers fire in name order).
create trigger profiles_retain_deidentified_metrics
  before delete on public.profiles
  for each row execute function private.trigger_deidentify_erased_profile();

-- Media of erased users ------------------------------------------------------------------

create or replace function private.media_key_of_erased_user(name text)
returns boolean
language sql
stable
set search_path = ''
as $$
  -- The key's user (u/{user}/...) is erased: recorded in private.user_erasures, profile gone.
  select coalesce((
    select exists (select 1 from private.user_erasures e where e.user_id = k.owner)
           and not exists (select 1 from public.profiles p where p.id = k.owner)
    from (select case when media_key_of_erased_user.name ~ '^u/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/'
                      then split_part(media_key_of_erased_user.name, '/', 2)::uuid end as owner) k
    where k.owner is not null), false)
$$;
comment on function private.media_key_of_erased_user(text) is
  'Whether a session-media object key (u/{user}/...) belongs to an erased user (in private.user_erasures, with no profile any more). False for any other key.';
revoke execute on function private.media_key_of_erased_user(text) from public, anon, authenticated;

-- As in 20261125060100, with a fourth reason: an object under the key of an erased user
-- (private.user_erasures) is due at once, not an hour after its upload.
create or replace function public.claim_due_session_media(at timestamptz default now(), batch_size integer default 100)
returns table (id uuid, bucket_id text, storage_path text, reason text)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: the retention job's first step, for the service role only. Sessions
-- with uploads past their window, with objects under ended rows, or with objects that have
-- no row, are brought in step first; then it returns up to batch_size objects of each
-- reason to delete through the Storage API: stored objects whose privacy window has passed
-- (expired, with their row's id), the objects of rejected rows (rejected), objects under an
-- erased user's key (erased, no id), and objects an hour old that no row can follow
-- (orphan, no id). Nothing a legal hold covers is returned.
declare
  s uuid;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can run media retention' using errcode = '42501';
  end if;
  if claim_due_session_media.batch_size is null or claim_due_session_media.batch_size not between 1 and 1000 then
    raise exception 'batch_size must be between 1 and 1000' using errcode = '22023';
  end if;
  for s in
    (select distinct m.session_id from public.session_media m
     where m.status = 'pending' and m.upload_expires_at + interval '1 hour' <= claim_due_session_media.at
     limit claim_due_session_media.batch_size)
    union
    (select distinct m.session_id from public.session_media m
     where m.status in ('rejected', 'abandoned', 'deleted', 'expired')
       and exists (select 1 from storage.objects o where o.bucket_id = m.bucket_id and o.name = m.storage_path)
     limit claim_due_session_media.batch_size)
    union
    (select distinct (storage.foldername(o.name))[4]::uuid from storage.objects o
     where o.bucket_id = 'session-media'
       and o.name ~ '^u/[0-9a-f-]{36}/s/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/'
       and not exists (select 1 from public.session_media m where m.bucket_id = o.bucket_id and m.storage_path = o.name)
     limit claim_due_session_media.batch_size)
  loop
    perform private.sync_session_media(s, claim_due_session_media.at);
  end loop;
  return query
  (select m.id, m.bucket_id, m.storage_path, 'expired'::text
   from public.session_media m
   where m.status = 'stored' and m.expires_at is not null and m.expires_at <= claim_due_session_media.at
     and not private.legal_hold_applies(m.user_id, m.session_id)
   order by m.expires_at, m.id
   limit claim_due_session_media.batch_size)
  union all
  (select m.id, m.bucket_id, m.storage_path, 'rejected'::text
   from public.session_media m
   where m.status = 'rejected'
     and exists (select 1 from storage.objects o where o.bucket_id = m.bucket_id and o.name = m.storage_path)
     and not private.legal_hold_applies(m.user_id, m.session_id)
   limit claim_due_session_media.batch_size)
  union all
  (select null::uuid, o.bucket_id, o.name, 'erased'::text
   from storage.objects o
   where o.bucket_id = 'session-media' and private.media_key_of_erased_user(o.name)
   limit claim_due_session_media.batch_size)
  union all
  (select null::uuid, o.bucket_id, o.name, 'orphan'::text
   from storage.objects o
   where o.bucket_id = 'session-media' and o.created_at + interval '1 hour' <= claim_due_session_media.at
     and not exists (select 1 from public.session_media m where m.bucket_id = o.bucket_id and m.storage_path = o.name)
     -- An erased user's object is returned above.
     and not private.media_key_of_erased_user(o.name)
     -- An orphan under a held user's or session's key (u/{user}/s/{session}/...) stays too.
     and not coalesce(case
           when o.name ~ '^u/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/s/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/'
           then private.legal_hold_applies((storage.foldername(o.name))[2]::uuid, (storage.foldername(o.name))[4]::uuid)
         end, false)
   limit claim_due_session_media.batch_size);
end;
$$;
comment on function public.claim_due_session_media(timestamptz, integer) is
  'Service role, the retention job''s first step: brings sessions with overdue uploads, objects under ended rows or row-less objects in step, then returns objects to delete through the Storage API (up to batch_size, 1..1000, of each reason): expired (stored, expires_at passed at `at`), rejected (the object of a rejected row), erased (any object under the key of an erased user, at once) and orphan (an hour-old object no row can follow); never what a legal hold covers (the user, or the session, by row or by key).';

-- The erasure's first step ------------------------------------------------------------

-- As in 20261125050000, and it waits for a retention run under way first: both change the
-- user's retention progress, and the run holds its lock for its whole transaction.
create or replace function private.trigger_register_erasure()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: runs as whoever deletes the user (supabase_auth_admin on Supabase),
  -- which has no rights in private or on legal_holds.
  -- Lock order, as in erase_user: the retention run's lock, then the profile. The profile row
  -- is locked before the holds are read: a hold being placed (its insert holds a key-share
  -- lock on the profile) commits before this check reads the holds, so it cannot be lost to
  -- the cascade.
  perform pg_advisory_xact_lock(hashtextextended('retention-run', 0));
  perform 1 from public.profiles p where p.id = old.id for update;
  if exists (select 1 from public.legal_holds h where h.user_id = old.id and h.released_at is null) then
    raise exception 'User % is under a legal hold: erasure is suspended until it is released', old.id
      using errcode = '55000', hint = 'Release the hold with public.release_legal_hold first.';
  end if;
  insert into private.user_erasures (user_id) values (old.id) on conflict do nothing;
  insert into private.erased_sessions (session_id)
  select s.id from public.coaching_sessions s where s.user_id = old.id
  on conflict do nothing;
  return old;
end;
$$;
comment on function private.trigger_register_erasure() is
  'Trigger on auth.users: waits for a retention run under way, then refuses to delete a user under an active legal hold (any hold on them or one of their sessions); otherwise records the erasure of the user and of their coaching sessions for this transaction, so the cascade may remove their append-only rows and clear others'' references to their sessions.';

-- erase_user ---------------------------------------------------------------------------

create or replace function public.erase_user(user_id uuid, reason text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: deletes the auth.users row and reads the privacy log, which the service
-- role may not; it checks the caller first.
declare
  tombstone audit.privacy_log;
  holds integer;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can erase a user' using errcode = '42501';
  end if;
  if erase_user.user_id is null then
    raise exception 'user_id is required' using errcode = '22023';
  end if;
  if erase_user.reason is null or char_length(btrim(erase_user.reason)) = 0 or char_length(erase_user.reason) > 1000 then
    raise exception 'reason must be 1 to 1000 characters' using errcode = '22023';
  end if;

  -- One erasure at a time per user: the row lock makes a second call wait, then find the tombstone.
  perform 1 from auth.users u where u.id = erase_user.user_id for update;
  if not found then
    select * into tombstone from audit.privacy_log l
    where l.operation = 'user_erased' and l.subject_user_id = erase_user.user_id
    order by l.id desc limit 1;
    if found then
      -- Already erased: the same answer again (a retry), from the tombstone.
      return jsonb_build_object('user_id', erase_user.user_id, 'erased_at', tombstone.at, 'replayed', true,
                                'tombstone_id', tombstone.id) || (tombstone.details - 'via');
    end if;
    raise exception 'user_id does not name a user' using errcode = 'PT404';
  end if;

  -- Lock order, as in the retention run: its lock, then the legal-hold lock (shared: a hold
  -- being placed waits for this erasure, and every hold committed before is seen here).
  perform pg_advisory_xact_lock(hashtextextended('retention-run', 0));
  perform pg_advisory_xact_lock_shared(hashtextextended('legal-hold', 0));
  select count(*) into holds from public.legal_holds h where h.user_id = erase_user.user_id and h.released_at is null;
  if holds > 0 then
    raise exception 'User % is under % active legal hold(s): erasure is refused', erase_user.user_id, holds
      using errcode = 'PT409', hint = 'Release every hold with public.release_legal_hold first.';
  end if;

  perform set_config('coach_ledger.erasure_reason', erase_user.reason, true);
  perform set_config('coach_ledger.erasure_via', 'erase_user', true);
  delete from auth.users u where u.id = erase_user.user_id;
  perform set_config('coach_ledger.erasure_reason', '', true);
  perform set_config('coach_ledger.erasure_via', '', true);

  select * into tombstone from audit.privacy_log l
  where l.operation = 'user_erased' and l.subject_user_id = erase_user.user_id and l.at = now()
  order by l.id desc limit 1;
  if tombstone.id is null then
    -- An account without a profile: nothing of theirs was stored, but the erasure is on record.
    perform private.log_privacy_operation('user_erased', erase_user.user_id, null, erase_user.reason,
      jsonb_build_object('via', 'erase_user', 'removed', '{}'::jsonb, 'metrics_kept', '{}'::jsonb, 'media_objects', 0,
                         'media_deletion_request', null));
    select * into tombstone from audit.privacy_log l
    where l.operation = 'user_erased' and l.subject_user_id = erase_user.user_id
    order by l.id desc limit 1;
  end if;
  return jsonb_build_object('user_id', erase_user.user_id, 'erased_at', tombstone.at, 'replayed', false,
                            'tombstone_id', tombstone.id) || (tombstone.details - 'via');
end;
$$;
comment on function public.erase_user(uuid, text) is $$
Service role: erases a user (the right to be forgotten) and says why (reason, 1 to 1000
characters). Deletes their auth.users row, which removes everything they own; their metrics
and cost stay under a random pseudonym, so rollups keep their totals; their media objects are
deleted through the Storage API by the media-retention function, invoked at commit; a
tombstone (user_erased) records who erased whom, when, why and how many rows of each kind.
Returns {user_id, erased_at, replayed, tombstone_id, removed, metrics_kept, media_objects,
media_deletion_request}. A second call returns the same tombstone with replayed true.
PT404 for an unknown user, PT409 under a legal hold, 22023 for a missing reason, 42501 for
any other caller. Example: select public.erase_user('…', 'Request 2026-114 by email');
$$;
revoke execute on function public.erase_user(uuid, text) from public, anon, authenticated;
grant execute on function public.erase_user(uuid, text) to service_role;
