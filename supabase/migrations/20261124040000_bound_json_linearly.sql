-- Purpose: make the JSON bounds and redaction cheap for any value, however wide. The bounds
-- of 20261124010100 walked a document level by level in PL/pgSQL, appending each level to
-- an array: a 64 KiB array of 12,900 one-element arrays cost seconds (quadratic appends),
-- and counted only keys, so an array of thousands of scalars passed and then cost a
-- function call per element on every redacted read.
--  * private.json_limit_violation is now SQL/JSON path (jsonb_path_query, in C): linear in
--    the size of the value and never deeper than the depth bound. It counts values (every
--    object, array and scalar, the top one included) instead of keys, and still bounds
--    every string and every key, and the bytes of the JSON text.
--  * The value bounds (private.json_bound_violation): interaction_content 2,000 values
--    (was 1,000 keys), stage_responses 1,000 (was 500 keys); the others keep their numbers,
--    now counting values.
--  * private.redact_content replaces whole any stored value larger than any writable one
--    (over 64 KiB of JSON text or over 2,000 values) by {"text": "[REDACTED: ...]"}, so no
--    stored value can make a redacted read crawl, as 20261124010100 made sure none makes it
--    fail. Rows stored under the old key count with more than 2,000 values read this way.
-- The constraints of 20261124010100 call private.json_bound_violation and pick the new rule
-- up for every new row. They stay NOT VALID, but Postgres checks every constraint on any
-- UPDATE: a profile whose stored preferences passed the old key count and break the value
-- count (an array of 300 numbers, say) gets 422 naming preferences on its next update until
-- the preferences are fixed.
-- Objects: function private.json_limit_violation (dropped and created: its fourth
-- parameter is renamed max_values), functions private.json_bound_violation and
-- private.redact_content (bodies). Destructive: none.

drop function private.json_limit_violation(jsonb, integer, integer, integer, integer);

-- The first way value breaks the given limits, as a phrase ("is nested deeper than 32
-- levels"), or null when it is within them. Depth counts the top level as 1; values count
-- every object, array and scalar, the top one included; the limit on characters applies to
-- every string and every key.
create function private.json_limit_violation(
  value jsonb, max_depth integer, max_values integer, max_string_chars integer, max_bytes integer
)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  with paths as (
    select format('strict $.**{%s}', json_limit_violation.max_depth)::jsonpath as too_deep,
           format('strict $.**{0 to %s}', json_limit_violation.max_depth - 1)::jsonpath as every_value,
           format('strict $.**{0 to %s} ? (@.type() == "string")', json_limit_violation.max_depth - 1)::jsonpath as every_string,
           format('strict $.**{0 to %s} ? (@.type() == "object").keyvalue().key', json_limit_violation.max_depth - 1)::jsonpath as every_key
  )
  select case
    when json_limit_violation.value is null then null
    when octet_length(json_limit_violation.value::text) > json_limit_violation.max_bytes
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
  from paths p
$$;
comment on function private.json_limit_violation(jsonb, integer, integer, integer, integer) is
  'How value breaks the limits (depth: the top level is 1; values: every object, array and scalar; characters of any string or key; bytes of its JSON text), as a phrase, or null. Linear, and bounded in depth for any input.';
revoke execute on function private.json_limit_violation(jsonb, integer, integer, integer, integer) from public, anon;
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
    when 'interaction_content' then private.json_limit_violation(json_bound_violation.value, 32, 2000, 32768, 65536)
    when 'interaction_metadata' then private.json_limit_violation(json_bound_violation.value, 32, 500, 8192, 16384)
    when 'event_payload' then private.json_limit_violation(json_bound_violation.value, 32, 500, 8192, 16384)
    when 'stage_responses' then private.json_limit_violation(json_bound_violation.value, 16, 1000, 4000, 65536)
    when 'profile_preferences' then private.json_limit_violation(json_bound_violation.value, 16, 200, 2000, 16384)
  end
$$;
comment on function private.json_bound_violation(text, jsonb) is $$
The bounds of JSON written to Coach Ledger (depth / values / characters per string or key / bytes):
interaction_content 32 / 2,000 / 32,768 / 65,536; interaction_metadata and event_payload 32 / 500 / 8,192 / 16,384;
stage_responses 16 / 1,000 / 4,000 / 65,536; profile_preferences 16 / 200 / 2,000 / 16,384.
Returns how value breaks them, or null when it is within them.$$;

-- Redaction costs a function call per value, so a value with more values than any writable
-- document is not walked at all: it is replaced whole. The count is SQL/JSON path's, in C,
-- and stops at the depth bound (deeper values are replaced by _redact_content_at).
create or replace function private.redact_content(content jsonb, names text[] default '{}')
returns jsonb
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when redact_content.content is null then null
    when octet_length(redact_content.content::text) > 65536
      or (select count(*) from jsonb_path_query(redact_content.content, 'strict $.**{0 to 31}')) > 2000
      then jsonb_build_object('text', '[REDACTED: larger than any value written within the bounds]')
    else private._redact_content_at(redact_content.content, redact_content.names, 1)
  end
$$;
comment on function private.redact_content(jsonb, text[]) is
  'Applies private.redact_phi to every string in a JSON value, keeping its structure and keys. Bounded for any stored value: a value over 64 KiB or 2,000 values is replaced whole by {"text": "[REDACTED: ...]"}, and anything nested deeper than 32 levels by a placeholder string, so no stored value can make a read fail or crawl.';
