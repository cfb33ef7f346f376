-- Batch ingestion's write path, public.log_coach_interactions, as each named user: every
-- item's outcome (created, replayed within the batch or from an earlier write through either
-- path, refused with its code and field), cost from model_prices, one broadcast per stored
-- row, nothing stored for a refused item; and private.take_rate_limit's amount (all or none).
begin;
select plan(35);

select tests.create_supabase_user('b57-dave@example.com', 'coach');

create temporary table b57 as
select tests.get_user_id('alice@example.com') as alice, tests.get_user_id('bob@example.com') as bob,
       'a11ce000-5e55-4000-8000-000000000001'::uuid as alice_session, 'b0b00000-5e55-4000-8000-000000000002'::uuid as bob_session;
grant select on b57 to anon, authenticated, service_role, coach_ingest, coach_analyst;

-- Outcomes as text: item, outcome, code, field (and the stored row's text, sender and cost).
create function pg_temp.outcomes(items jsonb)
returns table(item integer, outcome text, code text, field text, text_ text, sender text, cost numeric)
language sql as $$
  select r.item, r.outcome, r.code, r.field, (r.interaction).content ->> 'text', (r.interaction).sender, (r.interaction).cost_usd
  from public.log_coach_interactions(items) r
$$;
grant execute on function pg_temp.outcomes(jsonb) to anon, authenticated, service_role, coach_ingest, coach_analyst;

-- The service role: a mixed batch.
select tests.authenticate_as_service_role();
select results_eq(
  $$ select item, outcome, code, field, text_ from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-1', 'user_id', (select alice from b57), 'sender', 'ai_coach', 'content', '{"text": "one"}'::jsonb,
                          'model', 'gpt-4o-mini', 'prompt_tokens', 1000, 'completion_tokens', 100),
       jsonb_build_object('request_id', 'b57-1', 'user_id', (select alice from b57), 'sender', 'ai_coach', 'content', '{"text": "one"}'::jsonb,
                          'model', 'gpt-4o-mini', 'prompt_tokens', 1000, 'completion_tokens', 100),
       jsonb_build_object('request_id', 'b57-1', 'user_id', (select alice from b57), 'sender', 'ai_coach', 'content', '{"text": "changed"}'::jsonb),
       jsonb_build_object('request_id', 'b57-2', 'sender', 'system', 'content', '{"text": "no user"}'::jsonb),
       jsonb_build_object('request_id', 'b57-3', 'user_id', gen_random_uuid(), 'sender', 'system', 'content', '{"text": "nobody"}'::jsonb),
       jsonb_build_object('request_id', 'b57-4', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "x"}'::jsonb,
                          'session_id', (select bob_session from b57)),
       jsonb_build_object('request_id', 'b57-5', 'user_id', (select alice from b57), 'sender', 'system', 'content', jsonb_build_object('text', repeat('x', 70000))),
       jsonb_build_object('user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "no key"}'::jsonb),
       jsonb_build_object('request_id', 'b57-6', 'user_id', (select alice from b57), 'sender', 'robot', 'content', '{"text": "x"}'::jsonb),
       jsonb_build_object('request_id', 'b57-7', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"no_text": true}'::jsonb),
       jsonb_build_object('request_id', repeat('k', 129), 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "long key"}'::jsonb),
       jsonb_build_object('request_id', 'b57-8', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "two"}'::jsonb,
                          'session_id', (select alice_session from b57))
     )) $$,
  $$ values (0, 'created', null, null, 'one'),
            (1, 'replayed', null, null, 'one'),
            (2, 'refused', 'PT422', 'request_id', null),
            (3, 'refused', '22023', 'user_id', null),
            (4, 'refused', '23503', 'user_id', null),
            (5, 'refused', '23503', 'session_id', null),
            (6, 'refused', '23514', 'content', null),
            (7, 'refused', '22023', 'request_id', null),
            (8, 'refused', '22023', 'sender', null),
            (9, 'refused', '22023', 'content', null),
            (10, 'refused', '22023', 'request_id', null),
            (11, 'created', null, null, 'two') $$,
  'A mixed batch: each item has its own outcome, and a bad item blocks none of the good ones');

select tests.clear_authentication();
select is((select count(*)::int from public.coach_interactions where request_id like 'b57-%'), 2,
  'Only the two created items were stored');
select is((select cost_usd from public.coach_interactions where request_id = 'b57-1'),
          private.interaction_cost('gpt-4o-mini', (select created_at from public.coach_interactions where request_id = 'b57-1'), 1000, 100, null),
  'Cost comes from model_prices, as on the single path');
