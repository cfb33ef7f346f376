-- Privacy operations (issue 16): legal holds (placed and released by the service role only,
-- audited, refusing erasure while they apply), retention policies (set by the service role,
-- audited), retention at a fixed clock (strip past the window, never under a hold, bounded,
-- idempotent, resumed after a hold is released), the append-only guard letting exactly
-- retention's change through and nothing else, and the audit log itself, as each named role.
begin;
select plan(92);
-- Hold the rollup lock for the whole file, as the rollup functions do before they touch the
-- change log and the metrics: pg_cron's refresh (every 2 minutes) then waits for this file
-- instead of deadlocking with it over rows this file changed.
select pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

-- Three users with old rows (2020-06-01, past a 730-day window at 2023-01-01) and new rows
-- (2022-12-01): Hank will be held whole, Ivy not at all, Jo on one session.
select tests.create_supabase_user('hank61@example.com');
select tests.create_supabase_user('ivy61@example.com');
select tests.create_supabase_user('jo61@example.com');
create temporary table u61 as
select tests.get_user_id('hank61@example.com') as hank, tests.get_user_id('ivy61@example.com') as ivy,
       tests.get_user_id('jo61@example.com') as jo,
       '61000000-5e55-4000-8000-000000000001'::uuid as jo_held_session,
       '61000000-5e55-4000-8000-000000000002'::uuid as ivy_session,
       timestamptz '2023-01-01 00:00:00+00' as at;
grant select on u61 to anon, authenticated, service_role, coach_ingest, coach_analyst;

insert into public.coaching_sessions (id, user_id) values
  ((select jo_held_session from u61), (select jo from u61)),
  ((select ivy_session from u61), (select ivy from u61));
insert into public.coach_interactions (user_id, session_id, request_id, sender, content, metadata, model,
                                       prompt_tokens, completion_tokens, cost_usd, latency_ms, coach_persona, actor_role, created_at)
select x.user_id, x.session_id, x.request_id, 'ai_coach', jsonb_build_object('text', 'Private words of ' || x.request_id),
       '{"mood": "low"}'::jsonb, 'gpt-4o-mini', 800, 60, 0.00015, 900, 'Coach Ana', 'postgres', x.created_at
from (values
  ((select hank from u61), null::uuid, 'h-old', timestamptz '2020-06-01 10:00:00+00'),
  ((select ivy from u61), (select ivy_session from u61), 'i-old', timestamptz '2020-06-01 11:00:00+00'),
  ((select ivy from u61), null, 'i-new', timestamptz '2022-12-01 10:00:00+00'),
  ((select jo from u61), (select jo_held_session from u61), 'j-held', timestamptz '2020-06-01 12:00:00+00'),
  ((select jo from u61), null, 'j-old', timestamptz '2020-06-01 13:00:00+00')
) as x(user_id, session_id, request_id, created_at);
insert into public.interaction_events (user_id, session_id, kind, category, score, payload, actor_role, created_at)
values ((select ivy from u61), null, 'rating', 'helpful', 4, '{"note": "Ivy''s own words"}', 'postgres', '2020-06-02 10:00:00+00'),
       ((select ivy from u61), null, 'feedback', 'tone', null, '{"note": "more Ivy words"}', 'postgres', '2020-06-03 10:00:00+00'),
       ((select ivy from u61), null, 'read', null, null, '{}', 'postgres', '2022-12-02 10:00:00+00'),
       ((select jo from u61), (select jo_held_session from u61), 'feedback', 'tone', null, '{"note": "Jo"}', 'postgres', '2020-06-02 10:00:00+00');
-- A rating of Jo's message in the held session, naming the message but not the session.
insert into public.interaction_events (user_id, interaction_id, kind, score, payload, actor_role, created_at)
values ((select jo from u61), (select id from public.coach_interactions where request_id = 'j-held'), 'rating', 2,
        '{"note": "Jo rates the held message"}', 'postgres', '2020-06-02 11:00:00+00');
