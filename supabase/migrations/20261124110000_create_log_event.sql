-- Purpose: the event log's idempotent write path and its missing access path (issue 10;
-- seed SPR-003: "Events persisted with requestId, userId, sessionId, groupId", indexes by
-- sessionId, groupId, createdAt).
--  * public.log_event: the write path of the `events` function. Who may write is
--    log_interaction_event's rule plus coach_ingest tokens (an AI backend logs the events
--    of its sessions); idempotent per (user, actor scope, request_id) as
--    log_coach_interaction is: a replay returns the original event (replayed = true), the
--    same key with another payload fails with PT422, a key still in flight with PT409.
--    Every event it writes has a request_id (generated when omitted).
--  * public.log_interaction_event keeps its behaviour (no idempotency; callers that relied
--    on a repeated request_id making two rows still get two).
--  * interaction_events gets a (group_id, created_at) index: a group's events were a scan.
--    session_id has its index (20261124010200) and created_at its BRIN and (user_id,
--    created_at) indexes; supabase/tests/09_query_plans proves each path.
-- Objects: index interaction_events_group_id_created_at_idx; table private.event_requests;
-- type public.logged_event; function public.log_event; constraint
-- interaction_events_actor_role_known (admits coach_ingest); rate limit policies of
-- endpoint "events". Destructive: none.

create index interaction_events_group_id_created_at_idx
  on public.interaction_events (group_id, created_at desc) where group_id is not null;

-- Events now record ingest tokens as their actor, as interactions do.
alter table public.interaction_events drop constraint interaction_events_actor_role_known;
alter table public.interaction_events add constraint interaction_events_actor_role_known
  check (actor_role in ('authenticated', 'service_role', 'coach_ingest', 'postgres'));

create table private.event_requests (
  user_id uuid not null references public.profiles (id) on delete cascade,
  actor_scope text not null,
  request_id text not null,
  event_id uuid not null,
  payload_hash text not null,
  created_at timestamptz not null default now(),
  primary key (user_id, actor_scope, request_id)
);
-- Only log_event (security definer) reads and writes it.
revoke all on private.event_requests from public, anon, authenticated, service_role;
comment on table private.event_requests is
  'Idempotency keys of public.log_event: (user, actor scope, request_id) -> the event and the hash of its normalised payload.';

create type public.logged_event as (
  event public.interaction_events,
  replayed boolean
);
comment on type public.logged_event is
  'What log_event returns: the stored event and whether this call was a replay.';

create or replace function public.log_event(
  kind text,
  request_id text default null,
  user_id uuid default null,
  interaction_id uuid default null,
  session_id uuid default null,
  group_id uuid default null,
  category text default null,
  score smallint default null,
  payload jsonb default '{}'::jsonb,
  tracked_skill_id_hash text default null,
  created_at timestamptz default null
)
returns public.logged_event
language plpgsql
volatile
security definer
set search_path = ''
-- The payload hash writes created_at through jsonb in the session's time zone: fixed, so a
-- retry over a connection in another zone is still a replay (as 20261124040300 did for
-- log_coach_interaction).
set timezone to 'UTC'
as $$
-- Security definer: API roles have no INSERT on interaction_events and coach_ingest has no
-- privileges at all; this function is the write path and checks its caller first.
declare
  caller_role text := private.caller_role();
  caller uuid := auth.uid();
  scope text := private.idempotency_scope();
  target uuid;
  key text := coalesce(log_event.request_id, gen_random_uuid()::text);
  payload_hash text;
  problem text;
  existing private.event_requests;
  stored public.interaction_events;
