-- The nudge scheduler at fixed clocks: deadline reminders (72 h, 24 h, consolidated), the
-- throttle windows (one email and one toast per user per rolling 24 hours), the check-in
-- and micro-task toasts, snoozes (also a stored value that is not a time), who may receive
-- nudges:<user_id>, and who may run or read any of it. Racing schedulers are proven with
-- concurrent connections in tests/e2e/nudges.test.ts.
begin;
select plan(60);

-- The seed's pursuits and nudges are set aside: each case builds its own at fixed clocks.
delete from public.application_state_proposals;
delete from public.check_in_tasks;
delete from public.applications;
delete from public.opportunities;
delete from public.notification_log;
delete from private.nudge_throttle;
delete from realtime.messages where topic like 'nudges:%';

create temporary table noemail on commit drop as select tests.create_supabase_user('nudge-noemail@example.com') as id;
update auth.users set email = null where id = (select id from noemail);
create temporary table unconfirmed on commit drop as select tests.create_supabase_user('nudge-unconfirmed@example.com') as id;
update auth.users set email_confirmed_at = null where id = (select id from unconfirmed);

-- T = 2031-03-01 12:00 UTC.
insert into public.opportunities (id, title, provider, amount, deadline, trust_score, application_type) values
  ('0990d000-0000-4000-8000-000000000001', 'Due in 60 hours', 'A', 1000, '2031-03-04 00:00+00', 0.5, 'essay'),
  ('0990d000-0000-4000-8000-000000000002', 'Due in 20 hours', 'B', 1000, '2031-03-02 08:00+00', 0.5, 'form'),
  ('0990d000-0000-4000-8000-000000000003', 'Due in 100 hours', 'C', 1000, '2031-03-05 16:00+00', 0.5, 'mixed'),
  ('0990d000-0000-4000-8000-000000000004', 'Past', 'D', 1000, '2031-03-01 11:00+00', 0.5, 'mixed'),
  ('0990d000-0000-4000-8000-000000000005', 'Submitted, due in 30 hours', 'E', 1000, '2031-03-02 18:00+00', 0.5, 'mixed'),
  ('0990d000-0000-4000-8000-000000000006', 'Bob''s essay', 'F', 1000, '2031-03-11 12:00+00', 0.9, 'essay'),
  ('0990d000-0000-4000-8000-000000000007', 'Tracked later, due in 30 hours', 'G', 1000, '2031-03-02 18:00+00', 0.5, 'form'),
  ('0990d000-0000-4000-8000-000000000008', 'No-email user''s deadline', 'H', 1000, '2031-03-02 00:00+00', 0.5, 'form');
insert into public.applications (id, user_id, opportunity_id, status, submitted_at, last_progress_at) values
  ('0a99d000-0000-4000-8000-000000000001', tests.get_user_id('alice@example.com'), '0990d000-0000-4000-8000-000000000001', 'draft', null, '2031-02-26 12:00+00'),
  ('0a99d000-0000-4000-8000-000000000002', tests.get_user_id('alice@example.com'), '0990d000-0000-4000-8000-000000000002', 'draft', null, '2031-02-26 12:00+00'),
  ('0a99d000-0000-4000-8000-000000000003', tests.get_user_id('alice@example.com'), '0990d000-0000-4000-8000-000000000003', 'draft', null, '2031-03-01 00:00+00'),
  ('0a99d000-0000-4000-8000-000000000004', tests.get_user_id('alice@example.com'), '0990d000-0000-4000-8000-000000000004', 'draft', null, '2031-02-01 00:00+00'),
  ('0a99d000-0000-4000-8000-000000000005', tests.get_user_id('alice@example.com'), '0990d000-0000-4000-8000-000000000005', 'submitted', '2031-02-01 00:00+00', '2031-02-01 00:00+00'),
  ('0a99d000-0000-4000-8000-000000000006', tests.get_user_id('bob@example.com'), '0990d000-0000-4000-8000-000000000006', 'draft', null, '2031-02-26 12:00+00'),
  ('0a99d000-0000-4000-8000-000000000008', (select id from noemail), '0990d000-0000-4000-8000-000000000008', 'draft', null, '2031-03-01 11:00+00'),
  ('0a99d000-0000-4000-8000-000000000009', (select id from unconfirmed), '0990d000-0000-4000-8000-000000000008', 'draft', null, '2031-03-01 11:00+00');
insert into public.check_in_tasks (id, user_id, application_id, due_at) values
  ('0c1c0000-0000-4000-8000-0000000000d5', tests.get_user_id('alice@example.com'), '0a99d000-0000-4000-8000-000000000005', '2031-02-22 00:00+00');

