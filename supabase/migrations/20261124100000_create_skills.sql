-- Purpose: the skills catalogue (seed: Sprint SPR-003, "Skills API"; issue 10): what a
-- coaching session or an assessment can be about. Signed-in users read the active skills;
-- the service role writes the catalogue. A user's tracked skill is never stored by its id
-- next to them: functions keep only a keyed hash of it (issue 10, later migrations).
--  * public.skills: slug (a stable lowercase key), name, category, description,
--    rubric_version (the assessment rubric the skill is scored with), active.
--  * public.list_skills(category, limit): the active skills, by category and name.
-- Objects: table public.skills, its trigger, grants and policy; function public.list_skills.
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

create or replace function public.list_skills(category text default null, "limit" integer default 50)
returns setof public.skills
language plpgsql
stable
security invoker
set search_path = ''
as $$
-- Security invoker: the table's policy decides (users see active skills; the service role all).
-- The argument is "limit", as issue 10 names it: call it with POST (supabase.rpc does), since
-- PostgREST reads ?limit= on a GET call as its own row limit.
begin
  if list_skills.category is not null
     and list_skills.category not in ('communication', 'leadership', 'wellbeing', 'productivity', 'career', 'learning') then
    raise exception 'Unknown category: %', list_skills.category
      using errcode = '22023', hint = 'Use one of communication, leadership, wellbeing, productivity, career, learning.';
  end if;
  if list_skills."limit" is null or list_skills."limit" not between 1 and 200 then
    raise exception 'limit must be between 1 and 200' using errcode = '22023';
  end if;
  return query
    select s.* from public.skills s
    where list_skills.category is null or s.category = list_skills.category
    order by s.category, s.name, s.id
    limit list_skills."limit";
end;
$$;
comment on function public.list_skills(text, integer) is $$
The skills catalogue: active skills for signed-in users (all of them for the service role), ordered by category and name,
optionally of one category (communication | leadership | wellbeing | productivity | career | learning); limit 1..200
(default 50). Example: supabase.rpc('list_skills', { category: 'communication', limit: 20 })
$$;
revoke execute on function public.list_skills(text, integer) from public, anon;
grant execute on function public.list_skills(text, integer) to authenticated, service_role;
