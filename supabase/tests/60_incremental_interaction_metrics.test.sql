-- Metrics that are minutes old (issue 15): the change log, the incremental refresh and the
-- hourly rollup, as each named user. Writes log their (user, hour) in their own transaction;
-- a refresh recomputes those hours and rebuilds the touched daily rows; a day merged from its
-- hours equals the full recompute from raw rows; a backdated row and a message logged before
-- a coach's reply are picked up; erasure takes the user's key off the rows; the histogram estimator; the
-- analysts' reads; who may run and read what.
begin;
select plan(41);
-- Hold the rollup lock for the whole file, as the rollup functions do before they touch the
-- change log and the metrics: pg_cron's refresh (every 2 minutes) then waits for this file
-- instead of deadlocking with it over rows this file changed.
select pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

select tests.create_supabase_user('nia@example.com');
create temporary table nia as select u.id, private.user_key(u.id) as key from (select tests.get_user_id('nia@example.com') as id) u;
grant select on nia to anon, authenticated, service_role, coach_ingest, coach_analyst;
-- What the seed and earlier files left in the log is not this file's business.
delete from private.interaction_metrics_changes;

-- Today: four messages now, as postgres (as the seed and pg_cron write).
select public.log_coach_interaction(sender => s, user_id => (select id from nia), content => '{"text": "now"}',
  coach_persona => p, latency_ms => l, model => m, prompt_tokens => pt, completion_tokens => ct)
from (values ('user', null, null, null, null, null), ('ai_coach', 'encourager', 700, 'house-model', 10, 5),
             ('user', null, null, null, null, null), ('ai_coach', 'planner', 1300, 'house-model', 20, 6)) v(s, p, l, m, pt, ct);
select results_eq($$ select distinct user_id, hour from private.interaction_metrics_changes $$,
  $$ values ((select id from nia), date_bin('1 hour', now(), timestamptz '2000-01-01 00:00:00+00')) $$,
  'Each write logged its (user, hour): the log holds this hour for Nia');
delete from private.interaction_metrics_changes where id not in (select min(id) from private.interaction_metrics_changes);
select results_eq($$ select hours, user_days, changes from analytics.refresh_interaction_metrics() $$, $$ values (1, 1, 1) $$,
  'The refresh recomputed the hour, rebuilt one (user, day) row and took one change');
create temporary view nia_today as
select * from analytics.coach_interaction_metrics where user_id = (select id from nia) and day = (now() at time zone 'UTC')::date;
select results_eq(
  $$ select total_messages, user_messages, ai_coach_messages, response_count, response_time_avg, coach_persona_mix, prompt_tokens from nia_today $$,
  $$ values (4, 2, 2, 2, 1000.0::numeric, '{"encourager": 0.5, "planner": 0.5}'::jsonb, 30::bigint) $$,
  'Today''s daily row holds the four messages within one refresh');
select is((select count(*)::int from private.interaction_metrics_changes), 0, 'The refresh took the entry');
create temporary table stamp as select computed_at from nia_today;
select results_eq($$ select hours, user_days, changes from analytics.refresh_interaction_metrics() $$, $$ values (0, 0, 0) $$,
  'A refresh with nothing logged does nothing');
select is((select computed_at from nia_today), (select computed_at from stamp), 'and leaves the rows as they were');

-- A day spread over three hours: merged hours against the recompute from raw.
create temporary table conv as select gen_random_uuid() as a, gen_random_uuid() as b;
select public.log_coach_interaction(sender => s, user_id => (select id from nia), content => '{"text": "x"}',
  conversation_id => c, coach_persona => p, model => m, latency_ms => l, prompt_tokens => pt, completion_tokens => ct,
  cost_usd => cost, status => st, error_code => ec, created_at => at::timestamptz)
from (values
  ('user', (select a from conv), null, null, null, null, null, null, 'ok', null, '2031-03-05 10:00:00+00'),
  ('ai_coach', (select a from conv), 'encourager', 'house-model', 400, 100, 10, 0.01, 'ok', null, '2031-03-05 10:00:01+00'),
  ('user', (select a from conv), null, null, null, null, null, null, 'ok', null, '2031-03-05 10:55:00+00'),
  ('human_coach', (select a from conv), 'carol', null, null, null, null, null, 'ok', null, '2031-03-05 11:05:00+00'),
  ('ai_coach', (select b from conv), 'encourager', 'house-model', 800, 200, 20, 0.02, 'error', 'llm_timeout', '2031-03-05 11:30:00+00'),
  ('ai_coach', (select b from conv), 'planner', 'house-model', 1200, 300, 30, 0.03, 'ok', null, '2031-03-05 12:00:00+00'),
  ('ai_coach', (select b from conv), 'planner', 'house-model', 2600, 50, 5, 0.04, 'ok', null, '2031-03-05 12:10:00+00')
) v(s, c, p, m, l, pt, ct, cost, st, ec, at);
select public.log_interaction_event(kind => 'rating', user_id => (select id from nia), score => v.score::smallint, created_at => v.at::timestamptz)
from (values (4, '2031-03-05 10:20:00+00'), (5, '2031-03-05 12:30:00+00')) v(score, at);
select results_eq($$ select hours, user_days from analytics.refresh_interaction_metrics() $$, $$ values (3, 1) $$,
  'The refresh recomputed the three backdated hours and rebuilt that day');
