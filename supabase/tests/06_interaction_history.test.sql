-- Reading interactions: the audited history as named users, keyset pagination, redaction
-- on request, and the tamper-evident PHI access log.
begin;
select plan(24);

select tests.create_supabase_user('dave@example.com', 'coach');

select tests.authenticate_as_service_role();
create temporary table fixture as select public.log_coach_interaction(sender => 'user', user_id => 'a11ce000-0000-4000-8000-000000000001',
  content => jsonb_build_object('text', 'message ' || n || ', call me at 555-123-4567'), request_id => 'h-' || n,
  created_at => '2030-06-01 09:00:00+00'::timestamptz + n * interval '1 minute')
from generate_series(1, 5) n;

-- Owner
select tests.authenticate_as('alice@example.com');
select results_eq($$ select request_id from public.get_interaction_history(page_size => 2) $$,
  $$ values ('h-5'), ('h-4') $$, 'Alice reads her newest two interactions');
select results_eq(
  $$ select request_id from public.get_interaction_history(page_size => 2, before => (select id from public.coach_interactions where request_id = 'h-4')) $$,
  $$ values ('h-3'), ('h-2') $$, 'before= gives the next page');
select is((select content ->> 'text' from public.get_interaction_history(page_size => 1, redacted => true)),
  'message 5, call me at [PHONE]', 'redacted => true redacts the content');
select throws_ok($$ select * from public.get_interaction_history(page_size => 0) $$, '22023',
  'page_size must be between 1 and 100', 'page_size below 1 is refused');
select throws_ok($$ select * from public.get_interaction_history(page_size => 101) $$, '22023',
  'page_size must be between 1 and 100', 'page_size above 100 is refused');
select throws_ok($$ select * from public.get_interaction_history(user_id => 'b0b00000-0000-4000-8000-000000000002') $$, '42501',
  'Only the user, their assigned coach or the service role can read these interactions', 'Alice cannot read Bob''s history');
select throws_ok($$ select * from public.get_interaction_history(before => gen_random_uuid()) $$, '22023',
  'before does not name an interaction of this user', 'An unknown cursor is refused');

-- Assigned coach
select tests.authenticate_as('carol@example.com');
select is((select count(*)::int from public.get_interaction_history(user_id => 'a11ce000-0000-4000-8000-000000000001', page_size => 5)), 5,
  'Carol reads her client Alice''s history');
select throws_ok($$ select * from public.get_interaction_history(user_id => 'b0b00000-0000-4000-8000-000000000002') $$, '42501',
  'Only the user, their assigned coach or the service role can read these interactions', 'Carol cannot read Bob''s history');

-- Unassigned coach, stranger, anon, analyst
select tests.authenticate_as('dave@example.com');
select throws_ok($$ select * from public.get_interaction_history(user_id => 'a11ce000-0000-4000-8000-000000000001') $$, '42501',
  'Only the user, their assigned coach or the service role can read these interactions', 'An unassigned coach cannot read Alice''s history');
select tests.authenticate_as('bob@example.com');
select is_empty($$ select * from public.get_interaction_history() where user_id <> (select auth.uid()) $$,
  'Bob''s own history holds only his interactions');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.get_interaction_history() $$, '42501',
  'permission denied for function get_interaction_history', 'anon cannot read history');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from public.get_interaction_history(user_id => 'a11ce000-0000-4000-8000-000000000001') $$, '42501',
  'permission denied for function get_interaction_history', 'coach_analyst cannot read raw history');
select throws_ok($$ select * from audit.phi_access_log $$, '42501',
  'permission denied for schema audit', 'coach_analyst cannot read the PHI access log');

-- The audit trail
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.get_interaction_history(user_id => 'a11ce000-0000-4000-8000-000000000001', page_size => 5, purpose => 'compliance review')), 5,
  'The service role reads anyone''s history');
select results_eq(
  $$ select actor_role, actor_id, resource, row_count, purpose from audit.phi_access_log
     where subject_user_id = 'a11ce000-0000-4000-8000-000000000001' and accessed_at = now() order by id $$,
  $$ values ('authenticated', 'a11ce000-0000-4000-8000-000000000001'::uuid, 'coach_interactions', 2, 'coaching'),
            ('authenticated', 'a11ce000-0000-4000-8000-000000000001'::uuid, 'coach_interactions', 2, 'coaching'),
            ('authenticated', 'a11ce000-0000-4000-8000-000000000001'::uuid, 'coach_interactions:redacted', 1, 'coaching'),
            ('authenticated', 'ca401000-0000-4000-8000-000000000003'::uuid, 'coach_interactions', 5, 'coaching'),
            ('service_role', null::uuid, 'coach_interactions', 5, 'compliance review') $$,
  'Every successful read is in the PHI access log: who, whose, what, how many, why');
select is((select first_broken_id from audit.verify_phi_access_log()), null, 'The hash chain verifies');
select ok((select checked from audit.verify_phi_access_log()) >= 5, 'verify_phi_access_log checks every row');
select throws_ok($$ update audit.phi_access_log set purpose = 'x' $$, '42501', 'permission denied for table phi_access_log',
  'The service role cannot edit the log');
select throws_ok($$ delete from audit.phi_access_log $$, '42501', 'permission denied for table phi_access_log',
  'The service role cannot delete from the log');

select tests.clear_authentication();
select throws_ok($$ update audit.phi_access_log set purpose = 'x' $$, '42501',
  'audit.phi_access_log is append-only: rows cannot be updated or deleted', 'The table owner cannot edit the log');
select throws_ok($$ truncate audit.phi_access_log $$, '42501',
  'audit.phi_access_log is append-only: rows cannot be updated or deleted', 'The table owner cannot truncate the log');

-- Tampering shows: with the guard trigger disabled (as the table owner could), a changed
-- row breaks the chain at that row.
alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete;
update audit.phi_access_log set row_count = 99
where id = (select min(id) from audit.phi_access_log where subject_user_id = 'a11ce000-0000-4000-8000-000000000001');
alter table audit.phi_access_log enable trigger phi_access_log_refuse_update_delete;
select is((select first_broken_id from audit.verify_phi_access_log()),
  (select min(id) from audit.phi_access_log where subject_user_id = 'a11ce000-0000-4000-8000-000000000001'),
  'A tampered row is reported by verify_phi_access_log');
select is((select row_count from audit.phi_access_log order by id desc limit 1), 5, 'Later rows are untouched');

select * from finish();
rollback;
