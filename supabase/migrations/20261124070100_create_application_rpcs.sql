-- Purpose: how applications are tracked and moved (seed: Coach Execution Engine; issue 9).
--  * track_opportunity: the caller starts an application (Tracked) for a catalogue
--    opportunity, or for one of their own that it creates from the given fields.
--  * move_application: the owner moves their application to a coach state. The owner is
--    the human in the loop, so the move applies at once; Won moved by the owner is
--    confirmed (confirmed_at). Moving to a submitted state stamps submitted_at and creates
--    the 21-day check-in in the same transaction. Every move stamps last_progress_at.
--  * propose_application_state: an AI coach (service role) or the owner's assigned coach
--    proposes Submitted or Won, pending the owner's answer (default 7 days). Lost needs no
--    confirmation: proposing it applies it.
--  * respond_to_proposal: the owner confirms (the move applies) or declines a pending,
--    unexpired proposal.
-- Transitions (private.application_transition_allowed): among Tracked, Drafting and Review
-- freely; from any of them to Submitted or Lost; Submitted to Outcome Pending, Won or Lost;
-- Outcome Pending to Won or Lost; nothing after Won or Lost.
-- Unknown or someone else's application: PT404 (one answer). Illegal transition, unknown
-- state: 22023. An expired or answered proposal, a second pending one: PT409.
-- Objects: functions private.application_transition_allowed, private._apply_application_state,
-- public.track_opportunity, public.move_application, public.propose_application_state,
-- public.respond_to_proposal. Destructive: none.

