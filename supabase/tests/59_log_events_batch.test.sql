-- Events in batches: public.log_events as each named user: every item's outcome (created,
-- replayed within the batch or from an earlier write through either path, refused with its
-- code and field), log_event's rules item by item, a value that does not fit its type
-- refusing its item only, nothing stored for a refused item; private.batch_unfit_values.
begin;
select plan(21);

create temporary table b59 as
select tests.get_user_id('alice@example.com') as alice, tests.get_user_id('bob@example.com') as bob,
       'a11ce000-5e55-4000-8000-000000000001'::uuid as alice_session, 'b0b00000-5e55-4000-8000-000000000002'::uuid as bob_session,
       (select i.id from public.coach_interactions i where i.user_id = tests.get_user_id('bob@example.com') limit 1) as bob_interaction;
grant select on b59 to anon, authenticated, service_role, coach_ingest, coach_analyst;

create function pg_temp.outcomes(items jsonb)
returns table(item integer, outcome text, code text, field text, kind text, score smallint)
language sql as $$
  select r.item, r.outcome, r.code, r.field, (r.event).kind, (r.event).score
  from public.log_events(items) r
$$;
grant execute on function pg_temp.outcomes(jsonb) to anon, authenticated, service_role, coach_ingest, coach_analyst;

select tests.authenticate_as_service_role();
select results_eq(
  $$ select item, outcome, code, field, kind, score from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b59-1', 'user_id', (select alice from b59), 'kind', 'rating', 'score', 4,
                          'session_id', (select alice_session from b59), 'payload', '{"via": "batch"}'::jsonb),
       jsonb_build_object('request_id', 'b59-1', 'user_id', (select alice from b59), 'kind', 'rating', 'score', 4,
                          'session_id', (select alice_session from b59), 'payload', '{"via": "batch"}'::jsonb),
       jsonb_build_object('request_id', 'b59-1', 'user_id', (select alice from b59), 'kind', 'rating', 'score', 5),
       jsonb_build_object('request_id', 'b59-2', 'kind', 'read'),
       jsonb_build_object('request_id', 'b59-3', 'user_id', gen_random_uuid(), 'kind', 'read'),
       jsonb_build_object('request_id', 'b59-4', 'user_id', (select alice from b59), 'kind', 'read', 'session_id', (select bob_session from b59)),
       jsonb_build_object('request_id', 'b59-5', 'user_id', (select alice from b59), 'kind', 'read', 'interaction_id', (select bob_interaction from b59)),
       jsonb_build_object('request_id', 'b59-6', 'user_id', (select alice from b59), 'kind', 'read', 'payload', jsonb_build_object('x', repeat('x', 70000))),
       jsonb_build_object('request_id', 'b59-7', 'user_id', (select alice from b59), 'kind', 'read', 'payload', '[1]'::jsonb),
       jsonb_build_object('request_id', 'b59-8', 'user_id', (select alice from b59), 'kind', 'shout'),
       jsonb_build_object('request_id', 'b59-9', 'user_id', (select alice from b59), 'kind', 'rating'),
       jsonb_build_object('request_id', 'b59-10', 'user_id', (select alice from b59), 'kind', 'rating', 'score', 6),
       jsonb_build_object('request_id', 'b59-11', 'user_id', (select alice from b59), 'kind', 'read', 'category', E'bad\u0001'),
       jsonb_build_object('request_id', 'b59-12', 'user_id', (select alice from b59), 'kind', 'read', 'tracked_skill_id_hash', 'skill-7'),
       jsonb_build_object('user_id', (select alice from b59), 'kind', 'read'),
       jsonb_build_object('request_id', 'b59-13', 'user_id', (select alice from b59), 'kind', 'read', 'group_id', 'not-a-uuid'),
       jsonb_build_object('request_id', 'b59-14', 'user_id', (select alice from b59), 'kind', 'rating', 'score', 70000),
       jsonb_build_object('request_id', 'b59-15', 'user_id', (select alice from b59), 'kind', 'delivered', 'category', 'push')
     )) $$,
  $$ values (0, 'created', null, null, 'rating', 4::smallint),
            (1, 'replayed', null, null, 'rating', 4::smallint),
            (2, 'refused', 'PT422', 'request_id', null, null),
            (3, 'refused', '22023', 'user_id', null, null),
            (4, 'refused', '23503', 'user_id', null, null),
            (5, 'refused', '23503', 'session_id', null, null),
            (6, 'refused', '23503', 'interaction_id', null, null),
            (7, 'refused', '23514', 'payload', null, null),
            (8, 'refused', '22023', 'payload', null, null),
            (9, 'refused', '22023', 'kind', null, null),
            (10, 'refused', '22023', 'score', null, null),
            (11, 'refused', '22023', 'score', null, null),
            (12, 'refused', '22023', 'category', null, null),
            (13, 'refused', '22023', 'tracked_skill_id_hash', null, null),
            (14, 'refused', '22023', 'request_id', null, null),
            (15, 'refused', '22P02', 'group_id', null, null),
            (16, 'refused', '22003', 'score', null, null),
            (17, 'created', null, null, 'delivered', null) $$,
  'A mixed batch of events: each item has its own outcome, and a bad item blocks none of the good ones');

