-- Purpose: the human in the loop (seed: Coach Execution Engine, section 1: Submitted and Won
-- come "after HITL confirmation"; Lost needs none). An AI coach (the service role) or the
-- user's assigned coach proposes Submitted or Won; only the application's owner confirms or
-- declines; a proposal not answered by expires_at (default 7 days) can no longer be
-- confirmed. One pending proposal per application. The owner and the proposing coach read
-- proposals; the RPCs of 20261124070100 write them.
-- Objects: type public.proposal_status; table public.application_state_proposals, its
-- policy and indexes. Destructive: none.

create type public.proposal_status as enum ('pending', 'confirmed', 'declined');
comment on type public.proposal_status is 'A state proposal: pending until the owner confirms or declines it (an expired one stays pending and can no longer be confirmed).';

create table public.application_state_proposals (
  id uuid primary key default gen_random_uuid(),
  application_id uuid not null references public.applications (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  proposed_state text not null,
  proposed_by uuid references public.profiles (id) on delete set null,
  proposed_by_role text not null,
  status public.proposal_status not null default 'pending',
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  decided_at timestamptz,
  constraint application_state_proposals_state_known check (proposed_state in ('Submitted', 'Won')),
  constraint application_state_proposals_expiry_after_creation check (expires_at > created_at),
  constraint application_state_proposals_decided_with_status check ((status = 'pending') = (decided_at is null))
);
alter table public.application_state_proposals enable row level security;
comment on table public.application_state_proposals is
  'Proposals to move an application to Submitted or Won, made by an AI coach (service role) or the assigned coach, confirmed or declined by the owner only, before expires_at.';

create unique index application_state_proposals_one_pending_idx
  on public.application_state_proposals (application_id) where status = 'pending';
create index application_state_proposals_application_id_idx on public.application_state_proposals (application_id);
create index application_state_proposals_user_id_idx on public.application_state_proposals (user_id, created_at desc);
create index application_state_proposals_proposed_by_idx on public.application_state_proposals (proposed_by) where proposed_by is not null;

grant select on public.application_state_proposals to authenticated;
grant select, insert, update, delete on public.application_state_proposals to service_role;

create policy "Proposals are viewable by the application's owner and by who proposed them"
  on public.application_state_proposals for select to authenticated
  using ((select auth.uid()) = user_id or (select auth.uid()) = proposed_by);
