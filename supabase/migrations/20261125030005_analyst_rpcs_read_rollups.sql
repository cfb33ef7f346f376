-- Purpose: the analysts' API shows today and reads the rollups only. coach_usage_daily gains the
-- all-user p95 (merged histograms) and whether the day is complete; its averages come from sums.
-- persona_mix reads the daily rollup and cost_by_model the hourly model usage (same columns and
-- meaning as before, no raw rows, so no longer security definer). usage_by_hour gives the
-- hourly view (today's panels); interaction_metrics_freshness says how current they are.
-- Objects: view analytics.coach_usage_daily replaced (columns added at the end); functions
-- analytics.persona_mix, analytics.cost_by_model replaced; analytics.usage_by_hour,
-- analytics.interaction_metrics_freshness new. Destructive: none.

create or replace view analytics.coach_usage_daily
with (security_invoker = true)
as
select m.day,
       count(*)::integer as active_users,
       sum(m.total_messages)::integer as messages,
       sum(m.user_messages)::integer as user_messages,
       sum(m.ai_coach_messages)::integer as ai_coach_messages,
       sum(m.human_coach_messages)::integer as human_coach_messages,
       round(sum(coalesce(m.response_time_sum_ms, m.response_time_avg * m.response_count)) / nullif(sum(m.response_count), 0), 1)
         as response_time_avg,
       max(m.response_time_p95) as response_time_p95_max,
       round(sum(coalesce(m.satisfaction_sum, m.satisfaction_avg * m.satisfaction_count)) / nullif(sum(m.satisfaction_count), 0), 2)
         as satisfaction_avg,
       sum(m.satisfaction_count)::integer as satisfaction_count,
       sum(m.prompt_tokens)::bigint as prompt_tokens,
       sum(m.completion_tokens)::bigint as completion_tokens,
       sum(m.cached_tokens)::bigint as cached_tokens,
       sum(m.cost_usd) as cost_usd,
       sum(m.error_count)::integer as error_count,
       round(sum(m.error_count)::numeric / nullif(sum(m.total_messages), 0), 4) as error_rate,
       (select round(analytics.response_time_percentile(array_agg(x.bucket order by x.bucket), array_agg(x.n order by x.bucket),
                                                       0.95, min(m.response_time_min_ms), max(m.response_time_max_ms)), 1)
        from (select u.bucket, sum(u.n)::integer as n
              from analytics.coach_interaction_metrics d
              cross join lateral unnest(d.response_time_buckets, d.response_time_counts) as u(bucket, n)
              where d.day = m.day
              group by u.bucket) x) as response_time_p95,
       min(m.computed_at) >= (m.day + 1)::timestamp at time zone 'UTC' as complete
from analytics.coach_interaction_metrics m
group by m.day;
comment on view analytics.coach_usage_daily is
  'All users per UTC day, from the rollup, today included (complete = false until the day is over and rolled up): active users, messages by sender, response time (mean; p95 of all responses from the merged histograms, null for days rolled up before them; the highest per-user p95), satisfaction, tokens, cost, error rate.';

create or replace function analytics.persona_mix(days integer default 7, as_of date default null)
returns table (day date, coach_persona text, messages integer, share numeric)
language sql
stable
set search_path = ''
as $$
  -- From the daily rollup. Rows rolled up before coach_persona_counts existed give their counts
  -- back from the shares (rounded to 4 places, exact below 10,000 coach messages a day).
  select d.day, d.persona, d.n::integer, round(d.n::numeric / sum(d.n) over (partition by d.day), 4)
  from (
    select m.day, p.key as persona,
           sum(coalesce((m.coach_persona_counts ->> p.key)::integer,
                        round((p.value::text)::numeric * (m.ai_coach_messages + m.human_coach_messages))::integer)) as n
    from analytics.coach_interaction_metrics m
    cross join lateral jsonb_each(m.coach_persona_mix) as p(key, value)
    where m.day > coalesce(persona_mix.as_of, (now() at time zone 'UTC')::date) - persona_mix.days
      and m.day <= coalesce(persona_mix.as_of, (now() at time zone 'UTC')::date)
    group by 1, 2
  ) d
  order by d.day, d.persona
$$;
comment on function analytics.persona_mix(integer, date) is $$
Coach messages per persona per UTC day over the last `days` days (today included, from the rollup),
with each persona's share of the day. Example: select * from analytics.persona_mix(7);
$$;

create or replace function analytics.cost_by_model(days integer default 7, as_of date default null)
returns table (day date, model text, calls integer, prompt_tokens bigint, completion_tokens bigint, cached_tokens bigint, cost_usd numeric)
language sql
stable
set search_path = ''
as $$
  select (u.hour at time zone 'UTC')::date, u.model, sum(u.calls)::integer, sum(u.prompt_tokens)::bigint,
         sum(u.completion_tokens)::bigint, sum(u.cached_tokens)::bigint, sum(u.cost_usd)
  from analytics.coach_model_usage_hourly u
  where u.hour >= ((coalesce(cost_by_model.as_of, (now() at time zone 'UTC')::date) - cost_by_model.days + 1)::timestamp at time zone 'UTC')
    and u.hour < ((coalesce(cost_by_model.as_of, (now() at time zone 'UTC')::date) + 1)::timestamp at time zone 'UTC')
  group by 1, 2
  order by 1, 2
$$;
comment on function analytics.cost_by_model(integer, date) is $$
LLM calls, tokens and cost in USD per model per UTC day over the last `days` days (today included,
from the hourly model usage). Example: select * from analytics.cost_by_model(30);
$$;

create or replace function analytics.usage_by_hour(from_hour timestamptz, to_hour timestamptz default null)
returns table (
  hour timestamptz, active_users integer, messages integer, user_messages integer, ai_coach_messages integer,
  human_coach_messages integer, system_messages integer, response_count integer, response_time_avg numeric,
  response_time_p95 numeric, satisfaction_avg numeric, satisfaction_count integer, prompt_tokens bigint,
  completion_tokens bigint, cost_usd numeric, error_count integer, error_rate numeric
)
language sql
stable
set search_path = ''
as $$
  -- All users per UTC hour from the hourly rollup; at most 31 days.
  select h.hour, count(*)::integer, sum(h.total_messages)::integer, sum(h.user_messages)::integer,
         sum(h.ai_coach_messages)::integer, sum(h.human_coach_messages)::integer, sum(h.system_messages)::integer,
         sum(h.response_count)::integer, round(sum(h.response_time_sum_ms) / nullif(sum(h.response_count), 0), 1),
         (select round(analytics.response_time_percentile(array_agg(x.bucket order by x.bucket), array_agg(x.n order by x.bucket),
                                                         0.95, min(h.response_time_min_ms), max(h.response_time_max_ms)), 1)
          from (select u.bucket, sum(u.n)::integer as n
                from analytics.coach_interaction_metrics_hourly d
                cross join lateral unnest(d.response_time_buckets, d.response_time_counts) as u(bucket, n)
                where d.hour = h.hour
                group by u.bucket) x),
         round(sum(h.satisfaction_sum)::numeric / nullif(sum(h.satisfaction_count), 0), 2), sum(h.satisfaction_count)::integer,
         sum(h.prompt_tokens)::bigint, sum(h.completion_tokens)::bigint, sum(h.cost_usd), sum(h.error_count)::integer,
         round(sum(h.error_count)::numeric / nullif(sum(h.total_messages), 0), 4)
  from analytics.coach_interaction_metrics_hourly h
  where h.hour >= date_bin('1 hour', usage_by_hour.from_hour, timestamptz '2000-01-01 00:00:00+00')
    and h.hour < coalesce(usage_by_hour.to_hour, now())
    and coalesce(usage_by_hour.to_hour, now()) - usage_by_hour.from_hour <= interval '31 days'
  group by h.hour
  order by h.hour
$$;
comment on function analytics.usage_by_hour(timestamptz, timestamptz) is $$
All users per UTC hour between from_hour and to_hour (default now; at most 31 days), from the hourly
rollup (minutes old): active users, messages by sender, response time mean and p95 (merged histograms),
satisfaction, tokens, cost, errors. Today so far:
  select * from analytics.usage_by_hour(date_trunc('day', now() at time zone 'UTC') at time zone 'UTC');
$$;

create or replace function analytics.interaction_metrics_freshness()
returns table (refreshed_at timestamptz, pending_changes integer, oldest_pending_at timestamptz, lag_seconds integer)
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Security definer: reads the private change log and state; returns counts and times only, to
-- the analysts and the service role.
begin
  if private.caller_role() not in ('coach_analyst', 'service_role', 'postgres') then
    raise exception 'Only analysts and the service role can read the rollup''s freshness' using errcode = '42501';
  end if;
  return query
  select s.refreshed_at, (select count(*)::integer from private.interaction_metrics_changes),
         (select min(c.logged_at) from private.interaction_metrics_changes c),
         coalesce(extract(epoch from now() - (select min(c.logged_at) from private.interaction_metrics_changes c))::integer, 0)
  from private.interaction_metrics_state s;
end;
$$;
comment on function analytics.interaction_metrics_freshness() is $$
How current the rollups are: when the incremental rollup last ran, how many changes wait, the oldest
one's time and its age in seconds (0 when none wait): today's figures miss at most that much.
Example: select * from analytics.interaction_metrics_freshness();
$$;

revoke execute on function analytics.usage_by_hour(timestamptz, timestamptz), analytics.interaction_metrics_freshness()
  from public, anon, authenticated;
grant execute on function analytics.usage_by_hour(timestamptz, timestamptz), analytics.interaction_metrics_freshness(),
  analytics.persona_mix(integer, date), analytics.cost_by_model(integer, date) to coach_analyst, service_role;
