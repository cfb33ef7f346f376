-- Rate limits: who may take from a limit (the service role only, as the functions do), and
-- the fixed-window rule of private.take_rate_limit with a fixed clock: quota, refusal without
-- taking, the reset, per-user and per-token counters, roles without a policy. Run under a
-- non-UTC session time zone: windows are counted in epoch seconds.
begin;
select plan(30);

set local timezone = 'America/New_York';

select tests.create_supabase_user('rl-erin@example.com');
select tests.create_supabase_user('rl-finn@example.com');
insert into private.rate_limit_policies (endpoint, role, quota, window_seconds) values
  ('test-limit', 'authenticated', 3, 60),
  ('test-limit', 'coach_ingest', 2, 60);

create temporary table ids as
select tests.get_user_id('rl-erin@example.com') as erin, tests.get_user_id('rl-finn@example.com') as finn;
grant select on ids to authenticated, anon, service_role, coach_ingest, coach_analyst;

-- Who may call it
select tests.authenticate_as('rl-erin@example.com');
select throws_ok($$ select * from private.take_rate_limit('test-limit', jsonb_build_object('role', 'authenticated', 'sub', (select erin from ids))) $$,
  '42501', 'permission denied for function take_rate_limit', 'A signed-in user cannot take from a rate limit');
select tests.authenticate_as_anon();
select throws_ok($$ select * from private.take_rate_limit('test-limit', '{"role": "anon"}') $$,
  '42501', 'permission denied for schema private', 'anon cannot take from a rate limit');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select * from private.take_rate_limit('test-limit', '{"role": "coach_ingest"}') $$,
  '42501', null, 'An ingest token cannot take from a rate limit');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from private.take_rate_limit('test-limit', '{"role": "coach_analyst"}') $$,
  '42501', null, 'coach_analyst cannot take from a rate limit');
select tests.clear_authentication();
select ok(not has_function_privilege('authenticated', 'private.take_rate_limit(text, jsonb, timestamptz, integer)', 'execute')
          and not has_function_privilege('coach_ingest', 'private.take_rate_limit(text, jsonb, timestamptz, integer)', 'execute')
          and has_function_privilege('service_role', 'private.take_rate_limit(text, jsonb, timestamptz, integer)', 'execute'),
  'Only service_role holds execute on take_rate_limit');
-- Second, independent guard: the function checks its caller even if execute were granted.
grant execute on function private.take_rate_limit(text, jsonb, timestamptz, integer) to authenticated;
select tests.authenticate_as('rl-erin@example.com');
select throws_ok($$ select * from private.take_rate_limit('test-limit', jsonb_build_object('role', 'authenticated', 'sub', (select erin from ids))) $$,
  '42501', 'Only the service role can take from a rate limit', 'The function itself refuses a caller who is not the service');
select tests.clear_authentication();
revoke execute on function private.take_rate_limit(text, jsonb, timestamptz, integer) from authenticated;
select ok(not exists (select 1 from private.rate_limit_counters where endpoint = 'test-limit'),
  'Refused callers took nothing');

-- The window, as the service role with a fixed clock
select tests.authenticate_as_service_role();
create temporary table t0 as select '2031-05-05 12:00:00+00'::timestamptz as at;
grant select on t0 to service_role;
create or replace function pg_temp.take(who uuid, at timestamptz)
returns table (allowed boolean, remaining integer, reset_seconds integer, quota integer, window_seconds integer, policy text)
language sql as $$
  select r.allowed, r.remaining, r.reset_seconds, r.quota, r.window_seconds, r.policy
  from private.take_rate_limit('test-limit', jsonb_build_object('role', 'authenticated', 'sub', who), at) r
$$;

select results_eq($$ select allowed, remaining, quota, window_seconds, policy from pg_temp.take((select erin from ids), (select at from t0)) $$,
  $$ values (true, 2, 3, 60, 'test-limit') $$, 'The first request is allowed and leaves quota - 1');
select results_eq($$ select allowed, remaining from pg_temp.take((select erin from ids), (select at from t0)) $$,
  $$ values (true, 1) $$, 'The second request leaves 1');
create temporary table third as select * from pg_temp.take((select erin from ids), (select at from t0));
grant select on third to service_role;
select results_eq($$ select allowed, remaining from third $$, $$ values (true, 0) $$, 'The third request uses the last one');
select ok((select reset_seconds between 1 and 60 from third), 'reset_seconds is within the 60 s window');
select results_eq($$ select allowed, remaining, reset_seconds from pg_temp.take((select erin from ids), (select at from t0)) $$,
  $$ select false, 0, reset_seconds from third $$, 'The fourth request is refused, with the same reset');
