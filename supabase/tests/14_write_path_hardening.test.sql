-- Hardened write paths: JSON and text bounds, reads that survive hostile rows stored before
-- the bounds, session references scoped to the same user, erasure as the only delete, and
-- idempotency over the normalised request with keys scoped by actor.
begin;
select plan(59);
-- Hold the rollup lock for the whole file, as the rollup functions do before they touch the
-- change log and the metrics: pg_cron's refresh (every 2 minutes) then waits for this file
-- instead of deadlocking with it over rows this file changed.
select pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

select tests.create_supabase_user('hank@example.com', null, 'Hank Hostile');
select tests.create_supabase_user('ivy@example.com', null, 'Ivy Ivers');

-- Sessions: one of Alice's (seeded), one of Bob's.
select tests.authenticate_as('bob@example.com');
create temporary table bob_session as select (public.start_coaching_session(theme => 'Bob''s')).id;
grant select on bob_session to authenticated, service_role;
select tests.clear_authentication();

-- JSON bounds --------------------------------------------------------------------------

select tests.authenticate_as('hank@example.com');
select lives_ok($$ select public.log_coach_interaction(sender => 'user',
    content => ('{"text": "deep", "x": ' || repeat('[', 30) || '1' || repeat(']', 30) || '}')::jsonb) $$,
  'Content nested 32 levels deep is accepted');
select throws_ok($$ select public.log_coach_interaction(sender => 'user',
    content => ('{"text": "deep", "x": ' || repeat('[', 31) || '1' || repeat(']', 31) || '}')::jsonb) $$,
  '23514', 'content is nested deeper than 32 levels', 'Content nested 33 levels deep is refused, naming the bound');
select throws_ok($$ select public.log_coach_interaction(sender => 'user',
    content => ('{"text": "deep", "x": ' || repeat('[', 1500) || repeat(']', 1500) || '}')::jsonb) $$,
  '23514', 'content is nested deeper than 32 levels', 'Content nested 1,500 levels deep is refused');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => jsonb_build_object('text', repeat('a', 32769))) $$,
  '23514', 'content has a string longer than 32768 characters', 'A string over 32,768 characters is refused');
select throws_ok($$ select public.log_coach_interaction(sender => 'user',
    content => jsonb_build_object('text', 'x') || (select jsonb_object_agg('k' || n, n) from generate_series(1, 2000) n)) $$,
  '23514', 'content has more than 2000 values', 'More than 2,000 values in an object are refused');
select throws_ok($$ select public.log_coach_interaction(sender => 'user',
    content => jsonb_build_object('text', 'x', 'a', (select jsonb_agg('[1]'::jsonb) from generate_series(1, 12900)))) $$,
  '23514', 'content has more than 2000 values', 'More than 2,000 values in arrays (52 KB of [1]) are refused too');
select throws_ok($$ select public.log_coach_interaction(sender => 'user',
    content => jsonb_build_object('text', 'x', repeat('k', 32769), 1)) $$,
  '23514', 'content has a key longer than 32768 characters', 'A key over 32,768 characters is refused');
select throws_ok($$ select public.log_coach_interaction(sender => 'user',
    content => jsonb_build_object('text', 'x', 'list', (select jsonb_agg(repeat('b', 1000)) from generate_series(1, 70)))) $$,
  '23514', 'content is larger than 65536 bytes', 'Content over 64 KiB is refused');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}',
    metadata => ('{"m": ' || repeat('{"a": ', 40) || '1' || repeat('}', 40) || '}')::jsonb) $$,
  '23514', 'metadata is nested deeper than 32 levels', 'Metadata is bounded too');
select throws_ok($$ select public.log_interaction_event(kind => 'feedback', payload => jsonb_build_object('note', repeat('n', 8193))) $$,
  '23514', 'payload has a string longer than 8192 characters', 'An event payload is bounded');
select throws_ok($$ select public.update_my_profile(preferences => jsonb_build_object('theme', repeat('t', 2001))) $$,
  '23514', 'preferences has a string longer than 2000 characters', 'Profile preferences are bounded');