begin
  if caller_role = 'authenticated' then
    if caller is null then
      raise exception 'Only a signed-in user can log events' using errcode = '42501';
    end if;
    if log_event.created_at is not null then
      raise exception 'Only the service role or an ingest token can set created_at' using errcode = '42501';
    end if;
    target := coalesce(log_event.user_id, caller);
    if target <> caller then
      raise exception 'Only the user, the service role or an ingest token can log events for this user' using errcode = '42501';
    end if;
  elsif caller_role in ('service_role', 'coach_ingest', 'postgres') then
    target := log_event.user_id;
    if target is null then
      raise exception 'user_id is required for service and ingest callers' using errcode = '22023',
        constraint = 'interaction_events_user_id_fkey';
    end if;
  else
    raise exception 'Role % cannot log events', caller_role using errcode = '42501';
  end if;

  if key !~ '^[A-Za-z0-9._:-]{1,128}$' then
    raise exception 'request_id must be 1 to 128 letters, digits or . _ : -' using errcode = '22023',
      constraint = 'interaction_events_request_id_format';
  end if;
  if not exists (select 1 from public.profiles p where p.id = target) then
    raise exception 'user_id does not name a user' using errcode = '23503', constraint = 'interaction_events_user_id_fkey';
  end if;
  if log_event.interaction_id is not null and not exists (
    select 1 from public.coach_interactions i where i.id = log_event.interaction_id and i.user_id = target
  ) then
    raise exception 'interaction_id does not name an interaction of this user' using errcode = '23503',
      constraint = 'interaction_events_interaction_id_fkey';
  end if;
  if log_event.session_id is not null and not exists (
    select 1 from public.coaching_sessions s where s.id = log_event.session_id and s.user_id = target
  ) then
    raise exception 'session_id does not name a coaching session of this user' using errcode = '23503',
      constraint = 'interaction_events_session_id_fkey';
  end if;
  problem := private.json_bound_violation('event_payload', log_event.payload);
  if problem is not null then
    raise exception 'payload %', problem using errcode = '23514', constraint = 'interaction_events_payload_bounded';
  end if;
  -- The table's own rules, checked here: a constraint's error carries the whole failing row
  -- in its DETAIL (the payload, and a raw id passed by mistake as the hash).
  if log_event.kind is null or log_event.kind not in ('delivered', 'read', 'rating', 'feedback', 'error', 'session_state') then
    raise exception 'kind must be one of delivered, read, rating, feedback, error, session_state' using errcode = '22023',
      constraint = 'interaction_events_kind_known';
  end if;
  if (log_event.kind = 'rating') <> (log_event.score is not null) then
    raise exception 'score is required exactly when kind is rating' using errcode = '22023', constraint = 'interaction_events_rating_has_score';
  end if;
  if log_event.score not between 1 and 5 then
    raise exception 'score must be between 1 and 5' using errcode = '22023', constraint = 'interaction_events_score_range';
  end if;
  if log_event.category is not null and (char_length(log_event.category) not between 1 and 100 or log_event.category ~ '[[:cntrl:]]') then
    raise exception 'category must be 1 to 100 characters without control characters' using errcode = '22023',
      constraint = 'interaction_events_category_length';
  end if;
  if log_event.payload is not null and jsonb_typeof(log_event.payload) <> 'object' then
    raise exception 'payload must be a JSON object' using errcode = '22023', constraint = 'interaction_events_payload_object';
  end if;
  if log_event.tracked_skill_id_hash is not null and log_event.tracked_skill_id_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'tracked_skill_id_hash must be 64 lowercase hex digits (the keyed hash, never a raw id)' using errcode = '22023',
      constraint = 'interaction_events_tracked_skill_id_hash_format';
  end if;

  -- The hash covers the normalised request (defaults filled in) except the key.
  payload_hash := encode(extensions.digest(jsonb_build_array(
    target, log_event.kind, log_event.interaction_id, log_event.session_id, log_event.group_id, log_event.category,
    log_event.score, coalesce(log_event.payload, '{}'::jsonb), log_event.tracked_skill_id_hash, log_event.created_at,
    'event-v1')::text, 'sha256'), 'hex');

  if not pg_try_advisory_xact_lock(hashtextextended(target::text || '/' || scope || '/event/' || key, 7)) then
    raise exception 'A request with this request_id is still being processed' using errcode = 'PT409',
      hint = 'Retry after it completes; the retry returns its result.';
  end if;

  select * into existing from private.event_requests r
  where r.user_id = target and r.actor_scope = scope and r.request_id = key;
  if found then
    if existing.payload_hash <> payload_hash then
      raise exception 'request_id was already used with a different payload' using errcode = 'PT422',
        hint = 'Use a new request_id for a new event.';
    end if;
    select * into stored from public.interaction_events e where e.id = existing.event_id;
    return row(stored, true)::public.logged_event;
  end if;

  insert into public.interaction_events (
    interaction_id, user_id, session_id, group_id, request_id, kind, category, score, payload,
    tracked_skill_id_hash, created_at, actor_id, actor_role)
  values (
    log_event.interaction_id, target, log_event.session_id, log_event.group_id, key, log_event.kind,
    log_event.category, log_event.score, coalesce(log_event.payload, '{}'::jsonb), log_event.tracked_skill_id_hash,
    coalesce(log_event.created_at, now()), caller, caller_role)
  returning * into stored;

  insert into private.event_requests (user_id, actor_scope, request_id, event_id, payload_hash)
  values (target, scope, key, stored.id, payload_hash);

  return row(stored, false)::public.logged_event;
end;
$$;
comment on function public.log_event(text, text, uuid, uuid, uuid, uuid, text, smallint, jsonb, text, timestamptz) is $$
Logs one event and returns {event, replayed}: kind (delivered, read, rating, feedback, error, session_state), optionally
about one of the user's interactions or coaching sessions (23503 when the id is not one of the user's) and a group
(group_id: the caller's opaque grouping key, e.g. a set of sessions scored together); a rating carries score 1..5;
payload is bounded. A signed-in user logs their own events; the service role and coach_ingest tokens name user_id and
may backdate created_at. request_id is the idempotency key (generated when omitted), scoped like
log_coach_interaction's: a replay returns the original event with replayed = true, another payload under the same key
fails with PT422, a key still in flight with PT409. Invalid values fail with 22023 naming the constraint (e.g.
interaction_events_score_range), ids that are not the user's with 23503. The events function (POST /functions/v1/events)
calls it.
Example: select * from public.log_event(kind => 'rating', score => 5::smallint, session_id => '…', request_id => 'r-1');
$$;
revoke execute on function public.log_event(text, text, uuid, uuid, uuid, uuid, text, smallint, jsonb, text, timestamptz)
  from public, anon;
grant execute on function public.log_event(text, text, uuid, uuid, uuid, uuid, text, smallint, jsonb, text, timestamptz)
  to authenticated, service_role, coach_ingest;

-- The events function's POST takes from a limit of its own, sized like log-interaction's: a
-- client reports an event every few seconds at most, an AI backend's token for everyone.
insert into private.rate_limit_policies (endpoint, role, quota, window_seconds) values
  ('events', 'authenticated', 120, 60),
  ('events', 'coach_ingest', 120000, 60),
  ('events', 'service_role', 120000, 60)
on conflict (endpoint, role) do nothing;