select tests.clear_authentication();
select is((select used from private.rate_limit_counters where endpoint = 'test-limit' and subject = 'user:' || (select erin from ids)),
  3, 'A refused request takes nothing');
select tests.authenticate_as_service_role();
select results_eq($$ select allowed, reset_seconds from pg_temp.take((select erin from ids),
                      (select at from t0) + make_interval(secs => (select reset_seconds from third) - 1)) $$,
  $$ values (false, 1) $$, 'One second before the reset the caller is still refused');
select results_eq($$ select allowed, remaining, reset_seconds from pg_temp.take((select erin from ids),
                      (select at from t0) + make_interval(secs => (select reset_seconds from third))) $$,
  $$ values (true, 2, 60) $$, 'At the reset a new window starts with the full quota');
select results_eq($$ select allowed, remaining from pg_temp.take((select erin from ids), (select at from t0)) $$,
  $$ values (true, 1) $$, 'A late request stamped in the old window counts in the new one and does not reset it');
select results_eq($$ select allowed, remaining from pg_temp.take((select finn from ids), (select at from t0)) $$,
  $$ values (true, 2) $$, 'Another user has a counter of their own');

-- Per token: a role token is counted by its claims
create or replace function pg_temp.ingest(iat integer, at timestamptz)
returns table (allowed boolean, remaining integer)
language sql as $$
  select r.allowed, r.remaining
  from private.take_rate_limit('test-limit', jsonb_build_object('role', 'coach_ingest', 'iat', iat, 'exp', iat + 3600), at) r
$$;
select results_eq($$ select allowed, remaining from pg_temp.ingest(1000, (select at from t0)) $$, $$ values (true, 1) $$,
  'An ingest token takes from its own counter');
select results_eq($$ select allowed, remaining from pg_temp.ingest(1000, (select at from t0)) $$, $$ values (true, 0) $$,
  'The same token takes from the same counter');
select results_eq($$ select allowed from pg_temp.ingest(1000, (select at from t0)) $$, $$ values (false) $$,
  'The same token is refused past its quota');
select results_eq($$ select allowed, remaining from pg_temp.ingest(2000, (select at from t0)) $$, $$ values (true, 1) $$,
  'Another ingest token has its own counter');
select tests.clear_authentication();
select is((select count(*)::integer from private.rate_limit_counters where endpoint = 'test-limit' and subject like 'coach_ingest:%'),
  2, 'Two ingest tokens, two counters');
select tests.authenticate_as_service_role();

-- No policy, bad claims
select results_eq($$ select allowed, quota, remaining from private.take_rate_limit('test-limit', '{"role": "service_role"}', (select at from t0)) $$,
  $$ values (true, null::integer, null::integer) $$, 'A role with no policy for the endpoint is not limited');
select throws_ok($$ select * from private.take_rate_limit('test-limit', '{"role": "authenticated", "sub": "admin"}', (select at from t0)) $$,
  '22023', 'A user''s claims need a UUID sub', 'A user token without a UUID sub is refused');
select throws_ok($$ select * from private.take_rate_limit('test-limit', '{}', (select at from t0)) $$,
  '22023', 'endpoint, claims with a role, and at are required', 'Claims without a role are refused');

-- Default policies
select tests.clear_authentication();
select ok((select quota::numeric / window_seconds from private.rate_limit_policies where endpoint = 'log-interaction' and role = 'coach_ingest')
          >= 100 * (select quota::numeric / window_seconds from private.rate_limit_policies where endpoint = 'log-interaction' and role = 'authenticated'),
  'An ingest token may log at least 100 times as fast as a user');
select ok(exists (select 1 from private.rate_limit_policies where endpoint = 'summary' and role = 'authenticated'),
  'Paid summaries are limited per user');
select throws_ok($$ insert into private.rate_limit_policies values ('x', 'authenticated', 0, 60) $$,
  '23514', null, 'A policy needs a positive quota');
select throws_ok($$ insert into private.rate_limit_policies values ('x', 'coach_analyst', 10, 60) $$,
  '23514', null, 'A policy names an API role');
select ok(exists (select 1 from cron.job where jobname = 'rate-limit-counters-purge'), 'Expired counters are purged by pg_cron');

select * from finish();
rollback;
