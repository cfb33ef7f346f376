-- Assessment summaries as each named user: the callback write path (service role, coach_ingest)
-- validates, is idempotent by request_id and keeps one summary per (session, group, rubric
-- version); the owner reads their own, an assigned coach theirs through the audited RPCs, a
-- stranger and an unassigned coach nothing; anon and coach_analyst have no access but the
-- analysts' pseudonymous rollups. The seed holds two assessments of Alice's completed session.
begin;
select plan(64);

select tests.create_supabase_user('assess-unassigned-coach@example.com', 'coach');
create temp table audit_before as select count(*) as n from audit.phi_access_log;
grant select on audit_before to public;
create temp table stored (request_id text primary key, id uuid);
create table public.assessments_alice_ids as select id from public.assessments where user_id = 'a11ce000-0000-4000-8000-000000000001';
grant select on public.assessments_alice_ids to public;
grant select, insert on stored to public;

-- The write path -----------------------------------------------------------------------------
select tests.authenticate_as_role('coach_ingest');
select is((select (r).replayed from public.persist_assessment_summary(
    request_id => 'assess-bob-1', session_id => 'b0b00000-5e55-4000-8000-000000000002', overall_score => 3.456,
    criteria => '{"clarity": 4, "empathy": 2.5}', group_id => 'b0b00000-6a0e-4000-8000-000000000002',
    strengths => array['Listens'], improvements => array['Summarise'], model => 'gpt-4o-mini') r), false,
  'An ingest token persists an assessment of Bob''s session');
select tests.authenticate_as_service_role();
insert into stored select 'assess-bob-1', a.id from public.list_assessments(session_id => 'b0b00000-5e55-4000-8000-000000000002') a;
select is((select a.user_id from public.list_assessments(session_id => 'b0b00000-5e55-4000-8000-000000000002') a),
  'b0b00000-0000-4000-8000-000000000002'::uuid, 'It belongs to the session''s owner');
select is((select a.overall_score from public.list_assessments(session_id => 'b0b00000-5e55-4000-8000-000000000002') a),
  3.46, 'The overall score is kept to two decimals');
select is((select a.actor_role from public.list_assessments(session_id => 'b0b00000-5e55-4000-8000-000000000002') a),
  'coach_ingest', 'and records who wrote it');
select tests.authenticate_as_role('coach_ingest');
select results_eq($$ select (r).replayed, ((r).assessment).id from public.persist_assessment_summary(
    request_id => 'assess-bob-1', session_id => 'b0b00000-5e55-4000-8000-000000000002', overall_score => 3.456,
    criteria => '{"clarity": 4, "empathy": 2.5}', group_id => 'b0b00000-6a0e-4000-8000-000000000002',
    strengths => array['Listens'], improvements => array['Summarise'], model => 'gpt-4o-mini') r $$,
  $$ select true, id from stored where request_id = 'assess-bob-1' $$,
  'A replay returns the original row, marked replayed');
select throws_ok($$ select public.persist_assessment_summary(
    request_id => 'assess-bob-1', session_id => 'b0b00000-5e55-4000-8000-000000000002', overall_score => 4,
    criteria => '{"clarity": 4, "empathy": 2.5}', group_id => 'b0b00000-6a0e-4000-8000-000000000002') $$,
  'PT422', 'request_id was already used with a different payload', 'The same key with another payload is refused');
select throws_ok($$ select public.persist_assessment_summary(
    request_id => 'assess-bob-2', session_id => 'b0b00000-5e55-4000-8000-000000000002', overall_score => 4,
    criteria => '{"clarity": 4}', group_id => 'b0b00000-6a0e-4000-8000-000000000002') $$,
  'PT409', null, 'A second summary of the same session, group and rubric version is refused');
select lives_ok($$ select public.persist_assessment_summary(
    request_id => 'assess-bob-3', session_id => 'b0b00000-5e55-4000-8000-000000000002', overall_score => 4,
    criteria => '{"clarity": 4}', group_id => 'b0b00000-6a0e-4000-8000-000000000002', rubric_version => 2) $$,
  'but a new rubric version of it is a new summary');
