-- Purpose: session media in Supabase Storage (issue 12; seed 004 "Audio/Object Storage" and
-- "Session Transcript Storage"): the schema and the rules, deployable as they are.
--  * Bucket `session-media`: private, 100 MB per object, audio (wav, mpeg, mp4/m4a, webm,
--    ogg) and transcripts (json, plain text) only.
--  * Object keys follow the seed's convention u/{userId}/s/{sessionId}/{ts}/{basename}.
--    Policies on storage.objects (through storage.foldername): a user inserts, reads,
--    renames and deletes only under u/<their id>/s/<a session they own>/<ts>/...; the
--    assigned coach reads their clients' objects; nobody else (anon, ingest, analysts, other
--    users) sees or writes any. The service role bypasses RLS (the functions).
--  * public.session_media: one row per object (session, user, kind audio | transcript, path,
--    MIME type, bytes, duration, SHA-256, tracked skill hash, status, expires_at from the
--    retention window). Written by the service role (the media function); its owner reads
--    it; a coach reads it through the media function, which audits the read.
--  * public.media_retention_settings: the privacy window per kind (audio 30 days, transcripts
--    kept), read by everyone signed in, changed by the service role; expires_at is set from
--    it when a row is written.
-- Objects: a row of storage.buckets; policies on storage.objects; tables
-- public.session_media, public.media_retention_settings, their indexes, triggers, grants and
-- policies; functions private.session_media_owner, private.can_read_session_media,
-- private.trigger_set_media_expiry. Destructive: none.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('session-media', 'session-media', false, 104857600, array[
  'audio/wav', 'audio/x-wav', 'audio/wave', 'audio/mpeg', 'audio/mp4', 'audio/x-m4a', 'audio/webm', 'audio/ogg',
  'application/json', 'text/plain'])
on conflict (id) do update set public = excluded.public, file_size_limit = excluded.file_size_limit,
  allowed_mime_types = excluded.allowed_mime_types;

-- The owner of a well-formed session-media path: the folders of
-- u/{userId}/s/{sessionId}/{ts}/{basename} (storage.foldername) when the session exists and
-- belongs to that user; null for anything else.
create or replace function private.session_media_owner(folders text[])
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads the session whoever asks (a coach's read, the owner's write);
  -- it returns only the owner of a path that names its own session, which the path says.
  select s.user_id
  from public.coaching_sessions s
  where cardinality(session_media_owner.folders) = 5
    and session_media_owner.folders[1] = 'u' and session_media_owner.folders[3] = 's'
    and session_media_owner.folders[2] ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    and session_media_owner.folders[4] ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    and session_media_owner.folders[5] ~ '^[0-9]{1,16}$'
    and s.id = session_media_owner.folders[4]::uuid
    and s.user_id = session_media_owner.folders[2]::uuid
$$;
comment on function private.session_media_owner(text[]) is
  'The owner of a session-media path given as its folders (storage.foldername(name)): u/{userId}/s/{sessionId}/{ts}, when that session exists and is that user''s; null otherwise. Used by the storage.objects policies.';
revoke execute on function private.session_media_owner(text[]) from public, anon;
grant execute on function private.session_media_owner(text[]) to authenticated, service_role;

create or replace function private.can_read_session_media(folders text[])
returns boolean
language sql
stable
set search_path = ''
as $$
  -- The owner, or the owner's assigned coach (private.is_assigned_coach).
  select coalesce((select o = (select auth.uid()) or private.is_assigned_coach(o)
                   from private.session_media_owner(can_read_session_media.folders) o), false)
$$;
comment on function private.can_read_session_media(text[]) is
  'True when the caller owns the session-media path (as folders) or is the owner''s assigned coach.';
revoke execute on function private.can_read_session_media(text[]) from public, anon;
grant execute on function private.can_read_session_media(text[]) to authenticated, service_role;

create policy "Session media: owners add under their own sessions"
  on storage.objects for insert to authenticated
  with check (bucket_id = 'session-media'
              and private.session_media_owner(storage.foldername(name)) = (select auth.uid()));
create policy "Session media: owners and their coaches read"
  on storage.objects for select to authenticated
  using (bucket_id = 'session-media' and private.can_read_session_media(storage.foldername(name)));
create policy "Session media: owners rename within their own sessions"
  on storage.objects for update to authenticated
  using (bucket_id = 'session-media'
         and private.session_media_owner(storage.foldername(name)) = (select auth.uid()))
  with check (bucket_id = 'session-media'
              and private.session_media_owner(storage.foldername(name)) = (select auth.uid()));
create policy "Session media: owners delete their own"
  on storage.objects for delete to authenticated
  using (bucket_id = 'session-media'
         and private.session_media_owner(storage.foldername(name)) = (select auth.uid()));

