-- Purpose: the session-media operations of issue 12 on top of 20261124140000: what the
-- media and media-retention edge functions call, and what keeps public.session_media in
-- step with storage.objects without triggers on storage's own tables (hosted Supabase does
-- not let projects alter the storage schema).
--  * session_media gains upload_expires_at (the end of a pending upload's signed URL, ten
--    minutes) and the status `abandoned` (an upload that never arrived in its window).
--  * public.start_session_media_upload(...): the owner of a session (or the service role for
--    it) records a pending upload: kind, MIME type and size checked against the bucket and
--    the kind, the key built on the server's clock (u/{userId}/s/{sessionId}/{ts}/{basename}).
--  * public.complete_session_media_upload(media_id, sha256): once the object is in storage,
--    marks the row stored with the object's own size, type and upload time, and the SHA-256
--    the function computed from its bytes.
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
-- Objects: columns and constraints of public.session_media; table private.storage_operations;
-- functions public.start_session_media_upload, public.complete_session_media_upload,
-- public.list_session_media, public.claim_due_session_media,
-- public.record_session_media_expiry, public.record_storage_operation,
-- private.sync_session_media, private.run_media_retention, analytics.storage_window,
-- analytics.storage_daily; rows of private.rate_limit_policies; pg_cron job media-retention.
-- Destructive: none (constraints widened to admit the new status).

alter table public.session_media
  add column upload_expires_at timestamptz;
comment on column public.session_media.upload_expires_at is
  'For an upload started through the media function: when its signed upload URL ends (ten minutes after it was issued).';

alter table public.session_media drop constraint session_media_status_known;
alter table public.session_media add constraint session_media_status_known
  check (status in ('pending', 'stored', 'expired', 'deleted', 'abandoned'));
alter table public.session_media drop constraint session_media_deleted_has_time;
alter table public.session_media add constraint session_media_deleted_has_time
  check ((status in ('expired', 'deleted', 'abandoned')) = (deleted_at is not null));
comment on table public.session_media is
  'One row per object of the session-media bucket: session, user, kind (audio | transcript), storage path (u/{userId}/s/{sessionId}/{ts}/{basename}), MIME type, bytes, duration, SHA-256, tracked skill hash (never the raw id), status (pending | stored | expired | deleted | abandoned), expires_at from media_retention_settings. Written by the service role and the media functions; read by its owner (a coach reads through the audited media function).';

