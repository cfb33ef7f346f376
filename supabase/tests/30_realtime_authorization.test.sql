-- Realtime delivery audit: private.record_realtime_delivery as each named user (owner,
-- assigned coach, unassigned coach, coach whose window ended, stranger, anon, service role),
-- and the trigger that tells a Realtime server to drop its cached read checks when coach
-- assignments change.
begin;
select plan(28);

select tests.create_supabase_user('rt30-erin@example.com');
select tests.create_supabase_user('rt30-dan@example.com', 'coach');
select tests.create_supabase_user('rt30-fay@example.com', 'coach');
select tests.create_supabase_user('rt30-hal@example.com', 'coach');
select tests.create_supabase_user('rt30-gus@example.com');

-- Dan coaches Erin (open window); Hal did, in a window that ended an hour ago by the clock alone.
insert into public.coach_assignments (coach_id, client_id, starts_at, ends_at)
values (tests.get_user_id('rt30-dan@example.com'), tests.get_user_id('rt30-erin@example.com'), now() - interval '1 hour', null),
       (tests.get_user_id('rt30-hal@example.com'), tests.get_user_id('rt30-erin@example.com'), now() - interval '2 hours', now() - interval '1 hour');

select tests.authenticate_as('rt30-erin@example.com');
select public.log_coach_interaction(sender => 'user', content => '{"text": "first"}', request_id => 'rt30-1');
select public.log_coach_interaction(sender => 'user', content => '{"text": "second"}', request_id => 'rt30-2');
select tests.authenticate_as('rt30-gus@example.com');
select public.log_coach_interaction(sender => 'user', content => '{"text": "gus"}', request_id => 'rt30-3');
select tests.clear_authentication();

-- The broadcast ids of each topic, readable by every role the tests act as.
create temporary table rt30 as
select 'coach_interactions:' || tests.get_user_id('rt30-erin@example.com') as topic,
       (select array_agg(m.id order by m.inserted_at) from realtime.messages m
        where m.topic = 'coach_interactions:' || tests.get_user_id('rt30-erin@example.com')) as erin_ids,
       (select array_agg(m.id) from realtime.messages m
        where m.topic = 'coach_interactions:' || tests.get_user_id('rt30-gus@example.com')) as gus_ids;
grant select on rt30 to anon, authenticated, service_role;

select is((select cardinality(erin_ids) from rt30), 2, 'Erin''s two interactions were broadcast on her topic');

-- Privileges: the receiving roles may call it; the ingest and analyst roles may not.
select ok(has_function_privilege('authenticated', 'private.record_realtime_delivery(text, uuid[])', 'execute'),
  'authenticated may call private.record_realtime_delivery');
select ok(not has_function_privilege('coach_ingest', 'private.record_realtime_delivery(text, uuid[])', 'execute')
          and not has_function_privilege('coach_analyst', 'private.record_realtime_delivery(text, uuid[])', 'execute'),
  'coach_ingest and coach_analyst may not call private.record_realtime_delivery');
select ok(not has_function_privilege('anon', 'private.record_realtime_delivery(text, uuid[])', 'execute'),
  'anon may not call private.record_realtime_delivery');

-- Owner: her own receipt is not a disclosure and records nothing.
select tests.authenticate_as('rt30-erin@example.com');
select is(private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)), 0,
  'Erin''s receipt of her own interactions records nothing (returns 0)');

-- Assigned coach: one audit row for the batch.
select tests.authenticate_as('rt30-dan@example.com');
select is(private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)), 1,
  'Dan''s receipt of his client''s two interactions records one row (returns 1)');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), null) $$,
  '22023', 'message_ids must hold 1 to 1000 message ids', 'A null id list is refused');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), '{}') $$,
  '22023', 'message_ids must hold 1 to 1000 message ids', 'An empty id list is refused');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), array(select gen_random_uuid() from generate_series(1, 1001))) $$,
  '22023', 'message_ids must hold 1 to 1000 message ids', 'More than 1000 ids are refused');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), array[gen_random_uuid()]) $$,
  '22023', 'message_ids must name private broadcasts of this topic', 'An id that names no message is refused');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), (select gus_ids from rt30)) $$,
  '22023', 'message_ids must name private broadcasts of this topic', 'A message of another user''s topic is refused');

-- Coaches who are not (or no longer) assigned, strangers and anon are refused.
select tests.authenticate_as('rt30-fay@example.com');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)) $$,
  '42501', 'Only the user, their assigned coach or the service role can receive these interactions',
  'A coach not assigned to Erin is refused');