-- The first run at T ------------------------------------------------------------------
select is(private.run_nudge_scheduler('2031-03-01 12:00+00') - 'at',
  '{"emails": 1, "toasts": 2}'::jsonb,
  'At T: one email (Alice; the user without an email address gets none) and two toasts (Alice, Bob)');
select results_eq($$ select channel::text, notification_type, template_name, application_ids from public.notification_log
                     where user_id = tests.get_user_id('alice@example.com') and channel = 'email' $$,
  $$ values ('email', 'deadline_24h', 'deadline_reminder_v1',
             array['0a99d000-0000-4000-8000-000000000002', '0a99d000-0000-4000-8000-000000000001']::uuid[]) $$,
  'Alice gets one email listing the deadlines within 24 hours and within 72 hours, soonest first; not past, not 100 hours away, not submitted');
select results_eq($$ select o.to_email, o.subject, o.status, o.attempts from private.email_outbox o
                     join public.notification_log n on n.id = o.notification_id
                     where n.user_id = tests.get_user_id('alice@example.com') $$,
  $$ values ('alice@example.com', '2 deadlines coming up, the first within 24 hours', 'queued', 0) $$,
  'The email waits in the outbox for dispatch-notifications');
select matches((select o.text_body from private.email_outbox o join public.notification_log n on n.id = o.notification_id
                where n.user_id = tests.get_user_id('alice@example.com')),
  '- Due in 20 hours: due 2031-03-02 08:00 UTC\n- Due in 60 hours: due 2031-03-04 00:00 UTC',
  'The body lists each deadline in UTC, soonest first');
select is((select count(*)::int from public.notification_log where user_id = (select id from noemail) and channel = 'email'),
  0, 'A user without an email address gets no email');
select is((select count(*)::int from public.notification_log where user_id = (select id from unconfirmed) and channel = 'email'),
  0, 'Nor does a user whose address is not confirmed: nobody proved they own it');
select results_eq($$ select notification_type, template_name, application_ids from public.notification_log
                     where user_id = tests.get_user_id('alice@example.com') and channel = 'dashboard_toast' $$,
  $$ values ('check_in', 'check_in_v1', array['0a99d000-0000-4000-8000-000000000005']::uuid[]) $$,
  'Alice''s toast is her due check-in, which goes before her stalled micro-task');
select results_eq($$ select payload ->> 'notification_type', payload ->> 'text', event from realtime.messages
                     where topic = 'nudges:' || tests.get_user_id('alice@example.com') $$,
  $$ values ('check_in', 'Have you heard back from Submitted, due in 30 hours?', 'nudge') $$,
  'The toast is broadcast on nudges:<user_id>');
select is((select private from realtime.messages where topic = 'nudges:' || tests.get_user_id('alice@example.com')),
  true, 'on a private topic');
select results_eq($$ select notification_type, payload ->> 'text' from public.notification_log n
                     join realtime.messages m on m.topic = 'nudges:' || n.user_id and (m.payload ->> 'notification_id')::uuid = n.id
                     where n.user_id = tests.get_user_id('bob@example.com') $$,
  $$ values ('micro_task', 'Write the first paragraph of your essay for Bob''s essay (15 minutes).') $$,
  'Bob''s top application stalled for 48 hours: a micro-task toast');

select tests.authenticate_as('bob@example.com');
select is((select public.get_game_plan(at => '2031-03-01 12:00+00') -> 'micro_task' ->> 'text'),
  'Write the first paragraph of your essay for Bob''s essay (15 minutes).', 'worded as his game plan words it');
select tests.clear_authentication();

-- Again within the hour, and the throttle windows -------------------------------------
select is(private.run_nudge_scheduler('2031-03-01 13:00+00') - 'at', '{"emails": 0, "toasts": 0}'::jsonb,
  'An hour later nothing is sent again');
insert into public.applications (id, user_id, opportunity_id, status, last_progress_at) values
  ('0a99d000-0000-4000-8000-000000000007', tests.get_user_id('alice@example.com'), '0990d000-0000-4000-8000-000000000007', 'draft', '2031-03-01 13:00+00');
select is(private.run_nudge_scheduler('2031-03-02 11:59:59+00') - 'at', '{"emails": 0, "toasts": 0}'::jsonb,
  'A second before 24 hours have passed, Alice''s new deadline waits: one email per rolling 24 hours');
select is(private.run_nudge_scheduler('2031-03-02 12:00+00') - 'at', '{"emails": 1, "toasts": 0}'::jsonb,
  'At exactly 24 hours it is sent');
