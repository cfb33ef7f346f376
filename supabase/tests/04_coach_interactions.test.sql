-- The interaction log's single write path, as named users: who may log what, validation by
-- named constraints, append-only, idempotency, cost from model_prices.
begin;
select plan(44);

select tests.create_supabase_user('dave@example.com', 'coach');

-- Owner
select tests.authenticate_as('alice@example.com');
select is((select (r.interaction).sender from public.log_coach_interaction(sender => 'user', content => '{"text": "I slept badly"}', request_id => 'alice-1') r),
  'user', 'Alice logs her own user message');
select results_eq($$ select user_id, actor_id, actor_role, channel, status from public.coach_interactions where request_id = 'alice-1' $$,
  $$ values ('a11ce000-0000-4000-8000-000000000001'::uuid, 'a11ce000-0000-4000-8000-000000000001'::uuid, 'authenticated', 'chat', 'ok') $$,
  'The row records Alice as owner and actor, with defaults');
select throws_ok($$ select public.log_coach_interaction(sender => 'ai_coach', content => '{"text": "x"}') $$, '42501',
  'A user can only log messages with sender user', 'Alice cannot log an AI message');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', user_id => 'b0b00000-0000-4000-8000-000000000002') $$,
  '42501', 'Only the user, their assigned coach or the service role can log interactions for this user',
  'Alice cannot log for Bob');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', created_at => '2020-01-01') $$,
  '42501', 'Only the service role can set created_at', 'Alice cannot backdate a message');
select throws_ok($$ insert into public.coach_interactions (user_id, request_id, sender, content, actor_role) values ((select auth.uid()), 'direct', 'user', '{"text": "x"}', 'authenticated') $$,
  '42501', 'permission denied for table coach_interactions', 'Alice cannot insert directly');
select throws_ok($$ update public.coach_interactions set content = '{"text": "changed"}' $$, '42501',
  'permission denied for table coach_interactions', 'Alice cannot update her interactions');

-- Idempotency
select is((select r.replayed from public.log_coach_interaction(sender => 'user', content => '{"text": "I slept badly"}', request_id => 'alice-1') r),
  true, 'Replaying a request_id with the same payload is a replay');
select is((select count(*)::int from public.coach_interactions where request_id = 'alice-1'), 1,
  'A replay does not insert a second row');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "something else"}', request_id => 'alice-1') $$,
  'PT422', 'request_id was already used with a different payload', 'A reused request_id with another payload is refused');
select isnt((select (r.interaction).request_id from public.log_coach_interaction(sender => 'user', content => '{"text": "no key"}') r),
  null, 'A request without request_id gets a generated key');

-- Validation: each invariant is a named constraint
select throws_ok($$ select public.log_coach_interaction(sender => 'robot', content => '{"text": "x"}') $$, '42501',
  'A user can only log messages with sender user', 'An unknown sender is refused for a user');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"body": "x"}') $$, '23514',
  'new row for relation "coach_interactions" violates check constraint "coach_interactions_content_has_text"', 'Content must have a text string');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', channel => 'fax') $$, '23514',
  'new row for relation "coach_interactions" violates check constraint "coach_interactions_channel_known"', 'An unknown channel is refused');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', sentiment => 1.5) $$, '23514',
  'new row for relation "coach_interactions" violates check constraint "coach_interactions_sentiment_range"', 'Sentiment must be within -1..1');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', prompt_tokens => -1) $$, '23514',
  'new row for relation "coach_interactions" violates check constraint "coach_interactions_tokens_nonnegative"', 'Tokens cannot be negative');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', prompt_tokens => 10, cached_tokens => 11) $$, '23514',
  'new row for relation "coach_interactions" violates check constraint "coach_interactions_cached_within_prompt"', 'Cached tokens cannot exceed prompt tokens');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', status => 'error') $$, '23514',
  'new row for relation "coach_interactions" violates check constraint "coach_interactions_error_code_with_error"', 'An error needs an error code');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', tracked_skill_id_hash => 'skill-42') $$, '23514',
  'new row for relation "coach_interactions" violates check constraint "coach_interactions_tracked_skill_id_hash_format"', 'Only a SHA-256 hex digest is stored for a tracked skill');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', request_id => 'has spaces') $$, '23514',
  'new row for relation "coach_interactions" violates check constraint "coach_interactions_request_id_format"', 'A request_id must be a token');

