-- The execution engine's data: opportunities (catalogue and users' own), applications and
-- the coach state mapping, as every named user sees them.
begin;
select plan(33);

-- The seed's pursuits (Alice's game plan for npm start) are set aside: each case here builds
-- its own, at fixed clocks.
delete from public.application_state_proposals;
delete from public.check_in_tasks;
delete from public.applications;
delete from public.opportunities;

-- Alice (seed) has Carol as her coach; Bob is a stranger to her.
insert into public.opportunities (id, title, provider, amount, deadline, trust_score, application_type)
values ('0990c000-0000-4000-8000-000000000001', 'STEM Futures Scholarship', 'Futures Fund', 5000, '2031-03-01', 0.9, 'essay'),
       ('0990c000-0000-4000-8000-000000000002', 'Closed Grant', 'Old Fund', 1000, '2031-01-01', 0.5, 'form');
update public.opportunities set active = false where id = '0990c000-0000-4000-8000-000000000002';
insert into public.opportunities (id, owner_id, title, amount, deadline, trust_score)
values ('0990a000-0000-4000-8000-00000000a11c', tests.get_user_id('alice@example.com'), 'Alice''s local bursary', 800, '2031-02-15', 0.6),
       ('0990b000-0000-4000-8000-000000000b0b', tests.get_user_id('bob@example.com'), 'Bob''s side gig', 300, '2031-02-20', 0.4);
insert into public.applications (id, user_id, opportunity_id, metadata)
values ('0a990000-0000-4000-8000-00000000a11c', tests.get_user_id('alice@example.com'), '0990c000-0000-4000-8000-000000000001',
        '{"coach_stage": "review"}');

-- Owner ---------------------------------------------------------------------------------
select tests.authenticate_as('alice@example.com');
select results_eq($$ select title from public.opportunities order by title $$,
  $$ values ('Alice''s local bursary'), ('STEM Futures Scholarship') $$,
  'Alice sees the active catalogue and her own opportunities, not inactive ones or Bob''s');
select results_eq($$ select id, status from public.applications $$,
  $$ values ('0a990000-0000-4000-8000-00000000a11c'::uuid, 'draft'::public.application_status) $$,
  'Alice sees her application');
select throws_ok($$ insert into public.opportunities (title) values ('Mine') $$, '42501',
  'permission denied for table opportunities', 'Alice cannot write opportunities directly');
select throws_ok($$ update public.applications set status = 'awarded', confirmed_at = now() $$, '42501',
  'permission denied for table applications', 'Alice cannot move or confirm her application directly (the RPCs do)');
select throws_ok($$ insert into public.applications (user_id, opportunity_id) values (auth.uid(), '0990c000-0000-4000-8000-000000000001') $$,
  '42501', 'permission denied for table applications', 'Alice cannot insert applications directly');

-- Stranger -------------------------------------------------------------------------------
select tests.authenticate_as('bob@example.com');
select results_eq($$ select title from public.opportunities order by title $$,
  $$ values ('Bob''s side gig'), ('STEM Futures Scholarship') $$,
  'Bob sees the catalogue and his own opportunity, not Alice''s');
select is_empty($$ select 1 from public.applications $$, 'Bob sees none of Alice''s applications');
select is_empty($$ select 1 from public.opportunities where id = '0990a000-0000-4000-8000-00000000a11c' $$,
  'Bob cannot read Alice''s own opportunity by its id');

-- Assigned coach -------------------------------------------------------------------------
select tests.authenticate_as('carol@example.com');
select is_empty($$ select 1 from public.applications $$,
  'Carol, Alice''s coach, does not read Alice''s applications directly (the audited game plan will)');
select is_empty($$ select 1 from public.opportunities where owner_id is not null $$,
  'Carol does not see her client''s own opportunities');
select throws_ok($$ delete from public.applications $$, '42501', 'permission denied for table applications',
  'Carol cannot delete applications');

-- anon, coach_ingest, coach_analyst ------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok($$ select 1 from public.opportunities $$, '42501', 'permission denied for table opportunities', 'anon cannot read opportunities');
select throws_ok($$ select 1 from public.applications $$, '42501', 'permission denied for table applications', 'anon cannot read applications');
select throws_ok($$ select public.coach_state_to_db('Won') $$, '42501', 'permission denied for function coach_state_to_db',
  'anon cannot call the mapping');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select 1 from public.applications $$, '42501', 'permission denied for table applications', 'coach_ingest cannot read applications');
