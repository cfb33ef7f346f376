-- log_event (the events function's write path) as each named user: a user logs their own
-- events, the service role and ingest tokens anyone's; idempotent by request_id like
-- log_coach_interaction; anon and analysts cannot write; ids of others are refused alike.
begin;
select plan(26);

create temp table seen (k text primary key, id uuid);
grant select, insert on seen to public;

select tests.authenticate_as('alice@example.com');
select is((select (r).replayed from public.log_event(kind => 'rating', score => 4::smallint, request_id => 'ev-a-1',
    session_id => 'a11ce000-5e55-4000-8000-000000000001', group_id => 'a11ce000-6a0e-4000-8000-000000000001') r), false,
  'Alice logs a rating of her session in a group');
insert into seen select 'ev-a-1', id from public.interaction_events where request_id = 'ev-a-1';
select results_eq($$ select (r).replayed, ((r).event).id from public.log_event(kind => 'rating', score => 4::smallint, request_id => 'ev-a-1',
    session_id => 'a11ce000-5e55-4000-8000-000000000001', group_id => 'a11ce000-6a0e-4000-8000-000000000001') r $$,
  $$ select true, id from seen where k = 'ev-a-1' $$, 'A replay returns the original event');
select is((select count(*)::int from public.interaction_events where request_id = 'ev-a-1'), 1, 'and stores nothing more');
select throws_ok($$ select public.log_event(kind => 'rating', score => 5::smallint, request_id => 'ev-a-1') $$,
  'PT422', 'request_id was already used with a different payload', 'The same key with another payload is refused');
select isnt((select ((r).event).request_id from public.log_event(kind => 'read') r), null,
  'An event logged without a key gets one');
select is((select ((r).event).actor_role from public.log_event(kind => 'delivered') r), 'authenticated', 'and records its actor');
select throws_ok($$ select public.log_event(kind => 'read', user_id => 'b0b00000-0000-4000-8000-000000000002') $$,
  '42501', null, 'Alice cannot log events for Bob');
select throws_ok($$ select public.log_event(kind => 'read', session_id => 'b0b00000-5e55-4000-8000-000000000002') $$,
  '23503', 'session_id does not name a coaching session of this user', 'nor cite Bob''s session');
select throws_ok($$ select public.log_event(kind => 'read', session_id => gen_random_uuid()) $$,
  '23503', 'session_id does not name a coaching session of this user', 'with the same error as an unknown session');
select throws_ok($$ select public.log_event(kind => 'read', created_at => now() - interval '1 day') $$,
  '42501', null, 'A user cannot backdate an event');
select throws_ok($$ select public.log_event(kind => 'teleported') $$, '22023',
  'kind must be one of delivered, read, rating, feedback, error, session_state', 'An unknown kind is refused');
select throws_ok($$ select public.log_event(kind => 'rating', score => 6::smallint) $$, '22023', 'score must be between 1 and 5',
  'A score outside 1..5 is refused');
select throws_ok($$ select public.log_event(kind => 'read', score => 3::smallint) $$, '22023', 'score is required exactly when kind is rating',
  'A score on another kind is refused');
select throws_ok($$ select public.log_event(kind => 'read', category => E'a\u0085b') $$, '22023',
  'category must be 1 to 100 characters without control characters', 'A category with a control character is refused');
select throws_ok($$ select public.log_event(kind => 'read', payload => '[1]') $$, '22023', 'payload must be a JSON object',
  'A payload that is not an object is refused');
select throws_ok($$ select public.log_event(kind => 'read', tracked_skill_id_hash => 'skill-42') $$, '22023',
  'tracked_skill_id_hash must be 64 lowercase hex digits (the keyed hash, never a raw id)',
  'A raw tracked skill id in place of the hash is refused, without echoing the row');
select throws_ok($$ select public.log_event(kind => 'read', request_id => 'bad key!') $$, '22023',
  'request_id must be 1 to 128 letters, digits or . _ : -', 'A malformed key is refused');

select tests.authenticate_as('bob@example.com');
select lives_ok($$ select public.log_event(kind => 'read', request_id => 'ev-a-1') $$,
  'Bob''s keys are his own: he may use the key Alice used');

select tests.authenticate_as_role('coach_ingest');
select is((select ((r).event).actor_role from public.log_event(kind => 'session_state', request_id => 'ing-1',
    user_id => 'a11ce000-0000-4000-8000-000000000001', session_id => 'a11ce000-5e55-4000-8000-000000000001',
    created_at => '2026-03-05 11:00:00+00') r), 'coach_ingest', 'An ingest token logs (and backdates) Alice''s event');
select throws_ok($$ select public.log_event(kind => 'read') $$, '22023', 'user_id is required for service and ingest callers',
  'naming the user');
set local timezone to 'Asia/Tokyo';
select is((select (r).replayed from public.log_event(kind => 'session_state', request_id => 'ing-1',
    user_id => 'a11ce000-0000-4000-8000-000000000001', session_id => 'a11ce000-5e55-4000-8000-000000000001',
    created_at => '2026-03-05 11:00:00+00') r), true, 'A backfill retried over a connection in another time zone is a replay');
set local timezone to 'UTC';
select tests.authenticate_as_service_role();
select lives_ok($$ select public.log_event(kind => 'read', user_id => 'b0b00000-0000-4000-8000-000000000002') $$,
  'The service role logs Bob''s event');
select tests.authenticate_as_anon();
select throws_ok($$ select public.log_event(kind => 'read') $$, '42501', null, 'anon cannot log events');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select public.log_event(kind => 'read', user_id => 'a11ce000-0000-4000-8000-000000000001') $$, '42501', null,
  'nor can an analyst');
select tests.authenticate_as('carol@example.com');
select throws_ok($$ select public.log_event(kind => 'read', user_id => 'a11ce000-0000-4000-8000-000000000001') $$, '42501', null,
  'nor Alice''s coach, for her');
select tests.create_supabase_user('event-unassigned-coach@example.com', 'coach');
select tests.authenticate_as('event-unassigned-coach@example.com');
select throws_ok($$ select public.log_event(kind => 'read', user_id => 'a11ce000-0000-4000-8000-000000000001') $$, '42501', null,
  'nor a coach not assigned to her');
select tests.clear_authentication();

select * from finish();
rollback;
