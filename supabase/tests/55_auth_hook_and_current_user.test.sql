-- Sign-in (20261124160000, 20261124170000) as each named user: the custom access token
-- hook (executable by supabase_auth_admin only; adds user_role from the profile; refuses an
-- event without claims), private.current_user_id() for Supabase Auth tokens, mapped and
-- unmapped third-party (Clerk) tokens and role tokens, and public.link_external_identity
-- (service role only, idempotent). The file makes its own users.
begin;
select plan(27);

select tests.create_supabase_user('hook-client@example.com');
select tests.create_supabase_user('hook-coach@example.com', 'coach');
update public.profiles set role = 'coach' where id = tests.get_user_id('hook-coach@example.com');

-- The hook's privileges.
select ok(has_function_privilege('supabase_auth_admin', 'public.custom_access_token_hook(jsonb)', 'execute'), 'supabase_auth_admin may run the hook');
select ok(not has_function_privilege('authenticated', 'public.custom_access_token_hook(jsonb)', 'execute'), 'authenticated may not run the hook');
select ok(not has_function_privilege('anon', 'public.custom_access_token_hook(jsonb)', 'execute'), 'anon may not run the hook');
select ok(not has_function_privilege('service_role', 'public.custom_access_token_hook(jsonb)', 'execute'), 'service_role may not run the hook');
select ok(not has_column_privilege('supabase_auth_admin', 'public.profiles', 'preferences', 'select'), 'supabase_auth_admin reads no profile column but id and role');

-- The hook's output (as its owner: the test role cannot become supabase_auth_admin; the
-- end-to-end sign-in tests call it through Auth as supabase_auth_admin).
select is(
  public.custom_access_token_hook(jsonb_build_object('user_id', tests.get_user_id('hook-coach@example.com'),
    'claims', jsonb_build_object('sub', tests.get_user_id('hook-coach@example.com'), 'role', 'authenticated', 'aal', 'aal1'),
    'authentication_method', 'password')),
  jsonb_build_object('claims', jsonb_build_object('sub', tests.get_user_id('hook-coach@example.com'), 'role', 'authenticated', 'aal', 'aal1', 'user_role', 'coach')),
  'the hook keeps every claim and adds user_role coach for a coach');
select is(
  public.custom_access_token_hook(jsonb_build_object('user_id', tests.get_user_id('hook-client@example.com'),
    'claims', jsonb_build_object('sub', tests.get_user_id('hook-client@example.com')))) -> 'claims' ->> 'user_role',
  'client', 'a client gets user_role client');
select is(
  public.custom_access_token_hook(jsonb_build_object('user_id', gen_random_uuid(), 'claims', '{}'::jsonb)) -> 'claims' -> 'user_role',
  'null'::jsonb, 'a user without a profile gets user_role null');
select is(
  public.custom_access_token_hook('{"user_id": "x"}'::jsonb) -> 'error' ->> 'http_code',
  '500', 'an event without claims is answered with an error Auth returns');
select policies_are('public', 'profiles', array[
  'Auth reads roles for the access token hook',
  'Profiles are editable by their owner',
  'Profiles are viewable by their owner and their assigned coach'], 'profiles: the hook''s read policy beside the owner and coach policies');

select tests.authenticate_as('hook-client@example.com');
select throws_ok($$ select public.custom_access_token_hook('{}'::jsonb) $$, '42501', null, 'a signed-in user cannot call the hook');

-- private.current_user_id().
select is((select private.current_user_id()), tests.get_user_id('hook-client@example.com'), 'a Supabase user token (no iss) is its sub');
select tests._act_as('authenticated', jsonb_build_object('sub', tests.get_user_id('hook-client@example.com'), 'role', 'authenticated', 'iss', 'http://127.0.0.1:54321/auth/v1'));
select is((select private.current_user_id()), tests.get_user_id('hook-client@example.com'), 'a GoTrue token (iss …/auth/v1) is its sub');
select tests._act_as('authenticated', '{"sub": "not-a-uuid", "role": "authenticated"}');
select is((select private.current_user_id()), null, 'a Supabase token whose sub is not a UUID is nobody (auth.uid() would fail)');
select tests._act_as('authenticated', '{"sub": "user_2abc", "role": "authenticated", "iss": "https://clerk.example.com"}');
select is((select private.current_user_id()), null, 'an unmapped Clerk subject is nobody');
select is((select count(*)::int from public.profiles), 0, 'and sees no profile');

-- Linking: service role only, idempotent.
select tests.authenticate_as('hook-client@example.com');
select throws_ok($$ select public.link_external_identity('https://clerk.example.com', 'user_2abc', tests.get_user_id('hook-client@example.com')) $$,
  '42501', null, 'a signed-in user cannot link an identity (not even to themselves)');
select tests.authenticate_as_service_role();
select is(public.link_external_identity('https://clerk.example.com', 'user_2abc', tests.get_user_id('hook-client@example.com')),
  tests.get_user_id('hook-client@example.com'), 'the service role links a Clerk subject to a user');
select is(public.link_external_identity('https://clerk.example.com', 'user_2abc', tests.get_user_id('hook-coach@example.com')),
  tests.get_user_id('hook-client@example.com'), 'linking again keeps the first user and says which');
select throws_ok($$ select public.link_external_identity('not a url', 'user_2abc', tests.get_user_id('hook-client@example.com')) $$,
  '23514', null, 'an issuer that is not a URL is refused');

-- Nobody but the service role reads or writes the mapping.
select tests.authenticate_as('hook-coach@example.com');
select throws_ok($$ select public.link_external_identity('https://clerk.example.com', 'user_coach', tests.get_user_id('hook-coach@example.com')) $$,
  '42501', null, 'a coach cannot link an identity either');
select throws_ok($$ select count(*) from private.external_identities $$, '42501', null, 'a signed-in user cannot read external identities');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select public.link_external_identity('https://clerk.example.com', 'user_x', tests.get_user_id('hook-coach@example.com')) $$,
  '42501', null, 'an ingest token cannot link an identity');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select count(*) from private.external_identities $$, '42501', null, 'an analyst cannot read external identities');

select tests._act_as('authenticated', '{"sub": "user_2abc", "role": "authenticated", "iss": "https://clerk.example.com"}');
select is((select private.current_user_id()), tests.get_user_id('hook-client@example.com'), 'a mapped Clerk subject is the user it maps to');
select results_eq($$ select id from public.profiles $$, array[tests.get_user_id('hook-client@example.com')], 'and reads that user''s profile through RLS, and no other');
select tests._act_as('authenticated', '{"sub": "user_2abc", "role": "authenticated", "iss": "https://other.example.com"}');
select is((select private.current_user_id()), null, 'the same subject from another issuer is nobody');

select * from finish();
rollback;
