-- The daily rollup on a hand-computed fixture (one user, 2031-01-10..13): counts by
-- sender, response time avg and p95 (AI latency and a human coach's reply gap), persona
-- mix, satisfaction, tokens, cost, errors; an empty day; a day with only a rating; a reply
-- across midnight; idempotency; late data; erasure; who may run and read it.
begin;
select plan(24);
-- Hold the rollup lock for the whole file, as the rollup functions do before they touch the
-- change log and the metrics: pg_cron's refresh (every 2 minutes) then waits for this file
-- instead of deadlocking with it over rows this file changed.
select pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

select tests.create_supabase_user('mia@example.com');
create temporary table mia as select u.id, private.user_key(u.id) as key from (select tests.get_user_id('mia@example.com') as id) u;
grant select on mia to coach_analyst;

-- Fixtures are written as postgres (a permitted caller, like the seed and pg_cron).
create temporary table conv as select gen_random_uuid() as a, gen_random_uuid() as b;
select public.log_coach_interaction(sender => s, user_id => (select id from mia), content => '{"text": "x"}',
  conversation_id => c, coach_persona => p, model => m, latency_ms => l, prompt_tokens => pt, completion_tokens => ct,
  cost_usd => cost, status => st, error_code => ec, created_at => at::timestamptz)
from (values
  ('user', (select a from conv), null, null, null, null, null, null, 'ok', null, '2031-01-10 10:00:00+00'),
  ('ai_coach', (select a from conv), 'encourager', 'house-model', 400, 100, 10, 0.01, 'ok', null, '2031-01-10 10:00:01+00'),
  ('user', (select a from conv), null, null, null, null, null, null, 'ok', null, '2031-01-10 10:05:00+00'),
  ('human_coach', (select a from conv), 'carol', null, null, null, null, null, 'ok', null, '2031-01-10 10:10:00+00'),
  ('ai_coach', (select b from conv), 'encourager', 'house-model', 800, 200, 20, 0.02, 'error', 'llm_timeout', '2031-01-10 11:00:00+00'),
  ('ai_coach', (select b from conv), 'planner', 'house-model', 1200, 300, 30, 0.03, 'ok', null, '2031-01-10 12:00:00+00'),
  ('system', (select b from conv), null, null, null, null, null, null, 'ok', null, '2031-01-10 13:00:00+00')
) v(s, c, p, m, l, pt, ct, cost, st, ec, at);
select public.log_interaction_event(kind => 'rating', user_id => (select id from mia), score => v.score::smallint, created_at => v.at::timestamptz)
from (values (4, '2031-01-10 10:20:00+00'), (5, '2031-01-10 12:30:00+00'), (3, '2031-01-12 09:00:00+00')) v(score, at);

select results_eq(
  $$ select day, users, messages from analytics.aggregate_interaction_metrics('2031-01-10', '2031-01-12') $$,
  $$ values ('2031-01-10'::date, 1, 7), ('2031-01-11'::date, 0, 0), ('2031-01-12'::date, 1, 0) $$,
  'The rollup reports users and messages per day, including an empty day');

create temporary view mia_day as
select * from analytics.coach_interaction_metrics where user_id = (select id from mia) and day = '2031-01-10';
select results_eq($$ select total_messages, user_messages, ai_coach_messages, human_coach_messages, system_messages from mia_day $$,
  $$ values (7, 2, 3, 1, 1) $$, 'Messages are counted by sender');
select results_eq($$ select response_count, response_time_avg, response_time_p95 from mia_day $$,
  $$ values (4, 75600.0::numeric, 255178.7::numeric) $$,
  'Response times are AI latencies (400, 800, 1200 ms) and the coach''s 5-minute reply: avg 75600, p95 255178.7 (from the histogram: percentile_cont''s exact 255180 is within 2.19 %)');
select is((select coach_persona_mix from mia_day), '{"carol": 0.25, "encourager": 0.5, "planner": 0.25}'::jsonb,
  'The persona mix is each persona''s share of coach messages');
select results_eq($$ select satisfaction_avg, satisfaction_count from mia_day $$, $$ values (4.50::numeric, 2) $$,
  'Satisfaction is the mean of the day''s ratings');
select results_eq($$ select prompt_tokens, completion_tokens, cost_usd from mia_day $$, $$ values (600::bigint, 60::bigint, 0.06::numeric) $$,
  'Tokens and cost are summed');
select results_eq($$ select error_count, error_rate from mia_day $$, $$ values (1, 0.1429::numeric) $$, 'One error in seven messages');
select is((select user_key from mia_day), private.user_key((select id from mia)), 'Rows carry the pseudonymous user key');
select is_empty($$ select 1 from analytics.coach_interaction_metrics where user_id = (select id from mia) and day = '2031-01-11' $$,
  'An empty day has no row');
select results_eq($$ select total_messages, satisfaction_avg, satisfaction_count, error_rate, coach_persona_mix from analytics.coach_interaction_metrics
                    where user_id = (select id from mia) and day = '2031-01-12' $$,
  $$ values (0, 3.00::numeric, 1, 0::numeric, '{}'::jsonb) $$, 'A day with only a rating has a row with its satisfaction');

-- Idempotency and late data
create temporary table first_run as select * from analytics.coach_interaction_metrics where user_id = (select id from mia);
select analytics.aggregate_interaction_metrics('2031-01-10', '2031-01-12');
select bag_eq($$ select user_id, day, total_messages, response_time_avg, response_time_p95, coach_persona_mix, satisfaction_avg, cost_usd, error_rate
                 from analytics.coach_interaction_metrics where user_id = (select id from mia) $$,
  $$ select user_id, day, total_messages, response_time_avg, response_time_p95, coach_persona_mix, satisfaction_avg, cost_usd, error_rate from first_run $$,
  'Running the rollup twice gives the same rows');
select public.log_coach_interaction(sender => 'user', user_id => (select id from mia), content => '{"text": "late"}', created_at => '2031-01-10 23:59:59+00');
select analytics.aggregate_interaction_metrics('2031-01-09', '2031-01-10');
select is((select total_messages from mia_day), 8, 'Re-aggregating picks up a late interaction');

-- A reply across midnight counts on the reply's day
select public.log_coach_interaction(sender => s, user_id => (select id from mia), content => '{"text": "x"}', conversation_id => (select a from conv), created_at => at::timestamptz)
from (values ('user', '2031-01-12 23:50:00+00'), ('human_coach', '2031-01-13 00:10:00+00')) v(s, at);
select analytics.aggregate_interaction_metrics('2031-01-13');
select results_eq($$ select total_messages, response_count, response_time_avg from analytics.coach_interaction_metrics
                    where user_id = (select id from mia) and day = '2031-01-13' $$,
  $$ values (1, 1, 1200000.0::numeric) $$, 'A coach''s reply after midnight to a message before it counts 20 minutes on its own day');

-- Ranges
select throws_ok($$ select analytics.aggregate_interaction_metrics('2031-01-10', '2031-01-09') $$, '22023',
  'from_day must be on or before to_day', 'A range ending before it starts is refused');
select throws_ok($$ select analytics.aggregate_interaction_metrics('2030-01-01', '2031-01-02') $$, '22023',
  'A rollup covers at most 366 days', 'A range over 366 days is refused');

-- Who may run and read it
select tests.authenticate_as('alice@example.com');
select throws_ok($$ select analytics.aggregate_interaction_metrics('2031-01-10') $$, '42501', 'permission denied for schema analytics',
  'A user cannot run the rollup');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select analytics.aggregate_interaction_metrics('2031-01-10') $$, '42501',
  'permission denied for function aggregate_interaction_metrics', 'An analyst cannot run the rollup');