create table public.media_retention_settings (
  kind text primary key,
  retain_days integer,
  updated_at timestamptz not null default now(),
  constraint media_retention_settings_kind_known check (kind in ('audio', 'transcript')),
  constraint media_retention_settings_retain_days_range check (retain_days is null or retain_days between 1 and 3650)
);
alter table public.media_retention_settings enable row level security;
comment on table public.media_retention_settings is
  'The privacy window of session media per kind: retain_days after upload (null: kept). Audio 30 days, transcripts kept. Changed by the service role.';
insert into public.media_retention_settings (kind, retain_days) values ('audio', 30), ('transcript', null)
on conflict (kind) do nothing;
create trigger media_retention_settings_set_updated_at
  before update on public.media_retention_settings
  for each row execute function private.trigger_set_updated_at();
grant select on public.media_retention_settings to authenticated;
grant select, update on public.media_retention_settings to service_role;
create policy "Media retention settings are readable when signed in"
  on public.media_retention_settings for select to authenticated, service_role
  using (true);
create policy "Media retention settings are changed by the service role"
  on public.media_retention_settings for update to service_role
  using (true) with check (true);

create table public.session_media (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.coaching_sessions (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  kind text not null,
  bucket_id text not null default 'session-media',
  storage_path text not null,
  mime_type text not null,
  bytes bigint not null,
  duration_ms integer,
  sha256 text,
  tracked_skill_id_hash text,
  status text not null default 'pending',
  created_at timestamptz not null default now(),
  uploaded_at timestamptz,
  expires_at timestamptz,
  deleted_at timestamptz,
  constraint session_media_bucket_path_key unique (bucket_id, storage_path),
  constraint session_media_kind_known check (kind in ('audio', 'transcript')),
  constraint session_media_status_known check (status in ('pending', 'stored', 'expired', 'deleted')),
  constraint session_media_path_format check (
    storage_path ~ '^u/[0-9a-f-]{36}/s/[0-9a-f-]{36}/[0-9]{1,16}/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'
    and storage_path like 'u/' || user_id::text || '/s/' || session_id::text || '/%'),
  constraint session_media_mime_type_length check (char_length(mime_type) between 3 and 100),
  constraint session_media_bytes_range check (bytes between 1 and 104857600),
  constraint session_media_duration_range check (duration_ms is null or duration_ms between 0 and 86400000),
  constraint session_media_sha256_format check (sha256 is null or sha256 ~ '^[0-9a-f]{64}$'),
  constraint session_media_tracked_skill_id_hash_format check (tracked_skill_id_hash is null or tracked_skill_id_hash ~ '^[0-9a-f]{64}$'),
  constraint session_media_deleted_has_time check ((status in ('expired', 'deleted')) = (deleted_at is not null))
);
alter table public.session_media enable row level security;
comment on table public.session_media is
  'One row per object of the session-media bucket: session, user, kind (audio | transcript), storage path (u/{userId}/s/{sessionId}/{ts}/{basename}), MIME type, bytes, duration, SHA-256, tracked skill hash (never the raw id), status (pending | stored | expired | deleted), expires_at from media_retention_settings. Written by the service role; read by its owner (a coach reads through the audited media function).';

-- A session's media, newest first (the media function's list).
create index session_media_session_id_created_at_idx on public.session_media (session_id, created_at);
-- The foreign key to profiles (a user's media; erasure).
create index session_media_user_id_idx on public.session_media (user_id);
-- The retention job: stored objects whose window has passed.
create index session_media_expires_at_idx on public.session_media (expires_at) where status = 'stored' and expires_at is not null;

create or replace function private.trigger_set_media_expiry()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
-- Security definer: reads media_retention_settings whoever writes.
begin
  new.expires_at := new.created_at + make_interval(days => (
    select r.retain_days from public.media_retention_settings r where r.kind = new.kind));
  return new;
end;
$$;
comment on function private.trigger_set_media_expiry() is
  'Trigger on session_media (before insert): expires_at = created_at + the kind''s retain_days (null when the kind is kept).';
revoke execute on function private.trigger_set_media_expiry() from public, anon, authenticated;
create trigger session_media_set_expiry
  before insert on public.session_media
  for each row execute function private.trigger_set_media_expiry();

grant select on public.session_media to authenticated;
grant select, insert, update on public.session_media to service_role;
create policy "Session media rows are readable by their owner"
  on public.session_media for select to authenticated
  using (user_id = (select auth.uid()));
create policy "Session media rows are readable by the service role"
  on public.session_media for select to service_role
  using (true);
create policy "Session media rows are written by the service role"
  on public.session_media for insert to service_role
  with check (true);
create policy "Session media rows are updated by the service role"
  on public.session_media for update to service_role
  using (true) with check (true);
