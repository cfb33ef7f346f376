-- The tenant's strategy and operations data as each named user: every table is read by the
-- tenant's members (the coach too) and written by owners, admins and members only; a
-- stranger, anon, coach_ingest and coach_analyst get nothing; references stay inside the
-- tenant (goals, actions and people of another tenant cannot be named). The seed's tenant:
-- Alice owner, Carol coach.
begin;
select plan(42);

select tests.create_supabase_user('data-member@example.com');
select tests.create_supabase_user('data-stranger@example.com');
select public.add_tenant_member('7e4a0000-0000-4000-8000-000000000001', tests.get_user_id('data-member@example.com'), 'member');
-- A second tenant, Bob's, with a goal of its own.
insert into public.tenants (id, name) values ('7e4a0000-0000-4000-8000-0000000000b0', 'Bob''s Bikes');
insert into public.tenant_members (tenant_id, user_id, role) values ('7e4a0000-0000-4000-8000-0000000000b0', 'b0b00000-0000-4000-8000-000000000002', 'owner');
insert into public.goals (id, tenant_id, title) values ('7e4a0000-60a1-4000-8000-0000000000b1', '7e4a0000-0000-4000-8000-0000000000b0', 'Sell 40 bikes');

-- One valid new row per table, as a writer of the studio would send it.
create function pg_temp.insert_sql(t text) returns text language sql as $$
  select case t
    when 'business_foundations' then $q$ insert into public.business_foundations (tenant_id, purpose) values ('7e4a0000-0000-4000-8000-0000000000b0', 'x') $q$
    when 'goals' then $q$ insert into public.goals (tenant_id, title) values ('7e4a0000-0000-4000-8000-000000000001', 'New goal') $q$
    when 'strategies' then $q$ insert into public.strategies (tenant_id, goal_id, title) values ('7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000001', 'New strategy') $q$
    when 'kpis' then $q$ insert into public.kpis (tenant_id, name, unit) values ('7e4a0000-0000-4000-8000-000000000001', 'Leads', 'leads') $q$
    when 'actions' then $q$ insert into public.actions (tenant_id, title) values ('7e4a0000-0000-4000-8000-000000000001', 'New action') $q$
    when 'business_issues' then $q$ insert into public.business_issues (tenant_id, title) values ('7e4a0000-0000-4000-8000-000000000001', 'New issue') $q$
    when 'business_figures' then $q$ insert into public.business_figures (tenant_id, month, revenue_usd) values ('7e4a0000-0000-4000-8000-000000000001', '2020-01-01', 1) $q$
  end
$$;
grant execute on function pg_temp.insert_sql(text) to public;
create function pg_temp.visible(t text) returns bigint language plpgsql as $$
declare n bigint;
begin
  execute format('select count(*) from public.%I', t) into n;
  return n;
end $$;
grant execute on function pg_temp.visible(text) to public;

