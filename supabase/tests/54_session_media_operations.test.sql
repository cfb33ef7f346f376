-- The session-media operations (20261124150000) as each named user: starting an upload
-- (the owner's own session only; kind, type and size against the bucket; the key on the
-- given clock), completing it once the object exists, listing a session's media (owner,
-- assigned coach with an audit row, service role; rows kept in step with storage.objects),
-- the retention job's steps and the storage operations log (service role only), the
-- analysts' storage figures, the daily job and the rate limits. The file makes its own users.
begin;
select plan(46);

select tests.create_supabase_user('ops-owner@example.com');
select tests.create_supabase_user('ops-stranger@example.com');
select tests.create_supabase_user('ops-coach@example.com', 'coach');
update public.profiles set role = 'coach' where id = tests.get_user_id('ops-coach@example.com');
insert into public.coach_assignments (coach_id, client_id)
values (tests.get_user_id('ops-coach@example.com'), tests.get_user_id('ops-owner@example.com'));
insert into public.coaching_sessions (id, user_id, theme) values
  ('54a00000-5e55-4000-8000-000000000001', tests.get_user_id('ops-owner@example.com'), 'Owner''s session'),
  ('54a00000-5e55-4000-8000-000000000002', tests.get_user_id('ops-stranger@example.com'), 'Stranger''s session');

create function pg_temp.start(kind text, basename text, mime text, bytes bigint, at timestamptz default '2026-11-24 12:00:00+00')
returns public.session_media language sql as $$
  select * from public.start_session_media_upload('54a00000-5e55-4000-8000-000000000001', kind, basename, mime, bytes, null, null, at)
$$;
grant execute on function pg_temp.start(text, text, text, bigint, timestamptz) to public;
create function pg_temp.put(name text, size integer, mime text) returns void language sql as $$
  insert into storage.objects (bucket_id, name, owner, metadata)
  values ('session-media', name, (select auth.uid()), jsonb_build_object('mimetype', mime, 'size', size))
$$;
grant execute on function pg_temp.put(text, integer, text) to public;

-- Starting an upload.
select tests.authenticate_as('ops-owner@example.com');
select results_eq(
  $$ select storage_path, status, mime_type, bytes, upload_expires_at from pg_temp.start('audio', 'week1.wav', 'Audio/WAV', 1000) $$,
  format($$ values ('u/%s/s/54a00000-5e55-4000-8000-000000000001/1795521600000/week1.wav', 'pending', 'audio/wav', 1000::bigint,
                    '2026-11-24 12:10:00+00'::timestamptz) $$, tests.get_user_id('ops-owner@example.com')),
  'The owner starts an upload: the key on the given clock, the type lower-cased, ten minutes to upload');
select is((select storage_path from pg_temp.start('audio', 'week1.wav', 'audio/wav', 1000)),
  format('u/%s/s/54a00000-5e55-4000-8000-000000000001/1795521600001/week1.wav', tests.get_user_id('ops-owner@example.com')),
  'The same name in the same millisecond takes the next one');
select lives_ok($$ select pg_temp.start('transcript', 'week1.json', 'application/json', 500) $$, 'and a transcript');
select throws_ok($$ select pg_temp.start('audio', 'x.wav', 'text/plain', 10) $$, '22023', null, 'A transcript type is refused for audio');
select throws_ok($$ select pg_temp.start('transcript', 'x.json', 'audio/wav', 10) $$, '22023', null, 'an audio type for a transcript');
select throws_ok($$ select pg_temp.start('audio', 'x.png', 'image/png', 10) $$, '22023', null, 'a type the bucket refuses');
select throws_ok($$ select pg_temp.start('audio', 'x.wav', 'audio/wav', 104857601) $$, '22023', null, 'a size over the bucket''s limit');
select throws_ok($$ select pg_temp.start('audio', 'x.wav', 'audio/wav', 0) $$, '22023', null, 'an empty file');
select throws_ok($$ select pg_temp.start('video', 'x.wav', 'audio/wav', 10) $$, '22023', null, 'an unknown kind');
select throws_ok($$ select pg_temp.start('audio', '../x.wav', 'audio/wav', 10) $$, '23514', null, 'a basename that is not a key segment');
select throws_ok($$ select public.start_session_media_upload('54a00000-5e55-4000-8000-000000000002', 'audio', 'x.wav', 'audio/wav', 10) $$,
  '22023', 'session_id does not name one of your coaching sessions', 'and another user''s session');