-- Both sessions have an AI summary, written from their answers.
update public.coaching_sessions
set summary = 'Private summary', summary_data = '{"themes": ["sleep"]}', summary_model = 'house-model', summary_generated_at = '2020-06-01 13:00:00+00'
where id in ((select ivy_session from u61), (select jo_held_session from u61));
-- Ivy's first stage was completed (its answers valid then); Jo's held one was not.
insert into public.stage_responses (session_id, stage_number, responses, completed_at, created_at, updated_at)
values ((select ivy_session from u61), 1, '{"presence_level": 6, "emotional_state": "tired", "readiness_score": 7, "previous_actions": []}',
        '2020-06-01 11:00:00+00', '2020-06-01 11:00:00+00', '2020-06-01 11:00:00+00'),
       ((select jo_held_session from u61), 1, '{"feeling": "fine"}', null, '2020-06-01 12:00:00+00', '2020-06-01 12:00:00+00');

-- Placing a legal hold -------------------------------------------------------------------

select tests.authenticate_as_anon();
select throws_ok($$ select public.place_legal_hold((select hank from u61), 'litigation') $$, '42501', null, 'anon cannot place a legal hold');
select tests.authenticate_as('hank61@example.com');
select throws_ok($$ select public.place_legal_hold((select hank from u61), 'litigation') $$, '42501', null, 'a user cannot place one on themselves');
select tests.authenticate_as('carol@example.com');
select throws_ok($$ select public.place_legal_hold((select hank from u61), 'litigation') $$, '42501', null, 'nor can a coach');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select public.place_legal_hold((select hank from u61), 'litigation') $$, '42501', null, 'nor an ingest token');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select public.place_legal_hold((select hank from u61), 'litigation') $$, '42501', null, 'nor an analyst');

select tests.authenticate_as_service_role();
select throws_ok($$ select public.place_legal_hold((select hank from u61), '  ') $$, '22023',
  'reason is required: 1 to 1000 characters', 'A hold needs a reason');
select throws_ok($$ select public.place_legal_hold(gen_random_uuid(), 'litigation') $$, '23503',
  'user_id does not name a user', 'A hold names a user that exists');
select throws_ok($$ select public.place_legal_hold((select hank from u61), 'litigation', (select jo_held_session from u61)) $$, '23503',
  'session_id does not name a coaching session of this user', 'A session hold names a session of that user');
create temporary table h61 as select * from public.place_legal_hold((select hank from u61), 'Litigation 2022-17');
create temporary table h61b as select * from public.place_legal_hold((select hank from u61), 'Regulator inquiry 2022-18');
grant select on h61, h61b to service_role;
select isnt((select id from h61b), (select id from h61), 'A second matter''s hold on the same user is a hold of its own');
select is((select count(*)::int from audit.privacy_log where operation = 'legal_hold_placed' and subject_user_id = (select hank from u61)
            and actor_role = 'service_role' and reason = 'Litigation 2022-17' and details ->> 'hold_id' = (select id::text from h61)), 1,
  'It is audited once, with who placed it and why');
create temporary table h61j as select * from public.place_legal_hold((select jo from u61), 'Complaint about one session', (select jo_held_session from u61));
grant select on h61j to service_role;
select is((select session_id from h61j), (select jo_held_session from u61), 'The service role places a hold on one session');
select is((select count(*)::int from public.legal_holds where released_at is null and user_id in ((select hank from u61), (select jo from u61))), 3,
  'The service role reads the holds: two user-wide, one per session');

select tests.authenticate_as('hank61@example.com');
select throws_ok($$ select * from public.legal_holds $$, '42501', null, 'A user cannot read legal holds, not even their own');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from public.legal_holds $$, '42501', null, 'An analyst cannot read legal holds');
select throws_ok($$ select * from audit.privacy_log $$, '42501', null, 'nor the privacy log');
select throws_ok($$ select * from public.retention_policies $$, '42501', null, 'nor the retention policies');

-- Erasure under a hold --------------------------------------------------------------------

select tests.clear_authentication();
select throws_ok($$ delete from auth.users where id = (select hank from u61) $$, '55000', null,
  'Deleting a held user''s auth.users row (erasure) is refused');
select throws_ok($$ delete from auth.users where id = (select jo from u61) $$, '55000', null,
  'A hold on one of their sessions refuses it too');
select throws_ok($$ delete from public.coaching_sessions where id = (select jo_held_session from u61) $$, '55000', null,
  'A held session cannot be deleted (its hold would go with it)');

-- Retention at a fixed clock --------------------------------------------------------------

