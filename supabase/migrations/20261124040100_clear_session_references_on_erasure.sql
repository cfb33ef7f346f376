-- Purpose: erasing a user must neither fail on, nor delete, another user's rows. Before
-- 20261124010200 checked that a session reference names one of the caller's own sessions,
-- Lea could log an interaction or event citing Max's session. Erasing Max then either
-- deleted Lea's row with his session (on delete cascade: a user's data lost to someone
-- else's erasure) or, since the append-only guard refuses deletes of a user not being
-- erased, failed outright: Max could not be erased.
--  * The two session references (coach_interactions.session_id, interaction_events.
--    session_id) become on delete set null: the row stays, without the reference.
--  * private.erased_sessions records, with the transaction, the sessions of each user being
--    erased (private.trigger_register_erasure, on auth.users delete).
--  * private.trigger_refuse_change allows one update: in that transaction, clearing the
--    session_id of a row that referenced one of those sessions and changing nothing else.
--    Deleting a session in any other way is still refused while rows reference it.
--  * That update would re-judge the old row by every CHECK constraint, the NOT VALID ones
--    too, and the rows that can cite another user's session are exactly the old ones, which
--    may break the bounds added since (20261124010100): erasure would fail on them. On the
--    two append-only tables the bounds (content, metadata, payload, category) move from
--    CHECK constraints to a BEFORE INSERT trigger with the same names and messages: every
--    new row is judged as before, by any write path, and no row is ever judged twice.
-- Objects: table private.erased_sessions; functions private.trigger_register_erasure and
-- private.trigger_refuse_change (bodies), private.trigger_check_append_only_bounds and its
-- triggers; constraints coach_interactions_session_id_fkey and
-- interaction_events_session_id_fkey (dropped and added NOT VALID, on delete set null);
-- constraints coach_interactions_content_bounded, coach_interactions_metadata_bounded,
-- interaction_events_payload_bounded, interaction_events_category_format (dropped: now the
-- trigger). Destructive: none (rows are kept where a cascade removed them before).

create table private.erased_sessions (
  session_id uuid not null,
  xact_id xid8 not null default pg_current_xact_id(),
  primary key (session_id, xact_id)
);
revoke all on private.erased_sessions from public, anon, authenticated, service_role;
comment on table private.erased_sessions is
  'The coaching sessions of users being erased, with the erasing transaction: rows of others that reference them may lose the reference in that transaction, and in no other.';

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
  insert into private.erased_sessions (session_id)
  select s.id from public.coaching_sessions s where s.user_id = old.id
  on conflict do nothing;
  return old;
end;
$$;
comment on function private.trigger_register_erasure() is
  'Trigger on auth.users: records the erasure of the deleted user and of their coaching sessions for this transaction, so the cascade may remove their append-only rows and clear others'' references to their sessions.';

create or replace function private.trigger_refuse_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- The deletes allowed: the rows of a user whose erasure this transaction registered (the
  -- cascade from deleting their auth.users row). Tables without a user_id (the audit log)
  -- never qualify.
  if tg_op = 'DELETE' and exists (
    select 1 from private.user_erasures e
    where e.user_id = (to_jsonb(old) ->> 'user_id')::uuid and e.xact_id = pg_current_xact_id()
  ) then
    return old;
  end if;
  -- The one update allowed: in a transaction that erases a user, a row of someone else
  -- that referenced one of the erased user's sessions loses the reference as the session
  -- goes (on delete set null), and nothing else about the row changes.
  if tg_op = 'UPDATE'
     and (to_jsonb(old) ->> 'session_id') is not null
     and to_jsonb(new) = to_jsonb(old) || jsonb_build_object('session_id', null)
     and exists (select 1 from private.erased_sessions e
                 where e.session_id = (to_jsonb(old) ->> 'session_id')::uuid and e.xact_id = pg_current_xact_id()) then
    return new;
  end if;
  raise exception '% is append-only: rows cannot be updated or deleted', tg_table_schema || '.' || tg_table_name
    using errcode = '42501',
          hint = 'Rows leave only when their user is erased (their auth.users row deleted).';
end;
$$;
comment on function private.trigger_refuse_change() is
  'Trigger function for append-only tables: refuses UPDATE, TRUNCATE and DELETE, except, in the transaction that erases a user, the deletion of that user''s rows and the clearing of another row''s reference to a session the erasure removed.';

-- NOT VALID: existing rows are not re-checked (rows logged before the reference checks stay).
alter table public.coach_interactions drop constraint coach_interactions_session_id_fkey;
alter table public.coach_interactions
  add constraint coach_interactions_session_id_fkey foreign key (session_id)
  references public.coaching_sessions (id) on delete set null not valid;

alter table public.interaction_events drop constraint interaction_events_session_id_fkey;
alter table public.interaction_events
  add constraint interaction_events_session_id_fkey foreign key (session_id)
  references public.coaching_sessions (id) on delete set null not valid;

-- The bounds of new rows on the append-only tables, judged once, at insert.
create function private.trigger_check_append_only_bounds()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  row_json jsonb := to_jsonb(new);
  checks text[][] := case tg_table_name
    when 'coach_interactions' then array[['interaction_content', 'content', 'coach_interactions_content_bounded'],
                                         ['interaction_metadata', 'metadata', 'coach_interactions_metadata_bounded']]
    when 'interaction_events' then array[['event_payload', 'payload', 'interaction_events_payload_bounded']]
  end;
  c text[];
begin
  foreach c slice 1 in array checks loop
    if private.json_bound_violation(c[1], row_json -> c[2]) is not null then
      raise exception 'new row for relation "%" violates check constraint "%"', tg_table_name, c[3]
        using errcode = '23514', constraint = c[3], table = tg_table_name, schema = tg_table_schema,
              detail = c[2] || ' ' || private.json_bound_violation(c[1], row_json -> c[2]);
    end if;
  end loop;
  if tg_table_name = 'interaction_events' and (row_json ->> 'category') ~ '[[:cntrl:]]' then
    raise exception 'new row for relation "%" violates check constraint "%"', tg_table_name, 'interaction_events_category_format'
      using errcode = '23514', constraint = 'interaction_events_category_format', table = tg_table_name, schema = tg_table_schema;
  end if;
  return new;
end;
$$;
comment on function private.trigger_check_append_only_bounds() is
  'Trigger on coach_interactions and interaction_events (before insert): the JSON bounds (private.json_bound_violation) and the category format, raised as the CHECK constraints they replace would be (23514, same constraint names).';
revoke execute on function private.trigger_check_append_only_bounds() from public, anon, authenticated;

alter table public.coach_interactions
  drop constraint coach_interactions_content_bounded,
  drop constraint coach_interactions_metadata_bounded;
alter table public.interaction_events
  drop constraint interaction_events_payload_bounded,
  drop constraint interaction_events_category_format;

create trigger coach_interactions_check_bounds
  before insert on public.coach_interactions
  for each row execute function private.trigger_check_append_only_bounds();
create trigger interaction_events_check_bounds
  before insert on public.interaction_events
  for each row execute function private.trigger_check_append_only_bounds();