select throws_ok($$ select user_id from analytics.coach_interaction_metrics $$, '42501',
  'permission denied for table coach_interaction_metrics', 'An analyst cannot see user ids in the rollup');
select is((select total_messages from analytics.user_metrics((select key from mia), '2031-01-10', '2031-01-10')), 8,
  'An analyst reads one user''s metrics by user key');
select is((select messages from analytics.usage_overview(7, '2031-01-10') where day = '2031-01-10'), 8,
  'An analyst reads the daily overview');
select results_eq($$ select coach_persona, messages from analytics.persona_mix(1, '2031-01-10') $$,
  $$ values ('carol', 1), ('encourager', 2), ('planner', 1) $$, 'An analyst reads the persona mix');
select results_eq($$ select model, calls, cost_usd from analytics.cost_by_model(1, '2031-01-10') $$,
  $$ values ('house-model', 3, 0.06::numeric) $$, 'An analyst reads cost by model');
select results_eq($$ select ai_calls, latency_p95, errors, error_rate from analytics.latency_window(60 * 24, '2031-01-10 23:59:59+00') $$,
  $$ values (3, 1160.0::numeric, 1, 0.125::numeric) $$, 'An analyst reads latency percentiles and error rate over a window');

-- Erasure
select tests.clear_authentication();
delete from auth.users where email = 'mia@example.com';
select is_empty($$ select 1 from analytics.coach_interaction_metrics where user_key = private.user_key((select id from mia)) $$,
  'Deleting a user leaves no metrics row under their key (erasure keeps them under a pseudonym, pgTAP 63)');

select * from finish();
rollback;