select throws_ok($$ select public.update_my_profile(display_name => repeat('H', 201)) $$,
  '23514', 'new row for relation "profiles" violates check constraint "profiles_display_name_length"', 'A display name over 200 characters is refused');
select tests.clear_authentication();
select throws_ok($$ insert into public.coach_interactions (user_id, request_id, sender, content, actor_role)
    values (tests.get_user_id('hank@example.com'), 'direct', 'user', ('{"text": "x", "d": ' || repeat('[', 40) || repeat(']', 40) || '}')::jsonb, 'postgres') $$,
  '23514', 'new row for relation "coach_interactions" violates check constraint "coach_interactions_content_bounded"',
  'The bound refuses a deep document on any write path (a direct insert too)');
select throws_ok($$ insert into public.coach_interactions (user_id, request_id, sender, content, metadata, actor_role)
    values (tests.get_user_id('hank@example.com'), 'direct-ok', 'user', '{"text": "fine"}', '{}', 'postgres'),
           (tests.get_user_id('hank@example.com'), 'direct-wide', 'user', '{"text": "x"}',
            jsonb_build_object('ids', (select jsonb_agg(n) from generate_series(1, 600) n)), 'postgres') $$,
  '23514', 'new row for relation "coach_interactions" violates check constraint "coach_interactions_metadata_bounded"',
  'The bounds are checked on every row of a multi-row insert, not only the first');
select is_empty($$ select 1 from public.coach_interactions where request_id in ('direct-ok', 'direct-wide') $$,
  'and the refused statement stores none of its rows');
select throws_ok($$ insert into public.interaction_events (user_id, kind, payload, actor_role)
    values (tests.get_user_id('hank@example.com'), 'read', jsonb_build_object('ids', (select jsonb_agg(n) from generate_series(1, 600) n)), 'postgres') $$,
  '23514', 'new row for relation "interaction_events" violates check constraint "interaction_events_payload_bounded"',
  'An event payload over the bounds is refused on a direct insert');
select throws_ok($$ insert into public.interaction_events (user_id, kind, category, actor_role)
    values (tests.get_user_id('hank@example.com'), 'read', E'a\nb', 'postgres') $$,
  '23514', 'new row for relation "interaction_events" violates check constraint "interaction_events_category_format"',
  'A category with a control character is refused on a direct insert');
select ok(private.json_limit_violation(('[' || repeat('[', 2500) || repeat(']', 2500) || ']')::jsonb, 32, 10, 10, 1000000) = 'is nested deeper than 32 levels',
  'The bound check judges a document 2,500 levels deep without running out of stack');

-- Hostile rows stored before the bounds (simulated: the bounds trigger off for the inserts)
alter table public.coach_interactions disable trigger coach_interactions_check_bounds;
insert into public.coach_interactions (user_id, request_id, sender, content, metadata, actor_role, created_at)
values (tests.get_user_id('hank@example.com'), 'hostile-1', 'user',
        ('{"text": "Hank at 555-123-4567", "deep": ' || repeat('[', 1500) || '"hank@example.com"' || repeat(']', 1500) || '}')::jsonb,
        '{}', 'postgres', '2031-02-01 10:00:00+00');
select tests.authenticate_as('hank@example.com');
select is((select content ->> 'text' from public.get_interaction_history(redacted => true) where request_id = 'hostile-1'),
  '[NAME] at [PHONE]', 'A redacted read of a 1,500-deep row works and redacts its text');
select is((select jsonb_typeof(content -> 'deep') from public.get_interaction_history(redacted => true) where request_id = 'hostile-1'),
  'array', 'The hostile row keeps its shape down to the depth bound');
select is((select content ->> 'text' from public.coach_interactions_public where request_id = 'hostile-1'),
  '[NAME] at [PHONE]', 'Owners'' redacted view reads the row');
select ok((select content::text like '%[REDACTED: nested deeper than 32 levels]%' from public.coach_interactions_public where request_id = 'hostile-1'),
  'Below depth 32 the redacted copy holds a placeholder, not the stored value');
select is((select count(*)::int from public.get_interaction_history() where request_id = 'hostile-1'), 1,
  'The raw read of the row works too');
