-- Purpose: broadcast new interactions with one insert per statement instead of one
-- realtime.send per row (issue 15). The row trigger cost about 1 ms a row, most of it the
-- subtransaction realtime.send opens for every call. The messages are the ones
-- realtime.broadcast_changes wrote, one per row: topic coach_interactions:<user_id>, event
-- INSERT, private, extension broadcast, payload {old_record: null, record, operation,
-- table, schema, id}. A failure still never loses the interactions: it becomes a WARNING,
-- as in realtime.send, with one subtransaction per statement.
-- Objects: function private.trigger_broadcast_coach_interactions() (new);
-- trigger coach_interactions_broadcast replaced (per statement, with the inserted rows as
-- a transition table); function private.trigger_broadcast_coach_interaction() dropped.
-- Destructive: the per-row trigger function is dropped (nothing else uses it).

create or replace function private.trigger_broadcast_coach_interactions()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: realtime.messages is written as the function's owner (postgres, which
  -- bypasses RLS there, as on Supabase), whoever inserted the interactions.
  begin
    insert into realtime.messages (topic, extension, event, private, payload)
    select 'coach_interactions:' || n.user_id::text, 'broadcast', 'INSERT', true,
           jsonb_build_object('old_record', null, 'record', to_jsonb(n), 'operation', 'INSERT',
                              'table', 'coach_interactions', 'schema', 'public', 'id', gen_random_uuid())
    from new_rows n;
  exception when others then
    -- A failed broadcast must never abort the writer's transaction (realtime.send's rule).
    raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
  return null;
end;
$$;
comment on function private.trigger_broadcast_coach_interactions() is
  'Statement trigger on coach_interactions: one private broadcast per new row on coach_interactions:<user_id>, in one insert.';
revoke execute on function private.trigger_broadcast_coach_interactions() from public, anon, authenticated;

drop trigger coach_interactions_broadcast on public.coach_interactions;
create trigger coach_interactions_broadcast
  after insert on public.coach_interactions
  referencing new table as new_rows
  for each statement execute function private.trigger_broadcast_coach_interactions();

drop function private.trigger_broadcast_coach_interaction();
