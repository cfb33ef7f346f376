-- Purpose: erasure must not fail on old rows, and a bound is judged once, at insert.
-- 20261124040100 lets erasure clear session_id on rows of other users that cite an erased
-- session. That update re-judges the old row by every CHECK constraint, the NOT VALID ones
-- too, and the rows that can cite another user's session are exactly the old ones, which
-- may break the bounds added since (20261124010100, 20261124040000): erasure would fail on
-- them. On the two append-only tables the bounds (content, metadata, payload, category)
-- move from CHECK constraints to a BEFORE INSERT trigger with the same names and messages:
-- every new row is judged as before, by any write path, and no row is ever judged twice.
-- (The same holds for profiles.preferences, which stays a NOT VALID CHECK constraint: a
-- profile whose stored preferences passed the old key count and break the value count of
-- 20261124040000 gets 422 naming preferences on its next update until they are fixed.)
-- 20261124040100, as it landed, already makes this change; this migration re-asserts it
-- and is re-runnable, so a database migrated from either revision of 040100 (one
-- development revision left it out) ends in the same state.
-- Objects: function private.trigger_check_append_only_bounds and its triggers
-- coach_interactions_check_bounds, interaction_events_check_bounds; constraints
-- coach_interactions_content_bounded, coach_interactions_metadata_bounded,
-- interaction_events_payload_bounded, interaction_events_category_format (dropped: now the
-- trigger). Destructive: none.

-- The bounds of new rows on the append-only tables, judged once, at insert.
create or replace function private.trigger_check_append_only_bounds()
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
  drop constraint if exists coach_interactions_content_bounded,
  drop constraint if exists coach_interactions_metadata_bounded;
alter table public.interaction_events
  drop constraint if exists interaction_events_payload_bounded,
  drop constraint if exists interaction_events_category_format;

drop trigger if exists coach_interactions_check_bounds on public.coach_interactions;
create trigger coach_interactions_check_bounds
  before insert on public.coach_interactions
  for each row execute function private.trigger_check_append_only_bounds();
drop trigger if exists interaction_events_check_bounds on public.interaction_events;
create trigger interaction_events_check_bounds
  before insert on public.interaction_events
  for each row execute function private.trigger_check_append_only_bounds();
