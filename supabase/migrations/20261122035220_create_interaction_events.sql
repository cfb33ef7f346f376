-- Purpose: the one event log (seed: Auth & Data sprint; Interaction Log): delivery, read
-- receipts, ratings 1..5, feedback, errors and session state changes, with request,
-- session and group ids and the hashed tracked-skill id. Append-only. Users log events
-- about their own interactions; the service role logs any.
-- Objects: table public.interaction_events; function public.log_interaction_event.
-- Destructive: none.

create table public.interaction_events (
  id uuid primary key default gen_random_uuid(),
  interaction_id uuid,
  user_id uuid not null references public.profiles (id) on delete cascade,
  session_id uuid,
  group_id uuid,
  request_id text,
  kind text not null,
  category text,
  score smallint,
  payload jsonb not null default '{}'::jsonb,
  tracked_skill_id_hash text,
  created_at timestamptz not null default now(),
  actor_id uuid,
  actor_role text not null,
  constraint interaction_events_kind_known check (
    kind in ('delivered', 'read', 'rating', 'feedback', 'error', 'session_state')),
  constraint interaction_events_score_range check (score is null or score between 1 and 5),
  constraint interaction_events_rating_has_score check ((kind = 'rating') = (score is not null)),
  constraint interaction_events_category_length check (category is null or char_length(category) between 1 and 100),
  constraint interaction_events_request_id_format check (request_id is null or request_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  constraint interaction_events_payload_object check (jsonb_typeof(payload) = 'object'),
  constraint interaction_events_tracked_skill_id_hash_format check (
    tracked_skill_id_hash is null or tracked_skill_id_hash ~ '^[0-9a-f]{64}$'),
  constraint interaction_events_actor_role_known check (actor_role in ('authenticated', 'service_role', 'postgres'))
);
alter table public.interaction_events enable row level security;
comment on table public.interaction_events is
  'Append-only event log: delivered, read, rating (score 1..5), feedback, error, session_state; about an interaction, a session or a group.';

create index interaction_events_user_id_created_at_idx on public.interaction_events (user_id, created_at desc);
create index interaction_events_created_at_brin on public.interaction_events using brin (created_at) with (pages_per_range = 32);

create trigger interaction_events_refuse_update_delete
  before update or delete on public.interaction_events
  for each row execute function private.trigger_refuse_change();
create trigger interaction_events_refuse_truncate
  before truncate on public.interaction_events
  for each statement execute function private.trigger_refuse_change();

grant select on public.interaction_events to authenticated, service_role;

create policy "Interaction events are viewable by their owner"
  on public.interaction_events for select to authenticated
  using ((select auth.uid()) = user_id);

create or replace function public.log_interaction_event(
  kind text,
  interaction_id uuid default null,
  user_id uuid default null,
  session_id uuid default null,
  group_id uuid default null,
  request_id text default null,
  category text default null,
  score smallint default null,
  payload jsonb default '{}'::jsonb,
  tracked_skill_id_hash text default null,
  created_at timestamptz default null
)
returns public.interaction_events
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: the event table has no INSERT grant for API roles; this function is
-- the write path and checks its caller first.
declare
  caller_role text := private.caller_role();
  caller uuid := auth.uid();
  target uuid;
  result public.interaction_events;
begin
  if caller_role = 'authenticated' then
    if caller is null then
      raise exception 'Only a signed-in user can log events' using errcode = '42501';
    end if;
    if log_interaction_event.created_at is not null then
      raise exception 'Only the service role can set created_at' using errcode = '42501';
    end if;
    target := coalesce(log_interaction_event.user_id, caller);
    if target <> caller then
      raise exception 'Only the user or the service role can log events for this user' using errcode = '42501';
    end if;
  elsif caller_role in ('service_role', 'postgres') then
    target := log_interaction_event.user_id;
    if target is null then
      raise exception 'user_id is required for service callers' using errcode = '22023';
    end if;
  else
    raise exception 'Role % cannot log events', caller_role using errcode = '42501';
  end if;

  if log_interaction_event.interaction_id is not null and not exists (
    select 1 from public.coach_interactions i
    where i.id = log_interaction_event.interaction_id and i.user_id = target
  ) then
    raise exception 'interaction_id does not name an interaction of this user' using errcode = '23503';
  end if;

  insert into public.interaction_events (
    interaction_id, user_id, session_id, group_id, request_id, kind, category, score, payload,
    tracked_skill_id_hash, created_at, actor_id, actor_role)
  values (
    log_interaction_event.interaction_id, target, log_interaction_event.session_id, log_interaction_event.group_id,
    log_interaction_event.request_id, log_interaction_event.kind, log_interaction_event.category,
    log_interaction_event.score, coalesce(log_interaction_event.payload, '{}'::jsonb),
    log_interaction_event.tracked_skill_id_hash, coalesce(log_interaction_event.created_at, now()), caller, caller_role)
  returning * into result;
  return result;
end;
$$;
comment on function public.log_interaction_event(text, uuid, uuid, uuid, uuid, text, text, smallint, jsonb, text, timestamptz) is $$
Logs an event: kind (delivered, read, rating, feedback, error, session_state), optionally about one of
the user's interactions, a session or a group; a rating carries score 1..5. A signed-in user logs
their own events (user_id omitted or their own); the service role names user_id and may backdate
created_at (backfills). Returns the event.
Example: select public.log_interaction_event(kind => 'rating', interaction_id => '…', score => 5::smallint);
  -- supabase.rpc('log_interaction_event', { kind: 'rating', interaction_id, score: 5 })
$$;
grant execute on function public.log_interaction_event(text, uuid, uuid, uuid, uuid, text, text, smallint, jsonb, text, timestamptz)
  to authenticated, service_role;
