-- Purpose: the daily rollup of the interaction log, one row per user per UTC day (seed:
-- Coaching Interaction Log, M2.3.3): volume by sender, response time (avg, p95),
-- satisfaction from ratings, coach persona mix, tokens, cost, errors. Analysts read it
-- under a pseudonymous user_key; the user_id column (for erasure by cascade) is not
-- granted to them.
-- Objects: table analytics.coach_interaction_metrics. Destructive: none.

create table analytics.coach_interaction_metrics (
  user_id uuid not null references public.profiles (id) on delete cascade,
  day date not null,
  user_key text not null,
  total_messages integer not null,
  user_messages integer not null,
  ai_coach_messages integer not null,
  human_coach_messages integer not null,
  system_messages integer not null,
  response_count integer not null,
  response_time_avg numeric(12, 1),
  response_time_p95 numeric(12, 1),
  satisfaction_avg numeric(4, 2),
  satisfaction_count integer not null,
  coach_persona_mix jsonb not null,
  prompt_tokens bigint not null,
  completion_tokens bigint not null,
  cached_tokens bigint not null,
  cost_usd numeric(16, 8) not null,
  error_count integer not null,
  error_rate numeric(6, 4) not null,
  computed_at timestamptz not null default now(),
  primary key (user_id, day),
  constraint coach_interaction_metrics_counts_nonnegative check (
    total_messages >= 0 and user_messages >= 0 and ai_coach_messages >= 0 and human_coach_messages >= 0
    and system_messages >= 0 and response_count >= 0 and satisfaction_count >= 0 and error_count >= 0),
  constraint coach_interaction_metrics_senders_add_up check (
    total_messages = user_messages + ai_coach_messages + human_coach_messages + system_messages),
  constraint coach_interaction_metrics_satisfaction_range check (satisfaction_avg is null or satisfaction_avg between 1 and 5),
  constraint coach_interaction_metrics_error_rate_range check (error_rate between 0 and 1),
  constraint coach_interaction_metrics_persona_mix_object check (jsonb_typeof(coach_persona_mix) = 'object')
);
alter table analytics.coach_interaction_metrics enable row level security;
comment on table analytics.coach_interaction_metrics is
  'Daily rollup per user (UTC days): messages by sender, response time avg/p95 (ms), satisfaction (ratings 1..5), persona mix (share of coach messages), tokens, cost, errors. Filled by analytics.aggregate_interaction_metrics.';
comment on column analytics.coach_interaction_metrics.user_key is 'Pseudonymous user key (private.user_key); analysts see this, not user_id.';
comment on column analytics.coach_interaction_metrics.response_time_avg is
  'Mean response time in ms: AI latency_ms, and for a human coach the gap between a user message and the coach''s next reply in the conversation.';
comment on column analytics.coach_interaction_metrics.coach_persona_mix is
  'Share of the day''s coach messages (ai_coach and human_coach) per persona, e.g. {"encourager": 0.75, "unspecified": 0.25}.';

-- Trend queries read by day across users.
create unique index coach_interaction_metrics_day_user_id_key on analytics.coach_interaction_metrics (day, user_id);
create unique index coach_interaction_metrics_user_key_day_key on analytics.coach_interaction_metrics (user_key, day);

-- Analysts: every column but user_id. The service role: read (writes go through the rollup).
grant select (day, user_key, total_messages, user_messages, ai_coach_messages, human_coach_messages, system_messages,
  response_count, response_time_avg, response_time_p95, satisfaction_avg, satisfaction_count, coach_persona_mix,
  prompt_tokens, completion_tokens, cached_tokens, cost_usd, error_count, error_rate, computed_at)
  on analytics.coach_interaction_metrics to coach_analyst;
grant select on analytics.coach_interaction_metrics to service_role;

create policy "Interaction metrics are readable by analysts"
  on analytics.coach_interaction_metrics for select to coach_analyst
  using (true);
