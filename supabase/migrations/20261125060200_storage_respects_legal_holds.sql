-- Purpose: a held person cannot delete or rename their own recordings (issue 16, from the
-- second reading): the storage policies let an owner delete and rename the session-media
-- objects under their own sessions, which under a legal hold would destroy what the hold
-- keeps. Both policies now also require that no active hold covers the object's user or
-- session (by its key, u/{user}/s/{session}/...). Uploads stay allowed.
-- Objects: function private.session_media_key_held(text[]); policies "Session media: owners
-- delete their own" and "Session media: owners rename within their own sessions" on
-- storage.objects (replaced). Destructive: none.

create or replace function private.session_media_key_held(folders text[])
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Security definer: the policies ask it as the signed-in owner, who may not read
-- legal_holds; it answers only whether a hold covers the key's user or session.
begin
  if cardinality(session_media_key_held.folders) < 4
     or session_media_key_held.folders[2] !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
     or session_media_key_held.folders[4] !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return false;
  end if;
  return private.legal_hold_applies(session_media_key_held.folders[2]::uuid, session_media_key_held.folders[4]::uuid);
end;
$$;
comment on function private.session_media_key_held(text[]) is
  'Whether an active legal hold covers the user or the session a session-media key names (its folders, storage.foldername(name): u/{userId}/s/{sessionId}/...). Used by the storage.objects policies.';
revoke execute on function private.session_media_key_held(text[]) from public, anon;
grant execute on function private.session_media_key_held(text[]) to authenticated, service_role;

drop policy "Session media: owners delete their own" on storage.objects;
create policy "Session media: owners delete their own"
  on storage.objects for delete to authenticated
  using (bucket_id = 'session-media'
         and private.session_media_owner(storage.foldername(name)) = (select auth.uid())
         and not private.session_media_key_held(storage.foldername(name)));

drop policy "Session media: owners rename within their own sessions" on storage.objects;
create policy "Session media: owners rename within their own sessions"
  on storage.objects for update to authenticated
  using (bucket_id = 'session-media'
         and private.session_media_owner(storage.foldername(name)) = (select auth.uid())
         and not private.session_media_key_held(storage.foldername(name)))
  with check (bucket_id = 'session-media'
              and private.session_media_owner(storage.foldername(name)) = (select auth.uid())
              and storage.filename(name) ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$');