select is((select count(*)::int from realtime.messages m join public.coach_interactions i on (m.payload -> 'record' ->> 'id')::uuid = i.id
           where i.request_id like 'b57-%' and m.topic = 'coach_interactions:' || i.user_id), 2,
  'Each stored row was broadcast once on its user''s topic');
select is((select count(*)::int from private.interaction_requests where request_id like 'b57-%' and actor_scope = 'service'), 2,
  'Each stored row''s key was recorded');

create temporary table b57_priced (item integer, cost numeric);
grant insert on b57_priced to service_role;
select tests.authenticate_as_service_role();
insert into b57_priced
select r.item, r.cost from pg_temp.outcomes(jsonb_build_array(
  jsonb_build_object('request_id', 'b57-p1', 'user_id', (select alice from b57), 'sender', 'ai_coach', 'content', '{"text": "p1"}'::jsonb,
                     'model', 'gpt-4.1-mini', 'prompt_tokens', 5000, 'completion_tokens', 700, 'cached_tokens', 3000),
  jsonb_build_object('request_id', 'b57-p2', 'user_id', (select alice from b57), 'sender', 'ai_coach', 'content', '{"text": "p2"}'::jsonb,
                     'model', 'gpt-4.1-mini', 'prompt_tokens', 10, 'completion_tokens', 1),
  jsonb_build_object('request_id', 'b57-p3', 'user_id', (select alice from b57), 'sender', 'ai_coach', 'content', '{"text": "p3"}'::jsonb,
                     'model', 'no-such-model', 'prompt_tokens', 10, 'cost_usd', 0.5),
  jsonb_build_object('request_id', 'b57-p4', 'user_id', (select alice from b57), 'sender', 'ai_coach', 'content', '{"text": "p4"}'::jsonb,
                     'model', 'gpt-4o-mini', 'prompt_tokens', 100, 'created_at', '2025-01-01T00:00:00Z'))) r;
select tests.clear_authentication();
select results_eq(
  $$ select cost from b57_priced order by item $$,
  $$ values ((select private.interaction_cost(i.model, i.created_at, i.prompt_tokens, i.completion_tokens, i.cached_tokens)
               from public.coach_interactions i where i.request_id = 'b57-p1')),
            ((select private.interaction_cost(i.model, i.created_at, i.prompt_tokens, i.completion_tokens, i.cached_tokens)
               from public.coach_interactions i where i.request_id = 'b57-p2')),
            (0.5::numeric),
            (private.interaction_cost('gpt-4o-mini', '2025-01-01T00:00:00Z', 100, null, null)) $$,
  'Each item''s cost is private.interaction_cost''s (cached tokens at their price, a model with no price keeps the given cost, a back-dated item its date''s price)');
select isnt((select cost from b57_priced where item = 0), null, 'and the priced ones have a cost');

-- Values that do not fit their types refuse their item only (the statement is run again without them).
select tests.authenticate_as_service_role();
select results_eq(
  $$ select item, outcome, code, field from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-u1', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "fits"}'::jsonb),
       jsonb_build_object('request_id', 'b57-u2', 'user_id', 'not-a-uuid', 'sender', 'system', 'content', '{"text": "x"}'::jsonb),
       jsonb_build_object('request_id', 'b57-u3', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "x"}'::jsonb, 'sentiment', 1e-50),
       jsonb_build_object('request_id', 'b57-u4', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "x"}'::jsonb, 'created_at', '2026-02-30T00:00:00Z'),
       jsonb_build_object('request_id', 'b57-u5', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "x"}'::jsonb, 'prompt_tokens', 'many'))) $$,
  $$ values (0, 'created', null, null), (1, 'refused', '22P02', 'user_id'), (2, 'refused', '22003', 'sentiment'),
            (3, 'refused', '22008', 'created_at'), (4, 'refused', '22P02', 'prompt_tokens') $$,
  'An item whose value does not fit its type is refused on its own, naming the field');
select tests.clear_authentication();

-- Replays across paths and batches.
select tests.authenticate_as_service_role();
select lives_ok($$ select public.log_coach_interaction(sender => 'system', content => '{"text": "single"}', request_id => 'b57-s',
                                                       user_id => (select alice from b57)) $$, 'A key written through the single path');