select analytics.aggregate_interaction_metrics('2020-06-01');
create temporary table m61 as
select sum(total_messages) as messages, sum(prompt_tokens) as prompt_tokens, sum(cost_usd) as cost, avg(response_time_avg) as rt
from analytics.coach_interaction_metrics where day = '2020-06-01' and user_id in ((select hank from u61), (select ivy from u61), (select jo from u61));
grant select on m61 to service_role;

select tests.authenticate_as('ivy61@example.com');
select throws_ok($$ select private.apply_retention_batch('interaction_content', 1000, (select at from u61)) $$, '42501', null,
  'A user cannot run retention');
select tests.authenticate_as_service_role();
select throws_ok($$ select private.apply_retention_batch('everything', 1000, (select at from u61)) $$, '22023',
  'data_kind must be one of interaction_content, interaction_events, stage_responses', 'An unknown kind is refused');
select throws_ok($$ select private.apply_retention_batch('interaction_content', 0, (select at from u61)) $$, '22023',
  'batch_size must be between 1 and 10000', 'So is an empty batch');
select is(private.apply_retention_batch('interaction_content', 1000, (select at from u61)), 2,
  'Retention strips the two old messages nothing holds');
select tests.clear_authentication();
select results_eq(
  $$ select request_id, content, metadata, model, prompt_tokens, completion_tokens, cost_usd, latency_ms, coach_persona, created_at, content_removed_at
     from public.coach_interactions where request_id in ('i-old', 'j-old') order by request_id $$,
  $$ values ('i-old', '{"text": ""}'::jsonb, '{}'::jsonb, 'gpt-4o-mini', 800, 60, 0.00015::numeric, 900, 'Coach Ana', timestamptz '2020-06-01 11:00:00+00', timestamptz '2023-01-01 00:00:00+00'),
            ('j-old', '{"text": ""}'::jsonb, '{}'::jsonb, 'gpt-4o-mini', 800, 60, 0.00015::numeric, 900, 'Coach Ana', timestamptz '2020-06-01 13:00:00+00', timestamptz '2023-01-01 00:00:00+00') $$,
  'A stripped message loses its content and metadata and keeps model, tokens, cost, latency, persona and time');
select results_eq(
  $$ select request_id, content ->> 'text', content_removed_at is null from public.coach_interactions
     where request_id in ('h-old', 'i-new', 'j-held') order by request_id $$,
  $$ values ('h-old', 'Private words of h-old', true), ('i-new', 'Private words of i-new', true), ('j-held', 'Private words of j-held', true) $$,
  'A held user''s message, a message inside the window and a message of a held session are untouched');
select tests.authenticate_as_service_role();
select is(private.apply_retention_batch('interaction_content', 1000, (select at from u61)), 0, 'A second batch finds nothing: retention is idempotent');

-- A backfill: an old message of Ivy's written after retention passed her by.
select tests.clear_authentication();
insert into public.coach_interactions (user_id, request_id, sender, content, metadata, model, actor_role, created_at)
values ((select ivy from u61), 'i-backfill', 'ai_coach', '{"text": "Backfilled words"}', '{"k": 1}', 'gpt-4o-mini', 'postgres', '2020-06-05 10:00:00+00');
-- In this transaction retention has registered coach_interactions: only its exact change passes.
select throws_ok($$ update public.coach_interactions set content = '{"text": ""}', metadata = '{}', content_removed_at = (select at from u61),
                      model = 'gpt-4o' where request_id = 'i-backfill' $$, '42501',
  'public.coach_interactions is append-only: rows cannot be updated or deleted',
  'A strip that changes anything else (the model) is refused, even for an old, unheld row');
select throws_ok($$ update public.coach_interactions set content = '{"text": ""}', content_removed_at = (select at from u61)
                    where request_id = 'i-backfill' $$, '42501',
  'public.coach_interactions is append-only: rows cannot be updated or deleted',
  'So is a strip that keeps the metadata');
select tests.authenticate_as_service_role();
select is(private.apply_retention_batch('interaction_content', 1000, (select at from u61)), 1,
  'Retention reaches the backfilled message although it had passed Ivy by');

select analytics.aggregate_interaction_metrics('2020-06-01');
select results_eq(
  $$ select sum(total_messages), sum(prompt_tokens), sum(cost_usd), avg(response_time_avg) from analytics.coach_interaction_metrics
     where day = '2020-06-01' and user_id in ((select hank from u61), (select ivy from u61), (select jo from u61)) $$,
  $$ select messages, prompt_tokens, cost, rt from m61 $$,
  'The day''s metrics recomputed from the stripped rows are the same: counts, tokens, cost, response time');

