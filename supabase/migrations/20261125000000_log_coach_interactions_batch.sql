-- Purpose: the set-based write path of batch ingestion (issue 15): up to 500 interactions
-- in one call and one transaction, each with its own idempotency key and its own outcome
-- (created, replayed, or refused with a code, the field at fault and a message), so a bad
-- item never blocks the good ones. The same rules as public.log_coach_interaction, item by
-- item: who may write for whom, the user and session checks, the JSON bounds, cost from
-- model_prices, idempotency by (user, caller scope, request_id) over the same normalised
-- payload hash (a key written by either path replays through the other), the in-flight lock
-- per key, and one realtime broadcast per stored row (the table's trigger).
-- A batch takes one request per item from the caller's rate limit, all or none, so batching
-- never widens a limit: private.take_rate_limit gains an amount (default 1).
-- Objects: type private.interaction_batch_work, type public.logged_interaction_item,
-- function public.log_coach_interactions(jsonb); private.take_rate_limit(text, jsonb,
-- timestamptz) replaced by private.take_rate_limit(text, jsonb, timestamptz, integer).
-- Destructive: the three-argument take_rate_limit is dropped; every call of it (two or three
-- arguments) resolves to the new one unchanged.

drop function private.take_rate_limit(text, jsonb, timestamptz);
create function private.take_rate_limit(endpoint text, claims jsonb, at timestamp with time zone default now(), amount integer default 1)
returns table(allowed boolean, policy text, quota integer, window_seconds integer, remaining integer, reset_seconds integer)
language plpgsql
security definer
set search_path = ''
as $$
-- Security definer: callers have no privilege on the counters. The functions call it once
-- per request (a batch takes one per item, all or none), in its own statement (not in the request's transaction), so the counter row
-- is locked only for this upsert and never for a whole write.
declare
  caller text := take_rate_limit.claims ->> 'role';
  found_policy private.rate_limit_policies;
  caller_key text;
  window_offset bigint;
  current_window timestamptz;
  taken integer;
  counted_window timestamptz;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can take from a rate limit' using errcode = '42501';
  end if;
  if take_rate_limit.endpoint is null or caller is null or take_rate_limit.at is null then
    raise exception 'endpoint, claims with a role, and at are required' using errcode = '22023';
  end if;
  if take_rate_limit.amount is null or take_rate_limit.amount not between 1 and 100000 then
    raise exception 'amount must be between 1 and 100000' using errcode = '22023';
  end if;

  select p.* into found_policy
  from private.rate_limit_policies p
  where p.endpoint = take_rate_limit.endpoint and p.role = caller;
  if not found then
    return query select true, take_rate_limit.endpoint, null::integer, null::integer, null::integer, null::integer;
    return;
  end if;

  if caller = 'authenticated' then
    if coalesce(take_rate_limit.claims ->> 'sub', '') !~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' then
      raise exception 'A user''s claims need a UUID sub' using errcode = '22023';
    end if;
    caller_key := 'user:' || lower(take_rate_limit.claims ->> 'sub');
  else
    -- A role token has no subject: the token is the caller (jsonb text is canonical).
    caller_key := caller || ':' || md5(take_rate_limit.claims::text);
  end if;

  window_offset := mod(mod(hashtextextended(caller_key, 0), found_policy.window_seconds) + found_policy.window_seconds,
                       found_policy.window_seconds);
  current_window := to_timestamp(
    floor((extract(epoch from take_rate_limit.at) - window_offset) / found_policy.window_seconds)
      * found_policy.window_seconds + window_offset);

  -- A newer window starts the count again; a request stamped in an older window than the one
  -- stored (a late transaction) counts in the stored one, so the window only moves forward.
  insert into private.rate_limit_counters as c (endpoint, subject, window_start, used)
  select take_rate_limit.endpoint, caller_key, current_window, take_rate_limit.amount
  where take_rate_limit.amount <= found_policy.quota
  on conflict on constraint rate_limit_counters_pkey do update
    set window_start = greatest(c.window_start, excluded.window_start),
        used = case when excluded.window_start > c.window_start then take_rate_limit.amount else c.used + take_rate_limit.amount end
    where excluded.window_start > c.window_start or c.used + take_rate_limit.amount <= found_policy.quota
  returning c.used, c.window_start into taken, counted_window;

  allowed := found;
  if not allowed then
    select c.used, c.window_start into taken, counted_window
    from private.rate_limit_counters c
    where c.endpoint = take_rate_limit.endpoint and c.subject = caller_key;
    -- An amount over the whole quota is refused without a take: with no counter, or with
    -- one of an older window, nothing of the current window is used yet.
    if not found or counted_window < current_window then
      taken := 0;
      counted_window := current_window;
    end if;
  end if;

  policy := take_rate_limit.endpoint;
  quota := found_policy.quota;
  window_seconds := found_policy.window_seconds;
  remaining := greatest(found_policy.quota - taken, 0);
  reset_seconds := greatest(1, ceil(extract(epoch from
    counted_window + make_interval(secs => found_policy.window_seconds) - take_rate_limit.at))::integer);
  return next;
end;
$$;
comment on function private.take_rate_limit(text, jsonb, timestamptz, integer) is
  'Takes amount requests (default 1; all or none) from the caller''s rate limit for an endpoint (policy per role; per user or per token); returns allowed, policy, quota, window_seconds, remaining, reset_seconds. Service role only.';
revoke execute on function private.take_rate_limit(text, jsonb, timestamptz, integer) from public, anon, authenticated, coach_ingest;
grant execute on function private.take_rate_limit(text, jsonb, timestamptz, integer) to service_role;


-- One item between the two steps of the function (checked and locked, then written).
create type private.interaction_batch_work as (
  item integer,
  target uuid,
  key text,
  sender text,
  content jsonb,
  channel text,
  session_id uuid,
  conversation_id uuid,
  coach_persona text,
  metadata jsonb,
  model text,
  latency_ms integer,
  prompt_tokens integer,
  completion_tokens integer,
  cached_tokens integer,
  cost_usd numeric,
  sentiment real,
  momentum_state text,
  status text,
  error_code text,
  tracked_skill_id_hash text,
  created_at timestamptz,
  payload_hash text,
  legacy_hash text,
  code text,
  field text,
  message text
);
comment on type private.interaction_batch_work is
  'public.log_coach_interactions: one item after its checks and its key lock (code set when refused).';

-- What the batch says about each item, in the order given.
create type public.logged_interaction_item as (
  item integer,
  outcome text,
  interaction public.coach_interactions,
  code text,
  field text,
  message text
);
comment on type public.logged_interaction_item is
  'One item of a batch: its 0-based position, outcome created | replayed | refused, the stored row (created, replayed), or the refusal''s code, field and message.';

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
  probe_item record;
  probe_field record;
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
    select p.*, refusal.code, refusal.field, refusal.message
    from parsed p
    left join lateral (
      select r.code, r.field, r.message
      from (values
        (1, p.key is null or p.key !~ '^[A-Za-z0-9._:-]{1,128}$', '22023', 'request_id',
            'Each item needs its own request_id: 1 to 128 letters, digits, or . _ : -'),
        (2, p.sender is null or p.sender not in ('user', 'ai_coach', 'human_coach', 'system'), '22023', 'sender',
            'sender must be one of user, ai_coach, human_coach, system'),
        (3, jsonb_typeof(p.content) is distinct from 'object' or jsonb_typeof(p.content -> 'text') is distinct from 'string',
            '22023', 'content', 'content must be an object with a text string'),
        (4, p.metadata is not null and jsonb_typeof(p.metadata) <> 'object', '22023', 'metadata', 'metadata must be an object'),
        (5, caller_role = 'authenticated' and p.created_at is not null, '42501', 'created_at',
            'Only the service role can set created_at'),
        (6, caller_role <> 'authenticated' and p.target is null, '22023', 'user_id',
            'user_id is required for service and ingest callers'),
        (7, caller_role = 'authenticated' and p.target = caller and p.sender <> 'user', '42501', 'sender',
            'A user can only log messages with sender user'),
        (8, caller_role = 'authenticated' and p.target <> caller and not private.is_assigned_coach(p.target), '42501', 'user_id',
            'Only the user, their assigned coach or the service role can log interactions for this user'),
        (9, caller_role = 'authenticated' and p.target <> caller and p.sender <> 'human_coach', '42501', 'sender',
            'An assigned coach can only log messages with sender human_coach'),
        (10, not exists (select 1 from public.profiles u where u.id = p.target), '23503', 'user_id',
            'user_id does not name a user'),
        (11, p.session_id is not null and not exists (
               select 1 from public.coaching_sessions s where s.id = p.session_id and s.user_id = p.target),
            '23503', 'session_id', 'session_id does not name a coaching session of this user'),
        (12, p.content_problem is not null, '23514', 'content', 'content ' || p.content_problem),
        (13, p.metadata_problem is not null, '23514', 'metadata', 'metadata ' || p.metadata_problem)
      ) as r(n, failed, code, field, message)
      where r.failed
      order by r.n
      limit 1
    ) as refusal on true
  ), hashed as (
    -- The hashes of public.log_coach_interaction, so that a key replays through either path.
    select c.*,
           encode(extensions.digest(jsonb_build_array(
             c.target, c.sender, c.content, coalesce(c.channel, 'chat'), c.session_id, c.conversation_id,
             c.coach_persona, coalesce(c.metadata, '{}'::jsonb), c.model, c.latency_ms, c.prompt_tokens,
             c.completion_tokens, c.cached_tokens, trim_scale(c.cost_usd), c.sentiment, c.momentum_state,
             coalesce(c.status, 'ok'), c.error_code, c.tracked_skill_id_hash, c.created_at, 'v2')::text, 'sha256'), 'hex') as payload_hash,
           encode(extensions.digest(jsonb_build_array(
             c.target, c.sender, c.content, c.channel, c.session_id, c.conversation_id, c.coach_persona,
             c.metadata, c.model, c.latency_ms, c.prompt_tokens, c.completion_tokens, c.cached_tokens,
             c.cost_usd, c.sentiment, c.momentum_state, c.status, c.error_code, c.tracked_skill_id_hash,
             c.created_at)::text, 'sha256'), 'hex') as legacy_hash
    from checked c
  )
  select array_agg(row(
           h.item, h.target, h.key, h.sender, h.content, h.channel, h.session_id, h.conversation_id, h.coach_persona,
           h.metadata, h.model, h.latency_ms, h.prompt_tokens, h.completion_tokens, h.cached_tokens, h.cost_usd,
           h.sentiment, h.momentum_state, h.status, h.error_code, h.tracked_skill_id_hash, h.created_at,
           h.payload_hash, h.legacy_hash,
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
    for probe_item in select (e.ord - 1)::integer as item, e.v from jsonb_array_elements(log_coach_interactions.items) with ordinality as e(v, ord) loop
      for probe_field in select t.field, t.type
               from (values ('user_id', 'uuid'), ('session_id', 'uuid'), ('conversation_id', 'uuid'), ('latency_ms', 'integer'),
                            ('prompt_tokens', 'integer'), ('completion_tokens', 'integer'), ('cached_tokens', 'integer'),
                            ('cost_usd', 'numeric'), ('sentiment', 'real'), ('created_at', 'timestamptz')) as t(field, type)
               where jsonb_typeof(probe_item.v -> t.field) is distinct from 'null' and probe_item.v ? t.field loop
        begin
          execute format('select %L::%s', probe_item.v ->> probe_field.field, probe_field.type);
        exception when others then
          unfit := unfit || jsonb_build_object(probe_item.item::text, jsonb_build_array(probe_field.field, sqlstate, probe_field.field || ': ' || sqlerrm));
          exit;
        end;
      end loop;
    end loop;
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
    select distinct on (w.target, w.key) w.item, w.target, w.key
    from w where w.code is null
    order by w.target, w.key, w.item
  ), earlier as (
    select r.user_id, r.request_id, r.payload_hash, r.interaction_id
    from private.interaction_requests r
    join firsts f on r.user_id = f.target and r.actor_scope = scope and r.request_id = f.key
  ), fresh as (
    select w.* from w
    join firsts f on f.item = w.item
    where not exists (select 1 from earlier e where e.user_id = w.target and e.request_id = w.key)
  ), priced as (
    -- Each model's price resolved once per batch (private.resolve_model_price, as
    -- private.interaction_cost resolves it for one row), not once per item.
    select d.model, d.at, p.input_usd_per_mtok, p.cached_input_usd_per_mtok, p.output_usd_per_mtok
    from (select distinct f.model, coalesce(f.created_at, now()) as at from fresh f where f.model is not null) d
    cross join lateral private.resolve_model_price(d.model, d.at) p
  ), inserted as (
    insert into public.coach_interactions (
      user_id, session_id, conversation_id, request_id, sender, channel, coach_persona, content, metadata,
      model, latency_ms, prompt_tokens, completion_tokens, cached_tokens, cost_usd, sentiment, momentum_state,
      status, error_code, tracked_skill_id_hash, created_at, actor_id, actor_role)
    select f.target, f.session_id, f.conversation_id, f.key, f.sender, coalesce(f.channel, 'chat'), f.coach_persona,
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
    select i.user_id, scope, i.request_id, i.id, f.payload_hash
    from inserted i join fresh f on f.target = i.user_id and f.key = i.request_id
    returning request_id
  ), stored as (
    -- Each written or earlier key: its row and the hash it was stored with.
    select i.user_id, i.request_id, f.payload_hash, row(i.*)::public.coach_interactions as row, true as created
    from inserted i join fresh f on f.target = i.user_id and f.key = i.request_id
    union all
    select e.user_id, e.request_id, e.payload_hash, c, false
    from earlier e join public.coach_interactions c on c.id = e.interaction_id
  )
  select w.item,
         case when w.code is not null then 'refused'
              when s.payload_hash <> w.payload_hash and s.payload_hash <> w.legacy_hash then 'refused'
              when s.created and f.item = w.item then 'created'
              else 'replayed' end,
         case when w.code is null and (s.payload_hash = w.payload_hash or s.payload_hash = w.legacy_hash) then s.row end,
         case when w.code is not null then w.code
              when s.payload_hash <> w.payload_hash and s.payload_hash <> w.legacy_hash then 'PT422' end,
         case when w.code is not null then w.field
              when s.payload_hash <> w.payload_hash and s.payload_hash <> w.legacy_hash then 'request_id' end,
         case when w.code is not null then w.message
              when s.payload_hash <> w.payload_hash and s.payload_hash <> w.legacy_hash then 'request_id was already used with a different payload' end
  from w
  left join firsts f on f.target = w.target and f.key = w.key
  left join stored s on s.user_id = w.target and s.request_id = w.key
  order by w.item;
end;
$$;
comment on function public.log_coach_interactions(jsonb) is
  'Logs 1 to 500 interactions (objects with the arguments of log_coach_interaction, request_id required) in one transaction; returns each item''s outcome in order: created, replayed (same key and payload, earlier or within the batch), or refused with code (22023, 42501, 23503, 23514, PT409 in flight, PT422 key reused with another payload), field and message.';
revoke execute on function public.log_coach_interactions(jsonb) from public, anon;
grant execute on function public.log_coach_interactions(jsonb) to authenticated, service_role, coach_ingest;