select tests.authenticate_as('rt30-hal@example.com');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)) $$,
  '42501', 'Only the user, their assigned coach or the service role can receive these interactions',
  'A coach whose assignment window ended by the clock is refused');
select tests.authenticate_as('rt30-gus@example.com');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)) $$,
  '42501', 'Only the user, their assigned coach or the service role can receive these interactions',
  'A stranger is refused');
select is(private.record_realtime_delivery('room:lobby', (select erin_ids from rt30)), 0,
  'A topic that carries no interactions records nothing');
select tests.authenticate_as_anon();
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)) $$,
  '42501', 'permission denied for schema private', 'anon is refused: it cannot reach the function');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)) $$,
  '42501', null, 'coach_ingest cannot call it at all');

-- Service role: its receipt is audited too.
select tests.authenticate_as_service_role();
select is(private.record_realtime_delivery((select topic from rt30), (select erin_ids[1:1] from rt30)), 1,
  'The service role''s receipt records one row (returns 1)');

-- The log holds exactly the coach's and the service role's receipts.
select tests.clear_authentication();
select results_eq(
  $$ select actor_id, actor_role, resource, row_count, purpose from audit.phi_access_log
     where subject_user_id = tests.get_user_id('rt30-erin@example.com') order by id $$,
  $$ values (tests.get_user_id('rt30-dan@example.com'), 'authenticated', 'coach_interactions:realtime', 2, 'realtime'),
            (null::uuid, 'service_role', 'coach_interactions:realtime', 1, 'realtime') $$,
  'Erin''s log holds one row for Dan''s batch of two and one for the service role''s receipt');
select is_empty(
  $$ select 1 from audit.phi_access_log where actor_id in (tests.get_user_id('rt30-erin@example.com'),
       tests.get_user_id('rt30-fay@example.com'), tests.get_user_id('rt30-hal@example.com'), tests.get_user_id('rt30-gus@example.com')) $$,
  'Neither the owner''s receipt nor any refused call wrote a row');

-- The assignment ends by a write: Dan is refused from then on, Erin is not.
select tests.authenticate_as_service_role();
update public.coach_assignments set ends_at = now()
where coach_id = tests.get_user_id('rt30-dan@example.com') and client_id = tests.get_user_id('rt30-erin@example.com');
select tests.authenticate_as('rt30-dan@example.com');
select throws_ok($$ select private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)) $$,
  '42501', 'Only the user, their assigned coach or the service role can receive these interactions',
  'Dan is refused once the service role has ended his assignment');
select tests.authenticate_as('rt30-erin@example.com');
select is(private.record_realtime_delivery((select topic from rt30), (select erin_ids from rt30)), 0,
  'Erin still receives her own interactions');
select tests.clear_authentication();
select is((select count(*)::int from audit.phi_access_log where subject_user_id = tests.get_user_id('rt30-erin@example.com')), 2,
  'The refused call after the assignment ended wrote no row');

-- The notification trigger: per statement, after insert, update, delete and truncate.
select trigger_is('public', 'coach_assignments', 'coach_assignments_notify_realtime', 'private', 'trigger_notify_realtime_authorization',
  'coach_assignments notifies through private.trigger_notify_realtime_authorization');
select is((select tgtype::int from pg_trigger where tgname = 'coach_assignments_notify_realtime'
           and tgrelid = 'public.coach_assignments'::regclass), 4 | 8 | 16 | 32,
  'The trigger fires once per statement after insert, update, delete and truncate');
select ok(not has_function_privilege('authenticated', 'private.trigger_notify_realtime_authorization()', 'execute')
          and not has_function_privilege('service_role', 'private.trigger_notify_realtime_authorization()', 'execute'),
  'Nobody may call the trigger function directly');
select tests.authenticate_as_service_role();
select lives_ok($$ insert into public.coach_assignments (coach_id, client_id)
                   values (tests.get_user_id('rt30-fay@example.com'), tests.get_user_id('rt30-gus@example.com')) $$,
  'A service-role write of an assignment runs the trigger without error');
select tests.authenticate_as('rt30-fay@example.com');
select is(private.record_realtime_delivery('coach_interactions:' || tests.get_user_id('rt30-gus@example.com'), (select gus_ids from rt30)), 1,
  'The newly assigned coach''s receipt is recorded');

select * from finish();
rollback;
