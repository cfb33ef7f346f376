-- Purpose: versioned prompts for the AI coaching endpoints (issue 11, "Prompt versions"):
-- what LLM platforms call prompt management. A prompt is a name (the route it serves, e.g.
-- coaching/alignment-check) with numbered versions; a label such as `production` points at
-- exactly one version of a name and moves when a new version is promoted. A version's
-- content never changes once written (a logged call names the version it used, and that
-- must keep meaning what it meant), and versions are never deleted; only labels move.
-- Written by the service role (operators), read by the functions with the service role.
-- Objects: table public.prompt_templates, its index, trigger, grants and policy; functions
-- private.trigger_keep_prompt_content, public.create_prompt_version,
-- public.set_prompt_label. Destructive: none.

create table public.prompt_templates (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  version integer not null,
  label text,
  system_template text not null,
  user_template text not null,
  model text,
  parameters jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  constraint prompt_templates_name_version_key unique (name, version),
  constraint prompt_templates_name_format check (name ~ '^[a-z][a-z0-9-]{0,39}(/[a-z][a-z0-9-]{0,59})?$'),
  constraint prompt_templates_version_positive check (version between 1 and 100000),
  constraint prompt_templates_label_format check (label is null or label ~ '^[a-z][a-z0-9_-]{0,39}$'),
  constraint prompt_templates_templates_length check (
    char_length(system_template) between 1 and 20000 and char_length(user_template) between 1 and 20000),
  constraint prompt_templates_model_length check (model is null or char_length(model) between 1 and 200),
  constraint prompt_templates_parameters_object check (
    jsonb_typeof(parameters) = 'object' and octet_length(parameters::text) <= 4096)
);
alter table public.prompt_templates enable row level security;
comment on table public.prompt_templates is
  'Versioned prompts of the AI coaching endpoints: name (the route), version, label (e.g. production: one version per name and label), system and user templates with {{placeholders}}, model (null: the provider''s default) and parameters. Content is immutable; only labels move. Service role only.';

-- One version per (name, label): the label is a pointer.
create unique index prompt_templates_name_label_key on public.prompt_templates (name, label) where label is not null;

-- Content is immutable and versions are kept: an update may change the label only.
create or replace function private.trigger_keep_prompt_content()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    raise exception 'prompt versions are kept: % version % cannot be deleted', old.name, old.version using errcode = '42501',
      hint = 'Remove its label instead (set_prompt_label with label null).';
  end if;
  if (new.name, new.version, new.system_template, new.user_template, new.model, new.parameters, new.created_at)
     is distinct from (old.name, old.version, old.system_template, old.user_template, old.model, old.parameters, old.created_at) then
    raise exception 'a prompt version''s content cannot change: write a new version' using errcode = '42501',
      hint = 'create_prompt_version(name, ...) makes the next version.';
  end if;
  return new;
end;
$$;
comment on function private.trigger_keep_prompt_content() is
  'Trigger on prompt_templates (before update or delete): refuses deletes and any change but the label (42501).';
revoke execute on function private.trigger_keep_prompt_content() from public, anon, authenticated;
create trigger prompt_templates_keep_content
  before update or delete on public.prompt_templates
  for each row execute function private.trigger_keep_prompt_content();

grant select, insert on public.prompt_templates to service_role;
grant update (label) on public.prompt_templates to service_role;
-- The service role bypasses RLS anyway; the policy says so where the linter can see it.
-- No policy grants users anything.
create policy "Prompt templates are readable by the service role"
  on public.prompt_templates for select to service_role
  using (true);

create or replace function public.set_prompt_label(name text, version integer, label text)
returns public.prompt_templates
language plpgsql
volatile
security invoker
set search_path = ''
as $$
-- Security invoker: the service role's grants decide (nobody else has any on the table).
declare
  moved public.prompt_templates;
begin
  if set_prompt_label.label is not null and set_prompt_label.label !~ '^[a-z][a-z0-9_-]{0,39}$' then
    raise exception 'label must be a lowercase identifier of at most 40 characters' using errcode = '22023',
      constraint = 'prompt_templates_label_format';
  end if;
  -- Serialise label moves of one name, so two promotions cannot collide.
  perform pg_advisory_xact_lock(hashtextextended('prompt/' || set_prompt_label.name, 0));
  if set_prompt_label.label is not null then
    update public.prompt_templates p set label = null
    where p.name = set_prompt_label.name and p.label = set_prompt_label.label and p.version <> set_prompt_label.version;
  end if;
  update public.prompt_templates p set label = set_prompt_label.label
  where p.name = set_prompt_label.name and p.version = set_prompt_label.version
  returning * into moved;
  if moved.id is null then
    raise exception 'No version % of prompt %', set_prompt_label.version, set_prompt_label.name using errcode = 'PT404';
  end if;
  return moved;
end;
$$;
comment on function public.set_prompt_label(text, integer, text) is $$
Points a label (e.g. production) at one version of a prompt, taking it from the version that had it; label null removes
the version's label. Service role only. PT404 for an unknown version.
Example: select public.set_prompt_label('coaching/alignment-check', 2, 'production');
$$;
revoke execute on function public.set_prompt_label(text, integer, text) from public, anon, authenticated;
grant execute on function public.set_prompt_label(text, integer, text) to service_role;

create or replace function public.create_prompt_version(
  name text,
  system_template text,
  user_template text,
  model text default null,
  parameters jsonb default '{}'::jsonb,
  label text default null
)
returns public.prompt_templates
language plpgsql
volatile
security invoker
set search_path = ''
as $$
-- Security invoker: the service role's grants decide (nobody else has any on the table).
declare
  created public.prompt_templates;
begin
  perform pg_advisory_xact_lock(hashtextextended('prompt/' || create_prompt_version.name, 0));
  insert into public.prompt_templates (name, version, system_template, user_template, model, parameters)
  values (
    create_prompt_version.name,
    coalesce((select max(p.version) from public.prompt_templates p where p.name = create_prompt_version.name), 0) + 1,
    create_prompt_version.system_template, create_prompt_version.user_template, create_prompt_version.model,
    coalesce(create_prompt_version.parameters, '{}'::jsonb))
  returning * into created;
  if create_prompt_version.label is not null then
    created := public.set_prompt_label(created.name, created.version, create_prompt_version.label);
  end if;
  return created;
end;
$$;
comment on function public.create_prompt_version(text, text, text, text, jsonb, text) is $$
Writes the next version of a prompt (1 for a new name) and, with label, points that label at it. Service role only.
Invalid values fail with 23514 naming the constraint (e.g. prompt_templates_name_format).
Example: select public.create_prompt_version('coaching/alignment-check', 'You are…', 'Goal: {{goal}}', label => 'production');
$$;
revoke execute on function public.create_prompt_version(text, text, text, text, jsonb, text) from public, anon, authenticated;
grant execute on function public.create_prompt_version(text, text, text, text, jsonb, text) to service_role;