select is((select application_ids from public.notification_log where user_id = tests.get_user_id('alice@example.com') and channel = 'email'
           order by sent_at desc limit 1),
  array['0a99d000-0000-4000-8000-000000000007']::uuid[],
  'listing only what was not reminded yet (the 60-hour deadline is still 36 hours away: its 72-hour reminder went)');
select is((select subject from private.email_outbox o join public.notification_log n on n.id = o.notification_id
           where n.application_ids = array['0a99d000-0000-4000-8000-000000000007']::uuid[]),
  'Tracked later, due in 30 hours is due within 24 hours', 'A single deadline names it in the subject');
select is(private.run_nudge_scheduler('2031-03-03 12:00+00') - 'at', '{"emails": 1, "toasts": 1}'::jsonb,
  'The 60-hour deadline gets its 24-hour reminder a day later (and Alice, whose top application has stalled, her micro-task)');
select is((select notification_type from public.notification_log where user_id = tests.get_user_id('alice@example.com') and channel = 'email'
           order by sent_at desc limit 1), 'deadline_24h', 'typed deadline_24h');
select is(private.run_nudge_scheduler('2031-03-03 13:00+00') - 'at', '{"emails": 0, "toasts": 0}'::jsonb,
  'Each reminder goes once');

-- Toasts: one per stall, snoozes ------------------------------------------------------
select is((select count(*)::int from public.notification_log where user_id = tests.get_user_id('bob@example.com')),
  1, 'Bob''s unchanged stall was not nudged again on later days');
create or replace function pg_temp.bob_toasts() returns integer language sql as $$
  select count(*)::int from public.notification_log where user_id = tests.get_user_id('bob@example.com') and channel = 'dashboard_toast' $$;
update public.applications set last_progress_at = '2031-03-03 14:00+00' where id = '0a99d000-0000-4000-8000-000000000006';
select private.run_nudge_scheduler('2031-03-05 13:59+00');
select is(pg_temp.bob_toasts(), 1, 'A new stall is nudged only after 48 hours');
update public.profiles set preferences = preferences || '{"micro_task_snoozed_until": "2031-03-06 00:00+00"}'
 where id = tests.get_user_id('bob@example.com');
select private.run_nudge_scheduler('2031-03-05 14:00+00');
select is(pg_temp.bob_toasts(), 1, 'Snoozed: no micro-task toast');
select private.run_nudge_scheduler('2031-03-06 00:00+00');
select is(pg_temp.bob_toasts(), 2, 'When the snooze ends, the new stall is nudged');
select is((select count(*)::int from realtime.messages where topic = 'nudges:' || tests.get_user_id('bob@example.com')),
  2, 'and broadcast');
update public.profiles set preferences = preferences || '{"micro_task_snoozed_until": "soon"}'
 where id = tests.get_user_id('bob@example.com');
select lives_ok($$ select private.run_nudge_scheduler('2031-03-08 00:00+00') $$,
  'A snooze stored by hand that is not a time cannot stop the scheduler');
select tests.authenticate_as('bob@example.com');
select is((select public.get_game_plan(at => '2031-03-08 00:00+00') ->> 'micro_task_snoozed_until'), null,
  'nor break the game plan: it reads as no snooze');
select tests.clear_authentication();
update public.profiles set preferences = preferences || '{"micro_task_snoozed_until": "2031-03-09 12:00 +99:00"}'
 where id = tests.get_user_id('bob@example.com');
select lives_ok($$ select private.run_nudge_scheduler('2031-03-09 00:00+00') $$,
  'Nor can a time with a zone displacement out of range (22009)');
select tests.authenticate_as('bob@example.com');
select is((select public.get_game_plan(at => '2031-03-09 00:00+00') ->> 'micro_task_snoozed_until'), null,
  'which also reads as no snooze');
select tests.clear_authentication();

-- Who may receive nudges:<user_id> ----------------------------------------------------
select tests.authenticate_as('bob@example.com');
select set_config('realtime.topic', 'nudges:' || tests.get_user_id('bob@example.com'), true);
select isnt_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$, 'Bob may receive his nudges');
select set_config('realtime.topic', 'nudges:' || tests.get_user_id('alice@example.com'), true);
select is_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$, 'A stranger may not receive Alice''s nudges');
select tests.authenticate_as('carol@example.com');
select is_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$,
  'Her assigned coach may not either: nudges are the user''s own');
select tests.authenticate_as_anon();
select is_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$, 'Nor anon');
select tests.clear_authentication();

