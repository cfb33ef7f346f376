-- Purpose: privacy operations, part 1 of issue 16: the audit log of privacy operations and
-- legal holds. A legal hold is a service-role switch per user, or per session, that
-- suspends retention and erasure for what it covers; placing and releasing one is audited.
-- While a hold applies to a user, deleting their auth.users row (Supabase Auth's admin
-- deleteUser, or a DELETE as postgres) is refused, so nothing erases them.
-- Objects: table audit.privacy_log (append-only); table public.legal_holds; functions
-- private.log_privacy_operation, private.legal_hold_applies, public.place_legal_hold,
-- public.release_legal_hold, private.trigger_register_erasure (body of 20261124040100, and it refuses a held user),
-- private.trigger_refuse_profile_delete_under_hold and private.trigger_refuse_session_delete_under_hold
-- and their triggers on profiles and coaching_sessions.
-- Destructive: none.

-- The audit log of privacy operations -------------------------------------------------

create table audit.privacy_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor_id uuid,
  actor_role text not null,
  operation text not null,
  subject_user_id uuid,
  session_id uuid,
  reason text,
  details jsonb not null default '{}'::jsonb,
  constraint privacy_log_operation_known check (operation in (
    'legal_hold_placed', 'legal_hold_released', 'retention_policy_set', 'retention_applied', 'data_exported')),
  constraint privacy_log_reason_length check (reason is null or char_length(reason) between 1 and 1000),
  constraint privacy_log_details_object check (jsonb_typeof(details) = 'object')
);
alter table audit.privacy_log enable row level security;
comment on table audit.privacy_log is
  'Every privacy operation: legal holds placed and released, retention policies set, retention applied (what, how many, up to when), data exported (for whom, by whom). Append-only; besides the subject''s user id it keeps the reasons given (free text), and an erasure leaves it in place.';
create index privacy_log_subject_user_id_at_idx on audit.privacy_log (subject_user_id, at) where subject_user_id is not null;

create trigger privacy_log_refuse_update_delete
  before update or delete on audit.privacy_log
  for each row execute function private.trigger_refuse_change();
create trigger privacy_log_refuse_truncate
  before truncate on audit.privacy_log
  for each statement execute function private.trigger_refuse_change();

revoke all on audit.privacy_log from public, anon, authenticated, service_role;
grant select on audit.privacy_log to service_role;
create policy "The privacy log is readable by the service role"
  on audit.privacy_log for select to service_role
  using (true);

create or replace function private.log_privacy_operation(
  operation text,
  subject_user_id uuid,
  session_id uuid,
  reason text,
  details jsonb default '{}'::jsonb
)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: the privacy operations' functions call it for whoever runs them; no API
-- role may execute it (revoked below), so nobody writes the log directly.
declare
  new_id bigint;
begin
  insert into audit.privacy_log (actor_id, actor_role, operation, subject_user_id, session_id, reason, details)
  values (auth.uid(), private.caller_role(), log_privacy_operation.operation, log_privacy_operation.subject_user_id,
          log_privacy_operation.session_id, log_privacy_operation.reason, coalesce(log_privacy_operation.details, '{}'::jsonb))
  returning id into new_id;
  return new_id;
end;
$$;
comment on function private.log_privacy_operation(text, uuid, uuid, text, jsonb) is
  'Internal: appends a row to audit.privacy_log for the caller (auth.uid() and role). Called by the privacy operations only.';
revoke execute on function private.log_privacy_operation(text, uuid, uuid, text, jsonb) from public, anon, authenticated, service_role;

-- Legal holds -------------------------------------------------------------------------

create table public.legal_holds (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  session_id uuid references public.coaching_sessions (id) on delete cascade,
  reason text not null,
  placed_at timestamptz not null default now(),
  placed_by uuid,
  placed_by_role text not null,
  released_at timestamptz,
  released_by uuid,
  released_by_role text,
  release_reason text,
  constraint legal_holds_reason_length check (char_length(reason) between 1 and 1000),
  constraint legal_holds_release_reason_length check (release_reason is null or char_length(release_reason) between 1 and 1000),
  constraint legal_holds_release_complete check (
    (released_at is null and released_by_role is null and release_reason is null)
    or (released_at is not null and released_by_role is not null and release_reason is not null))
);
alter table public.legal_holds enable row level security;
comment on table public.legal_holds is
  'Legal holds: while a hold is active (released_at null) on a user (session_id null) or on one of their sessions, retention and erasure leave what it covers untouched. Placed and released by the service role through place_legal_hold and release_legal_hold, each audited in audit.privacy_log.';
