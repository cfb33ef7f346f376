-- Momentum at fixed clocks, the game plan, check-ins and snoozes, as each named user.
begin;
select plan(33);

-- The seed's pursuits (Alice's game plan for npm start) are set aside: each case here builds
-- its own, at fixed clocks.
delete from public.application_state_proposals;
delete from public.check_in_tasks;
delete from public.applications;
delete from public.opportunities;

-- Momentum: deadline proximity over 30 days x 0.6 + trust x 0.4 -------------------------
select results_eq($$ select deadline_proximity, momentum from private.momentum_parts('2031-03-31 00:00+00', 0.5, '2031-03-01 00:00+00') $$,
  $$ values (0.0000::numeric, 0.20::numeric) $$, 'Exactly 30 days before the deadline, proximity is 0');
select results_eq($$ select deadline_proximity, momentum from private.momentum_parts('2031-04-30 00:00+00', 0.5, '2031-03-01 00:00+00') $$,
  $$ values (0.0000::numeric, 0.20::numeric) $$, 'More than 30 days before, proximity is still 0');
select results_eq($$ select deadline_proximity, momentum from private.momentum_parts('2031-03-16 00:00+00', 1, '2031-03-01 00:00+00') $$,
  $$ values (0.5000::numeric, 0.70::numeric) $$, 'Halfway (15 days), proximity is 0.5');
select results_eq($$ select deadline_proximity, momentum from private.momentum_parts('2031-03-01 00:00+00', 0, '2031-03-01 00:00+00') $$,
  $$ values (1.0000::numeric, 0.60::numeric) $$, 'At the deadline, proximity is 1');
select results_eq($$ select deadline_proximity, momentum from private.momentum_parts('2031-03-01 00:00+00', 1, '2031-03-01 00:00:01+00') $$,
  $$ values (null::numeric, null::numeric) $$, 'A second past the deadline, the application leaves the plan');
select results_eq($$ select deadline_proximity, momentum from private.momentum_parts(null, 0.9, '2031-03-01 00:00+00') $$,
  $$ values (0::numeric, 0.36::numeric) $$, 'Without a deadline, only trust counts');

-- Alice's pursuits at a fixed clock: 2031-03-01 12:00 UTC --------------------------------
insert into public.opportunities (id, title, provider, amount, deadline, trust_score, application_type) values
  ('0990e000-0000-4000-8000-000000000001', 'Near essay', 'A', 1000, '2031-03-04 12:00+00', 0.5, 'essay'),   -- 0.9 x 0.6 + 0.2 = 0.74
  ('0990e000-0000-4000-8000-000000000002', 'Near form', 'B', 3000, '2031-03-04 12:00+00', 0.5, 'form'),     -- 0.74, larger amount
  ('0990e000-0000-4000-8000-000000000003', 'Far', 'C', 500, '2031-05-01 00:00+00', 1.0, 'mixed'),            -- 0.40
  ('0990e000-0000-4000-8000-000000000004', 'Mid', 'D', 800, '2031-03-16 12:00+00', 0.2, 'mixed'),            -- 0.3 + 0.08 = 0.38
  ('0990e000-0000-4000-8000-000000000005', 'Past', 'E', 900, '2031-02-20 00:00+00', 1.0, 'mixed'),
  ('0990e000-0000-4000-8000-000000000006', 'Won already', 'F', 5000, '2031-01-10 00:00+00', 0.9, 'essay'),
  ('0990e000-0000-4000-8000-000000000007', 'Won unconfirmed', 'G', 700, '2031-01-10 00:00+00', 0.9, 'essay'),
  ('0990e000-0000-4000-8000-000000000008', 'Submitted one', 'H', 400, '2031-02-01 00:00+00', 0.9, 'form');
