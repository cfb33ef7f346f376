-- Purpose: batch ingestion does less per item (issue 15, batch speed). Profiled on the dev
-- database (auto_explain with nested statements), a batch of 100 joined the inserted rows
-- back to the batch twice by (user, key) in nested loops over CTEs (100 x 100 comparisons,
-- about 1 ms each), and hashed every item twice for the sake of keys stored before the 'v2'
-- hash. Now each new row's id is drawn before the insert, so the key records are written from
-- the batch itself and the answer reads the first item's hash; the old-style hash is computed
-- only for an item whose hash does not match the stored one. Behaviour is unchanged: the
-- same answers, codes, fields and messages; pgTAP 57 and 59 are unchanged and pass.
-- Objects: function public.log_coach_interactions(jsonb) (body). Destructive: none.

create or replace function public.log_coach_interactions(items jsonb)
returns setof public.logged_interaction_item
language plpgsql
volatile
security definer
set search_path = ''
set "TimeZone" to 'UTC'
set extra_float_digits to '1'
as $$
-- Security definer: API roles have no INSERT on coach_interactions and coach_ingest has no
-- privileges at all; this function is the write path and checks its caller first, then
-- every item. Two statements: the checks and the key locks, then (with a snapshot taken
-- after the locks, so a key committed by a transaction that held its lock is seen) the
-- replays and the writes. A value that breaks a table's CHECK (a negative token count, say)
-- still fails the whole call: the batch route validates every item first.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  scope text := private.idempotency_scope();
  work private.interaction_batch_work[];
  -- Items with a value that does not fit its column's type: item -> [field, sqlstate, message].
  unfit jsonb := '{}'::jsonb;
