-- Profiles: created at sign-up, readable by their owner and assigned coach only,
-- editable by their owner (not the role), managed by the service role.
begin;
select plan(28);

select tests.create_supabase_user('dave@example.com', 'coach', 'Dave Diaz');
select tests.create_supabase_user('eve@example.com', 'superuser');
insert into auth.users (id, email, raw_user_meta_data, created_at)
values ('f0000000-0000-4000-8000-000000000006', 'frank@example.com', '{"timezone": "Asia/Tokyo"}', '2026-02-01 12:00:00+00'),
       ('f0000000-0000-4000-8000-000000000007', 'gina@example.com', '{"timezone": "Not/AZone"}', '2026-02-01 12:00:00+00');

-- Sign-up trigger
select is((select role from public.profiles where id = tests.get_user_id('dave@example.com')), 'coach',
  'A new user with app_metadata.role coach gets a coach profile');
select is((select display_name from public.profiles where id = tests.get_user_id('dave@example.com')), 'Dave Diaz',
  'The display name comes from user_metadata.full_name');
select is((select role from public.profiles where id = tests.get_user_id('eve@example.com')), 'client',
  'An unknown app_metadata role falls back to client');
select results_eq($$ select timezone, created_at from public.profiles where id = 'f0000000-0000-4000-8000-000000000006' $$,
  $$ values ('Asia/Tokyo', '2026-02-01 12:00:00+00'::timestamptz) $$,
  'The time zone comes from user_metadata.timezone and created_at from the user');
select is((select timezone from public.profiles where id = 'f0000000-0000-4000-8000-000000000007'), 'UTC',
  'An invalid user_metadata.timezone falls back to UTC');

-- Owner
select tests.authenticate_as('alice@example.com');
select results_eq($$ select id from public.profiles $$,
  $$ values ('a11ce000-0000-4000-8000-000000000001'::uuid) $$, 'Alice sees only her own profile');
select is((public.get_my_profile()).display_name, 'Alice Archer', 'get_my_profile returns Alice''s profile');
select is((public.update_my_profile(timezone => 'Europe/Berlin')).timezone, 'Europe/Berlin',
  'Alice can change her time zone');
select is((select preferences from public.update_my_profile(preferences => '{"theme": "dark"}')), '{"theme": "dark"}'::jsonb,
  'Alice can replace her preferences');
select is((select timezone from public.profiles where id = tests.get_user_id('alice@example.com')), 'Europe/Berlin',
  'Leaving timezone null keeps it');
select throws_ok($$ select public.update_my_profile(timezone => 'Mars/Base') $$, '22023',
  'Unknown time zone: Mars/Base', 'An unknown time zone is refused with its name');
select ok(not private.is_valid_timezone('EST') and not private.is_valid_timezone('UTC+3') and private.is_valid_timezone('Etc/GMT+3'),
  'Only IANA names count as time zones, not abbreviations or POSIX offsets');
select throws_ok($$ select public.update_my_profile(preferences => '[1, 2]') $$, '22023',
  'preferences must be a JSON object', 'Preferences that are not an object are refused');
select throws_ok($$ update public.profiles set role = 'admin' where id = (select auth.uid()) $$, '42501',
  'permission denied for table profiles', 'Alice cannot make herself an admin');
select throws_ok($$ update public.profiles set timezone = 'Nowhere/City' where id = (select auth.uid()) $$, '23514',
  null, 'The timezone constraint refuses an unknown zone on a direct update');

-- Stranger
select tests.authenticate_as('bob@example.com');
select is_empty($$ select 1 from public.profiles where id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'Bob cannot read Alice''s profile');
select results_eq($$ select id from public.list_profiles() $$,
  $$ values ('b0b00000-0000-4000-8000-000000000002'::uuid) $$, 'list_profiles shows Bob only himself');
select is_empty($$ update public.profiles set display_name = 'hacked' where id = 'a11ce000-0000-4000-8000-000000000001' returning 1 $$,
  'Bob cannot update Alice''s profile');

-- Assigned coach
select tests.authenticate_as('carol@example.com');
select results_eq($$ select id from public.list_profiles() order by id $$,
  $$ values ('a11ce000-0000-4000-8000-000000000001'::uuid), ('ca401000-0000-4000-8000-000000000003'::uuid) $$,
  'Carol sees her own profile and her client Alice''s');
select is_empty($$ select 1 from public.profiles where id = 'b0b00000-0000-4000-8000-000000000002' $$,
  'Carol cannot read Bob''s profile (not her client)');
select is_empty($$ update public.profiles set display_name = 'renamed' where id = 'a11ce000-0000-4000-8000-000000000001' returning 1 $$,
  'Carol cannot edit her client''s profile');

-- Unassigned coach
select tests.authenticate_as('dave@example.com');
select results_eq($$ select id from public.list_profiles() $$,
  $$ select tests.get_user_id('dave@example.com') $$, 'An unassigned coach sees only himself');

-- anon
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.profiles $$, '42501', 'permission denied for table profiles',
  'anon cannot read profiles');
select throws_ok($$ select public.get_my_profile() $$, '42501', 'permission denied for function get_my_profile',
  'anon cannot call get_my_profile');
select throws_ok($$ select public.update_my_profile(timezone => 'UTC') $$, '42501',
  'permission denied for function update_my_profile', 'anon cannot call update_my_profile');

-- Service role
select tests.authenticate_as_service_role();
select ok((select count(*) from public.profiles) >= 5, 'The service role reads every profile');
select lives_ok($$ update public.profiles set role = 'admin' where id = tests.get_user_id('eve@example.com') $$,
  'The service role can change a role');
select tests.clear_authentication();
select ok((select updated_at = now() from public.profiles where id = tests.get_user_id('eve@example.com'))
  and (select updated_at > created_at from public.profiles where id = 'a11ce000-0000-4000-8000-000000000001'),
  'updated_at is maintained on update');

select * from finish();
rollback;