select results_eq(
  $$ select item, outcome, text_ from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-s', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "single"}'::jsonb),
       jsonb_build_object('request_id', 'b57-8', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "two"}'::jsonb,
                          'session_id', (select alice_session from b57)))) $$,
  $$ values (0, 'replayed', 'single'), (1, 'replayed', 'two') $$,
  'A key written by the single path or by an earlier batch replays, returning the stored row');
select is((select (r).replayed from public.log_coach_interaction(sender => 'system', content => '{"text": "two"}', request_id => 'b57-8',
                                                                 user_id => (select alice from b57), session_id => (select alice_session from b57)) r),
  true, 'A key written by a batch replays through the single path');
select results_eq(
  $$ select outcome, code from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-s', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "other"}'::jsonb))) $$,
  $$ values ('refused', 'PT422') $$,
  'A key written by the single path with another payload is PT422');

-- A signed-in user: her own messages only, with sender user.
select tests.authenticate_as('alice@example.com');
select results_eq(
  $$ select item, outcome, code, field from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-a1', 'sender', 'user', 'content', '{"text": "mine"}'::jsonb),
       jsonb_build_object('request_id', 'b57-a2', 'sender', 'ai_coach', 'content', '{"text": "pretending"}'::jsonb),
       jsonb_build_object('request_id', 'b57-a3', 'user_id', (select bob from b57), 'sender', 'user', 'content', '{"text": "for bob"}'::jsonb),
       jsonb_build_object('request_id', 'b57-a4', 'sender', 'user', 'content', '{"text": "back-dated"}'::jsonb, 'created_at', '2020-01-01T00:00:00Z'))) $$,
  $$ values (0, 'created', null, null), (1, 'refused', '42501', 'sender'), (2, 'refused', '42501', 'user_id'), (3, 'refused', '42501', 'created_at') $$,
  'Alice logs her own user messages; another sender, another user and created_at are refused item by item');
-- Her assigned coach: human_coach messages for her; an unassigned coach and a stranger nothing.
select tests.authenticate_as('carol@example.com');
select results_eq(
  $$ select outcome, code, field from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-c1', 'user_id', (select alice from b57), 'sender', 'human_coach', 'content', '{"text": "coach"}'::jsonb),
       jsonb_build_object('request_id', 'b57-c2', 'user_id', (select alice from b57), 'sender', 'user', 'content', '{"text": "as her"}'::jsonb))) $$,
  $$ values ('created', null, null), ('refused', '42501', 'sender') $$,
  'Carol, Alice''s coach, logs human_coach messages for her and nothing else');
select tests.authenticate_as('b57-dave@example.com');
select results_eq(
  $$ select outcome, code, field from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-d1', 'user_id', (select alice from b57), 'sender', 'human_coach', 'content', '{"text": "not mine"}'::jsonb))) $$,
  $$ values ('refused', '42501', 'user_id') $$,
  'An unassigned coach is refused');
select tests.authenticate_as('bob@example.com');
select results_eq(
  $$ select outcome, code, field from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-b1', 'user_id', (select alice from b57), 'sender', 'user', 'content', '{"text": "as alice"}'::jsonb))) $$,
  $$ values ('refused', '42501', 'user_id') $$,
  'A stranger is refused');
-- The same key from two callers is two keys (scoped per caller, as on the single path).
select results_eq(
  $$ select outcome from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-a1', 'sender', 'user', 'content', '{"text": "bob''s own"}'::jsonb))) $$,
  $$ values ('created') $$,
  'Bob''s key b57-a1 is his own, not Alice''s');

-- Roles.
select tests.authenticate_as_role('coach_ingest');
select results_eq(
  $$ select outcome from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-i1', 'user_id', (select alice from b57), 'sender', 'ai_coach', 'content', '{"text": "ingested"}'::jsonb))) $$,
  $$ values ('created') $$,
  'An ingest token logs for any user');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from public.log_coach_interactions('[{}]') $$, '42501', null, 'coach_analyst cannot call it');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.log_coach_interactions('[{}]') $$, '42501', null, 'anon cannot call it');
select ok(not has_function_privilege('anon', 'public.log_coach_interactions(jsonb)', 'execute'), 'anon holds no execute on it');

-- The batch itself.
select tests.authenticate_as_service_role();
select throws_ok($$ select * from public.log_coach_interactions('{}') $$, '22023', 'items must be an array of 1 to 500 objects', 'An object is not a batch');
select throws_ok($$ select * from public.log_coach_interactions('[]') $$, '22023', 'items must be an array of 1 to 500 objects', 'An empty batch is refused');
select throws_ok($$ select * from public.log_coach_interactions((select jsonb_agg('{}'::jsonb) from generate_series(1, 501))) $$,
  '22023', 'items must be an array of 1 to 500 objects', '501 items are refused');
