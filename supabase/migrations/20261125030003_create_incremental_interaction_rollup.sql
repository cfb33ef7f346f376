-- Purpose: the incremental interaction rollup. Hourly partials are recomputed from the raw
-- rows for exactly the hours the change log names (plus the hours of coach replies whose
-- previous message may have changed), and the daily rows of the (user, day) pairs they
-- touched are rebuilt by merging hourly rows, so today's daily row is minutes old.
-- aggregate_interaction_metrics keeps its signature and meaning (recompute whole UTC days
-- from raw, replace their rows) and now goes through the same hourly step; its p95 is the
-- histogram estimate. A reply's look-back is its own UTC day and the one before (before, a
-- multi-day run looked back from its first day).
-- Objects: table private.interaction_metrics_state; functions private.interaction_metrics_for_range,
-- private.model_usage_for_range, private.recompute_interaction_hours,
-- private.derive_daily_interaction_metrics, analytics.refresh_interaction_metrics,
-- analytics.finalize_interaction_metrics; analytics.aggregate_interaction_metrics replaced.
-- Destructive: replaces derived rows only (hourly, model usage, daily). Every hour that holds
-- data is queued at the end, so the refresh job recomputes history (today first) after deploy:
-- daily p95 then becomes the histogram estimate everywhere.

create table private.interaction_metrics_state (
  singleton boolean primary key default true,
  refreshed_at timestamptz,
  refreshed_hours integer not null default 0,
  refreshed_changes integer not null default 0,
  constraint interaction_metrics_state_singleton check (singleton)
);
revoke all on private.interaction_metrics_state from public, anon, authenticated, service_role;
comment on table private.interaction_metrics_state is
  'One row: when analytics.refresh_interaction_metrics last ran, how many hours it recomputed and changes it took.';
insert into private.interaction_metrics_state default values;

