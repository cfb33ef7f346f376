-- The right of access (issue 16): private.export_user_data and private.record_data_export as
-- each named role: a user exports only their own data, the service role anyone's (named),
-- nobody else anything; every section holds that user's rows and no one else's; each export
-- is recorded in audit.privacy_log.
begin;
select plan(29);

create temporary table u62 as
select tests.get_user_id('alice@example.com') as alice, tests.get_user_id('bob@example.com') as bob,
       tests.get_user_id('carol@example.com') as carol;
grant select on u62 to anon, authenticated, service_role, coach_ingest, coach_analyst;

-- A read of Alice's data by her coach, so that data_access has a row.
select tests.authenticate_as('carol@example.com');
select count(*) from public.get_interaction_history(user_id => (select alice from u62), page_size => 3, purpose => 'weekly review');

-- Roles -----------------------------------------------------------------------------------

select tests.authenticate_as_anon();
select throws_ok($$ select * from private.export_user_data() $$, '42501', null, 'anon cannot export');
select throws_ok($$ select private.record_data_export() $$, '42501', null, 'nor record an export');
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select * from private.export_user_data((select alice from u62)) $$, '42501',
  'A user can export only their own data', 'A stranger cannot export Alice''s data');
select throws_ok($$ select private.record_data_export((select alice from u62)) $$, '42501',
  'A user can export only their own data', 'nor record an export of it');
select tests.authenticate_as('carol@example.com');
select throws_ok($$ select * from private.export_user_data((select alice from u62)) $$, '42501',
  'A user can export only their own data', 'Alice''s coach cannot export her data either');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select * from private.export_user_data((select alice from u62)) $$, '42501', null, 'An ingest token cannot export');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from private.export_user_data((select alice from u62)) $$, '42501', null, 'An analyst cannot export');
select tests.authenticate_as_service_role();
select throws_ok($$ select * from private.export_user_data() $$, '22023', 'user_id is required for the service role',
  'The service role names whose data');
select throws_ok($$ select * from private.export_user_data(gen_random_uuid()) $$, 'PT404', 'user_id does not name a user',
  'An unknown user is 404');

-- What Alice gets -------------------------------------------------------------------------

select tests.authenticate_as('alice@example.com');
create temporary table e62 as select * from private.export_user_data();
select tests.clear_authentication();
grant select on e62 to service_role;

select ok((select array_agg(distinct section) from e62) @> array['applications', 'assessments', 'coach_assignments', 'data_access',
             'events', 'interactions', 'notifications', 'opportunities', 'profile', 'sessions']
          and (select array_agg(distinct section) from e62) <@ array['profile', 'identities', 'coach_assignments', 'interactions', 'events',
             'sessions', 'action_plans', 'assessments', 'applications', 'opportunities', 'media', 'notifications', 'emails',
             'tenant_memberships', 'daily_metrics', 'data_access'],
  'Alice''s export has every section she has data in, and only known sections');
select is((select item -> 'account' ->> 'email' from e62 where section = 'profile'), 'alice@example.com', 'Her account''s email');
select is((select item -> 'profile' ->> 'id' from e62 where section = 'profile'), (select alice::text from u62), 'Her profile');
select is((select count(*)::int from e62 where section = 'interactions'),
  (select count(*)::int from public.coach_interactions where user_id = (select alice from u62)), 'Every interaction of hers');
select is_empty($$ select 1 from e62 where section = 'interactions' and (item ->> 'user_id')::uuid <> (select alice from u62) $$,
  'and nobody else''s');
select is((select item from e62 where section = 'interactions' and item ->> 'request_id' = 'seed-alice-1'),
  (select to_jsonb(i) from public.coach_interactions i where i.user_id = (select alice from u62) and i.request_id = 'seed-alice-1'),
  'An interaction is exported whole, content unredacted');
select is((select count(*)::int from e62 where section = 'events'),
  (select count(*)::int from public.interaction_events where user_id = (select alice from u62)), 'Every event of hers');
select is((select jsonb_array_length(item -> 'stages') from e62 where section = 'sessions' and item ->> 'id' = 'a11ce000-5e55-4000-8000-000000000001'),
  (select count(*)::int from public.stage_responses where session_id = 'a11ce000-5e55-4000-8000-000000000001'), 'Her session carries its stages');
select is((select count(*)::int from e62 where section = 'applications'),
  (select count(*)::int from public.applications where user_id = (select alice from u62)), 'Her applications');
select is((select count(*)::int from e62 where section = 'media'),
  (select count(*)::int from public.session_media where user_id = (select alice from u62)), 'Her media''s metadata');
select is((select item ->> 'as' from e62 where section = 'coach_assignments'), 'client', 'Who coaches her');
select is((select item - 'accessed_at' from e62 where section = 'data_access' and (item ->> 'accessed_at')::timestamptz = now()),
  jsonb_build_object('actor_id', (select carol from u62), 'actor_role', 'authenticated', 'resource', 'coach_interactions',
                     'row_count', 3, 'purpose', 'weekly review'),
  'Who read her data, when, what and why');
select is_empty($$ select 1 from e62 where section = 'data_access' and item ? 'row_hash' $$, 'without the log''s hash chain');

-- What the service role gets, and the record of each export ------------------------------

select tests.authenticate_as_service_role();
select is((select count(*)::int from private.export_user_data((select bob from u62)) where section = 'interactions'),
  (select count(*)::int from public.coach_interactions where user_id = (select bob from u62)), 'The service role exports Bob''s data');
select tests.authenticate_as('alice@example.com');
select is((select subject_user_id from private.record_data_export()), (select alice from u62), 'Alice records her own export');
select tests.authenticate_as_service_role();
select is((select subject_user_id from private.record_data_export((select bob from u62))), (select bob from u62), 'The service role records an export of Bob''s');
select tests.clear_authentication();
select results_eq(
  $$ select operation, subject_user_id, actor_id, actor_role from audit.privacy_log where operation = 'data_exported' and at = now() order by id $$,
  $$ values ('data_exported', (select alice from u62), (select alice from u62), 'authenticated'),
            ('data_exported', (select bob from u62), null::uuid, 'service_role') $$,
  'Each export is in the privacy log: whose, by whom');
select throws_ok($$ select * from private.export_user_data() $$, '22023', 'user_id is required for the service role',
  'The owner''s connection (no request) must name a user too');

select is((select count(*)::int from e62 where section = 'daily_metrics'),
  (select count(*)::int from analytics.coach_interaction_metrics where user_id = (select alice from u62)), 'Her daily metrics');
select ok(not exists (select 1 from information_schema.routines where routine_schema = 'public'
                       and routine_name in ('export_user_data', 'record_data_export')),
  'Neither function is in public: the Data API cannot serve an export that is not recorded');
select * from finish();
rollback;
