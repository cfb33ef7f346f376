-- Check-in tasks and the notification log, as every named user sees them.
begin;
select plan(24);

-- The seed's pursuits (Alice's game plan for npm start) are set aside: each case here builds
-- its own, at fixed clocks.
delete from public.application_state_proposals;
delete from public.check_in_tasks;
delete from public.applications;
delete from public.opportunities;
delete from public.notification_log;

insert into public.opportunities (id, title, deadline) values ('0990c000-0000-4000-8000-0000000000c1', 'Check-in test grant', '2031-03-01');
insert into public.applications (id, user_id, opportunity_id, status, submitted_at)
values ('0a990000-0000-4000-8000-0000000000c1', tests.get_user_id('alice@example.com'), '0990c000-0000-4000-8000-0000000000c1',
        'submitted', '2031-01-01');
insert into public.check_in_tasks (id, user_id, application_id, due_at)
values ('0c1c0000-0000-4000-8000-0000000000c1', tests.get_user_id('alice@example.com'), '0a990000-0000-4000-8000-0000000000c1',
        '2031-01-22');
insert into public.notification_log (user_id, channel, notification_type, template_name, application_ids)
values (tests.get_user_id('alice@example.com'), 'email', 'deadline_72h', 'deadline_reminder_v1', array['0a990000-0000-4000-8000-0000000000c1'::uuid]);

-- Owner ---------------------------------------------------------------------------------
select tests.authenticate_as('alice@example.com');
select results_eq($$ select status, completed_at from public.check_in_tasks $$,
  $$ values ('pending'::public.check_in_status, null::timestamptz) $$, 'Alice sees her pending check-in');
select throws_ok($$ update public.check_in_tasks set completed_at = '2031-01-23' $$, '42501',
  'permission denied for table check_in_tasks', 'Alice cannot forge completed_at');
select throws_ok($$ update public.check_in_tasks set due_at = '2031-06-01' $$, '42501',
  'permission denied for table check_in_tasks', 'Alice cannot move the due date');
select throws_ok($$ insert into public.check_in_tasks (user_id, application_id, due_at) values (auth.uid(), '0a990000-0000-4000-8000-0000000000c1', now()) $$,
  '42501', 'permission denied for table check_in_tasks', 'Alice cannot create check-ins');
select lives_ok($$ update public.check_in_tasks set status = 'completed' $$, 'Alice completes her check-in');
select results_eq($$ select status, completed_at = now() from public.check_in_tasks $$,
  $$ values ('completed'::public.check_in_status, true) $$, 'completed_at is set by the database');
select throws_ok($$ update public.check_in_tasks set status = 'pending' $$, '22023',
  'A completed check-in cannot change its status', 'A completed check-in cannot be reopened');
select throws_ok($$ update public.check_in_tasks set status = 'dismissed' $$, '22023',
  'A completed check-in cannot change its status', 'nor dismissed');
select throws_ok($$ select 1 from public.notification_log $$, '42501', 'permission denied for table notification_log',
  'Alice cannot read the notification log');
select throws_ok($$ insert into public.notification_log (user_id, channel) values (auth.uid(), 'email') $$, '42501',
  'permission denied for table notification_log', 'Alice cannot write the notification log (no forged throttle)');

-- Stranger and coach ---------------------------------------------------------------------
select tests.authenticate_as('bob@example.com');
select is_empty($$ select 1 from public.check_in_tasks $$, 'Bob sees none of Alice''s check-ins');
select is_empty($$ update public.check_in_tasks set status = 'dismissed' returning 1 $$, 'Bob cannot change Alice''s check-in');
select tests.authenticate_as('carol@example.com');
select is_empty($$ select 1 from public.check_in_tasks $$, 'Carol, Alice''s coach, does not read her check-ins directly');
select throws_ok($$ select 1 from public.notification_log $$, '42501', 'permission denied for table notification_log',
  'Carol cannot read the notification log');

-- anon, coach_ingest, coach_analyst ------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok($$ select 1 from public.check_in_tasks $$, '42501', 'permission denied for table check_in_tasks', 'anon cannot read check-ins');
select throws_ok($$ select 1 from public.notification_log $$, '42501', 'permission denied for table notification_log', 'anon cannot read the log');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select 1 from public.check_in_tasks $$, '42501', 'permission denied for table check_in_tasks', 'coach_ingest cannot read check-ins');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select 1 from public.notification_log $$, '42501', 'permission denied for table notification_log', 'coach_analyst cannot read the log');

-- Service role ---------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.notification_log where user_id = tests.get_user_id('alice@example.com')), 1,
  'The service role reads the notification log');
select throws_ok($$ insert into public.check_in_tasks (user_id, application_id, due_at)
    values (tests.get_user_id('alice@example.com'), '0a990000-0000-4000-8000-0000000000c1', '2031-02-01') $$,
  '23505', 'duplicate key value violates unique constraint "check_in_tasks_user_application_key"', 'One check-in per user and application');
select lives_ok($$ update public.check_in_tasks set completed_at = '2031-01-01', due_at = '2031-01-25' $$,
  'The service role may change a completed check-in''s other fields');
select isnt((select completed_at from public.check_in_tasks), '2031-01-01'::timestamptz, 'but not its completed_at');
select throws_ok($$ insert into public.notification_log (user_id, channel) values (tests.get_user_id('alice@example.com'), 'sms') $$,
  '22P02', 'invalid input value for enum notification_channel: "sms"', 'Only email and dashboard_toast are channels');
select throws_ok($$ insert into public.notification_log (user_id, channel, notification_type) values (tests.get_user_id('alice@example.com'), 'email', 'Deadline!') $$,
  '23514', 'new row for relation "notification_log" violates check constraint "notification_log_notification_type_format"',
  'A notification type is a lowercase identifier');

select * from finish();
rollback;
