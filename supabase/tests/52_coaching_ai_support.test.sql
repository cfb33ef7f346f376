-- What coaching-ai and business-data need from the database, as each named user: the
-- monthly AI budget (set by the service role only), tenant_ai_calls (owners and admins read
-- their tenant's, nobody else's), the spend sum, analysts' spend against budget, the tenant
-- context (members read, as the caller: a coach too, a stranger gets null), the
-- business-data cache (members only; a write clears it; a document computed before a write
-- is never stored), and the write RPCs (owners, admins and members; a coach 42501; a
-- stranger PT404). The seed's tenant: Alice owner, Carol coach.
begin;
select plan(50);

select tests.create_supabase_user('ai-member@example.com');
select tests.create_supabase_user('ai-admin@example.com');
select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', tests.get_user_id('ai-member@example.com'), 'member');
select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', tests.get_user_id('ai-admin@example.com'), 'admin');
-- Calls this month and last month, one of another tenant.
insert into public.tenants (id, name) values ('7e4a0000-0000-4000-8000-0000000000b0', 'Bob''s Bikes');
insert into public.tenant_members (tenant_id, user_id, role) values ('7e4a0000-0000-4000-8000-0000000000b0', 'b0b00000-0000-4000-8000-000000000002', 'owner');
delete from public.tenant_ai_calls where tenant_id = '7e4a0000-0000-4000-8000-000000000001';
insert into public.tenant_ai_calls (tenant_id, route, model, status, cost_usd, created_at) values
  ('7e4a0000-0000-4000-8000-000000000001', 'coaching/alignment-check', 'gpt-4o-mini', 'ok', 0.25, now()),
  ('7e4a0000-0000-4000-8000-000000000001', 'operations/action-suggestions', 'gpt-4o-mini', 'error', 0, now()),
  ('7e4a0000-0000-4000-8000-000000000001', 'coaching/alignment-check', 'gpt-4o-mini', 'ok', 3, date_trunc('month', now()) - interval '1 day'),
  ('7e4a0000-0000-4000-8000-0000000000b0', 'coaching/alignment-check', 'gpt-4o-mini', 'ok', 7, now());

-- The budget.
select is((select monthly_ai_budget_usd from public.tenants where id = '7e4a0000-0000-4000-8000-000000000001'), 25.00::numeric(12, 2),
  'A tenant''s monthly AI budget defaults to 25 USD');
select is((select spent_usd from private.tenant_ai_spend('7e4a0000-0000-4000-8000-000000000001')), 0.25::numeric,
  'The spend sums this UTC month''s calls of the tenant only');
select is((select calls from private.tenant_ai_spend('7e4a0000-0000-4000-8000-000000000001')), 2, 'and counts them');
select is_empty($$ select * from private.tenant_ai_spend(gen_random_uuid()) $$, 'An unknown tenant has no spend row');

select tests.authenticate_as('alice@example.com');
select throws_ok($$ update public.tenants set monthly_ai_budget_usd = 1000 where id = '7e4a0000-0000-4000-8000-000000000001' $$,
  '42501', null, 'The owner cannot raise the budget');
select throws_ok($$ select public.set_tenant_ai_budget('7e4a0000-0000-4000-8000-000000000001', 1000) $$,
  '42501', null, 'nor call set_tenant_ai_budget');
select throws_ok($$ select * from private.tenant_ai_spend('7e4a0000-0000-4000-8000-000000000001') $$,
  '42501', null, 'nor read the spend function');
select lives_ok($$ update public.tenants set name = 'Archer Wellness' where id = '7e4a0000-0000-4000-8000-000000000001' $$,
  'but still renames the tenant');
select is((select count(*)::int from public.tenant_ai_calls), 3, 'The owner reads her tenant''s AI calls, not another''s');
select throws_ok($$ insert into public.tenant_ai_calls (tenant_id, route, model, status) values ('7e4a0000-0000-4000-8000-000000000001', 'a/b', 'm', 'ok') $$,
  '42501', null, 'and cannot add one');
