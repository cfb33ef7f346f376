-- Erasure (issue 16): public.erase_user as each named role; its refusals (no reason, unknown
-- user, a legal hold) change nothing; afterwards no row names the user, the export finds
-- nothing, the rollups add up to the same totals (also after the refresh and a recompute
-- from raw rows), the metrics live on under a pseudonym that is neither the user's id nor
-- their key, their media objects are due for deletion at once, the tombstone says who
-- erased whom, when and why, and a retry gets the same answer. Deleting the auth.users row
-- directly (Auth's deleteUser) takes the same path and leaves a tombstone without a reason.
begin;
select plan(53);
-- Hold the rollup lock for the whole file (see 60): pg_cron's refresh waits for this file.
select pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

select tests.create_supabase_user('eric63@example.com');
select tests.create_supabase_user('hana63@example.com');
select tests.create_supabase_user('stan63@example.com');
select tests.create_supabase_user('cora63@example.com', 'coach');
select tests.create_supabase_user('dora63@example.com');
create temporary table u63 as
select tests.get_user_id('eric63@example.com') as eric, tests.get_user_id('hana63@example.com') as hana,
       tests.get_user_id('dora63@example.com') as dora, '63000000-5e55-4000-8000-000000000001'::uuid as session,
       '63000000-c0a1-4000-8000-000000000001'::uuid as conversation,
       (now() at time zone 'UTC')::date as today;
grant select on u63 to anon, authenticated, service_role, coach_ingest, coach_analyst;

-- Eric: a session, a conversation with an AI reply (model, tokens, cost) and a coach's reply
-- (a response), a rating, a media object, a rate-limit counter, retention progress, an
-- organisation he created. Hana has a message too, and is under a legal hold.
insert into public.coaching_sessions (id, user_id, theme) values ((select session from u63), (select eric from u63), 'Knee');
select public.log_coach_interaction(sender => s, user_id => (select eric from u63), content => jsonb_build_object('text', t),
  conversation_id => (select conversation from u63), coach_persona => p, model => m, latency_ms => l,
  prompt_tokens => pt, completion_tokens => ct, created_at => (select today from u63)::timestamp at time zone 'UTC' + at::interval)
from (values ('user', 'My knee hurts, Eric here.', null, null, null, null, null, '01:00'),
             ('ai_coach', 'Rest it, Eric.', 'encourager', 'house-model', 700, 900, 60, '01:00:02'),
             ('user', 'Still hurts.', null, null, null, null, null, '01:10'),
             ('human_coach', 'Let us talk tomorrow.', 'cora', null, null, null, null, '01:20')) v(s, t, p, m, l, pt, ct, at);
select public.log_interaction_event(kind => 'rating', user_id => (select eric from u63), score => 4::smallint,
  created_at => (select today from u63)::timestamp at time zone 'UTC' + interval '01:30');
select public.log_coach_interaction(sender => 'user', user_id => (select hana from u63), content => '{"text": "Hana"}');
insert into storage.objects (bucket_id, name, owner, metadata)
values ('session-media', format('u/%s/s/%s/1795521600000/knee.json', (select eric from u63), (select session from u63)),
        (select eric from u63), '{"mimetype": "application/json", "size": 10}');
insert into private.rate_limit_counters (endpoint, subject, window_start, used)
values ('media', 'user:' || (select eric from u63), date_trunc('hour', now()), 3);
insert into private.retention_progress (data_kind, user_id, done_before) values ('interaction_events', (select eric from u63), now());
insert into public.tenants (id, name, created_by) values ('63000000-7e4a-4000-8000-000000000001', 'Eric''s gym', (select eric from u63));

-- The rollup as pg_cron leaves it (every pending day: the seed's go back years), then one more
-- message of Eric's that no refresh has seen.
select * from analytics.refresh_interaction_metrics(36500);
create view pg_temp.totals_now as
select (select sum(messages) from analytics.coach_usage_daily) as messages,
       (select sum(cost_usd) from analytics.coach_usage_daily) as cost_usd,
       (select sum(satisfaction_count) from analytics.coach_usage_daily) as ratings,
       (select sum(response_count) from analytics.coach_interaction_metrics) as responses,
       (select sum(calls) from analytics.coach_model_usage_hourly) as llm_calls,
       (select sum(cost_usd) from analytics.coach_model_usage_hourly) as model_cost_usd,
       (select sum(prompt_tokens + completion_tokens) from analytics.coach_model_usage_hourly) as tokens;
create temporary table totals_before as select * from pg_temp.totals_now;
select public.log_coach_interaction(sender => 'ai_coach', user_id => (select eric from u63), content => '{"text": "Ice it."}',
  conversation_id => (select conversation from u63), coach_persona => 'encourager', model => 'house-model', latency_ms => 500,
  prompt_tokens => 100, completion_tokens => 10, cost_usd => 0.5,
  created_at => (select today from u63)::timestamp at time zone 'UTC' + interval '02:00');
-- What the rollup must add up to once that message is in: one message, one response (an AI reply
-- with its latency), one call, 110 tokens, $0.50 more.
create temporary table totals_expected as
select messages + 1 as messages, cost_usd + 0.5 as cost_usd, ratings, responses + 1 as responses, llm_calls + 1 as llm_calls,
       model_cost_usd + 0.5 as model_cost_usd, tokens + 110 as tokens
from totals_before;
grant select on totals_expected to service_role;

-- Who may erase -------------------------------------------------------------------------

select tests.authenticate_as_anon();
select throws_ok($$ select public.erase_user((select eric from u63), 'gone') $$, '42501', null, 'anon cannot erase a user');
select tests.authenticate_as('eric63@example.com');
select throws_ok($$ select public.erase_user((select eric from u63), 'gone') $$, '42501', null, 'a user cannot erase themselves through it');
select tests.authenticate_as('stan63@example.com');
select throws_ok($$ select public.erase_user((select eric from u63), 'gone') $$, '42501', null, 'nor can a stranger');
select tests.authenticate_as('cora63@example.com');
select throws_ok($$ select public.erase_user((select eric from u63), 'gone') $$, '42501', null, 'nor can a coach');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select public.erase_user((select eric from u63), 'gone') $$, '42501', null, 'nor can an ingest token');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select public.erase_user((select eric from u63), 'gone') $$, '42501', null, 'nor can an analyst');

