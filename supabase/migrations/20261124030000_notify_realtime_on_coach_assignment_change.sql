-- Purpose: announce that realtime authorization inputs changed whenever coach assignments
-- are written, so a Realtime server that caches its read checks of private channels can
-- drop them. A statement-level trigger on public.coach_assignments (insert, update, delete,
-- truncate) sends pg_notify('realtime_local_authorization', 'public.coach_assignments'); the
-- local Realtime stand-in (local/gateway/realtime.ts) LISTENs on that channel and re-checks
-- a coach before the next delivery of a client's rows.
-- On hosted Supabase nobody LISTENs on this channel, so the notification is harmless: it is
-- queued at commit and discarded unread (one small queue entry per writing transaction;
-- assignments are written rarely, by admin tools). Hosted Realtime checks authorization at
-- join and on access_token refresh, not per delivery.
-- Objects: function private.trigger_notify_realtime_authorization; trigger
-- coach_assignments_notify_realtime on public.coach_assignments. Destructive: none.

create or replace function private.trigger_notify_realtime_authorization()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('realtime_local_authorization', tg_table_schema || '.' || tg_table_name);
  return null;
end;
$$;
comment on function private.trigger_notify_realtime_authorization() is
  'Trigger (per statement): notifies channel realtime_local_authorization that the table''s rows, which realtime read checks depend on, changed.';
revoke execute on function private.trigger_notify_realtime_authorization() from public, anon, authenticated, service_role;

create trigger coach_assignments_notify_realtime
  after insert or update or delete or truncate on public.coach_assignments
  for each statement execute function private.trigger_notify_realtime_authorization();