-- Events, in batches of one: two old events of Ivy's; Jo's is in the held session.
select is(array[private.apply_retention_batch('interaction_events', 1, (select at from u61)),
                private.apply_retention_batch('interaction_events', 1, (select at from u61)),
                private.apply_retention_batch('interaction_events', 1, (select at from u61))], array[1, 1, 0],
  'Batches are bounded: one row each, then nothing left, and each goes on where the last stopped');
select tests.clear_authentication();
select results_eq(
  $$ select kind, category, score, payload, content_removed_at is not null from public.interaction_events
     where user_id in ((select ivy from u61), (select jo from u61)) and interaction_id is null
     order by created_at, user_id = (select jo from u61) $$,
  $$ values ('rating', null::text, 4::smallint, '{}'::jsonb, true), ('feedback', 'tone', null, '{"note": "Jo"}'::jsonb, false),
            ('feedback', null, null, '{}'::jsonb, true), ('read', null, null, '{}'::jsonb, false) $$,
  'A stripped event keeps its kind and score; the held session''s and the recent one are untouched');
select is((select payload ->> 'note' from public.interaction_events where kind = 'rating' and user_id = (select jo from u61)),
  'Jo rates the held message', 'A rating of a message in the held session is kept too, though it names only the message');
select tests.authenticate_as_service_role();
select is(private.apply_retention_batch('stage_responses', 1000, (select at from u61)), 1, 'One old stage answer is emptied');
select tests.clear_authentication();
select results_eq(
  $$ select r.session_id, r.responses, r.content_removed_at is not null from public.stage_responses r
     where r.session_id in ((select ivy_session from u61), (select jo_held_session from u61)) order by r.created_at $$,
  $$ values ((select ivy_session from u61), '{}'::jsonb, true), ((select jo_held_session from u61), '{"feeling": "fine"}'::jsonb, false) $$,
  'Ivy''s old answers are empty, though the stage was completed (the stage check lets a stripped stage be empty); the held session''s stay');
select results_eq(
  $$ select id, summary, summary_data, summary_model from public.coaching_sessions
     where id in ((select ivy_session from u61), (select jo_held_session from u61)) order by id = (select jo_held_session from u61) $$,
  $$ values ((select ivy_session from u61), '', '{}'::jsonb, 'house-model'),
            ((select jo_held_session from u61), 'Private summary', '{"themes": ["sleep"]}'::jsonb, 'house-model') $$,
  'The AI summary written from Ivy''s answers is emptied with them (its model stays); the held session''s stays');

-- The guard: in this transaction retention registered coach_interactions (cutoff 2021-01-01),
-- and still nothing but retention's exact change of an old, unheld row gets through.
select throws_ok($$ update public.coach_interactions set content = '{"text": ""}', metadata = '{}', content_removed_at = (select at from u61)
                    where request_id = 'i-new' $$, '42501', null, 'A message inside its window cannot be stripped');
select throws_ok($$ update public.coach_interactions set content = '{"text": ""}', metadata = '{}', content_removed_at = (select at from u61)
                    where request_id = 'h-old' $$, '42501', null, 'A held message cannot be stripped');
select throws_ok($$ update public.coach_interactions set model = 'other' where request_id = 'i-old' $$, '42501', null,
  'A stripped message cannot be changed otherwise');
select throws_ok($$ update public.coach_interactions set content = '{"text": "rewritten"}', content_removed_at = (select at from u61)
                    where request_id = 'j-held' $$, '42501', null, 'Nor can content be rewritten under cover of retention');
select throws_ok($$ delete from public.coach_interactions where request_id = 'i-old' $$, '42501', null,
  'Interactions are never deleted by retention');
select throws_ok($$ delete from public.interaction_events where user_id = (select ivy from u61) $$, '42501', null,
  'Events are not deleted while their policy strips');
select tests.authenticate_as_service_role();
select throws_ok($$ update public.coach_interactions set content = '{"text": ""}' where request_id = 'i-new' $$, '42501', null,
  'The service role cannot strip a message itself');

-- Policies --------------------------------------------------------------------------------