-- Pending uploads whose window has passed (the retention job's sweep).
create index session_media_upload_expires_at_idx on public.session_media (upload_expires_at) where status = 'pending';

-- ---------------------------------------------------------------------------------------
-- Keeping rows in step with storage.objects.

create or replace function private.sync_session_media(session_id uuid, at timestamptz default now())
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: reads storage.objects and writes session_media whoever asks; callers
-- (the public functions below) have already checked that the caller may see the session.
-- Pending rows whose object arrived become stored (size, type and time from the object);
-- stored rows whose object is gone (removed through the Storage API) become deleted; pending
-- rows whose upload window has passed with no object become abandoned. Returns the rows
-- changed.
declare
  changed integer := 0;
  n integer;
begin
  update public.session_media m
     set status = 'stored', uploaded_at = o.created_at,
         bytes = coalesce((o.metadata ->> 'size')::bigint, m.bytes),
         mime_type = coalesce(o.metadata ->> 'mimetype', m.mime_type)
    from storage.objects o
   where m.session_id = sync_session_media.session_id and m.status = 'pending'
     and o.bucket_id = m.bucket_id and o.name = m.storage_path;
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
     and m.upload_expires_at <= sync_session_media.at;
  get diagnostics n = row_count;
  return changed + n;
end;
$$;
comment on function private.sync_session_media(uuid, timestamptz) is
  'Reconciles a session''s session_media rows with storage.objects at a time: pending rows whose object exists become stored, stored rows whose object is gone become deleted, pending rows past upload_expires_at become abandoned. Returns the rows changed.';
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
-- here: a signed-in user for their own session, or the service role for any session.
declare
  caller uuid := auth.uid();
  caller_role text := private.caller_role();
  owner_id uuid;
  b storage.buckets;
  mime text := lower(btrim(start_session_media_upload.mime_type));
  ts bigint := floor(extract(epoch from start_session_media_upload.at) * 1000)::bigint;
  inserted public.session_media;
begin
  if caller_role not in ('authenticated', 'service_role', 'postgres') or (caller_role = 'authenticated' and caller is null) then
    raise exception 'Only a signed-in user or the service role can upload session media' using errcode = '42501';
  end if;
  select s.user_id into owner_id from public.coaching_sessions s where s.id = start_session_media_upload.session_id;
  if owner_id is null or (caller_role = 'authenticated' and owner_id <> caller) then
    raise exception 'session_id does not name one of your coaching sessions'
      using errcode = '22023', constraint = 'start_session_media_upload_session';
  end if;
  if start_session_media_upload.kind is null or start_session_media_upload.kind not in ('audio', 'transcript') then
    raise exception 'kind must be audio or transcript' using errcode = '22023', constraint = 'start_session_media_upload_kind';
  end if;
  select * into b from storage.buckets where id = 'session-media';
  if mime is null
     or not (mime = any (b.allowed_mime_types))
     or (start_session_media_upload.kind = 'audio' and mime not like 'audio/%')
     or (start_session_media_upload.kind = 'transcript' and mime not in ('application/json', 'text/plain')) then
    raise exception 'content_type % is not allowed for %: use one of %', coalesce(mime, 'null'), start_session_media_upload.kind,
      array_to_string(array(select t from unnest(b.allowed_mime_types) t
                            where (start_session_media_upload.kind = 'audio') = (t like 'audio/%')), ', ')
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
            start_session_media_upload.tracked_skill_id_hash, start_session_media_upload.at,
            start_session_media_upload.at + interval '10 minutes')
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
  'Records a pending session-media upload for the media function: the caller''s own session (the service role: any), kind audio | transcript, a MIME type the bucket allows for that kind, 1..file_size_limit bytes, a basename (already sanitised; the path constraint checks it). The key is u/{userId}/s/{sessionId}/{ts}/{basename} with ts the milliseconds of at; upload_expires_at is at + 10 minutes. Errors name the field (22023 with constraint start_session_media_upload_*).';
revoke execute on function public.start_session_media_upload(uuid, text, text, text, bigint, integer, text, timestamptz) from public, anon;
grant execute on function public.start_session_media_upload(uuid, text, text, text, bigint, integer, text, timestamptz) to authenticated, service_role;

