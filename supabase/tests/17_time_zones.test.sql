-- Time-dependent SQL under a session time zone far from UTC (UTC+14 and UTC-10): days are
-- UTC days whatever the session's zone (the rollup, the analyst RPCs), and assignment
-- windows compare instants.
begin;
select plan(9);
-- Hold the rollup lock for the whole file, as the rollup functions do before they touch the
-- change log and the metrics: pg_cron's refresh (every 2 minutes) then waits for this file
-- instead of deadlocking with it over rows this file changed.
select pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

set local timezone = 'Pacific/Kiritimati';

select tests.create_supabase_user('tz@example.com');
create temporary table tz as select tests.get_user_id('tz@example.com') as id;
grant select on tz to coach_analyst, authenticated;

-- 23:30 UTC on 2031-03-01 is 13:30 on 2031-03-02 in Kiritimati; 00:30 UTC on 2031-03-02 is 14:30 there.
select public.log_coach_interaction(sender => 'ai_coach', user_id => (select id from tz), content => '{"text": "x"}',
  coach_persona => 'night', model => 'tz-model', latency_ms => 100, prompt_tokens => 10, completion_tokens => 5, created_at => at)
from (values ('2031-03-01 23:30:00+00'::timestamptz), ('2031-03-02 00:30:00+00'::timestamptz)) v(at);
select public.log_interaction_event(kind => 'rating', user_id => (select id from tz), score => 4::smallint, created_at => '2031-03-01 23:45:00+00');

select results_eq($$ select day, users, messages from analytics.aggregate_interaction_metrics('2031-03-01', '2031-03-02') $$,
  $$ values ('2031-03-01'::date, 1, 1), ('2031-03-02'::date, 1, 1) $$,
  'The rollup puts each row on its UTC day, not on the session''s local day');
select results_eq($$ select day, total_messages, satisfaction_count from analytics.coach_interaction_metrics where user_id = (select id from tz) order by day $$,
  $$ values ('2031-03-01'::date, 1, 1), ('2031-03-02'::date, 1, 0) $$, 'Messages and ratings land on their UTC days');

set local timezone = 'Pacific/Honolulu';
select results_eq($$ select day, users, messages from analytics.aggregate_interaction_metrics('2031-03-01', '2031-03-02') $$,
  $$ values ('2031-03-01'::date, 1, 1), ('2031-03-02'::date, 1, 1) $$,
  'The same under UTC-10: the rollup does not follow the session zone');

select tests.authenticate_as_role('coach_analyst');
select results_eq($$ select day, coach_persona, messages from analytics.persona_mix(2, '2031-03-02') where coach_persona = 'night' $$,
  $$ values ('2031-03-01'::date, 'night', 1), ('2031-03-02'::date, 'night', 1) $$, 'persona_mix counts UTC days');
select results_eq($$ select day, calls from analytics.cost_by_model(2, '2031-03-02') where model = 'tz-model' $$,
  $$ values ('2031-03-01'::date, 1), ('2031-03-02'::date, 1) $$, 'cost_by_model counts UTC days');
select results_eq($$ select day, messages from analytics.usage_overview(2, '2031-03-02') $$,
  $$ values ('2031-03-01'::date, 1), ('2031-03-02'::date, 1) $$, 'usage_overview counts UTC days');
select is((select ai_calls from analytics.latency_window(60, '2031-03-02 00:00:00+00')), 1,
  'latency_window takes its window in instants (23:30 UTC is in the hour before midnight UTC)');

-- Assignment windows compare instants: an assignment ending at midnight UTC.
select tests.clear_authentication();
set local timezone = 'Pacific/Kiritimati';
select tests.create_supabase_user('tzcoach@example.com', 'coach');
insert into public.coach_assignments (coach_id, client_id, starts_at, ends_at)
values (tests.get_user_id('tzcoach@example.com'), (select id from tz), '2031-03-01 00:00:00+00', '2031-03-02 00:00:00+00');
select tests.authenticate_as('tzcoach@example.com');
select ok(private.is_assigned_coach((select id from tz), '2031-03-01 23:59:59+00'), 'The coach is assigned one second before the end');
select ok(not private.is_assigned_coach((select id from tz), '2031-03-02 00:00:00+00'), 'and not at the end, in any session zone');

select * from finish();
rollback;