select tests.clear_authentication();
select ok(not exists (
  select 1 from unnest(array['private.apply_interaction_metrics_changes(integer, uuid)', 'private.user_has_rows_in_hour(uuid, timestamptz)',
                             'private.media_key_of_erased_user(text)', 'private.trigger_deidentify_erased_profile()']::regprocedure[]) f
  cross join unnest(array['authenticated', 'service_role', 'coach_ingest', 'coach_analyst']) r
  where has_function_privilege(r, f, 'execute')),
  'No API role runs the erasure''s internal functions (the service role goes through erase_user)');

-- Refusals change nothing ---------------------------------------------------------------

select tests.authenticate_as_service_role();
select throws_ok($$ select public.erase_user((select eric from u63), null) $$, '22023', 'reason must be 1 to 1000 characters',
  'The service role must give a reason');
select throws_ok($$ select public.erase_user((select eric from u63), '   ') $$, '22023', 'reason must be 1 to 1000 characters',
  'A blank reason is no reason');
select throws_ok($$ select public.erase_user((select eric from u63), repeat('x', 1001)) $$, '22023', 'reason must be 1 to 1000 characters',
  'A reason longer than 1000 characters is refused');
select throws_ok($$ select public.erase_user(null, 'gone') $$, '22023', 'user_id is required', 'user_id is required');
select throws_ok($$ select public.erase_user('63000000-0000-4000-8000-00000000dead', 'gone') $$, 'PT404', 'user_id does not name a user',
  'An unknown user is PT404');
select public.place_legal_hold((select hana from u63), 'Litigation 63');
select throws_ok($$ select public.erase_user((select hana from u63), 'gone') $$, 'PT409',
  format('User %s is under 1 active legal hold(s): erasure is refused', (select hana from u63)),
  'A user under a legal hold is refused with PT409');
select throws_ok($$ delete from public.profiles where id = tests.get_user_id('stan63@example.com') $$, '42501',
  'A profile is deleted only with its user: use public.erase_user (or delete the auth.users row)',
  'The service role cannot delete a profile on its own (it would take no metrics and leave a false tombstone)');