begin
  if caller_role not in ('authenticated', 'service_role', 'coach_ingest', 'postgres') then
    raise exception 'Role % cannot log interactions', caller_role using errcode = '42501';
  end if;
  if caller_role = 'authenticated' and caller is null then
    raise exception 'Only a signed-in user can log interactions' using errcode = '42501';
  end if;
  if jsonb_typeof(log_coach_interactions.items) is distinct from 'array'
     or jsonb_array_length(log_coach_interactions.items) not between 1 and 500
     or exists (select 1 from jsonb_array_elements(log_coach_interactions.items) e where jsonb_typeof(e) <> 'object') then
    raise exception 'items must be an array of 1 to 500 objects' using errcode = '22023';
  end if;

  -- The checks and locks, in a block of their own: an item whose value does not fit its type
  -- (a user_id that is not a UUID, a sentiment too small for real, a date out of range) stops
  -- the statement, so each item's values are then tried one by one, the items that do not fit
  -- are refused, and the statement runs again without them.
  loop
  begin
  with parsed as (
    select (e.ord - 1)::integer as item,
           case when caller_role = 'authenticated' then coalesce((e.v ->> 'user_id')::uuid, caller)
                else (e.v ->> 'user_id')::uuid end as target,
           e.v ->> 'request_id' as key,
           e.v ->> 'sender' as sender,
           e.v -> 'content' as content,
           e.v ->> 'channel' as channel,
           (e.v ->> 'session_id')::uuid as session_id,
           (e.v ->> 'conversation_id')::uuid as conversation_id,
           e.v ->> 'coach_persona' as coach_persona,
           e.v -> 'metadata' as metadata,
           e.v ->> 'model' as model,
           (e.v ->> 'latency_ms')::integer as latency_ms,
           (e.v ->> 'prompt_tokens')::integer as prompt_tokens,
           (e.v ->> 'completion_tokens')::integer as completion_tokens,
           (e.v ->> 'cached_tokens')::integer as cached_tokens,
           (e.v ->> 'cost_usd')::numeric as cost_usd,
           (e.v ->> 'sentiment')::real as sentiment,
           e.v ->> 'momentum_state' as momentum_state,
           e.v ->> 'status' as status,
           e.v ->> 'error_code' as error_code,
           e.v ->> 'tracked_skill_id_hash' as tracked_skill_id_hash,
           (e.v ->> 'created_at')::timestamptz as created_at,
           private.json_bound_violation('interaction_content', e.v -> 'content') as content_problem,
           private.json_bound_violation('interaction_metadata', coalesce(e.v -> 'metadata', '{}'::jsonb)) as metadata_problem
    from jsonb_array_elements(log_coach_interactions.items) with ordinality as e(v, ord)
    where not unfit ? (e.ord - 1)::text
  ), checked as (
    -- The first rule each item breaks, in this order (one CASE, so later rules, the coach
    -- lookup among them, are not evaluated once one fails); the user and the session are
    -- joined once for the whole batch.
    select p.*,
           case
             when p.key is null or p.key !~ '^[A-Za-z0-9._:-]{1,128}$' then 1
             when p.sender is null or p.sender not in ('user', 'ai_coach', 'human_coach', 'system') then 2
             when jsonb_typeof(p.content) is distinct from 'object' or jsonb_typeof(p.content -> 'text') is distinct from 'string' then 3
             when p.metadata is not null and jsonb_typeof(p.metadata) <> 'object' then 4
             when caller_role = 'authenticated' and p.created_at is not null then 5
             when caller_role <> 'authenticated' and p.target is null then 6
             when caller_role = 'authenticated' and p.target = caller and p.sender <> 'user' then 7
             when caller_role = 'authenticated' and p.target <> caller and not private.is_assigned_coach(p.target) then 8
             when caller_role = 'authenticated' and p.target <> caller and p.sender <> 'human_coach' then 9
             when u.id is null then 10
             when p.session_id is not null and s.id is null then 11
             when p.content_problem is not null then 12
             when p.metadata_problem is not null then 13
           end as rule
    from parsed p
    left join public.profiles u on u.id = p.target
    left join public.coaching_sessions s on s.id = p.session_id and s.user_id = p.target
  ), refused as (
    select c.*, r.code, r.field,
           case r.n when 12 then 'content ' || c.content_problem
                    when 13 then 'metadata ' || c.metadata_problem
                    else r.message end as message
    from checked c
    left join (values
      (1, '22023', 'request_id', 'Each item needs its own request_id: 1 to 128 letters, digits, or . _ : -'),
      (2, '22023', 'sender', 'sender must be one of user, ai_coach, human_coach, system'),
      (3, '22023', 'content', 'content must be an object with a text string'),
      (4, '22023', 'metadata', 'metadata must be an object'),
      (5, '42501', 'created_at', 'Only the service role can set created_at'),
      (6, '22023', 'user_id', 'user_id is required for service and ingest callers'),
      (7, '42501', 'sender', 'A user can only log messages with sender user'),
      (8, '42501', 'user_id', 'Only the user, their assigned coach or the service role can log interactions for this user'),
      (9, '42501', 'sender', 'An assigned coach can only log messages with sender human_coach'),
      (10, '23503', 'user_id', 'user_id does not name a user'),
      (11, '23503', 'session_id', 'session_id does not name a coaching session of this user'),
      (12, '23514', 'content', null),
      (13, '23514', 'metadata', null)
    ) as r(n, code, field, message) on r.n = c.rule
  ), hashed as (
    -- The hashes of public.log_coach_interaction, so that a key replays through either path.
    select c.*,
           encode(extensions.digest(jsonb_build_array(
             c.target, c.sender, c.content, coalesce(c.channel, 'chat'), c.session_id, c.conversation_id,
             c.coach_persona, coalesce(c.metadata, '{}'::jsonb), c.model, c.latency_ms, c.prompt_tokens,
             c.completion_tokens, c.cached_tokens, trim_scale(c.cost_usd), c.sentiment, c.momentum_state,
             coalesce(c.status, 'ok'), c.error_code, c.tracked_skill_id_hash, c.created_at, 'v2')::text, 'sha256'), 'hex') as payload_hash
    from refused c
  )
  select array_agg(row(
           h.item, h.target, h.key, h.sender, h.content, h.channel, h.session_id, h.conversation_id, h.coach_persona,
           h.metadata, h.model, h.latency_ms, h.prompt_tokens, h.completion_tokens, h.cached_tokens, h.cost_usd,
           h.sentiment, h.momentum_state, h.status, h.error_code, h.tracked_skill_id_hash, h.created_at,
           h.payload_hash, null::text,  -- legacy_hash: computed at the end, only on a mismatch
           -- Another transaction holding this key's lock is the same request still in flight.
           case when h.code is not null then h.code
                when not pg_try_advisory_xact_lock(hashtextextended(h.target::text || '/' || scope || '/' || h.key, 7)) then 'PT409' end,
           case when h.code is not null then h.field else 'request_id' end,
           coalesce(h.message, 'A request with this request_id is still being processed')
         )::private.interaction_batch_work order by h.item)
  into work
  from hashed h;
  exit;
  exception when data_exception then
    -- A second failure is not a value that does not fit its type: let it through.
    if unfit <> '{}' then
      raise;
    end if;
    unfit := private.batch_unfit_values(log_coach_interactions.items, jsonb_build_object(
      'user_id', 'uuid', 'session_id', 'uuid', 'conversation_id', 'uuid', 'latency_ms', 'integer',
      'prompt_tokens', 'integer', 'completion_tokens', 'integer', 'cached_tokens', 'integer',
      'cost_usd', 'numeric', 'sentiment', 'real', 'created_at', 'timestamptz'));
    if unfit = '{}' then
      raise;
    end if;
  end;
  end loop;
  work := coalesce(work, '{}'::private.interaction_batch_work[]) || array(
    select jsonb_populate_record(null::private.interaction_batch_work,
             jsonb_build_object('item', u.key::integer, 'field', u.value ->> 0, 'code', u.value ->> 1, 'message', u.value ->> 2))
    from jsonb_each(unfit) as u)::private.interaction_batch_work[];

  return query
  with w as (
    select * from unnest(work)
  ), firsts as (
    -- Within the batch, the first item of a key is the write; a later one replays it.
    select distinct on (w.target, w.key) w.item, w.target, w.key, w.payload_hash
    from w where w.code is null
    order by w.target, w.key, w.item
  ), earlier as (
    select r.user_id, r.request_id, r.payload_hash, r.interaction_id
    from private.interaction_requests r
    join firsts f on r.user_id = f.target and r.actor_scope = scope and r.request_id = f.key
  ), fresh as (
    -- Each new row's id is drawn here (gen_random_uuid, the column's default, makes this CTE
    -- run once), so the key records and the answer need no join back to the inserted rows.
    select w.*, gen_random_uuid() as id from w
    join firsts f on f.item = w.item
    where not exists (select 1 from earlier e where e.user_id = w.target and e.request_id = w.key)
  ), priced as materialized (
    -- Each model's price resolved once per batch (private.resolve_model_price, as
    -- private.interaction_cost resolves it for one row), not once per item.
    select d.model, d.at, p.input_usd_per_mtok, p.cached_input_usd_per_mtok, p.output_usd_per_mtok
    from (select distinct f.model, coalesce(f.created_at, now()) as at from fresh f where f.model is not null) d
    cross join lateral private.resolve_model_price(d.model, d.at) p
  ), inserted as (
    insert into public.coach_interactions (
      id, user_id, session_id, conversation_id, request_id, sender, channel, coach_persona, content, metadata,
      model, latency_ms, prompt_tokens, completion_tokens, cached_tokens, cost_usd, sentiment, momentum_state,
      status, error_code, tracked_skill_id_hash, created_at, actor_id, actor_role)
    select f.id, f.target, f.session_id, f.conversation_id, f.key, f.sender, coalesce(f.channel, 'chat'), f.coach_persona,
           f.content, coalesce(f.metadata, '{}'::jsonb), f.model, f.latency_ms, f.prompt_tokens, f.completion_tokens,
           f.cached_tokens,
           -- private.interaction_cost's formula over the resolved price (pgTAP 57 compares the two).
           coalesce(round((
               (coalesce(f.prompt_tokens, 0) - coalesce(f.cached_tokens, 0)) * pr.input_usd_per_mtok
             + coalesce(f.cached_tokens, 0) * coalesce(pr.cached_input_usd_per_mtok, pr.input_usd_per_mtok)
             + coalesce(f.completion_tokens, 0) * pr.output_usd_per_mtok
           ) / 1000000.0, 8), f.cost_usd),
           f.sentiment, f.momentum_state, coalesce(f.status, 'ok'), f.error_code, f.tracked_skill_id_hash,
           coalesce(f.created_at, now()), caller, caller_role
    from fresh f
    left join priced pr on pr.model = f.model and pr.at = coalesce(f.created_at, now())
    order by f.item
    returning *
  ), recorded as (
    insert into private.interaction_requests (user_id, actor_scope, request_id, interaction_id, payload_hash)
    select f.target, scope, f.key, f.id, f.payload_hash
    from fresh f
    returning request_id
  ), stored as (
    -- Each written or earlier key: its row, and for an earlier key the hash it was stored
    -- with (a key written now was stored with its first item's hash, in firsts).
    select i.user_id, i.request_id, null::text as payload_hash, row(i.*)::public.coach_interactions as row, true as created
    from inserted i
    union all
    select e.user_id, e.request_id, e.payload_hash, c, false
    from earlier e join public.coach_interactions c on c.id = e.interaction_id
  )
  select w.item,
         case when w.code is not null then 'refused'
              when m.mismatch then 'refused'
              when s.created and f.item = w.item then 'created'
              else 'replayed' end,
         case when w.code is null and not m.mismatch then s.row end,
         case when w.code is not null then w.code
              when m.mismatch then 'PT422' end,
         case when w.code is not null then w.field
              when m.mismatch then 'request_id' end,
         case when w.code is not null then w.message
              when m.mismatch then 'request_id was already used with a different payload' end
  from w
  left join firsts f on f.target = w.target and f.key = w.key
  left join stored s on s.user_id = w.target and s.request_id = w.key
  cross join lateral (
    -- Whether the key was stored with another payload: its hash differs from this item's,
    -- and from the hash public.log_coach_interaction used before 'v2' (computed only then).
    select case when w.code is not null then null
                when h.stored_hash = w.payload_hash then false
                else h.stored_hash <> encode(extensions.digest(jsonb_build_array(
                       w.target, w.sender, w.content, w.channel, w.session_id, w.conversation_id, w.coach_persona,
                       w.metadata, w.model, w.latency_ms, w.prompt_tokens, w.completion_tokens, w.cached_tokens,
                       w.cost_usd, w.sentiment, w.momentum_state, w.status, w.error_code, w.tracked_skill_id_hash,
                       w.created_at)::text, 'sha256'), 'hex') end as mismatch
    from (select case when s.created then f.payload_hash else s.payload_hash end as stored_hash) h
  ) m
  order by w.item;
end;
$$;
