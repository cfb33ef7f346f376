-- Tracking and moving applications, and the human in the loop, as each named user.
begin;
select plan(46);

-- The seed's pursuits (Alice's game plan for npm start) are set aside: each case here builds
-- its own, at fixed clocks.
delete from public.application_state_proposals;
delete from public.check_in_tasks;
delete from public.applications;
delete from public.opportunities;

insert into public.opportunities (id, title, amount, deadline, trust_score, application_type)
values ('0990c000-0000-4000-8000-0000000000d1', 'Moves Scholarship', 4000, '2031-03-01', 0.8, 'essay');

-- Tracking --------------------------------------------------------------------------------
select tests.authenticate_as('alice@example.com');
create temporary table app on commit drop as
select * from public.track_opportunity(opportunity_id => '0990c000-0000-4000-8000-0000000000d1');
grant select on app to authenticated, service_role;
select is((select public.db_to_coach_state(status, metadata) from app), 'Tracked', 'Tracking a catalogue opportunity starts an application as Tracked');
select throws_ok($$ select public.track_opportunity(opportunity_id => '0990c000-0000-4000-8000-0000000000d1') $$, 'PT409',
  'You already track this opportunity', 'Tracking it again is PT409');
create temporary table own_app on commit drop as
select * from public.track_opportunity(title => 'Night-shift bursary', amount => 600, deadline => '2031-02-01');
grant select on own_app to authenticated, service_role;
select is((select o.owner_id from own_app t join public.opportunities o on o.id = t.opportunity_id), auth.uid(),
  'Tracking with a title creates an opportunity of Alice''s own');
select throws_ok($$ select public.track_opportunity(title => 'Bad', trust_score => 1.5) $$, '22023',
  'trust_score must be between 0 and 1', 'An out-of-range trust score is refused, naming the field');
select throws_ok($$ select public.track_opportunity(title => 'Bad', amount => -1) $$, '22023',
  'amount must be between 0 and 9999999999.99 (USD)', 'A negative amount is refused, naming the field');
select throws_ok($$ select public.track_opportunity(title => 'Bad', application_type => 'video') $$, '22023',
  'application_type must be essay, form or mixed', 'An unknown application type is refused, naming the field');
select throws_ok($$ select public.track_opportunity(title => 'Bad', url => 'javascript:alert(1)') $$, '22023',
  'url must be an http(s) URL of at most 2000 characters', 'A URL that is not http(s) is refused, naming the field');
select throws_ok($$ select public.track_opportunity(title => '  ') $$, '22023',
  'title must be 1 to 200 characters', 'A blank title is refused, naming the field');
select is((select count(*)::int from public.opportunities where title in ('Bad', '  ')), 0, 'and none of them wrote anything');
select throws_ok($$ select public.track_opportunity() $$, '22023', 'An opportunity of your own needs a title',
  'Tracking neither a catalogue opportunity nor a titled one is refused');
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.track_opportunity(opportunity_id => (select opportunity_id from own_app)) $$,
  'PT404', 'Opportunity not found', 'Bob cannot track Alice''s own opportunity (it does not exist for him)');

-- Moves by the owner ----------------------------------------------------------------------
select tests.authenticate_as('alice@example.com');
select is((select public.db_to_coach_state(status, metadata) from public.move_application((select id from app), 'Review', '2031-01-01 10:00+00')),
  'Review', 'Alice moves her application to Review');
select is((select last_progress_at from public.applications where id = (select id from app)), '2031-01-01 10:00+00'::timestamptz,
  'Every move stamps last_progress_at');
select throws_ok($$ select public.move_application((select id from app), 'Review') $$, '22023', 'The application is already Review',
  'Moving to the same state is refused');
select throws_ok($$ select public.move_application((select id from app), 'Won') $$, '22023', 'An application cannot move from Review to Won',
  'Review cannot jump to Won');
select throws_ok($$ select public.move_application((select id from app), 'Winning') $$, '22023', 'Unknown coach state: Winning',
  'An unknown state is refused');
select is((select submitted_at from public.move_application((select id from app), 'Submitted', '2031-01-05 09:00+00')),
  '2031-01-05 09:00+00'::timestamptz, 'Submitting stamps submitted_at');
select results_eq($$ select due_at, status from public.check_in_tasks where application_id = (select id from app) $$,
  $$ values ('2031-01-26 09:00+00'::timestamptz, 'pending'::public.check_in_status) $$,
  'Submitting creates the check-in due 21 days later, in the same transaction');
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.move_application((select id from app), 'Lost') $$, 'PT404', 'Application not found',
  'Bob cannot move Alice''s application');
select tests.authenticate_as('carol@example.com');
select throws_ok($$ select public.move_application((select id from app), 'Won') $$, 'PT404', 'Application not found',
  'Carol, her coach, cannot move it either: coaches propose');