select tests.clear_authentication();
select ok(exists (select 1 from auth.users where id = (select hana from u63))
          and exists (select 1 from public.coach_interactions where user_id = (select hana from u63))
          and exists (select 1 from public.profiles where id = tests.get_user_id('stan63@example.com'))
          and not exists (select 1 from audit.privacy_log where operation = 'user_erased'
                          and subject_user_id in ((select hana from u63), (select eric from u63), tests.get_user_id('stan63@example.com'))),
  'The refusals erased nothing and left no tombstone');

-- Erasure -------------------------------------------------------------------------------

-- Other erased users' pseudonyms (earlier runs on this database), to tell Eric's apart.
create temporary table erased_before as select distinct user_id from analytics.coach_interaction_metrics_hourly where erased;
select tests.authenticate_as_service_role();
create temporary table result63 as select public.erase_user((select eric from u63), 'Erasure request 2026-114 by email') as r;
select tests.clear_authentication();
select is((select r - 'erased_at' - 'tombstone_id' - 'media_deletion_request' from result63),
  jsonb_build_object('user_id', (select eric from u63), 'replayed', false, 'media_objects', 1,
    'removed', jsonb_build_object('interactions', 5, 'events', 1, 'sessions', 1, 'action_plans', 0, 'assessments', 0,
      'applications', 0, 'opportunities', 0, 'session_media', 0, 'notifications', 0, 'tenant_memberships', 0),
    'metrics_kept', jsonb_build_object('hourly_rows', 2, 'daily_rows', 1)),
  'erase_user answers what it removed (counts), what metrics it kept and how many media objects go');
select isnt((select r ->> 'media_deletion_request' from result63), null, 'and the pg_net request that deletes the media');
select is((select count(*)::int from net.http_request_queue
           where id = (select (r ->> 'media_deletion_request')::bigint from result63) and url like '%/functions/v1/media-retention'), 1,
  'The media-retention function is invoked through pg_net (sent when the erasure commits)');

-- The tombstone.
select results_eq(
  $$ select actor_role, subject_user_id, reason, details ->> 'via' from audit.privacy_log where operation = 'user_erased' and subject_user_id = (select eric from u63) $$,
  $$ values ('service_role'::text, (select eric from u63), 'Erasure request 2026-114 by email'::text, 'erase_user'::text) $$,
  'One tombstone: the service role erased Eric now, with its reason');
select is((select id from audit.privacy_log where operation = 'user_erased' and subject_user_id = (select eric from u63)), (select (r ->> 'tombstone_id')::bigint from result63),
  'The answer names the tombstone');
select is((select details -> 'removed' from audit.privacy_log where operation = 'user_erased' and subject_user_id = (select eric from u63)), (select r -> 'removed' from result63),
  'The tombstone keeps the counts');