select throws_ok($$ select 1 from public.opportunities $$, '42501', 'permission denied for table opportunities', 'coach_ingest cannot read opportunities');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select 1 from public.applications $$, '42501', 'permission denied for table applications', 'coach_analyst cannot read applications');

-- Service role ---------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select lives_ok($$ insert into public.opportunities (title, amount, deadline, trust_score, application_type)
    values ('Catalogue entry', 2500, '2031-04-01', 0.7, 'form') $$, 'The service role writes the catalogue');
select is((select count(*)::int from public.applications), 1, 'The service role reads every application');
select lives_ok($$ insert into public.applications (user_id, opportunity_id, status, submitted_at)
    values (tests.get_user_id('bob@example.com'), '0990c000-0000-4000-8000-000000000001', 'submitted', '2031-02-01') $$,
  'The service role writes applications');

-- Constraints ----------------------------------------------------------------------------
select throws_ok($$ insert into public.opportunities (title, trust_score) values ('x', 1.5) $$, '23514',
  'new row for relation "opportunities" violates check constraint "opportunities_trust_score_range"', 'A trust score above 1 is refused');
select throws_ok($$ insert into public.opportunities (title, application_type) values ('x', 'video') $$, '23514',
  'new row for relation "opportunities" violates check constraint "opportunities_application_type_known"', 'An unknown application type is refused');
select throws_ok($$ insert into public.opportunities (title, amount) values ('x', -1) $$, '23514',
  'new row for relation "opportunities" violates check constraint "opportunities_amount_nonnegative"', 'A negative amount is refused');
select throws_ok($$ insert into public.applications (user_id, opportunity_id) values (tests.get_user_id('alice@example.com'), '0990c000-0000-4000-8000-000000000001') $$,
  '23505', 'duplicate key value violates unique constraint "applications_user_opportunity_key"', 'One application per user and opportunity');
select throws_ok($$ update public.applications set confirmed_at = now() where id = '0a990000-0000-4000-8000-00000000a11c' $$, '23514',
  'new row for relation "applications" violates check constraint "applications_confirmed_at_only_awarded"',
  'Only an awarded application can be confirmed');
select throws_ok($$ select public.coach_state_to_db('won') $$, '22023', 'Unknown coach state: won', 'Coach states are case-sensitive names');

-- The mapping ----------------------------------------------------------------------------
select tests.authenticate_as('alice@example.com');
select results_eq($$ select s, (public.coach_state_to_db(s)).status from unnest(array['Tracked', 'Drafting', 'Review', 'Submitted', 'Outcome Pending', 'Won', 'Lost']) s $$,
  $$ values ('Tracked', 'draft'::public.application_status), ('Drafting', 'draft'), ('Review', 'draft'), ('Submitted', 'submitted'),
            ('Outcome Pending', 'submitted'), ('Won', 'awarded'), ('Lost', 'rejected') $$,
  'Each coach state maps to the seed''s DB status');
select is((select count(*)::int from unnest(array['Tracked', 'Drafting', 'Review', 'Submitted', 'Outcome Pending', 'Won', 'Lost']) s
           where public.db_to_coach_state(public.coach_state_to_db(s)) = s), 7,
  'db_to_coach_state(coach_state_to_db(s)) = s for all seven');
select is((select public.db_to_coach_state(status, metadata) from public.applications), 'Review',
  'A stored application reads as its coach state');
select is(public.db_to_coach_state('draft', '{"coach_stage": "outcome_pending"}'), 'Tracked',
  'A coach stage that does not belong to the status reads as the status''s first state');
select is(public.db_to_coach_state('submitted', '{"coach_stage": ["odd"]}'), 'Submitted', 'Any stored stage value reads without error');
select is(public.db_to_coach_state('rejected', '{"coach_stage": "review"}'), 'Lost', 'Won and Lost follow the status alone');
select throws_ok($$ select public.coach_state_to_db(null) $$, '22023', 'Unknown coach state: null', 'A null state is refused');

select * from finish();
rollback;