create temporary table merged as
select * from analytics.coach_interaction_metrics where user_id = (select id from nia) and day = '2031-03-05';
select results_eq(
  $$ select sum(total_messages)::int, sum(response_count)::int, sum(satisfaction_sum)::int, sum(cost_usd), sum(error_count)::int
     from analytics.coach_interaction_metrics_hourly where user_id = (select id from nia) and hour >= '2031-03-05' and hour < '2031-03-06' $$,
  $$ select total_messages, response_count, satisfaction_sum, cost_usd, error_count from merged $$,
  'The day''s counts and sums are its hours'' sums');
select * from analytics.aggregate_interaction_metrics('2031-03-05');
select results_eq(
  $$ select total_messages, user_messages, ai_coach_messages, human_coach_messages, system_messages, response_count, response_time_avg,
            response_time_p95, response_time_buckets, response_time_counts, satisfaction_avg, satisfaction_count, coach_persona_mix,
            prompt_tokens, completion_tokens, cost_usd, error_count, error_rate from merged $$,
  $$ select total_messages, user_messages, ai_coach_messages, human_coach_messages, system_messages, response_count, response_time_avg,
            response_time_p95, response_time_buckets, response_time_counts, satisfaction_avg, satisfaction_count, coach_persona_mix,
            prompt_tokens, completion_tokens, cost_usd, error_count, error_rate
     from analytics.coach_interaction_metrics where user_id = (select id from nia) and day = '2031-03-05' $$,
  'The day merged from its hours equals the recompute of the whole day from raw rows, field by field');
select results_eq($$ select response_count, response_time_avg, satisfaction_avg from merged $$,
  $$ values (5, 121000.0::numeric, 4.50::numeric) $$,
  'Five responses (400, 800, 1200, 2600 ms and the coach''s 10-minute reply across the hour), two ratings');
select ok((select abs(m.response_time_p95 - x.p) <= 0.0219 * x.p
           from merged m, (select percentile_cont(0.95) within group (order by v) as p from unnest(array[400, 800, 1200, 2600, 600000]) v) x),
  'The p95 from the histogram is within 2.19 % of percentile_cont over the raw values');

-- A backdated row, as the service role: its day is recomputed.
select tests.authenticate_as_service_role();
select public.log_coach_interaction(sender => 'ai_coach', user_id => (select id from nia), content => '{"text": "late"}',
  latency_ms => 900, created_at => '2031-03-05 13:15:00+00');
select tests.clear_authentication();
select results_eq($$ select hours, user_days from analytics.refresh_interaction_metrics() $$, $$ values (1, 1) $$,
  'A row backdated into the day is picked up by the next refresh');
select is((select total_messages from analytics.coach_interaction_metrics where user_id = (select id from nia) and day = '2031-03-05'), 8,
  'and the day counts it');

-- A message logged before a coach's reply in a later hour changes what the reply answers.
create temporary table conv2 as select gen_random_uuid() as c;
select public.log_coach_interaction(sender => s, user_id => (select id from nia), content => '{"text": "x"}',
  conversation_id => (select c from conv2), created_at => at::timestamptz)
from (values ('user', '2031-03-07 10:00:00+00'), ('human_coach', '2031-03-07 11:30:00+00')) v(s, at);
select analytics.refresh_interaction_metrics();
select results_eq($$ select response_count, response_time_avg from analytics.coach_interaction_metrics where user_id = (select id from nia) and day = '2031-03-07' $$,
  $$ values (1, 5400000.0::numeric) $$, 'The coach answered the user after 90 minutes');
select public.log_coach_interaction(sender => 'ai_coach', user_id => (select id from nia), content => '{"text": "in between"}',
  conversation_id => (select c from conv2), latency_ms => 900, created_at => '2031-03-07 10:20:00+00');
select results_eq($$ select hours from analytics.refresh_interaction_metrics() $$, $$ values (2) $$,
  'The refresh recomputed the AI message''s hour and the hour of the reply after it');
select results_eq($$ select response_count, response_time_avg from analytics.coach_interaction_metrics where user_id = (select id from nia) and day = '2031-03-07' $$,
  $$ values (1, 900.0::numeric) $$, 'The coach''s reply now follows the AI''s message: only the AI''s latency counts');

-- A backfill of a day queues the next day's coach replies, whose look-back reaches into it.
select public.log_coach_interaction(sender => 'human_coach', user_id => (select id from nia), content => '{"text": "morning"}',
  conversation_id => (select c from conv2), created_at => '2031-03-08 00:20:00+00');
select analytics.refresh_interaction_metrics();
select public.log_coach_interaction(sender => 'user', user_id => (select id from nia), content => '{"text": "late night"}',
  conversation_id => (select c from conv2), created_at => '2031-03-07 23:50:00+00');
