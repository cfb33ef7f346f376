-- The session-media operations (20261124150000) as each named user: starting an upload
-- (the owner's own session only; kind, type and size against the bucket; the key on the
-- given clock), completing it once the object exists, listing a session's media (owner,
-- assigned coach with an audit row, service role; rows kept in step with storage.objects),
-- the retention job's steps and the storage operations log (service role only), the
-- analysts' storage figures, the daily job and the rate limits. The file makes its own users.
begin;
select plan(61);

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

-- Starting an upload: the service role may name the clock, a user starts now.
select tests.authenticate_as_service_role();
select results_eq(
  $$ select storage_path, status, mime_type, bytes, upload_expires_at from pg_temp.start('audio', 'week1.wav', 'Audio/WAV', 1000) $$,
  format($$ values ('u/%s/s/54a00000-5e55-4000-8000-000000000001/1795521600000/week1.wav', 'pending', 'audio/wav', 1000::bigint,
                    '2026-11-24 12:10:00+00'::timestamptz) $$, tests.get_user_id('ops-owner@example.com')),
  'An upload on the given clock: the key from it, the type lower-cased, ten minutes to upload');
select is((select storage_path from pg_temp.start('audio', 'week1.wav', 'audio/wav', 1000)),
  format('u/%s/s/54a00000-5e55-4000-8000-000000000001/1795521600001/week1.wav', tests.get_user_id('ops-owner@example.com')),
  'The same name in the same millisecond takes the next one');
select tests.authenticate_as('ops-owner@example.com');
select ok((select created_at = now() and expires_at = now() + interval '30 days' from pg_temp.start('audio', 'now.wav', 'audio/wav', 10, '3000-01-01')),
  'The owner starts one now, whatever clock she names (no escaping the privacy window)');
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
select is((select count(*)::int from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001'), 5,
  'Refused starts stored nothing');
delete from public.session_media where storage_path like '%/now.wav';

-- Completing it: the service role (the media function, after its own ownership check), with
-- the eTag of the bytes it hashed.
create function pg_temp.week1() returns uuid language sql as $$
  select id from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/1795521600000/week1.wav'
$$;
grant execute on function pg_temp.week1() to public;
select tests.authenticate_as('ops-owner@example.com');
select throws_ok(format($$ select public.complete_session_media_upload(%L, %L, 'e') $$, pg_temp.week1(), repeat('a', 64)),
  '42501', null, 'The owner cannot record a hash herself');
select lives_ok(format($$ select pg_temp.put(%L, 998, 'audio/wav') $$, (select storage_path from public.session_media where id = pg_temp.week1())),
  'The owner''s object arrives');
select tests.authenticate_as_service_role();
update storage.objects set metadata = metadata || '{"eTag": "\"v1\""}' where name = (select storage_path from public.session_media where id = pg_temp.week1());
select throws_ok(format($$ select public.complete_session_media_upload(%L, %L, '"v0"') $$, pg_temp.week1(), repeat('b', 64)),
  'PT409', null, 'Completing with the eTag of other bytes is a conflict');
select throws_ok(format($$ select public.complete_session_media_upload(%L, 'not-a-hash', '"v1"') $$, pg_temp.week1()),
  '22023', null, 'A malformed hash is refused');
select results_eq(format($$ select status, bytes, sha256, uploaded_at is not null, etag from public.complete_session_media_upload(%L, %L, '"v1"') $$,
    pg_temp.week1(), repeat('b', 64)),
  format($$ values ('stored', 998::bigint, %L, true, '"v1"') $$, repeat('b', 64)),
  'The service role completes it: stored, with the object''s own size, its eTag and the hash');
select throws_ok(format($$ select public.complete_session_media_upload(%L, %L, 'e') $$,
    (select id from public.session_media where storage_path like '%54a00000-5e55-4000-8000-000000000001/%/week1.json'), repeat('c', 64)),
  'PT409', null, 'Completing before the object exists is a conflict');

-- Listing: owner, coach (audited), stranger, anon; rows kept in step with storage.objects.
create function pg_temp.key(basename text, ts text default '1795521600999') returns text language sql as $$
  select 'u/' || tests.get_user_id('ops-owner@example.com') || '/s/54a00000-5e55-4000-8000-000000000001/' || ts || '/' || basename
$$;
grant execute on function pg_temp.key(text, text) to public;
create function pg_temp.status(basename text) returns text language sql as $$
  select string_agg(status, ',' order by storage_path) from public.session_media
  where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/' || basename
$$;
grant execute on function pg_temp.status(text) to public;
select tests.authenticate_as('ops-owner@example.com');
select is((select count(*)::int from public.list_session_media('54a00000-5e55-4000-8000-000000000001')), 4,
  'The owner lists the session''s four rows');
select tests.clear_authentication();
select is((select count(*)::int from audit.phi_access_log where subject_user_id = tests.get_user_id('ops-owner@example.com')), 0,
  'Her own read is not recorded as PHI access');
select is(pg_temp.status('by-service.txt'), 'abandoned', 'An upload an hour past its window with no object is abandoned');
select tests.authenticate_as('ops-coach@example.com');
select is((select count(*)::int from public.list_session_media('54a00000-5e55-4000-8000-000000000001')), 4,
  'Her assigned coach lists them too');
select tests.clear_authentication();
select results_eq($$ select actor_id, resource, row_count from audit.phi_access_log where subject_user_id = tests.get_user_id('ops-owner@example.com') $$,
  $$ values (tests.get_user_id('ops-coach@example.com'), 'session_media'::text, 4) $$, 'and the coach''s read is in the PHI access log');
select tests.authenticate_as('ops-coach@example.com');
select throws_ok($$ select public.start_session_media_upload('54a00000-5e55-4000-8000-000000000001', 'audio', 'x.wav', 'audio/wav', 10) $$,
  '22023', null, 'The coach writes nothing through these functions');
select tests.authenticate_as('ops-stranger@example.com');
select throws_ok($$ select * from public.list_session_media('54a00000-5e55-4000-8000-000000000001') $$, '22023', null,
  'The stranger cannot list them');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.list_session_media('54a00000-5e55-4000-8000-000000000001') $$, '42501', null, 'nor can anon');

