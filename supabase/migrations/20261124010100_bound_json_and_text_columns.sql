-- Purpose: no stored value can break a later read, and nothing a user writes is unbounded.
-- A single JSON document nested 1,500 levels deep (9 KB) used to be accepted by
-- log_coach_interaction and then broke every redacted read of it (stack depth exceeded in
-- the recursive redaction), including every query of the analysts' views.
--  * private.json_bound_violation(kind, value) is the one rule for the JSON that users and
--    services write: per kind, a depth, a total key count, a string length and a total size
--    (of the JSON text). It walks the document level by level (no recursion), so any value,
--    however deep, is judged in bounded stack.
--  * Named CHECK constraints apply it to interaction content and metadata, event payloads,
--    stage responses and profile preferences, and bound the free-text columns users write.
--  * Redaction is depth-bounded: below the write limit's depth nothing legitimate exists, and
--    a subtree stored before these bounds (or through any other path) is replaced by a
--    placeholder instead of being recursed into, so redacted reads and the analytics views
--    never fail on a stored value.
-- The constraints are added NOT VALID: rows stored before them (coach_interactions and
-- interaction_events are append-only and cannot be fixed) stay readable; every new or
-- updated row is checked.
-- Objects: functions private.json_bound_violation, private.json_limit_violation,
-- private._redact_content_at, private.redact_content (body); constraints on
-- coach_interactions, interaction_events, stage_responses, profiles, action_plans,
-- milestones, coaching_sessions. Destructive: none.

