-- The semantics of local/platform.sql that our migrations rely on, as hosted Supabase
-- has them: roles, auth helpers under both GUC forms, realtime.send and
-- broadcast_changes, storage path helpers, extensions and pg_cron.
begin;
select plan(27);

-- Roles
select ok(not (select rolsuper from pg_roles where rolname = 'postgres'), 'postgres is not a superuser');
select ok((select rolbypassrls and rolcreaterole and rolcreatedb from pg_roles where rolname = 'postgres'),
  'postgres has BYPASSRLS, CREATEROLE and CREATEDB as on Supabase');
select ok(pg_has_role('postgres', 'authenticated', 'member') and pg_has_role('postgres', 'anon', 'member')
  and pg_has_role('postgres', 'service_role', 'member'), 'postgres can act as anon, authenticated and service_role');
select ok((select rolbypassrls from pg_roles where rolname = 'service_role'), 'service_role bypasses RLS');
select ok((select rolcanlogin and not rolinherit from pg_roles where rolname = 'authenticator'),
  'authenticator logs in and does not inherit');

-- auth helpers
select set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated", "email": "alice@example.com"}', true);
select is(auth.uid(), 'a11ce000-0000-4000-8000-000000000001'::uuid, 'auth.uid() reads sub from request.jwt.claims');
select is(auth.role(), 'authenticated', 'auth.role() reads role from request.jwt.claims');
select is(auth.email(), 'alice@example.com', 'auth.email() reads email from request.jwt.claims');
select is(auth.jwt() ->> 'sub', 'a11ce000-0000-4000-8000-000000000001', 'auth.jwt() returns the claims');
select set_config('request.jwt.claim.sub', 'b0b00000-0000-4000-8000-000000000002', true);
select is(auth.uid(), 'b0b00000-0000-4000-8000-000000000002'::uuid, 'auth.uid() prefers the legacy request.jwt.claim.sub');
select set_config('request.jwt.claim.sub', '', true);
select is(auth.uid(), 'a11ce000-0000-4000-8000-000000000001'::uuid, 'An empty legacy claim counts as unset');
select set_config('request.jwt.claims', '', true);
select is(auth.uid(), null, 'auth.uid() is null with no claims');
select is(auth.jwt(), null, 'auth.jwt() is null with no claims');

-- realtime
select is(realtime.topic(), null, 'realtime.topic() is null outside a broadcast');
select realtime.send('{"hello": "world"}', 'greeting', 'test:topic', true);
select is(realtime.topic(), 'test:topic', 'realtime.send sets realtime.topic for the transaction');
select results_eq(
  $$ select extension, event, private, payload ->> 'hello', payload ? 'id' from realtime.messages where topic = 'test:topic' $$,
  $$ values ('broadcast', 'greeting', true, 'world', true) $$,
  'realtime.send stores a private broadcast row whose payload gained an id'
);
select realtime.send('{"id": "fixed", "n": 1}', 'numbered', 'test:topic2');
select is((select payload ->> 'id' from realtime.messages where topic = 'test:topic2'), 'fixed',
  'realtime.send keeps an id the payload already has');

-- As authenticated with no INSERT policy on realtime.messages, the insert fails under RLS:
-- realtime.send must turn that into a warning and leave the transaction usable.
select tests.authenticate_as('alice@example.com');
select lives_ok($$ select realtime.send('{"x": 1}', 'denied', 'test:denied') $$,
  'realtime.send downgrades an RLS failure to a warning');
select is_empty($$ select 1 from realtime.messages where topic = 'test:denied' $$,
  'Nothing is visible to a user without a SELECT policy');
select tests.clear_authentication();
select is_empty($$ select 1 from realtime.messages where topic = 'test:denied' $$,
  'The refused broadcast was not stored');

create temporary table broadcast_probe (id int, note text);
insert into broadcast_probe values (7, 'seven');
select realtime.broadcast_changes('test:changes', 'INSERT', 'INSERT', 'broadcast_probe', 'pg_temp',
  (select b from broadcast_probe b), null);
select is(
  (select payload - 'id' from realtime.messages where topic = 'test:changes'),
  '{"operation": "INSERT", "table": "broadcast_probe", "schema": "pg_temp", "record": {"id": 7, "note": "seven"}, "old_record": null}'::jsonb,
  'realtime.broadcast_changes sends record, old_record, operation, table and schema'
);

-- storage
select is(storage.foldername('u/alice/s/42/1700000000/note.m4a'), array['u', 'alice', 's', '42', '1700000000'],
  'storage.foldername returns the folders of a path');
select is(storage.filename('u/alice/s/42/1700000000/note.m4a'), 'note.m4a', 'storage.filename returns the last segment');
select is(storage.extension('u/alice/s/42/1700000000/note.m4a'), 'm4a', 'storage.extension returns the extension');

-- extensions and pg_cron
select is(encode(extensions.digest('abc', 'sha256'), 'hex'),
  'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'pgcrypto lives in schema extensions');
select ok(extensions.uuid_generate_v4() is not null, 'uuid-ossp lives in schema extensions');
select ok(cron.schedule('platform-test-job', '0 3 * * *', 'select 1') > 0
  and cron.unschedule('platform-test-job'), 'postgres can schedule and unschedule pg_cron jobs');

select * from finish();
rollback;