select tests.authenticate_as('ivy61@example.com');
select throws_ok($$ select public.set_retention_policy('interaction_events', '30 days', 'delete', 'shorter') $$, '42501', null,
  'A user cannot set a retention policy');
select tests.authenticate_as_service_role();
select throws_ok($$ select public.set_retention_policy('interaction_content', '30 days', 'delete', 'x') $$, '22023',
  'Interactions are stripped, never deleted: their cost and metrics are history', 'Interactions cannot be deleted by policy');
select throws_ok($$ select public.set_retention_policy('interaction_events', '1 hour', 'delete', 'x') $$, '22023',
  'retain_for must be between 1 day and 100 years', 'A window under a day is refused');
select throws_ok($$ select public.set_retention_policy('media', '30 days', 'delete', 'x') $$, '22023',
  'data_kind must be one of interaction_content, interaction_events, stage_responses, phi_access_log, media_audio, media_transcript',
  'An unknown kind is refused');
-- Session media: their windows are policies too, applied by the media-retention function.
select throws_ok($$ select public.set_retention_policy('media_audio', '30 days', 'strip', 'x') $$, '22023',
  'Media objects are deleted, never stripped', 'Media cannot be stripped');
select throws_ok($$ select public.set_retention_policy('media_audio', '1 month', 'delete', 'x') $$, '22023',
  'retain_for must be whole days between 1 and 3650 for media, or null to keep them', 'A media window is whole days');
select throws_ok($$ select public.set_retention_policy('interaction_events', null, 'delete', 'x') $$, '22023',
  'retain_for must be between 1 day and 100 years', 'Only media may be kept without a window');
select is((select (public.set_retention_policy('media_audio', '14 days', 'delete', 'Counsel: two weeks of audio')).retain_for),
  interval '14 days', 'The service role sets the audio window');
select is((select (public.set_retention_policy('media_transcript', null, 'delete', 'Transcripts are kept')).retain_for), null,
  'and keeps transcripts without one');
select results_eq($$ select kind, retain_days from public.media_retention_settings order by kind $$,
  $$ values ('audio'::text, 14), ('transcript', null::int) $$, 'The window the media triggers read follows the policy');
select throws_ok($$ update public.media_retention_settings set retain_days = 3 where kind = 'audio' $$, '42501', null,
  'and is not changed directly any more (the policy change is audited)');
select throws_ok($$ select private.apply_retention_batch('media_audio', 1000, (select at from u61)) $$, '22023', null,
  'Retention''s SQL batches do not touch media (the media-retention function deletes objects through the Storage API)');
select is((select private.run_retention(at => (select at from u61)) ?| array['media_audio', 'media_transcript']), false,
  'and the retention job leaves them to it');
select throws_ok($$ select public.set_retention_policy('interaction_events', '30 days', 'shred', 'x') $$, '22023',
  'action must be strip or delete', 'An unknown action is refused');
select throws_ok($$ select public.set_retention_policy('interaction_events', '30 days', 'delete', '') $$, '22023',
  'reason is required: 1 to 1000 characters', 'A policy change needs a reason');
select is((select (public.set_retention_policy('interaction_events', '730 days', 'delete', 'Events are not needed after two years')).action),
  'delete', 'The service role sets events to be deleted');
select is((select details from audit.privacy_log where operation = 'retention_policy_set' order by id desc limit 1),
  '{"data_kind": "interaction_events", "before": {"retain_for": "730 days", "action": "strip"}, "after": {"retain_for": "730 days", "action": "delete"}}'::jsonb,
  'The change is audited with the policy before and after');
select is(private.apply_retention_batch('interaction_events', 1000, (select at from u61)), 2,
  'With the new policy every user is read again: Ivy''s two old events are deleted');
select is((select count(*)::int from public.interaction_events where user_id = (select ivy from u61)), 1, 'Her recent event stays');

-- Session media: the media-retention function deletes what claim_due_session_media returns.
select tests.clear_authentication();
insert into public.session_media (session_id, user_id, kind, bucket_id, storage_path, mime_type, bytes, status, uploaded_at, expires_at)
select x.session_id, x.user_id, 'audio', 'session-media', format('u/%s/s/%s/1590969600000/old.wav', x.user_id, x.session_id),
       'audio/wav', 10, 'stored', '2020-06-01 00:00:00+00', '2020-07-01 00:00:00+00'
