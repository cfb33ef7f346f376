-- Purpose: track_opportunity names the field of a bad opportunity. Before, an out-of-range
-- trust_score (or amount, application_type, title, provider, url) reached the table's check
-- constraint, and the caller got 23514 with the constraint's name and the whole failing
-- row in `details`. Now each is refused first with 22023 and a sentence naming the field
-- (400 through PostgREST), and nothing is written. The constraints stay as the last word.
-- Objects: public.track_opportunity replaced (same signature, grants and behaviour otherwise).
-- Destructive: none.

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
    if char_length(btrim(track_opportunity.title)) not between 1 and 200 then
      raise exception 'title must be 1 to 200 characters' using errcode = '22023';
    end if;
    if char_length(track_opportunity.provider) > 200 then
      raise exception 'provider must be at most 200 characters' using errcode = '22023';
    end if;
    if track_opportunity.amount < 0 or track_opportunity.amount >= 10000000000 then
      raise exception 'amount must be between 0 and 9999999999.99 (USD)' using errcode = '22023';
    end if;
    if track_opportunity.trust_score not between 0 and 1 then
      raise exception 'trust_score must be between 0 and 1' using errcode = '22023';
    end if;
    if track_opportunity.application_type not in ('essay', 'form', 'mixed') then
      raise exception 'application_type must be essay, form or mixed' using errcode = '22023';
    end if;
    if track_opportunity.url !~ '^https?://' or char_length(track_opportunity.url) > 2000 then
      raise exception 'url must be an http(s) URL of at most 2000 characters' using errcode = '22023';
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