select lives_ok($$ select public.persist_assessment_summary(
    request_id => 'assess-bob-4', session_id => 'b0b00000-5e55-4000-8000-000000000002', overall_score => 0,
    criteria => '{"clarity": 0}') $$, 'and so is an ungrouped one (scores of 0 are valid)');
select throws_ok($$ select public.persist_assessment_summary(
    request_id => 'assess-bob-5', session_id => 'b0b00000-5e55-4000-8000-000000000002', overall_score => 5,
    criteria => '{"clarity": 5}') $$, 'PT409', null, 'There is one ungrouped summary per session and rubric version');

-- Validation: each field named by its constraint.
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 5.01, criteria => '{"clarity": 4}', rubric_version => 9) $$,
  '22023', 'overall_score must be between 0 and 5', 'An overall score above 5 is refused');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => -0.5, criteria => '{"clarity": 4}', rubric_version => 9) $$,
  '22023', 'overall_score must be between 0 and 5', 'and one below 0');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"clarity": 6}', rubric_version => 9) $$,
  '22023', 'criteria criterion clarity: the score must be between 0 and 5', 'A criterion score above 5 is refused, naming it');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"clarity": "4"}', rubric_version => 9) $$,
  '22023', 'criteria criterion clarity: the score must be a number', 'A criterion score must be a number');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"Clarity!": 4}', rubric_version => 9) $$,
  '22023', 'criteria criterion Clarity!: use a lowercase identifier of at most 40 characters', 'Criterion keys are lowercase identifiers');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{}', rubric_version => 9) $$,
  '22023', 'criteria must have 1 to 20 criteria', 'At least one criterion');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '[4]', rubric_version => 9) $$,
  '22023', 'criteria must be an object of criterion: score', 'criteria is an object');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"clarity": 4}', rubric_version => 9, strengths => array_fill('x'::text, array[11])) $$,
  '22023', 'strengths must have at most 10 items', 'At most 10 strengths');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"clarity": 4}', rubric_version => 9, improvements => array[' ']) $$,
  '22023', 'improvements items must be texts of 1 to 500 characters without control characters', 'No blank improvements');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"clarity": 4}', rubric_version => 0) $$,
  '22023', 'rubric_version must be between 1 and 1000', 'rubric_version is 1..1000');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'bad key!', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"clarity": 4}') $$,
  '22023', 'request_id is required: 1 to 128 letters, digits or . _ : -', 'request_id has the idempotency key format');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => gen_random_uuid(),
    overall_score => 3, criteria => '{"clarity": 4}') $$,
  '23503', 'session_id does not name a coaching session', 'An unknown session is refused');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"clarity": 4}', rubric_version => 9, tracked_skill_id_hash => 'skill-42') $$,
  '22023', 'tracked_skill_id_hash must be 64 lowercase hex digits (the keyed hash, never a raw id)',
  'A raw tracked skill id is not a hash and is refused, without echoing the row');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'v1', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 3, criteria => '{"clarity": 4}', rubric_version => 9, model => '') $$,
  '22023', 'model must be 1 to 200 characters', 'An empty model name is refused');

-- Who may not write.
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'self', session_id => 'b0b00000-5e55-4000-8000-000000000002',
    overall_score => 5, criteria => '{"clarity": 5}', rubric_version => 7) $$,
  '42501', null, 'Bob cannot score his own session');
select throws_ok($$ insert into public.assessments (session_id, user_id, request_id, rubric_version, overall_score, criteria, actor_role)
    values ('b0b00000-5e55-4000-8000-000000000002', 'b0b00000-0000-4000-8000-000000000002', 'x', 7, 5, '{"a": 5}', 'service_role') $$,
  '42501', null, 'nor insert one directly');
select tests.authenticate_as('carol@example.com');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'coach', session_id => 'a11ce000-5e55-4000-8000-000000000001',
    overall_score => 5, criteria => '{"clarity": 5}', rubric_version => 7) $$,
  '42501', null, 'An assigned coach cannot write one either');