select tests.clear_authentication();
select is((select count(*)::int from public.interaction_events where request_id like 'b59-%'), 2,
  'Only the two created events were stored');
select is((select count(*)::int from private.event_requests where request_id like 'b59-%' and actor_scope = 'service'), 2,
  'Each stored event''s key was recorded');
select is((select payload ->> 'via' from public.interaction_events where request_id = 'b59-1'), 'batch', 'The payload was stored');

-- One key across both paths: log_event's hash and lock.
select tests.authenticate_as_service_role();
select is((select replayed from public.log_event(kind => 'rating', request_id => 'b59-1', user_id => (select alice from b59),
            session_id => (select alice_session from b59), score => 4::smallint, payload => '{"via": "batch"}'::jsonb)), true,
  'A key the batch wrote replays through log_event');
select lives_ok($$ select public.log_event(kind => 'read', request_id => 'b59-single', user_id => (select alice from b59)) $$,
  'log_event writes a key');
select results_eq(
  $$ select outcome from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b59-single', 'user_id', (select alice from b59), 'kind', 'read'),
       jsonb_build_object('request_id', 'b59-single', 'user_id', (select alice from b59), 'kind', 'delivered'))) $$,
  $$ values ('replayed'), ('refused') $$,
  'A key log_event wrote replays through the batch, and PT422 with another payload');

-- A signed-in user: her own events only, and no created_at.
select tests.authenticate_as('alice@example.com');
select results_eq(
  $$ select item, outcome, code, field from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b59-a1', 'kind', 'read'),
       jsonb_build_object('request_id', 'b59-a2', 'user_id', (select bob from b59), 'kind', 'read'),
       jsonb_build_object('request_id', 'b59-a3', 'kind', 'read', 'created_at', '2020-01-01T00:00:00Z'))) $$,
  $$ values (0, 'created', null, null), (1, 'refused', '42501', 'user_id'), (2, 'refused', '42501', 'created_at') $$,
  'Alice logs her own events; another user and created_at are refused item by item');
-- Her coach may not log events for her (log_event's rule: the user, the service role or ingest).
select tests.authenticate_as('carol@example.com');
select results_eq(
  $$ select outcome, code, field from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b59-c1', 'user_id', (select alice from b59), 'kind', 'read'))) $$,
  $$ values ('refused', '42501', 'user_id') $$,
  'Carol, Alice''s coach, cannot log Alice''s events');
select tests.authenticate_as('bob@example.com');
select results_eq(
  $$ select outcome, code, field from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b59-b1', 'user_id', (select alice from b59), 'kind', 'read'))) $$,
  $$ values ('refused', '42501', 'user_id') $$,
  'A stranger is refused');
select results_eq(
  $$ select outcome from pg_temp.outcomes(jsonb_build_array(jsonb_build_object('request_id', 'b59-a1', 'kind', 'read'))) $$,
  $$ values ('created') $$,
  'Bob''s key b59-a1 is his own, not Alice''s');
select is((select count(*)::int from public.interaction_events where request_id = 'b59-a1'), 1,
  'Bob reads only his own b59-a1 (RLS)');

-- Roles.
select tests.authenticate_as_role('coach_ingest');
select results_eq(
  $$ select outcome from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b59-i1', 'user_id', (select alice from b59), 'kind', 'delivered', 'created_at', '2026-01-01T00:00:00Z'))) $$,
  $$ values ('created') $$,
  'An ingest token logs events for any user, backdated');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from public.log_events('[{}]') $$, '42501', null, 'coach_analyst cannot call it');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.log_events('[{}]') $$, '42501', null, 'anon cannot call it');
select ok(not has_function_privilege('anon', 'public.log_events(jsonb)', 'execute'), 'anon holds no execute on it');

-- The batch itself.
select tests.authenticate_as_service_role();
select throws_ok($$ select * from public.log_events('{}') $$, '22023', 'items must be an array of 1 to 500 objects', 'An object is not a batch');
select throws_ok($$ select * from public.log_events((select jsonb_agg('{}'::jsonb) from generate_series(1, 501))) $$,
  '22023', 'items must be an array of 1 to 500 objects', '501 items are refused');
select tests.clear_authentication();
select is((select count(*)::int from public.interaction_events where request_id like 'b59-%'), 6,
  'In all: the batch''s two, the single path''s one, Alice''s, Bob''s and the ingested one');

select ok(not has_function_privilege('authenticated', 'private.batch_unfit_values(jsonb, jsonb)', 'execute')
          and not has_function_privilege('service_role', 'private.batch_unfit_values(jsonb, jsonb)', 'execute'),
  'batch_unfit_values is only for the write paths');
select is(private.batch_unfit_values('[{"a": "x", "b": 1}, {"a": "a11ce000-0000-4000-8000-000000000001", "b": "1e9"}, {"b": null}]',
                                     '{"a": "uuid", "b": "smallint"}'),
  '{"0": ["a", "22P02", "a: invalid input syntax for type uuid: \"x\""], "1": ["b", "22P02", "b: invalid input syntax for type smallint: \"1e9\""]}'::jsonb,
  'batch_unfit_values names each item''s first field that does not fit');

select * from finish();
rollback;