select tests.authenticate_as_role('coach_analyst');
select is((select count(*)::int from analytics.coach_interactions_redacted where content ->> 'text' = '[NAME] at [PHONE]' and created_at = '2031-02-01 10:00:00+00'), 1,
  'Analysts'' redacted view survives the hostile row');
select isnt((select count(*) from analytics.coach_interactions_redacted), 0::bigint, 'and still lists every row');
select tests.clear_authentication();
select lives_ok($$ select * from analytics.aggregate_interaction_metrics('2031-02-01') $$, 'The rollup runs over the hostile row');
-- A row with more values than any writable one (25,800: stored before the bounds) is not
-- walked value by value: redaction replaces it whole.
insert into public.coach_interactions (user_id, request_id, sender, content, metadata, actor_role, created_at)
values (tests.get_user_id('hank@example.com'), 'hostile-wide', 'user',
        jsonb_build_object('text', 'hank@example.com', 'a', (select jsonb_agg('[1]'::jsonb) from generate_series(1, 12900))),
        '{}', 'postgres', '2031-02-01 11:00:00+00');
select is(private.redact_content((select content from public.coach_interactions where request_id = 'hostile-wide')),
  '{"text": "[REDACTED: larger than any value written within the bounds]"}'::jsonb,
  'A value with more values than any writable one is redacted whole, not walked');
select is(private.redact_content((select content from public.coach_interactions where request_id = 'hostile-1'), '{}') ->> 'text',
  'Hank at [PHONE]', 'A row within the value count is still redacted field by field');
alter table public.coach_interactions enable trigger coach_interactions_check_bounds;

-- Session references -------------------------------------------------------------------

select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}',
    session_id => 'a11ce000-5e55-4000-8000-000000000001') $$,
  '23503', 'session_id does not name a coaching session of this user', 'Bob cannot attach his message to Alice''s session');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', session_id => gen_random_uuid()) $$,
  '23503', 'session_id does not name a coaching session of this user', 'An unknown session gets the same error');
select lives_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "x"}', session_id => (select id from bob_session)) $$,
  'Bob attaches a message to his own session');
select throws_ok($$ select public.log_interaction_event(kind => 'session_state', session_id => 'a11ce000-5e55-4000-8000-000000000001') $$,
  '23503', 'session_id does not name a coaching session of this user', 'Bob cannot attach an event to Alice''s session');
select throws_ok($$ select public.log_interaction_event(kind => 'session_state', session_id => gen_random_uuid()) $$,
  '23503', 'session_id does not name a coaching session of this user', 'An event''s unknown session gets the same error');
select tests.authenticate_as('carol@example.com');
select lives_ok($$ select public.log_coach_interaction(sender => 'human_coach', user_id => 'a11ce000-0000-4000-8000-000000000001',
    content => '{"text": "Good session"}', session_id => 'a11ce000-5e55-4000-8000-000000000001') $$,
  'Alice''s coach attaches a note to Alice''s session');
select throws_ok($$ select public.log_coach_interaction(sender => 'human_coach', user_id => 'a11ce000-0000-4000-8000-000000000001',
    content => '{"text": "x"}', session_id => (select id from bob_session)) $$,
  '23503', 'session_id does not name a coaching session of this user', 'A coach cannot attach a client''s row to another user''s session');
select tests.authenticate_as_service_role();
select throws_ok($$ select public.log_coach_interaction(sender => 'ai_coach', user_id => 'b0b00000-0000-4000-8000-000000000002',
    content => '{"text": "x"}', session_id => 'a11ce000-5e55-4000-8000-000000000001') $$,
  '23503', 'session_id does not name a coaching session of this user', 'The service role cannot cross-attach either');
select throws_ok($$ select public.log_interaction_event(kind => 'session_state', user_id => 'b0b00000-0000-4000-8000-000000000002',
    session_id => 'a11ce000-5e55-4000-8000-000000000001') $$,
  '23503', 'session_id does not name a coaching session of this user', 'Nor for events');

-- Erasure is the only delete -----------------------------------------------------------