from (values ((select ivy from u61), (select ivy_session from u61)), ((select jo from u61), (select jo_held_session from u61))) as x(user_id, session_id);
-- The window ended long ago (the row's insert sets expires_at from the kind's window: set it back).
update public.session_media set expires_at = '2020-07-01 00:00:00+00'
where user_id in ((select ivy from u61), (select jo from u61));
insert into storage.objects (bucket_id, name, metadata, created_at)
select 'session-media', x.name, '{"size": 10, "mimetype": "audio/wav"}', '2020-06-01 00:00:00+00'
from (values (format('u/%s/s/%s/1590969600000/old.wav', (select ivy from u61), (select ivy_session from u61))),
             (format('u/%s/s/%s/1590969600000/old.wav', (select jo from u61), (select jo_held_session from u61))),
             -- Objects no row can follow (their session is not the user's): orphans.
             (format('u/%s/s/61000000-5e55-4000-8000-00000000000f/1590969600001/stray.wav', (select ivy from u61))),
             (format('u/%s/s/61000000-5e55-4000-8000-00000000000f/1590969600001/stray.wav', (select hank from u61)))) as x(name);
select tests.authenticate_as_service_role();
create temporary table c61 as
select reason, split_part(storage_path, '/', 2)::uuid as user_id from public.claim_due_session_media((select at from u61), 100)
where split_part(storage_path, '/', 2)::uuid in ((select ivy from u61), (select jo from u61), (select hank from u61));
select results_eq($$ select reason, user_id from c61 order by reason $$,
  $$ values ('expired', (select ivy from u61)), ('orphan', (select ivy from u61)) $$,
  'Media retention returns Ivy''s expired recording and stray object for deletion');
select is_empty($$ select 1 from c61 where user_id in ((select jo from u61), (select hank from u61)) $$,
  'but not the held session''s recording, nor a stray object under a held user''s key');
-- Nor may a held person delete their recording themselves (the storage policy).
select tests.authenticate_as('jo61@example.com');
select lives_ok($$ delete from storage.objects where bucket_id = 'session-media' and name like 'u/' || (select jo from u61) || '/%' $$,
  'Jo''s delete of her held session''s recording runs');
select tests.authenticate_as('ivy61@example.com');
select lives_ok($$ delete from storage.objects where bucket_id = 'session-media' and name like 'u/' || (select ivy from u61) || '/s/' || (select ivy_session from u61) || '/%' $$,
  'Ivy deletes her own recording');
select tests.clear_authentication();
select results_eq(
  $$ select split_part(name, '/', 2)::uuid from storage.objects where bucket_id = 'session-media'
     and name like any (array['u/' || (select jo from u61) || '/%', 'u/' || (select ivy from u61) || '/s/' || (select ivy_session from u61) || '/%']) $$,
  $$ values ((select jo from u61)) $$,
  'Ivy''s recording is gone; Jo''s, under the hold, is still there');

-- Releasing a hold ------------------------------------------------------------------------

select tests.authenticate_as('hank61@example.com');
select throws_ok($$ select public.release_legal_hold((select id from h61), 'done') $$, '42501', null, 'A user cannot release a hold');
select tests.authenticate_as_service_role();
select throws_ok($$ select public.release_legal_hold((select id from h61), '') $$, '22023',
  'reason is required: 1 to 1000 characters', 'Releasing needs a reason');
select throws_ok($$ select public.release_legal_hold(gen_random_uuid(), 'done') $$, 'PT404',
  'hold_id does not name a legal hold', 'An unknown hold is 404');
select is((select (public.release_legal_hold((select id from h61), 'Case closed')).release_reason), 'Case closed',
  'The service role releases the hold');
select throws_ok($$ select public.release_legal_hold((select id from h61), 'again') $$, 'PT409',
  'This legal hold was already released', 'A released hold cannot be released again');
select is((select count(*)::int from audit.privacy_log where operation = 'legal_hold_released' and subject_user_id = (select hank from u61)
            and reason = 'Case closed' and details ->> 'hold_id' = (select id::text from h61)), 1, 'The release is audited');
select is(private.apply_retention_batch('interaction_content', 1000, (select at from u61)), 0,
  'Hank''s second hold still keeps his message');
select lives_ok($$ select public.release_legal_hold((select id from h61b), 'Inquiry closed') $$, 'The second hold is released too');
select is(private.apply_retention_batch('interaction_content', 1000, (select at from u61)), 1,
  'Once no hold applies, retention reaches what the holds kept: Hank''s old message');
select lives_ok($$ select public.release_legal_hold((select id from h61j), 'Complaint resolved') $$, 'Jo''s session hold is released');
select is(private.apply_retention_batch('interaction_content', 1000, (select at from u61)), 1,
  'and retention goes back over Jo''s rows it had passed: her held session''s message');

-- The job and the log ---------------------------------------------------------------------

select tests.authenticate_as('ivy61@example.com');
select throws_ok($$ select private.run_retention(1000, 10, (select at from u61)) $$, '42501', null, 'A user cannot run the retention job');
select tests.authenticate_as_service_role();
select is((select private.run_retention(1000, 10, (select at from u61)) -> 'interaction_content'),
  '{"action": "strip", "rows": 0, "batches": 1, "done": true}'::jsonb, 'The job finds nothing more to do at the same clock');
select is(private.run_retention(1000, 10, timestamptz '2025-01-01 00:00:00+00') -> 'interaction_content' -> 'rows', '1'::jsonb,
  'Two years on, Ivy''s newer message is due too');
select is((select details - 'cutoff' from audit.privacy_log where operation = 'retention_applied' and details ->> 'data_kind' = 'interaction_content'
            order by id desc limit 1),
  '{"data_kind": "interaction_content", "action": "strip", "retain_for": "730 days", "rows": 1, "batches": 1, "done": true}'::jsonb,
  'The job records what it did');
select tests.clear_authentication();
select is((select count(*)::int from private.retention_xacts), 0, 'and leaves no registration behind');
select tests.authenticate_as('ivy61@example.com');
select throws_ok($$ select * from public.retention_policies $$, '42501', null, 'A user cannot read retention policies');
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.retention_policies), 6, 'The service role reads them (the PHI access log''s is pgTAP 64''s)');

