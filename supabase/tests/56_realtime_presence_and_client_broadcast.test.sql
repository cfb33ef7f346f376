-- Realtime's write check (a client's broadcast or presence track: an INSERT on
-- realtime.messages as the user, with realtime.topic set) and presence read check (a SELECT
-- of a presence probe row) on coach_interactions:<user_id>, as each named user: the client,
-- their assigned coach, an unassigned coach, a stranger, anon, the service role, the ingest
-- and analyst roles. A topic the user may only read (nudges:<user_id>) refuses both.
begin;
select plan(29);

select tests.create_supabase_user('rt56-dave@example.com', 'coach');

create temporary table rt56 as
select 'coach_interactions:' || tests.get_user_id('alice@example.com') as alice_topic,
       'coach_interactions:' || tests.get_user_id('bob@example.com') as bob_topic,
       'nudges:' || tests.get_user_id('alice@example.com') as alice_nudges;
grant select on rt56 to anon, authenticated, service_role, coach_ingest, coach_analyst;

-- The write check as Realtime runs it: the topic set, then one row per extension.
create function pg_temp.write_check(topic text, extension text) returns void
language plpgsql as $$
begin
  perform set_config('realtime.topic', topic, true);
  insert into realtime.messages (topic, extension) values (topic, extension);
end;
$$;
grant execute on function pg_temp.write_check(text, text) to anon, authenticated, service_role, coach_ingest, coach_analyst;

-- The client and their assigned coach may send both.
select tests.authenticate_as('alice@example.com');
select lives_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'broadcast') $$, 'Alice may broadcast on her topic');
select lives_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'presence') $$, 'Alice may track presence on her topic');
select tests.authenticate_as('carol@example.com');
select lives_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'broadcast') $$, 'Carol, her coach, may broadcast on Alice''s topic');
select lives_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'presence') $$, 'Carol may track presence on Alice''s topic');

-- Nobody else, and nothing else.
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'broadcast') $$, '42501', null, 'Bob may not broadcast on Alice''s topic');
select throws_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'presence') $$, '42501', null, 'Bob may not track presence on Alice''s topic');
select tests.authenticate_as('rt56-dave@example.com');
select throws_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'broadcast') $$, '42501', null, 'An unassigned coach may not broadcast on Alice''s topic');
select throws_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'presence') $$, '42501', null, 'An unassigned coach may not track presence on Alice''s topic');
select tests.authenticate_as_anon();
select throws_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'broadcast') $$, '42501', null, 'anon may not broadcast on Alice''s topic');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'broadcast') $$, '42501', null, 'coach_ingest may not broadcast on Alice''s topic');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'presence') $$, '42501', null, 'coach_analyst may not track presence on Alice''s topic');

select tests.authenticate_as('alice@example.com');
select throws_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'postgres_changes') $$, '42501', null, 'Another extension is refused');
select throws_ok($$ select pg_temp.write_check((select bob_topic from rt56), 'broadcast') $$, '42501', null, 'Alice may not broadcast on Bob''s topic');
select throws_ok($$ select pg_temp.write_check((select alice_nudges from rt56), 'broadcast') $$, '42501', null, 'Alice may not broadcast on her nudges topic, which she may only read');
select throws_ok(
  $$ select set_config('realtime.topic', (select alice_topic from rt56), true);
     insert into realtime.messages (topic, extension) values ((select bob_topic from rt56), 'broadcast') $$,
  '42501', null, 'A row of another topic than the one checked is refused');
-- realtime.send turns the refusal into a WARNING; keep it out of the test output.
set local client_min_messages = error;
select lives_ok($$ select realtime.send('{"record": {"content": {"text": "forged"}}}', 'INSERT', (select alice_topic from rt56), true) $$,
  'realtime.send as Alice does not fail (it only warns)');
reset client_min_messages;
select throws_ok(
  $$ select set_config('realtime.topic', (select alice_topic from rt56), true);
     insert into realtime.messages (topic, extension, event) values ((select alice_topic from rt56), 'broadcast', 'INSERT') $$,
  '42501', null, 'A row with an event (a message to store) is refused, even on her own topic');
select throws_ok(
  $$ select set_config('realtime.topic', (select alice_topic from rt56), true);
     insert into realtime.messages (topic, extension, payload) values ((select alice_topic from rt56), 'broadcast', '{"forged": true}') $$,
  '42501', null, 'A row with a payload is refused, even on her own topic');

-- The service role bypasses RLS, as it does in Realtime.
select tests.authenticate_as_service_role();
select lives_ok($$ select pg_temp.write_check((select alice_topic from rt56), 'presence') $$, 'The service role may track presence on Alice''s topic');

-- The presence read check: probe rows of both extensions written as the service role, then a SELECT.
select tests.clear_authentication();
insert into realtime.messages (topic, extension, event)
select t.topic, e.extension, 'rt56-probe'
from rt56, lateral (values (rt56.alice_topic), (rt56.alice_nudges)) as t(topic), (values ('broadcast'), ('presence')) as e(extension);

create function pg_temp.visible(topic text) returns text[]
language sql as $$
  select set_config('realtime.topic', topic, true);
  select coalesce(array_agg(extension order by extension), '{}') from realtime.messages where topic = $1 and event = 'rt56-probe'
$$;
grant execute on function pg_temp.visible(text) to anon, authenticated, service_role, coach_ingest, coach_analyst;

select tests.authenticate_as('alice@example.com');
select is(pg_temp.visible((select alice_topic from rt56)), '{broadcast,presence}', 'Alice reads broadcast and presence on her topic');
select is(pg_temp.visible((select alice_nudges from rt56)), '{broadcast}', 'Alice reads broadcast but not presence on her nudges topic');
select tests.authenticate_as('carol@example.com');
select is(pg_temp.visible((select alice_topic from rt56)), '{broadcast,presence}', 'Carol reads broadcast and presence on Alice''s topic');
select is(pg_temp.visible((select alice_nudges from rt56)), '{}', 'Carol reads nothing of Alice''s nudges topic');
select tests.authenticate_as('bob@example.com');
select is(pg_temp.visible((select alice_topic from rt56)), '{}', 'Bob reads nothing of Alice''s topic');
select tests.authenticate_as('rt56-dave@example.com');
select is(pg_temp.visible((select alice_topic from rt56)), '{}', 'An unassigned coach reads nothing of Alice''s topic');
select tests.authenticate_as_anon();
select is(pg_temp.visible((select alice_topic from rt56)), '{}', 'anon reads nothing of Alice''s topic');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select pg_temp.visible((select alice_topic from rt56)) $$, '42501', 'permission denied for schema realtime', 'coach_ingest cannot read realtime.messages at all');

select tests.clear_authentication();
select is((select count(*)::int from realtime.messages where topic = (select alice_topic from rt56) and event is null), 5,
  'Only the five allowed write checks left rows (each refused one wrote nothing)');
select is_empty($$ select 1 from realtime.messages where payload ->> 'forged' is not null or payload #>> '{record,content,text}' = 'forged' $$,
  'realtime.send as Alice stored nothing (it only warns), and neither did the refused forgeries');

select * from finish();
rollback;
