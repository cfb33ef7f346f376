-- Purpose: redact PHI at read time from the one stored copy of interaction content.
-- private.redact_phi(text, names) is the single redaction function (emails, phone
-- numbers, US SSNs, dates, street addresses, URLs with paths, and the user's names);
-- public.coach_interactions_public shows owners their rows redacted; the analytics schema
-- gives analysts (coach_analyst) redacted rows and nothing raw.
-- Objects: schema analytics; functions private.redact_phi, private.redact_content,
-- private.profile_name_parts, private.user_key, analytics._redacted_interactions; views
-- public.coach_interactions_public, analytics.coach_interactions_redacted.
-- Destructive: none.

create or replace function private.redact_phi(input text, names text[] default '{}')
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  result text := input;
  name_part text;
begin
  if result is null then
    return null;
  end if;
  -- URLs with a path (the path can identify a person); a bare domain stays.
  result := regexp_replace(result, '(https?://|www\.)[^\s/]+/[^\s]*[^\s.,;:!?)]', '[URL]', 'gi');
  -- Email addresses.
  result := regexp_replace(result, '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '[EMAIL]', 'g');
  -- US Social Security numbers.
  result := regexp_replace(result, '\m\d{3}-\d{2}-\d{4}\M', '[SSN]', 'g');
  -- Dates (dates of birth and any other calendar date): 1990-04-23, 04/23/1990, 23.04.1990,
  -- April 23, 1990 / 23 April 1990.
  result := regexp_replace(result, '\m\d{4}-\d{1,2}-\d{1,2}\M', '[DATE]', 'g');
  result := regexp_replace(result, '\m\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\M', '[DATE]', 'g');
  result := regexp_replace(result,
    '\m(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(st|nd|rd|th)?,?\s+\d{4}\M', '[DATE]', 'gi');
  result := regexp_replace(result,
    '\m\d{1,2}(st|nd|rd|th)?\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+\d{4}\M', '[DATE]', 'gi');
  -- Phone numbers: +1 (555) 123-4567, 555-123-4567, 555.123.4567, +44 20 7946 0958.
  result := regexp_replace(result, '(\+\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\M', '[PHONE]', 'g');
  result := regexp_replace(result, '\+\d{1,3}([\s.-]?\d{2,4}){2,4}\M', '[PHONE]', 'g');
  -- Street addresses: a house number, up to four words, a street type.
  result := regexp_replace(result,
    '\m\d{1,6}\s+([A-Za-z0-9.''-]+\s+){1,4}(street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|parkway|pkwy|circle|cir)\M\.?',
    '[ADDRESS]', 'gi');
  -- The person's names, whole words, any case.
  foreach name_part in array coalesce(names, '{}') loop
    if char_length(name_part) >= 2 then
      result := regexp_replace(result, '\m' || regexp_replace(name_part, '([^A-Za-z0-9])', '\\\1', 'g') || '\M', '[NAME]', 'gi');
    end if;
  end loop;
  return result;
end;
$$;
comment on function private.redact_phi(text, text[]) is
  'Replaces PHI in text with placeholders: [URL], [EMAIL], [SSN], [DATE], [PHONE], [ADDRESS], [NAME] (the given names, whole words).';
grant execute on function private.redact_phi(text, text[]) to authenticated, service_role;

-- Every string in a JSON value, redacted; keys and structure kept.
create or replace function private.redact_content(content jsonb, names text[] default '{}')
returns jsonb
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case jsonb_typeof(content)
    when 'string' then to_jsonb(private.redact_phi(content #>> '{}', names))
    when 'object' then coalesce(
      (select jsonb_object_agg(e.key, private.redact_content(e.value, names)) from jsonb_each(content) e), '{}'::jsonb)
    when 'array' then coalesce(
      (select jsonb_agg(private.redact_content(e.value, names) order by e.ord)
       from jsonb_array_elements(content) with ordinality e(value, ord)), '[]'::jsonb)
    else content
  end
$$;
comment on function private.redact_content(jsonb, text[]) is
  'Applies private.redact_phi to every string in a JSON value, keeping its structure.';
grant execute on function private.redact_content(jsonb, text[]) to authenticated, service_role;

-- The words of a user's display name and the local part of their email, for [NAME].
create or replace function private.profile_name_parts(user_id uuid)
returns text[]
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: analysts and views need the names to redact them, without access to
  -- profiles or auth.users. Returns nothing else about the user.
  -- A signed-in user gets names only for themselves and their clients.
  select coalesce(array_agg(distinct part) filter (where char_length(part) >= 2), '{}')
  from (
    select regexp_split_to_table(coalesce(p.display_name, ''), '[\s,.]+') as part
    from public.profiles p where p.id = profile_name_parts.user_id
    union all
    select split_part(u.email, '@', 1) from auth.users u where u.id = profile_name_parts.user_id
  ) parts
  where private.caller_role() <> 'authenticated'
     or profile_name_parts.user_id = (select auth.uid())
     or private.is_assigned_coach(profile_name_parts.user_id)
$$;
comment on function private.profile_name_parts(uuid) is
  'Words of the user''s display name and their email''s local part: the names redact_phi replaces with [NAME].';
revoke execute on function private.profile_name_parts(uuid) from public, anon;
grant execute on function private.profile_name_parts(uuid) to authenticated, service_role;

create view public.coach_interactions_public
with (security_invoker = true)
as
select
  i.id, i.user_id, i.session_id, i.conversation_id, i.request_id, i.sender, i.channel, i.coach_persona,
  private.redact_content(i.content, private.profile_name_parts(i.user_id)) as content,
  private.redact_content(i.metadata, private.profile_name_parts(i.user_id)) as metadata,
  i.model, i.latency_ms, i.prompt_tokens, i.completion_tokens, i.cached_tokens, i.cost_usd, i.sentiment,
  i.momentum_state, i.status, i.error_code, i.tracked_skill_id_hash, i.created_at, i.actor_id, i.actor_role
from public.coach_interactions i;
comment on view public.coach_interactions_public is
  'coach_interactions with PHI redacted from content and metadata at read time. RLS of the table applies (owners see their rows).';
grant select on public.coach_interactions_public to authenticated, service_role;

-- Analysts: the analytics schema only.
create schema if not exists analytics;
comment on schema analytics is
  'For analysts and Grafana (role coach_analyst): redacted interactions, rollups and documented RPCs. No raw PHI.';
revoke all on schema analytics from public;
grant usage on schema analytics to coach_analyst, service_role;

-- Analysts see users only as this key: stable per user, not the id, email or name.
create or replace function private.user_key(user_id uuid)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select encode(extensions.digest('coach-ledger-user:' || user_key.user_id::text, 'sha256'), 'hex')
$$;
comment on function private.user_key(uuid) is
  'Pseudonymous key of a user for analytics: sha256 (hex) of a prefixed user id.';
revoke execute on function private.user_key(uuid) from public, anon, authenticated;

create or replace function analytics._redacted_interactions()
returns table (
  id uuid, user_key text, session_id uuid, conversation_id uuid, sender text, channel text, coach_persona text,
  content jsonb, model text, latency_ms integer, prompt_tokens integer, completion_tokens integer,
  cached_tokens integer, cost_usd numeric, sentiment real, momentum_state text, status text, error_code text,
  tracked_skill_id_hash text, created_at timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: analysts have no access to public tables; this returns only redacted
  -- content and a pseudonymous user key, never the user id, email or metadata.
  select i.id,
         private.user_key(i.user_id),
         i.session_id, i.conversation_id, i.sender, i.channel, i.coach_persona,
         private.redact_content(i.content, private.profile_name_parts(i.user_id)),
         i.model, i.latency_ms, i.prompt_tokens, i.completion_tokens, i.cached_tokens, i.cost_usd,
         i.sentiment, i.momentum_state, i.status, i.error_code, i.tracked_skill_id_hash, i.created_at
  from public.coach_interactions i
$$;
comment on function analytics._redacted_interactions() is
  'Every interaction with PHI redacted and the user replaced by a pseudonymous key (sha256). Backs analytics.coach_interactions_redacted.';
revoke execute on function analytics._redacted_interactions() from public, anon, authenticated;
grant execute on function analytics._redacted_interactions() to coach_analyst, service_role;

create view analytics.coach_interactions_redacted
with (security_invoker = true)
as select * from analytics._redacted_interactions();
comment on view analytics.coach_interactions_redacted is
  'Interactions for analysts: redacted content, pseudonymous user_key (sha256 of the user id), no metadata.';
grant select on analytics.coach_interactions_redacted to coach_analyst, service_role;