-- Several holds may apply at once (one per matter); each is released on its own.
create index legal_holds_active_idx on public.legal_holds (user_id, session_id) where released_at is null;
create index legal_holds_session_id_idx on public.legal_holds (session_id) where session_id is not null;

revoke all on public.legal_holds from public, anon, authenticated, service_role;
grant select on public.legal_holds to service_role;
create policy "Legal holds are readable by the service role"
  on public.legal_holds for select to service_role
  using (true);

create or replace function private.legal_hold_applies(user_id uuid, session_id uuid default null)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Security definer: retention and the append-only guard ask it for any caller; it reads
-- only whether a hold exists. Not executable by API roles.
begin
  return exists (
    select 1 from public.legal_holds h
    where h.user_id = legal_hold_applies.user_id and h.released_at is null
      and (h.session_id is null or h.session_id = legal_hold_applies.session_id));
end;
$$;
comment on function private.legal_hold_applies(uuid, uuid) is
  'Internal: whether an active legal hold covers this user''s data, or (given a session) that session''s data: a user-wide hold, or a hold on the session.';
revoke execute on function private.legal_hold_applies(uuid, uuid) from public, anon, authenticated, service_role;

create or replace function public.place_legal_hold(user_id uuid, reason text, session_id uuid default null)
returns public.legal_holds
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: no API role may write legal_holds; this checks its caller first.
declare
  hold public.legal_holds;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can place a legal hold' using errcode = '42501';
  end if;
  if place_legal_hold.reason is null or char_length(trim(place_legal_hold.reason)) = 0 or char_length(place_legal_hold.reason) > 1000 then
    raise exception 'reason is required: 1 to 1000 characters' using errcode = '22023', constraint = 'legal_holds_reason_length';
  end if;
  if not exists (select 1 from public.profiles p where p.id = place_legal_hold.user_id) then
    raise exception 'user_id does not name a user' using errcode = '23503', constraint = 'legal_holds_user_id_fkey';
  end if;
  if place_legal_hold.session_id is not null and not exists (
    select 1 from public.coaching_sessions s where s.id = place_legal_hold.session_id and s.user_id = place_legal_hold.user_id) then
    raise exception 'session_id does not name a coaching session of this user' using errcode = '23503',
      constraint = 'legal_holds_session_id_fkey';
  end if;
  -- Waits for retention under way to commit (its batches hold the shared form of this lock):
  -- once the hold is placed, no retention already running strips what it covers.
  perform pg_advisory_xact_lock(hashtextextended('legal-hold', 0));
  insert into public.legal_holds (user_id, session_id, reason, placed_by, placed_by_role)
  values (place_legal_hold.user_id, place_legal_hold.session_id, place_legal_hold.reason, auth.uid(), private.caller_role())
  returning * into hold;
  perform private.log_privacy_operation('legal_hold_placed', hold.user_id, hold.session_id, hold.reason,
                                        jsonb_build_object('hold_id', hold.id));
  return hold;
end;
$$;
comment on function public.place_legal_hold(uuid, text, uuid) is
  'Service role: places a legal hold on a user (session_id null) or on one of their coaching sessions, with a reason (1 to 1000 characters), suspending retention and erasure of what it covers. Returns the hold. Several holds may apply at once (one per matter), each released on its own. Audited in audit.privacy_log.';
revoke execute on function public.place_legal_hold(uuid, text, uuid) from public, anon, authenticated;
grant execute on function public.place_legal_hold(uuid, text, uuid) to service_role;

