-- Tenants and their members as each named user: members read their tenant and co-members,
-- strangers nothing (a tenant they are not in answers PT404, like an unknown one); owners
-- manage every role, admins members and coaches; a tenant keeps an owner; coaches read only;
-- anon, coach_ingest and coach_analyst nothing. The seed's tenant: Alice owner, Carol coach.
begin;
select plan(33);

select tests.create_supabase_user('tenant-admin@example.com');
select tests.create_supabase_user('tenant-member@example.com');
create temp table t (name text primary key, id uuid);
grant select, insert on t to public;
insert into t values ('studio', '7e4a0000-0000-4000-8000-000000000001');

-- Alice, the owner --------------------------------------------------------------------------
select tests.authenticate_as('alice@example.com');
select results_eq($$ select name from public.tenants $$, $$ values ('Archer Wellness Studio') $$, 'Alice reads her tenant');
select results_eq($$ select user_id, role from public.tenant_members order by role desc $$,
  $$ values ('a11ce000-0000-4000-8000-000000000001'::uuid, 'owner'), ('ca401000-0000-4000-8000-000000000003'::uuid, 'coach') $$,
  'and its members');
select is((select role from public.add_tenant_member((select id from t where name = 'studio'), tests.get_user_id('tenant-admin@example.com'), 'admin')),
  'admin', 'The owner adds an admin');
select lives_ok($$ update public.tenants set name = 'Archer Wellness' where id = '7e4a0000-0000-4000-8000-000000000001' $$,
  'and renames the tenant');
select throws_ok($$ insert into public.tenant_members (tenant_id, user_id, role)
    values ('7e4a0000-0000-4000-8000-000000000001', 'b0b00000-0000-4000-8000-000000000002', 'owner') $$,
  '42501', null, 'Nobody writes memberships directly');
select throws_ok($$ select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'b0b00000-0000-4000-8000-000000000002', 'boss') $$,
  '22023', 'role must be one of owner, admin, member, coach', 'An unknown role is refused');
select throws_ok($$ select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', gen_random_uuid(), 'member') $$,
  '23503', 'user_id does not name a user', 'An unknown user is refused');
select throws_ok($$ select public.remove_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001') $$,
  'PT409', 'A tenant keeps at least one owner', 'The last owner cannot leave');
select throws_ok($$ select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'member') $$,
  'PT409', 'A tenant keeps at least one owner', 'nor step down');
select ok((select id from public.create_tenant('Alice Side Project')) is not null, 'Alice creates a second tenant');
select results_eq($$ select name, role from public.list_my_tenants() $$,
  $$ values ('Alice Side Project', 'owner'), ('Archer Wellness', 'owner') $$, 'list_my_tenants gives her tenants and her role in each');
insert into t select 'side', id from public.tenants where name = 'Alice Side Project';
select is((select role from public.tenant_members where tenant_id = (select id from t where name = 'side')), 'owner',
  'and owns it');
select throws_ok($$ select public.create_tenant(' ') $$, '22023', 'name must be 1 to 200 characters without control characters',
  'A blank name is refused');

-- The admin ----------------------------------------------------------------------------------
select tests.authenticate_as('tenant-admin@example.com');
select is((select role from public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', tests.get_user_id('tenant-member@example.com'), 'member')),
  'member', 'An admin adds a member');
select throws_ok($$ select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'b0b00000-0000-4000-8000-000000000002', 'admin') $$,
  '42501', null, 'but not another admin');
select throws_ok($$ select public.remove_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001') $$,
  '42501', null, 'nor remove the owner');
select is((select count(*)::int from public.tenants), 1, 'An admin sees only the tenants they are in');

-- A member, the coach ------------------------------------------------------------------------
select tests.authenticate_as('tenant-member@example.com');
select is((select count(*)::int from public.tenant_members), 4, 'A member sees the co-members');
select throws_ok($$ select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'b0b00000-0000-4000-8000-000000000002', 'member') $$,
  '42501', null, 'but adds nobody');
select is((select count(*)::int from public.tenants where id = '7e4a0000-0000-4000-8000-000000000001'), 1, 'reads the tenant');
select tests.authenticate_as('carol@example.com');
select is((select count(*)::int from public.tenants), 1, 'Carol, the coach, reads the tenant');
select is_empty($$ update public.tenants set name = 'Carol''s' returning id $$, 'but cannot rename it');
select ok(public.remove_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'ca401000-0000-4000-8000-000000000003'),
  'and may leave it');

-- A stranger ---------------------------------------------------------------------------------
select tests.authenticate_as('bob@example.com');
select is_empty($$ select * from public.tenants $$, 'Bob, a stranger, sees no tenant');
select is_empty($$ select * from public.list_my_tenants() $$, 'and lists none');
select is_empty($$ select * from public.tenant_members $$, 'nor members');
select throws_ok($$ select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'b0b00000-0000-4000-8000-000000000002', 'owner') $$,
  'PT404', 'Tenant not found', 'and cannot join it: the tenant is not found, as an unknown one');
select throws_ok(format($$ select public.add_tenant_member(%L, 'b0b00000-0000-4000-8000-000000000002', 'owner') $$, gen_random_uuid()),
  'PT404', 'Tenant not found', 'the same answer');

-- Roles without access -------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.tenants $$, '42501', null, 'anon cannot read tenants');
select throws_ok($$ select public.create_tenant('x') $$, '42501', null, 'nor create one');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select * from public.tenant_members $$, '42501', null, 'coach_ingest reads no memberships');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from public.tenants $$, '42501', null, 'nor does coach_analyst');

-- The service role -------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is((select role from public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', 'b0b00000-0000-4000-8000-000000000002', 'member')),
  'member', 'The service role adds anyone');
select tests.clear_authentication();

select * from finish();
rollback;
