-- Purpose: the opportunities a user can pursue (seed: Coach Execution Engine; the seed's
-- scholarships, here any opportunity with a deadline and an amount at stake: scholarship,
-- grant, programme, job). A catalogue the service role maintains (owner_id null), which
-- every signed-in user reads while it is active, plus private rows a user adds for
-- themselves (owner_id), visible to that user only. Clients do not write the table: the
-- service role writes the catalogue, and users' own rows come through the engine's RPCs.
-- Objects: table public.opportunities and its policies, trigger
-- opportunities_set_updated_at. Destructive: none.

create table public.opportunities (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid references public.profiles (id) on delete cascade,
  title text not null,
  provider text,
  amount numeric(12, 2),
  deadline timestamptz,
  trust_score numeric(3, 2) not null default 0.50,
  application_type text not null default 'mixed',
  url text,
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint opportunities_title_length check (char_length(btrim(title)) between 1 and 200),
  constraint opportunities_provider_length check (provider is null or char_length(provider) <= 200),
  constraint opportunities_amount_nonnegative check (amount is null or amount >= 0),
  constraint opportunities_trust_score_range check (trust_score between 0 and 1),
  constraint opportunities_application_type_known check (application_type in ('essay', 'form', 'mixed')),
  constraint opportunities_url_format check (url is null or (url ~ '^https?://' and char_length(url) <= 2000))
);
alter table public.opportunities enable row level security;
comment on table public.opportunities is
  'Opportunities a user can pursue (scholarship, grant, programme, job): the catalogue (owner_id null, written by the service role) and rows users add for themselves (owner_id). amount in USD; trust_score 0..1 is how reliable the source is; application_type essay | form | mixed.';
comment on column public.opportunities.owner_id is
  'The user who added this opportunity for themselves (visible to them only); null for the catalogue.';

create index opportunities_owner_id_idx on public.opportunities (owner_id) where owner_id is not null;

create trigger opportunities_set_updated_at
  before update on public.opportunities
  for each row execute function private.trigger_set_updated_at();

grant select on public.opportunities to authenticated;
grant select, insert, update, delete on public.opportunities to service_role;

-- One policy (two permissive ones for the same role and action would both run per row).
create policy "Opportunities are viewable by signed-in users when in the active catalogue or their own"
  on public.opportunities for select to authenticated
  using ((owner_id is null and active) or (select auth.uid()) = owner_id);
