-- The JSON bounds' fast path (migration 20261125000200) answers exactly as the full check:
-- private.json_limit_violation against a copy of the full check, over values built around
-- every limit with small limits (so that short texts reach them), and the documented
-- phrases for the real kinds.
begin;
select plan(6);

-- The full check as 20261124040000 wrote it (no fast path).
create function pg_temp.full_check(value jsonb, max_depth integer, max_values integer, max_string_chars integer, max_bytes integer)
returns text language sql immutable as $$
  with paths as (
    select format('strict $.**{%s}', max_depth)::jsonpath as too_deep,
           format('strict $.**{0 to %s}', max_depth - 1)::jsonpath as every_value,
           format('strict $.**{0 to %s} ? (@.type() == "string")', max_depth - 1)::jsonpath as every_string,
           format('strict $.**{0 to %s} ? (@.type() == "object").keyvalue().key', max_depth - 1)::jsonpath as every_key
  )
  select case
    when value is null then null
    when octet_length(value::text) > max_bytes then format('is larger than %s bytes', max_bytes)
    when jsonb_path_exists(value, p.too_deep) then format('is nested deeper than %s levels', max_depth)
    when (select count(*) from jsonb_path_query(value, p.every_value)) > max_values then format('has more than %s values', max_values)
    when exists (select 1 from jsonb_path_query(value, p.every_string) v where char_length(v #>> '{}') > max_string_chars)
      then format('has a string longer than %s characters', max_string_chars)
    when exists (select 1 from jsonb_path_query(value, p.every_key) k where char_length(k #>> '{}') > max_string_chars)
      then format('has a key longer than %s characters', max_string_chars)
  end
  from paths p
$$;

-- Values around the limits: nested arrays and objects of depth 1 to 8, arrays of 1 to 12
-- scalars, strings and keys of 1 to 12 characters, and all of them as JSON text of every size.
create temporary table samples as
select v from (
  select (repeat('[', d) || '1' || repeat(']', d))::jsonb as v from generate_series(1, 8) d
  union all select (repeat('{"a":', d) || '1' || repeat('}', d))::jsonb from generate_series(1, 8) d
  union all select (select jsonb_agg(k) from generate_series(1, n) k) from generate_series(1, 12) n
  union all select to_jsonb(repeat('x', n)) from generate_series(1, 12) n
  union all select jsonb_build_object(repeat('k', n), 1) from generate_series(1, 12) n
  union all select jsonb_build_object('t', repeat('é', n)) from generate_series(1, 12) n
  union all select '{"a": "[[[["}'::jsonb union all select '"{"'::jsonb union all select 'null'::jsonb union all select '[]'::jsonb
) s;

select is(
  (select count(*)::int from samples, (values (3, 5, 4, 100), (4, 12, 6, 40), (2, 3, 3, 10), (8, 20, 12, 30)) as l(d, n, c, b)
   where private.json_limit_violation(v, d, n, c, b) is distinct from pg_temp.full_check(v, d, n, c, b)),
  0, 'The fast path answers as the full check for every sample under four sets of small limits');
select ok((select count(*) from samples, (values (3, 5, 4, 100)) as l(d, n, c, b) where pg_temp.full_check(v, d, n, c, b) is not null) > 20,
  'The samples break the small limits in many ways (the comparison is not vacuous)');
select ok((select count(*) from samples where octet_length(v::text) <= 4 and octet_length(v::text) - octet_length(translate(v::text, '{[', '')) < 3) > 3,
  'and some of them take the fast path');

-- The real kinds keep their phrases.
select is(private.json_bound_violation('interaction_content', '{"text": "Walked 20 minutes"}'), null, 'A short message is within bounds');
select is(private.json_bound_violation('interaction_content', (repeat('[', 40) || repeat(']', 40))::jsonb), 'is nested deeper than 32 levels',
  'A deep value is still refused with its phrase');
select is(private.json_bound_violation('interaction_metadata', (select jsonb_agg(k) from generate_series(1, 600) k)), 'has more than 500 values',
  'A wide value is still refused with its phrase');

select * from finish();
rollback;