-- The hourly partials of every user with data in [range_start, range_end) (whole UTC hours).
create or replace function private.interaction_metrics_for_range(range_start timestamptz, range_end timestamptz)
returns table (
  user_id uuid, hour timestamptz, total_messages integer, user_messages integer, ai_coach_messages integer,
  human_coach_messages integer, system_messages integer, response_count integer, response_time_sum_ms numeric,
  response_time_min_ms numeric, response_time_max_ms numeric, response_time_buckets smallint[],
  response_time_counts integer[], satisfaction_sum integer, satisfaction_count integer, coach_personas text[],
  coach_persona_counts integer[], prompt_tokens bigint, completion_tokens bigint, cached_tokens bigint,
  cost_usd numeric, error_count integer
)
language plpgsql
stable
set search_path = ''
-- Plans for the actual range (a generic plan guesses its size badly); no JIT for short runs.
set plan_cache_mode = 'force_custom_plan'
set jit = off
as $$
begin
  return query
  with base as materialized (
    -- The range read once, in a narrow projection that the aggregates below read from memory.
    select i.user_id, i.conversation_id, i.id, date_bin('1 hour', i.created_at, timestamptz '2000-01-01 00:00:00+00') as hour,
           i.created_at, i.sender, i.coach_persona, i.latency_ms, i.prompt_tokens, i.completion_tokens,
           i.cached_tokens, i.cost_usd, i.status
    from public.coach_interactions i
    where i.created_at >= interaction_metrics_for_range.range_start and i.created_at < interaction_metrics_for_range.range_end
  ),
  messages as (
    select b.user_id, b.hour,
           count(*)::integer as total_messages,
           (count(*) filter (where b.sender = 'user'))::integer as user_messages,
           (count(*) filter (where b.sender = 'ai_coach'))::integer as ai_coach_messages,
           (count(*) filter (where b.sender = 'human_coach'))::integer as human_coach_messages,
           (count(*) filter (where b.sender = 'system'))::integer as system_messages,
           coalesce(sum(b.prompt_tokens), 0)::bigint as prompt_tokens,
           coalesce(sum(b.completion_tokens), 0)::bigint as completion_tokens,
           coalesce(sum(b.cached_tokens), 0)::bigint as cached_tokens,
           coalesce(sum(b.cost_usd), 0) as cost_usd,
           (count(*) filter (where b.status = 'error'))::integer as error_count
    from base b
    group by 1, 2
  ),
  -- A human coach's reply is a response when the message before it in its conversation (by
  -- created_at, then id) is the user's, sent on the reply's UTC day or the day before. Inside
  -- the range the window finds that message; a conversation's first reply in the range gets one
  -- probe of the (user_id, created_at, id) index for the message before the range.
  conversations as materialized (
    select distinct b.user_id, b.conversation_id from base b
    where b.sender = 'human_coach' and b.conversation_id is not null
  ),
  ordered as (
    select b.user_id, b.conversation_id, b.sender, b.created_at,
           lag(b.sender) over w as previous_sender, lag(b.created_at) over w as previous_at
    from base b
    where (b.user_id, b.conversation_id) in (select c.user_id, c.conversation_id from conversations c)
    window w as (partition by b.user_id, b.conversation_id order by b.created_at, b.id)
  ),
  gaps as (
    select o.user_id, date_bin('1 hour', o.created_at, timestamptz '2000-01-01 00:00:00+00') as hour,
           extract(epoch from o.created_at - coalesce(o.previous_at, p.created_at)) * 1000 as ms
    from (select * from ordered o where o.sender = 'human_coach') o
    left join lateral (
      select i.sender, i.created_at from public.coach_interactions i
      where o.previous_at is null and i.user_id = o.user_id and i.conversation_id = o.conversation_id
        and i.created_at < interaction_metrics_for_range.range_start
        and i.created_at >= (date_trunc('day', o.created_at at time zone 'UTC') - interval '1 day') at time zone 'UTC'
      order by i.created_at desc, i.id desc
      limit 1
    ) p on true
    where coalesce(o.previous_sender, p.sender) = 'user'
      and coalesce(o.previous_at, p.created_at) >= (date_trunc('day', o.created_at at time zone 'UTC') - interval '1 day') at time zone 'UTC'
  ),
  ai_buckets as materialized (
    select b.user_id, b.hour, width_bucket(b.latency_ms::double precision, k.bounds)::smallint as bucket,
           count(*)::integer as n, sum(b.latency_ms)::numeric as total, min(b.latency_ms)::numeric as lo, max(b.latency_ms)::numeric as hi
    from base b cross join (select analytics.response_time_bucket_bounds() as bounds) k
    where b.sender = 'ai_coach' and b.latency_ms is not null
    group by 1, 2, 3
  ),
  gap_buckets as materialized (
    select g.user_id, g.hour, width_bucket(g.ms::double precision, k.bounds)::smallint as bucket,
           count(*)::integer as n, sum(g.ms) as total, min(g.ms) as lo, max(g.ms) as hi
    from gaps g cross join (select analytics.response_time_bucket_bounds() as bounds) k
    group by 1, 2, 3
  ),
  buckets as (
    select x.user_id, x.hour, x.bucket, sum(x.n)::integer as n, sum(x.total) as total, min(x.lo) as lo, max(x.hi) as hi
    from (select * from ai_buckets union all select * from gap_buckets) x
    group by 1, 2, 3
  ),
  histograms as (
    select h.user_id, h.hour, sum(h.n)::integer as response_count, sum(h.total) as sum_ms, min(h.lo) as min_ms,
           max(h.hi) as max_ms, array_agg(h.bucket order by h.bucket) as buckets, array_agg(h.n order by h.bucket) as counts
    from buckets h
    group by 1, 2
  ),
  persona_counts as materialized (
    select b.user_id, b.hour, coalesce(b.coach_persona, 'unspecified') as persona, count(*)::integer as n
    from base b where b.sender in ('ai_coach', 'human_coach')
    group by 1, 2, 3
  ),
  personas as (
    select p.user_id, p.hour, array_agg(p.persona order by p.persona) as personas, array_agg(p.n order by p.persona) as counts
    from persona_counts p
    group by 1, 2
  ),
  ratings as (
    select e.user_id, date_bin('1 hour', e.created_at, timestamptz '2000-01-01 00:00:00+00') as hour,
           sum(e.score)::integer as score_sum, count(*)::integer as n
    from public.interaction_events e
    where e.kind = 'rating'
      and e.created_at >= interaction_metrics_for_range.range_start and e.created_at < interaction_metrics_for_range.range_end
    group by 1, 2
  )
  select coalesce(m.user_id, r.user_id), coalesce(m.hour, r.hour), coalesce(m.total_messages, 0),
         coalesce(m.user_messages, 0), coalesce(m.ai_coach_messages, 0), coalesce(m.human_coach_messages, 0),
         coalesce(m.system_messages, 0), coalesce(h.response_count, 0), coalesce(h.sum_ms, 0), h.min_ms, h.max_ms,
         coalesce(h.buckets, '{}'), coalesce(h.counts, '{}'), coalesce(r.score_sum, 0), coalesce(r.n, 0),
         coalesce(p.personas, '{}'), coalesce(p.counts, '{}'), coalesce(m.prompt_tokens, 0),
         coalesce(m.completion_tokens, 0), coalesce(m.cached_tokens, 0), coalesce(m.cost_usd, 0), coalesce(m.error_count, 0)
  from messages m
  full join ratings r on r.user_id = m.user_id and r.hour = m.hour
  left join histograms h on h.user_id = m.user_id and h.hour = m.hour
  left join personas p on p.user_id = m.user_id and p.hour = m.hour;
