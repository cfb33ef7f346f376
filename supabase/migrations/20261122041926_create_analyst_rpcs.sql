-- Purpose: the analysts' documented API in the analytics schema (docs/analytics.md): daily
-- usage, one user's metrics under their pseudonymous key, latency and error rate over a
-- sliding window, persona mix and cost by model per day, and a daily usage view for
-- 7-day trends. Callable by coach_analyst (Grafana) and the service role. The functions
-- that read raw interactions are security definer and return aggregates only.
-- Objects: view analytics.coach_usage_daily; functions analytics.usage_overview,
-- analytics.user_metrics, analytics.latency_window, analytics.persona_mix,
-- analytics.cost_by_model. Destructive: none.

create view analytics.coach_usage_daily
with (security_invoker = true)
as
select m.day,
       count(*)::integer as active_users,
       sum(m.total_messages)::integer as messages,
       sum(m.user_messages)::integer as user_messages,
       sum(m.ai_coach_messages)::integer as ai_coach_messages,
       sum(m.human_coach_messages)::integer as human_coach_messages,
       round(sum(m.response_time_avg * m.response_count) / nullif(sum(m.response_count), 0), 1) as response_time_avg,
       max(m.response_time_p95) as response_time_p95_max,
       round(sum(m.satisfaction_avg * m.satisfaction_count) / nullif(sum(m.satisfaction_count), 0), 2) as satisfaction_avg,
       sum(m.satisfaction_count)::integer as satisfaction_count,
       sum(m.prompt_tokens)::bigint as prompt_tokens,
       sum(m.completion_tokens)::bigint as completion_tokens,
       sum(m.cached_tokens)::bigint as cached_tokens,
       sum(m.cost_usd) as cost_usd,
       sum(m.error_count)::integer as error_count,
       round(sum(m.error_count)::numeric / nullif(sum(m.total_messages), 0), 4) as error_rate
from analytics.coach_interaction_metrics m
group by m.day;
comment on view analytics.coach_usage_daily is
  'All users per UTC day, from the rollup: active users, messages by sender, response time (weighted mean; the highest per-user p95), satisfaction, tokens, cost, error rate. 7-day trend: where day > current_date - 7.';
grant select on analytics.coach_usage_daily to coach_analyst, service_role;

create or replace function analytics.usage_overview(days integer default 7, as_of date default null)
returns setof analytics.coach_usage_daily
language sql
stable
set search_path = ''
as $$
  select * from analytics.coach_usage_daily u
  where u.day > coalesce(usage_overview.as_of, (now() at time zone 'UTC')::date) - usage_overview.days
    and u.day <= coalesce(usage_overview.as_of, (now() at time zone 'UTC')::date)
  order by u.day
$$;
comment on function analytics.usage_overview(integer, date) is $$
Usage for the last `days` UTC days up to `as_of` (default today), one row per day that has data.
Example: select * from analytics.usage_overview(7);
$$;

create or replace function analytics.user_metrics(user_key text, from_day date, to_day date)
returns table (
  day date, total_messages integer, user_messages integer, ai_coach_messages integer, human_coach_messages integer,
  response_time_avg numeric, response_time_p95 numeric, satisfaction_avg numeric, satisfaction_count integer,
  coach_persona_mix jsonb, prompt_tokens bigint, completion_tokens bigint, cost_usd numeric, error_rate numeric
)
language sql
stable
set search_path = ''
as $$
  select m.day, m.total_messages, m.user_messages, m.ai_coach_messages, m.human_coach_messages,
         m.response_time_avg, m.response_time_p95, m.satisfaction_avg, m.satisfaction_count, m.coach_persona_mix,
         m.prompt_tokens, m.completion_tokens, m.cost_usd, m.error_rate
  from analytics.coach_interaction_metrics m
  where m.user_key = user_metrics.user_key and m.day between user_metrics.from_day and user_metrics.to_day
  order by m.day
$$;
comment on function analytics.user_metrics(text, date, date) is $$
One user's daily metrics between two UTC days, by pseudonymous user_key (never the email or id).
Example: select * from analytics.user_metrics('9f2c…', '2026-03-01', '2026-03-07');
$$;