-- Assigned coach
select tests.authenticate_as('carol@example.com');
select is((select (r.interaction).actor_id from public.log_coach_interaction(sender => 'human_coach', user_id => 'a11ce000-0000-4000-8000-000000000001', content => '{"text": "Let us look at your evening routine"}') r),
  'ca401000-0000-4000-8000-000000000003'::uuid, 'Carol logs a human_coach message for her client Alice, as actor');
select throws_ok($$ select public.log_coach_interaction(sender => 'ai_coach', user_id => 'a11ce000-0000-4000-8000-000000000001', content => '{"text": "x"}') $$,
  '42501', 'An assigned coach can only log messages with sender human_coach', 'Carol cannot log an AI message for Alice');
select is_empty($$ select 1 from public.coach_interactions $$, 'Carol cannot read interactions directly (she reads through the audited history)');

-- Unassigned coach and stranger
select tests.authenticate_as('dave@example.com');
select throws_ok($$ select public.log_coach_interaction(sender => 'human_coach', user_id => 'a11ce000-0000-4000-8000-000000000001', content => '{"text": "x"}') $$,
  '42501', 'Only the user, their assigned coach or the service role can log interactions for this user', 'An unassigned coach cannot log for Alice');
select tests.authenticate_as('bob@example.com');
select is_empty($$ select 1 from public.coach_interactions where user_id = 'a11ce000-0000-4000-8000-000000000001' $$, 'Bob cannot read Alice''s interactions');

-- anon and analyst
select tests.authenticate_as_anon();
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}') $$, '42501',
  'permission denied for function log_coach_interaction', 'anon cannot log');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}') $$, '42501',
  'permission denied for function log_coach_interaction', 'coach_analyst cannot log');

-- coach_ingest: write-only
select tests.authenticate_as_role('coach_ingest');
select is((select (r.interaction).actor_role from public.log_coach_interaction(sender => 'ai_coach', user_id => 'b0b00000-0000-4000-8000-000000000002', content => '{"text": "Try a 10 minute walk"}', model => 'gpt-4o-mini', prompt_tokens => 1000, completion_tokens => 200) r),
  'coach_ingest', 'coach_ingest logs an AI message for any user');
select throws_ok($$ select 1 from public.coach_interactions $$, '42501', 'permission denied for table coach_interactions',
  'coach_ingest cannot read interactions');
select throws_ok($$ select public.get_interaction_history(user_id => 'b0b00000-0000-4000-8000-000000000002') $$, '42501',
  'permission denied for function get_interaction_history', 'coach_ingest cannot read history');
select throws_ok($$ select public.log_coach_interaction(sender => 'ai_coach', content => '{"text": "x"}') $$, '22023',
  'user_id is required for service and ingest callers', 'coach_ingest must name the user');

-- Service role and cost
select tests.authenticate_as_service_role();
select is((select (r.interaction).cost_usd from public.log_coach_interaction(sender => 'ai_coach', user_id => 'b0b00000-0000-4000-8000-000000000002',
    content => '{"text": "x"}', model => 'gpt-4o', prompt_tokens => 1000000, completion_tokens => 1000000, created_at => '2024-10-01 23:59:59+00') r),
  20.00000000::numeric, 'gpt-4o the second before the price change costs $5 + $15 per million');