select tests.clear_authentication();
select throws_ok($$ update audit.privacy_log set reason = 'edited' $$, '42501', null, 'The privacy log cannot be edited');
select throws_ok($$ delete from audit.privacy_log $$, '42501', null, 'nor emptied');
select lives_ok($$ delete from auth.users where id = (select hank from u61) $$, 'With the hold released, Hank can be erased');
select is((select count(*)::int from audit.privacy_log where subject_user_id = (select hank from u61) and operation <> 'user_erased'), 4,
  'and the log of his holds stays after his erasure');

-- Under a delete policy, stage answers go, and the summary written from them is emptied too.
insert into public.coaching_sessions (id, user_id, summary, summary_data, summary_model, summary_generated_at)
values ('61000000-5e55-4000-8000-000000000003', (select ivy from u61), 'Second summary', '{"themes": ["work"]}', 'house-model', '2020-07-01');
insert into public.stage_responses (session_id, stage_number, responses, created_at, updated_at)
values ('61000000-5e55-4000-8000-000000000003', 1, '{"feeling": "busy"}', '2020-07-01', '2020-07-01'),
       ('61000000-5e55-4000-8000-000000000003', 2, '{"goal": "less overtime"}', '2020-07-01', '2020-07-01');
select tests.authenticate_as_service_role();
select public.set_retention_policy('stage_responses', '730 days', 'delete', 'Stage answers are deleted after two years');
select is(private.apply_retention_batch('stage_responses', 1000, (select at from u61)), 2, 'Both old answers of the session are deleted');
select tests.clear_authentication();
select results_eq($$ select summary, summary_data, (select count(*)::int from public.stage_responses where session_id = s.id)
                     from public.coaching_sessions s where s.id = '61000000-5e55-4000-8000-000000000003' $$,
  $$ values ('', '{}'::jsonb, 0) $$, 'and the summary written from them is emptied');

-- A clock in the future counts as now: no window is skipped by asking for a later time.
select tests.authenticate_as_service_role();
select private.apply_retention_batch('stage_responses', 1, 'infinity');
select tests.clear_authentication();
select is((select at from private.retention_xacts where table_name = 'public.stage_responses' and xact_id = pg_current_xact_id()), now(),
  'A batch asked for a clock in the future runs at now');

select * from finish();
rollback;
