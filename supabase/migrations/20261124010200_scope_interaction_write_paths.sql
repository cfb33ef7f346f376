-- Purpose: close cross-user attachment and make erasure the only way rows leave the
-- append-only tables; normalise idempotency.
--  * A session_id on an interaction or an event must name a coaching session of the same
--    user, with one error for "not yours" and "does not exist" (the FK's own error said
--    which ids exist). interaction_events.session_id gets the foreign key interactions have.
--  * The append-only guard used to let any DELETE through when it arrived inside another
--    trigger, so deleting Alice's session as the service role cascaded into Bob's rows that
--    referenced it. Now a DELETE passes only for rows of a user whose erasure this very
--    transaction registered (private.user_erasures), which deleting the auth.users row does
--    (Supabase Auth's admin deleteUser, or a DELETE as postgres). Nothing else removes
--    interactions or events.
--  * JSON bounds (private.json_bound_violation) are checked up front with an error that
--    says which bound and which field, as the CHECK constraints would.
--  * Idempotency compares the normalised payload (defaults filled in), so the same logical
--    request through the function and through the RPC is a replay, not a 422; keys are
--    scoped by actor (the signed-in user, or 'service' for the service role and ingest
--    tokens), so a coach's key and the client's own key no longer collide. Keys stored
--    before this migration still replay with their original (raw) hash.
-- Objects: table private.user_erasures; function private.trigger_register_erasure and its
-- trigger on auth.users; functions private.trigger_refuse_change, private.idempotency_scope,
-- public.log_coach_interaction, public.log_interaction_event (bodies); column
-- private.interaction_requests.actor_scope and its primary key; constraint
-- interaction_events_session_id_fkey. Destructive: the primary key of
-- private.interaction_requests becomes (user_id, actor_scope, request_id); existing keys get
-- the scope of the actor that wrote their interaction.

-- Erasure ------------------------------------------------------------------------------

create table private.user_erasures (
  user_id uuid not null,
  xact_id xid8 not null default pg_current_xact_id(),
  erased_at timestamptz not null default now(),
  primary key (user_id, xact_id)
);
revoke all on private.user_erasures from public, anon, authenticated, service_role;
comment on table private.user_erasures is
  'Users erased (their auth.users row deleted), with the transaction that did it: the append-only guard lets that transaction delete their rows, and nothing else.';

create or replace function private.trigger_register_erasure()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: runs as whoever deletes the user (supabase_auth_admin on Supabase),
  -- which has no rights in private.
  insert into private.user_erasures (user_id) values (old.id) on conflict do nothing;
  return old;
end;
$$;
comment on function private.trigger_register_erasure() is
  'Trigger on auth.users: records the erasure of the deleted user for this transaction, so the cascade may remove their append-only rows.';
revoke execute on function private.trigger_register_erasure() from public, anon, authenticated;

create trigger on_auth_user_deleted_register_erasure
  before delete on auth.users
  for each row execute function private.trigger_register_erasure();

create or replace function private.trigger_refuse_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- The one delete allowed: the rows of a user whose erasure this transaction registered
  -- (the cascade from deleting their auth.users row). Tables without a user_id (the audit
  -- log) never qualify.
  if tg_op = 'DELETE' and exists (
    select 1 from private.user_erasures e
    where e.user_id = (to_jsonb(old) ->> 'user_id')::uuid and e.xact_id = pg_current_xact_id()
  ) then
    return old;
  end if;
  raise exception '% is append-only: rows cannot be updated or deleted', tg_table_schema || '.' || tg_table_name
    using errcode = '42501',
          hint = 'Rows leave only when their user is erased (their auth.users row deleted).';
end;
$$;
comment on function private.trigger_refuse_change() is
  'Trigger function for append-only tables: refuses UPDATE, TRUNCATE and DELETE, except the deletion of an erased user''s rows in the transaction that erased them.';

-- Events get the foreign key interactions have (NOT VALID: rows logged before it stay).
alter table public.interaction_events
  add constraint interaction_events_session_id_fkey foreign key (session_id)
  references public.coaching_sessions (id) on delete cascade not valid;
create index interaction_events_session_id_idx on public.interaction_events (session_id) where session_id is not null;

-- Idempotency scope ----------------------------------------------------------------------

-- The key space of the caller: a signed-in user's own id, or 'service' for the service role,
-- coach_ingest tokens and postgres (one backend, retried through any of its credentials).
create or replace function private.idempotency_scope()
returns text
language sql
stable
set search_path = ''
as $$
  select case when private.caller_role() = 'authenticated' then coalesce((select auth.uid())::text, 'anonymous') else 'service' end
$$;
comment on function private.idempotency_scope() is
  'The idempotency key space of the caller: their user id when signed in, else ''service'' (service role, ingest tokens, postgres).';
grant execute on function private.idempotency_scope() to authenticated, service_role;

alter table private.interaction_requests add column actor_scope text;
update private.interaction_requests r
   set actor_scope = case when i.actor_role = 'authenticated' and i.actor_id is not null then i.actor_id::text else 'service' end
  from public.coach_interactions i
 where i.id = r.interaction_id;
update private.interaction_requests set actor_scope = 'service' where actor_scope is null;
alter table private.interaction_requests alter column actor_scope set not null;
alter table private.interaction_requests drop constraint interaction_requests_pkey;
alter table private.interaction_requests add primary key (user_id, actor_scope, request_id);
comment on column private.interaction_requests.actor_scope is
  'Whose key space the key is in: the signed-in user who logged it, or ''service''.';

-- The write paths -----------------------------------------------------------------------

create or replace function public.log_coach_interaction(
  sender text,
  content jsonb,
  request_id text default null,
  user_id uuid default null,
  channel text default 'chat',
  session_id uuid default null,
  conversation_id uuid default null,
  coach_persona text default null,
  metadata jsonb default '{}'::jsonb,
  model text default null,
  latency_ms integer default null,
  prompt_tokens integer default null,
  completion_tokens integer default null,
  cached_tokens integer default null,
  cost_usd numeric default null,
  sentiment real default null,
  momentum_state text default null,
  status text default 'ok',
  error_code text default null,
  tracked_skill_id_hash text default null,
  created_at timestamptz default null
)
returns public.logged_interaction
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: API roles have no INSERT on coach_interactions and coach_ingest has no
-- privileges at all; this function is the write path and checks its caller first.
declare
  caller_role text := private.caller_role();
  caller uuid := auth.uid();
  scope text := private.idempotency_scope();
  target uuid;
  key text := coalesce(log_coach_interaction.request_id, gen_random_uuid()::text);
  at timestamptz := coalesce(log_coach_interaction.created_at, now());
  payload_hash text;
  legacy_hash text;
  problem text;
  existing private.interaction_requests;
  computed_cost numeric;
  stored public.coach_interactions;
begin
  -- Who may write what.
  if caller_role = 'authenticated' then
    if caller is null then
      raise exception 'Only a signed-in user can log interactions' using errcode = '42501';
    end if;
    if log_coach_interaction.created_at is not null then
      raise exception 'Only the service role can set created_at' using errcode = '42501';
    end if;
    target := coalesce(log_coach_interaction.user_id, caller);
    if target = caller then
      if log_coach_interaction.sender <> 'user' then
        raise exception 'A user can only log messages with sender user' using errcode = '42501';
      end if;
    elsif private.is_assigned_coach(target) then
      if log_coach_interaction.sender <> 'human_coach' then
        raise exception 'An assigned coach can only log messages with sender human_coach' using errcode = '42501';
      end if;
    else
      raise exception 'Only the user, their assigned coach or the service role can log interactions for this user'
        using errcode = '42501';
    end if;
  elsif caller_role in ('service_role', 'coach_ingest', 'postgres') then
    target := log_coach_interaction.user_id;
    if target is null then
      raise exception 'user_id is required for service and ingest callers' using errcode = '22023';
    end if;
  else
    raise exception 'Role % cannot log interactions', caller_role using errcode = '42501';
  end if;

  if not exists (select 1 from public.profiles p where p.id = target) then
    raise exception 'user_id does not name a user' using errcode = '23503';
  end if;
  -- One answer whether the session does not exist or belongs to someone else.
  if log_coach_interaction.session_id is not null and not exists (
    select 1 from public.coaching_sessions s where s.id = log_coach_interaction.session_id and s.user_id = target
  ) then
    raise exception 'session_id does not name a coaching session of this user' using errcode = '23503',
      constraint = 'coach_interactions_session_id_fkey';
  end if;
  problem := private.json_bound_violation('interaction_content', log_coach_interaction.content);
  if problem is not null then
    raise exception 'content %', problem using errcode = '23514', constraint = 'coach_interactions_content_bounded';
  end if;
  problem := private.json_bound_violation('interaction_metadata', log_coach_interaction.metadata);
  if problem is not null then
    raise exception 'metadata %', problem using errcode = '23514', constraint = 'coach_interactions_metadata_bounded';
  end if;

  -- Idempotency. The hash covers the normalised request (defaults filled in) except the key.
  payload_hash := encode(extensions.digest(jsonb_build_array(
    target, log_coach_interaction.sender, log_coach_interaction.content, coalesce(log_coach_interaction.channel, 'chat'),
    log_coach_interaction.session_id, log_coach_interaction.conversation_id, log_coach_interaction.coach_persona,
    coalesce(log_coach_interaction.metadata, '{}'::jsonb), log_coach_interaction.model, log_coach_interaction.latency_ms,
    log_coach_interaction.prompt_tokens, log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens,
    trim_scale(log_coach_interaction.cost_usd), log_coach_interaction.sentiment, log_coach_interaction.momentum_state,
    coalesce(log_coach_interaction.status, 'ok'), log_coach_interaction.error_code, log_coach_interaction.tracked_skill_id_hash,
    log_coach_interaction.created_at, 'v2')::text, 'sha256'), 'hex');

  -- Another transaction holding this key's lock is the same request still in flight.
  if not pg_try_advisory_xact_lock(hashtextextended(target::text || '/' || scope || '/' || key, 7)) then
    raise exception 'A request with this request_id is still being processed' using errcode = 'PT409',
      hint = 'Retry after it completes; the retry returns its result.';
  end if;

  select * into existing from private.interaction_requests r
  where r.user_id = target and r.actor_scope = scope and r.request_id = key;
  if found then
    if existing.payload_hash <> payload_hash then
      -- Keys stored before normalisation hold the hash of the raw arguments.
      legacy_hash := encode(extensions.digest(jsonb_build_array(
        target, log_coach_interaction.sender, log_coach_interaction.content, log_coach_interaction.channel,
        log_coach_interaction.session_id, log_coach_interaction.conversation_id, log_coach_interaction.coach_persona,
        log_coach_interaction.metadata, log_coach_interaction.model, log_coach_interaction.latency_ms,
        log_coach_interaction.prompt_tokens, log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens,
        log_coach_interaction.cost_usd, log_coach_interaction.sentiment, log_coach_interaction.momentum_state,
        log_coach_interaction.status, log_coach_interaction.error_code, log_coach_interaction.tracked_skill_id_hash,
        log_coach_interaction.created_at)::text, 'sha256'), 'hex');
      if existing.payload_hash <> legacy_hash then
        raise exception 'request_id was already used with a different payload' using errcode = 'PT422',
          hint = 'Use a new request_id for a new interaction.';
      end if;
    end if;
    select * into stored from public.coach_interactions i where i.id = existing.interaction_id;
    return row(stored, true)::public.logged_interaction;
  end if;

  computed_cost := private.interaction_cost(
    log_coach_interaction.model, at, log_coach_interaction.prompt_tokens,
    log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens);

  insert into public.coach_interactions (
    user_id, session_id, conversation_id, request_id, sender, channel, coach_persona, content, metadata,
    model, latency_ms, prompt_tokens, completion_tokens, cached_tokens, cost_usd, sentiment, momentum_state,
    status, error_code, tracked_skill_id_hash, created_at, actor_id, actor_role)
  values (
    target, log_coach_interaction.session_id, log_coach_interaction.conversation_id, key,
    log_coach_interaction.sender, coalesce(log_coach_interaction.channel, 'chat'), log_coach_interaction.coach_persona,
    log_coach_interaction.content, coalesce(log_coach_interaction.metadata, '{}'::jsonb),
    log_coach_interaction.model, log_coach_interaction.latency_ms, log_coach_interaction.prompt_tokens,
    log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens,
    coalesce(computed_cost, log_coach_interaction.cost_usd), log_coach_interaction.sentiment,
    log_coach_interaction.momentum_state, coalesce(log_coach_interaction.status, 'ok'), log_coach_interaction.error_code,
    log_coach_interaction.tracked_skill_id_hash, at, caller, caller_role)
  returning * into stored;

  insert into private.interaction_requests (user_id, actor_scope, request_id, interaction_id, payload_hash)
  values (target, scope, key, stored.id, payload_hash);

  return row(stored, false)::public.logged_interaction;
end;
$$;
comment on function public.log_coach_interaction(text, jsonb, text, uuid, text, uuid, uuid, text, jsonb, text, integer,
  integer, integer, integer, numeric, real, text, text, text, text, timestamptz) is $$
Logs one coach interaction and returns {interaction, replayed}.
Callers: a user (their own rows, sender 'user'), their assigned coach (sender 'human_coach', user_id = the client),
the service role and coach_ingest tokens (any user_id and sender; may set created_at for backfills).
request_id is the idempotency key (generated when omitted), scoped by actor: a signed-in caller's keys are their
own, the service role's and ingest tokens' are shared. Replaying a key with the same request (defaults filled in)
returns the original row with replayed = true; with another payload fails with PT422; while the first call is still
in flight with PT409. session_id must name a coaching session of the same user (23503 otherwise, the same error
whether it does not exist or is someone else's). content and metadata are bounded (private.json_bound_violation:
depth, keys, string length, size; 23514 naming the bound). cost_usd is computed from model_prices and model tokens;
the given cost_usd is kept only when no price matches the model. Invalid values fail with 23514 naming the
constraint (e.g. coach_interactions_sentiment_range).
Example: select * from public.log_coach_interaction(sender => 'user', content => '{"text": "Hi"}', request_id => 'r-1');
  -- supabase.rpc('log_coach_interaction', { sender: 'user', content: { text: 'Hi' }, request_id: 'r-1' })
$$;

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
  problem text;
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
  if log_interaction_event.session_id is not null and not exists (
    select 1 from public.coaching_sessions s where s.id = log_interaction_event.session_id and s.user_id = target
  ) then
    raise exception 'session_id does not name a coaching session of this user' using errcode = '23503',
      constraint = 'interaction_events_session_id_fkey';
  end if;
  problem := private.json_bound_violation('event_payload', log_interaction_event.payload);
  if problem is not null then
    raise exception 'payload %', problem using errcode = '23514', constraint = 'interaction_events_payload_bounded';
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
the user's interactions or coaching sessions (23503 when the id is not one of the user's, the same error
whether it does not exist or is someone else's) and a group (group_id is the caller's own opaque grouping
key: nothing is looked up by it across users); a rating carries score 1..5; payload is bounded
(private.json_bound_violation). A signed-in user logs their own events (user_id omitted or their own); the
service role names user_id and may backdate created_at (backfills). Returns the event.
Example: select public.log_interaction_event(kind => 'rating', interaction_id => '…', score => 5::smallint);
  -- supabase.rpc('log_interaction_event', { kind: 'rating', interaction_id, score: 5 })
$$;