select tests.authenticate_as_anon();
select throws_ok($$ select public.persist_assessment_summary(request_id => 'anon', session_id => 'a11ce000-5e55-4000-8000-000000000001',
    overall_score => 5, criteria => '{"clarity": 5}') $$, '42501', null, 'anon cannot write');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select public.persist_assessment_summary(request_id => 'an', session_id => 'a11ce000-5e55-4000-8000-000000000001',
    overall_score => 5, criteria => '{"clarity": 5}') $$, '42501', null, 'nor can an analyst');
select tests.authenticate_as_service_role();
select throws_ok($$ update public.assessments set overall_score = 5 $$, '42501', null,
  'The service role cannot change a summary');
select tests.clear_authentication();
select throws_ok($$ delete from public.assessments $$, '42501', 'public.assessments is append-only: rows cannot be updated or deleted',
  'and not even the table owner deletes one: assessments are append-only');

-- Reads ---------------------------------------------------------------------------------------
select tests.authenticate_as('alice@example.com');
select results_eq($$ select rubric_version, overall_score from public.get_latest_assessment('a11ce000-5e55-4000-8000-000000000001') $$,
  $$ values (2, 3.90::numeric) $$, 'Alice gets her session''s latest summary');
select is((select count(*)::int from public.list_assessments(group_id => 'a11ce000-6a0e-4000-8000-000000000001')), 2,
  'and lists her group''s summaries');
select results_eq($$ select rubric_version from public.list_assessments(group_id => 'a11ce000-6a0e-4000-8000-000000000001', "limit" => 1) $$,
  $$ values (2) $$, 'newest first, limit bounding the page');
select results_eq($$ select rubric_version from public.list_assessments(group_id => 'a11ce000-6a0e-4000-8000-000000000001', "limit" => 1,
    before => (select id from public.list_assessments(group_id => 'a11ce000-6a0e-4000-8000-000000000001', "limit" => 1))) $$,
  $$ values (1) $$, 'and the next page follows the id of the last one read');
select is((select count(*)::int from public.assessments), 2, 'She reads her own rows directly, too');
select is_empty($$ select * from public.list_assessments(session_id => 'b0b00000-5e55-4000-8000-000000000002') $$,
  'but not Bob''s');
select throws_ok($$ select * from public.list_assessments() $$, '22023', 'Give exactly one of session_id and group_id',
  'One of session_id and group_id is required');
select throws_ok($$ select * from public.list_assessments(session_id => gen_random_uuid(), group_id => gen_random_uuid()) $$,
  '22023', 'Give exactly one of session_id and group_id', 'not both');
select throws_ok($$ select * from public.list_assessments(session_id => gen_random_uuid(), "limit" => 201) $$,
  '22023', 'limit must be between 1 and 200', 'limit is 1..200');
select throws_ok($$ select * from public.list_assessments(session_id => gen_random_uuid(), before => gen_random_uuid()) $$,
  '22023', 'before does not name an assessment', 'before must name an assessment');

select tests.authenticate_as('bob@example.com');
select is_empty($$ select * from public.list_assessments(group_id => 'a11ce000-6a0e-4000-8000-000000000001') $$,
  'Bob (a stranger) reads none of Alice''s summaries');
select is_empty($$ select * from public.get_latest_assessment('a11ce000-5e55-4000-8000-000000000001') $$, 'nor her latest');
select is((select count(*)::int from public.assessments), 3, 'He reads his own three directly');
select throws_ok(format($$ select * from public.list_assessments(session_id => 'b0b00000-5e55-4000-8000-000000000002', before => %L) $$,
    (select id from public.assessments_alice_ids limit 1)),
  '22023', 'before does not name an assessment', 'and an id of Alice''s as his cursor is unknown to him');