-- No row names Eric any more, anywhere in any table of the app's and the platform's schemas
-- (whole rows read as text, so JSON and Realtime's copies count), besides the erasure's own
-- registration (which the append-only guard reads) and the media object; the audit schema
-- keeps his id by design (the tombstone, who read his data).
create function pg_temp.rows_naming(target uuid) returns table (tbl text, n bigint) language plpgsql as $$
declare t record;
begin
  for t in select c.relnamespace::regnamespace::text as schema_name, c.relname::text as table_name
           from pg_class c
           where c.relkind in ('r', 'p') and not c.relispartition
             and c.relnamespace::regnamespace::text in ('public', 'private', 'analytics', 'storage', 'auth', 'realtime', 'net', 'vault')
  loop
    return query execute format('select %L, count(*) from %I.%I t where t::text like %L',
      t.schema_name || '.' || t.table_name, t.schema_name, t.table_name, '%' || target || '%');
  end loop;
end;
$$;
select results_eq($$ select tbl from pg_temp.rows_naming((select eric from u63)) where n > 0 order by 1 $$,
  $$ values ('private.user_erasures'), ('storage.objects') $$,
  'Only the erasure''s registration and the media object (deleted through the Storage API, next) still name Eric: not Realtime''s copies of his messages either');
select results_eq($$ select id, reason from public.claim_due_session_media() where storage_path like 'u/' || (select eric from u63) || '/%' $$,
  $$ values (null::uuid, 'erased'::text) $$,
  'His media object is due at once (erased), not an hour after its upload as an orphan');

-- His export finds nothing: with his access token (valid until it expires), every section
-- is empty; the service role's export for him is PT404.
select tests._act_as('authenticated', jsonb_build_object('sub', (select eric from u63), 'role', 'authenticated'));
select is((select count(*)::int from private.export_user_data(null) where section <> 'profile'), 0,
  'The export of an erased user, with his own token, has no rows in any section');
select is((select item from private.export_user_data(null) where section = 'profile'),
  '{"account": null, "profile": null}'::jsonb, 'and no account or profile');
select tests.authenticate_as_service_role();
select throws_ok($$ select * from private.record_data_export((select eric from u63)) $$, 'PT404', null,
  'The service role''s export-my-data for him is PT404');
select tests.clear_authentication();

-- The rollups add up to the same totals: the pending message applied, Eric's share kept.
select results_eq($$ select * from pg_temp.totals_now $$, $$ select * from totals_expected $$,
  'The rollups add up to what they held before, plus the message no refresh had seen');
select * from analytics.refresh_interaction_metrics();
select results_eq($$ select * from pg_temp.totals_now $$, $$ select * from totals_expected $$, 'and after the next refresh');
select * from analytics.aggregate_interaction_metrics((select today - 1 from u63), (select today from u63));
select results_eq($$ select * from pg_temp.totals_now $$, $$ select * from totals_expected $$,
  'and after his days are recomputed from raw rows');
insert into private.interaction_metrics_changes (user_id, hour)
values (null, (select today from u63)::timestamp at time zone 'UTC' + interval '1 hour');
select * from analytics.refresh_interaction_metrics();
select results_eq($$ select * from pg_temp.totals_now $$, $$ select * from totals_expected $$,
  'and after his hour is recomputed as a whole');
select * from analytics.finalize_interaction_metrics((select today from u63));
select results_eq($$ select * from pg_temp.totals_now $$, $$ select * from totals_expected $$, 'and after the nightly finalize');

-- Under a pseudonym that leads nowhere.
create temporary table kept63 as
select user_id, user_key, total_messages, ai_coach_messages, response_count, satisfaction_count, cost_usd
from analytics.coach_interaction_metrics
where erased and day = (select today from u63) and user_id not in (select user_id from erased_before);
grant select on kept63 to coach_analyst, service_role;
select results_eq($$ select total_messages, ai_coach_messages, response_count, satisfaction_count, cost_usd from kept63 $$,
  $$ values (5, 2, 3, 1, (select cost_usd from analytics.coach_interaction_metrics_hourly
                          where user_id = (select user_id from kept63) and hour = (select today from u63)::timestamp at time zone 'UTC' + interval '1 hour')
                          + 0.5::numeric) $$,
  'His day lives on as one erased row: five messages, two AI replies, three responses (two AI, the coach''s), one rating');
select is((select computed_at from analytics.coach_interaction_metrics where user_key = (select user_key from kept63)),
  (select today + 1 from u63)::timestamp at time zone 'UTC',
  'Its computed_at is the end of its day, not the moment of the erasure (which would point at the tombstone)');
select tests.authenticate_as_service_role();
select throws_ok($$ select xmin from analytics.coach_interaction_metrics limit 1 $$, '42501', null,
  'The service role reads the metrics column by column: not xmin, which the re-keyed rows share with the tombstone');
select throws_ok($$ select xmin from analytics.coach_interaction_metrics_hourly limit 1 $$, '42501', null, 'nor the hourly rows''');
select is((select count(*)::int from analytics.coach_interaction_metrics where user_key = (select user_key from kept63)), 1,
  'but every column of them');
select tests.clear_authentication();
select ok((select user_id <> (select eric from u63) and user_key <> private.user_key((select eric from u63))
                  and user_key ~ '^[0-9a-f]{64}$' and not exists (select 1 from public.profiles p where p.id = kept63.user_id)
           from kept63),
  'Its key is neither his id nor his analytics key, and names no user');
select is((select count(distinct user_id)::int from analytics.coach_interaction_metrics_hourly
           where erased and user_key = (select user_key from kept63)), 1, 'His hours share the pseudonym, so his day merges from them');
select tests.authenticate_as_role('coach_analyst');
select is((select count(*)::int from analytics.user_metrics((select user_key from kept63), (select today - 1 from u63), (select today from u63))), 1,
  'An analyst reads the pseudonymous row like any other');
select is((select erased from analytics.coach_interaction_metrics where user_key = (select user_key from kept63)), true,
  'and sees that it is an erased user''s');
select tests.clear_authentication();

-- A retry gets the same answer.
select tests.authenticate_as_service_role();
select is((select public.erase_user((select eric from u63), 'Erasure request 2026-114 by email')),
  (select r || '{"replayed": true}' from result63), 'A second erase_user answers the same, replayed');
select tests.clear_authentication();
select is((select count(*)::int from audit.privacy_log where operation = 'user_erased' and subject_user_id = (select eric from u63)), 1, 'and leaves no second tombstone');

-- The tombstone is append-only, as the whole privacy log.
select tests.authenticate_as_service_role();
select throws_ok($$ delete from audit.privacy_log where operation = 'user_erased' and subject_user_id = (select eric from u63) $$, '42501', null,
  'The service role cannot delete a tombstone');
select tests.clear_authentication();
select throws_ok($$ update audit.privacy_log set reason = 'x' where operation = 'user_erased' and subject_user_id = (select eric from u63) $$,
  '42501', 'audit.privacy_log is append-only: rows cannot be updated or deleted', 'Nor can its owner change it');

-- Deleting the auth.users row directly (Auth's admin deleteUser) ---------------------------

select public.log_coach_interaction(sender => 'ai_coach', user_id => (select dora from u63), content => '{"text": "Hi Dora"}',
  model => 'house-model', prompt_tokens => 10, completion_tokens => 1, cost_usd => 0.25);
select * from analytics.refresh_interaction_metrics();
create temporary table totals_dora as select * from pg_temp.totals_now;
delete from auth.users where id = (select dora from u63);
select results_eq(
  $$ select actor_role, reason, details ->> 'via', (details -> 'metrics_kept' ->> 'hourly_rows')::int from audit.privacy_log
     where operation = 'user_erased' and subject_user_id = (select dora from u63) $$,
  $$ values ('postgres'::text, null::text, 'auth.users delete'::text, 1) $$,
  'A direct delete of the auth.users row leaves a tombstone without a reason, and keeps her metrics');
select results_eq($$ select * from pg_temp.totals_now $$, $$ select * from totals_dora $$, 'Her share of the totals stays too');
select is((select count(*)::int from pg_temp.rows_naming((select dora from u63)) where n > 0 and tbl <> 'private.user_erasures'), 0,
  'and nothing else names her');

-- An account with no profile (nothing of theirs was stored): the erasure is on record all the same.
select tests.create_supabase_user('nopro63@example.com');
alter table public.profiles disable trigger profiles_retain_deidentified_metrics;
delete from public.profiles where id = tests.get_user_id('nopro63@example.com');
alter table public.profiles enable trigger profiles_retain_deidentified_metrics;
create temporary table nopro63 as select tests.get_user_id('nopro63@example.com') as id;
grant select on nopro63 to service_role;
select tests.authenticate_as_service_role();
select is((select public.erase_user((select id from nopro63), 'Request 63b') -> 'removed'), '{}'::jsonb,
  'Erasing an account without a profile removes nothing of theirs');
select tests.clear_authentication();
select results_eq($$ select reason, details ->> 'via' from audit.privacy_log where operation = 'user_erased' and subject_user_id = (select id from nopro63) $$,
  $$ values ('Request 63b'::text, 'erase_user'::text) $$, 'and leaves its tombstone, with the reason');

-- What erasure cleared outside foreign keys.
select ok(not exists (select 1 from private.rate_limit_counters where subject = 'user:' || (select eric from u63))
          and not exists (select 1 from private.retention_progress where user_id = (select eric from u63))
          and (select created_by from public.tenants where id = '63000000-7e4a-4000-8000-000000000001') is null,
  'His rate-limit counters and retention progress are gone; the organisation he created stays, without his id');
select is((select count(*)::int from private.interaction_metrics_changes where user_id in ((select eric from u63), (select dora from u63))), 0,
  'The change log does not name them (their deletes log nothing: no hour''s totals changed)');
select ok(exists (select 1 from private.erased_model_usage where model = 'house-model'),
  'Their LLM usage is kept per hour and model, with no user');
select tests.authenticate_as_service_role();
select throws_ok($$ select * from private.erased_model_usage $$, '42501', null, 'which not even the service role reads directly');
select tests.clear_authentication();

select * from finish();
rollback;
