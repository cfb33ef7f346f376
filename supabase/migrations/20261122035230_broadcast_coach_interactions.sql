-- Purpose: push each new interaction on its user's private realtime channel
-- `coach_interactions:<user_id>` (Broadcast from Database), readable only by that user
-- and their assigned coach.
-- Objects: functions private.trigger_broadcast_coach_interaction,
-- private.can_read_interaction_topic; trigger on public.coach_interactions; policy on
-- realtime.messages. Destructive: none.

create or replace function private.trigger_broadcast_coach_interaction()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Security definer: realtime.send inserts into realtime.messages, which the writing role
  -- may not be allowed to do under RLS (and realtime.send would then only warn).
  perform realtime.broadcast_changes(
    'coach_interactions:' || new.user_id::text, tg_op, tg_op, tg_table_name, tg_table_schema, new, null);
  return null;
end;
$$;
comment on function private.trigger_broadcast_coach_interaction() is
  'Trigger on coach_interactions: broadcasts the new row on the private topic coach_interactions:<user_id>.';
revoke execute on function private.trigger_broadcast_coach_interaction() from public, anon, authenticated;

create trigger coach_interactions_broadcast
  after insert on public.coach_interactions
  for each row execute function private.trigger_broadcast_coach_interaction();

-- Whether the caller may join a topic: their own interaction topic or a client's.
create or replace function private.can_read_interaction_topic(topic text)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
  subject uuid;
begin
  if topic is null or topic !~ '^coach_interactions:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return false;
  end if;
  subject := substr(topic, char_length('coach_interactions:') + 1)::uuid;
  return subject = (select auth.uid()) or private.is_assigned_coach(subject);
end;
$$;
comment on function private.can_read_interaction_topic(text) is
  'True when topic is coach_interactions:<id> and the caller is that user or their assigned coach.';
grant execute on function private.can_read_interaction_topic(text) to authenticated;

create policy "Interaction broadcasts are receivable by the user and their coach"
  on realtime.messages for select to authenticated
  using (extension = 'broadcast' and private.can_read_interaction_topic((select realtime.topic())));
