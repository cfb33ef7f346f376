-- Session media rules as each named user (the object rows that the Storage API writes as the
-- caller, so these policies decide): the owner adds, reads, renames and deletes objects only
-- under u/<her id>/s/<her session>/<ts>/...; her assigned coach reads them; a stranger,
-- anon, an ingest token and an analyst see and write none; the bucket is private with its
-- limits; session_media is read by its owner only and written by the service role, with
-- expires_at from the retention window. The file makes its own users and sessions.
begin;
select plan(43);

select tests.create_supabase_user('media-owner@example.com');
select tests.create_supabase_user('media-stranger@example.com');
select tests.create_supabase_user('media-coach@example.com', 'coach');
update public.profiles set role = 'coach' where id = tests.get_user_id('media-coach@example.com');
insert into public.coach_assignments (coach_id, client_id)
values (tests.get_user_id('media-coach@example.com'), tests.get_user_id('media-owner@example.com'));
insert into public.coaching_sessions (id, user_id, theme) values
  ('53a00000-5e55-4000-8000-000000000001', tests.get_user_id('media-owner@example.com'), 'Owner''s session'),
  ('53a00000-5e55-4000-8000-000000000002', tests.get_user_id('media-stranger@example.com'), 'Stranger''s session');

create function pg_temp.path(email text, session text, basename text default 'audio.wav') returns text language sql as $$
  select 'u/' || tests.get_user_id(email) || '/s/' || session || '/1732406400000/' || basename
$$;
grant execute on function pg_temp.path(text, text, text) to public;
create function pg_temp.put(name text) returns void language sql as $$
  insert into storage.objects (bucket_id, name, owner, metadata)
  values ('session-media', name, (select auth.uid()), '{"mimetype": "audio/wav", "size": 4}')
$$;
grant execute on function pg_temp.put(text) to public;

-- The bucket.
select results_eq($$ select public, file_size_limit from storage.buckets where id = 'session-media' $$,
  $$ values (false, 104857600::bigint) $$, 'The session-media bucket is private, 100 MB per object');
select ok((select allowed_mime_types @> array['audio/wav', 'audio/mpeg', 'audio/mp4', 'audio/webm', 'audio/ogg', 'application/json', 'text/plain']
           from storage.buckets where id = 'session-media'), 'and takes audio and transcripts');
select ok(not (select allowed_mime_types && array['image/png', 'application/octet-stream', 'text/html'] from storage.buckets where id = 'session-media'),
  'and nothing else');

-- The owner.
select tests.authenticate_as('media-owner@example.com');
select lives_ok(format('select pg_temp.put(%L)', pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001')),
  'The owner adds audio under her own session');
select lives_ok(format('select pg_temp.put(%L)', pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'transcript.json')),
  'and a transcript');
select throws_ok(format('select pg_temp.put(%L)', pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000002')),
  '42501', null, 'but nothing under another user''s session with her own id');
select throws_ok(format('select pg_temp.put(%L)', pg_temp.path('media-stranger@example.com', '53a00000-5e55-4000-8000-000000000002')),
  '42501', null, 'nor under another user''s id');
select throws_ok(format('select pg_temp.put(%L)', pg_temp.path('media-owner@example.com', gen_random_uuid()::text)),
  '42501', null, 'nor under a session that does not exist');
select throws_ok(format('select pg_temp.put(%L)', 'u/' || tests.get_user_id('media-owner@example.com') || '/s/53a00000-5e55-4000-8000-000000000001/audio.wav'),
  '42501', null, 'nor outside the key convention (no timestamp folder)');
select throws_ok(format('select pg_temp.put(%L)', 'u/' || tests.get_user_id('media-owner@example.com') || '/s/53a00000-5e55-4000-8000-000000000001/1/x/audio.wav'),
  '42501', null, 'nor deeper than it');
select throws_ok(format($$ insert into storage.objects (bucket_id, name) values ('avatars', %L) $$,
    pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001')),
  '42501', null, 'nor in another bucket');
select is((select count(*)::int from storage.objects where bucket_id = 'session-media'), 2, 'She reads her two objects');
select lives_ok(format($$ update storage.objects set name = %L where name = %L $$,
    pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'audio-2.wav'),
    pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001')),
  'renames one within her session');
select throws_ok(format($$ update storage.objects set name = %L where name = %L $$,
    pg_temp.path('media-stranger@example.com', '53a00000-5e55-4000-8000-000000000002', 'moved.wav'),
    pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'audio-2.wav')),
  '42501', null, 'but cannot move it into another user''s session');
select throws_ok(format($$ update storage.objects set name = %L where name = %L $$,
    pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'my audio.wav'),
    pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'audio-2.wav')),
  '42501', null, 'nor to a basename session_media would not accept (20261124150000)');
select throws_ok(format('select pg_temp.put(%L)', pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'my audio.wav')),
  '42501', null, 'nor add one under such a name');

-- The coach reads, and writes nothing.
select tests.authenticate_as('media-coach@example.com');
select is((select count(*)::int from storage.objects where bucket_id = 'session-media'), 2, 'Her assigned coach reads her objects');
select throws_ok(format('select pg_temp.put(%L)', pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'coach.wav')),
  '42501', null, 'but adds none');
select is_empty($$ delete from storage.objects where bucket_id = 'session-media' returning name $$, 'and deletes none');
select is_empty($$ update storage.objects set metadata = '{}' where bucket_id = 'session-media' returning name $$, 'and changes none');

