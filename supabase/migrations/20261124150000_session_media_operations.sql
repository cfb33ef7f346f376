-- Purpose: the session-media operations of issue 12 on top of 20261124140000: what the
-- media and media-retention edge functions call, and what keeps public.session_media in
-- step with storage.objects without triggers on storage's own tables (hosted Supabase does
-- not let projects alter the storage schema).
--  * session_media gains upload_expires_at (the end of a pending upload's signed URL, ten
--    minutes), etag (the object's, when last seen) and the statuses `abandoned` (no upload
--    arrived) and `rejected` (the object's size or type does not fit its kind).
--  * Storage policies: a key an owner writes (upload, upsert, rename) must end in a basename
--    session_media accepts, so that every object can have a row (an object uploaded or
--    copied straight to Storage, or renamed, is adopted by private.sync_session_media).
--  * public.start_session_media_upload(...): the owner of a session (or the service role for
--    it) records a pending upload: kind, MIME type and size checked against the bucket and
--    the kind, the key built on the server's clock (u/{userId}/s/{sessionId}/{ts}/{basename}).
--  * public.complete_session_media_upload(media_id, sha256, etag): for the service role (the
--    media function, which checks ownership and hashes the bytes): marks the row stored with
--    the object's own size, type and upload time and the SHA-256; refuses an object that
--    does not fit the kind (reconciliation then rejects the row).
--  * public.list_session_media(session_id, at): the session's media for its owner, the
--    owner's assigned coach (audited in audit.phi_access_log) or the service role, after
--    reconciling the session's rows with storage.objects (private.sync_session_media).
--  * public.claim_due_session_media(at, batch_size) and public.record_session_media_expiry(
--    ids, at): the retention job's two steps around its deletes through the Storage API.
--  * private.storage_operations and public.record_storage_operation(...): what the functions
--    did with storage (operation, outcome, duration, bytes), for analysts and alerts:
--    analytics.storage_window(minutes, as_of) and analytics.storage_daily(from_day, to_day).
--  * private.run_media_retention() and the daily pg_cron job media-retention (03:17 UTC),
--    which invokes the media-retention function through pg_net (private.invoke_edge_function).
--  * Rate-limit policies for the media function.
-- Objects: columns and constraints of public.session_media; two policies on storage.objects
-- (insert and update, replaced); table private.storage_operations; functions
-- private.media_kind_of, private.media_object_fits;
-- functions public.start_session_media_upload, public.complete_session_media_upload,
-- public.list_session_media, public.claim_due_session_media,
-- public.record_session_media_expiry, public.record_storage_operation,
-- private.sync_session_media, private.run_media_retention, analytics.storage_window,
-- analytics.storage_daily; rows of private.rate_limit_policies; pg_cron job media-retention.
-- Destructive: none (two storage policies replaced by stricter ones; status constraints
-- widened to admit the new statuses).

alter table public.session_media
  add column upload_expires_at timestamptz,
  add column etag text;
comment on column public.session_media.upload_expires_at is
  'For an upload started through the media function: when its signed upload URL ends (ten minutes after it was issued).';
comment on column public.session_media.etag is
  'The object''s eTag (storage.objects.metadata) when the row was last brought in step with it; a different eTag means the object was replaced.';

alter table public.session_media drop constraint session_media_status_known;
alter table public.session_media add constraint session_media_status_known
  check (status in ('pending', 'stored', 'expired', 'deleted', 'abandoned', 'rejected'));
alter table public.session_media drop constraint session_media_deleted_has_time;
alter table public.session_media add constraint session_media_deleted_has_time
  check ((status in ('expired', 'deleted', 'abandoned', 'rejected')) = (deleted_at is not null));
alter table public.session_media add constraint session_media_etag_length
  check (etag is null or char_length(etag) <= 200);
comment on table public.session_media is
  'One row per object of the session-media bucket: session, user, kind (audio | transcript), storage path (u/{userId}/s/{sessionId}/{ts}/{basename}), MIME type, bytes, duration, SHA-256, tracked skill hash (never the raw id), status (pending | stored | expired | deleted | abandoned | rejected), expires_at from media_retention_settings. Kept in step with storage.objects by private.sync_session_media. Written by the service role and the media functions; read by its owner (a coach reads through the audited media function).';

-- Pending uploads whose window has passed (the retention job's sweep).
create index session_media_upload_expires_at_idx on public.session_media (upload_expires_at) where status = 'pending';

-- Objects only where a row can follow them: the last segment of a key an owner writes
-- (uploads, upserts, renames) must be a basename session_media accepts, so that
-- private.sync_session_media can give every object a row and retention reaches it.
drop policy "Session media: owners add under their own sessions" on storage.objects;
create policy "Session media: owners add under their own sessions"
  on storage.objects for insert to authenticated
  with check (bucket_id = 'session-media'
              and private.session_media_owner(storage.foldername(name)) = (select auth.uid())
              and storage.filename(name) ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$');
drop policy "Session media: owners rename within their own sessions" on storage.objects;
create policy "Session media: owners rename within their own sessions"
  on storage.objects for update to authenticated
  using (bucket_id = 'session-media'
         and private.session_media_owner(storage.foldername(name)) = (select auth.uid()))
  with check (bucket_id = 'session-media'
              and private.session_media_owner(storage.foldername(name)) = (select auth.uid())
              and storage.filename(name) ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$');

-- ---------------------------------------------------------------------------------------
-- Keeping rows in step with storage.objects.

create or replace function private.media_kind_of(mime_type text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case when media_kind_of.mime_type like 'audio/%' then 'audio'
              when media_kind_of.mime_type in ('application/json', 'text/plain') then 'transcript' end
$$;
comment on function private.media_kind_of(text) is
  'The session-media kind a MIME type belongs to: audio/* is audio, application/json and text/plain are transcripts; null otherwise.';
revoke execute on function private.media_kind_of(text) from public, anon, authenticated;

create or replace function private.media_object_fits(kind text, metadata jsonb)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads storage.buckets. Whether an object's own metadata (size and
  -- type, as Storage recorded them) fit the bucket and the kind, so that copying them into
  -- session_media can never break its constraints.
  select coalesce(
    jsonb_typeof(media_object_fits.metadata -> 'size') = 'number'
    and (media_object_fits.metadata ->> 'size')::numeric between 1 and coalesce(b.file_size_limit, 104857600)
    and (media_object_fits.metadata ->> 'mimetype') = any (b.allowed_mime_types)
    and private.media_kind_of(media_object_fits.metadata ->> 'mimetype') = media_object_fits.kind, false)
  from storage.buckets b where b.id = 'session-media'
$$;
comment on function private.media_object_fits(text, jsonb) is
  'True when an object''s metadata (size 1..the bucket''s limit, a MIME type the bucket allows) fit the session-media kind.';
revoke execute on function private.media_object_fits(text, jsonb) from public, anon, authenticated;

create or replace function private.sync_session_media(session_id uuid, at timestamptz default now())
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: reads storage.objects and writes session_media whoever asks; callers
-- (the functions below) have already checked that the caller may see the session. Returns
-- the rows changed. In order:
--  1. objects under the session's folder with no row (uploaded straight to Storage, or
--     copied) get one, stored, when their size and type fit a kind;
--  2. pending or abandoned rows whose object arrived, and ended rows (deleted, expired,
--     rejected) with a new object at their path, become stored when it fits the row's kind,
--     else rejected (the retention job deletes a rejected row's object);
--  3. stored rows whose object was replaced (another eTag) take its size and type and lose
--     their hash, or are rejected when it no longer fits;
--  4. stored rows whose object is gone become deleted;
--  5. pending rows an hour past their upload window with no object become abandoned (the
--     hour lets an upload begun in time finish; a later arrival still revives the row).
declare
  session_owner uuid;
  prefix text;
  changed integer := 0;
  n integer;
begin
  select s.user_id into session_owner from public.coaching_sessions s where s.id = sync_session_media.session_id;
  if session_owner is null then
    return 0;
  end if;
  prefix := 'u/' || session_owner || '/s/' || sync_session_media.session_id || '/';

  insert into public.session_media (session_id, user_id, kind, storage_path, mime_type, bytes, status,
                                    created_at, uploaded_at, etag)
  select sync_session_media.session_id, session_owner, private.media_kind_of(o.metadata ->> 'mimetype'), o.name,
         o.metadata ->> 'mimetype', (o.metadata ->> 'size')::bigint, 'stored', o.created_at, o.created_at,
         left(o.metadata ->> 'eTag', 200)
  from storage.objects o
  where o.bucket_id = 'session-media' and o.name like prefix || '%'
    and o.name ~ '^u/[0-9a-f-]{36}/s/[0-9a-f-]{36}/[0-9]{1,16}/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'
    and private.media_object_fits(private.media_kind_of(o.metadata ->> 'mimetype'), o.metadata)
    and not exists (select 1 from public.session_media m where m.bucket_id = o.bucket_id and m.storage_path = o.name)
  on conflict (bucket_id, storage_path) do nothing;
  get diagnostics n = row_count;
  changed := changed + n;

  -- Steps 2 and 3 in one statement; whether an object fits is asked once per row.
  update public.session_media m
     set status = case when x.fits then 'stored' else 'rejected' end,
         deleted_at = case when x.fits then null else sync_session_media.at end,
         uploaded_at = case when m.status = 'stored' then x.updated_at else x.created_at end,
         bytes = case when x.fits then (x.metadata ->> 'size')::bigint else m.bytes end,
         mime_type = case when x.fits then x.metadata ->> 'mimetype' else m.mime_type end,
         -- The hash stays only for the bytes that were hashed: an arrival completed before.
         sha256 = case when m.status in ('pending', 'abandoned') then m.sha256 end,
         -- A new object at the path of a row that ended starts its own window.
         expires_at = case when m.status in ('pending', 'abandoned', 'stored') then m.expires_at
                           else x.created_at + make_interval(days => (select r.retain_days from public.media_retention_settings r where r.kind = m.kind)) end,
         etag = left(x.metadata ->> 'eTag', 200)
    from (
      select sm.id, o.created_at, o.updated_at, o.metadata, private.media_object_fits(sm.kind, o.metadata) as fits
      from public.session_media sm
      join storage.objects o on o.bucket_id = sm.bucket_id and o.name = sm.storage_path
      where sm.session_id = sync_session_media.session_id
        and (sm.status in ('pending', 'abandoned')
             or (sm.status in ('stored', 'deleted', 'expired', 'rejected') and (o.metadata ->> 'eTag') is distinct from sm.etag))
    ) x
   where m.id = x.id;
  get diagnostics n = row_count;
  changed := changed + n;

  update public.session_media m
     set status = 'deleted', deleted_at = sync_session_media.at
   where m.session_id = sync_session_media.session_id and m.status = 'stored'
     and not exists (select 1 from storage.objects o where o.bucket_id = m.bucket_id and o.name = m.storage_path);
  get diagnostics n = row_count;
  changed := changed + n;

  update public.session_media m
     set status = 'abandoned', deleted_at = sync_session_media.at
   where m.session_id = sync_session_media.session_id and m.status = 'pending'
     and m.upload_expires_at + interval '1 hour' <= sync_session_media.at
     and not exists (select 1 from storage.objects o where o.bucket_id = m.bucket_id and o.name = m.storage_path);
  get diagnostics n = row_count;
  return changed + n;
end;
$$;
comment on function private.sync_session_media(uuid, timestamptz) is
  'Brings a session''s session_media rows in step with storage.objects at a time: adopts objects with no row, marks arrived uploads stored (or rejected when their size or type does not fit the kind), refreshes replaced objects, marks vanished objects deleted and uploads an hour past their window abandoned. Returns the rows changed.';
revoke execute on function private.sync_session_media(uuid, timestamptz) from public, anon, authenticated;

-- ---------------------------------------------------------------------------------------
-- Starting and completing an upload.

create or replace function public.start_session_media_upload(
  session_id uuid,
  kind text,
  basename text,
  mime_type text,
  bytes bigint,
  duration_ms integer default null,
  tracked_skill_id_hash text default null,
  at timestamptz default now()
)
returns public.session_media
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: session_media is written by the service role only, and the bucket's
-- limits are in storage.buckets, which signed-in users cannot read. The caller is checked
-- here: a signed-in user for their own session, or the service role for any session. Only
-- the service role may name the clock (`at`); a user's upload starts now.
declare
  caller uuid := auth.uid();
  caller_role text := private.caller_role();
  owner_id uuid;
  b storage.buckets;
  mime text := lower(btrim(start_session_media_upload.mime_type));
  started timestamptz;
  ts bigint;
  inserted public.session_media;
begin
  if caller_role not in ('authenticated', 'service_role', 'postgres') or (caller_role = 'authenticated' and caller is null) then
    raise exception 'Only a signed-in user or the service role can upload session media' using errcode = '42501';
  end if;
  started := case when caller_role = 'authenticated' then now() else coalesce(start_session_media_upload.at, now()) end;
  ts := floor(extract(epoch from started) * 1000)::bigint;
  select s.user_id into owner_id from public.coaching_sessions s where s.id = start_session_media_upload.session_id;
  if owner_id is null or (caller_role = 'authenticated' and owner_id <> caller) then
    raise exception 'session_id does not name one of your coaching sessions'
      using errcode = '22023', constraint = 'start_session_media_upload_session';
  end if;
  if start_session_media_upload.kind is null or start_session_media_upload.kind not in ('audio', 'transcript') then
    raise exception 'kind must be audio or transcript' using errcode = '22023', constraint = 'start_session_media_upload_kind';
  end if;
  select * into b from storage.buckets where id = 'session-media';
  if mime is null or not (mime = any (b.allowed_mime_types))
     or private.media_kind_of(mime) is distinct from start_session_media_upload.kind then
    raise exception 'content_type % is not allowed for %: use one of %', coalesce(mime, 'null'), start_session_media_upload.kind,
      array_to_string(array(select t from unnest(b.allowed_mime_types) t
                            where private.media_kind_of(t) = start_session_media_upload.kind), ', ')
      using errcode = '22023', constraint = 'start_session_media_upload_content_type';
  end if;
  if start_session_media_upload.bytes is null or start_session_media_upload.bytes < 1
     or start_session_media_upload.bytes > coalesce(b.file_size_limit, 104857600) then
    raise exception 'bytes must be between 1 and % (the bucket''s limit)', coalesce(b.file_size_limit, 104857600)
      using errcode = '22023', constraint = 'start_session_media_upload_bytes';
  end if;
  -- Two uploads of one name in one millisecond: the next millisecond is the later one's.
  for attempt in 0 .. 4 loop
    insert into public.session_media (session_id, user_id, kind, storage_path, mime_type, bytes, duration_ms,
                                      tracked_skill_id_hash, created_at, upload_expires_at)
    values (start_session_media_upload.session_id, owner_id, start_session_media_upload.kind,
            'u/' || owner_id || '/s/' || start_session_media_upload.session_id || '/' || (ts + attempt) || '/' || start_session_media_upload.basename,
            mime, start_session_media_upload.bytes, start_session_media_upload.duration_ms,
            start_session_media_upload.tracked_skill_id_hash, started, started + interval '10 minutes')
    on conflict (bucket_id, storage_path) do nothing
    returning * into inserted;
    exit when inserted.id is not null;
  end loop;
  if inserted.id is null then
    raise exception 'Too many uploads of % at once; retry', start_session_media_upload.basename using errcode = 'PT409';
  end if;
  return inserted;
end;
$$;
comment on function public.start_session_media_upload(uuid, text, text, text, bigint, integer, text, timestamptz) is
  'Records a pending session-media upload for the media function: the caller''s own session (the service role: any), kind audio | transcript, a MIME type the bucket allows for that kind, 1..file_size_limit bytes, a basename (already sanitised; the path constraint checks it). The key is u/{userId}/s/{sessionId}/{ts}/{basename} with ts the milliseconds of the start (now; the service role may pass at); upload_expires_at is ten minutes later. Errors name the field (22023 with constraint start_session_media_upload_*).';
revoke execute on function public.start_session_media_upload(uuid, text, text, text, bigint, integer, text, timestamptz) from public, anon;
grant execute on function public.start_session_media_upload(uuid, text, text, text, bigint, integer, text, timestamptz) to authenticated, service_role;

create or replace function public.complete_session_media_upload(media_id uuid, sha256 text, etag text, at timestamptz default now())
returns public.session_media
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer, for the service role only: the media function calls it after checking
-- that the row is the caller's and computing the hash from the object's bytes, whose eTag
-- it passes so that a replacement in between is caught.
declare
  m public.session_media;
  o storage.objects;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can complete an upload' using errcode = '42501';
  end if;
  if complete_session_media_upload.sha256 is null or complete_session_media_upload.sha256 !~ '^[0-9a-f]{64}$' then
    raise exception 'sha256 must be 64 lowercase hex digits' using errcode = '22023', constraint = 'session_media_sha256_format';
  end if;
  select * into m from public.session_media sm where sm.id = complete_session_media_upload.media_id for update;
  if m.id is null then
    raise exception 'media_id does not name an upload' using errcode = '22023', constraint = 'complete_session_media_upload_media';
  end if;
  if m.status not in ('pending', 'stored', 'abandoned') then
    raise exception 'This upload is %: it cannot be completed', m.status using errcode = 'PT409';
  end if;
  select * into o from storage.objects so where so.bucket_id = m.bucket_id and so.name = m.storage_path;
  if o.id is null then
    raise exception 'The object has not been uploaded yet: PUT it to the signed upload URL first' using errcode = 'PT409';
  end if;
  if (o.metadata ->> 'eTag') is distinct from complete_session_media_upload.etag then
    raise exception 'The object changed while it was read: complete again' using errcode = 'PT409';
  end if;
  if not private.media_object_fits(m.kind, o.metadata) then
    -- Nothing changes here (a refused request writes nothing); the next reconciliation marks
    -- the row rejected and the retention job deletes the object.
    raise exception 'The uploaded object (% bytes of %) does not fit this % upload', coalesce(o.metadata ->> 'size', '?'),
      coalesce(o.metadata ->> 'mimetype', 'no type'), m.kind
      using errcode = '22023', constraint = 'complete_session_media_upload_object';
  end if;
  update public.session_media sm
     set status = 'stored', deleted_at = null, uploaded_at = o.created_at, sha256 = complete_session_media_upload.sha256,
         bytes = (o.metadata ->> 'size')::bigint, mime_type = o.metadata ->> 'mimetype', etag = left(o.metadata ->> 'eTag', 200)
   where sm.id = m.id
  returning * into m;
  return m;
end;
$$;
comment on function public.complete_session_media_upload(uuid, text, text, timestamptz) is
  'Service role (the media function, after its own ownership check): marks an upload stored once its object is in storage.objects with the eTag that was hashed, with the object''s size, type and creation time and the SHA-256 of its bytes. 22023 (constraint complete_session_media_upload_object) when the object''s size or type does not fit the kind (the next reconciliation rejects the row); 409 (PT409) while the object is missing, when it changed, or when the row is expired, deleted or rejected.';
revoke execute on function public.complete_session_media_upload(uuid, text, text, timestamptz) from public, anon, authenticated;
grant execute on function public.complete_session_media_upload(uuid, text, text, timestamptz) to service_role;

-- ---------------------------------------------------------------------------------------
-- Reading a session's media.

create or replace function public.list_session_media(session_id uuid, at timestamptz default now())
returns setof public.session_media
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: reconciles the rows with storage.objects (private.sync_session_media)
-- and lets the assigned coach read them; the caller is checked here: the owner, the owner's
-- assigned coach (whose read is recorded in audit.phi_access_log), or the service role.
-- Only the service role may name the clock.
declare
  caller uuid := auth.uid();
  caller_role text := private.caller_role();
  owner_id uuid;
  page public.session_media[];
begin
  if caller_role not in ('authenticated', 'service_role', 'postgres') or (caller_role = 'authenticated' and caller is null) then
    raise exception 'Only a signed-in user or the service role can list session media' using errcode = '42501';
  end if;
  select s.user_id into owner_id from public.coaching_sessions s where s.id = list_session_media.session_id;
  if owner_id is null or (caller_role = 'authenticated' and owner_id <> caller and not private.is_assigned_coach(owner_id)) then
    raise exception 'session_id does not name a coaching session you can read'
      using errcode = '22023', constraint = 'list_session_media_session';
  end if;
  perform private.sync_session_media(list_session_media.session_id,
    case when caller_role = 'authenticated' then now() else coalesce(list_session_media.at, now()) end);
  select coalesce(array_agg(x order by (x).created_at desc, (x).id desc), '{}') into page
  from (
    select m as x from public.session_media m
    where m.session_id = list_session_media.session_id
    order by m.created_at desc, m.id desc
    limit 500
  ) s;
  if caller_role = 'authenticated' and owner_id <> caller then
    perform audit.record_phi_access(owner_id, 'session_media', cardinality(page), 'coaching');
  end if;
  return query select * from unnest(page);
end;
$$;
comment on function public.list_session_media(uuid, timestamptz) is
  'A session''s media rows (newest first, at most 500) for its owner, the owner''s assigned coach (the read is recorded in audit.phi_access_log) or the service role, after bringing them in step with storage.objects (private.sync_session_media) now (the service role may pass at). Another session: 22023 naming session_id.';
revoke execute on function public.list_session_media(uuid, timestamptz) from public, anon;
grant execute on function public.list_session_media(uuid, timestamptz) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- Retention.

create or replace function public.claim_due_session_media(at timestamptz default now(), batch_size integer default 100)
returns table (id uuid, bucket_id text, storage_path text, reason text)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: the retention job's first step, for the service role only. Sessions
-- with uploads past their window, with objects under ended rows, or with objects that have
-- no row, are brought in step first; then it returns up to batch_size objects of each
-- reason to delete through the Storage API: stored objects whose privacy window has passed
-- (expired, with their row's id), the objects of rejected rows (rejected), and objects an
-- hour old that no row can follow (orphan, no id).
declare
  s uuid;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can run media retention' using errcode = '42501';
  end if;
  if claim_due_session_media.batch_size is null or claim_due_session_media.batch_size not between 1 and 1000 then
    raise exception 'batch_size must be between 1 and 1000' using errcode = '22023';
  end if;
  for s in
    (select distinct m.session_id from public.session_media m
     where m.status = 'pending' and m.upload_expires_at + interval '1 hour' <= claim_due_session_media.at
     limit claim_due_session_media.batch_size)
    union
    (select distinct m.session_id from public.session_media m
     where m.status in ('rejected', 'abandoned', 'deleted', 'expired')
       and exists (select 1 from storage.objects o where o.bucket_id = m.bucket_id and o.name = m.storage_path)
     limit claim_due_session_media.batch_size)
    union
    (select distinct (storage.foldername(o.name))[4]::uuid from storage.objects o
     where o.bucket_id = 'session-media'
       and o.name ~ '^u/[0-9a-f-]{36}/s/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/'
       and not exists (select 1 from public.session_media m where m.bucket_id = o.bucket_id and m.storage_path = o.name)
     limit claim_due_session_media.batch_size)
  loop
    perform private.sync_session_media(s, claim_due_session_media.at);
  end loop;
  return query
  (select m.id, m.bucket_id, m.storage_path, 'expired'::text
   from public.session_media m
   where m.status = 'stored' and m.expires_at is not null and m.expires_at <= claim_due_session_media.at
   order by m.expires_at, m.id
   limit claim_due_session_media.batch_size)
  union all
  (select m.id, m.bucket_id, m.storage_path, 'rejected'::text
   from public.session_media m
   where m.status = 'rejected'
     and exists (select 1 from storage.objects o where o.bucket_id = m.bucket_id and o.name = m.storage_path)
   limit claim_due_session_media.batch_size)
  union all
  (select null::uuid, o.bucket_id, o.name, 'orphan'::text
   from storage.objects o
   where o.bucket_id = 'session-media' and o.created_at + interval '1 hour' <= claim_due_session_media.at
     and not exists (select 1 from public.session_media m where m.bucket_id = o.bucket_id and m.storage_path = o.name)
   limit claim_due_session_media.batch_size);
end;
$$;
comment on function public.claim_due_session_media(timestamptz, integer) is
  'Service role, the retention job''s first step: brings sessions with overdue uploads, objects under ended rows or row-less objects in step, then returns objects to delete through the Storage API (up to batch_size, 1..1000, of each reason): expired (stored, expires_at passed at `at`), rejected (the object of a rejected row) and orphan (an hour-old object no row can follow).';
revoke execute on function public.claim_due_session_media(timestamptz, integer) from public, anon, authenticated;
grant execute on function public.claim_due_session_media(timestamptz, integer) to service_role;

create or replace function public.record_session_media_expiry(ids uuid[], at timestamptz default now())
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: for the service role only. A row is marked expired only when its object
-- is no longer in storage.objects, so a delete that failed leaves the row due for the next run.
declare
  n integer;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can record media expiry' using errcode = '42501';
  end if;
  update public.session_media m
     set status = 'expired', deleted_at = record_session_media_expiry.at
   where m.id = any (record_session_media_expiry.ids) and m.status = 'stored'
     and not exists (select 1 from storage.objects o where o.bucket_id = m.bucket_id and o.name = m.storage_path);
  get diagnostics n = row_count;
  return n;
end;
$$;
comment on function public.record_session_media_expiry(uuid[], timestamptz) is
  'Service role, the retention job''s last step: marks the given stored rows expired (deleted_at = at) when their objects are gone from storage.objects; returns how many. Rows whose object remains stay stored, due again.';
revoke execute on function public.record_session_media_expiry(uuid[], timestamptz) from public, anon, authenticated;
grant execute on function public.record_session_media_expiry(uuid[], timestamptz) to service_role;

-- ---------------------------------------------------------------------------------------
-- What the functions did with storage: for analysts and alerts.

create table private.storage_operations (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  operation text not null,
  ok boolean not null,
  duration_ms integer not null,
  bytes bigint,
  detail text,
  constraint storage_operations_operation_known
    check (operation in ('upload_url', 'complete', 'download_urls', 'retention_delete')),
  constraint storage_operations_duration_range check (duration_ms between 0 and 86400000),
  constraint storage_operations_bytes_range check (bytes is null or bytes >= 0),
  constraint storage_operations_detail_length check (detail is null or char_length(detail) <= 500)
);
alter table private.storage_operations enable row level security;
-- Nobody reads it directly: the analytics functions below do. The policy says so where the
-- linter can see it (the service role bypasses RLS anyway).
create policy "Storage operations are readable by the service role"
  on private.storage_operations for select to service_role
  using (true);
comment on table private.storage_operations is
  'One row per storage operation of the media and media-retention functions (upload_url, complete, download_urls, retention_delete): outcome, duration, bytes, a short detail on failure. Read by analysts through analytics.storage_window and analytics.storage_daily.';
-- The analytics windows (by time).
create index storage_operations_at_idx on private.storage_operations (at);

create or replace function public.record_storage_operation(
  operation text, ok boolean, duration_ms integer, bytes bigint default null, detail text default null
)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: the table is private; only the service role (the functions) records.
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can record storage operations' using errcode = '42501';
  end if;
  insert into private.storage_operations (operation, ok, duration_ms, bytes, detail)
  values (record_storage_operation.operation, record_storage_operation.ok,
          least(greatest(record_storage_operation.duration_ms, 0), 86400000),
          record_storage_operation.bytes, left(record_storage_operation.detail, 500));
end;
$$;
comment on function public.record_storage_operation(text, boolean, integer, bigint, text) is
  'Service role: records one storage operation of the media functions (operation upload_url | complete | download_urls | retention_delete, ok, duration_ms, bytes, detail cut to 500 characters).';
revoke execute on function public.record_storage_operation(text, boolean, integer, bigint, text) from public, anon, authenticated;
grant execute on function public.record_storage_operation(text, boolean, integer, bigint, text) to service_role;

create or replace function analytics.storage_window(minutes integer default 5, as_of timestamptz default null)
returns table (
  window_start timestamptz, window_end timestamptz, uploads integer, upload_bytes bigint,
  operations integer, failures integer, latency_p95 numeric
)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads session_media and the private operations log; returns aggregates only.
  with w as (
    select coalesce(storage_window.as_of, now()) - make_interval(mins => storage_window.minutes) as s,
           coalesce(storage_window.as_of, now()) as e
  )
  select w.s, w.e,
         (select count(*)::integer from public.session_media m where m.uploaded_at > w.s and m.uploaded_at <= w.e),
         (select coalesce(sum(m.bytes), 0)::bigint from public.session_media m where m.uploaded_at > w.s and m.uploaded_at <= w.e),
         (select count(*)::integer from private.storage_operations o where o.at > w.s and o.at <= w.e),
         (select count(*)::integer from private.storage_operations o where o.at > w.s and o.at <= w.e and not o.ok),
         (select round((percentile_cont(0.95) within group (order by o.duration_ms))::numeric, 1)
            from private.storage_operations o where o.at > w.s and o.at <= w.e)
  from w
$$;
comment on function analytics.storage_window(integer, timestamptz) is $$
Session media over the last `minutes` before `as_of` (default now): uploads and their bytes,
the media functions' storage operations, how many failed, and their p95 duration (ms); what
the storage alert watches. Example: select * from analytics.storage_window(5);
$$;
revoke execute on function analytics.storage_window(integer, timestamptz) from public, anon, authenticated;
grant execute on function analytics.storage_window(integer, timestamptz) to coach_analyst, service_role;

create or replace function analytics.storage_daily(from_day date, to_day date)
returns table (day date, uploads integer, upload_bytes bigint, operations integer, failures integer, expired integer)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: as storage_window.
  -- Days are UTC days whatever the session's time zone: [d, d + 1 day) in UTC.
  select g.day,
         (select count(*)::integer from public.session_media m where m.uploaded_at >= g.s and m.uploaded_at < g.e),
         (select coalesce(sum(m.bytes), 0)::bigint from public.session_media m where m.uploaded_at >= g.s and m.uploaded_at < g.e),
         (select count(*)::integer from private.storage_operations o where o.at >= g.s and o.at < g.e),
         (select count(*)::integer from private.storage_operations o where o.at >= g.s and o.at < g.e and not o.ok),
         (select count(*)::integer from public.session_media m
           where m.status = 'expired' and m.deleted_at >= g.s and m.deleted_at < g.e)
  from (
    select d::date as day, d at time zone 'UTC' as s, (d + interval '1 day') at time zone 'UTC' as e
    from generate_series(storage_daily.from_day::timestamp, storage_daily.to_day::timestamp, interval '1 day') d
    where storage_daily.to_day - storage_daily.from_day between 0 and 366
  ) g
$$;
comment on function analytics.storage_daily(date, date) is $$
Session media per UTC day from from_day to to_day (at most 367 days): uploads and their bytes,
the media functions' storage operations and failures, and audio expired by retention.
Example: select * from analytics.storage_daily('2026-11-01', '2026-11-30');
$$;
revoke execute on function analytics.storage_daily(date, date) from public, anon, authenticated;
grant execute on function analytics.storage_daily(date, date) to coach_analyst, service_role;

-- ---------------------------------------------------------------------------------------
-- The daily retention job and the rate limits.

create or replace function private.run_media_retention()
returns bigint
language sql
volatile
set search_path = ''
as $$
  select private.invoke_edge_function('media-retention', jsonb_build_object('source', 'pg_cron'))
$$;
comment on function private.run_media_retention() is
  'Invokes the media-retention function through pg_net; returns the pg_net request id (null when Vault holds no project URL or key). Run daily at 03:17 UTC by pg_cron.';
revoke execute on function private.run_media_retention() from public, anon, authenticated;

select cron.schedule('media-retention', '17 3 * * *', $$select private.run_media_retention()$$);

insert into private.rate_limit_policies (endpoint, role, quota, window_seconds) values
  ('media', 'authenticated', 300, 3600),
  ('media', 'service_role', 10000, 3600)
on conflict (endpoint, role) do nothing;
