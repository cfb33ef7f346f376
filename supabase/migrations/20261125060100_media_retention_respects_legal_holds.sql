-- Purpose: session media's retention respects legal holds (issue 16). The media-retention
-- function deletes, through the Storage API, the objects public.claim_due_session_media
-- returns: expired recordings, rejected uploads, orphans. None of them is returned any more
-- while a legal hold covers its user or its session (private.legal_hold_applies), for
-- orphans by the user and session in their key. Once the hold is released, the next run
-- returns them as before.
-- Objects: function public.claim_due_session_media (body). Destructive: none.

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
-- hour old that no row can follow (orphan, no id). Nothing a legal hold covers is returned.
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
     and not private.legal_hold_applies(m.user_id, m.session_id)
   order by m.expires_at, m.id
   limit claim_due_session_media.batch_size)
  union all
  (select m.id, m.bucket_id, m.storage_path, 'rejected'::text
   from public.session_media m
   where m.status = 'rejected'
     and exists (select 1 from storage.objects o where o.bucket_id = m.bucket_id and o.name = m.storage_path)
     and not private.legal_hold_applies(m.user_id, m.session_id)
   limit claim_due_session_media.batch_size)
  union all
  (select null::uuid, o.bucket_id, o.name, 'orphan'::text
   from storage.objects o
   where o.bucket_id = 'session-media' and o.created_at + interval '1 hour' <= claim_due_session_media.at
     and not exists (select 1 from public.session_media m where m.bucket_id = o.bucket_id and m.storage_path = o.name)
     -- An orphan under a held user's or session's key (u/{user}/s/{session}/...) stays too.
     and not coalesce(case
           when o.name ~ '^u/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/s/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/'
           then private.legal_hold_applies((storage.foldername(o.name))[2]::uuid, (storage.foldername(o.name))[4]::uuid)
         end, false)
   limit claim_due_session_media.batch_size);
end;
$$;
comment on function public.claim_due_session_media(timestamptz, integer) is
  'Service role, the retention job''s first step: brings sessions with overdue uploads, objects under ended rows or row-less objects in step, then returns objects to delete through the Storage API (up to batch_size, 1..1000, of each reason): expired (stored, expires_at passed at `at`), rejected (the object of a rejected row) and orphan (an hour-old object no row can follow); never what a legal hold covers (the user, or the session, by row or by key).';
revoke execute on function public.claim_due_session_media(timestamptz, integer) from public, anon, authenticated;
grant execute on function public.claim_due_session_media(timestamptz, integer) to service_role;

