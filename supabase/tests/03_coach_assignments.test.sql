-- Coach assignments: visible to their coach and client, managed by the service role,
-- coaches must have the coach role, and private.is_assigned_coach honours the window.
begin;
select plan(18);

select tests.create_supabase_user('dave@example.com', 'coach');

-- Owner (client) and coach
select tests.authenticate_as('alice@example.com');
select results_eq($$ select coach_id from public.coach_assignments $$,
  $$ values ('ca401000-0000-4000-8000-000000000003'::uuid) $$, 'Alice sees her assignment to Carol');
select ok(not private.is_assigned_coach('a11ce000-0000-4000-8000-000000000001'),
  'A client is not her own coach');
select throws_ok($$ insert into public.coach_assignments (coach_id, client_id) values (tests.get_user_id('dave@example.com'), (select auth.uid())) $$,
  '42501', 'permission denied for table coach_assignments', 'A client cannot assign herself a coach');

select tests.authenticate_as('carol@example.com');
select results_eq($$ select client_id from public.coach_assignments $$,
  $$ values ('a11ce000-0000-4000-8000-000000000001'::uuid) $$, 'Carol sees her assignment to Alice');
select ok(private.is_assigned_coach('a11ce000-0000-4000-8000-000000000001'), 'Carol is Alice''s assigned coach');
select ok(not private.is_assigned_coach('b0b00000-0000-4000-8000-000000000002'), 'Carol is not Bob''s coach');
select ok(not private.is_assigned_coach('a11ce000-0000-4000-8000-000000000001', '2026-01-01 00:00:00+00'),
  'Carol was not Alice''s coach before the assignment started');
select throws_ok($$ update public.coach_assignments set ends_at = now() $$, '42501',
  'permission denied for table coach_assignments', 'A coach cannot end an assignment');

-- Stranger
select tests.authenticate_as('bob@example.com');
select is_empty($$ select 1 from public.coach_assignments $$, 'Bob sees no assignments');
select ok(not private.is_assigned_coach('a11ce000-0000-4000-8000-000000000001'), 'Bob is not Alice''s coach');

-- Unassigned coach
select tests.authenticate_as('dave@example.com');
select is_empty($$ select 1 from public.coach_assignments $$, 'An unassigned coach sees no assignments');

-- anon
select tests.authenticate_as_anon();
select throws_ok($$ select 1 from public.coach_assignments $$, '42501',
  'permission denied for table coach_assignments', 'anon cannot read assignments');

-- Service role manages assignments; invariants hold
select tests.authenticate_as_service_role();
select throws_ok($$ insert into public.coach_assignments (coach_id, client_id) values ('b0b00000-0000-4000-8000-000000000002', 'a11ce000-0000-4000-8000-000000000001') $$,
  '23514', 'Only a profile with role coach can be assigned as a coach', 'A client cannot be assigned as a coach');
select throws_ok($$ insert into public.coach_assignments (coach_id, client_id) values ('ca401000-0000-4000-8000-000000000003', 'ca401000-0000-4000-8000-000000000003') $$,
  '23514', null, 'A coach cannot be assigned to herself');
select throws_ok($$ insert into public.coach_assignments (coach_id, client_id) values ('ca401000-0000-4000-8000-000000000003', 'a11ce000-0000-4000-8000-000000000001') $$,
  '23505', null, 'A coach and client have at most one open assignment');
select throws_ok($$ insert into public.coach_assignments (coach_id, client_id, starts_at, ends_at) values (tests.get_user_id('dave@example.com'), 'b0b00000-0000-4000-8000-000000000002', '2026-03-01', '2026-02-01') $$,
  '23514', null, 'An assignment cannot end before it starts');

insert into public.coach_assignments (coach_id, client_id, starts_at, ends_at)
values (tests.get_user_id('dave@example.com'), 'b0b00000-0000-4000-8000-000000000002', now() - interval '30 days', now() - interval '1 day');
select tests.authenticate_as('dave@example.com');
select ok(not private.is_assigned_coach('b0b00000-0000-4000-8000-000000000002'),
  'An ended assignment no longer counts');
select ok(private.is_assigned_coach('b0b00000-0000-4000-8000-000000000002', now() - interval '2 days'),
  'It counts at a time inside its window');

select * from finish();
rollback;
