-- Purpose: the idempotent daily rollup. analytics.aggregate_interaction_metrics(from, to)
-- recomputes the given UTC days from coach_interactions and interaction_events and replaces
-- their rows in analytics.coach_interaction_metrics in one transaction: running it twice
-- gives the same rows; running it again after late data arrives picks the data up; a day
-- that lost all its data (erasure) loses its rows. It reads only the target days (plus one
-- day before them, for a human coach's reply to a message sent before midnight).
-- Objects: function analytics.aggregate_interaction_metrics. Destructive: replaces the
-- metrics rows of the days it aggregates (derived data only).

create or replace function analytics.aggregate_interaction_metrics(from_day date, to_day date default null)
returns table (day date, users integer, messages integer)
language plpgsql
volatile
security definer
set search_path = ''
-- The per-conversation ordering and the per-day aggregates sort a whole day of rows: give
-- them memory so they do not spill to disk (this function only, not the session).
set work_mem = '256MB'
as $$
-- Security definer: the rollup reads raw interactions, which its callers (pg_cron as
-- postgres, the service role through interaction-aggregate) may not read directly.
declare
  last_day date := coalesce(aggregate_interaction_metrics.to_day, aggregate_interaction_metrics.from_day);
  range_start timestamptz;
  range_end timestamptz;
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

  -- One rollup per day range at a time (the cron job and a backfill may overlap).
  perform pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

  delete from analytics.coach_interaction_metrics m
  where m.day between aggregate_interaction_metrics.from_day and last_day;

  insert into analytics.coach_interaction_metrics (
    user_id, day, user_key, total_messages, user_messages, ai_coach_messages, human_coach_messages, system_messages,
    response_count, response_time_avg, response_time_p95, satisfaction_avg, satisfaction_count, coach_persona_mix,
    prompt_tokens, completion_tokens, cached_tokens, cost_usd, error_count, error_rate, computed_at)
  with base as materialized (
    -- The target days (and the day before, for replies across midnight) read once, in a
    -- narrow projection that the aggregates below read from memory.
    select i.user_id, i.conversation_id, i.id, i.created_at, (i.created_at at time zone 'UTC')::date as day,
           i.sender, i.coach_persona, i.latency_ms, i.prompt_tokens, i.completion_tokens, i.cached_tokens,
           i.cost_usd, i.status
    from public.coach_interactions i
    where i.created_at >= range_start - interval '1 day' and i.created_at < range_end
  ),
  in_range as (
    -- Hash aggregates: counts, tokens, cost, errors per user and day.
    select b.user_id, b.day,
           count(*)::integer as total_messages,
           count(*) filter (where b.sender = 'user')::integer as user_messages,
           count(*) filter (where b.sender = 'ai_coach')::integer as ai_coach_messages,
           count(*) filter (where b.sender = 'human_coach')::integer as human_coach_messages,
           count(*) filter (where b.sender = 'system')::integer as system_messages,
           coalesce(sum(b.prompt_tokens), 0) as prompt_tokens,
           coalesce(sum(b.completion_tokens), 0) as completion_tokens,
           coalesce(sum(b.cached_tokens), 0) as cached_tokens,
           coalesce(sum(b.cost_usd), 0) as cost_usd,
           count(*) filter (where b.status = 'error')::integer as error_count
    from base b
    where b.created_at >= range_start
    group by 1, 2
  ),
  human_gaps as (
    -- A human coach's reply counts when it is the first answer to a user message: ordered
    -- per conversation, only for the conversations that have a human reply in range.
    select g.user_id, g.day, extract(epoch from g.created_at - g.previous_at) * 1000 as response_ms
    from (
      select b.user_id, b.day, b.sender, b.created_at,
             lag(b.sender) over w as previous_sender, lag(b.created_at) over w as previous_at
      from base b
      where (b.user_id, b.conversation_id) in (
        select h.user_id, h.conversation_id from base h where h.sender = 'human_coach' and h.created_at >= range_start)
      window w as (partition by b.user_id, b.conversation_id order by b.created_at, b.id)
    ) g
    where g.sender = 'human_coach' and g.previous_sender = 'user' and g.created_at >= range_start
  ),
  responses as (
    select r.user_id, r.day, count(*)::integer as response_count, round(avg(r.response_ms), 1) as response_time_avg,
           round((percentile_cont(0.95) within group (order by r.response_ms))::numeric, 1) as response_time_p95
    from (
      select b.user_id, b.day, b.latency_ms::numeric as response_ms
      from base b
      where b.sender = 'ai_coach' and b.latency_ms is not null and b.created_at >= range_start
      union all
      select h.user_id, h.day, h.response_ms from human_gaps h
    ) r
    group by r.user_id, r.day
  ),
  personas as (
    select p.user_id, p.day, jsonb_object_agg(p.persona, round(p.n::numeric / p.total, 4) order by p.persona) as mix
    from (
      select b.user_id, b.day, coalesce(b.coach_persona, 'unspecified') as persona,
             count(*) as n, sum(count(*)) over (partition by b.user_id, b.day) as total
      from base b
      where b.sender in ('ai_coach', 'human_coach') and b.created_at >= range_start
      group by 1, 2, 3
    ) p
    group by p.user_id, p.day
  ),
  ratings as (
    select e.user_id, (e.created_at at time zone 'UTC')::date as day,
           round(avg(e.score), 2) as satisfaction_avg, count(*)::integer as satisfaction_count
    from public.interaction_events e
    where e.kind = 'rating' and e.created_at >= range_start and e.created_at < range_end
    group by e.user_id, (e.created_at at time zone 'UTC')::date
  ),
  keys as (
    select u.user_id, u.day from in_range u
    union
    select r.user_id, r.day from ratings r
  )
  select k.user_id, k.day, private.user_key(k.user_id),
         coalesce(u.total_messages, 0), coalesce(u.user_messages, 0), coalesce(u.ai_coach_messages, 0),
         coalesce(u.human_coach_messages, 0), coalesce(u.system_messages, 0), coalesce(t.response_count, 0),
         t.response_time_avg, t.response_time_p95, r.satisfaction_avg, coalesce(r.satisfaction_count, 0),
         coalesce(p.mix, '{}'::jsonb), coalesce(u.prompt_tokens, 0), coalesce(u.completion_tokens, 0),
         coalesce(u.cached_tokens, 0), coalesce(u.cost_usd, 0), coalesce(u.error_count, 0),
         case when coalesce(u.total_messages, 0) = 0 then 0
              else round(u.error_count::numeric / u.total_messages, 4) end,
         now()
  from keys k
  left join in_range u on u.user_id = k.user_id and u.day = k.day
  left join responses t on t.user_id = k.user_id and t.day = k.day
  left join personas p on p.user_id = k.user_id and p.day = k.day
  left join ratings r on r.user_id = k.user_id and r.day = k.day;

  return query
  select d::date, count(m.user_id)::integer, coalesce(sum(m.total_messages), 0)::integer
  from generate_series(aggregate_interaction_metrics.from_day, last_day, interval '1 day') d
  left join analytics.coach_interaction_metrics m on m.day = d::date
  group by d
  order by d;
end;
$$;
comment on function analytics.aggregate_interaction_metrics(date, date) is $$
Recomputes the daily metrics of the UTC days from_day..to_day (to_day defaults to from_day; at most
366 days) and replaces their rows; idempotent. Returns per day the users and messages rolled up.
Callers: the service role (interaction-aggregate) and pg_cron. Example:
  select * from analytics.aggregate_interaction_metrics('2026-03-01', '2026-03-07');
$$;
revoke execute on function analytics.aggregate_interaction_metrics(date, date) from public, anon, authenticated, coach_analyst;
grant execute on function analytics.aggregate_interaction_metrics(date, date) to service_role;