end;
$$;
comment on function private.interaction_metrics_for_range(timestamptz, timestamptz) is
  'The hourly partial metrics (analytics.coach_interaction_metrics_hourly without key and time stamp) of every user with interactions or ratings in [range_start, range_end), whole UTC hours. Reads raw rows; called by private.recompute_interaction_hours.';
revoke execute on function private.interaction_metrics_for_range(timestamptz, timestamptz) from public, anon, authenticated;

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
  select date_bin('1 hour', i.created_at, timestamptz '2000-01-01 00:00:00+00'), i.model, count(*)::integer,
         coalesce(sum(i.prompt_tokens), 0)::bigint, coalesce(sum(i.completion_tokens), 0)::bigint,
         coalesce(sum(i.cached_tokens), 0)::bigint, coalesce(sum(i.cost_usd), 0)
  from public.coach_interactions i
  where i.created_at >= model_usage_for_range.range_start and i.created_at < model_usage_for_range.range_end
    and i.model is not null
  group by 1, 2;
end;
$$;
comment on function private.model_usage_for_range(timestamptz, timestamptz) is
  'LLM calls, tokens and cost per model per UTC hour in [range_start, range_end), all users. Called by private.recompute_interaction_hours.';
revoke execute on function private.model_usage_for_range(timestamptz, timestamptz) from public, anon, authenticated;

-- Recomputes the hourly and model rows of the given hours from raw rows (runs of consecutive
-- hours in one pass each, at most one UTC day per pass): rows that differ are replaced, rows
-- whose users have no data left are removed. Returns the (user, day) pairs that changed.
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
      where m.hour >= run.range_start and m.hour < run.range_end
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
  'Brings the hourly and model-usage rows of the given UTC hours in line with the raw interactions and ratings (changed rows replaced, vanished rows removed, equal rows kept); returns the (user, day) pairs whose hourly rows changed. Caller holds the rollup lock.';
revoke execute on function private.recompute_interaction_hours(timestamptz[]) from public, anon, authenticated;

-- Rebuilds the daily rows of (user, day) pairs by merging their hourly rows; a pair with no
-- hourly row left loses its daily row.
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
    satisfaction_sum, coach_persona_counts)
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
           sum(h.cached_tokens)::bigint as cached_tokens, sum(h.cost_usd) as cost_usd, sum(h.error_count)::integer as error_count
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
         now(), s.response_time_sum_ms, s.response_time_min_ms, s.response_time_max_ms, coalesce(hi.buckets, '{}'),
         coalesce(hi.counts, '{}'), s.satisfaction_sum, coalesce(p.counts, '{}')
  from sums s
  left join histograms hi on hi.user_id = s.user_id and hi.day = s.day
  left join personas p on p.user_id = s.user_id and p.day = s.day;
  get diagnostics written = row_count;
  return written;
