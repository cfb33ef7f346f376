-- Purpose: make the JSON bounds cheap for the common small value (issue 15). Every interaction
-- is checked four times on the batch path (content and metadata, in the function and in the
-- table's trigger), and each check parsed four jsonpaths and ran four path queries: about
-- 0.1 ms a call, most of a batch item's cost. A value whose JSON text is short enough cannot
-- break any limit, and that is decided from the text alone:
--  * values: each value takes at least one character of the text, so a text of at most
--    max_values bytes has at most max_values values;
--  * strings and keys: each is shorter than the text, so a text of at most max_string_chars
--    bytes has none longer;
--  * depth: a value nested at level max_depth needs max_depth containers around it, each
--    opened by a { or [ in the text (those inside strings only add to the count), so fewer
--    than max_depth of them means none is that deep;
--  * bytes: the text is at most max_bytes.
-- Any other value takes the full check, unchanged, with the same phrases.
-- Objects: functions private.json_limit_violation (body) and private.json_bound_violation
-- (now PL/pgSQL, same limits). Destructive: none.

create or replace function private.json_limit_violation(
  value jsonb, max_depth integer, max_values integer, max_string_chars integer, max_bytes integer
)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when json_limit_violation.value is null then null
    -- The short-text fast path (see the migration's comment for why it is exact).
    when octet_length(t.text) <= least(json_limit_violation.max_values, json_limit_violation.max_string_chars, json_limit_violation.max_bytes)
         and octet_length(t.text) - octet_length(translate(t.text, '{[', '')) < json_limit_violation.max_depth
      then null
    else (
      with paths as (
        select format('strict $.**{%s}', json_limit_violation.max_depth)::jsonpath as too_deep,
               format('strict $.**{0 to %s}', json_limit_violation.max_depth - 1)::jsonpath as every_value,
               format('strict $.**{0 to %s} ? (@.type() == "string")', json_limit_violation.max_depth - 1)::jsonpath as every_string,
               format('strict $.**{0 to %s} ? (@.type() == "object").keyvalue().key', json_limit_violation.max_depth - 1)::jsonpath as every_key
      )
      select case
        when octet_length(t.text) > json_limit_violation.max_bytes
          then format('is larger than %s bytes', json_limit_violation.max_bytes)
        when jsonb_path_exists(json_limit_violation.value, p.too_deep)
          then format('is nested deeper than %s levels', json_limit_violation.max_depth)
        when (select count(*) from jsonb_path_query(json_limit_violation.value, p.every_value)) > json_limit_violation.max_values
          then format('has more than %s values', json_limit_violation.max_values)
        when exists (select 1 from jsonb_path_query(json_limit_violation.value, p.every_string) v
                     where char_length(v #>> '{}') > json_limit_violation.max_string_chars)
          then format('has a string longer than %s characters', json_limit_violation.max_string_chars)
        when exists (select 1 from jsonb_path_query(json_limit_violation.value, p.every_key) k
                     where char_length(k #>> '{}') > json_limit_violation.max_string_chars)
          then format('has a key longer than %s characters', json_limit_violation.max_string_chars)
      end
      from paths p)
  end
  from (select json_limit_violation.value::text as text) as t
$$;

-- The limits per kind, unchanged, now in PL/pgSQL: as a SQL function (with its SET clause it
-- is never inlined) every call set up and planned json_limit_violation's query afresh, about
-- 0.2 ms a call; PL/pgSQL keeps that expression prepared for the session.
create or replace function private.json_bound_violation(kind text, value jsonb)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  return case json_bound_violation.kind
    -- A message: {"text": ...} and whatever structure the app adds.
    when 'interaction_content' then private.json_limit_violation(json_bound_violation.value, 32, 2000, 32768, 65536)
    when 'interaction_metadata' then private.json_limit_violation(json_bound_violation.value, 32, 500, 8192, 16384)
    when 'event_payload' then private.json_limit_violation(json_bound_violation.value, 32, 500, 8192, 16384)
    when 'stage_responses' then private.json_limit_violation(json_bound_violation.value, 16, 1000, 4000, 65536)
    when 'profile_preferences' then private.json_limit_violation(json_bound_violation.value, 16, 200, 2000, 16384)
  end;
end;
$$;
