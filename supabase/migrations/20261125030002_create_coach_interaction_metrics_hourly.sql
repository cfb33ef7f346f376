-- Purpose: hourly partial rollups, the mergeable form of the interaction metrics. One row per
-- user per UTC hour with sums, counts, the response-time histogram (analytics.response_time_bucket)
-- and exact min/max, satisfaction sum and count, persona counts; one row per model per hour for
-- calls, tokens and cost. Every daily figure is a merge of these rows. The daily table gains the
-- same mergeable columns (null on rows computed before this migration).
-- Objects: tables analytics.coach_interaction_metrics_hourly, analytics.coach_model_usage_hourly;
-- columns added to analytics.coach_interaction_metrics. Destructive: none.

create table analytics.coach_interaction_metrics_hourly (
  user_id uuid not null references public.profiles (id) on delete cascade,
  hour timestamptz not null,
  user_key text not null,
  total_messages integer not null,
  user_messages integer not null,
  ai_coach_messages integer not null,
  human_coach_messages integer not null,
  system_messages integer not null,
  response_count integer not null,
  response_time_sum_ms numeric(20, 3) not null,
  response_time_min_ms numeric(20, 3),
  response_time_max_ms numeric(20, 3),
  response_time_buckets smallint[] not null,
  response_time_counts integer[] not null,
  satisfaction_sum integer not null,
  satisfaction_count integer not null,
  coach_personas text[] not null,
  coach_persona_counts integer[] not null,
  prompt_tokens bigint not null,
  completion_tokens bigint not null,
  cached_tokens bigint not null,
  cost_usd numeric(16, 8) not null,
  error_count integer not null,
  computed_at timestamptz not null default now(),
  primary key (user_id, hour),
  constraint coach_interaction_metrics_hourly_hour_whole check (hour = date_bin('1 hour', hour, timestamptz '2000-01-01 00:00:00+00')),
  constraint coach_interaction_metrics_hourly_counts_nonnegative check (
    total_messages >= 0 and user_messages >= 0 and ai_coach_messages >= 0 and human_coach_messages >= 0
    and system_messages >= 0 and response_count >= 0 and satisfaction_count >= 0 and error_count >= 0),
  constraint coach_interaction_metrics_hourly_senders_add_up check (
    total_messages = user_messages + ai_coach_messages + human_coach_messages + system_messages),
  constraint coach_interaction_metrics_hourly_histogram_shape check (
    cardinality(response_time_buckets) = cardinality(response_time_counts)
    and (response_count = 0) = (cardinality(response_time_buckets) = 0)
    and (response_count = 0) = (response_time_min_ms is null)),
  constraint coach_interaction_metrics_hourly_satisfaction_range check (
    satisfaction_sum between satisfaction_count and 5 * satisfaction_count),
  constraint coach_interaction_metrics_hourly_persona_shape check (
    cardinality(coach_personas) = cardinality(coach_persona_counts))
);
alter table analytics.coach_interaction_metrics_hourly enable row level security;
comment on table analytics.coach_interaction_metrics_hourly is
  'Hourly partial rollup per user (UTC hours), kept current within minutes by analytics.refresh_interaction_metrics: the sums, counts and histogram that daily rows and today''s figures merge. Histogram: analytics.response_time_bucket; percentiles: analytics.response_time_percentile.';
comment on column analytics.coach_interaction_metrics_hourly.response_time_buckets is
  'Histogram buckets (analytics.response_time_bucket) with at least one response, ascending; response_time_counts holds their counts.';
comment on column analytics.coach_interaction_metrics_hourly.coach_personas is
  'Personas of the hour''s coach messages (ai_coach and human_coach; unspecified when none), ascending; coach_persona_counts holds their counts.';

create unique index coach_interaction_metrics_hourly_hour_user_id_key on analytics.coach_interaction_metrics_hourly (hour, user_id);

-- Not user_key: an hour-by-hour profile of one (pseudonymous) person is finer than analysts
-- need; they read days per user_key (coach_interaction_metrics) and hours across users.
grant select (hour, total_messages, user_messages, ai_coach_messages, human_coach_messages, system_messages,
  response_count, response_time_sum_ms, response_time_min_ms, response_time_max_ms, response_time_buckets,
  response_time_counts, satisfaction_sum, satisfaction_count, coach_personas, coach_persona_counts, prompt_tokens,
  completion_tokens, cached_tokens, cost_usd, error_count, computed_at)
  on analytics.coach_interaction_metrics_hourly to coach_analyst;
grant select on analytics.coach_interaction_metrics_hourly to service_role;
create policy "Hourly interaction metrics are readable by analysts"
  on analytics.coach_interaction_metrics_hourly for select to coach_analyst
  using (true);

create table analytics.coach_model_usage_hourly (
  hour timestamptz not null,
  model text not null,
  calls integer not null,
  prompt_tokens bigint not null,
  completion_tokens bigint not null,
  cached_tokens bigint not null,
  cost_usd numeric(16, 8) not null,
  computed_at timestamptz not null default now(),
  primary key (hour, model),
  constraint coach_model_usage_hourly_hour_whole check (hour = date_bin('1 hour', hour, timestamptz '2000-01-01 00:00:00+00')),
  constraint coach_model_usage_hourly_counts_nonnegative check (
    calls > 0 and prompt_tokens >= 0 and completion_tokens >= 0 and cached_tokens >= 0 and cost_usd >= 0)
);
alter table analytics.coach_model_usage_hourly enable row level security;
comment on table analytics.coach_model_usage_hourly is
  'LLM calls, tokens and cost per model per UTC hour, all users together (no user dimension); kept current by analytics.refresh_interaction_metrics; an erased user''s calls leave at the next refresh.';
grant select on analytics.coach_model_usage_hourly to coach_analyst, service_role;
create policy "Model usage is readable by analysts"
  on analytics.coach_model_usage_hourly for select to coach_analyst
  using (true);

alter table analytics.coach_interaction_metrics
  add column response_time_sum_ms numeric(20, 3),
  add column response_time_min_ms numeric(20, 3),
  add column response_time_max_ms numeric(20, 3),
  add column response_time_buckets smallint[],
  add column response_time_counts integer[],
  add column satisfaction_sum integer,
  add column coach_persona_counts jsonb;
comment on column analytics.coach_interaction_metrics.response_time_p95 is
  'p95 response time in ms: analytics.response_time_percentile over the day''s histogram (within 2.2 % of the exact percentile_cont). Rows computed before the hourly rollup (response_time_buckets null) hold the exact value.';
grant select (response_time_sum_ms, response_time_min_ms, response_time_max_ms, response_time_buckets, response_time_counts,
  satisfaction_sum, coach_persona_counts)
  on analytics.coach_interaction_metrics to coach_analyst;