select tests.authenticate_as('ai-admin@example.com');
select is((select count(*)::int from public.tenant_ai_calls), 3, 'An admin reads them too');
select tests.authenticate_as('ai-member@example.com');
select is((select count(*)::int from public.tenant_ai_calls), 0, 'A member does not');
select tests.authenticate_as('carol@example.com');
select is((select count(*)::int from public.tenant_ai_calls), 0, 'nor the coach');
select tests.authenticate_as('bob@example.com');
select is((select count(*)::int from public.tenant_ai_calls), 1, 'A stranger reads only his own tenant''s');
select tests.authenticate_as_anon();
select throws_ok($$ select count(*) from public.tenant_ai_calls $$, '42501', null, 'Anon reads nothing');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select count(*) from public.tenant_ai_calls $$, '42501', null, 'nor an ingest token');

select tests.authenticate_as_service_role();
select throws_ok($$ select public.set_tenant_ai_budget('7e4a0000-0000-4000-8000-000000000001', -1) $$,
  '22023', 'monthly_budget_usd must be between 0 and 1000000', 'A negative budget is refused');
select throws_ok($$ select public.set_tenant_ai_budget(gen_random_uuid(), 10) $$, 'PT404', 'Tenant not found', 'An unknown tenant is 404');
select is((public.set_tenant_ai_budget('7e4a0000-0000-4000-8000-000000000001', 40)).monthly_ai_budget_usd, 40.00::numeric(12, 2),
  'The service role sets the budget');

-- Analysts: spend against budget per tenant and month.
select tests.authenticate_as_role('coach_analyst');
select results_eq(
  $$ select spent_usd, share_of_budget, calls, errors, by_route from analytics.tenant_ai_spend(current_date, current_date)
     where tenant_id = '7e4a0000-0000-4000-8000-000000000001' $$,
  $$ values (0.25::numeric, 0.0063::numeric, 2, 1, '{"coaching/alignment-check": 1, "operations/action-suggestions": 1}'::jsonb) $$,
  'An analyst sees a tenant''s spend against its budget this month, with failed calls and calls per route');
select is((select count(*)::int from analytics.tenant_ai_spend(current_date - 40, current_date) where tenant_id = '7e4a0000-0000-4000-8000-000000000001'), 2,
  'one row per month');
select tests.authenticate_as('alice@example.com');
select throws_ok($$ select * from analytics.tenant_ai_spend(current_date, current_date) $$, '42501', null, 'A user cannot call the analysts'' function');

-- The tenant context.
select is(public.get_tenant_context('7e4a0000-0000-4000-8000-000000000001') ->> 'role', 'owner', 'The owner reads the tenant''s context');
select is(jsonb_array_length(public.get_tenant_context('7e4a0000-0000-4000-8000-000000000001') -> 'goals'), 3, 'with its goals');
select is(public.get_tenant_context('7e4a0000-0000-4000-8000-000000000001') ->> 'owner_id', 'a11ce000-0000-4000-8000-000000000001', 'and its owner');
select tests.authenticate_as('carol@example.com');
select is(public.get_tenant_context('7e4a0000-0000-4000-8000-000000000001') ->> 'role', 'coach', 'The coach reads it too, as coach');
select tests.authenticate_as('bob@example.com');
select is(public.get_tenant_context('7e4a0000-0000-4000-8000-000000000001'), null, 'A stranger gets null, like an unknown tenant');
select tests.authenticate_as_service_role();
select is(public.get_tenant_context('7e4a0000-0000-4000-8000-000000000001') ->> 'role', 'service_role', 'The service role reads any tenant''s');
select tests.authenticate_as_anon();
select throws_ok($$ select public.get_tenant_context('7e4a0000-0000-4000-8000-000000000001') $$, '42501', null, 'Anon cannot call it');

-- The business-data cache.
select tests.clear_authentication();
delete from private.business_data_cache where tenant_id = '7e4a0000-0000-4000-8000-000000000001';
select tests.authenticate_as('alice@example.com');
select results_eq($$ select member_role, version, payload from private.business_data_cached('7e4a0000-0000-4000-8000-000000000001') $$,
  $$ values ('owner'::text, 0::bigint, null::jsonb) $$, 'A member finds no cached document at first');