create or replace function private.application_transition_allowed(from_state text, to_state text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select case application_transition_allowed.from_state
    when 'Tracked' then to_state in ('Drafting', 'Review', 'Submitted', 'Lost')
    when 'Drafting' then to_state in ('Tracked', 'Review', 'Submitted', 'Lost')
    when 'Review' then to_state in ('Tracked', 'Drafting', 'Submitted', 'Lost')
    when 'Submitted' then to_state in ('Outcome Pending', 'Won', 'Lost')
    when 'Outcome Pending' then to_state in ('Won', 'Lost')
    else false
  end
$$;
comment on function private.application_transition_allowed(text, text) is
  'Whether an application may move from one coach state to another (nothing leaves Won or Lost).';
grant execute on function private.application_transition_allowed(text, text) to authenticated, service_role;

-- Applies a checked move: status and coach stage, the stamps, and the check-in.
create or replace function private._apply_application_state(app public.applications, state text, confirmed boolean, at timestamptz)
returns public.applications
language plpgsql
security definer
set search_path = ''
as $$
-- Security definer: called by the RPCs below once they have checked the caller; writes
-- applications and check_in_tasks, which no API role may write.
declare
  current_state text := public.db_to_coach_state(app.status, app.metadata);
  mapped public.coach_state_db := public.coach_state_to_db(_apply_application_state.state);
  result public.applications;
begin
  if current_state = _apply_application_state.state then
    raise exception 'The application is already %', current_state using errcode = '22023';
  end if;
  if not private.application_transition_allowed(current_state, _apply_application_state.state) then
    raise exception 'An application cannot move from % to %', current_state, _apply_application_state.state using errcode = '22023';
  end if;
  update public.applications a
     set status = mapped.status,
         metadata = (a.metadata - 'coach_stage') || mapped.metadata,
         last_progress_at = _apply_application_state.at,
         submitted_at = case when mapped.status = 'submitted' and a.status = 'draft' then _apply_application_state.at else a.submitted_at end,
         confirmed_at = case when mapped.status = 'awarded' and _apply_application_state.confirmed then _apply_application_state.at end
   where a.id = app.id
  returning * into result;
  if mapped.status = 'submitted' and app.status = 'draft' then
    insert into public.check_in_tasks (user_id, application_id, due_at)
    values (result.user_id, result.id, result.submitted_at + interval '21 days')
    on conflict on constraint check_in_tasks_user_application_key do nothing;
  end if;
  return result;
end;
$$;
comment on function private._apply_application_state(public.applications, text, boolean, timestamptz) is
  'Internal: moves an application to a coach state after its caller was checked (22023 for an illegal move), stamping last_progress_at, submitted_at and confirmed_at, and creating the 21-day check-in on submission.';
revoke execute on function private._apply_application_state(public.applications, text, boolean, timestamptz) from public, anon, authenticated;

create or replace function public.track_opportunity(
  opportunity_id uuid default null,
  title text default null,
  provider text default null,
  amount numeric default null,
  deadline timestamptz default null,
  trust_score numeric default null,
  application_type text default null,
  url text default null
)
returns public.applications
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users cannot write opportunities or applications; checks the caller
-- and what they may see first.
declare
  caller uuid := (select auth.uid());
  target uuid := track_opportunity.opportunity_id;
  result public.applications;
begin
  if caller is null then
    raise exception 'Only a signed-in user can track an opportunity' using errcode = '42501';
  end if;
  if target is not null then
    if not exists (select 1 from public.opportunities o
                   where o.id = target and ((o.owner_id is null and o.active) or o.owner_id = caller)) then
      raise exception 'Opportunity not found' using errcode = 'PT404';
    end if;
  else
    if track_opportunity.title is null then
      raise exception 'An opportunity of your own needs a title' using errcode = '22023', hint = 'Pass opportunity_id to track one of the catalogue, or a title.';
    end if;
    insert into public.opportunities (owner_id, title, provider, amount, deadline, trust_score, application_type, url)
    values (caller, track_opportunity.title, track_opportunity.provider, track_opportunity.amount, track_opportunity.deadline,
            coalesce(track_opportunity.trust_score, 0.5), coalesce(track_opportunity.application_type, 'mixed'), track_opportunity.url)
    returning id into target;
  end if;
  insert into public.applications (user_id, opportunity_id, metadata)
  values (caller, target, (public.coach_state_to_db('Tracked')).metadata)
  on conflict on constraint applications_user_opportunity_key do nothing
  returning * into result;
  if result.id is null then
    raise exception 'You already track this opportunity' using errcode = 'PT409';
  end if;
  return result;
end;
$$;
comment on function public.track_opportunity(uuid, text, text, numeric, timestamptz, numeric, text, text) is $$
Starts an application (Tracked) for a catalogue opportunity (opportunity_id) or for a new opportunity of the caller's own
(title, provider, amount, deadline, trust_score 0..1, application_type essay | form | mixed, url). PT404 for an opportunity
the caller cannot see, PT409 when already tracked. Example: supabase.rpc('track_opportunity', { opportunity_id })
$$;
grant execute on function public.track_opportunity(uuid, text, text, numeric, timestamptz, numeric, text, text) to authenticated;

create or replace function public.move_application(application_id uuid, state text, at timestamptz default now())
returns public.applications
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users cannot write applications; only the owner may move one.
declare
  app public.applications;
begin
  select * into app from public.applications a where a.id = move_application.application_id for update;
  if not found or app.user_id is distinct from (select auth.uid()) then
    raise exception 'Application not found' using errcode = 'PT404';
  end if;
  return private._apply_application_state(app, move_application.state, true, move_application.at);
end;
$$;
comment on function public.move_application(uuid, text, timestamptz) is $$
The owner moves their application to a coach state (Tracked, Drafting, Review, Submitted, Outcome Pending, Won, Lost); it
applies at once (the owner is the human in the loop). 22023 for an illegal move, PT404 for someone else's application.
Example: supabase.rpc('move_application', { application_id, state: 'Submitted' })
$$;
grant execute on function public.move_application(uuid, text, timestamptz) to authenticated;

create or replace function public.propose_application_state(
  application_id uuid, state text, expires_in interval default interval '7 days', at timestamptz default now()
)
returns public.application_state_proposals
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: coaches cannot read or write their clients' applications; checks that
-- the caller is the service role or the owner's assigned coach first. Parameters are always
-- written qualified, so a bare name is a column (the ON CONFLICT target).
#variable_conflict use_column
declare
  app public.applications;
  role_name text := private.caller_role();
  result public.application_state_proposals;
begin
  select * into app from public.applications a where a.id = propose_application_state.application_id for update;
  if not found or not (role_name in ('service_role', 'postgres') or private.is_assigned_coach(app.user_id, propose_application_state.at)) then
    raise exception 'Application not found' using errcode = 'PT404';
  end if;
  if propose_application_state.expires_in is null or propose_application_state.expires_in <= interval '0'
     or propose_application_state.expires_in > interval '30 days' then
    raise exception 'A proposal expires after more than 0 and at most 30 days' using errcode = '22023';
  end if;
  -- Lost needs no confirmation (seed): proposing it applies it.
  if propose_application_state.state = 'Lost' then
    perform private._apply_application_state(app, 'Lost', false, propose_application_state.at);
    return null;
  end if;
  if propose_application_state.state not in ('Submitted', 'Won') then
    perform public.coach_state_to_db(propose_application_state.state);  -- 22023 for an unknown state
    raise exception 'Only Submitted and Won are proposed; the owner moves an application to %', propose_application_state.state
      using errcode = '22023';
  end if;
  if not private.application_transition_allowed(public.db_to_coach_state(app.status, app.metadata), propose_application_state.state) then
    raise exception 'An application cannot move from % to %', public.db_to_coach_state(app.status, app.metadata), propose_application_state.state
      using errcode = '22023';
  end if;
  insert into public.application_state_proposals (application_id, user_id, proposed_state, proposed_by, proposed_by_role, created_at, expires_at)
  values (app.id, app.user_id, propose_application_state.state, (select auth.uid()), role_name,
          propose_application_state.at, propose_application_state.at + propose_application_state.expires_in)
  on conflict (application_id) where status = 'pending' do nothing
  returning * into result;
  if result.id is null then
    raise exception 'A proposal for this application is already pending' using errcode = 'PT409';
  end if;
  return result;
end;
$$;
comment on function public.propose_application_state(uuid, text, interval, timestamptz) is $$
An AI coach (service role) or the owner's assigned coach proposes Submitted or Won; the owner confirms or declines it
(respond_to_proposal) before it expires (expires_in, default 7 days, at most 30). Lost applies at once (no confirmation) and
returns null. PT404 for an application the caller does not coach, PT409 when one is already pending, 22023 for an illegal move.
Example: supabase.rpc('propose_application_state', { application_id, state: 'Submitted' })
$$;
grant execute on function public.propose_application_state(uuid, text, interval, timestamptz) to authenticated, service_role;

create or replace function public.respond_to_proposal(proposal_id uuid, accept boolean, at timestamptz default now())
returns public.application_state_proposals
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users cannot write proposals or applications; only the owner answers.
declare
  p public.application_state_proposals;
  app public.applications;
begin
  select * into p from public.application_state_proposals x where x.id = respond_to_proposal.proposal_id for update;
  if not found or p.user_id is distinct from (select auth.uid()) then
    raise exception 'Proposal not found' using errcode = 'PT404';
  end if;
  if respond_to_proposal.accept is null then
    raise exception 'Say whether you accept the proposal (accept: true or false)' using errcode = '22023';
  end if;
  if p.status <> 'pending' then
    raise exception 'This proposal was already %', p.status using errcode = 'PT409';
  end if;
  if p.expires_at <= respond_to_proposal.at then
    raise exception 'This proposal expired at %', to_char(p.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') using errcode = 'PT409';
  end if;
  if respond_to_proposal.accept then
    select * into app from public.applications a where a.id = p.application_id for update;
    perform private._apply_application_state(app, p.proposed_state, true, respond_to_proposal.at);
  end if;
  update public.application_state_proposals x
     set status = case when respond_to_proposal.accept then 'confirmed'::public.proposal_status else 'declined' end,
         decided_at = respond_to_proposal.at
   where x.id = p.id
  returning * into p;
  return p;
end;
$$;
comment on function public.respond_to_proposal(uuid, boolean, timestamptz) is $$
The owner confirms (accept: true; the application moves, Won is confirmed) or declines a pending proposal before it expires.
PT404 for someone else's proposal, PT409 for one already answered or expired, 22023 when the move is no longer allowed.
Example: supabase.rpc('respond_to_proposal', { proposal_id, accept: true })
$$;
grant execute on function public.respond_to_proposal(uuid, boolean, timestamptz) to authenticated;