select * from analytics.aggregate_interaction_metrics('2031-03-07');
select analytics.refresh_interaction_metrics();
select results_eq($$ select response_count, response_time_avg from analytics.coach_interaction_metrics where user_id = (select id from nia) and day = '2031-03-08' $$,
  $$ values (1, 1800000.0::numeric) $$,
  'After a backfill of the day before, the refresh counts the 00:20 reply to the 23:50 message (30 minutes)');

-- The estimator.
select results_eq($$ select analytics.response_time_bucket(0.5), analytics.response_time_bucket(1), analytics.response_time_bucket(1200),
                            analytics.response_time_bucket(1e9) $$,
  $$ values (0::smallint, 1::smallint, 164::smallint, 448::smallint) $$, 'Buckets: below 1 ms, 1 ms, 1,200 ms, and the open last one');
select is(analytics.response_time_percentile('{}', '{}', 0.95, null, null), null, 'An empty histogram has no percentile');
select is(analytics.response_time_percentile(array[analytics.response_time_bucket(1234)], array[1], 0.95, 1234, 1234), 1234::numeric,
  'One response: its value');

-- The analysts' reads show today.
select tests.authenticate_as_role('coach_analyst');
select ok((select messages >= 4 from analytics.usage_by_hour(date_bin('1 hour', now(), timestamptz '2000-01-01 00:00:00+00'))
           where hour = date_bin('1 hour', now(), timestamptz '2000-01-01 00:00:00+00')), 'usage_by_hour shows this hour');
select is((select complete from analytics.usage_overview(1) where day = (now() at time zone 'UTC')::date), false,
  'usage_overview shows today, not complete');
select ok((select calls >= 2 from analytics.cost_by_model(1) where model = 'house-model' and day = (now() at time zone 'UTC')::date),
  'cost_by_model shows today''s calls');
select ok((select sum(total_messages) >= 4 from analytics.coach_interaction_metrics_hourly
           where hour = date_bin('1 hour', now(), timestamptz '2000-01-01 00:00:00+00')),
  'An analyst reads the hourly rows across users');
select throws_ok($$ select user_key from analytics.coach_interaction_metrics_hourly $$, '42501', null,
  'but not whose they are: no user_key (a person''s hour-by-hour profile)');
select lives_ok($$ select * from analytics.interaction_metrics_freshness() $$, 'and how fresh they are');
select throws_ok($$ select user_id from analytics.coach_interaction_metrics_hourly $$, '42501', null, 'nor user_id');
select throws_ok($$ select * from analytics.refresh_interaction_metrics() $$, '42501', null, 'An analyst cannot run the refresh');
select throws_ok($$ select * from analytics.finalize_interaction_metrics(current_date) $$, '42501', null, 'nor the nightly job');
select throws_ok($$ select count(*) from private.interaction_metrics_changes $$, '42501', null, 'nor read the change log');

-- Everyone else: no analytics at all; their writes still log their hours.
select tests.authenticate_as('alice@example.com');
select lives_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "mine"}') $$,
  'The owner logs as before: the change log is invisible to writers');
select throws_ok($$ select count(*) from analytics.coach_interaction_metrics_hourly $$, '42501', null, 'The owner cannot read the hourly rollup');
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select * from analytics.refresh_interaction_metrics() $$, '42501', null, 'A stranger cannot run the refresh');
select throws_ok($$ select * from analytics.interaction_metrics_freshness() $$, '42501', null, 'nor read its freshness');
select tests.authenticate_as('carol@example.com');
select throws_ok($$ select count(*) from analytics.coach_interaction_metrics_hourly $$, '42501', null, 'A coach cannot read it');
select tests.authenticate_as_anon();
select throws_ok($$ select count(*) from analytics.coach_model_usage_hourly $$, '42501', null, 'anon cannot read model usage');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select * from analytics.refresh_interaction_metrics() $$, '42501', null, 'An ingest token cannot run the refresh');
select tests.authenticate_as_service_role();
select throws_ok($$ select count(*) from private.interaction_metrics_changes $$, '42501', null,
  'The service role cannot read the change log either (it runs the refresh)');
select tests.clear_authentication();
select is((select count(*)::int from private.interaction_metrics_changes where user_id = tests.get_user_id('alice@example.com')), 1,
  'Alice''s write logged her hour');

-- Erasure: no rollup row keeps her key (they live on under a pseudonym: pgTAP 63).
delete from auth.users where email = 'nia@example.com';
select is((select count(*)::int from analytics.coach_interaction_metrics_hourly h join nia n on n.key = h.user_key), 0,
  'After erasure no hourly row keeps the user''s key');

select results_eq($$ select jobname, schedule from cron.job where jobname in ('coach-interactions-refresh', 'coach-interactions-daily-rollup') order by 1 $$,
  $$ values ('coach-interactions-daily-rollup'::name, '15 0 * * *'::text), ('coach-interactions-refresh', '*/2 * * * *') $$,
  'pg_cron refreshes every two minutes and finalizes the previous days at 00:15');

select * from finish();
rollback;
