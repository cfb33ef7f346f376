-- What coaching-ai and business-data need from the database, as each named user: the
-- monthly AI budget (set by the service role only), tenant_ai_calls (owners and admins read
-- their tenant's, nobody else's), the spend sum, analysts' spend against budget, the tenant
-- context (members read, as the caller: a coach too, a stranger gets null; named ids are in
-- it beyond its limits), the business-data cache (members only; a write clears it; a
-- document computed before a write is never stored), and the write RPCs (owners, admins and
-- members; a coach 42501; a stranger PT404). The file makes its own tenants and users.
begin;
select plan(56);

select tests.create_supabase_user('ai-owner@example.com');
select tests.create_supabase_user('ai-admin@example.com');
select tests.create_supabase_user('ai-member@example.com');
select tests.create_supabase_user('ai-coach@example.com');
select tests.create_supabase_user('ai-stranger@example.com');
-- Tenant A with one of each role; tenant B is the stranger's.
insert into public.tenants (id, name) values ('52a00000-0000-4000-8000-00000000000a', 'Tenant A'), ('52a00000-0000-4000-8000-00000000000b', 'Tenant B');
insert into public.tenant_members (tenant_id, user_id, role) values
  ('52a00000-0000-4000-8000-00000000000a', tests.get_user_id('ai-owner@example.com'), 'owner'),
  ('52a00000-0000-4000-8000-00000000000a', tests.get_user_id('ai-admin@example.com'), 'admin'),
  ('52a00000-0000-4000-8000-00000000000a', tests.get_user_id('ai-member@example.com'), 'member'),
  ('52a00000-0000-4000-8000-00000000000a', tests.get_user_id('ai-coach@example.com'), 'coach'),
  ('52a00000-0000-4000-8000-00000000000b', tests.get_user_id('ai-stranger@example.com'), 'owner');
insert into public.goals (id, tenant_id, title, created_at) values
  ('52a00000-60a1-4000-8000-000000000001', '52a00000-0000-4000-8000-00000000000a', 'The oldest goal', now() - interval '1 year');
insert into public.goals (tenant_id, title) select '52a00000-0000-4000-8000-00000000000a', 'Goal ' || k from generate_series(1, 100) k;
insert into public.actions (id, tenant_id, title) values ('52a00000-ac71-4000-8000-000000000001', '52a00000-0000-4000-8000-00000000000a', 'An action');
insert into public.business_issues (id, tenant_id, title) values ('52a00000-155e-4000-8000-000000000001', '52a00000-0000-4000-8000-00000000000a', 'An issue');
-- Calls this month and last month, one of the other tenant.
insert into public.tenant_ai_calls (tenant_id, route, model, status, cost_usd, created_at) values
  ('52a00000-0000-4000-8000-00000000000a', 'coaching/alignment-check', 'gpt-4o-mini', 'ok', 0.25, '2026-11-20 10:00+00'),
  ('52a00000-0000-4000-8000-00000000000a', 'operations/action-suggestions', 'gpt-4o-mini', 'error', 0, '2026-11-21 10:00+00'),
  ('52a00000-0000-4000-8000-00000000000a', 'coaching/alignment-check', 'gpt-4o-mini', 'ok', 3, '2026-10-31 23:59+00'),
  ('52a00000-0000-4000-8000-00000000000a', 'coaching/alignment-check', 'gpt-4o-mini', 'ok', 5, '2026-12-01 00:00+00'),
  ('52a00000-0000-4000-8000-00000000000b', 'coaching/alignment-check', 'gpt-4o-mini', 'ok', 7, '2026-11-20 10:00+00');

-- The budget.
select is((select monthly_ai_budget_usd from public.tenants where id = '52a00000-0000-4000-8000-00000000000a'), 25.00::numeric(12, 2),
  'A tenant''s monthly AI budget defaults to 25 USD');
select is((select spent_usd from private.tenant_ai_spend('52a00000-0000-4000-8000-00000000000a', '2026-11-24 12:00+00')), 0.25::numeric,
  'The spend sums the tenant''s calls of the UTC month only (not the last minute of October, nor December)');