select ok(private.business_data_store('7e4a0000-0000-4000-8000-000000000001', 0, '{"doc": 1}'), 'stores one');
select is((select payload from private.business_data_cached('7e4a0000-0000-4000-8000-000000000001')), '{"doc": 1}'::jsonb, 'and reads it back');
select lives_ok($$ select public.set_action_status('7e4a0000-ac71-4000-8000-000000000003', 'blocked') $$, 'A write to an action');
select results_eq($$ select version, payload from private.business_data_cached('7e4a0000-0000-4000-8000-000000000001') $$,
  $$ values (1::bigint, null::jsonb) $$, 'bumps the version and clears the document');
select ok(not private.business_data_store('7e4a0000-0000-4000-8000-000000000001', 0, '{"doc": "stale"}'),
  'A document computed at the old version is not stored');
select tests.authenticate_as('carol@example.com');
select is((select member_role from private.business_data_cached('7e4a0000-0000-4000-8000-000000000001')), 'coach', 'The coach reads the cache');
select tests.authenticate_as('bob@example.com');
select is_empty($$ select * from private.business_data_cached('7e4a0000-0000-4000-8000-000000000001') $$, 'A stranger gets no row');
select ok(not private.business_data_store('7e4a0000-0000-4000-8000-000000000001', 1, '{"doc": "bob"}'), 'and cannot fill it');
select tests.authenticate_as_anon();
select throws_ok($$ select * from private.business_data_cached('7e4a0000-0000-4000-8000-000000000001') $$, '42501', null, 'Anon cannot read it');
select tests.clear_authentication();
select is((select version from private.business_data_cache where tenant_id = '7e4a0000-0000-4000-8000-000000000001'), 1::bigint,
  'Nothing the stranger did changed it');
insert into public.business_figures (tenant_id, month, revenue_usd) values ('7e4a0000-0000-4000-8000-000000000001', '2019-01-01', 1);
delete from public.tenant_members where tenant_id = '7e4a0000-0000-4000-8000-000000000001' and user_id = tests.get_user_id('ai-member@example.com');
select is((select version from private.business_data_cache where tenant_id = '7e4a0000-0000-4000-8000-000000000001'), 3::bigint,
  'Figures and members bump it too');

-- The write RPCs.
select tests.authenticate_as('ai-admin@example.com');
select is((public.upsert_business_foundation('7e4a0000-0000-4000-8000-000000000001', purpose => 'Keep desk workers well', core_values => array['Care'])).purpose,
  'Keep desk workers well', 'An admin rewrites the foundation');
select is((public.record_business_figures('7e4a0000-0000-4000-8000-000000000001', '2019-02-17', revenue_usd => 900, customers => 40)).month,
  '2019-02-01'::date, 'and records a month''s figures (the month''s first day)');
select throws_ok($$ select public.record_business_figures('7e4a0000-0000-4000-8000-000000000001', '2019-03-01', customers => -1) $$,
  '23514', null, 'Negative figures are refused');
select throws_ok($$ select public.set_action_status('7e4a0000-ac71-4000-8000-000000000003', 'finished') $$,
  '22023', 'status must be one of todo, in_progress, blocked, done, cancelled', 'An unknown status is refused');
select tests.authenticate_as('carol@example.com');
select throws_ok($$ select public.set_business_issue_status('7e4a0000-155e-4000-8000-000000000001', 'resolved') $$,
  '42501', null, 'The coach changes no issue');
select throws_ok($$ select public.upsert_business_foundation('7e4a0000-0000-4000-8000-000000000001', purpose => 'x') $$,
  '42501', null, 'nor the foundation');
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.set_action_status('7e4a0000-ac71-4000-8000-000000000003', 'done') $$,
  'PT404', 'Action not found', 'A stranger''s change is 404, like an unknown action');
select throws_ok($$ select public.record_business_figures('7e4a0000-0000-4000-8000-000000000001', '2019-03-01', revenue_usd => 1) $$,
  'PT404', 'Tenant not found', 'and so are his figures for the tenant');

-- The prompts come with the migrations.
select tests.clear_authentication();
select is((select count(*)::int from public.prompt_templates where label = 'production' and version = 1), 11,
  'Every route has a production prompt, version 1, from the migration');

select * from finish();
rollback;
