-- Purpose: private.sync_session_media as the review of issue 12 left it, for databases that
-- applied 20261124150000 as it landed. Arrivals (pending or abandoned rows whose object is
-- there) and replacements (an object whose eTag changed under a stored, deleted, expired or
-- rejected row) are one UPDATE that asks private.media_object_fits once per row; the landed
-- version ran two UPDATEs and called it four times a row. What it writes is the same (a
-- replaced stored object keeps its expires_at and takes the object's updated_at as its
-- uploaded_at, as the landed second UPDATE did).
-- Objects: function private.sync_session_media(uuid, timestamptz) replaced (its comment and
-- grants stay).

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