select is((select calls from private.tenant_ai_spend('52a00000-0000-4000-8000-00000000000a', '2026-11-24 12:00+00')), 2, 'and counts them');
select is((select month_start from private.tenant_ai_spend('52a00000-0000-4000-8000-00000000000a', '2026-11-30 23:30-05')),
  '2026-12-01 00:00+00'::timestamptz, 'The month is UTC''s');
select is_empty($$ select * from private.tenant_ai_spend(gen_random_uuid()) $$, 'An unknown tenant has no spend row');

select tests.authenticate_as('ai-owner@example.com');
select throws_ok($$ update public.tenants set monthly_ai_budget_usd = 1000 where id = '52a00000-0000-4000-8000-00000000000a' $$,
  '42501', null, 'The owner cannot raise the budget');
select throws_ok($$ select public.set_tenant_ai_budget('52a00000-0000-4000-8000-00000000000a', 1000) $$,
  '42501', null, 'nor call set_tenant_ai_budget');
select throws_ok($$ select * from private.tenant_ai_spend('52a00000-0000-4000-8000-00000000000a') $$,
  '42501', null, 'nor read the spend function');
select lives_ok($$ update public.tenants set name = 'Tenant A renamed' where id = '52a00000-0000-4000-8000-00000000000a' $$,
  'but still renames the tenant');
select is((select count(*)::int from public.tenant_ai_calls), 4, 'The owner reads her tenant''s AI calls, not another''s');
select throws_ok($$ insert into public.tenant_ai_calls (tenant_id, route, model, status) values ('52a00000-0000-4000-8000-00000000000a', 'a/b', 'm', 'ok') $$,
  '42501', null, 'and cannot add one');
select tests.authenticate_as('ai-admin@example.com');
select is((select count(*)::int from public.tenant_ai_calls), 4, 'An admin reads them too');
select tests.authenticate_as('ai-member@example.com');
select is((select count(*)::int from public.tenant_ai_calls), 0, 'A member does not');
select tests.authenticate_as('ai-coach@example.com');
select is((select count(*)::int from public.tenant_ai_calls), 0, 'nor the coach');
select tests.authenticate_as('ai-stranger@example.com');
select is((select count(*)::int from public.tenant_ai_calls), 1, 'A stranger reads only his own tenant''s');
select tests.authenticate_as_anon();
select throws_ok($$ select count(*) from public.tenant_ai_calls $$, '42501', null, 'Anon reads nothing');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select count(*) from public.tenant_ai_calls $$, '42501', null, 'nor an ingest token');

select tests.authenticate_as_service_role();
select throws_ok($$ select public.set_tenant_ai_budget('52a00000-0000-4000-8000-00000000000a', -1) $$,
  '22023', 'monthly_budget_usd must be between 0 and 1000000', 'A negative budget is refused');
select throws_ok($$ select public.set_tenant_ai_budget(gen_random_uuid(), 10) $$, 'PT404', 'Tenant not found', 'An unknown tenant is 404');
select is((public.set_tenant_ai_budget('52a00000-0000-4000-8000-00000000000a', 40)).monthly_ai_budget_usd, 40.00::numeric(12, 2),
  'The service role sets the budget');

-- Analysts: spend against budget per tenant and month.
select tests.authenticate_as_role('coach_analyst');
select results_eq(
  $$ select spent_usd, share_of_budget, calls, errors, by_route from analytics.tenant_ai_spend('2026-11-01', '2026-11-30')
     where tenant_id = '52a00000-0000-4000-8000-00000000000a' $$,
  $$ values (0.25::numeric, 0.0063::numeric, 2, 1, '{"coaching/alignment-check": 1, "operations/action-suggestions": 1}'::jsonb) $$,
  'An analyst sees a tenant''s spend against its budget in a month, with failed calls and calls per route');