-- Who may run the scheduler or read its tables ----------------------------------------
select ok(not has_function_privilege('anon', 'private.run_nudge_scheduler(timestamptz)', 'execute')
          and not has_function_privilege('authenticated', 'private.run_nudge_scheduler(timestamptz)', 'execute')
          and not has_function_privilege('service_role', 'private.run_nudge_scheduler(timestamptz)', 'execute')
          and not has_function_privilege('coach_ingest', 'private.run_nudge_scheduler(timestamptz)', 'execute')
          and not has_function_privilege('coach_analyst', 'private.run_nudge_scheduler(timestamptz)', 'execute'),
  'No API role may run the scheduler (pg_cron runs it as postgres)');
select ok(not has_table_privilege('authenticated', 'private.email_outbox', 'select')
          and not has_table_privilege('service_role', 'private.email_outbox', 'select')
          and not has_table_privilege('coach_ingest', 'private.email_outbox', 'select')
          and not has_table_privilege('anon', 'private.email_outbox', 'select'),
  'No API role reads the outbox directly (dispatch-notifications uses its RPCs)');
select ok(not has_table_privilege('authenticated', 'private.nudge_throttle', 'insert')
          and not has_table_privilege('service_role', 'private.nudge_throttle', 'insert')
          and not has_table_privilege('authenticated', 'private.nudge_marks', 'insert'),
  'No API role can forge a throttle or a mark');
select tests.authenticate_as('alice@example.com');
select throws_ok($$ select 1 from public.notification_log $$, '42501', null, 'Alice cannot read the notification log');
select throws_ok($$ insert into public.notification_log (user_id, channel) values (auth.uid(), 'email') $$,
  '42501', null, 'nor write it');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select 1 from public.notification_log $$, '42501', null, 'coach_ingest cannot read it');
select tests.authenticate_as_service_role();
select isnt_empty($$ select 1 from public.notification_log $$, 'The service role reads it');
select tests.clear_authentication();

-- Dispatch: pg_cron -> pg_net -> dispatch-notifications, with the service key from Vault --
select results_eq($$ select jobname::text collate "C", schedule::text collate "C" from cron.job where jobname in ('nudge-scheduler', 'dispatch-notifications') order by jobname $$,
  $$ values ('dispatch-notifications'::text collate "C", '*/5 * * * *'::text collate "C"), ('nudge-scheduler', '*/15 * * * *') $$,
  'pg_cron runs the scheduler every 15 minutes and the dispatcher every 5');
create temporary table dispatch_request on commit drop as select private.dispatch_due_emails() as id;
select results_eq($$ select q.method::text, q.url, q.headers ->> 'Authorization', convert_from(q.body, 'UTF8')::jsonb
                     from net.http_request_queue q where q.id = (select id from dispatch_request) $$,
  $$ select 'POST', s.decrypted_secret || '/functions/v1/dispatch-notifications',
            'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key'),
            '{"source": "pg_cron"}'::jsonb
     from vault.decrypted_secrets s where s.name = 'project_url' $$,
  'With emails due, the dispatcher is invoked through net.http_post with the project URL and service key from Vault');
select tests.authenticate_as_service_role();
select throws_ok($$ select * from public.claim_email_outbox(0) $$, '22023', 'batch_size must be between 1 and 100',
  'A batch size out of range is refused');
select is((select count(*)::int from public.claim_email_outbox(100)), 5, 'The service role claims the five emails sent so far (four to Alice, one to Bob)');
select is((select count(*)::int from public.claim_email_outbox(100)), 0, 'Claimed ones are leased, not claimed twice');
select tests.clear_authentication();
create temporary table claimed_one on commit drop as
  select o.id, o.attempts from private.email_outbox o where o.status = 'sending' order by o.id limit 1;
grant select on claimed_one to service_role;
update private.email_outbox set next_attempt_at = now() - interval '1 second' where id = (select id from claimed_one);
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.claim_email_outbox(100)), 1, 'A lease that ran out is claimed again');
select is(public.record_email_delivery((select id from claimed_one), 'failed', 'test', null, 'late', null, (select attempts from claimed_one)),
  'sending', 'A report of the earlier claim changes nothing: another dispatcher holds the message now');
select is(public.record_email_delivery((select id from claimed_one), 'sent', 'test', 'm1', null, null, (select attempts + 1 from claimed_one)),
  'sent', 'The current claim''s report is recorded');
select tests.clear_authentication();
update private.email_outbox set attempts = 5, next_attempt_at = now() - interval '1 second'
 where id = (select id from private.email_outbox where status = 'sending' order by id limit 1);
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.claim_email_outbox(100)), 0, 'A message whose lease ran out five times is not claimed again');
select tests.clear_authentication();
select is((select count(*)::int from private.email_outbox where status = 'failed' and last_error like 'Not settled by the dispatcher after 5 attempts.%'),
  1, 'but failed, saying why');