insert into public.applications (id, user_id, opportunity_id, status, submitted_at, confirmed_at, last_progress_at) values
  ('0a99e000-0000-4000-8000-000000000001', tests.get_user_id('alice@example.com'), '0990e000-0000-4000-8000-000000000001', 'draft', null, null, '2031-02-25 00:00+00'),
  ('0a99e000-0000-4000-8000-000000000002', tests.get_user_id('alice@example.com'), '0990e000-0000-4000-8000-000000000002', 'draft', null, null, '2031-02-25 00:00+00'),
  ('0a99e000-0000-4000-8000-000000000003', tests.get_user_id('alice@example.com'), '0990e000-0000-4000-8000-000000000003', 'draft', null, null, '2031-03-01 00:00+00'),
  ('0a99e000-0000-4000-8000-000000000004', tests.get_user_id('alice@example.com'), '0990e000-0000-4000-8000-000000000004', 'draft', null, null, '2031-03-01 00:00+00'),
  ('0a99e000-0000-4000-8000-000000000005', tests.get_user_id('alice@example.com'), '0990e000-0000-4000-8000-000000000005', 'draft', null, null, '2031-02-01 00:00+00'),
  ('0a99e000-0000-4000-8000-000000000006', tests.get_user_id('alice@example.com'), '0990e000-0000-4000-8000-000000000006', 'awarded', '2031-01-05', '2031-01-20', '2031-01-20'),
  ('0a99e000-0000-4000-8000-000000000007', tests.get_user_id('alice@example.com'), '0990e000-0000-4000-8000-000000000007', 'awarded', '2031-01-05', null, '2031-01-20'),
  ('0a99e000-0000-4000-8000-000000000008', tests.get_user_id('alice@example.com'), '0990e000-0000-4000-8000-000000000008', 'submitted', '2031-01-20 09:00+00', null, '2031-01-20');
insert into public.check_in_tasks (id, user_id, application_id, due_at) values
  ('0c1c0000-0000-4000-8000-0000000000e8', tests.get_user_id('alice@example.com'), '0a99e000-0000-4000-8000-000000000008', '2031-02-10 09:00+00');

select tests.authenticate_as('alice@example.com');
create temporary table plan on commit drop as select public.get_game_plan(at => '2031-03-01 12:00+00') as p;
grant select on plan to authenticated, service_role;
select results_eq($$ select x ->> 'title', (x ->> 'momentum')::numeric, (x ->> 'deadline_proximity')::numeric
                     from plan, jsonb_array_elements(p -> 'top') x $$,
  $$ values ('Near form', 0.74, 0.9), ('Near essay', 0.74, 0.9), ('Far', 0.40, 0.0) $$,
  'The top three open applications by momentum; a tie goes to the larger amount; past deadlines and non-draft ones are out');
select is((select p -> 'top' -> 0 ->> 'coach_state' from plan), 'Tracked', 'Each carries its coach state');
select results_eq($$ select x ->> 'title', (x ->> 'due_at')::timestamptz from plan, jsonb_array_elements(p -> 'check_ins_due') x $$,
  $$ values ('Submitted one', '2031-02-10 09:00+00'::timestamptz) $$, 'The due check-in is in the plan');
select is((select p -> 'micro_task' ->> 'text' from plan), 'Fill in the first section of the form for Near form (10 minutes).',
  'The top application stalled for 48 hours gets a micro-task worded for a form');
select is((select (p ->> 'total_debt_lifted')::numeric from plan), 5000::numeric,
  'Total debt lifted counts confirmed wins only');
select is((select public.get_game_plan(at => '2031-02-26 00:00+00') -> 'micro_task'), 'null'::jsonb,
  'No micro-task within 48 hours of the last progress');
select is(jsonb_array_length(public.get_game_plan(at => '2031-02-01 00:00+00') -> 'check_ins_due'), 0,
  'A check-in is not in the plan before it is due');

-- Snooze ----------------------------------------------------------------------------------
select throws_ok($$ select public.snooze_micro_task('2031-03-05 00:00+00', '2031-03-01 12:00+00') $$, '22023',
  'A snooze cannot end after your nearest deadline (2031-03-04T12:00:00Z)', 'A snooze past the nearest deadline is refused');
select throws_ok($$ select public.snooze_micro_task('2031-03-01 11:00+00', '2031-03-01 12:00+00') $$, '22023',
  'A snooze must end in the future', 'A snooze in the past is refused');
select lives_ok($$ select public.snooze_micro_task('2031-03-03 00:00+00', '2031-03-01 12:00+00') $$, 'A snooze before the deadline is taken');
select is((select public.get_game_plan(at => '2031-03-01 12:00+00') -> 'micro_task'), 'null'::jsonb, 'A snoozed user gets no micro-task');
select is((select public.get_game_plan(at => '2031-03-01 12:00+00') ->> 'micro_task_snoozed_until')::timestamptz, '2031-03-03 00:00+00'::timestamptz,
  'The plan says until when');