end;
$$;
comment on function private.derive_daily_interaction_metrics(uuid[], date[]) is
  'Replaces the daily rows of the (user, day) pairs (parallel arrays) with the merge of their hourly rows: sums and counts add, histograms add bucket by bucket, p95 from the merged histogram. Caller holds the rollup lock.';
revoke execute on function private.derive_daily_interaction_metrics(uuid[], date[]) from public, anon, authenticated;

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
  taken_days date[];
  all_hours timestamptz[];
  taken_count integer;
  pairs_users uuid[];
  pairs_days date[];
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can refresh interaction metrics' using errcode = '42501';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

  -- Whole UTC days, newest first (today first; a backfill drains over several runs), so that a
  -- day's daily rows are always rebuilt from a complete set of recomputed hours.
  select array_agg(d.day) into taken_days
  from (select distinct (c.hour at time zone 'UTC')::date as day from private.interaction_metrics_changes c
        order by 1 desc limit greatest(refresh_interaction_metrics.max_days, 1)) d;
  if taken_days is null then
    update private.interaction_metrics_state set refreshed_at = now(), refreshed_hours = 0, refreshed_changes = 0;
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

  update private.interaction_metrics_state
  set refreshed_at = now(), refreshed_hours = cardinality(all_hours), refreshed_changes = taken_count;
  return query select cardinality(all_hours), coalesce(cardinality(pairs_users), 0), taken_count;
end;
$$;
comment on function analytics.refresh_interaction_metrics(integer) is $$
The incremental rollup (pg_cron every 2 minutes): recomputes from raw rows the UTC hours that
interactions, ratings or erasures touched since the last run (the newest max_days days with
changes; older ones wait for the next run), and rebuilds the daily rows of the (user, day) pairs
whose hourly rows changed. Returns hours recomputed, (user, day) rows rebuilt, changes taken.
Callers: pg_cron and the service role. Example: select * from analytics.refresh_interaction_metrics();
$$;
revoke execute on function analytics.refresh_interaction_metrics(integer) from public, anon, authenticated, coach_analyst;
grant execute on function analytics.refresh_interaction_metrics(integer) to service_role;

create or replace function analytics.aggregate_interaction_metrics(from_day date, to_day date default null)
returns table (day date, users integer, messages integer)
language plpgsql
volatile
security definer
set search_path = ''
set work_mem = '256MB'
as $$
-- Security definer: the rollup reads raw interactions, which its callers (pg_cron as
-- postgres, the service role through interaction-aggregate) may not read directly.
declare
  last_day date := coalesce(aggregate_interaction_metrics.to_day, aggregate_interaction_metrics.from_day);
  range_start timestamptz;
  range_end timestamptz;
  day_users uuid[];
  day_dates date[];
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can aggregate interaction metrics' using errcode = '42501';
  end if;
  if aggregate_interaction_metrics.from_day is null or last_day < aggregate_interaction_metrics.from_day then
    raise exception 'from_day must be on or before to_day' using errcode = '22023';
  end if;
  if last_day - aggregate_interaction_metrics.from_day > 365 then
    raise exception 'A rollup covers at most 366 days' using errcode = '22023';
  end if;
  range_start := aggregate_interaction_metrics.from_day::timestamp at time zone 'UTC';
  range_end := (last_day + 1)::timestamp at time zone 'UTC';

  perform pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

  -- The changes of these days are covered by this recompute (it reads every row visible now).
  -- A change on the last day may also change what a coach's reply of the next day answers
  -- (its look-back is its own day and the day before), which the refresh would have found from
  -- these entries: the hours of the next day that hold such replies are queued instead.
  delete from private.interaction_metrics_changes c where c.hour >= range_start and c.hour < range_end;
  insert into private.interaction_metrics_changes (user_id, hour)
  select distinct null::uuid, date_bin('1 hour', i.created_at, timestamptz '2000-01-01 00:00:00+00')
  from public.coach_interactions i
  where i.sender = 'human_coach' and i.created_at >= range_end and i.created_at < range_end + interval '1 day';
  perform private.recompute_interaction_hours(array(
    select g from generate_series(range_start, range_end - interval '1 hour', interval '1 hour') g));

  delete from analytics.coach_interaction_metrics m
  where m.day between aggregate_interaction_metrics.from_day and last_day;
  select array_agg(h.user_id), array_agg(h.day) into day_users, day_dates
  from (select distinct h.user_id, (h.hour at time zone 'UTC')::date as day from analytics.coach_interaction_metrics_hourly h
        where h.hour >= range_start and h.hour < range_end) h;
  perform private.derive_daily_interaction_metrics(coalesce(day_users, '{}'), coalesce(day_dates, '{}'));

  return query
  select d::date, count(m.user_id)::integer, coalesce(sum(m.total_messages), 0)::integer
  from generate_series(aggregate_interaction_metrics.from_day, last_day, interval '1 day') d
  left join analytics.coach_interaction_metrics m on m.day = d::date
  group by d
  order by d;