select tests.authenticate_as('ops-stranger@example.com');
select throws_ok($$ select pg_temp.start('audio', 'x.wav', 'audio/wav', 10) $$, '22023', null, 'The stranger cannot start an upload in the owner''s session');
select tests.authenticate_as('ops-coach@example.com');
select throws_ok($$ select pg_temp.start('audio', 'x.wav', 'audio/wav', 10) $$, '22023', null, 'nor can the coach');
select tests.authenticate_as_anon();
select throws_ok($$ select pg_temp.start('audio', 'x.wav', 'audio/wav', 10) $$, '42501', null, 'nor anon');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select pg_temp.start('audio', 'x.wav', 'audio/wav', 10) $$, '42501', null, 'nor an ingest token');
select tests.authenticate_as_service_role();
select is((select user_id from pg_temp.start('transcript', 'by-service.txt', 'text/plain', 10)), tests.get_user_id('ops-owner@example.com'),
  'The service role starts one for the session''s owner');
select tests.clear_authentication();
select is((select count(*)::int from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001'), 4,
  'Refused starts stored nothing');

-- Completing it.
select tests.authenticate_as('ops-owner@example.com');
select throws_ok(format($$ select public.complete_session_media_upload(%L, %L) $$,
    (select id from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/1795521600000/week1.wav'), repeat('a', 64)),
  'PT409', null, 'Completing before the object exists is a conflict');
select lives_ok(format($$ select pg_temp.put(%L, 998, 'audio/wav') $$, (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/1795521600000/week1.wav')),
  'The owner''s object arrives');
select tests.authenticate_as('ops-stranger@example.com');
select throws_ok(format($$ select public.complete_session_media_upload(%L, %L) $$,
    (select m.id from public.session_media m where m.session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/1795521600000/week1.wav'), repeat('a', 64)),
  '22023', 'media_id does not name one of your uploads', 'The stranger cannot complete it');
select tests.authenticate_as('ops-owner@example.com');
select throws_ok(format($$ select public.complete_session_media_upload(%L, 'not-a-hash') $$,
    (select id from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/1795521600000/week1.wav')),
  '22023', null, 'A malformed hash is refused');
select results_eq(format($$ select status, bytes, sha256, uploaded_at is not null from public.complete_session_media_upload(%L, %L) $$,
    (select id from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/1795521600000/week1.wav'), repeat('b', 64)),
  format($$ values ('stored', 998::bigint, %L, true) $$, repeat('b', 64)),
  'The owner completes it: stored, with the object''s own size and the hash');

-- Listing: owner, coach (audited), stranger, anon; rows kept in step with storage.objects.
select is((select count(*)::int from public.list_session_media('54a00000-5e55-4000-8000-000000000001', '2026-11-24 12:05:00+00')), 4,
  'The owner lists the session''s four rows');
select tests.clear_authentication();
select is((select count(*)::int from audit.phi_access_log where subject_user_id = tests.get_user_id('ops-owner@example.com')), 0,
  'Her own read is not recorded as PHI access');
select tests.authenticate_as('ops-coach@example.com');
select is((select count(*)::int from public.list_session_media('54a00000-5e55-4000-8000-000000000001', '2026-11-24 12:05:00+00')), 4,
  'Her assigned coach lists them too');
select tests.clear_authentication();
select results_eq($$ select actor_id, resource, row_count from audit.phi_access_log where subject_user_id = tests.get_user_id('ops-owner@example.com') $$,
  $$ values (tests.get_user_id('ops-coach@example.com'), 'session_media'::text, 4) $$, 'and the coach''s read is in the PHI access log');
select tests.authenticate_as('ops-stranger@example.com');
select throws_ok($$ select * from public.list_session_media('54a00000-5e55-4000-8000-000000000001') $$, '22023', null,
  'The stranger cannot list them');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.list_session_media('54a00000-5e55-4000-8000-000000000001') $$, '42501', null, 'nor can anon');
select tests.authenticate_as('ops-owner@example.com');
select lives_ok(format($$ select pg_temp.put(%L, 500, 'application/json') $$, (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/week1.json')),
  'The transcript arrives without a completion call');
select lives_ok(format($$ delete from storage.objects where name = %L $$, (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/1795521600000/week1.wav')),
  'and the owner removes her audio');
select results_eq($$ select storage_path ~ 'week1.json$', status from public.list_session_media('54a00000-5e55-4000-8000-000000000001', '2026-11-24 12:11:00+00')
                     where storage_path ~ '(week1.json|1795521600000/week1.wav|1795521600001/week1.wav)$' order by 1, 2 $$,
  $$ values (false, 'abandoned'), (false, 'deleted'), (true, 'stored') $$,
  'A listing reconciles: removed audio deleted, an upload past its window abandoned, an arrived transcript stored');

-- Retention: the service role only; only rows whose objects are gone are marked.
select throws_ok($$ select * from public.claim_due_session_media() $$, '42501', null, 'The owner cannot run retention');
select throws_ok($$ select public.record_session_media_expiry(array[gen_random_uuid()]) $$, '42501', null, 'nor mark media expired');
select tests.authenticate_as_service_role();
select lives_ok($$ select pg_temp.start('audio', 'late.wav', 'audio/wav', 10, '2026-11-24 12:20:00+00') $$, 'An upload started later');
select lives_ok(format($$ insert into storage.objects (bucket_id, name, metadata) values ('session-media', %L, '{"size": 10, "mimetype": "audio/wav"}') $$,
    (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/late.wav')), 'arrives');
select results_eq($$ select storage_path ~ 'late.wav$', kind from public.claim_due_session_media('2027-01-01', 10)
                     where storage_path like '%54a00000-5e55-4000-8000-000000000001%' $$,
  $$ values (true, 'audio') $$,
  'Thirty days on, the claim reconciles the arrived upload and returns it; the transcript is kept');
select is(public.record_session_media_expiry(array(select id from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/late.wav'), '2027-01-01'), 0,
  'It is not marked expired while its object remains');
select lives_ok($$ delete from storage.objects where name like '%54a00000-5e55-4000-8000-000000000001%/late.wav' $$, 'Its object is deleted');
select is(public.record_session_media_expiry(array(select id from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/late.wav'), '2027-01-01'), 1,
  'then it is marked expired');

-- Storage operations and the analysts' figures.
select lives_ok($$ select public.record_storage_operation('retention_delete', false, 120, null, 'Storage answered 500') $$,
  'The service role records a storage operation');
select tests.authenticate_as('ops-owner@example.com');
select throws_ok($$ select public.record_storage_operation('complete', true, 1) $$, '42501', null, 'a user cannot');
select throws_ok($$ select * from analytics.storage_window(5) $$, '42501', null, 'nor read the storage figures');
select tests.authenticate_as_role('coach_analyst');
select ok((select failures >= 1 and operations >= 1 from analytics.storage_window(5)), 'An analyst sees the failure in the storage window');
select ok((select failures >= 1 from analytics.storage_daily(current_date, current_date)), 'and in the day''s figures');
select tests.clear_authentication();

-- The daily job and the rate limits.
select results_eq($$ select schedule, command from cron.job where jobname = 'media-retention' $$,
  $$ values ('17 3 * * *'::text, 'select private.run_media_retention()'::text) $$, 'pg_cron runs media retention daily at 03:17 UTC');
select is((select count(*)::int from private.rate_limit_policies where endpoint = 'media'), 2, 'The media function has rate limits');

select * from finish();
rollback;
