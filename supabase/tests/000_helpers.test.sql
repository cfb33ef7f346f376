-- Test helpers, installed once per test database before the other files run (they sort
-- after this one). Like supabase-test-helpers, written for Coach Ledger: act as a named
-- user exactly as PostgREST does (role + request.jwt.claims, transaction-local).
-- Committed, not rolled back, so later files can use them.
begin;
select plan(1);

create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role, coach_ingest, coach_analyst;
-- pgTAP lives in extensions; the custom roles need to see it while a test acts as them.
grant usage on schema extensions to coach_ingest, coach_analyst;

-- The id of a user by email; throws when there is none.
create or replace function tests.get_user_id(email text)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  found uuid;
begin
  select u.id into found from auth.users u where u.email = get_user_id.email;
  if found is null then
    raise exception 'tests.get_user_id: no user with email %', get_user_id.email;
  end if;
  return found;
end;
$$;

-- Creates a user in auth.users (the profile follows by trigger); returns its id.
create or replace function tests.create_supabase_user(email text, app_role text default null, full_name text default null)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  new_id uuid := gen_random_uuid();
begin
  insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, email_confirmed_at)
  values (
    new_id, 'authenticated', 'authenticated', create_supabase_user.email,
    jsonb_strip_nulls(jsonb_build_object('provider', 'email', 'role', create_supabase_user.app_role)),
    jsonb_strip_nulls(jsonb_build_object('full_name', create_supabase_user.full_name)),
    now()
  );
  return new_id;
end;
$$;

-- Internal: switch to role (null: back to the connecting role) with these claims, both
-- transaction-local, as PostgREST sets them. The role is reset first so that reading
-- auth.users works whoever the test was acting as.
create or replace function tests._act_as(role text, claims jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', coalesce(claims::text, ''), true);
  if role is not null then
    perform set_config('role', role, true);
  end if;
end;
$$;

-- Act as the user with this email: role authenticated and their claims.
create or replace function tests.authenticate_as(email text)
returns void
language sql
set search_path = ''
as $$
  select tests._act_as(null, null);
  select tests._act_as('authenticated', jsonb_build_object(
    'sub', tests.get_user_id(authenticate_as.email), 'role', 'authenticated',
    'email', authenticate_as.email, 'aud', 'authenticated'));
$$;

-- Act as the service role.
create or replace function tests.authenticate_as_service_role()
returns void
language sql
set search_path = ''
as $$ select tests._act_as('service_role', '{"role": "service_role"}') $$;

-- Act as a database role reached by a role-only JWT (e.g. coach_ingest) or a login (coach_analyst).
create or replace function tests.authenticate_as_role(role_name text)
returns void
language sql
set search_path = ''
as $$ select tests._act_as(role_name, jsonb_build_object('role', role_name)) $$;

-- Act as anon (the anon key, no user).
create or replace function tests.authenticate_as_anon()
returns void
language sql
set search_path = ''
as $$ select tests._act_as('anon', '{"role": "anon"}') $$;

-- Back to the connecting role (postgres), with no claims.
create or replace function tests.clear_authentication()
returns void
language sql
set search_path = ''
as $$ select tests._act_as(null, null) $$;

grant execute on all functions in schema tests to anon, authenticated, service_role, coach_ingest, coach_analyst;

select ok(true, 'Test helpers are installed in schema tests');
select * from finish();
commit;
