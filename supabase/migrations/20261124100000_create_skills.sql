-- Purpose: the skills catalogue (seed: Sprint SPR-003, "Skills API"; issue 10): what a
-- coaching session or an assessment can be about. Signed-in users read the active skills;
-- the service role writes the catalogue. A user's tracked skill is never stored by its id
-- next to them: functions keep only a keyed hash of it (issue 10, later migrations).
--  * public.skills: slug (a stable lowercase key), name, category, description,
--    rubric_version (the assessment rubric the skill is scored with), active.
--  * public.list_skills(category, limit): the active skills, by category and name.
-- Objects: table public.skills, its trigger, grants and policy; functions
-- private.checked_skill_limit, public.list_skills.
-- Destructive: none.

create table public.skills (
  id uuid primary key default gen_random_uuid(),
  slug text not null,
  name text not null,
  category text not null,
  description text,
  rubric_version integer not null default 1,
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint skills_slug_key unique (slug),
  constraint skills_slug_format check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(slug) <= 64),
  constraint skills_name_length check (char_length(btrim(name)) between 1 and 120),
  constraint skills_category_known check (category in ('communication', 'leadership', 'wellbeing', 'productivity', 'career', 'learning')),
  constraint skills_description_length check (description is null or char_length(description) <= 2000),
  constraint skills_rubric_version_range check (rubric_version between 1 and 1000)
);
alter table public.skills enable row level security;
comment on table public.skills is
  'The skills catalogue: slug, name, category (communication | leadership | wellbeing | productivity | career | learning), description, rubric_version, active. Signed-in users read active skills; the service role writes.';

create trigger skills_set_updated_at
  before update on public.skills
  for each row execute function private.trigger_set_updated_at();

grant select on public.skills to authenticated;
grant select, insert, update, delete on public.skills to service_role;

create policy "Active skills are viewable by signed-in users"
  on public.skills for select to authenticated
  using (active);

-- list_skills' checks, as the row limit it returns: a LIMIT is evaluated before any row is
-- read, so a bad argument is refused even when no skill would match.
create or replace function private.checked_skill_limit(category text, max_rows integer)
returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
  if checked_skill_limit.category is not null
     and checked_skill_limit.category not in ('communication', 'leadership', 'wellbeing', 'productivity', 'career', 'learning') then
    raise exception 'Unknown category: %', checked_skill_limit.category
      using errcode = '22023', hint = 'Use one of communication, leadership, wellbeing, productivity, career, learning.';
  end if;
  if checked_skill_limit.max_rows is null or checked_skill_limit.max_rows not between 1 and 200 then
    raise exception 'limit must be between 1 and 200' using errcode = '22023';
  end if;
  return checked_skill_limit.max_rows;
end;
$$;
comment on function private.checked_skill_limit(text, integer) is
  'list_skills'' argument checks: 22023 for an unknown category or a limit outside 1..200; returns the limit.';
revoke execute on function private.checked_skill_limit(text, integer) from public, anon;
grant execute on function private.checked_skill_limit(text, integer) to authenticated, service_role;

-- SQL, not plpgsql: the argument is "limit", as issue 10 names it, and plpgsql_check flags a
-- reserved word as a plpgsql parameter name. Call it with POST (supabase.rpc does): on a
-- GET call PostgREST reads ?limit= as its own row limit. Security invoker: the table's
-- policy decides (users see active skills; the service role all).
create or replace function public.list_skills(category text default null, "limit" integer default 50)
returns setof public.skills
language sql
stable
security invoker
set search_path = ''
as $$
  select s.* from public.skills s
  where list_skills.category is null or s.category = list_skills.category
  order by s.category, s.name, s.id
  limit private.checked_skill_limit(list_skills.category, list_skills."limit")
$$;
comment on function public.list_skills(text, integer) is $$
The skills catalogue: active skills for signed-in users (all of them for the service role), ordered by category and name,
optionally of one category (communication | leadership | wellbeing | productivity | career | learning); limit 1..200
(default 50). Example: supabase.rpc('list_skills', { category: 'communication', limit: 20 })
$$;
revoke execute on function public.list_skills(text, integer) from public, anon;
grant execute on function public.list_skills(text, integer) to authenticated, service_role;
