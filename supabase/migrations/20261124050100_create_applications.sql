-- Purpose: a user's pursuit of an opportunity (seed: Coach Execution Engine, section 5):
-- one application per user and opportunity, its DB status (enum application_status:
-- draft | submitted | awarded | rejected), the momentum score the game plan ranks by,
-- when it was submitted, when it last progressed (every status or stage change) and when
-- the user confirmed a win; metadata holds the coach stage where the status alone is
-- ambiguous (see 20261124050200). The owner reads their rows; nobody writes them directly
-- but the service role: users and coaches move applications through the engine's RPCs.
-- Objects: type public.application_status; table public.applications and its policy,
-- trigger applications_set_updated_at. Destructive: none.

create type public.application_status as enum ('draft', 'submitted', 'awarded', 'rejected');
comment on type public.application_status is
  'The DB status of an application. Coach states map onto it (public.coach_state_to_db): Tracked, Drafting, Review -> draft; Submitted, Outcome Pending -> submitted; Won -> awarded; Lost -> rejected.';

create table public.applications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  opportunity_id uuid not null references public.opportunities (id) on delete cascade,
  status public.application_status not null default 'draft',
  momentum_score numeric(5, 2),
  submitted_at timestamptz,
  last_progress_at timestamptz not null default now(),
  confirmed_at timestamptz,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint applications_user_opportunity_key unique (user_id, opportunity_id),
  constraint applications_momentum_score_range check (momentum_score is null or momentum_score between 0 and 1),
  constraint applications_confirmed_at_only_awarded check (confirmed_at is null or status = 'awarded'),
  constraint applications_metadata_object check (jsonb_typeof(metadata) = 'object'),
  constraint applications_metadata_bounded check (private.json_bound_violation('interaction_metadata', metadata) is null)
);
alter table public.applications enable row level security;
comment on table public.applications is
  'A user''s application to an opportunity: DB status, momentum score (deadline proximity x 0.6 + trust x 0.4, 0..1), submitted_at (for the 21-day check-in), last_progress_at (every status or stage change; 48-hour staleness), confirmed_at (the user confirmed a win), metadata.coach_stage where the status alone is ambiguous.';

create index applications_opportunity_id_idx on public.applications (opportunity_id);

create trigger applications_set_updated_at
  before update on public.applications
  for each row execute function private.trigger_set_updated_at();

grant select on public.applications to authenticated;
grant select, insert, update, delete on public.applications to service_role;

create policy "Applications are viewable by their owner"
  on public.applications for select to authenticated
  using ((select auth.uid()) = user_id);
