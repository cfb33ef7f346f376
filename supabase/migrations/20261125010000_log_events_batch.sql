-- Purpose: events in batches (issue 15: "up to 500 interactions and events per request"):
-- public.log_events, the set-based write path of the event items of
-- POST /functions/v1/log-interaction/batch, as public.log_coach_interactions is for its
-- interaction items. Up to 500 events in one call, each with its own idempotency key and its
-- own outcome (created, replayed, or refused with a code, the field at fault and a message),
-- so a bad item never blocks the good ones. The rules are public.log_event's, item by item:
-- who may write for whom, the user, interaction and session checks, the payload bounds and
-- the table's rules, idempotency by (user, caller scope, request_id) over the same
-- normalised payload hash (a key written by either path replays through the other), and the
-- same in-flight lock per key.
-- A value that does not fit its type (an id that is not a UUID, a score that is not a
-- smallint, a date out of range) refuses its item only: private.batch_unfit_values finds
-- such items, and the checks run again without them.
-- Objects: function private.batch_unfit_values(jsonb, jsonb); type private.event_batch_work;
-- type public.logged_event_item; function public.log_events(jsonb). Destructive: none.

create function private.batch_unfit_values(items jsonb, fields jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
-- For the batch write paths, after a statement over every item failed with a data
-- exception: tries each item's typed fields (fields: {"name": "type", ...}) one by one and
-- returns {"<0-based item>": [field, sqlstate, message]} for the items whose value does not
-- fit (the first such field of each item). Not security definer: it reads nothing.
declare
  unfit jsonb := '{}'::jsonb;
  probe_item record;
  probe_field record;
begin
  for probe_item in
    select (e.ord - 1)::integer as item, e.v
    from jsonb_array_elements(batch_unfit_values.items) with ordinality as e(v, ord)
    where jsonb_typeof(e.v) = 'object'
  loop
    for probe_field in
      select f.key as field, f.value as type
      from jsonb_each_text(batch_unfit_values.fields) as f
      where jsonb_typeof(probe_item.v -> f.key) is distinct from 'null' and probe_item.v ? f.key
      order by f.key
    loop
      begin
        execute format('select %L::%s', probe_item.v ->> probe_field.field, probe_field.type::regtype);
      exception when data_exception then
        unfit := unfit || jsonb_build_object(probe_item.item::text,
          jsonb_build_array(probe_field.field, sqlstate, probe_field.field || ': ' || sqlerrm));
        exit;
      end;
    end loop;
  end loop;
  return unfit;
end;
$$;
comment on function private.batch_unfit_values(jsonb, jsonb) is
  'The batch write paths'' fallback: for items (a JSON array of objects) and fields ({"name": "type"}), the items whose value of a field does not cast to its type, as {"<item>": [field, sqlstate, message]}.';
revoke execute on function private.batch_unfit_values(jsonb, jsonb) from public, anon, authenticated, service_role;


-- One event between the two steps of log_events (checked and locked, then written).
create type private.event_batch_work as (
  item integer,
  target uuid,
  key text,
  kind text,
  interaction_id uuid,
  session_id uuid,
  group_id uuid,
  category text,
  score smallint,
  payload jsonb,
  tracked_skill_id_hash text,
  created_at timestamptz,
  payload_hash text,
  code text,
  field text,
  message text
);
comment on type private.event_batch_work is
  'public.log_events: one item after its checks and its key lock (code set when refused).';

create type public.logged_event_item as (
  item integer,
  outcome text,
  event public.interaction_events,
  code text,
  field text,
  message text
);
comment on type public.logged_event_item is
  'One event of a batch: its 0-based position, outcome created | replayed | refused, the stored event (created, replayed), or the refusal''s code, field and message.';

create function public.log_events(items jsonb)
returns setof public.logged_event_item
language plpgsql
volatile
security definer
set search_path = ''
-- The payload hash writes created_at through jsonb: in UTC, as log_event.
set "TimeZone" to 'UTC'
as $$
-- Security definer: API roles have no INSERT on interaction_events and coach_ingest has no
-- privileges at all; this function is the write path and checks its caller first, then
-- every item. Two statements, as log_coach_interactions: the checks and the key locks, then
-- (with a snapshot taken after the locks) the replays and the writes.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  scope text := private.idempotency_scope();
  work private.event_batch_work[];
  unfit jsonb := '{}'::jsonb;
begin
  if caller_role not in ('authenticated', 'service_role', 'coach_ingest', 'postgres') then
    raise exception 'Role % cannot log events', caller_role using errcode = '42501';
  end if;
  if caller_role = 'authenticated' and caller is null then
    raise exception 'Only a signed-in user can log events' using errcode = '42501';
  end if;
  if jsonb_typeof(log_events.items) is distinct from 'array'
     or jsonb_array_length(log_events.items) not between 1 and 500
     or exists (select 1 from jsonb_array_elements(log_events.items) e where jsonb_typeof(e) <> 'object') then
    raise exception 'items must be an array of 1 to 500 objects' using errcode = '22023';
  end if;

  loop
  begin
  with parsed as (
    select (e.ord - 1)::integer as item,
           case when caller_role = 'authenticated' then coalesce((e.v ->> 'user_id')::uuid, caller)
                else (e.v ->> 'user_id')::uuid end as target,
           e.v ->> 'request_id' as key,
           e.v ->> 'kind' as kind,
           (e.v ->> 'interaction_id')::uuid as interaction_id,
           (e.v ->> 'session_id')::uuid as session_id,
           (e.v ->> 'group_id')::uuid as group_id,
           e.v ->> 'category' as category,
           (e.v ->> 'score')::smallint as score,
           e.v -> 'payload' as payload,
           e.v ->> 'tracked_skill_id_hash' as tracked_skill_id_hash,
           (e.v ->> 'created_at')::timestamptz as created_at
    from jsonb_array_elements(log_events.items) with ordinality as e(v, ord)
    where not unfit ? (e.ord - 1)::text
  ), checked as (
    -- log_event's checks, in its order, with its messages: one CASE finds the first rule an
    -- item breaks, and the user, the interaction and the session are joined once for the
    -- batch (as log_coach_interactions does since 20261125020100).
    select p.*,
           case
             when p.key is null or p.key !~ '^[A-Za-z0-9._:-]{1,128}$' then 1
             when caller_role = 'authenticated' and p.created_at is not null then 2
             when caller_role <> 'authenticated' and p.target is null then 3
             when caller_role = 'authenticated' and p.target <> caller then 4
             when u.id is null then 5
             when p.interaction_id is not null and i.id is null then 6
             when p.session_id is not null and s.id is null then 7
             when p.payload is not null and jsonb_typeof(p.payload) <> 'object' then 8
             when p.payload is not null and private.json_bound_violation('event_payload', p.payload) is not null then 9
             when p.kind is null or p.kind not in ('delivered', 'read', 'rating', 'feedback', 'error', 'session_state') then 10
             when (p.kind = 'rating') <> (p.score is not null) then 11
             when p.score not between 1 and 5 then 12
             when p.category is not null and (char_length(p.category) not between 1 and 100 or p.category ~ '[[:cntrl:]]') then 13
             when p.tracked_skill_id_hash is not null and p.tracked_skill_id_hash !~ '^[0-9a-f]{64}$' then 14
           end as rule
    from parsed p
    left join public.profiles u on u.id = p.target
    left join public.coach_interactions i on i.id = p.interaction_id and i.user_id = p.target
    left join public.coaching_sessions s on s.id = p.session_id and s.user_id = p.target
  ), refused as (
    select c.*, r.code, r.field,
           case when r.n = 9 then 'payload ' || private.json_bound_violation('event_payload', c.payload) else r.message end as message
    from checked c
    left join (values
      (1, '22023', 'request_id', 'Each item needs its own request_id: 1 to 128 letters, digits, or . _ : -'),
      (2, '42501', 'created_at', 'Only the service role or an ingest token can set created_at'),
      (3, '22023', 'user_id', 'user_id is required for service and ingest callers'),
      (4, '42501', 'user_id', 'Only the user, the service role or an ingest token can log events for this user'),
      (5, '23503', 'user_id', 'user_id does not name a user'),
      (6, '23503', 'interaction_id', 'interaction_id does not name an interaction of this user'),
      (7, '23503', 'session_id', 'session_id does not name a coaching session of this user'),
      (8, '22023', 'payload', 'payload must be a JSON object'),
      (9, '23514', 'payload', null),
      (10, '22023', 'kind', 'kind must be one of delivered, read, rating, feedback, error, session_state'),
      (11, '22023', 'score', 'score is required exactly when kind is rating'),
      (12, '22023', 'score', 'score must be between 1 and 5'),
      (13, '22023', 'category', 'category must be 1 to 100 characters without control characters'),
      (14, '22023', 'tracked_skill_id_hash', 'tracked_skill_id_hash must be 64 lowercase hex digits (the keyed hash, never a raw id)')
    ) as r(n, code, field, message) on r.n = c.rule
  ), hashed as (
    -- log_event's hash, so that a key replays through either path.
    select c.*,
           encode(extensions.digest(jsonb_build_array(
             c.target, c.kind, c.interaction_id, c.session_id, c.group_id, c.category, c.score,
             coalesce(c.payload, '{}'::jsonb), c.tracked_skill_id_hash, c.created_at, 'event-v1')::text, 'sha256'), 'hex') as payload_hash
    from refused c
  )
  select array_agg(row(
           h.item, h.target, h.key, h.kind, h.interaction_id, h.session_id, h.group_id, h.category, h.score,
           h.payload, h.tracked_skill_id_hash, h.created_at, h.payload_hash,
           case when h.code is not null then h.code
                when not pg_try_advisory_xact_lock(hashtextextended(h.target::text || '/' || scope || '/event/' || h.key, 7)) then 'PT409' end,
           case when h.code is not null then h.field else 'request_id' end,
           coalesce(h.message, 'A request with this request_id is still being processed')
         )::private.event_batch_work order by h.item)
  into work
  from hashed h;
  exit;
  exception when data_exception then
    -- A second failure is not a value that does not fit its type: let it through.
    if unfit <> '{}' then
      raise;
    end if;
    unfit := private.batch_unfit_values(log_events.items, jsonb_build_object(
      'user_id', 'uuid', 'interaction_id', 'uuid', 'session_id', 'uuid', 'group_id', 'uuid',
      'score', 'smallint', 'created_at', 'timestamptz'));
    if unfit = '{}' then
      raise;
    end if;
  end;
  end loop;
  work := coalesce(work, '{}'::private.event_batch_work[]) || array(
    select jsonb_populate_record(null::private.event_batch_work,
             jsonb_build_object('item', u.key::integer, 'field', u.value ->> 0, 'code', u.value ->> 1, 'message', u.value ->> 2))
    from jsonb_each(unfit) as u)::private.event_batch_work[];

  return query
  with w as (
    select * from unnest(work)
  ), firsts as (
    -- Within the batch, the first item of a key is the write; a later one replays it.
    select distinct on (w.target, w.key) w.item, w.target, w.key
    from w where w.code is null
    order by w.target, w.key, w.item
  ), earlier as (
    select r.user_id, r.request_id, r.payload_hash, r.event_id
    from private.event_requests r
    join firsts f on r.user_id = f.target and r.actor_scope = scope and r.request_id = f.key
  ), fresh as (
    select w.* from w
    join firsts f on f.item = w.item
    where not exists (select 1 from earlier e where e.user_id = w.target and e.request_id = w.key)
  ), inserted as (
    insert into public.interaction_events (
      interaction_id, user_id, session_id, group_id, request_id, kind, category, score, payload,
      tracked_skill_id_hash, created_at, actor_id, actor_role)
    select f.interaction_id, f.target, f.session_id, f.group_id, f.key, f.kind, f.category, f.score,
           coalesce(f.payload, '{}'::jsonb), f.tracked_skill_id_hash, coalesce(f.created_at, now()), caller, caller_role
    from fresh f
    order by f.item
    returning *
  ), recorded as (
    insert into private.event_requests (user_id, actor_scope, request_id, event_id, payload_hash)
    select i.user_id, scope, i.request_id, i.id, f.payload_hash
    from inserted i join fresh f on f.target = i.user_id and f.key = i.request_id
    returning request_id
  ), stored as (
    select i.user_id, i.request_id, f.payload_hash, row(i.*)::public.interaction_events as row, true as created
    from inserted i join fresh f on f.target = i.user_id and f.key = i.request_id
    union all
    select e.user_id, e.request_id, e.payload_hash, ev, false
    from earlier e join public.interaction_events ev on ev.id = e.event_id
  )
  select w.item,
         case when w.code is not null then 'refused'
              when s.payload_hash <> w.payload_hash then 'refused'
              when s.created and f.item = w.item then 'created'
              else 'replayed' end,
         case when w.code is null and s.payload_hash = w.payload_hash then s.row end,
         case when w.code is not null then w.code when s.payload_hash <> w.payload_hash then 'PT422' end,
         case when w.code is not null then w.field when s.payload_hash <> w.payload_hash then 'request_id' end,
         case when w.code is not null then w.message
              when s.payload_hash <> w.payload_hash then 'request_id was already used with a different payload' end
  from w
  left join firsts f on f.target = w.target and f.key = w.key
  left join stored s on s.user_id = w.target and s.request_id = w.key
  order by w.item;
end;
$$;
comment on function public.log_events(jsonb) is
  'Logs 1 to 500 events (objects with the arguments of log_event, request_id required) in one transaction; returns each item''s outcome in order: created, replayed (same key and payload, earlier or within the batch), or refused with code (22023, 42501, 23503, 23514, PT409 in flight, PT422 key reused with another payload), field and message. The event items of POST /functions/v1/log-interaction/batch.';
revoke execute on function public.log_events(jsonb) from public, anon;
grant execute on function public.log_events(jsonb) to authenticated, service_role, coach_ingest;