select throws_ok($$ delete from public.coaching_sessions where id = (select id from bob_session) $$,
  '42501', 'public.coach_interactions is append-only: rows cannot be updated or deleted',
  'Deleting a session with interactions is refused: its rows are not erased by it');
select tests.clear_authentication();
select throws_ok($$ delete from public.profiles where id = tests.get_user_id('hank@example.com') $$,
  '42501', 'A profile is deleted only with its user: use public.erase_user (or delete the auth.users row)',
  'Deleting a profile without erasing the user is refused too');
select is((select count(*)::int from public.coach_interactions where user_id = 'b0b00000-0000-4000-8000-000000000002' and session_id = (select id from bob_session)), 1,
  'Bob''s session row is still there');
delete from auth.users where email = 'ivy@example.com';
select lives_ok($$ delete from auth.users where email = 'hank@example.com' $$, 'Erasing a user (deleting their auth.users row) is allowed');
select is_empty($$ select 1 from public.coach_interactions where request_id = 'hostile-1' $$, 'and removes their interactions, the hostile one included');
-- A row of someone else's written before references were checked, and so before the
-- bounds too (simulated: inserted directly, out of today's bounds, with the bounds trigger
-- off), neither blocks the session owner's erasure nor goes with it.
select tests.create_supabase_user('lea@example.com');
select tests.create_supabase_user('max@example.com');
insert into public.coaching_sessions (id, user_id) values ('1ea00000-5e55-4000-8000-000000000001', tests.get_user_id('lea@example.com'));
alter table public.coach_interactions disable trigger coach_interactions_check_bounds;
alter table public.interaction_events disable trigger interaction_events_check_bounds;
insert into public.coach_interactions (user_id, session_id, request_id, sender, content, metadata, actor_role)
values (tests.get_user_id('max@example.com'), '1ea00000-5e55-4000-8000-000000000001', 'legacy-cross', 'user', '{"text": "old"}',
        jsonb_build_object('ids', (select jsonb_agg(n) from generate_series(1, 600) n)), 'postgres');
insert into public.interaction_events (user_id, session_id, kind, category, payload, actor_role)
values (tests.get_user_id('max@example.com'), '1ea00000-5e55-4000-8000-000000000001', 'read', E'old\ttab',
        jsonb_build_object('ids', (select jsonb_agg(n) from generate_series(1, 600) n)), 'postgres');
alter table public.coach_interactions enable trigger coach_interactions_check_bounds;
alter table public.interaction_events enable trigger interaction_events_check_bounds;
select throws_ok($$ delete from public.coaching_sessions where id = '1ea00000-5e55-4000-8000-000000000001' $$, '42501',
  'public.coach_interactions is append-only: rows cannot be updated or deleted',
  'Outside an erasure, Lea''s session cannot be deleted while rows reference it');
select lives_ok($$ delete from auth.users where email = 'lea@example.com' $$,
  'Erasing Lea works although an old row of Max''s referenced her session');
select results_eq($$ select session_id from public.coach_interactions where request_id = 'legacy-cross' $$,
  $$ values (null::uuid) $$, 'Max''s interaction stays, without the reference');
select results_eq($$ select session_id from public.interaction_events where user_id = tests.get_user_id('max@example.com') $$,
  $$ values (null::uuid) $$, 'Max''s event stays, without the reference');
select throws_ok($$ update public.coach_interactions set content = '{"text": "changed"}' where request_id = 'legacy-cross' $$, '42501',
  'public.coach_interactions is append-only: rows cannot be updated or deleted',
  'Even in a transaction that erased a user, no other change to a row is allowed');
select is((select count(*)::int from private.user_erasures where erased_at = now() and xact_id = pg_current_xact_id()), 3,
  'Each erasure is recorded with its transaction');

-- Idempotency --------------------------------------------------------------------------

select tests.authenticate_as('alice@example.com');
-- As the function sends it (defaults passed as null or '{}') ...
select is((select r.replayed from public.log_coach_interaction(sender => 'user', content => '{"text": "normalised"}', request_id => 'norm-1',
    channel => null, status => null, metadata => '{}', cost_usd => null) r), false, 'A first write through the function''s argument shape');