-- The stranger, anon, ingest and analysts see nothing.
select tests.authenticate_as('media-stranger@example.com');
select is((select count(*)::int from storage.objects where bucket_id = 'session-media'), 0, 'A stranger reads none of them');
select is_empty($$ delete from storage.objects where bucket_id = 'session-media' returning name $$, 'and deletes none');
select lives_ok(format('select pg_temp.put(%L)', pg_temp.path('media-stranger@example.com', '53a00000-5e55-4000-8000-000000000002')),
  'but adds under his own session');
select tests.authenticate_as_anon();
select is((select count(*)::int from storage.objects where bucket_id = 'session-media'), 0, 'Anon reads none');
select throws_ok(format('select pg_temp.put(%L)', pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'anon.wav')),
  '42501', null, 'and adds none');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select count(*) from storage.objects $$, '42501', null, 'An ingest token has no access to objects');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select count(*) from storage.objects $$, '42501', null, 'nor has an analyst');

-- The owner deletes her own.
select tests.authenticate_as('media-owner@example.com');
select results_eq($$ with d as (delete from storage.objects where bucket_id = 'session-media' returning 1) select count(*)::int from d $$,
  $$ values (2) $$, 'The owner deletes her objects, and only hers');

-- session_media rows: the service role writes them; expires_at comes from the window.
select tests.authenticate_as_service_role();
insert into public.session_media (id, session_id, user_id, kind, storage_path, mime_type, bytes, created_at) values
  ('53a00000-3ed1-4000-8000-000000000001', '53a00000-5e55-4000-8000-000000000001', tests.get_user_id('media-owner@example.com'), 'audio',
   pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001'), 'audio/wav', 4, '2026-11-24 00:00+00'),
  ('53a00000-3ed1-4000-8000-000000000002', '53a00000-5e55-4000-8000-000000000001', tests.get_user_id('media-owner@example.com'), 'transcript',
   pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'transcript.json'), 'application/json', 4, '2026-11-24 00:00+00');
select results_eq($$ select kind, expires_at from public.session_media where session_id = '53a00000-5e55-4000-8000-000000000001' order by kind $$,
  $$ values ('audio'::text, '2026-12-24 00:00+00'::timestamptz), ('transcript', null) $$,
  'Audio expires 30 days after upload; transcripts are kept');
select throws_ok($$ insert into public.session_media (session_id, user_id, kind, storage_path, mime_type, bytes)
    values ('53a00000-5e55-4000-8000-000000000001', tests.get_user_id('media-owner@example.com'), 'audio',
            'u/' || tests.get_user_id('media-stranger@example.com') || '/s/53a00000-5e55-4000-8000-000000000001/1/a.wav', 'audio/wav', 4) $$,
  '23514', null, 'A row''s path must name its own user and session');
select throws_ok($$ insert into public.session_media (session_id, user_id, kind, storage_path, mime_type, bytes)
    values ('53a00000-5e55-4000-8000-000000000001', tests.get_user_id('media-owner@example.com'), 'audio',
            pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', '..audio.wav'), 'audio/wav', 4) $$,
  '23514', null, 'and a sanitised basename');
select throws_ok($$ insert into public.session_media (session_id, user_id, kind, storage_path, mime_type, bytes)
    values ('53a00000-5e55-4000-8000-000000000001', tests.get_user_id('media-owner@example.com'), 'video',
            pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'v.mp4'), 'video/mp4', 4) $$,
  '23514', null, 'Only audio and transcripts');
select throws_ok($$ insert into public.session_media (session_id, user_id, kind, storage_path, mime_type, bytes)
    values ('53a00000-5e55-4000-8000-000000000001', tests.get_user_id('media-owner@example.com'), 'audio',
            pg_temp.path('media-owner@example.com', '53a00000-5e55-4000-8000-000000000001', 'big.wav'), 'audio/wav', 104857601) $$,
  '23514', null, 'at most 100 MB');

select tests.authenticate_as('media-owner@example.com');
select is((select count(*)::int from public.session_media), 2, 'The owner reads her media rows');
select throws_ok($$ update public.session_media set status = 'stored' $$, '42501', null, 'but writes none');
select tests.authenticate_as('media-coach@example.com');
select is((select count(*)::int from public.session_media), 0, 'The coach reads none directly (the media function audits her reads)');
select tests.authenticate_as('media-stranger@example.com');
select is((select count(*)::int from public.session_media), 0, 'nor does a stranger');
select is((select retain_days from public.media_retention_settings where kind = 'audio'), 30, 'Anyone signed in reads the retention window');
select throws_ok($$ update public.media_retention_settings set retain_days = 3650 $$, '42501', null, 'but only the service role changes it');
select tests.authenticate_as_service_role();
select is((select (public.set_retention_policy('media_audio', '14 days', 'delete', 'two weeks')).retain_for), interval '14 days',
  'through its retention policy (pgTAP 61)');
select results_eq($$ select retain_days from public.media_retention_settings where kind = 'audio' $$, $$ values (14) $$, 'as it may');
select tests.clear_authentication();
select results_eq($$ select kind, expires_at from public.session_media where session_id = '53a00000-5e55-4000-8000-000000000001' order by kind $$,
  $$ values ('audio'::text, '2026-12-08 00:00+00'::timestamptz), ('transcript', null) $$,
  'A new window applies to the recordings already there: 14 days after their upload');
select tests.authenticate_as_service_role();
select public.set_retention_policy('media_audio', null, 'delete', 'keep audio');
select public.set_retention_policy('media_transcript', '7 days', 'delete', 'a week of transcripts');
select tests.clear_authentication();
select results_eq($$ select kind, expires_at from public.session_media where session_id = '53a00000-5e55-4000-8000-000000000001' order by kind $$,
  $$ values ('audio'::text, null::timestamptz), ('transcript', '2026-12-01 00:00+00') $$,
  'Keeping a kind keeps what is there; a window for a kept kind reaches its files too');

select * from finish();
rollback;