-- Proposals: the human in the loop --------------------------------------------------------
create temporary table proposal on commit drop as
select * from public.propose_application_state((select id from app), 'Won', at => '2031-02-01 12:00+00');
grant select on proposal to authenticated, service_role;
select results_eq($$ select proposed_state, status, expires_at, proposed_by_role from proposal $$,
  $$ values ('Won', 'pending'::public.proposal_status, '2031-02-08 12:00+00'::timestamptz, 'authenticated') $$,
  'Carol proposes Won; it expires after 7 days');
select is((select status from public.applications where id = (select id from app)), null::public.application_status,
  'Carol still cannot read the application itself');
select throws_ok($$ select public.respond_to_proposal((select id from proposal), true) $$, 'PT404', 'Proposal not found',
  'Carol cannot confirm her own proposal');
select throws_ok($$ select public.propose_application_state((select id from app), 'Won') $$, 'PT409',
  'A proposal for this application is already pending', 'A second pending proposal is refused');
select throws_ok($$ select public.propose_application_state((select id from app), 'Review') $$, '22023',
  'Only Submitted and Won are proposed; the owner moves an application to Review', 'Coaches propose only Submitted and Won');
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.propose_application_state((select id from app), 'Won') $$, 'PT404', 'Application not found',
  'A stranger cannot propose');
select is_empty($$ select 1 from public.application_state_proposals $$, 'A stranger sees no proposals');
select throws_ok($$ select public.respond_to_proposal((select id from proposal), true) $$, 'PT404', 'Proposal not found',
  'A stranger cannot confirm');
select tests.authenticate_as('alice@example.com');
select is((select count(*)::int from public.application_state_proposals), 1, 'Alice sees the proposal');
select throws_ok($$ select public.respond_to_proposal((select id from proposal), true, '2031-02-09 00:00+00') $$, 'PT409',
  'This proposal expired at 2031-02-08T12:00:00Z', 'An expired proposal cannot be confirmed');
select results_eq($$ select status from public.respond_to_proposal((select id from proposal), true, '2031-02-02 08:00+00') $$,
  $$ values ('confirmed'::public.proposal_status) $$, 'Alice confirms it in time');
select results_eq($$ select status, confirmed_at from public.applications where id = (select id from app) $$,
  $$ values ('awarded'::public.application_status, '2031-02-02 08:00+00'::timestamptz) $$,
  'The application is Won, confirmed when Alice confirmed');
select throws_ok($$ select public.respond_to_proposal((select id from proposal), false) $$, 'PT409', 'This proposal was already confirmed',
  'An answered proposal cannot be answered again');
select throws_ok($$ select public.move_application((select id from app), 'Drafting') $$, '22023', 'An application cannot move from Won to Drafting',
  'Nothing leaves Won');
select throws_ok($$ update public.applications set confirmed_at = now() $$, '42501', 'permission denied for table applications',
  'Nobody forges confirmed_at directly');

-- The service role (an AI coach), Lost, declining ----------------------------------------
select tests.authenticate_as('alice@example.com');
create temporary table app2 on commit drop as
select * from public.track_opportunity(title => 'Second try', deadline => '2031-05-01');
grant select on app2 to authenticated, service_role;
select public.move_application((select id from app2), 'Submitted', '2031-03-01');
select tests.authenticate_as_service_role();
create temporary table proposal2 on commit drop as
select * from public.propose_application_state((select id from app2), 'Won', interval '1 day', '2031-03-10');
grant select on proposal2 to authenticated, service_role;
select is((select proposed_by_role from proposal2), 'service_role', 'An AI coach (the service role) proposes Won');
select tests.authenticate_as('alice@example.com');
select results_eq($$ select status from public.respond_to_proposal((select id from proposal2), false, '2031-03-10 06:00+00') $$,
  $$ values ('declined'::public.proposal_status) $$, 'Alice declines it');
select is((select status from public.applications where id = (select id from app2)), 'submitted'::public.application_status,
  'A declined proposal changes nothing');
select tests.authenticate_as_service_role();
select is(public.propose_application_state((select id from app2), 'Lost', at => '2031-03-20'), null,
  'Lost needs no confirmation: proposing it applies it');
select is((select public.db_to_coach_state(status, metadata) from public.applications where id = (select id from app2)), 'Lost',
  'The application is Lost');
select throws_ok($$ select public.propose_application_state((select id from app2), 'Won') $$, '22023',
  'An application cannot move from Lost to Won', 'Nothing follows Lost');
select tests.authenticate_as('carol@example.com');
select is((select count(*)::int from public.application_state_proposals), 1, 'Carol sees the proposal she made, and only that');
select tests.authenticate_as_anon();
select throws_ok($$ select 1 from public.application_state_proposals $$, '42501',
  'permission denied for table application_state_proposals', 'anon cannot read proposals');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select 1 from public.application_state_proposals $$, '42501',
  'permission denied for table application_state_proposals', 'coach_analyst cannot read proposals');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select 1 from public.application_state_proposals $$, '42501',
  'permission denied for table application_state_proposals', 'coach_ingest cannot read proposals');
select throws_ok($$ select public.propose_application_state(gen_random_uuid(), 'Won') $$, '42501',
  'permission denied for function propose_application_state', 'coach_ingest cannot propose');

select * from finish();
rollback;
