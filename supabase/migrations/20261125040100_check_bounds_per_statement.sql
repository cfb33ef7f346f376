-- Purpose: the append-only tables' bounds are checked once per statement instead of once
-- per row (issue 15, batch speed). The row trigger turned each whole new row into jsonb and
-- ran a PL/pgSQL trigger for it: 1.7 ms of a 13 ms batch of 100 interactions, measured on
-- the dev database with the trigger on and off. Now an AFTER INSERT statement trigger reads
-- the inserted rows (a transition table) and checks only the bounded columns, with the same
-- error: SQLSTATE 23514, 'new row for relation "<table>" violates check constraint "<name>"',
-- the constraint, table and schema, and for a JSON bound the detail '<column> <problem>'.
-- The first row breaking a bound is named, and its first bound, in the row trigger's order
-- (content, then metadata; payload, then category). Being an AFTER trigger, it runs after the
-- table's CHECK constraints and foreign keys: a row breaking one of those and a bound is now
-- refused for the former. The triggers keep their names (tests and benchmarks switch them off
-- by name).
-- Objects: functions private.trigger_check_interaction_bounds() and
-- private.trigger_check_event_bounds() (new, one per table, so that plpgsql_check can check
-- each against its table); triggers coach_interactions_check_bounds and
-- interaction_events_check_bounds replaced (per statement); function
-- private.trigger_check_append_only_bounds() dropped.
-- Destructive: the row trigger function is dropped (nothing else uses it).

create or replace function private.trigger_check_interaction_bounds()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  bad record;
begin
  select c.constraint_name, c.field, c.problem into bad
  from new_rows n
  cross join lateral (values
    ('coach_interactions_content_bounded', 'content', private.json_bound_violation('interaction_content', n.content)),
    ('coach_interactions_metadata_bounded', 'metadata', private.json_bound_violation('interaction_metadata', n.metadata))
  ) as c(constraint_name, field, problem)
  where c.problem is not null
  limit 1;
  if bad.constraint_name is not null then
    raise exception 'new row for relation "%" violates check constraint "%"', tg_table_name, bad.constraint_name
      using errcode = '23514', constraint = bad.constraint_name, table = tg_table_name, schema = tg_table_schema,
            detail = bad.field || ' ' || bad.problem;
  end if;
  return null;
end;
$$;
comment on function private.trigger_check_interaction_bounds() is
  'Statement trigger on coach_interactions: refuses an insert whose rows break the JSON bounds of content or metadata (private.json_bound_violation).';
revoke execute on function private.trigger_check_interaction_bounds() from public, anon, authenticated;

create or replace function private.trigger_check_event_bounds()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  bad record;
begin
  select c.constraint_name, c.field, c.problem into bad
  from new_rows n
  cross join lateral (values
    ('interaction_events_payload_bounded', 'payload', private.json_bound_violation('event_payload', n.payload)),
    -- A control character in the category: the problem is the empty string (no detail).
    ('interaction_events_category_format', 'category', case when n.category ~ '[[:cntrl:]]' then '' end)
  ) as c(constraint_name, field, problem)
  where c.problem is not null
  limit 1;
  if bad.problem = '' then
    raise exception 'new row for relation "%" violates check constraint "%"', tg_table_name, bad.constraint_name
      using errcode = '23514', constraint = bad.constraint_name, table = tg_table_name, schema = tg_table_schema;
  elsif bad.constraint_name is not null then
    raise exception 'new row for relation "%" violates check constraint "%"', tg_table_name, bad.constraint_name
      using errcode = '23514', constraint = bad.constraint_name, table = tg_table_name, schema = tg_table_schema,
            detail = bad.field || ' ' || bad.problem;
  end if;
  return null;
end;
$$;
comment on function private.trigger_check_event_bounds() is
  'Statement trigger on interaction_events: refuses an insert whose rows break the JSON bounds of payload (private.json_bound_violation) or put a control character in category.';
revoke execute on function private.trigger_check_event_bounds() from public, anon, authenticated;

drop trigger coach_interactions_check_bounds on public.coach_interactions;
create trigger coach_interactions_check_bounds
  after insert on public.coach_interactions
  referencing new table as new_rows
  for each statement execute function private.trigger_check_interaction_bounds();

drop trigger interaction_events_check_bounds on public.interaction_events;
create trigger interaction_events_check_bounds
  after insert on public.interaction_events
  referencing new table as new_rows
  for each statement execute function private.trigger_check_event_bounds();

drop function private.trigger_check_append_only_bounds();
