-- Purpose: audit a coach's receipt of a client's interactions over Realtime, as the history
-- read path audits a read. private.record_realtime_delivery(topic, message_ids) is called by a
-- Realtime server as the receiving subscriber (role and claims set for the transaction),
-- before it sends the messages: for the topic coach_interactions:<client id> it records one
-- audit.phi_access_log row (resource 'coach_interactions:realtime', purpose 'realtime',
-- row_count = the messages received) when the caller is the client's assigned coach or the
-- service role, records nothing when the caller is the client, and refuses everyone else
-- (42501), which is also how a coach whose assignment has ended is cut off. Topics that carry
-- no interactions record nothing.
-- Only the local Realtime stand-in (local/gateway/realtime/delivery.ts) calls it; hosted
-- Supabase Realtime does not, so receipts over hosted Realtime are not audited.
-- It lives in private (internals, not exposed through the API, usage for authenticated and
-- service_role only): anon cannot reach it, which refuses anon like any other stranger.
-- Objects: function private.record_realtime_delivery. Destructive: none.

create or replace function private.record_realtime_delivery(topic text, message_ids uuid[])
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: reads realtime.messages and appends to audit.phi_access_log, neither of
-- which the receiving roles may do; the caller is checked first.
declare
  caller_role text := private.caller_role();
  caller uuid := auth.uid();
  subject uuid;
  wanted integer;
  found_count integer;
begin
  if record_realtime_delivery.topic is null
     or record_realtime_delivery.topic !~ '^coach_interactions:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return 0;
  end if;
  subject := substr(record_realtime_delivery.topic, char_length('coach_interactions:') + 1)::uuid;

  if caller_role = 'authenticated' then
    if caller is null or (caller <> subject and not private.is_assigned_coach(subject)) then
      raise exception 'Only the user, their assigned coach or the service role can receive these interactions'
        using errcode = '42501';
    end if;
  elsif caller_role not in ('service_role', 'postgres') then
    raise exception 'Only the user, their assigned coach or the service role can receive these interactions'
      using errcode = '42501';
  end if;

  if record_realtime_delivery.message_ids is null
     or cardinality(record_realtime_delivery.message_ids) not between 1 and 1000
     or array_position(record_realtime_delivery.message_ids, null) is not null then
    raise exception 'message_ids must hold 1 to 1000 message ids' using errcode = '22023';
  end if;
  if caller_role = 'authenticated' and caller = subject then
    return 0;
  end if;

  select count(distinct x) into wanted from unnest(record_realtime_delivery.message_ids) x;
  select count(distinct m.id) into found_count
  from realtime.messages m
  where m.id = any (record_realtime_delivery.message_ids)
    and m.topic = record_realtime_delivery.topic
    and m.extension = 'broadcast'
    and m.private;
  if found_count <> wanted then
    raise exception 'message_ids must name private broadcasts of this topic' using errcode = '22023';
  end if;

  perform audit.record_phi_access(subject, 'coach_interactions:realtime', found_count, 'realtime');
  return 1;
end;
$$;
comment on function private.record_realtime_delivery(text, uuid[]) is $$
Records that the caller received these broadcast messages of a Realtime topic; called by the
Realtime server as the subscriber before it sends them. For coach_interactions:<user id>: the
user's own receipt records nothing (returns 0); the assigned coach's or the service role's
records one audit.phi_access_log row (resource coach_interactions:realtime, purpose realtime,
row_count = messages) and returns 1; anyone else gets 42501. Other topics: returns 0.
Parameters: topic (without realtime:), message_ids (1..1000 ids of realtime.messages rows).
Example: select private.record_realtime_delivery('coach_interactions:' || auth.uid(), array[id]);
$$;
revoke execute on function private.record_realtime_delivery(text, uuid[]) from public, anon;
grant execute on function private.record_realtime_delivery(text, uuid[]) to authenticated, service_role;