select tests.authenticate_as('ops-owner@example.com');
select lives_ok(format($$ select pg_temp.put(%L, 500, 'application/json') $$,
    (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/week1.json')),
  'The transcript arrives without a completion call');
select lives_ok(format($$ delete from storage.objects where name = %L $$, (select storage_path from public.session_media where id = pg_temp.week1())),
  'the owner removes her completed audio');
select lives_ok(format($$ select pg_temp.put(%L, 1000, 'audio/wav') $$,
    (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/1795521600001/week1.wav')),
  'an abandoned upload arrives late');
select lives_ok(format($$ select pg_temp.put(%L, 20, 'application/json') $$, pg_temp.key('direct.json')),
  'she uploads a transcript straight to Storage');
select lives_ok($$ select pg_temp.start('transcript', 'wrong.json', 'application/json', 10) $$, 'she starts a transcript upload');
select lives_ok(format($$ select pg_temp.put(%L, 10, 'audio/wav') $$,
    (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/wrong.json')),
  'and puts audio there');
select lives_ok($$ select pg_temp.start('audio', 'empty.wav', 'audio/wav', 10) $$, 'she starts an audio upload');
select lives_ok(format($$ select pg_temp.put(%L, 0, 'audio/wav') $$,
    (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/empty.wav')),
  'and puts an empty file there');
select is((select count(*)::int from public.list_session_media('54a00000-5e55-4000-8000-000000000001')), 7,
  'A listing brings the rows in step (and no stored value breaks it)');
select results_eq($$ select pg_temp.status(b) from unnest(array['week1.json', 'week1.wav', 'direct.json', 'wrong.json', 'empty.wav']) b $$,
  $$ values ('stored'), ('deleted,stored'), ('stored'), ('rejected'), ('rejected') $$,
  'arrived transcript stored; removed audio deleted, late audio stored; a direct upload adopted; audio under a transcript and an empty file rejected');
select results_eq($$ select kind, mime_type, bytes from public.session_media where storage_path like '%/direct.json' $$,
  $$ values ('transcript'::text, 'application/json'::text, 20::bigint) $$, 'An adopted object''s kind follows its type');
select lives_ok(format($$ update storage.objects set metadata = '{"mimetype": "application/json", "size": 30, "eTag": "\"v2\""}' where name = %L $$,
    pg_temp.key('direct.json')), 'She replaces that transcript in place');
select results_eq($$ select bytes, etag, sha256 from public.list_session_media('54a00000-5e55-4000-8000-000000000001') where storage_path like '%/direct.json' $$,
  $$ values (30::bigint, '"v2"'::text, null::text) $$, 'A replaced object''s row takes its size and eTag, and has no hash until completed again');

-- Retention: the service role only; only rows whose objects are gone are marked.
select throws_ok($$ select * from public.claim_due_session_media() $$, '42501', null, 'The owner cannot run retention');
select throws_ok($$ select public.record_session_media_expiry(array[gen_random_uuid()]) $$, '42501', null, 'nor mark media expired');
select tests.authenticate_as_service_role();
select lives_ok($$ select pg_temp.start('audio', 'late.wav', 'audio/wav', 10, now() - interval '1 day') $$, 'An upload started yesterday');
select lives_ok(format($$ insert into storage.objects (bucket_id, name, metadata) values ('session-media', %L, '{"size": 10, "mimetype": "audio/wav"}') $$,
    (select storage_path from public.session_media where session_id = '54a00000-5e55-4000-8000-000000000001' and storage_path like '%/late.wav')), 'arrives');
select lives_ok(format($$ insert into storage.objects (bucket_id, name, metadata) values ('session-media', %L, '{"size": 10, "mimetype": "audio/wav"}') $$,
    pg_temp.key('bad name.wav', '1')), 'The service role writes an object no row can follow');
select results_eq($$ select reason, substring(storage_path from '[^/]+$') from public.claim_due_session_media(now() + interval '40 days', 10)
                     where storage_path like '%54a00000-5e55-4000-8000-000000000001%' order by 1, 2 $$,
  $$ values ('expired', 'late.wav'), ('expired', 'week1.wav'), ('orphan', 'bad name.wav'), ('rejected', 'empty.wav'), ('rejected', 'wrong.json') $$,
  'Forty days on, the claim returns expired audio (not the transcripts), rejected objects and orphans');
select is(public.record_session_media_expiry(array(select id from public.session_media where storage_path like '%54a00000-5e55-4000-8000-000000000001/%/late.wav')), 0,
  'Expired audio is not marked while its object remains');
select lives_ok($$ delete from storage.objects where name like '%54a00000-5e55-4000-8000-000000000001%/late.wav' $$, 'Its object is deleted');
select is(public.record_session_media_expiry(array(select id from public.session_media where storage_path like '%54a00000-5e55-4000-8000-000000000001/%/late.wav')), 1,
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
