-- The rest of the access matrix of the interaction log: each table and view as each named
-- role that the earlier files do not already cover.
begin;
select plan(20);

select tests.create_supabase_user('dave@example.com', 'coach');
select tests.authenticate_as_service_role();
select public.log_interaction_event(kind => 'feedback', user_id => 'a11ce000-0000-4000-8000-000000000001', category => 'tone');

-- Assigned coach: reads through the audited history only
select tests.authenticate_as('carol@example.com');
select is_empty($$ select 1 from public.interaction_events where user_id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'An assigned coach does not read the client''s events directly');
select is_empty($$ select 1 from public.coach_interactions_public where user_id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'An assigned coach does not read the client''s rows through the public view');
select throws_ok($$ select public.log_interaction_event(kind => 'feedback', user_id => 'a11ce000-0000-4000-8000-000000000001') $$, '42501',
  'Only the user or the service role can log events for this user', 'An assigned coach cannot log events for the client');
select throws_ok($$ select 1 from audit.phi_access_log $$, '42501', 'permission denied for schema audit', 'A coach cannot read the PHI access log');
select throws_ok($$ select 1 from analytics.coach_interactions_redacted $$, '42501', 'permission denied for schema analytics',
  'A coach cannot read the analyst view');

-- Unassigned coach
select tests.authenticate_as('dave@example.com');
select is_empty($$ select 1 from public.interaction_events where user_id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'An unassigned coach sees no events of Alice');

-- Owner
select tests.authenticate_as('alice@example.com');
select isnt_empty($$ select 1 from public.model_prices $$, 'A signed-in user can read model prices');
select throws_ok($$ insert into public.model_prices (model_pattern, provider, input_usd_per_mtok, output_usd_per_mtok, effective_from) values ('^free', 'other', 0, 0, now()) $$,
  '42501', 'permission denied for table model_prices', 'A user cannot change model prices');
select throws_ok($$ select 1 from audit.phi_access_log $$, '42501', 'permission denied for schema audit', 'A user cannot read the PHI access log');

-- anon
select tests.authenticate_as_anon();
select throws_ok($$ select 1 from public.coach_interactions $$, '42501', 'permission denied for table coach_interactions', 'anon cannot read interactions');
select throws_ok($$ select 1 from public.interaction_events $$, '42501', 'permission denied for table interaction_events', 'anon cannot read events');
select throws_ok($$ select 1 from public.coach_interactions_public $$, '42501', 'permission denied for view coach_interactions_public', 'anon cannot read the public view');
select throws_ok($$ select 1 from public.model_prices $$, '42501', 'permission denied for table model_prices', 'anon cannot read prices');

-- coach_ingest: writes interactions and nothing else
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select 1 from public.interaction_events $$, '42501', 'permission denied for table interaction_events', 'coach_ingest cannot read events');
select throws_ok($$ select public.log_interaction_event(kind => 'read', user_id => 'a11ce000-0000-4000-8000-000000000001') $$, '42501',
  'permission denied for function log_interaction_event', 'coach_ingest cannot log events');
select throws_ok($$ select 1 from public.model_prices $$, '42501', 'permission denied for table model_prices', 'coach_ingest cannot read prices');

-- coach_analyst: the analytics schema only
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select 1 from public.interaction_events $$, '42501', 'permission denied for table interaction_events', 'An analyst cannot read raw events');
select throws_ok($$ select 1 from public.profiles $$, '42501', 'permission denied for table profiles', 'An analyst cannot read profiles');

-- Service role
select tests.authenticate_as_service_role();
select isnt_empty($$ select 1 from public.interaction_events where user_id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'The service role reads events');
select isnt_empty($$ select 1 from analytics.coach_interactions_redacted $$, 'The service role can read the analyst view');

select * from finish();
rollback;