create or replace function analytics.latency_window(minutes integer default 5, as_of timestamptz default null)
returns table (
  window_start timestamptz, window_end timestamptz, ai_calls integer, latency_p50 numeric, latency_p95 numeric,
  latency_p99 numeric, messages integer, errors integer, error_rate numeric
)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads latency and status of raw interactions; returns aggregates only.
  with w as (
    select coalesce(latency_window.as_of, now()) - make_interval(mins => latency_window.minutes) as s,
           coalesce(latency_window.as_of, now()) as e
  )
  select w.s, w.e,
         count(i.latency_ms) filter (where i.sender = 'ai_coach')::integer,
         round((percentile_cont(0.50) within group (order by i.latency_ms) filter (where i.sender = 'ai_coach'))::numeric, 1),
         round((percentile_cont(0.95) within group (order by i.latency_ms) filter (where i.sender = 'ai_coach'))::numeric, 1),
         round((percentile_cont(0.99) within group (order by i.latency_ms) filter (where i.sender = 'ai_coach'))::numeric, 1),
         count(i.id)::integer,
         (count(i.id) filter (where i.status = 'error'))::integer,
         coalesce(round((count(i.id) filter (where i.status = 'error'))::numeric / nullif(count(i.id), 0), 4), 0)
  from w
  left join public.coach_interactions i on i.created_at > w.s and i.created_at <= w.e
  group by w.s, w.e
$$;
comment on function analytics.latency_window(integer, timestamptz) is $$
AI latency percentiles (ms) and error rate over the sliding window of the last `minutes` before
`as_of` (default now); what the alert rules watch. Example: select * from analytics.latency_window(5);
$$;

create or replace function analytics.persona_mix(days integer default 7, as_of date default null)
returns table (day date, coach_persona text, messages integer, share numeric)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads sender and persona of raw interactions; returns counts only.
  select d.day, d.persona, d.n::integer, round(d.n::numeric / sum(d.n) over (partition by d.day), 4)
  from (
    select (i.created_at at time zone 'UTC')::date as day, coalesce(i.coach_persona, 'unspecified') as persona, count(*) as n
    from public.coach_interactions i
    where i.sender in ('ai_coach', 'human_coach')
      and i.created_at >= ((coalesce(persona_mix.as_of, (now() at time zone 'UTC')::date) - persona_mix.days + 1)::timestamp at time zone 'UTC')
      and i.created_at < ((coalesce(persona_mix.as_of, (now() at time zone 'UTC')::date) + 1)::timestamp at time zone 'UTC')
    group by 1, 2
  ) d
  order by d.day, d.persona
$$;
comment on function analytics.persona_mix(integer, date) is $$
Coach messages per persona per UTC day over the last `days` days, with each persona's share of the day.
Example: select * from analytics.persona_mix(7);
$$;

create or replace function analytics.cost_by_model(days integer default 7, as_of date default null)
returns table (day date, model text, calls integer, prompt_tokens bigint, completion_tokens bigint, cached_tokens bigint, cost_usd numeric)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads model, tokens and cost of raw interactions; returns sums only.
  select (i.created_at at time zone 'UTC')::date, i.model, count(*)::integer,
         coalesce(sum(i.prompt_tokens), 0)::bigint, coalesce(sum(i.completion_tokens), 0)::bigint,
         coalesce(sum(i.cached_tokens), 0)::bigint, coalesce(sum(i.cost_usd), 0)
  from public.coach_interactions i
  where i.model is not null
    and i.created_at >= ((coalesce(cost_by_model.as_of, (now() at time zone 'UTC')::date) - cost_by_model.days + 1)::timestamp at time zone 'UTC')
    and i.created_at < ((coalesce(cost_by_model.as_of, (now() at time zone 'UTC')::date) + 1)::timestamp at time zone 'UTC')
  group by 1, 2
  order by 1, 2
$$;
comment on function analytics.cost_by_model(integer, date) is $$
LLM calls, tokens and cost in USD per model per UTC day over the last `days` days.
Example: select * from analytics.cost_by_model(30);
$$;

revoke execute on function analytics.usage_overview(integer, date), analytics.user_metrics(text, date, date),
  analytics.latency_window(integer, timestamptz), analytics.persona_mix(integer, date),
  analytics.cost_by_model(integer, date) from public, anon, authenticated;
grant execute on function analytics.usage_overview(integer, date), analytics.user_metrics(text, date, date),
  analytics.latency_window(integer, timestamptz), analytics.persona_mix(integer, date),
  analytics.cost_by_model(integer, date) to coach_analyst, service_role;