select is((select count(*)::int from analytics.tenant_ai_spend('2026-10-01', '2026-12-31') where tenant_id = '52a00000-0000-4000-8000-00000000000a'), 3,
  'one row per month');
select tests.authenticate_as('ai-owner@example.com');
select throws_ok($$ select * from analytics.tenant_ai_spend('2026-11-01', '2026-11-30') $$, '42501', null, 'A user cannot call the analysts'' function');

-- The tenant context.
select is(public.get_tenant_context('52a00000-0000-4000-8000-00000000000a') ->> 'role', 'owner', 'The owner reads the tenant''s context');
select is(jsonb_array_length(public.get_tenant_context('52a00000-0000-4000-8000-00000000000a') -> 'goals'), 100, 'with at most 100 goals');
select ok(not (public.get_tenant_context('52a00000-0000-4000-8000-00000000000a') -> 'goals') @> '[{"title": "The oldest goal"}]',
  'the newest open ones');
select ok((public.get_tenant_context('52a00000-0000-4000-8000-00000000000a', goal_ids => array['52a00000-60a1-4000-8000-000000000001'::uuid]) -> 'goals')
  @> '[{"title": "The oldest goal"}]', 'and the goals it is asked for on top');
select is(public.get_tenant_context('52a00000-0000-4000-8000-00000000000a') ->> 'owner_id', tests.get_user_id('ai-owner@example.com')::text, 'and its owner');
select tests.authenticate_as('ai-coach@example.com');
select is(public.get_tenant_context('52a00000-0000-4000-8000-00000000000a') ->> 'role', 'coach', 'The coach reads it too, as coach');
select tests.authenticate_as('ai-stranger@example.com');
select is(public.get_tenant_context('52a00000-0000-4000-8000-00000000000a'), null, 'A stranger gets null, like an unknown tenant');
select is(public.get_tenant_context('52a00000-0000-4000-8000-00000000000b', goal_ids => array['52a00000-60a1-4000-8000-000000000001'::uuid]) -> 'goals',
  '[]'::jsonb, 'and naming another tenant''s goal in his own tenant''s context shows nothing');
select tests.authenticate_as_service_role();
select is(public.get_tenant_context('52a00000-0000-4000-8000-00000000000a') ->> 'role', 'service_role', 'The service role reads any tenant''s');
select tests.authenticate_as_anon();
select throws_ok($$ select public.get_tenant_context('52a00000-0000-4000-8000-00000000000a') $$, '42501', null, 'Anon cannot call it');

-- The business-data cache (the writes above bumped the version: start again from none).
select tests.clear_authentication();
delete from private.business_data_cache where tenant_id = '52a00000-0000-4000-8000-00000000000a';
select tests.authenticate_as('ai-member@example.com');
select results_eq($$ select member_role, version, payload from private.business_data_cached('52a00000-0000-4000-8000-00000000000a') $$,
  $$ values ('member'::text, 0::bigint, null::jsonb) $$, 'A member finds no cached document at first');
select ok(private.business_data_store('52a00000-0000-4000-8000-00000000000a', 0, '{"doc": 1}'), 'stores one');
select is((select payload from private.business_data_cached('52a00000-0000-4000-8000-00000000000a')), '{"doc": 1}'::jsonb, 'and reads it back');
select is((select payload from private.business_data_cached('52a00000-0000-4000-8000-00000000000a', now() + interval '5 minutes')), null::jsonb,
  'for five minutes');
select lives_ok($$ select public.set_action_status('52a00000-ac71-4000-8000-000000000001', 'blocked') $$, 'A write to an action');
select results_eq($$ select version, payload from private.business_data_cached('52a00000-0000-4000-8000-00000000000a') $$,
  $$ values (1::bigint, null::jsonb) $$, 'bumps the version and clears the document');
select ok(not private.business_data_store('52a00000-0000-4000-8000-00000000000a', 0, '{"doc": "stale"}'),
  'A document computed at the old version is not stored');