create or replace function public.complete_session_media_upload(media_id uuid, sha256 text, at timestamptz default now())
returns public.session_media
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: as start_session_media_upload (the caller's own row, or the service role).
declare
  caller uuid := auth.uid();
  caller_role text := private.caller_role();
  m public.session_media;
  o storage.objects;
begin
  if caller_role not in ('authenticated', 'service_role', 'postgres') or (caller_role = 'authenticated' and caller is null) then
    raise exception 'Only a signed-in user or the service role can complete an upload' using errcode = '42501';
  end if;
  select * into m from public.session_media sm where sm.id = complete_session_media_upload.media_id for update;
  if m.id is null or (caller_role = 'authenticated' and m.user_id <> caller) then
    raise exception 'media_id does not name one of your uploads'
      using errcode = '22023', constraint = 'complete_session_media_upload_media';
  end if;
  if complete_session_media_upload.sha256 is null or complete_session_media_upload.sha256 !~ '^[0-9a-f]{64}$' then
    raise exception 'sha256 must be 64 lowercase hex digits' using errcode = '22023', constraint = 'session_media_sha256_format';
  end if;
  if m.status not in ('pending', 'stored') then
    raise exception 'This upload is %: it cannot be completed', m.status using errcode = 'PT409';
  end if;
  select * into o from storage.objects so where so.bucket_id = m.bucket_id and so.name = m.storage_path;
  if o.id is null then
    raise exception 'The object has not been uploaded yet: PUT it to the signed upload URL first' using errcode = 'PT409';
  end if;
  update public.session_media sm
     set status = 'stored', uploaded_at = o.created_at, sha256 = complete_session_media_upload.sha256,
         bytes = coalesce((o.metadata ->> 'size')::bigint, sm.bytes),
         mime_type = coalesce(o.metadata ->> 'mimetype', sm.mime_type)
   where sm.id = m.id
  returning * into m;
  return m;
end;
$$;
comment on function public.complete_session_media_upload(uuid, text, timestamptz) is
  'Marks the caller''s upload (the service role: any) stored once its object is in storage.objects, with the object''s size, type and creation time and the SHA-256 of its bytes (computed by the media function). 409 (PT409) while the object is missing or when the row is expired, deleted or abandoned; completing again updates the hash.';
revoke execute on function public.complete_session_media_upload(uuid, text, timestamptz) from public, anon;
grant execute on function public.complete_session_media_upload(uuid, text, timestamptz) to authenticated, service_role;

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
  perform private.sync_session_media(list_session_media.session_id, list_session_media.at);
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
  'A session''s media rows (newest first, at most 500) for its owner, the owner''s assigned coach (the read is recorded in audit.phi_access_log) or the service role, after reconciling them with storage.objects at a time (private.sync_session_media). Another session: 22023 naming session_id.';
revoke execute on function public.list_session_media(uuid, timestamptz) from public, anon;
grant execute on function public.list_session_media(uuid, timestamptz) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- Retention.

create or replace function public.claim_due_session_media(at timestamptz default now(), batch_size integer default 100)
returns table (id uuid, bucket_id text, storage_path text, kind text, expires_at timestamptz)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: the retention job's first step, for the service role only. Pending
-- uploads past their window are reconciled first (arrived: stored; else abandoned), then the
-- stored objects whose privacy window has passed are returned for deletion through the
-- Storage API; record_session_media_expiry marks them once they are gone.
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
    select distinct m.session_id from public.session_media m
    where m.status = 'pending' and m.upload_expires_at <= claim_due_session_media.at
    limit claim_due_session_media.batch_size
  loop
    perform private.sync_session_media(s, claim_due_session_media.at);
  end loop;
  return query
  select m.id, m.bucket_id, m.storage_path, m.kind, m.expires_at
  from public.session_media m
  where m.status = 'stored' and m.expires_at is not null and m.expires_at <= claim_due_session_media.at
  order by m.expires_at, m.id
  limit claim_due_session_media.batch_size;
end;
$$;
comment on function public.claim_due_session_media(timestamptz, integer) is
  'Service role, the retention job''s first step: reconciles pending uploads past their window (stored if the object arrived, else abandoned), then returns up to batch_size (1..1000) stored objects whose expires_at has passed at `at`, oldest first, to delete through the Storage API.';
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
  select d::date,
         (select count(*)::integer from public.session_media m
           where m.uploaded_at >= d and m.uploaded_at < d + interval '1 day'),
         (select coalesce(sum(m.bytes), 0)::bigint from public.session_media m
           where m.uploaded_at >= d and m.uploaded_at < d + interval '1 day'),
         (select count(*)::integer from private.storage_operations o where o.at >= d and o.at < d + interval '1 day'),
         (select count(*)::integer from private.storage_operations o where o.at >= d and o.at < d + interval '1 day' and not o.ok),
         (select count(*)::integer from public.session_media m
           where m.status = 'expired' and m.deleted_at >= d and m.deleted_at < d + interval '1 day')
  from generate_series(storage_daily.from_day::timestamp, storage_daily.to_day::timestamp, interval '1 day') d
  where storage_daily.to_day - storage_daily.from_day between 0 and 366
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
