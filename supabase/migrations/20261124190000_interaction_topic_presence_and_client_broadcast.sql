-- Purpose: a client and their assigned coach may also use the client's private topic
-- `coach_interactions:<user_id>` for Presence (who is online) and for broadcasts they send
-- each other (typing indicators). Realtime authorizes both with policies on
-- realtime.messages: a private channel's presence read is a SELECT of a probe row with
-- extension 'presence'; a client's first broadcast or presence track is an INSERT of a
-- row with extension 'broadcast' or 'presence' as the user, rolled back. Client broadcasts
-- are not stored (no row survives the check) and carry whatever the sender put in them, so
-- an app trusts only the database's `INSERT` broadcasts for interactions. The write policy
-- admits only the row Realtime's check inserts (no event, no payload): no path that
-- commits a user's insert (a persisted broadcast, realtime.send as the user) can store a
-- message that looks like the database's.
-- Objects: two policies on realtime.messages. Destructive: none.

create policy "Interaction topic presence: the user and their coach"
  on realtime.messages for select to authenticated
  using (extension = 'presence' and private.can_read_interaction_topic((select realtime.topic())));
comment on policy "Interaction topic presence: the user and their coach" on realtime.messages is
  'Realtime''s presence read check on coach_interactions:<user_id>: that user and their assigned coach.';

create policy "Interaction topic sends: the user and their coach"
  on realtime.messages for insert to authenticated
  with check (
    extension in ('broadcast', 'presence')
    and event is null
    and payload is null
    and topic = (select realtime.topic())
    and private.can_read_interaction_topic((select realtime.topic()))
  );
comment on policy "Interaction topic sends: the user and their coach" on realtime.messages is
  'Realtime''s write check on coach_interactions:<user_id> (client broadcasts and presence track): that user and their assigned coach.';