select throws_ok($$ select * from public.log_coach_interactions('[1]') $$, '22023', 'items must be an array of 1 to 500 objects', 'An item that is not an object is refused');
select tests.clear_authentication();
select is((select count(*)::int from public.coach_interactions where request_id like 'b57-%' and request_id not like 'b57-down%'), 12,
  'In all: two, the four priced ones, the one that fit, the single path''s one, Alice''s, Carol''s, Bob''s and the ingested one');

-- A failed broadcast never loses the interactions (realtime.send's rule, kept by the
-- statement trigger): realtime.messages refuses every row for the rest of this test.
select tests.clear_authentication();
create function pg_temp.refuse_message() returns trigger language plpgsql as $$
begin raise exception 'realtime is down'; end $$;
create trigger b57_refuse before insert on realtime.messages for each row execute function pg_temp.refuse_message();
select tests.authenticate_as_service_role();
set local client_min_messages = error;
select results_eq(
  $$ select outcome from pg_temp.outcomes(jsonb_build_array(
       jsonb_build_object('request_id', 'b57-down1', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "while down"}'::jsonb),
       jsonb_build_object('request_id', 'b57-down2', 'user_id', (select alice from b57), 'sender', 'system', 'content', '{"text": "while down"}'::jsonb))) $$,
  $$ values ('created'), ('created') $$,
  'With realtime.messages refusing, the batch is still stored');
reset client_min_messages;
select tests.clear_authentication();
drop trigger b57_refuse on realtime.messages;

-- take_rate_limit's amount: all or none.
insert into private.rate_limit_policies (endpoint, role, quota, window_seconds) values ('b57-limit', 'coach_ingest', 10, 60);
select tests.authenticate_as_service_role();
select results_eq($$ select allowed, remaining from private.take_rate_limit('b57-limit', '{"role": "coach_ingest", "t": 1}', now(), 7) $$,
  $$ values (true, 3) $$, 'Seven of ten taken at once');
select results_eq($$ select allowed, remaining from private.take_rate_limit('b57-limit', '{"role": "coach_ingest", "t": 1}', now(), 4) $$,
  $$ values (false, 3) $$, 'Four more are refused, and none is taken');
select results_eq($$ select allowed, remaining from private.take_rate_limit('b57-limit', '{"role": "coach_ingest", "t": 1}', now(), 3) $$,
  $$ values (true, 0) $$, 'The last three are taken');
select results_eq($$ select allowed, remaining from private.take_rate_limit('b57-limit', '{"role": "coach_ingest", "t": 1}') $$,
  $$ values (false, 0) $$, 'A single take after that is refused');
select results_eq($$ select allowed, remaining, reset_seconds is not null from private.take_rate_limit('b57-limit', '{"role": "coach_ingest", "t": 2}', now(), 11) $$,
  $$ values (false, 10, true) $$, 'More than the whole quota is refused on a fresh counter, with its remaining and reset');
-- At a fixed time 30 s into this token's current window (windows start at an offset per
-- caller: the hash of its key modulo the window), so the reset is known: 30 s, where the
-- older window's would be 1 (the least reported).
create temporary table b57_at as
select timestamptz '2031-01-01 00:00:00+00'
       + make_interval(secs => mod(mod(hashtextextended('coach_ingest:' || md5('{"role": "coach_ingest", "t": 3}'::jsonb::text), 0), 60) + 60, 60) + 30) as at;
grant select on b57_at to service_role;
select results_eq($$ select allowed from private.take_rate_limit('b57-limit', '{"role": "coach_ingest", "t": 3}', (select at from b57_at) - interval '5 minutes', 4) $$,
  $$ values (true) $$, 'A take in an older window');
select results_eq($$ select allowed, remaining, reset_seconds from private.take_rate_limit('b57-limit', '{"role": "coach_ingest", "t": 3}', (select at from b57_at), 11) $$,
  $$ values (false, 10, 30) $$, 'More than the quota, over an older window''s counter: the current window''s remaining and reset, not the old one''s');
select throws_ok($$ select * from private.take_rate_limit('b57-limit', '{"role": "coach_ingest"}', now(), 0) $$,
  '22023', 'amount must be between 1 and 100000', 'An amount of 0 is refused');

select * from finish();
rollback;