-- The member writes every table of the studio (the foundation exists: Bob's gets none).
select tests.authenticate_as('data-member@example.com');
select ok(pg_temp.visible(t) > 0, 'A member reads the studio''s ' || t)
from unnest(array['business_foundations', 'goals', 'strategies', 'kpis', 'actions', 'business_issues', 'business_figures']) t;
select lives_ok(pg_temp.insert_sql(t), 'and adds to ' || t)
from unnest(array['goals', 'strategies', 'kpis', 'actions', 'business_issues', 'business_figures']) t;
select throws_ok(pg_temp.insert_sql('business_foundations'), '42501', null, 'but writes nothing of another tenant');
select is((select count(*)::int from public.goals where tenant_id = '7e4a0000-0000-4000-8000-0000000000b0'), 0, 'and reads none of it');
select lives_ok($$ update public.business_foundations set niche = 'Desk workers' where tenant_id = '7e4a0000-0000-4000-8000-000000000001' $$,
  'A member edits the foundation');
select lives_ok($$ update public.actions set status = 'done' where id = '7e4a0000-ac71-4000-8000-000000000003' $$, 'and an action');

-- References stay inside the tenant.
select throws_ok($$ insert into public.strategies (tenant_id, goal_id, title) values ('7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-0000000000b1', 'Steal') $$,
  '23503', null, 'A strategy cannot name another tenant''s goal');
select throws_ok($$ insert into public.actions (tenant_id, title, assignee_id) values ('7e4a0000-0000-4000-8000-000000000001', 'x', 'b0b00000-0000-4000-8000-000000000002') $$,
  '23503', null, 'nor an action be assigned to someone outside the tenant');
select throws_ok($$ insert into public.actions (tenant_id, title, dependencies) values ('7e4a0000-0000-4000-8000-000000000001', 'x', array[gen_random_uuid()]) $$,
  '23503', 'dependencies must name other actions of the same tenant', 'nor depend on an action that is not the tenant''s');
select lives_ok($$ insert into public.actions (tenant_id, title, dependencies) values ('7e4a0000-0000-4000-8000-000000000001', 'After the pitch', array['7e4a0000-ac71-4000-8000-000000000002'::uuid]) $$,
  'but may depend on one of the tenant''s actions');
select throws_ok($$ insert into public.goals (tenant_id, title, horizon) values ('7e4a0000-0000-4000-8000-000000000001', 'x', 'forever') $$,
  '23514', null, 'An unknown horizon is refused');
select throws_ok($$ insert into public.business_figures (tenant_id, month) values ('7e4a0000-0000-4000-8000-000000000001', '2026-01-15') $$,
  '23514', null, 'A month is its first day');
select throws_ok($$ insert into public.kpis (tenant_id, name, unit, direction) values ('7e4a0000-0000-4000-8000-000000000001', 'x', 'y', 'sideways') $$,
  '23514', null, 'A KPI direction is increase, decrease or maintain');

-- The coach reads and writes nothing.
select tests.authenticate_as('carol@example.com');
select ok(pg_temp.visible(t) > 0, 'Carol, the coach, reads ' || t)
from unnest(array['business_foundations', 'goals', 'actions', 'business_figures']) t;
select throws_ok(pg_temp.insert_sql('goals'), '42501', null, 'but adds no goal');
select is_empty($$ update public.actions set status = 'done' returning id $$, 'changes no action');
select is_empty($$ delete from public.business_issues returning id $$, 'and deletes no issue');

-- A stranger and the roles without access.
select tests.authenticate_as('data-stranger@example.com');
select is(pg_temp.visible('goals') + pg_temp.visible('actions') + pg_temp.visible('business_figures'), 0::bigint,
  'A stranger reads nothing');
select throws_ok(pg_temp.insert_sql('actions'), '42501', null, 'and writes nothing');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.goals $$, '42501', null, 'anon reads no goals');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select * from public.actions $$, '42501', null, 'coach_ingest reads no actions');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from public.business_figures $$, '42501', null, 'coach_analyst reads no figures');

-- Leaving and erasure.
select tests.authenticate_as('alice@example.com');
select public.remove_tenant_member('7e4a0000-0000-4000-8000-000000000001', tests.get_user_id('data-member@example.com'));
select is(pg_temp.visible('goals'), 4::bigint, 'The owner still reads every goal (three seeded, one added)');
select tests.authenticate_as('data-member@example.com');
select is(pg_temp.visible('goals'), 0::bigint, 'A member who left reads nothing');
select tests.authenticate_as_service_role();
select lives_ok($$ delete from public.tenants where id = '7e4a0000-0000-4000-8000-0000000000b0' $$,
  'The service role deletes a tenant');
select is((select count(*)::int from public.goals where tenant_id = '7e4a0000-0000-4000-8000-0000000000b0'), 0, 'and its data goes with it');
select tests.clear_authentication();
select lives_ok($$ delete from auth.users where id = 'a11ce000-0000-4000-8000-000000000001' $$, 'Erasing the owner works');
select is((select count(*)::int from public.goals where owner_id is not null), 0, 'and her goals lose their owner, not their data');

select * from finish();
rollback;
