-- Realtime: every new interaction is broadcast on coach_interactions:<user_id>, and only
-- that user and their assigned coach may receive it (the check Realtime runs on join).
begin;
select plan(9);

select tests.create_supabase_user('dave@example.com', 'coach');

select tests.authenticate_as('alice@example.com');
create temporary table fixture as
select (r.interaction).id as interaction_id from public.log_coach_interaction(sender => 'user', content => '{"text": "Checking in"}', request_id => 'rt-1') r;
select tests.clear_authentication();

select results_eq(
  $$ select topic, event, extension, private, payload -> 'record' ->> 'id', payload ->> 'table'
     from realtime.messages where payload -> 'record' ->> 'request_id' = 'rt-1' $$,
  $$ values ('coach_interactions:a11ce000-0000-4000-8000-000000000001', 'INSERT', 'broadcast', true,
             (select interaction_id::text from fixture), 'coach_interactions') $$,
  'A user''s own message is broadcast privately on their topic, even though users cannot write realtime.messages');

-- Authorization of a join: Realtime sets the topic and the user, then checks a SELECT.
select set_config('realtime.topic', 'coach_interactions:a11ce000-0000-4000-8000-000000000001', true);
select tests.authenticate_as('alice@example.com');
select isnt_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$, 'Alice may receive her own topic');
select tests.authenticate_as('carol@example.com');
select isnt_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$, 'Carol, her coach, may receive Alice''s topic');
select tests.authenticate_as('bob@example.com');
select is_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$, 'Bob may not receive Alice''s topic');
select tests.authenticate_as('dave@example.com');
select is_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$, 'An unassigned coach may not receive Alice''s topic');
select tests.authenticate_as_anon();
select is_empty($$ select 1 from realtime.messages where topic = realtime.topic() $$, 'anon may not receive Alice''s topic');

select set_config('realtime.topic', 'coach_interactions:not-a-uuid', true);
select tests.authenticate_as('alice@example.com');
select is_empty($$ select 1 from realtime.messages $$, 'A malformed topic grants nothing');
select ok(not private.can_read_interaction_topic('other_topic:a11ce000-0000-4000-8000-000000000001'), 'Another topic family grants nothing');

-- A broadcast failure must not lose the interaction: the trigger runs as its owner.
select tests.authenticate_as('bob@example.com');
select lives_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "Hello"}') $$,
  'Bob''s write succeeds and is broadcast');

select * from finish();
rollback;