select is((select (r.interaction).cost_usd from public.log_coach_interaction(sender => 'ai_coach', user_id => 'b0b00000-0000-4000-8000-000000000002',
    content => '{"text": "x"}', model => 'gpt-4o-2024-08-06', prompt_tokens => 1000000, cached_tokens => 400000, completion_tokens => 1000000, created_at => '2024-10-02 00:00:00+00') r),
  (0.6 * 2.50 + 0.4 * 1.25 + 10.00)::numeric, 'At the change, the new price applies, with cached input at its own price');
select is((select (r.interaction).cost_usd from public.log_coach_interaction(sender => 'ai_coach', user_id => 'b0b00000-0000-4000-8000-000000000002',
    content => '{"text": "x"}', model => 'gpt-4o-mini', prompt_tokens => 2000, completion_tokens => 500, cost_usd => 99) r),
  round((2000 * 0.15 + 500 * 0.60) / 1e6, 8), 'A known model''s cost is computed; the client''s figure is ignored');
select is((select (r.interaction).cost_usd from public.log_coach_interaction(sender => 'ai_coach', user_id => 'b0b00000-0000-4000-8000-000000000002',
    content => '{"text": "x"}', model => 'house-model-v1', prompt_tokens => 10, completion_tokens => 10, cost_usd => 0.0042) r),
  0.0042::numeric, 'With no known price, the client''s cost is kept');
insert into public.model_price_overrides (model_pattern, provider, input_usd_per_mtok, output_usd_per_mtok, effective_from)
values ('^gpt-4o-mini', 'openai', 0.10, 0.40, '2025-01-01');
select is((select (r.interaction).cost_usd from public.log_coach_interaction(sender => 'ai_coach', user_id => 'b0b00000-0000-4000-8000-000000000002',
    content => '{"text": "x"}', model => 'gpt-4o-mini', prompt_tokens => 1000000, completion_tokens => 1000000) r),
  0.50000000::numeric, 'An override price wins over the seeded one');
select throws_ok($$ insert into public.model_prices (model_pattern, provider, input_usd_per_mtok, output_usd_per_mtok, effective_from) values ('^gpt-(', 'openai', 1, 1, now()) $$,
  '23514', 'model_pattern is not a valid regular expression: ^gpt-(', 'A model pattern must be a valid regex');
select throws_ok($$ update public.coach_interactions set sentiment = 0 $$, '42501',
  'permission denied for table coach_interactions', 'The service role cannot update an interaction');
select throws_ok($$ delete from public.coach_interactions $$, '42501',
  'permission denied for table coach_interactions', 'The service role has no DELETE on interactions');
select tests.clear_authentication();
select throws_ok($$ update public.coach_interactions set sentiment = 0 $$, '42501',
  'public.coach_interactions is append-only: rows cannot be updated or deleted', 'Even the owner of the table cannot update an interaction');
select throws_ok($$ truncate public.coach_interactions cascade $$, '42501',
  'public.coach_interactions is append-only: rows cannot be updated or deleted', 'Nobody can truncate the interaction log');
select throws_ok($$ delete from public.coach_interactions $$, '42501',
  'public.coach_interactions is append-only: rows cannot be updated or deleted', 'Even the owner of the table cannot delete an interaction');

-- Erasure: deleting the user removes their interactions and idempotency keys (the one
-- delete the append-only guard lets through is the cascade from auth.users).
select tests.create_supabase_user('erin@example.com');
select tests.authenticate_as('erin@example.com');
select public.log_coach_interaction(sender => 'user', content => '{"text": "Please forget me"}', request_id => 'erin-1');
select tests.clear_authentication();
delete from auth.users where email = 'erin@example.com';
select is_empty($$ select 1 from public.coach_interactions where request_id = 'erin-1' $$,
  'Deleting a user erases their interactions');
select is_empty($$ select 1 from private.interaction_requests where request_id = 'erin-1' $$,
  'Deleting a user erases their idempotency keys');

select * from finish();
rollback;