select isnt((select public.get_game_plan(at => '2031-03-03 00:00:01+00') -> 'micro_task'), 'null'::jsonb, 'The micro-task is back once the snooze ends');

-- Check-ins -----------------------------------------------------------------------------
select results_eq($$ select status from public.respond_to_check_in('0c1c0000-0000-4000-8000-0000000000e8', 'completed') $$,
  $$ values ('completed'::public.check_in_status) $$, 'Alice completes her check-in');
select throws_ok($$ select public.respond_to_check_in('0c1c0000-0000-4000-8000-0000000000e8', 'dismissed') $$, '22023',
  'A completed check-in cannot change its status', 'An answered check-in cannot be answered again');
select throws_ok($$ select public.respond_to_check_in('0c1c0000-0000-4000-8000-0000000000e8', 'pending') $$, '22023',
  'A check-in is answered completed or dismissed', 'pending is not an answer');

-- Who may read a plan ---------------------------------------------------------------------
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.get_game_plan(tests.get_user_id('alice@example.com')) $$, '42501',
  'Only the user, their assigned coach or the service role can read a game plan', 'A stranger cannot read Alice''s plan');
select throws_ok($$ select public.respond_to_check_in('0c1c0000-0000-4000-8000-0000000000e8', 'dismissed') $$, 'PT404',
  'Check-in not found', 'A stranger cannot answer Alice''s check-in');
select is(jsonb_array_length(public.get_game_plan() -> 'top'), 0, 'Bob''s own plan is empty');
select tests.authenticate_as('carol@example.com');
select is(jsonb_array_length(public.get_game_plan(tests.get_user_id('alice@example.com'), '2031-03-01 12:00+00') -> 'top'), 3,
  'Carol, Alice''s coach, reads Alice''s plan');
select tests.clear_authentication();
select results_eq($$ select actor_role, resource, purpose from audit.phi_access_log
                     where subject_user_id = tests.get_user_id('alice@example.com') and resource = 'game_plan' $$,
  $$ values ('authenticated', 'game_plan', 'coaching') $$, 'and her read is recorded in the PHI access log');
select tests.authenticate_as_service_role();
select is((public.get_game_plan(tests.get_user_id('alice@example.com'), '2031-03-01 12:00+00') ->> 'total_debt_lifted')::numeric, 5000::numeric,
  'The service role reads any plan by user_id');
select throws_ok($$ select public.get_game_plan() $$, '22023', 'Pass the user_id of the game plan to read',
  'The service role must say whose plan');
select tests.authenticate_as_anon();
select throws_ok($$ select public.get_game_plan() $$, '42501', 'permission denied for function get_game_plan', 'anon cannot read plans');

-- Persisted scores ------------------------------------------------------------------------
select tests.clear_authentication();
select ok(private.persist_momentum_scores('2031-03-01 12:00+00') >= 4, 'The hourly job persists momentum (four of Alice''s applications change)');
select results_eq($$ select opportunity_id, momentum_score from public.applications
                     where user_id = tests.get_user_id('alice@example.com') and opportunity_id::text like '0990e000%' order by opportunity_id $$,
  $$ values ('0990e000-0000-4000-8000-000000000001'::uuid, 0.74), ('0990e000-0000-4000-8000-000000000002'::uuid, 0.74),
            ('0990e000-0000-4000-8000-000000000003'::uuid, 0.40), ('0990e000-0000-4000-8000-000000000004'::uuid, 0.38),
            ('0990e000-0000-4000-8000-000000000005'::uuid, null), ('0990e000-0000-4000-8000-000000000006'::uuid, null),
            ('0990e000-0000-4000-8000-000000000007'::uuid, null), ('0990e000-0000-4000-8000-000000000008'::uuid, null) $$,
  'Open applications get their score; past-deadline and non-draft ones none');

select results_eq($$ select schedule, command from cron.job where jobname = 'application-momentum-persist' $$,
  $$ values ('7 * * * *', 'select private.persist_momentum_scores()') $$, 'pg_cron persists momentum every hour');

select * from finish();
rollback;
