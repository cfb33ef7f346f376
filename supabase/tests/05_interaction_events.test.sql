-- The event log: kinds and score ranges enforced by the database, users log their own
-- events, the service role any, nobody edits them.
begin;
select plan(14);

select tests.authenticate_as_service_role();
create temporary table fixture as
select (r.interaction).id as interaction_id from public.log_coach_interaction(
  sender => 'ai_coach', user_id => 'a11ce000-0000-4000-8000-000000000001', content => '{"text": "How did the walk go?"}') r;
grant select on fixture to authenticated;

-- Owner
select tests.authenticate_as('alice@example.com');
select is((select e.score from public.log_interaction_event(kind => 'rating', interaction_id => (select interaction_id from fixture), score => 5::smallint) e),
  5::smallint, 'Alice rates an AI message she received');
select is((select e.actor_role from public.log_interaction_event(kind => 'read', interaction_id => (select interaction_id from fixture)) e),
  'authenticated', 'Alice logs a read receipt, recorded with her role');
select throws_ok($$ select public.log_interaction_event(kind => 'rating', score => 6::smallint) $$, '23514',
  'new row for relation "interaction_events" violates check constraint "interaction_events_score_range"', 'A rating above 5 is refused');
select throws_ok($$ select public.log_interaction_event(kind => 'rating') $$, '23514',
  'new row for relation "interaction_events" violates check constraint "interaction_events_rating_has_score"', 'A rating needs a score');
select throws_ok($$ select public.log_interaction_event(kind => 'liked') $$, '23514',
  'new row for relation "interaction_events" violates check constraint "interaction_events_kind_known"', 'An unknown kind is refused');
select throws_ok($$ select public.log_interaction_event(kind => 'feedback', user_id => 'b0b00000-0000-4000-8000-000000000002') $$, '42501',
  'Only the user or the service role can log events for this user', 'Alice cannot log events for Bob');
select results_eq($$ select kind from public.interaction_events where interaction_id = (select interaction_id from fixture) order by kind $$,
  $$ values ('rating'), ('read') $$, 'Alice sees her own events');
select is_empty($$ select 1 from public.interaction_events where user_id <> (select auth.uid()) $$, 'Alice sees no one else''s events');
select throws_ok($$ update public.interaction_events set score = 1 $$, '42501',
  'permission denied for table interaction_events', 'Alice cannot change a rating');

-- Stranger
select tests.authenticate_as('bob@example.com');
select is_empty($$ select 1 from public.interaction_events where user_id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'Bob cannot see Alice''s events');
select throws_ok(format($$ select public.log_interaction_event(kind => 'rating', score => 1::smallint, interaction_id => %L) $$, (select interaction_id from fixture)),
  '23503', 'interaction_id does not name an interaction of this user', 'Bob cannot rate Alice''s interaction');

-- anon
select tests.authenticate_as_anon();
select throws_ok($$ select public.log_interaction_event(kind => 'read') $$, '42501',
  'permission denied for function log_interaction_event', 'anon cannot log events');

-- Service role
select tests.authenticate_as_service_role();
select is((select e.user_id from public.log_interaction_event(kind => 'delivered', user_id => 'b0b00000-0000-4000-8000-000000000002', group_id => gen_random_uuid()) e),
  'b0b00000-0000-4000-8000-000000000002'::uuid, 'The service role logs an event for any user');
select tests.clear_authentication();
select throws_ok($$ delete from public.interaction_events $$, '42501',
  'public.interaction_events is append-only: rows cannot be updated or deleted', 'Nobody deletes events');

select * from finish();
rollback;