-- The first way value breaks the given limits, as a phrase ("is nested deeper than 32
-- levels"), or null when it is within them. Breadth-first, one level at a time.
create or replace function private.json_limit_violation(
  value jsonb, max_depth integer, max_keys integer, max_string_chars integer, max_bytes integer
)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  level jsonb[];
  next_level jsonb[];
  v jsonb;
  depth integer := 1;
  keys bigint := 0;
  longest integer;
begin
  if value is null then
    return null;
  end if;
  if octet_length(value::text) > json_limit_violation.max_bytes then
    return format('is larger than %s bytes', json_limit_violation.max_bytes);
  end if;
  level := array[value];
  loop
    next_level := '{}';
    foreach v in array level loop
      case jsonb_typeof(v)
        when 'object' then
          keys := keys + (select count(*) from jsonb_object_keys(v));
          select max(char_length(k)) into longest from jsonb_object_keys(v) k;
          if longest > json_limit_violation.max_string_chars then
            return format('has a key longer than %s characters', json_limit_violation.max_string_chars);
          end if;
          next_level := next_level || array(select e.value from jsonb_each(v) e);
        when 'array' then
          next_level := next_level || array(select e from jsonb_array_elements(v) e);
        when 'string' then
          if char_length(v #>> '{}') > json_limit_violation.max_string_chars then
            return format('has a string longer than %s characters', json_limit_violation.max_string_chars);
          end if;
        else
          null;
      end case;
    end loop;
    if keys > json_limit_violation.max_keys then
      return format('has more than %s keys', json_limit_violation.max_keys);
    end if;
    exit when cardinality(next_level) = 0;
    depth := depth + 1;
    if depth > json_limit_violation.max_depth then
      return format('is nested deeper than %s levels', json_limit_violation.max_depth);
    end if;
    level := next_level;
  end loop;
  return null;
end;
$$;
comment on function private.json_limit_violation(jsonb, integer, integer, integer, integer) is
  'How value breaks the limits (depth: the top level is 1; total keys; characters of any string or key; bytes of its JSON text), as a phrase, or null. Iterative: bounded stack for any input.';
grant execute on function private.json_limit_violation(jsonb, integer, integer, integer, integer) to authenticated, service_role;

-- The limits, per kind of document. The one place they are written down.
create or replace function private.json_bound_violation(kind text, value jsonb)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case json_bound_violation.kind
    -- A message: {"text": ...} and whatever structure the app adds.
    when 'interaction_content' then private.json_limit_violation(json_bound_violation.value, 32, 1000, 32768, 65536)
    when 'interaction_metadata' then private.json_limit_violation(json_bound_violation.value, 32, 500, 8192, 16384)
    when 'event_payload' then private.json_limit_violation(json_bound_violation.value, 32, 500, 8192, 16384)
    when 'stage_responses' then private.json_limit_violation(json_bound_violation.value, 16, 500, 4000, 65536)
    when 'profile_preferences' then private.json_limit_violation(json_bound_violation.value, 16, 200, 2000, 16384)
  end
$$;
comment on function private.json_bound_violation(text, jsonb) is $$
The bounds of JSON written to Coach Ledger (depth / total keys / characters per string / bytes):
interaction_content 32 / 1,000 / 32,768 / 65,536; interaction_metadata and event_payload 32 / 500 / 8,192 / 16,384;
stage_responses 16 / 500 / 4,000 / 65,536; profile_preferences 16 / 200 / 2,000 / 16,384.
Returns how value breaks them, or null when it is within them.$$;
grant execute on function private.json_bound_violation(text, jsonb) to authenticated, service_role;

alter table public.coach_interactions
  add constraint coach_interactions_content_bounded
    check (private.json_bound_violation('interaction_content', content) is null) not valid,
  add constraint coach_interactions_metadata_bounded
    check (private.json_bound_violation('interaction_metadata', metadata) is null) not valid;
alter table public.interaction_events
  add constraint interaction_events_payload_bounded
    check (private.json_bound_violation('event_payload', payload) is null) not valid;
alter table public.stage_responses
  add constraint stage_responses_responses_bounded
    check (private.json_bound_violation('stage_responses', responses) is null) not valid;
alter table public.profiles
  add constraint profiles_preferences_bounded
    check (private.json_bound_violation('profile_preferences', preferences) is null) not valid;

-- Free text users write, bounded (titles, themes and display names already are).
alter table public.action_plans
  add constraint action_plans_description_length check (description is null or char_length(description) <= 4000) not valid,
  add constraint action_plans_goal_statement_length check (goal_statement is null or char_length(goal_statement) <= 1000) not valid;
alter table public.milestones
  add constraint milestones_description_length check (description is null or char_length(description) <= 4000) not valid;
alter table public.coaching_sessions
  add constraint coaching_sessions_summary_length check (summary is null or char_length(summary) <= 65536) not valid,
  add constraint coaching_sessions_summary_data_bounded
    check (private.json_bound_violation('interaction_content', summary_data) is null) not valid;
alter table public.interaction_events
  add constraint interaction_events_category_format check (category is null or category !~ '[[:cntrl:]]') not valid;

-- Redaction, depth-bounded: a value deeper than any writable one (the write bound is 32) is
-- not recursed into but replaced, so no stored value can exhaust the stack of a reader.
create or replace function private._redact_content_at(content jsonb, names text[], depth integer)
returns jsonb
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when _redact_content_at.depth > 32 then to_jsonb('[REDACTED: nested deeper than 32 levels]'::text)
    else case jsonb_typeof(_redact_content_at.content)
      when 'string' then to_jsonb(private.redact_phi(_redact_content_at.content #>> '{}', _redact_content_at.names))
      when 'object' then coalesce(
        (select jsonb_object_agg(e.key, private._redact_content_at(e.value, _redact_content_at.names, _redact_content_at.depth + 1))
         from jsonb_each(_redact_content_at.content) e), '{}'::jsonb)
      when 'array' then coalesce(
        (select jsonb_agg(private._redact_content_at(e.value, _redact_content_at.names, _redact_content_at.depth + 1) order by e.ord)
         from jsonb_array_elements(_redact_content_at.content) with ordinality e(value, ord)), '[]'::jsonb)
      else _redact_content_at.content
    end
  end
$$;
comment on function private._redact_content_at(jsonb, text[], integer) is
  'Internal: redact_content at a given depth (the top level is 1); a value below depth 32 becomes the string [REDACTED: nested deeper than 32 levels].';
grant execute on function private._redact_content_at(jsonb, text[], integer) to authenticated, service_role;

create or replace function private.redact_content(content jsonb, names text[] default '{}')
returns jsonb
language sql
immutable
parallel safe
set search_path = ''
as $$
  select private._redact_content_at(redact_content.content, redact_content.names, 1)
$$;
comment on function private.redact_content(jsonb, text[]) is
  'Applies private.redact_phi to every string in a JSON value, keeping its structure and keys; anything nested deeper than 32 levels (more than any writable value) is replaced by a placeholder string, so no stored value can make a read fail.';
