-- Purpose: the JSON bounds' short-text fast path (20261125000200) decided in
-- private.json_bound_violation itself (issue 15, batch speed). It ran inside
-- private.json_limit_violation, a SQL function with its own search_path that PostgreSQL
-- cannot inline, so every call paid for that function's setup even when the text alone
-- decided it: about 14 us a call, four calls per interaction on the batch path (content and
-- metadata, in log_coach_interactions and again in the table's trigger). Decided here in
-- PL/pgSQL, a short value costs a few simple expressions; any other value goes on to
-- json_limit_violation, unchanged (it repeats the same test and then runs the full check).
-- The limits per kind are unchanged; pgTAP 58 still proves the fast path exact.
-- Objects: function private.json_bound_violation (body). Destructive: none.

create or replace function private.json_bound_violation(kind text, value jsonb)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  -- max_depth, max_values, max_string_chars, max_bytes of each kind.
  limits integer[] := case json_bound_violation.kind
    -- A message: {"text": ...} and whatever structure the app adds.
    when 'interaction_content' then array[32, 2000, 32768, 65536]
    when 'interaction_metadata' then array[32, 500, 8192, 16384]
    when 'event_payload' then array[32, 500, 8192, 16384]
    when 'stage_responses' then array[16, 1000, 4000, 65536]
    when 'profile_preferences' then array[16, 200, 2000, 16384]
  end;
  text_ text;
begin
  if limits is null or json_bound_violation.value is null then
    return null;
  end if;
  -- json_limit_violation's short-text fast path (20261125000200 says why it is exact).
  text_ := json_bound_violation.value::text;
  if octet_length(text_) <= least(limits[2], limits[3], limits[4])
     and octet_length(text_) - octet_length(translate(text_, '{[', '')) < limits[1] then
    return null;
  end if;
  return private.json_limit_violation(json_bound_violation.value, limits[1], limits[2], limits[3], limits[4]);
end;
$$;
