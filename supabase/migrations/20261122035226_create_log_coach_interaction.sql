-- Purpose: the single write path of the interaction log. Checks the caller, validates,
-- resolves cost from model_prices, stores, and returns the stored row. Idempotent per
-- (user, request_id): a replay returns the original row (replayed = true) without a
-- second insert, also under concurrent retries; a replay still in flight is refused
-- (PT409); the same key with another payload is refused (PT422).
-- Objects: type public.logged_interaction; functions public.log_coach_interaction,
-- private.interaction_cost. Destructive: none.

create type public.logged_interaction as (
  interaction public.coach_interactions,
  replayed boolean
);
comment on type public.logged_interaction is
  'What log_coach_interaction returns: the stored interaction and whether this call was a replay.';

-- Cost in USD of a call from the price effective at `at`; null when no price is known.
create or replace function private.interaction_cost(
  model text, at timestamptz, prompt_tokens integer, completion_tokens integer, cached_tokens integer
)
returns numeric
language sql
stable
set search_path = ''
as $$
  select round((
      (coalesce(interaction_cost.prompt_tokens, 0) - coalesce(interaction_cost.cached_tokens, 0)) * p.input_usd_per_mtok
    + coalesce(interaction_cost.cached_tokens, 0) * coalesce(p.cached_input_usd_per_mtok, p.input_usd_per_mtok)
    + coalesce(interaction_cost.completion_tokens, 0) * p.output_usd_per_mtok
  ) / 1000000.0, 8)
  from private.resolve_model_price(interaction_cost.model, interaction_cost.at) p
$$;
comment on function private.interaction_cost(text, timestamptz, integer, integer, integer) is
  'USD cost of an LLM call: uncached input, cached input and output tokens at the price effective at `at`; null when no price matches.';
revoke execute on function private.interaction_cost(text, timestamptz, integer, integer, integer) from public, anon;

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
  target uuid;
  key text := coalesce(log_coach_interaction.request_id, gen_random_uuid()::text);
  at timestamptz := coalesce(log_coach_interaction.created_at, now());
  payload_hash text;
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

  -- Idempotency. The hash covers everything the caller sent except the key itself.
  payload_hash := encode(extensions.digest(jsonb_build_array(
    target, log_coach_interaction.sender, log_coach_interaction.content, log_coach_interaction.channel,
    log_coach_interaction.session_id, log_coach_interaction.conversation_id, log_coach_interaction.coach_persona,
    log_coach_interaction.metadata, log_coach_interaction.model, log_coach_interaction.latency_ms,
    log_coach_interaction.prompt_tokens, log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens,
    log_coach_interaction.cost_usd, log_coach_interaction.sentiment, log_coach_interaction.momentum_state,
    log_coach_interaction.status, log_coach_interaction.error_code, log_coach_interaction.tracked_skill_id_hash,
    log_coach_interaction.created_at)::text, 'sha256'), 'hex');

  -- Another transaction holding this key's lock is the same request still in flight.
  if not pg_try_advisory_xact_lock(hashtextextended(target::text || '/' || key, 7)) then
    raise exception 'A request with this request_id is still being processed' using errcode = 'PT409',
      hint = 'Retry after it completes; the retry returns its result.';
  end if;

  select * into existing from private.interaction_requests r
  where r.user_id = target and r.request_id = key;
  if found then
    if existing.payload_hash <> payload_hash then
      raise exception 'request_id was already used with a different payload' using errcode = 'PT422',
        hint = 'Use a new request_id for a new interaction.';
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

  insert into private.interaction_requests (user_id, request_id, interaction_id, payload_hash)
  values (target, key, stored.id, payload_hash);

  return row(stored, false)::public.logged_interaction;
end;
$$;
comment on function public.log_coach_interaction(text, jsonb, text, uuid, text, uuid, uuid, text, jsonb, text, integer,
  integer, integer, integer, numeric, real, text, text, text, text, timestamptz) is $$
Logs one coach interaction and returns {interaction, replayed}.
Callers: a user (their own rows, sender 'user'), their assigned coach (sender 'human_coach', user_id = the client),
the service role and coach_ingest tokens (any user_id and sender; may set created_at for backfills).
request_id is the idempotency key (generated when omitted): replaying it with the same payload returns the
original row with replayed = true; with another payload fails with PT422; while the first call is still in
flight with PT409. cost_usd is computed from model_prices and model tokens; the given cost_usd is kept only
when no price matches the model. Invalid values fail with 23514 naming the constraint (e.g.
coach_interactions_sentiment_range).
Example: select * from public.log_coach_interaction(sender => 'user', content => '{"text": "Hi"}', request_id => 'r-1');
  -- supabase.rpc('log_coach_interaction', { sender: 'user', content: { text: 'Hi' }, request_id: 'r-1' })
$$;
grant execute on function public.log_coach_interaction(text, jsonb, text, uuid, text, uuid, uuid, text, jsonb, text,
  integer, integer, integer, integer, numeric, real, text, text, text, text, timestamptz)
  to authenticated, service_role, coach_ingest;

-- coach_ingest reaches the function through PostgREST and the functions' connection.
grant usage on schema public to coach_ingest;