end;
$$;
comment on function analytics.aggregate_interaction_metrics(date, date) is $$
Recomputes the UTC days from_day..to_day (to_day defaults to from_day; at most 366 days) from raw
interactions and ratings: their hourly rows, model usage and daily rows are replaced; idempotent.
Returns per day the users and messages rolled up. Today may be included (a partial day).
Callers: the service role (interaction-aggregate) and pg_cron. Example:
  select * from analytics.aggregate_interaction_metrics('2026-03-01', '2026-03-07');
$$;

create or replace function analytics.finalize_interaction_metrics(from_day date, to_day date default null)
returns table (day date, users integer, messages integer)
language plpgsql
volatile
security definer
set search_path = ''
set work_mem = '256MB'
as $$
-- Security definer: as refresh_interaction_metrics.
declare
  last_day date := coalesce(finalize_interaction_metrics.to_day, finalize_interaction_metrics.from_day);
  day_users uuid[];
  day_dates date[];
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can finalize interaction metrics' using errcode = '42501';
  end if;
  if finalize_interaction_metrics.from_day is null or last_day < finalize_interaction_metrics.from_day
     or last_day - finalize_interaction_metrics.from_day > 365 then
    raise exception 'from_day must be on or before to_day, at most 366 days' using errcode = '22023';
  end if;
  -- Pending changes first (the newest week with changes, which holds these days), then the days from their hours.
  perform analytics.refresh_interaction_metrics();
  perform pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));
  select array_agg(h.user_id), array_agg(h.day) into day_users, day_dates
  from (select distinct h.user_id, (h.hour at time zone 'UTC')::date as day from analytics.coach_interaction_metrics_hourly h
        where h.hour >= finalize_interaction_metrics.from_day::timestamp at time zone 'UTC'
          and h.hour < (last_day + 1)::timestamp at time zone 'UTC') h;
  perform private.derive_daily_interaction_metrics(coalesce(day_users, '{}'), coalesce(day_dates, '{}'));
  return query
  select d::date, count(m.user_id)::integer, coalesce(sum(m.total_messages), 0)::integer
  from generate_series(finalize_interaction_metrics.from_day, last_day, interval '1 day') d
  left join analytics.coach_interaction_metrics m on m.day = d::date
  group by d
  order by d;
end;
$$;
comment on function analytics.finalize_interaction_metrics(date, date) is $$
The nightly rollup of finished days (pg_cron, 00:15 UTC, the two previous days): takes every pending
change, then rebuilds the days' daily rows from their hourly rows (no raw rows read beyond the changed
hours). Rows from before the hourly rollup (no histogram) are left as they are. Example:
  select * from analytics.finalize_interaction_metrics(current_date - 2, current_date - 1);
$$;
revoke execute on function analytics.finalize_interaction_metrics(date, date) from public, anon, authenticated, coach_analyst;
grant execute on function analytics.finalize_interaction_metrics(date, date) to service_role;

-- Every hour that holds interactions or ratings is queued as a whole-hour change (user null): the
-- refresh job recomputes today first and then works back through history, a week per run. Every
-- insert after the previous migration is in the change log already (its triggers).
insert into private.interaction_metrics_changes (user_id, hour)
select null, x.hour
from (
  select date_bin('1 hour', i.created_at, timestamptz '2000-01-01 00:00:00+00') as hour from public.coach_interactions i
  union
  select date_bin('1 hour', e.created_at, timestamptz '2000-01-01 00:00:00+00') from public.interaction_events e where e.kind = 'rating'
) x;
