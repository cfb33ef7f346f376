-- Purpose: the append-only log of every AI and human coach interaction (seed: Coaching
-- Interaction Log, M2.3.1). One row per message or AI call: who, channel, persona,
-- content, model, latency, tokens, cost, sentiment, momentum, status, hashed tracked-skill
-- id and HIPAA audit fields. Idempotency keys live in private.interaction_requests, keyed
-- by (user_id, request_id) and independent of this table's layout, so the table can later
-- be partitioned by month without losing them. Writes go through
-- public.log_coach_interaction only; nobody updates or deletes a row.
-- Objects: tables public.coach_interactions, private.interaction_requests; function
-- private.trigger_refuse_change. Destructive: none.

create table public.coach_interactions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  session_id uuid,
  conversation_id uuid,
  request_id text not null,
  sender text not null,
  channel text not null default 'chat',
  coach_persona text,
  content jsonb not null,
  metadata jsonb not null default '{}'::jsonb,
  model text,
  latency_ms integer,
  prompt_tokens integer,
  completion_tokens integer,
  cached_tokens integer,
  cost_usd numeric(14, 8),
  sentiment real,
  momentum_state text,
  status text not null default 'ok',
  error_code text,
  tracked_skill_id_hash text,
  created_at timestamptz not null default now(),
  actor_id uuid,
  actor_role text not null,
  constraint coach_interactions_sender_known check (sender in ('user', 'ai_coach', 'human_coach', 'system')),
  constraint coach_interactions_channel_known check (channel in ('chat', 'jitai', 'voice', 'email', 'dashboard', 'api')),
  constraint coach_interactions_status_known check (status in ('ok', 'error')),
  constraint coach_interactions_error_code_with_error check (
    (status = 'ok' and error_code is null) or (status = 'error' and error_code is not null)),
  constraint coach_interactions_error_code_format check (error_code is null or error_code ~ '^[A-Za-z0-9_.:-]{1,64}$'),
  constraint coach_interactions_request_id_format check (request_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  constraint coach_interactions_content_has_text check (
    jsonb_typeof(content) = 'object' and content ? 'text' and jsonb_typeof(content -> 'text') = 'string'),
  constraint coach_interactions_metadata_object check (jsonb_typeof(metadata) = 'object'),
  constraint coach_interactions_persona_length check (coach_persona is null or char_length(coach_persona) between 1 and 100),
  constraint coach_interactions_model_length check (model is null or char_length(model) between 1 and 200),
  constraint coach_interactions_latency_nonnegative check (latency_ms is null or latency_ms >= 0),
  constraint coach_interactions_tokens_nonnegative check (
    coalesce(prompt_tokens, 0) >= 0 and coalesce(completion_tokens, 0) >= 0 and coalesce(cached_tokens, 0) >= 0),
  constraint coach_interactions_cached_within_prompt check (
    cached_tokens is null or (prompt_tokens is not null and cached_tokens <= prompt_tokens)),
  constraint coach_interactions_cost_nonnegative check (cost_usd is null or cost_usd >= 0),
  constraint coach_interactions_sentiment_range check (sentiment is null or sentiment between -1 and 1),
  constraint coach_interactions_momentum_state_format check (momentum_state is null or momentum_state ~ '^[a-z][a-z0-9_]{0,39}$'),
  constraint coach_interactions_tracked_skill_id_hash_format check (
    tracked_skill_id_hash is null or tracked_skill_id_hash ~ '^[0-9a-f]{64}$'),
  constraint coach_interactions_actor_role_known check (actor_role in ('authenticated', 'service_role', 'coach_ingest', 'postgres'))
);
alter table public.coach_interactions enable row level security;

comment on table public.coach_interactions is
  'Append-only log of AI and human coach interactions. Written only by log_coach_interaction; read by owners directly, by coaches and services through get_interaction_history (audited); analysts see the redacted analytics view.';
comment on column public.coach_interactions.user_id is 'The coachee the interaction belongs to.';
comment on column public.coach_interactions.request_id is 'Client idempotency key, unique per user (private.interaction_requests).';
comment on column public.coach_interactions.content is 'The message: {"text": "...", ...}. May hold PHI; redacted at read time for analysts.';
comment on column public.coach_interactions.cost_usd is 'USD, computed from model_prices at created_at; the caller''s value only when no price is known.';
comment on column public.coach_interactions.tracked_skill_id_hash is 'SHA-256 (hex) of the tracked skill id; the raw id is never stored.';
comment on column public.coach_interactions.actor_id is 'HIPAA audit: the user who wrote the row (null for service and ingest callers).';
comment on column public.coach_interactions.actor_role is 'HIPAA audit: the database role that wrote the row.';

-- History: a user's rows newest first, keyset on (created_at, id).
create index coach_interactions_user_id_created_at_idx
  on public.coach_interactions (user_id, created_at desc, id desc);
-- Rollups scan by time; rows arrive in time order, so a BRIN index stays tiny.
create index coach_interactions_created_at_brin
  on public.coach_interactions using brin (created_at) with (pages_per_range = 32);

-- Append-only, for every role including the owner.
create or replace function private.trigger_refuse_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- A delete cascading from a deleted user (erasure: auth.users -> profiles -> this table)
  -- runs inside the foreign key's own trigger, so it arrives here nested; a direct DELETE
  -- arrives at depth 1 and is refused like UPDATE and TRUNCATE.
  if tg_op = 'DELETE' and pg_trigger_depth() > 1 then
    return old;
  end if;
  raise exception '% is append-only: rows cannot be updated or deleted', tg_table_schema || '.' || tg_table_name
    using errcode = '42501';
end;
$$;
comment on function private.trigger_refuse_change() is
  'Trigger function for append-only tables: refuses UPDATE, TRUNCATE and direct DELETE; deletes cascading from an erased user pass.';
revoke execute on function private.trigger_refuse_change() from public, anon, authenticated;

create trigger coach_interactions_refuse_update_delete
  before update or delete on public.coach_interactions
  for each row execute function private.trigger_refuse_change();
create trigger coach_interactions_refuse_truncate
  before truncate on public.coach_interactions
  for each statement execute function private.trigger_refuse_change();

-- Owners read their own rows directly (RLS). Coaches and services read through the audited
-- get_interaction_history; nobody writes except through log_coach_interaction.
grant select on public.coach_interactions to authenticated;
grant select on public.coach_interactions to service_role;

create policy "Interactions are viewable by their owner"
  on public.coach_interactions for select to authenticated
  using ((select auth.uid()) = user_id);

-- Idempotency: one row per (user, request id), pointing at the interaction it created and
-- carrying a hash of the request so a reused key with another payload is detected.
create table private.interaction_requests (
  user_id uuid not null references public.profiles (id) on delete cascade,
  request_id text not null,
  interaction_id uuid not null,
  payload_hash text not null,
  created_at timestamptz not null default now(),
  primary key (user_id, request_id)
);
-- No role but the owner has any privilege on it (only log_coach_interaction, a security
-- definer function, reads and writes it), so it needs no row level security.
revoke all on private.interaction_requests from public, anon, authenticated, service_role;
comment on table private.interaction_requests is
  'Idempotency keys of log_coach_interaction: (user_id, request_id) -> interaction and payload hash.';