select tests.clear_authentication();
select is(private.dispatch_due_emails(), null, 'With nothing due, nothing is invoked');
select ok(not has_function_privilege('authenticated', 'public.claim_email_outbox(integer, integer)', 'execute')
          and not has_function_privilege('anon', 'public.claim_email_outbox(integer, integer)', 'execute')
          and not has_function_privilege('coach_ingest', 'public.claim_email_outbox(integer, integer)', 'execute')
          and not has_function_privilege('coach_analyst', 'public.claim_email_outbox(integer, integer)', 'execute')
          and not has_function_privilege('authenticated', 'public.record_email_delivery(uuid, text, text, text, text, integer, integer)', 'execute')
          and not has_function_privilege('coach_ingest', 'public.record_email_delivery(uuid, text, text, text, text, integer, integer)', 'execute')
          and has_function_privilege('service_role', 'public.claim_email_outbox(integer, integer)', 'execute'),
  'Only the service role may claim outgoing email or record its delivery');
select tests.authenticate_as('alice@example.com');
select throws_ok($$ select * from public.claim_email_outbox() $$, '42501', null, 'A user calling the claim is refused');
select tests.clear_authentication();
delete from vault.secrets where name = 'service_role_key';
select is(private.invoke_edge_function('dispatch-notifications'), null, 'Without the secrets in Vault nothing is invoked');
select throws_ok($$ select private.invoke_edge_function('../admin') $$, '22023', null, 'Only a function name is invoked');

-- Who gets email, and how much -------------------------------------------------------------
-- At U = 2032-06-01 12:00 UTC: a user with 101 deadlines within 72 hours, a banned user and
-- an anonymous one with one each.
create temporary table many on commit drop as select tests.create_supabase_user('nudge-many@example.com') as id;
create temporary table banned on commit drop as select tests.create_supabase_user('nudge-banned@example.com') as id;
create temporary table anonymous on commit drop as select tests.create_supabase_user('nudge-anonymous@example.com') as id;
update auth.users set banned_until = '2033-01-01' where id = (select id from banned);
update auth.users set is_anonymous = true where id = (select id from anonymous);
with o as (
  insert into public.opportunities (owner_id, title, deadline)
  select u.id, 'Deadline ' || k, '2032-06-03 12:00+00'::timestamptz + k * interval '1 minute'
  from (select id from many) u, generate_series(1, 101) k
  union all
  select u.id, 'Banned deadline', '2032-06-03 12:00+00' from (select id from banned union all select id from anonymous) u
  returning id, owner_id
)
insert into public.applications (user_id, opportunity_id, last_progress_at)
select owner_id, id, '2032-06-01 11:00+00' from o;
select private.run_nudge_scheduler('2032-06-01 12:00+00');
select is((select cardinality(application_ids) from public.notification_log where user_id = (select id from many) and channel = 'email'),
  100, 'An email lists at most 100 applications, the soonest');
select is((select count(*)::int from private.email_outbox o join public.notification_log n on n.id = o.notification_id,
                  regexp_matches(o.text_body, '^- Deadline \d+:', 'gn') m
           where n.user_id = (select id from many)),
  100, 'and its body lists the same 100, not the 101st');
select private.run_nudge_scheduler('2032-06-02 12:00+00');
select is((select application_ids from public.notification_log n join public.applications a on a.id = n.application_ids[1]
           join public.opportunities o on o.id = a.opportunity_id
           where n.user_id = (select id from many) and n.channel = 'email' order by n.sent_at desc limit 1)::text,
  (select array[a.id]::text from public.applications a join public.opportunities o on o.id = a.opportunity_id
   where a.user_id = (select id from many) and o.title = 'Deadline 101'),
  'The 101st is reminded in the next email');
select is((select count(*)::int from public.notification_log where user_id in (select id from banned union all select id from anonymous)
           and channel = 'email'), 0, 'A banned user and an anonymous one get no email');

-- Erasure takes the user's nudges with it ----------------------------------------------
create temporary table erased on commit drop as select tests.get_user_id('alice@example.com') as id;
delete from auth.users where id = (select id from erased);
select is((select count(*)::int from private.nudge_throttle where user_id = (select id from erased)), 0,
  'Throttle rows go with their user');
select is((select count(*)::int from private.email_outbox o
           where not exists (select 1 from public.notification_log n where n.id = o.notification_id)), 0,
  'Outbox rows go with their log rows');

select * from finish();
rollback;
