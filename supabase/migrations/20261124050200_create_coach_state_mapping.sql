-- Purpose: the seed's mapping between coach states and the DB status of an application,
-- both ways (seed: Coach Execution Engine, section 1): Tracked, Drafting, Review -> draft;
-- Submitted, Outcome Pending -> submitted; Won -> awarded; Lost -> rejected. Where the
-- status alone is ambiguous (draft, submitted) the coach stage is kept in the
-- application's metadata (coach_stage), so db_to_coach_state(coach_state_to_db(s)) = s for
-- all seven. supabase/functions/_shared/coach_state.ts is the same mapping in TypeScript
-- (CoachStateMappingSchema); a test proves they agree.
-- Objects: type public.coach_state_db; functions public.coach_state_to_db,
-- public.db_to_coach_state (two forms). Destructive: none.

create type public.coach_state_db as (status public.application_status, metadata jsonb);
comment on type public.coach_state_db is
  'A coach state as stored: the application''s status and the metadata that carries its coach stage ({"coach_stage": ...} for draft and submitted states, {} for Won and Lost).';

-- The stored form of a coach state; 22023 for anything but the seven.
create or replace function public.coach_state_to_db(state text)
returns public.coach_state_db
language plpgsql
immutable
set search_path = ''
as $$
declare
  mapped public.coach_state_db;
begin
  mapped := case coach_state_to_db.state
    when 'Tracked' then row('draft', '{"coach_stage": "tracked"}')::public.coach_state_db
    when 'Drafting' then row('draft', '{"coach_stage": "drafting"}')::public.coach_state_db
    when 'Review' then row('draft', '{"coach_stage": "review"}')::public.coach_state_db
    when 'Submitted' then row('submitted', '{"coach_stage": "submitted"}')::public.coach_state_db
    when 'Outcome Pending' then row('submitted', '{"coach_stage": "outcome_pending"}')::public.coach_state_db
    when 'Won' then row('awarded', '{}')::public.coach_state_db
    when 'Lost' then row('rejected', '{}')::public.coach_state_db
  end;
  if mapped is null then
    raise exception 'Unknown coach state: %', coalesce(coach_state_to_db.state, 'null') using errcode = '22023',
      hint = 'Use one of Tracked, Drafting, Review, Submitted, Outcome Pending, Won, Lost.';
  end if;
  return mapped;
end;
$$;
comment on function public.coach_state_to_db(text) is $$
The DB status and metadata of a coach state (Tracked, Drafting, Review, Submitted, Outcome Pending, Won, Lost); 22023 for any
other. Example: select * from public.coach_state_to_db('Review');  -- draft, {"coach_stage": "review"}
$$;
grant execute on function public.coach_state_to_db(text) to authenticated, service_role;

-- The coach state of a stored application. Total: a coach stage that does not belong to
-- the status (or none) reads as the status's first state, so no stored value can break it.
create or replace function public.db_to_coach_state(status public.application_status, metadata jsonb default '{}')
returns text
language sql
immutable
set search_path = ''
as $$
  select case db_to_coach_state.status
    when 'draft' then case db_to_coach_state.metadata ->> 'coach_stage'
      when 'drafting' then 'Drafting' when 'review' then 'Review' else 'Tracked' end
    when 'submitted' then case db_to_coach_state.metadata ->> 'coach_stage'
      when 'outcome_pending' then 'Outcome Pending' else 'Submitted' end
    when 'awarded' then 'Won'
    when 'rejected' then 'Lost'
  end
$$;
comment on function public.db_to_coach_state(public.application_status, jsonb) is $$
The coach state of an application from its status and metadata.coach_stage (draft: Tracked unless the stage says drafting or
review; submitted: Submitted unless outcome_pending; awarded: Won; rejected: Lost).
Example: select public.db_to_coach_state('submitted', '{"coach_stage": "outcome_pending"}');  -- Outcome Pending
$$;
grant execute on function public.db_to_coach_state(public.application_status, jsonb) to authenticated, service_role;

create or replace function public.db_to_coach_state(state public.coach_state_db)
returns text
language sql
immutable
set search_path = ''
as $$
  select public.db_to_coach_state((db_to_coach_state.state).status, coalesce((db_to_coach_state.state).metadata, '{}'))
$$;
comment on function public.db_to_coach_state(public.coach_state_db) is
  'The coach state of a stored (status, metadata) pair: public.db_to_coach_state(public.coach_state_to_db(s)) = s for every coach state s.';
grant execute on function public.db_to_coach_state(public.coach_state_db) to authenticated, service_role;