create or replace function public.release_legal_hold(hold_id uuid, reason text)
returns public.legal_holds
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: no API role may write legal_holds; this checks its caller first.
declare
  hold public.legal_holds;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can release a legal hold' using errcode = '42501';
  end if;
  if release_legal_hold.reason is null or char_length(trim(release_legal_hold.reason)) = 0 or char_length(release_legal_hold.reason) > 1000 then
    raise exception 'reason is required: 1 to 1000 characters' using errcode = '22023',
      constraint = 'legal_holds_release_reason_length';
  end if;
  update public.legal_holds h
  set released_at = now(), released_by = auth.uid(), released_by_role = private.caller_role(),
      release_reason = release_legal_hold.reason
  where h.id = release_legal_hold.hold_id and h.released_at is null
  returning * into hold;
  if hold.id is null then
    if exists (select 1 from public.legal_holds h where h.id = release_legal_hold.hold_id) then
      raise exception 'This legal hold was already released' using errcode = 'PT409';
    end if;
    raise exception 'hold_id does not name a legal hold' using errcode = 'PT404';
  end if;
  perform private.log_privacy_operation('legal_hold_released', hold.user_id, hold.session_id, hold.release_reason,
                                        jsonb_build_object('hold_id', hold.id, 'placed_at', hold.placed_at));
  return hold;
end;
$$;
comment on function public.release_legal_hold(uuid, text) is
  'Service role: releases an active legal hold with a reason (1 to 1000 characters); retention and erasure apply again to what it covered. PT404 for an unknown hold, PT409 when already released. Audited in audit.privacy_log.';
revoke execute on function public.release_legal_hold(uuid, text) from public, anon, authenticated;
grant execute on function public.release_legal_hold(uuid, text) to service_role;

-- Erasure refuses a held user ---------------------------------------------------------

create or replace function private.trigger_register_erasure()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: runs as whoever deletes the user (supabase_auth_admin on Supabase),
  -- which has no rights in private or on legal_holds.
  -- The profile row is locked first: a hold being placed (its insert holds a key-share lock
  -- on the profile) commits before this check reads the holds, so it cannot be lost to the
  -- cascade.
  perform 1 from public.profiles p where p.id = old.id for update;
  if exists (select 1 from public.legal_holds h where h.user_id = old.id and h.released_at is null) then
    raise exception 'User % is under a legal hold: erasure is suspended until it is released', old.id
      using errcode = '55000', hint = 'Release the hold with public.release_legal_hold first.';
  end if;
  insert into private.user_erasures (user_id) values (old.id) on conflict do nothing;
  insert into private.erased_sessions (session_id)
  select s.id from public.coaching_sessions s where s.user_id = old.id
  on conflict do nothing;
  return old;
end;
$$;
comment on function private.trigger_register_erasure() is
  'Trigger on auth.users: refuses to delete a user under an active legal hold (any hold on them or one of their sessions); otherwise records the erasure of the user and of their coaching sessions for this transaction, so the cascade may remove their append-only rows and clear others'' references to their sessions.';

-- A held user's profile, or a held session, cannot be deleted outside erasure (which the
-- hold refuses anyway): its hold would otherwise go with it, unrecorded.
create or replace function private.trigger_refuse_profile_delete_under_hold()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: runs as whoever deletes (the service role has no rights on
  -- legal_holds); it only reads whether a hold applies.
  if exists (select 1 from public.legal_holds h where h.user_id = old.id and h.released_at is null) then
    raise exception 'Profile % is under a legal hold: it cannot be deleted until the hold is released', old.id
      using errcode = '55000';
  end if;
  return old;
end;
$$;
comment on function private.trigger_refuse_profile_delete_under_hold() is
  'Trigger on profiles: refuses to delete the profile of a user under an active legal hold (on them or one of their sessions).';
revoke execute on function private.trigger_refuse_profile_delete_under_hold() from public, anon, authenticated;

create or replace function private.trigger_refuse_session_delete_under_hold()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: as above.
  if private.legal_hold_applies(old.user_id, old.id) then
    raise exception 'Coaching session % is under a legal hold: it cannot be deleted until the hold is released', old.id
      using errcode = '55000';
  end if;
  return old;
end;
$$;
comment on function private.trigger_refuse_session_delete_under_hold() is
  'Trigger on coaching_sessions: refuses to delete a session an active legal hold covers (a hold on it, or on its user).';
revoke execute on function private.trigger_refuse_session_delete_under_hold() from public, anon, authenticated;

create trigger profiles_refuse_delete_under_hold
  before delete on public.profiles
  for each row execute function private.trigger_refuse_profile_delete_under_hold();
create trigger coaching_sessions_refuse_delete_under_hold
  before delete on public.coaching_sessions
  for each row execute function private.trigger_refuse_session_delete_under_hold();