select tests.authenticate_as('ai-coach@example.com');
select is((select member_role from private.business_data_cached('52a00000-0000-4000-8000-00000000000a')), 'coach', 'The coach reads the cache');
select tests.authenticate_as('ai-stranger@example.com');
select is_empty($$ select * from private.business_data_cached('52a00000-0000-4000-8000-00000000000a') $$, 'A stranger gets no row');
select ok(not private.business_data_store('52a00000-0000-4000-8000-00000000000a', 1, '{"doc": "stranger"}'), 'and cannot fill it');
select tests.authenticate_as_anon();
select throws_ok($$ select * from private.business_data_cached('52a00000-0000-4000-8000-00000000000a') $$, '42501', null, 'Anon cannot read it');
select tests.clear_authentication();
select is((select version from private.business_data_cache where tenant_id = '52a00000-0000-4000-8000-00000000000a'), 1::bigint,
  'Nothing the stranger did changed it');
insert into public.business_figures (tenant_id, month, revenue_usd) values ('52a00000-0000-4000-8000-00000000000a', '2019-01-01', 1);
delete from public.tenant_members where tenant_id = '52a00000-0000-4000-8000-00000000000a' and user_id = tests.get_user_id('ai-member@example.com');
select is((select version from private.business_data_cache where tenant_id = '52a00000-0000-4000-8000-00000000000a'), 3::bigint,
  'Figures and members bump it too');

-- The write RPCs.
select tests.authenticate_as('ai-admin@example.com');
select is((public.upsert_business_foundation('52a00000-0000-4000-8000-00000000000a', purpose => 'Keep desk workers well', core_values => array['Care'])).purpose,
  'Keep desk workers well', 'An admin writes the foundation');
select is((public.record_business_figures('52a00000-0000-4000-8000-00000000000a', '2019-02-17', revenue_usd => 900, customers => 40)).month,
  '2019-02-01'::date, 'and records a month''s figures (the month''s first day)');
select throws_ok($$ select public.record_business_figures('52a00000-0000-4000-8000-00000000000a', '2019-03-01', customers => -1) $$,
  '23514', null, 'Negative figures are refused');
select throws_ok($$ select public.set_action_status('52a00000-ac71-4000-8000-000000000001', 'finished') $$,
  '22023', 'status must be one of todo, in_progress, blocked, done, cancelled', 'An unknown status is refused');
select is((public.set_business_issue_status('52a00000-155e-4000-8000-000000000001', 'investigating')).status, 'investigating', 'An admin moves an issue');
select tests.authenticate_as('ai-coach@example.com');
select throws_ok($$ select public.set_business_issue_status('52a00000-155e-4000-8000-000000000001', 'resolved') $$,
  '42501', null, 'The coach changes no issue');
select throws_ok($$ select public.upsert_business_foundation('52a00000-0000-4000-8000-00000000000a', purpose => 'x') $$,
  '42501', null, 'nor the foundation');
select tests.authenticate_as('ai-stranger@example.com');
select throws_ok($$ select public.set_action_status('52a00000-ac71-4000-8000-000000000001', 'done') $$,
  'PT404', 'Action not found', 'A stranger''s change is 404, like an unknown action');
select throws_ok($$ select public.record_business_figures('52a00000-0000-4000-8000-00000000000a', '2019-03-01', revenue_usd => 1) $$,
  'PT404', 'Tenant not found', 'and so are his figures for the tenant');

-- The prompts come with the migrations.
select tests.clear_authentication();
select is((select count(*)::int from public.prompt_templates where version = 1 and name in (
  'coaching/alignment-check', 'coaching/alignment-explanation', 'coaching/alignment-suggestions', 'coaching/strategy-suggestions',
  'coaching/kpi-recommendations', 'operations/strategic-alignment', 'operations/prioritization-suggestions',
  'operations/scheduling-suggestions', 'operations/root-cause-suggestions', 'operations/action-suggestions', 'analysis/operations')), 11,
  'Every route has a prompt, version 1, from the migration');

select * from finish();
rollback;