select tests.authenticate_as('assess-unassigned-coach@example.com');
select is_empty($$ select * from public.list_assessments(group_id => 'a11ce000-6a0e-4000-8000-000000000001') $$,
  'A coach not assigned to Alice reads none');
select tests.clear_authentication();
select is((select count(*) from audit.phi_access_log), (select n from audit_before),
  'Nobody''s own reads and no empty read are recorded as PHI access');

select tests.authenticate_as('carol@example.com');
select is((select count(*)::int from public.list_assessments(group_id => 'a11ce000-6a0e-4000-8000-000000000001')), 2,
  'Carol, Alice''s coach, lists her summaries');
select is((select count(*)::int from public.assessments), 0, 'but cannot read the table around the audit');
select tests.clear_authentication();
select results_eq($$ select actor_id, subject_user_id, resource, row_count from audit.phi_access_log order by id desc limit 1 $$,
  $$ values ('ca401000-0000-4000-8000-000000000003'::uuid, 'a11ce000-0000-4000-8000-000000000001'::uuid, 'assessments', 2) $$,
  'and her read is recorded in the PHI access log');

select tests.authenticate_as_service_role();
select is((select count(*)::int from public.list_assessments(session_id => 'b0b00000-5e55-4000-8000-000000000002')), 3,
  'The service role reads any session''s summaries');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select * from public.get_latest_assessment('a11ce000-5e55-4000-8000-000000000001') $$, '42501', null,
  'An ingest token writes summaries but reads none');
select throws_ok($$ select * from public.list_assessments(session_id => 'b0b00000-5e55-4000-8000-000000000002') $$, '42501', null,
  'not even those it wrote');
select throws_ok($$ select 1 from public.assessments $$, '42501', null, 'nor the table');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.list_assessments(session_id => 'a11ce000-5e55-4000-8000-000000000001') $$, '42501', null,
  'anon cannot list assessments');
select throws_ok($$ select * from public.get_latest_assessment('a11ce000-5e55-4000-8000-000000000001') $$, '42501', null,
  'nor read the latest');
select throws_ok($$ select 1 from public.assessments $$, '42501', null, 'nor the table');

-- Analysts -------------------------------------------------------------------------------------
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select 1 from public.assessments $$, '42501', null, 'An analyst cannot read assessments');
select throws_ok($$ select * from public.list_assessments(session_id => 'a11ce000-5e55-4000-8000-000000000001') $$,
  '42501', null, 'nor list them');
select results_eq($$ select day, rubric_version, assessments, users, overall_avg from analytics.assessment_scores('2026-03-05', '2026-03-05') $$,
  $$ values ('2026-03-05'::date, 1, 1, 1, 3.60::numeric), ('2026-03-05'::date, 2, 1, 1, 3.90::numeric) $$,
  'but gets the daily rollup per rubric version');
select results_eq($$ select sum(assessments)::int, max(users)::int from analytics.assessment_scores(current_date - 1, current_date + 1) $$,
  $$ values (3, 1) $$, 'today''s: Bob''s 3 summaries');
select results_eq($$ select criteria_avg from analytics.assessment_scores(current_date - 1, current_date + 1) where rubric_version = 1 $$,
  $$ values ('{"clarity": 2.00, "empathy": 2.50}'::jsonb) $$, 'with the mean of each criterion over the summaries that score it');
select tests.clear_authentication();
create temp table alice_key as select private.user_key('a11ce000-0000-4000-8000-000000000001') as k;
grant select on alice_key to public;
select tests.authenticate_as_role('coach_analyst');
select results_eq($$ select rubric_version, overall_score from analytics.user_assessment_scores((select k from alice_key), '2026-03-01', '2026-03-31') $$,
  $$ values (1, 3.60::numeric), (2, 3.90::numeric) $$, 'and one user''s scores under the pseudonymous key only');
select tests.authenticate_as('alice@example.com');
select throws_ok($$ select * from analytics.assessment_scores(current_date - 1, current_date) $$, '42501', null,
  'A signed-in user cannot run the analysts'' rollup');
select tests.clear_authentication();

select * from finish();
rollback;