-- ... and as supabase.rpc sends it (defaults omitted).
select is((select r.replayed from public.log_coach_interaction(sender => 'user', content => '{"text": "normalised"}', request_id => 'norm-1') r),
  true, 'The same request through the RPC''s argument shape is a replay, not a conflict');
select throws_ok($$ select public.log_coach_interaction(sender => 'user', content => '{"text": "other"}', request_id => 'norm-1') $$,
  'PT422', 'request_id was already used with a different payload', 'Another payload under the key is still refused');
select tests.authenticate_as('carol@example.com');
select is((select r.replayed from public.log_coach_interaction(sender => 'human_coach', user_id => 'a11ce000-0000-4000-8000-000000000001',
    content => '{"text": "coach note"}', request_id => 'norm-1') r), false,
  'The coach''s key norm-1 is in her own key space: no conflict with Alice''s');
select is((select count(*)::int from public.get_interaction_history(user_id => 'a11ce000-0000-4000-8000-000000000001') where request_id = 'norm-1'), 2,
  'Both rows exist');
select tests.authenticate_as_service_role();
select is((select r.replayed from public.log_coach_interaction(sender => 'ai_coach', user_id => 'a11ce000-0000-4000-8000-000000000001',
    content => '{"text": "svc"}', request_id => 'svc-1', cost_usd => 1.50) r), false, 'A service write');
select tests.authenticate_as_role('coach_ingest');
select is((select r.replayed from public.log_coach_interaction(sender => 'ai_coach', user_id => 'a11ce000-0000-4000-8000-000000000001',
    content => '{"text": "svc"}', request_id => 'svc-1', cost_usd => 1.5) r), true,
  'The service role and ingest tokens share one key space, and 1.50 and 1.5 are the same cost');
-- A key stored before normalisation holds the hash of the raw arguments: it still replays.
select tests.clear_authentication();
update private.interaction_requests set payload_hash = encode(extensions.digest(jsonb_build_array(
    'a11ce000-0000-4000-8000-000000000001'::uuid, 'user', '{"text": "normalised"}'::jsonb, 'chat', null::uuid, null::uuid, null::text,
    '{}'::jsonb, null::text, null::int, null::int, null::int, null::int, null::numeric, null::real, null::text, 'ok', null::text, null::text,
    null::timestamptz)::text, 'sha256'), 'hex')
 where request_id = 'norm-1' and actor_scope = 'a11ce000-0000-4000-8000-000000000001';
select tests.authenticate_as('alice@example.com');
select is((select r.replayed from public.log_coach_interaction(sender => 'user', content => '{"text": "normalised"}', request_id => 'norm-1') r),
  true, 'A key stored with the legacy hash of the raw arguments still replays');
-- The key's hash does not depend on the session's time zone or float output settings: a
-- retry through a connection set up differently is still a replay.
select tests.authenticate_as_service_role();
set local timezone = 'America/Los_Angeles';
set local extra_float_digits = 0;
select is((select r.replayed from public.log_coach_interaction(sender => 'user', user_id => 'a11ce000-0000-4000-8000-000000000001',
    content => '{"text": "tz"}', request_id => 'tz-1', sentiment => 0.123456789, created_at => '2031-03-01 12:00:00+00') r), false,
  'A backdated write from a session in Los Angeles');
set local timezone = 'Asia/Kolkata';
set local extra_float_digits = 3;
select is((select r.replayed from public.log_coach_interaction(sender => 'user', user_id => 'a11ce000-0000-4000-8000-000000000001',
    content => '{"text": "tz"}', request_id => 'tz-1', sentiment => 0.123456789, created_at => '2031-03-01 17:30:00+05:30') r), true,
  'The same request from a session in Kolkata (the same instant, written in its zone) is a replay');
reset timezone;
reset extra_float_digits;
select is((select r.replayed from public.log_coach_interaction(sender => 'user', user_id => 'a11ce000-0000-4000-8000-000000000001',
    content => '{"text": "tz"}', request_id => 'tz-1', sentiment => 0.123456789, created_at => '2031-03-01 12:00:00Z') r), true,
  'and from a session in UTC');
select * from finish();
rollback;
