-- Purpose: "the current user" in one SQL function, so that callers signed in through a
-- third-party provider (Clerk, config.toml [auth.third_party.clerk]) are the Coach Ledger
-- users they map to (issue 13). Supabase accepts a Clerk session token (role
-- `authenticated`) in PostgREST, Realtime and Storage, but its `sub` is Clerk's user id
-- (user_…), not a UUID, so auth.uid() fails on it ("invalid input syntax for type uuid").
--  * private.external_identities (issuer, subject) -> user_id: which Coach Ledger user a
--    third-party subject is; written by the clerk-webhook function (user.created) through
--    public.link_external_identity, removed with the user (user.deleted deletes the user).
--  * private.current_user_id(): the caller's user id: for tokens of Supabase Auth (issuer
--    `<project>/auth/v1`, the API keys' issuers, or none) the UUID `sub`; for any other
--    issuer the user its (issuer, sub) maps to; null otherwise (anon, role tokens, an
--    unmapped subject, a `sub` that is not a UUID).
--  * Every policy and function that called auth.uid() now calls
--    (select private.current_user_id()): the policies are altered and the functions
--    replaced with their bodies unchanged but for that call (generated from the catalog of
--    the migrations before this one, with search_path '' so every name is qualified; the
--    `(select …)` keeps it evaluated once per statement in policies).
-- Objects: table private.external_identities; functions private.current_user_id(),
-- public.link_external_identity(text, text, uuid); 19 policies altered; 37 functions replaced.

create table private.external_identities (
  issuer text not null
    constraint external_identities_issuer_check check (issuer ~ '^https?://[^\s]+$' and char_length(issuer) <= 255),
  subject text not null
    constraint external_identities_subject_check check (char_length(subject) between 1 and 255),
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (issuer, subject)
);
create index external_identities_user_id_idx on private.external_identities (user_id);
alter table private.external_identities enable row level security;
create policy "Service role reads external identities"
  on private.external_identities for select to service_role using (true);
comment on table private.external_identities is
  'Third-party identities (Clerk): the Coach Ledger user (auth.users) that a provider''s (issuer, subject) is. Written by public.link_external_identity (clerk-webhook); deleted with the user.';
revoke all on private.external_identities from public, anon, authenticated;
grant select on private.external_identities to service_role;

create function private.current_user_id()
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select case
    when t.iss is null or t.iss in ('supabase', 'supabase-demo') or t.iss ~ '/auth/v1$' then
      case when t.sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then t.sub::uuid end
    else (select e.user_id from private.external_identities as e where e.issuer = t.iss and e.subject = t.sub)
  end
  from (
    select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''), auth.jwt() ->> 'sub') as sub,
           auth.jwt() ->> 'iss' as iss
  ) as t
$$;
comment on function private.current_user_id() is
  'The caller''s Coach Ledger user id: the UUID sub of a Supabase Auth token (issuer <project>/auth/v1, supabase, supabase-demo or none), else the user private.external_identities maps the token''s (iss, sub) to; null for anon, role tokens and unmapped subjects. Use as (select private.current_user_id()) in policies.';
revoke execute on function private.current_user_id() from public;
grant execute on function private.current_user_id() to authenticated, service_role;

create function public.link_external_identity(issuer text, subject text, user_id uuid)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  linked uuid;
begin
  if private.caller_role() is distinct from 'service_role' then
    raise exception 'only the service role may link external identities' using errcode = '42501';
  end if;
  insert into private.external_identities (issuer, subject, user_id)
  values (link_external_identity.issuer, link_external_identity.subject, link_external_identity.user_id)
  on conflict on constraint external_identities_pkey do nothing;
  select e.user_id into linked from private.external_identities as e
   where e.issuer = link_external_identity.issuer and e.subject = link_external_identity.subject;
  -- Idempotent: a replayed webhook answers with the user already linked, which may differ.
  return linked;
end;
$$;
comment on function public.link_external_identity(text, text, uuid) is
  'Service role only (the clerk-webhook function): maps a third-party (issuer, subject) to a Coach Ledger user; idempotent, returns the user the subject is linked to (the existing one when it was linked before).';
revoke execute on function public.link_external_identity(text, text, uuid) from public, anon, authenticated;
grant execute on function public.link_external_identity(text, text, uuid) to service_role;

-- ---------------------------------------------------------------------------------------
-- Policies: auth.uid() -> (select private.current_user_id())
-- ---------------------------------------------------------------------------------------
alter policy "Action plans are viewable by their owner" on public.action_plans
  using (( SELECT private.current_user_id() AS current_user_id) = user_id);

alter policy "Proposals are viewable by the application's owner and by who pr" on public.application_state_proposals
  using ((( SELECT private.current_user_id() AS current_user_id) = user_id) OR (( SELECT private.current_user_id() AS current_user_id) = proposed_by));

alter policy "Applications are viewable by their owner" on public.applications
  using (( SELECT private.current_user_id() AS current_user_id) = user_id);

alter policy "Assessments are viewable by their owner" on public.assessments
  using (( SELECT private.current_user_id() AS current_user_id) = user_id);

alter policy "Check-ins are viewable by their owner" on public.check_in_tasks
  using (( SELECT private.current_user_id() AS current_user_id) = user_id);

alter policy "Check-ins can be completed or dismissed by their owner" on public.check_in_tasks
  using (( SELECT private.current_user_id() AS current_user_id) = user_id)
  with check (( SELECT private.current_user_id() AS current_user_id) = user_id);

alter policy "Coach assignments are viewable by their coach and their client" on public.coach_assignments
  using ((( SELECT private.current_user_id() AS current_user_id) = coach_id) OR (( SELECT private.current_user_id() AS current_user_id) = client_id));

alter policy "Interactions are viewable by their owner" on public.coach_interactions
  using (( SELECT private.current_user_id() AS current_user_id) = user_id);

alter policy "Coaching sessions are viewable by their owner" on public.coaching_sessions
  using (( SELECT private.current_user_id() AS current_user_id) = user_id);

alter policy "Interaction events are viewable by their owner" on public.interaction_events
  using (( SELECT private.current_user_id() AS current_user_id) = user_id);

alter policy "Milestones are viewable by the plan's owner" on public.milestones
  using (EXISTS ( SELECT 1
   FROM public.action_plans p
  WHERE ((p.id = milestones.action_plan_id) AND (p.user_id = ( SELECT private.current_user_id() AS current_user_id)))));

alter policy "Opportunities are viewable by signed-in users when in the activ" on public.opportunities
  using (((owner_id IS NULL) AND active) OR (( SELECT private.current_user_id() AS current_user_id) = owner_id));

alter policy "Profiles are editable by their owner" on public.profiles
  using (( SELECT private.current_user_id() AS current_user_id) = id)
  with check (( SELECT private.current_user_id() AS current_user_id) = id);

alter policy "Profiles are viewable by their owner and their assigned coach" on public.profiles
  using ((( SELECT private.current_user_id() AS current_user_id) = id) OR private.is_assigned_coach(id));

alter policy "Session media rows are readable by their owner" on public.session_media
  using (user_id = ( SELECT private.current_user_id() AS current_user_id));

alter policy "Stage responses are viewable by the session's owner" on public.stage_responses
  using (EXISTS ( SELECT 1
   FROM public.coaching_sessions s
  WHERE ((s.id = stage_responses.session_id) AND (s.user_id = ( SELECT private.current_user_id() AS current_user_id)))));

alter policy "Session media: owners add under their own sessions" on storage.objects
  with check ((bucket_id = 'session-media'::text) AND (private.session_media_owner(storage.foldername(name)) = ( SELECT private.current_user_id() AS current_user_id)) AND (storage.filename(name) ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'::text));

alter policy "Session media: owners delete their own" on storage.objects
  using ((bucket_id = 'session-media'::text) AND (private.session_media_owner(storage.foldername(name)) = ( SELECT private.current_user_id() AS current_user_id)));

alter policy "Session media: owners rename within their own sessions" on storage.objects
  using ((bucket_id = 'session-media'::text) AND (private.session_media_owner(storage.foldername(name)) = ( SELECT private.current_user_id() AS current_user_id)))
  with check ((bucket_id = 'session-media'::text) AND (private.session_media_owner(storage.foldername(name)) = ( SELECT private.current_user_id() AS current_user_id)) AND (storage.filename(name) ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'::text));

-- ---------------------------------------------------------------------------------------
-- Functions: auth.uid() -> (select private.current_user_id()); bodies otherwise unchanged
-- ---------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION audit.record_phi_access(subject_user_id uuid, resource text, row_count integer, purpose text, trace_id text DEFAULT NULL::text)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  new_id bigint;
  given text := coalesce(record_phi_access.trace_id, nullif(current_setting('request.headers', true), '')::jsonb ->> 'x-request-id');
begin
  insert into audit.phi_access_log (actor_id, actor_role, subject_user_id, resource, row_count, purpose, trace_id)
  values (
    (select private.current_user_id()),
    private.caller_role(),
    record_phi_access.subject_user_id, record_phi_access.resource, record_phi_access.row_count,
    record_phi_access.purpose,
    case when given ~ '^[A-Za-z0-9._:-]{1,128}$' then given end
  )
  returning id into new_id;
  return new_id;
end;
$function$
;

CREATE OR REPLACE FUNCTION private._session_owned_by_caller(session_id uuid)
 RETURNS public.coaching_sessions
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: called by the write RPCs (themselves security definer) to check the
-- caller owns the session; reads the session whatever the caller's RLS.
declare
  s public.coaching_sessions;
begin
  select * into s from public.coaching_sessions c where c.id = _session_owned_by_caller.session_id for update;
  if not found or (s.user_id is distinct from (select private.current_user_id()) and not private.can_read_session(s.id)) then
    raise exception 'Coaching session not found' using errcode = 'PT404';
  end if;
  if s.user_id is distinct from (select private.current_user_id()) then
    raise exception 'Only the session owner can change a coaching session' using errcode = '42501';
  end if;
  return s;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.assessments_page(by_session uuid, by_group uuid, max_rows integer, before_id uuid, resource text)
 RETURNS SETOF public.assessments
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: coaches have no SELECT on other users' assessments; this checks the
-- caller per subject user and records a coach's read. Argument errors carry a CONSTRAINT
-- diagnostic (list_assessments_*) only so that functions can name the field.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  cursor_row public.assessments;
  page public.assessments[];
  subject uuid;
begin
  if (assessments_page.by_session is null) = (assessments_page.by_group is null) then
    raise exception 'Give exactly one of session_id and group_id' using errcode = '22023', constraint = 'list_assessments_target';
  end if;
  if assessments_page.max_rows is null or assessments_page.max_rows not between 1 and 200 then
    raise exception 'limit must be between 1 and 200' using errcode = '22023', constraint = 'list_assessments_limit';
  end if;
  if caller_role = 'authenticated' and caller is null or caller_role not in ('authenticated', 'service_role', 'postgres') then
    raise exception 'Only a signed-in user or the service role can read assessments' using errcode = '42501';
  end if;
  if assessments_page.before_id is not null then
    -- The cursor under the same read rule as the page: another user's id is unknown here.
    select * into cursor_row from public.assessments a
    where a.id = assessments_page.before_id
      and (caller_role <> 'authenticated' or a.user_id = caller or private.is_assigned_coach(a.user_id));
    if not found then
      raise exception 'before does not name an assessment' using errcode = '22023', constraint = 'list_assessments_before';
    end if;
  end if;

  -- One static query per access path, so that each keeps its index in a cached generic plan.
  if assessments_page.by_session is not null then
    select coalesce(array_agg(x order by (x).created_at desc, (x).id desc), '{}') into page
    from (
      select a as x from public.assessments a
      where a.session_id = assessments_page.by_session
        and (assessments_page.before_id is null or (a.created_at, a.id) < (cursor_row.created_at, cursor_row.id))
        and (caller_role <> 'authenticated' or a.user_id = caller or private.is_assigned_coach(a.user_id))
      order by a.created_at desc, a.id desc
      limit assessments_page.max_rows
    ) s;
  else
    select coalesce(array_agg(x order by (x).created_at desc, (x).id desc), '{}') into page
    from (
      select a as x from public.assessments a
      where a.group_id = assessments_page.by_group
        and (assessments_page.before_id is null or (a.created_at, a.id) < (cursor_row.created_at, cursor_row.id))
        and (caller_role <> 'authenticated' or a.user_id = caller or private.is_assigned_coach(a.user_id))
      order by a.created_at desc, a.id desc
      limit assessments_page.max_rows
    ) s;
  end if;

  if caller_role = 'authenticated' then
    for subject in select distinct p.user_id from unnest(page) p where p.user_id <> caller loop
      perform audit.record_phi_access(subject, assessments_page.resource,
        (select count(*)::integer from unnest(page) p where p.user_id = subject), 'coaching');
    end loop;
  end if;
  return query select * from unnest(page);
end;
$function$
;

CREATE OR REPLACE FUNCTION private.can_read_interaction_topic(topic text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  subject uuid;
begin
  if topic is null or topic !~ '^coach_interactions:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return false;
  end if;
  subject := substr(topic, char_length('coach_interactions:') + 1)::uuid;
  return subject = (select private.current_user_id()) or private.is_assigned_coach(subject);
end;
$function$
;

CREATE OR REPLACE FUNCTION private.can_read_nudge_topic(topic text)
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select coalesce(
    topic ~ '^nudges:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    and substr(topic, char_length('nudges:') + 1)::uuid = (select private.current_user_id()),
    false)
$function$
;

CREATE OR REPLACE FUNCTION private.can_read_session(session_id uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  -- Security definer: policies on child tables ask this without recursing through the
  -- session's own policy. Answers only for the caller.
  select exists (
    select 1 from public.coaching_sessions s
    where s.id = can_read_session.session_id
      and ((select private.current_user_id()) = s.user_id or private.is_assigned_coach(s.user_id))
  )
$function$
;

CREATE OR REPLACE FUNCTION private.can_read_session_media(folders text[])
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  -- The owner, or the owner's assigned coach (private.is_assigned_coach).
  select coalesce((select o = (select private.current_user_id()) or private.is_assigned_coach(o)
                   from private.session_media_owner(can_read_session_media.folders) o), false)
$function$
;

CREATE OR REPLACE FUNCTION private.idempotency_scope()
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select case when private.caller_role() = 'authenticated' then coalesce((select private.current_user_id())::text, 'anonymous') else 'service' end
$function$
;

CREATE OR REPLACE FUNCTION private.is_assigned_coach(client_id uuid, at timestamp with time zone DEFAULT now())
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  -- Security definer so RLS policies on other tables can call it without recursing
  -- through coach_assignments' own policies. It answers only for the caller ((select private.current_user_id())).
  select (select private.current_user_id()) is not null and exists (
    select 1
    from public.coach_assignments a
    where a.coach_id = (select private.current_user_id())
      and a.client_id = is_assigned_coach.client_id
      and a.starts_at <= is_assigned_coach.at
      and (a.ends_at is null or a.ends_at > is_assigned_coach.at)
  )
$function$
;

CREATE OR REPLACE FUNCTION private.profile_name_parts(user_id uuid)
 RETURNS text[]
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
     or profile_name_parts.user_id = (select private.current_user_id())
     or private.is_assigned_coach(profile_name_parts.user_id)
$function$
;

CREATE OR REPLACE FUNCTION private.record_realtime_delivery(topic text, message_ids uuid[])
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: reads realtime.messages and appends to audit.phi_access_log, neither of
-- which the receiving roles may do; the caller is checked first.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  subject uuid;
  wanted integer;
  found_count integer;
begin
  if record_realtime_delivery.topic is null
     or record_realtime_delivery.topic !~ '^coach_interactions:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return 0;
  end if;
  subject := substr(record_realtime_delivery.topic, char_length('coach_interactions:') + 1)::uuid;

  if caller_role = 'authenticated' then
    if caller is null or (caller <> subject and not private.is_assigned_coach(subject)) then
      raise exception 'Only the user, their assigned coach or the service role can receive these interactions'
        using errcode = '42501';
    end if;
  elsif caller_role not in ('service_role', 'postgres') then
    raise exception 'Only the user, their assigned coach or the service role can receive these interactions'
      using errcode = '42501';
  end if;

  if record_realtime_delivery.message_ids is null
     or cardinality(record_realtime_delivery.message_ids) not between 1 and 1000
     or array_position(record_realtime_delivery.message_ids, null) is not null then
    raise exception 'message_ids must hold 1 to 1000 message ids' using errcode = '22023';
  end if;
  if caller_role = 'authenticated' and caller = subject then
    return 0;
  end if;

  select count(distinct x) into wanted from unnest(record_realtime_delivery.message_ids) x;
  select count(distinct m.id) into found_count
  from realtime.messages m
  where m.id = any (record_realtime_delivery.message_ids)
    and m.topic = record_realtime_delivery.topic
    and m.extension = 'broadcast'
    and m.private;
  if found_count <> wanted then
    raise exception 'message_ids must name private broadcasts of this topic' using errcode = '22023';
  end if;

  perform audit.record_phi_access(subject, 'coach_interactions:realtime', found_count, 'realtime');
  return 1;
end;
$function$
;

CREATE OR REPLACE FUNCTION private.tenant_role(tenant_id uuid)
 RETURNS text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select m.role from public.tenant_members m
  where m.tenant_id = tenant_role.tenant_id and m.user_id = (select private.current_user_id())
$function$
;

CREATE OR REPLACE FUNCTION public.add_milestone(action_plan_id uuid, title text, description text DEFAULT NULL::text, due_date date DEFAULT NULL::date)
 RETURNS public.milestones
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users have no INSERT on milestones; checks plan ownership first.
declare
  result public.milestones;
begin
  if not exists (select 1 from public.action_plans p where p.id = add_milestone.action_plan_id and p.user_id = (select private.current_user_id())) then
    raise exception 'Only the owner of the action plan can add milestones' using errcode = '42501';
  end if;
  insert into public.milestones (action_plan_id, title, description, due_date)
  values (add_milestone.action_plan_id, add_milestone.title, add_milestone.description, add_milestone.due_date)
  returning * into result;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.complete_milestone(milestone_id uuid, completed boolean DEFAULT true)
 RETURNS public.milestones
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users have no UPDATE on milestones; checks plan ownership first.
declare
  result public.milestones;
begin
  update public.milestones m set completed = complete_milestone.completed
  where m.id = complete_milestone.milestone_id
    and exists (select 1 from public.action_plans p where p.id = m.action_plan_id and p.user_id = (select private.current_user_id()))
  returning * into result;
  if result.id is null then
    raise exception 'Only the owner of the action plan can complete its milestones' using errcode = '42501';
  end if;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.create_tenant(name text)
 RETURNS public.tenants
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users cannot insert tenants or memberships directly; this makes the
-- tenant and its first owner together.
declare
  caller uuid := (select private.current_user_id());
  created public.tenants;
begin
  if private.caller_role() <> 'authenticated' or caller is null then
    raise exception 'Only a signed-in user can create a tenant' using errcode = '42501';
  end if;
  if create_tenant.name is null or char_length(btrim(create_tenant.name)) not between 1 and 200 or create_tenant.name ~ '[[:cntrl:]]' then
    raise exception 'name must be 1 to 200 characters without control characters' using errcode = '22023',
      constraint = 'tenants_name_length';
  end if;
  insert into public.tenants (name, created_by) values (btrim(create_tenant.name), caller) returning * into created;
  insert into public.tenant_members (tenant_id, user_id, role) values (created.id, caller, 'owner');
  return created;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.get_coaching_session(session_id uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: an assigned coach reads a client's session, which RLS does not show
-- them directly; the caller is checked first and a coach's read is audited.
declare
  s public.coaching_sessions;
  result jsonb;
begin
  select * into s from public.coaching_sessions c where c.id = get_coaching_session.session_id;
  if not found or not (private.caller_role() in ('service_role', 'postgres') or private.can_read_session(s.id)) then
    return null;
  end if;
  select to_jsonb(s) || jsonb_build_object('stages', coalesce((
    select jsonb_agg(to_jsonb(r) order by r.stage_number) from public.stage_responses r where r.session_id = s.id
  ), '[]'::jsonb)) into result;
  if s.user_id is distinct from (select private.current_user_id()) then
    perform audit.record_phi_access(s.user_id, 'coaching_sessions', 1, 'coaching');
  end if;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.get_game_plan(user_id uuid DEFAULT NULL::uuid, at timestamp with time zone DEFAULT now())
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: a coach reads a client's plan without rights on their tables; the
-- caller is checked first. Volatile: a coach's read is recorded.
declare
  caller uuid := (select private.current_user_id());
  role_name text := private.caller_role();
  target uuid := coalesce(get_game_plan.user_id, caller);
  plan jsonb;
  top_app record;
  snoozed_until timestamptz;
begin
  if target is null then
    raise exception 'Pass the user_id of the game plan to read' using errcode = '22023';
  end if;
  if not (target = caller or role_name in ('service_role', 'postgres') or private.is_assigned_coach(target, get_game_plan.at)) then
    raise exception 'Only the user, their assigned coach or the service role can read a game plan' using errcode = '42501';
  end if;
  select private.micro_task_snoozed_until(p.preferences) into snoozed_until
  from public.profiles p where p.id = target;

  select a.id, o.title, o.application_type, a.last_progress_at into top_app
  from public.applications a
  join public.opportunities o on o.id = a.opportunity_id
  cross join lateral private.momentum_parts(o.deadline, o.trust_score, get_game_plan.at) m
  where a.user_id = target and a.status = 'draft' and m.momentum is not null
  order by m.momentum desc, o.deadline nulls last, o.amount desc nulls last, a.id
  limit 1;

  plan := jsonb_build_object(
    'user_id', target,
    'at', get_game_plan.at,
    'top', coalesce((
      select jsonb_agg(t.item order by t.rank)
      from (
        select row_number() over (order by m.momentum desc, o.deadline nulls last, o.amount desc nulls last, a.id) as rank,
               jsonb_build_object('application_id', a.id, 'opportunity_id', o.id, 'title', o.title, 'provider', o.provider,
                                  'amount', o.amount, 'deadline', o.deadline,
                                  'coach_state', public.db_to_coach_state(a.status, a.metadata),
                                  'momentum', m.momentum, 'deadline_proximity', m.deadline_proximity, 'trust_score', o.trust_score,
                                  'last_progress_at', a.last_progress_at) as item
        from public.applications a
        join public.opportunities o on o.id = a.opportunity_id
        cross join lateral private.momentum_parts(o.deadline, o.trust_score, get_game_plan.at) m
        where a.user_id = target and a.status = 'draft' and m.momentum is not null
      ) t where t.rank <= 3), '[]'::jsonb),
    'check_ins_due', coalesce((
      select jsonb_agg(jsonb_build_object('check_in_id', c.id, 'application_id', c.application_id, 'title', o.title, 'due_at', c.due_at)
                       order by c.due_at)
      from public.check_in_tasks c
      join public.applications a on a.id = c.application_id
      join public.opportunities o on o.id = a.opportunity_id
      where c.user_id = target and c.status = 'pending' and c.due_at <= get_game_plan.at), '[]'::jsonb),
    'micro_task', case
      when top_app.id is not null and top_app.last_progress_at <= get_game_plan.at - interval '48 hours'
           and (snoozed_until is null or snoozed_until <= get_game_plan.at)
      then jsonb_build_object(
        'application_id', top_app.id,
        'stalled_since', top_app.last_progress_at,
        'text', private.micro_task_text(top_app.application_type, top_app.title))
    end,
    'micro_task_snoozed_until', case when snoozed_until > get_game_plan.at then snoozed_until end,
    'total_debt_lifted', (
      select coalesce(sum(o.amount), 0)
      from public.applications a join public.opportunities o on o.id = a.opportunity_id
      where a.user_id = target and a.status = 'awarded' and a.confirmed_at is not null)
  );
  if target is distinct from caller and role_name not in ('service_role', 'postgres') then
    perform audit.record_phi_access(target, 'game_plan', jsonb_array_length(plan -> 'top'), 'coaching');
  end if;
  return plan;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.get_interaction_history(user_id uuid DEFAULT NULL::uuid, page_size integer DEFAULT 100, before uuid DEFAULT NULL::uuid, redacted boolean DEFAULT false, purpose text DEFAULT 'coaching'::text)
 RETURNS SETOF public.coach_interactions
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: coaches and services read other users' rows, which RLS does not show
-- them directly; this function checks the caller first and records every read.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  target uuid := coalesce(get_interaction_history.user_id, caller);
  cursor_at timestamptz;
  cursor_id uuid;
  names text[];
  n integer;
begin
  if target is null then
    raise exception 'user_id is required for service callers' using errcode = '22023';
  end if;
  if caller_role = 'authenticated' then
    if caller is null or (target <> caller and not private.is_assigned_coach(target)) then
      raise exception 'Only the user, their assigned coach or the service role can read these interactions'
        using errcode = '42501';
    end if;
  elsif caller_role not in ('service_role', 'postgres') then
    raise exception 'Role % cannot read interactions', caller_role using errcode = '42501';
  end if;
  if get_interaction_history.page_size is null or get_interaction_history.page_size not between 1 and 100 then
    raise exception 'page_size must be between 1 and 100' using errcode = '22023';
  end if;
  if get_interaction_history.purpose is null or char_length(get_interaction_history.purpose) not between 1 and 200 then
    raise exception 'purpose must be 1 to 200 characters' using errcode = '22023';
  end if;
  if get_interaction_history.before is not null then
    select i.created_at, i.id into cursor_at, cursor_id
    from public.coach_interactions i
    where i.id = get_interaction_history.before and i.user_id = target;
    if not found then
      raise exception 'before does not name an interaction of this user' using errcode = '22023';
    end if;
  end if;
  if get_interaction_history.redacted then
    names := private.profile_name_parts(target);
  end if;

  return query
  select i.id, i.user_id, i.session_id, i.conversation_id, i.request_id, i.sender, i.channel, i.coach_persona,
         case when get_interaction_history.redacted then private.redact_content(i.content, names) else i.content end,
         case when get_interaction_history.redacted then private.redact_content(i.metadata, names) else i.metadata end,
         i.model, i.latency_ms, i.prompt_tokens, i.completion_tokens, i.cached_tokens, i.cost_usd, i.sentiment,
         i.momentum_state, i.status, i.error_code, i.tracked_skill_id_hash, i.created_at, i.actor_id, i.actor_role
  from public.coach_interactions i
  where i.user_id = target
    and (cursor_at is null or (i.created_at, i.id) < (cursor_at, cursor_id))
  order by i.created_at desc, i.id desc
  limit get_interaction_history.page_size;
  get diagnostics n = row_count;

  perform audit.record_phi_access(
    target,
    case when get_interaction_history.redacted then 'coach_interactions:redacted' else 'coach_interactions' end,
    n, get_interaction_history.purpose);
  return;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.get_my_profile()
 RETURNS public.profiles
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select p.* from public.profiles p where p.id = (select private.current_user_id())
$function$
;

CREATE OR REPLACE FUNCTION public.list_action_plans(owner_id uuid DEFAULT NULL::uuid)
 RETURNS TABLE(id uuid, session_id uuid, user_id uuid, title text, description text, goal_statement text, smart_criteria jsonb, priority smallint, status text, timeline_start date, timeline_end date, source text, created_at timestamp with time zone, updated_at timestamp with time zone, coaching_theme text, milestones jsonb)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: an assigned coach reads a client's plans, which RLS does not show them
-- directly; the caller is checked first and a coach's read is audited.
declare
  target uuid := coalesce(list_action_plans.owner_id, (select private.current_user_id()));
  n integer;
begin
  if target is null then
    raise exception 'owner_id is required for service callers' using errcode = '22023';
  end if;
  if private.caller_role() not in ('service_role', 'postgres')
     and target is distinct from (select private.current_user_id()) and not private.is_assigned_coach(target) then
    raise exception 'Only the user, their assigned coach or the service role can read these action plans' using errcode = '42501';
  end if;
  return query
  select p.id, p.session_id, p.user_id, p.title, p.description, p.goal_statement, p.smart_criteria, p.priority,
         p.status, p.timeline_start, p.timeline_end, p.source, p.created_at, p.updated_at,
         coalesce(s.theme, s.summary_data ->> 'goal_statement'),
         coalesce((select jsonb_agg(to_jsonb(m) order by m.due_date nulls last, m.created_at)
                   from public.milestones m where m.action_plan_id = p.id), '[]'::jsonb)
  from public.action_plans p
  left join public.coaching_sessions s on s.id = p.session_id
  where p.user_id = target
  order by p.priority, p.timeline_end nulls last, p.created_at;
  get diagnostics n = row_count;
  if target is distinct from (select private.current_user_id()) then
    perform audit.record_phi_access(target, 'action_plans', n, 'coaching');
  end if;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.list_my_tenants()
 RETURNS TABLE(id uuid, name text, role text, created_at timestamp with time zone)
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select t.id, t.name, m.role, t.created_at
  from public.tenant_members m
  join public.tenants t on t.id = m.tenant_id
  where m.user_id = (select private.current_user_id())
  order by t.name, t.id
$function$
;

CREATE OR REPLACE FUNCTION public.list_session_media(session_id uuid, at timestamp with time zone DEFAULT now())
 RETURNS SETOF public.session_media
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: reconciles the rows with storage.objects (private.sync_session_media)
-- and lets the assigned coach read them; the caller is checked here: the owner, the owner's
-- assigned coach (whose read is recorded in audit.phi_access_log), or the service role.
-- Only the service role may name the clock.
declare
  caller uuid := (select private.current_user_id());
  caller_role text := private.caller_role();
  owner_id uuid;
  page public.session_media[];
begin
  if caller_role not in ('authenticated', 'service_role', 'postgres') or (caller_role = 'authenticated' and caller is null) then
    raise exception 'Only a signed-in user or the service role can list session media' using errcode = '42501';
  end if;
  select s.user_id into owner_id from public.coaching_sessions s where s.id = list_session_media.session_id;
  if owner_id is null or (caller_role = 'authenticated' and owner_id <> caller and not private.is_assigned_coach(owner_id)) then
    raise exception 'session_id does not name a coaching session you can read'
      using errcode = '22023', constraint = 'list_session_media_session';
  end if;
  perform private.sync_session_media(list_session_media.session_id,
    case when caller_role = 'authenticated' then now() else coalesce(list_session_media.at, now()) end);
  select coalesce(array_agg(x order by (x).created_at desc, (x).id desc), '{}') into page
  from (
    select m as x from public.session_media m
    where m.session_id = list_session_media.session_id
    order by m.created_at desc, m.id desc
    limit 500
  ) s;
  if caller_role = 'authenticated' and owner_id <> caller then
    perform audit.record_phi_access(owner_id, 'session_media', cardinality(page), 'coaching');
  end if;
  return query select * from unnest(page);
end;
$function$
;

CREATE OR REPLACE FUNCTION public.log_coach_interaction(sender text, content jsonb, request_id text DEFAULT NULL::text, user_id uuid DEFAULT NULL::uuid, channel text DEFAULT 'chat'::text, session_id uuid DEFAULT NULL::uuid, conversation_id uuid DEFAULT NULL::uuid, coach_persona text DEFAULT NULL::text, metadata jsonb DEFAULT '{}'::jsonb, model text DEFAULT NULL::text, latency_ms integer DEFAULT NULL::integer, prompt_tokens integer DEFAULT NULL::integer, completion_tokens integer DEFAULT NULL::integer, cached_tokens integer DEFAULT NULL::integer, cost_usd numeric DEFAULT NULL::numeric, sentiment real DEFAULT NULL::real, momentum_state text DEFAULT NULL::text, status text DEFAULT 'ok'::text, error_code text DEFAULT NULL::text, tracked_skill_id_hash text DEFAULT NULL::text, created_at timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS public.logged_interaction
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET "TimeZone" TO 'UTC'
 SET extra_float_digits TO '1'
AS $function$
-- Security definer: API roles have no INSERT on coach_interactions and coach_ingest has no
-- privileges at all; this function is the write path and checks its caller first.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  scope text := private.idempotency_scope();
  target uuid;
  key text := coalesce(log_coach_interaction.request_id, gen_random_uuid()::text);
  at timestamptz := coalesce(log_coach_interaction.created_at, now());
  payload_hash text;
  legacy_hash text;
  problem text;
  existing private.interaction_requests;
  computed_cost numeric;
  stored public.coach_interactions;
begin
  -- Who may write what.
  if caller_role = 'authenticated' then
    if caller is null then
      raise exception 'Only a signed-in user can log interactions' using errcode = '42501';
    end if;
    if log_coach_interaction.created_at is not null then
      raise exception 'Only the service role can set created_at' using errcode = '42501';
    end if;
    target := coalesce(log_coach_interaction.user_id, caller);
    if target = caller then
      if log_coach_interaction.sender <> 'user' then
        raise exception 'A user can only log messages with sender user' using errcode = '42501';
      end if;
    elsif private.is_assigned_coach(target) then
      if log_coach_interaction.sender <> 'human_coach' then
        raise exception 'An assigned coach can only log messages with sender human_coach' using errcode = '42501';
      end if;
    else
      raise exception 'Only the user, their assigned coach or the service role can log interactions for this user'
        using errcode = '42501';
    end if;
  elsif caller_role in ('service_role', 'coach_ingest', 'postgres') then
    target := log_coach_interaction.user_id;
    if target is null then
      raise exception 'user_id is required for service and ingest callers' using errcode = '22023';
    end if;
  else
    raise exception 'Role % cannot log interactions', caller_role using errcode = '42501';
  end if;

  if not exists (select 1 from public.profiles p where p.id = target) then
    raise exception 'user_id does not name a user' using errcode = '23503';
  end if;
  -- One answer whether the session does not exist or belongs to someone else.
  if log_coach_interaction.session_id is not null and not exists (
    select 1 from public.coaching_sessions s where s.id = log_coach_interaction.session_id and s.user_id = target
  ) then
    raise exception 'session_id does not name a coaching session of this user' using errcode = '23503',
      constraint = 'coach_interactions_session_id_fkey';
  end if;
  problem := private.json_bound_violation('interaction_content', log_coach_interaction.content);
  if problem is not null then
    raise exception 'content %', problem using errcode = '23514', constraint = 'coach_interactions_content_bounded';
  end if;
  problem := private.json_bound_violation('interaction_metadata', log_coach_interaction.metadata);
  if problem is not null then
    raise exception 'metadata %', problem using errcode = '23514', constraint = 'coach_interactions_metadata_bounded';
  end if;

  -- Idempotency. The hash covers the normalised request (defaults filled in) except the key.
  payload_hash := encode(extensions.digest(jsonb_build_array(
    target, log_coach_interaction.sender, log_coach_interaction.content, coalesce(log_coach_interaction.channel, 'chat'),
    log_coach_interaction.session_id, log_coach_interaction.conversation_id, log_coach_interaction.coach_persona,
    coalesce(log_coach_interaction.metadata, '{}'::jsonb), log_coach_interaction.model, log_coach_interaction.latency_ms,
    log_coach_interaction.prompt_tokens, log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens,
    trim_scale(log_coach_interaction.cost_usd), log_coach_interaction.sentiment, log_coach_interaction.momentum_state,
    coalesce(log_coach_interaction.status, 'ok'), log_coach_interaction.error_code, log_coach_interaction.tracked_skill_id_hash,
    log_coach_interaction.created_at, 'v2')::text, 'sha256'), 'hex');

  -- Another transaction holding this key's lock is the same request still in flight.
  if not pg_try_advisory_xact_lock(hashtextextended(target::text || '/' || scope || '/' || key, 7)) then
    raise exception 'A request with this request_id is still being processed' using errcode = 'PT409',
      hint = 'Retry after it completes; the retry returns its result.';
  end if;

  select * into existing from private.interaction_requests r
  where r.user_id = target and r.actor_scope = scope and r.request_id = key;
  if found then
    if existing.payload_hash <> payload_hash then
      -- Keys stored before normalisation hold the hash of the raw arguments.
      legacy_hash := encode(extensions.digest(jsonb_build_array(
        target, log_coach_interaction.sender, log_coach_interaction.content, log_coach_interaction.channel,
        log_coach_interaction.session_id, log_coach_interaction.conversation_id, log_coach_interaction.coach_persona,
        log_coach_interaction.metadata, log_coach_interaction.model, log_coach_interaction.latency_ms,
        log_coach_interaction.prompt_tokens, log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens,
        log_coach_interaction.cost_usd, log_coach_interaction.sentiment, log_coach_interaction.momentum_state,
        log_coach_interaction.status, log_coach_interaction.error_code, log_coach_interaction.tracked_skill_id_hash,
        log_coach_interaction.created_at)::text, 'sha256'), 'hex');
      if existing.payload_hash <> legacy_hash then
        raise exception 'request_id was already used with a different payload' using errcode = 'PT422',
          hint = 'Use a new request_id for a new interaction.';
      end if;
    end if;
    select * into stored from public.coach_interactions i where i.id = existing.interaction_id;
    return row(stored, true)::public.logged_interaction;
  end if;

  computed_cost := private.interaction_cost(
    log_coach_interaction.model, at, log_coach_interaction.prompt_tokens,
    log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens);

  insert into public.coach_interactions (
    user_id, session_id, conversation_id, request_id, sender, channel, coach_persona, content, metadata,
    model, latency_ms, prompt_tokens, completion_tokens, cached_tokens, cost_usd, sentiment, momentum_state,
    status, error_code, tracked_skill_id_hash, created_at, actor_id, actor_role)
  values (
    target, log_coach_interaction.session_id, log_coach_interaction.conversation_id, key,
    log_coach_interaction.sender, coalesce(log_coach_interaction.channel, 'chat'), log_coach_interaction.coach_persona,
    log_coach_interaction.content, coalesce(log_coach_interaction.metadata, '{}'::jsonb),
    log_coach_interaction.model, log_coach_interaction.latency_ms, log_coach_interaction.prompt_tokens,
    log_coach_interaction.completion_tokens, log_coach_interaction.cached_tokens,
    coalesce(computed_cost, log_coach_interaction.cost_usd), log_coach_interaction.sentiment,
    log_coach_interaction.momentum_state, coalesce(log_coach_interaction.status, 'ok'), log_coach_interaction.error_code,
    log_coach_interaction.tracked_skill_id_hash, at, caller, caller_role)
  returning * into stored;

  insert into private.interaction_requests (user_id, actor_scope, request_id, interaction_id, payload_hash)
  values (target, scope, key, stored.id, payload_hash);

  return row(stored, false)::public.logged_interaction;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.log_event(kind text, request_id text DEFAULT NULL::text, user_id uuid DEFAULT NULL::uuid, interaction_id uuid DEFAULT NULL::uuid, session_id uuid DEFAULT NULL::uuid, group_id uuid DEFAULT NULL::uuid, category text DEFAULT NULL::text, score smallint DEFAULT NULL::smallint, payload jsonb DEFAULT '{}'::jsonb, tracked_skill_id_hash text DEFAULT NULL::text, created_at timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS public.logged_event
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET "TimeZone" TO 'UTC'
AS $function$
-- Security definer: API roles have no INSERT on interaction_events and coach_ingest has no
-- privileges at all; this function is the write path and checks its caller first.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  scope text := private.idempotency_scope();
  target uuid;
  key text := coalesce(log_event.request_id, gen_random_uuid()::text);
  payload_hash text;
  problem text;
  existing private.event_requests;
  stored public.interaction_events;
begin
  if caller_role = 'authenticated' then
    if caller is null then
      raise exception 'Only a signed-in user can log events' using errcode = '42501';
    end if;
    if log_event.created_at is not null then
      raise exception 'Only the service role or an ingest token can set created_at' using errcode = '42501';
    end if;
    target := coalesce(log_event.user_id, caller);
    if target <> caller then
      raise exception 'Only the user, the service role or an ingest token can log events for this user' using errcode = '42501';
    end if;
  elsif caller_role in ('service_role', 'coach_ingest', 'postgres') then
    target := log_event.user_id;
    if target is null then
      raise exception 'user_id is required for service and ingest callers' using errcode = '22023',
        constraint = 'interaction_events_user_id_fkey';
    end if;
  else
    raise exception 'Role % cannot log events', caller_role using errcode = '42501';
  end if;

  if key !~ '^[A-Za-z0-9._:-]{1,128}$' then
    raise exception 'request_id must be 1 to 128 letters, digits or . _ : -' using errcode = '22023',
      constraint = 'interaction_events_request_id_format';
  end if;
  if not exists (select 1 from public.profiles p where p.id = target) then
    raise exception 'user_id does not name a user' using errcode = '23503', constraint = 'interaction_events_user_id_fkey';
  end if;
  if log_event.interaction_id is not null and not exists (
    select 1 from public.coach_interactions i where i.id = log_event.interaction_id and i.user_id = target
  ) then
    raise exception 'interaction_id does not name an interaction of this user' using errcode = '23503',
      constraint = 'interaction_events_interaction_id_fkey';
  end if;
  if log_event.session_id is not null and not exists (
    select 1 from public.coaching_sessions s where s.id = log_event.session_id and s.user_id = target
  ) then
    raise exception 'session_id does not name a coaching session of this user' using errcode = '23503',
      constraint = 'interaction_events_session_id_fkey';
  end if;
  problem := private.json_bound_violation('event_payload', log_event.payload);
  if problem is not null then
    raise exception 'payload %', problem using errcode = '23514', constraint = 'interaction_events_payload_bounded';
  end if;
  -- The table's own rules, checked here: a constraint's error carries the whole failing row
  -- in its DETAIL (the payload, and a raw id passed by mistake as the hash).
  if log_event.kind is null or log_event.kind not in ('delivered', 'read', 'rating', 'feedback', 'error', 'session_state') then
    raise exception 'kind must be one of delivered, read, rating, feedback, error, session_state' using errcode = '22023',
      constraint = 'interaction_events_kind_known';
  end if;
  if (log_event.kind = 'rating') <> (log_event.score is not null) then
    raise exception 'score is required exactly when kind is rating' using errcode = '22023', constraint = 'interaction_events_rating_has_score';
  end if;
  if log_event.score not between 1 and 5 then
    raise exception 'score must be between 1 and 5' using errcode = '22023', constraint = 'interaction_events_score_range';
  end if;
  if log_event.category is not null and (char_length(log_event.category) not between 1 and 100 or log_event.category ~ '[[:cntrl:]]') then
    raise exception 'category must be 1 to 100 characters without control characters' using errcode = '22023',
      constraint = 'interaction_events_category_length';
  end if;
  if log_event.payload is not null and jsonb_typeof(log_event.payload) <> 'object' then
    raise exception 'payload must be a JSON object' using errcode = '22023', constraint = 'interaction_events_payload_object';
  end if;
  if log_event.tracked_skill_id_hash is not null and log_event.tracked_skill_id_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'tracked_skill_id_hash must be 64 lowercase hex digits (the keyed hash, never a raw id)' using errcode = '22023',
      constraint = 'interaction_events_tracked_skill_id_hash_format';
  end if;

  -- The hash covers the normalised request (defaults filled in) except the key.
  payload_hash := encode(extensions.digest(jsonb_build_array(
    target, log_event.kind, log_event.interaction_id, log_event.session_id, log_event.group_id, log_event.category,
    log_event.score, coalesce(log_event.payload, '{}'::jsonb), log_event.tracked_skill_id_hash, log_event.created_at,
    'event-v1')::text, 'sha256'), 'hex');

  if not pg_try_advisory_xact_lock(hashtextextended(target::text || '/' || scope || '/event/' || key, 7)) then
    raise exception 'A request with this request_id is still being processed' using errcode = 'PT409',
      hint = 'Retry after it completes; the retry returns its result.';
  end if;

  select * into existing from private.event_requests r
  where r.user_id = target and r.actor_scope = scope and r.request_id = key;
  if found then
    if existing.payload_hash <> payload_hash then
      raise exception 'request_id was already used with a different payload' using errcode = 'PT422',
        hint = 'Use a new request_id for a new event.';
    end if;
    select * into stored from public.interaction_events e where e.id = existing.event_id;
    return row(stored, true)::public.logged_event;
  end if;

  insert into public.interaction_events (
    interaction_id, user_id, session_id, group_id, request_id, kind, category, score, payload,
    tracked_skill_id_hash, created_at, actor_id, actor_role)
  values (
    log_event.interaction_id, target, log_event.session_id, log_event.group_id, key, log_event.kind,
    log_event.category, log_event.score, coalesce(log_event.payload, '{}'::jsonb), log_event.tracked_skill_id_hash,
    coalesce(log_event.created_at, now()), caller, caller_role)
  returning * into stored;

  insert into private.event_requests (user_id, actor_scope, request_id, event_id, payload_hash)
  values (target, scope, key, stored.id, payload_hash);

  return row(stored, false)::public.logged_event;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.log_interaction_event(kind text, interaction_id uuid DEFAULT NULL::uuid, user_id uuid DEFAULT NULL::uuid, session_id uuid DEFAULT NULL::uuid, group_id uuid DEFAULT NULL::uuid, request_id text DEFAULT NULL::text, category text DEFAULT NULL::text, score smallint DEFAULT NULL::smallint, payload jsonb DEFAULT '{}'::jsonb, tracked_skill_id_hash text DEFAULT NULL::text, created_at timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS public.interaction_events
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: the event table has no INSERT grant for API roles; this function is
-- the write path and checks its caller first.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
  target uuid;
  problem text;
  result public.interaction_events;
begin
  if caller_role = 'authenticated' then
    if caller is null then
      raise exception 'Only a signed-in user can log events' using errcode = '42501';
    end if;
    if log_interaction_event.created_at is not null then
      raise exception 'Only the service role can set created_at' using errcode = '42501';
    end if;
    target := coalesce(log_interaction_event.user_id, caller);
    if target <> caller then
      raise exception 'Only the user or the service role can log events for this user' using errcode = '42501';
    end if;
  elsif caller_role in ('service_role', 'postgres') then
    target := log_interaction_event.user_id;
    if target is null then
      raise exception 'user_id is required for service callers' using errcode = '22023';
    end if;
  else
    raise exception 'Role % cannot log events', caller_role using errcode = '42501';
  end if;

  if log_interaction_event.interaction_id is not null and not exists (
    select 1 from public.coach_interactions i
    where i.id = log_interaction_event.interaction_id and i.user_id = target
  ) then
    raise exception 'interaction_id does not name an interaction of this user' using errcode = '23503';
  end if;
  if log_interaction_event.session_id is not null and not exists (
    select 1 from public.coaching_sessions s where s.id = log_interaction_event.session_id and s.user_id = target
  ) then
    raise exception 'session_id does not name a coaching session of this user' using errcode = '23503',
      constraint = 'interaction_events_session_id_fkey';
  end if;
  problem := private.json_bound_violation('event_payload', log_interaction_event.payload);
  if problem is not null then
    raise exception 'payload %', problem using errcode = '23514', constraint = 'interaction_events_payload_bounded';
  end if;

  insert into public.interaction_events (
    interaction_id, user_id, session_id, group_id, request_id, kind, category, score, payload,
    tracked_skill_id_hash, created_at, actor_id, actor_role)
  values (
    log_interaction_event.interaction_id, target, log_interaction_event.session_id, log_interaction_event.group_id,
    log_interaction_event.request_id, log_interaction_event.kind, log_interaction_event.category,
    log_interaction_event.score, coalesce(log_interaction_event.payload, '{}'::jsonb),
    log_interaction_event.tracked_skill_id_hash, coalesce(log_interaction_event.created_at, now()), caller, caller_role)
  returning * into result;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.move_application(application_id uuid, state text, at timestamp with time zone DEFAULT now())
 RETURNS public.applications
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users cannot write applications; only the owner may move one.
declare
  app public.applications;
begin
  select * into app from public.applications a where a.id = move_application.application_id for update;
  if not found or app.user_id is distinct from (select private.current_user_id()) then
    raise exception 'Application not found' using errcode = 'PT404';
  end if;
  return private._apply_application_state(app, move_application.state, true, move_application.at);
end;
$function$
;

CREATE OR REPLACE FUNCTION public.persist_assessment_summary(request_id text, session_id uuid, overall_score numeric, criteria jsonb, rubric_version integer DEFAULT 1, group_id uuid DEFAULT NULL::uuid, strengths text[] DEFAULT '{}'::text[], improvements text[] DEFAULT '{}'::text[], model text DEFAULT NULL::text, tracked_skill_id_hash text DEFAULT NULL::text, created_at timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS public.persisted_assessment
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: no API role may insert into assessments; this is the write path and
-- checks its caller first.
declare
  caller_role text := private.caller_role();
  target uuid;
  problem text;
  existing public.assessments;
  stored public.assessments;
  given jsonb;
begin
  if caller_role not in ('service_role', 'coach_ingest', 'postgres') then
    raise exception 'Only the service role or an ingest token can persist assessments' using errcode = '42501';
  end if;
  if persist_assessment_summary.request_id is null or persist_assessment_summary.request_id !~ '^[A-Za-z0-9._:-]{1,128}$' then
    raise exception 'request_id is required: 1 to 128 letters, digits or . _ : -' using errcode = '22023',
      constraint = 'assessments_request_id_format';
  end if;
  select s.user_id into target from public.coaching_sessions s where s.id = persist_assessment_summary.session_id;
  if target is null then
    raise exception 'session_id does not name a coaching session' using errcode = '23503',
      constraint = 'assessments_session_id_fkey';
  end if;
  if persist_assessment_summary.rubric_version is null or persist_assessment_summary.rubric_version not between 1 and 1000 then
    raise exception 'rubric_version must be between 1 and 1000' using errcode = '22023',
      constraint = 'assessments_rubric_version_range';
  end if;
  if persist_assessment_summary.overall_score is null or persist_assessment_summary.overall_score not between 0 and 5 then
    raise exception 'overall_score must be between 0 and 5' using errcode = '22023',
      constraint = 'assessments_overall_score_range';
  end if;
  problem := private.assessment_violation('criteria', persist_assessment_summary.criteria);
  if problem is not null then
    raise exception 'criteria %', problem using errcode = '22023', constraint = 'assessments_criteria_valid';
  end if;
  problem := private.assessment_violation('strengths', to_jsonb(coalesce(persist_assessment_summary.strengths, '{}')));
  if problem is not null then
    raise exception 'strengths %', problem using errcode = '22023', constraint = 'assessments_strengths_valid';
  end if;
  problem := private.assessment_violation('improvements', to_jsonb(coalesce(persist_assessment_summary.improvements, '{}')));
  if problem is not null then
    raise exception 'improvements %', problem using errcode = '22023', constraint = 'assessments_improvements_valid';
  end if;
  -- Checked here rather than left to the table's constraints: a constraint's error carries
  -- the whole failing row in its DETAIL (free text, and a raw id passed by mistake).
  if persist_assessment_summary.model is not null and char_length(persist_assessment_summary.model) not between 1 and 200 then
    raise exception 'model must be 1 to 200 characters' using errcode = '22023', constraint = 'assessments_model_length';
  end if;
  if persist_assessment_summary.tracked_skill_id_hash is not null and persist_assessment_summary.tracked_skill_id_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'tracked_skill_id_hash must be 64 lowercase hex digits (the keyed hash, never a raw id)' using errcode = '22023',
      constraint = 'assessments_tracked_skill_id_hash_format';
  end if;

  -- Concurrent calls with one key queue here; the first commits, the rest replay it.
  perform pg_advisory_xact_lock(hashtextextended('assessment/' || persist_assessment_summary.request_id, 7));

  given := jsonb_build_object(
    'session_id', persist_assessment_summary.session_id, 'group_id', persist_assessment_summary.group_id,
    'rubric_version', persist_assessment_summary.rubric_version,
    'overall_score', round(persist_assessment_summary.overall_score, 2),
    'criteria', persist_assessment_summary.criteria,
    'strengths', to_jsonb(coalesce(persist_assessment_summary.strengths, '{}')),
    'improvements', to_jsonb(coalesce(persist_assessment_summary.improvements, '{}')),
    'model', persist_assessment_summary.model, 'tracked_skill_id_hash', persist_assessment_summary.tracked_skill_id_hash,
    -- A backfill's timestamp is part of its payload; a live call's (now) is not.
    'created_at', persist_assessment_summary.created_at);
  select * into existing from public.assessments a where a.request_id = persist_assessment_summary.request_id;
  if found then
    if given is distinct from jsonb_build_object(
      'session_id', existing.session_id, 'group_id', existing.group_id, 'rubric_version', existing.rubric_version,
      'overall_score', existing.overall_score, 'criteria', existing.criteria, 'strengths', to_jsonb(existing.strengths),
      'improvements', to_jsonb(existing.improvements), 'model', existing.model,
      'tracked_skill_id_hash', existing.tracked_skill_id_hash,
      'created_at', case when persist_assessment_summary.created_at is not null then existing.created_at end) then
      raise exception 'request_id was already used with a different payload' using errcode = 'PT422',
        hint = 'Use a new request_id for a new assessment.';
    end if;
    return row(existing, true)::public.persisted_assessment;
  end if;

  select * into existing from public.assessments a
  where a.session_id = persist_assessment_summary.session_id
    and a.group_id is not distinct from persist_assessment_summary.group_id
    and a.rubric_version = persist_assessment_summary.rubric_version;
  if found then
    raise exception 'This session already has an assessment for this group and rubric version (%)', existing.id
      using errcode = 'PT409', hint = 'Replay its request_id to read it, or score with a new rubric version.';
  end if;

  begin
    insert into public.assessments (
      session_id, group_id, user_id, request_id, rubric_version, overall_score, criteria, strengths, improvements,
      model, tracked_skill_id_hash, created_at, actor_id, actor_role)
    values (
      persist_assessment_summary.session_id, persist_assessment_summary.group_id, target,
      persist_assessment_summary.request_id, persist_assessment_summary.rubric_version,
      round(persist_assessment_summary.overall_score, 2), persist_assessment_summary.criteria,
      coalesce(persist_assessment_summary.strengths, '{}'), coalesce(persist_assessment_summary.improvements, '{}'),
      persist_assessment_summary.model, persist_assessment_summary.tracked_skill_id_hash,
      coalesce(persist_assessment_summary.created_at, now()), (select private.current_user_id()), caller_role)
    returning * into stored;
  exception when unique_violation then
    -- Another key wrote the same (session, group, rubric version) at the same moment.
    raise exception 'This session already has an assessment for this group and rubric version' using errcode = 'PT409',
      hint = 'Replay its request_id to read it, or score with a new rubric version.';
  end;
  return row(stored, false)::public.persisted_assessment;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.propose_application_state(application_id uuid, state text, expires_in interval DEFAULT '7 days'::interval, at timestamp with time zone DEFAULT now())
 RETURNS public.application_state_proposals
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
  values (app.id, app.user_id, propose_application_state.state, (select private.current_user_id()), role_name,
          propose_application_state.at, propose_application_state.at + propose_application_state.expires_in)
  on conflict (application_id) where status = 'pending' do nothing
  returning * into result;
  if result.id is null then
    raise exception 'A proposal for this application is already pending' using errcode = 'PT409';
  end if;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.remove_tenant_member(tenant_id uuid, user_id uuid)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: memberships are written only here and in add_tenant_member.
declare
  service boolean := private.caller_role() in ('service_role', 'postgres');
  mine text := private.tenant_role(remove_tenant_member.tenant_id);
  theirs text;
begin
  if not service and private.caller_role() <> 'authenticated' then
    raise exception 'Only a signed-in user or the service role can manage members' using errcode = '42501';
  end if;
  if (service and not exists (select 1 from public.tenants t where t.id = remove_tenant_member.tenant_id))
     or (not service and mine is null) then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  perform 1 from public.tenants t where t.id = remove_tenant_member.tenant_id for update;
  select m.role into theirs from public.tenant_members m
  where m.tenant_id = remove_tenant_member.tenant_id and m.user_id = remove_tenant_member.user_id;
  if theirs is null then
    return false;
  end if;
  if not service and remove_tenant_member.user_id <> (select private.current_user_id()) and not (
    mine = 'owner' or (mine = 'admin' and theirs in ('member', 'coach'))
  ) then
    raise exception 'Only an owner, or an admin for members and coaches, can remove this member' using errcode = '42501';
  end if;
  if theirs = 'owner' and not exists (
    select 1 from public.tenant_members m
    where m.tenant_id = remove_tenant_member.tenant_id and m.role = 'owner' and m.user_id <> remove_tenant_member.user_id
  ) then
    raise exception 'A tenant keeps at least one owner' using errcode = 'PT409', hint = 'Make another member owner first.';
  end if;
  delete from public.tenant_members m
  where m.tenant_id = remove_tenant_member.tenant_id and m.user_id = remove_tenant_member.user_id;
  return true;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.respond_to_proposal(proposal_id uuid, accept boolean, at timestamp with time zone DEFAULT now())
 RETURNS public.application_state_proposals
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users cannot write proposals or applications; only the owner answers.
declare
  p public.application_state_proposals;
  app public.applications;
begin
  select * into p from public.application_state_proposals x where x.id = respond_to_proposal.proposal_id for update;
  if not found or p.user_id is distinct from (select private.current_user_id()) then
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
$function$
;

CREATE OR REPLACE FUNCTION public.save_stage_response(session_id uuid, stage_number integer, responses jsonb, complete boolean DEFAULT true)
 RETURNS public.stage_responses
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users have no write grants on sessions, stages or events; checks the
-- caller owns the session first.
declare
  s public.coaching_sessions := private._session_owned_by_caller(save_stage_response.session_id);
  previous public.stage_responses;
  errors text[];
  problem text;
  result public.stage_responses;
begin
  if s.is_complete then
    raise exception 'The coaching session is complete; its stages can no longer change' using errcode = 'PT409';
  end if;
  if save_stage_response.stage_number is null or save_stage_response.stage_number not between 1 and 5 then
    raise exception 'stage_number must be from 1 to 5' using errcode = '22023';
  end if;
  if save_stage_response.stage_number > s.current_stage then
    raise exception 'Stage % cannot be saved before stage % is complete', save_stage_response.stage_number, s.current_stage
      using errcode = 'PT409';
  end if;
  problem := private.json_bound_violation('stage_responses', save_stage_response.responses);
  if problem is not null then
    raise exception 'responses %', problem using errcode = '23514', constraint = 'stage_responses_responses_bounded';
  end if;
  if save_stage_response.complete then
    errors := private.stage_response_errors(save_stage_response.stage_number, save_stage_response.responses);
    if cardinality(errors) > 0 then
      raise exception 'Stage % responses are invalid: %', save_stage_response.stage_number, array_to_string(errors, '; ')
        using errcode = '22023', detail = array_to_json(errors)::text;
    end if;
  elsif jsonb_typeof(save_stage_response.responses) is distinct from 'object' then
    raise exception 'responses must be a JSON object' using errcode = '22023';
  end if;

  select * into previous from public.stage_responses r
  where r.session_id = s.id and r.stage_number = save_stage_response.stage_number;
  if found then
    -- Re-saving keeps the history: the replaced responses go to the event log.
    insert into public.interaction_events (user_id, session_id, kind, category, payload, actor_id, actor_role)
    values (s.user_id, s.id, 'session_state', 'stage_response_replaced',
            jsonb_build_object('stage_number', previous.stage_number, 'responses', previous.responses,
                               'completed_at', previous.completed_at, 'replaced_at', now()),
            (select private.current_user_id()), 'authenticated');
    update public.stage_responses r
       set responses = save_stage_response.responses,
           completed_at = case when save_stage_response.complete then coalesce(r.completed_at, now()) end
     where r.id = previous.id
    returning * into result;
  else
    insert into public.stage_responses (session_id, stage_number, responses, completed_at)
    values (s.id, save_stage_response.stage_number, save_stage_response.responses,
            case when save_stage_response.complete then now() end)
    returning * into result;
  end if;

  if save_stage_response.complete and save_stage_response.stage_number = s.current_stage and s.current_stage < 5 then
    update public.coaching_sessions c set current_stage = s.current_stage + 1 where c.id = s.id;
  end if;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.snooze_micro_task(until timestamp with time zone, at timestamp with time zone DEFAULT now())
 RETURNS public.profiles
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users have no direct UPDATE on profiles.preferences outside
-- update_my_profile; this changes one key of the caller's own profile.
declare
  caller uuid := (select private.current_user_id());
  nearest timestamptz;
  result public.profiles;
begin
  if caller is null then
    raise exception 'Only a signed-in user can snooze their micro-task' using errcode = '42501';
  end if;
  if snooze_micro_task.until is null or snooze_micro_task.until <= snooze_micro_task.at then
    raise exception 'A snooze must end in the future' using errcode = '22023';
  end if;
  select min(o.deadline) into nearest
  from public.applications a join public.opportunities o on o.id = a.opportunity_id
  where a.user_id = caller and a.status = 'draft' and o.deadline > snooze_micro_task.at;
  if nearest is not null and snooze_micro_task.until > nearest then
    raise exception 'A snooze cannot end after your nearest deadline (%)', to_char(nearest at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
      using errcode = '22023';
  end if;
  update public.profiles p
     set preferences = p.preferences || jsonb_build_object('micro_task_snoozed_until', snooze_micro_task.until)
   where p.id = caller
  returning * into result;
  if result.id is null then
    raise exception 'No profile for this user' using errcode = 'PT404';
  end if;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.start_coaching_session(session_type text DEFAULT 'self_coaching'::text, theme text DEFAULT NULL::text, coach_id uuid DEFAULT NULL::uuid)
 RETURNS public.coaching_sessions
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users have no INSERT on coaching_sessions; checks the caller first.
declare
  result public.coaching_sessions;
begin
  if (select private.current_user_id()) is null then
    raise exception 'Only a signed-in user can start a coaching session' using errcode = '42501';
  end if;
  if start_coaching_session.coach_id is not null and not exists (
    select 1 from public.coach_assignments a
    where a.coach_id = start_coaching_session.coach_id and a.client_id = (select private.current_user_id())
      and a.starts_at <= now() and (a.ends_at is null or a.ends_at > now())
  ) then
    raise exception 'coach_id must be your assigned coach' using errcode = '22023';
  end if;
  insert into public.coaching_sessions (user_id, coach_id, session_type, theme)
  values ((select private.current_user_id()), start_coaching_session.coach_id, start_coaching_session.session_type, start_coaching_session.theme)
  returning * into result;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.start_session_media_upload(session_id uuid, kind text, basename text, mime_type text, bytes bigint, duration_ms integer DEFAULT NULL::integer, tracked_skill_id_hash text DEFAULT NULL::text, at timestamp with time zone DEFAULT now())
 RETURNS public.session_media
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: session_media is written by the service role only, and the bucket's
-- limits are in storage.buckets, which signed-in users cannot read. The caller is checked
-- here: a signed-in user for their own session, or the service role for any session. Only
-- the service role may name the clock (`at`); a user's upload starts now.
declare
  caller uuid := (select private.current_user_id());
  caller_role text := private.caller_role();
  owner_id uuid;
  b storage.buckets;
  mime text := lower(btrim(start_session_media_upload.mime_type));
  started timestamptz;
  ts bigint;
  inserted public.session_media;
begin
  if caller_role not in ('authenticated', 'service_role', 'postgres') or (caller_role = 'authenticated' and caller is null) then
    raise exception 'Only a signed-in user or the service role can upload session media' using errcode = '42501';
  end if;
  started := case when caller_role = 'authenticated' then now() else coalesce(start_session_media_upload.at, now()) end;
  ts := floor(extract(epoch from started) * 1000)::bigint;
  select s.user_id into owner_id from public.coaching_sessions s where s.id = start_session_media_upload.session_id;
  if owner_id is null or (caller_role = 'authenticated' and owner_id <> caller) then
    raise exception 'session_id does not name one of your coaching sessions'
      using errcode = '22023', constraint = 'start_session_media_upload_session';
  end if;
  if start_session_media_upload.kind is null or start_session_media_upload.kind not in ('audio', 'transcript') then
    raise exception 'kind must be audio or transcript' using errcode = '22023', constraint = 'start_session_media_upload_kind';
  end if;
  select * into b from storage.buckets where id = 'session-media';
  if mime is null or not (mime = any (b.allowed_mime_types))
     or private.media_kind_of(mime) is distinct from start_session_media_upload.kind then
    raise exception 'content_type % is not allowed for %: use one of %', coalesce(mime, 'null'), start_session_media_upload.kind,
      array_to_string(array(select t from unnest(b.allowed_mime_types) t
                            where private.media_kind_of(t) = start_session_media_upload.kind), ', ')
      using errcode = '22023', constraint = 'start_session_media_upload_content_type';
  end if;
  if start_session_media_upload.bytes is null or start_session_media_upload.bytes < 1
     or start_session_media_upload.bytes > coalesce(b.file_size_limit, 104857600) then
    raise exception 'bytes must be between 1 and % (the bucket''s limit)', coalesce(b.file_size_limit, 104857600)
      using errcode = '22023', constraint = 'start_session_media_upload_bytes';
  end if;
  -- Two uploads of one name in one millisecond: the next millisecond is the later one's.
  for attempt in 0 .. 4 loop
    insert into public.session_media (session_id, user_id, kind, storage_path, mime_type, bytes, duration_ms,
                                      tracked_skill_id_hash, created_at, upload_expires_at)
    values (start_session_media_upload.session_id, owner_id, start_session_media_upload.kind,
            'u/' || owner_id || '/s/' || start_session_media_upload.session_id || '/' || (ts + attempt) || '/' || start_session_media_upload.basename,
            mime, start_session_media_upload.bytes, start_session_media_upload.duration_ms,
            start_session_media_upload.tracked_skill_id_hash, started, started + interval '10 minutes')
    on conflict (bucket_id, storage_path) do nothing
    returning * into inserted;
    exit when inserted.id is not null;
  end loop;
  if inserted.id is null then
    raise exception 'Too many uploads of % at once; retry', start_session_media_upload.basename using errcode = 'PT409';
  end if;
  return inserted;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.track_opportunity(opportunity_id uuid DEFAULT NULL::uuid, title text DEFAULT NULL::text, provider text DEFAULT NULL::text, amount numeric DEFAULT NULL::numeric, deadline timestamp with time zone DEFAULT NULL::timestamp with time zone, trust_score numeric DEFAULT NULL::numeric, application_type text DEFAULT NULL::text, url text DEFAULT NULL::text)
 RETURNS public.applications
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users cannot write opportunities or applications; checks the caller
-- and what they may see first.
declare
  caller uuid := (select private.current_user_id());
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
$function$
;

CREATE OR REPLACE FUNCTION public.update_action_plan(action_plan_id uuid, status text DEFAULT NULL::text, title text DEFAULT NULL::text, description text DEFAULT NULL::text, priority smallint DEFAULT NULL::smallint, timeline_start date DEFAULT NULL::date, timeline_end date DEFAULT NULL::date)
 RETURNS public.action_plans
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
-- Security definer: users have no UPDATE on action_plans; checks ownership first.
declare
  result public.action_plans;
  edited text[] := array_remove(array[
    case when update_action_plan.title is not null then 'title' end,
    case when update_action_plan.description is not null then 'description' end,
    case when update_action_plan.priority is not null then 'priority' end,
    case when update_action_plan.timeline_start is not null then 'timeline_start' end,
    case when update_action_plan.timeline_end is not null then 'timeline_end' end], null);
begin
  update public.action_plans p
     set status = coalesce(update_action_plan.status, p.status),
         title = coalesce(update_action_plan.title, p.title),
         description = coalesce(update_action_plan.description, p.description),
         priority = coalesce(update_action_plan.priority, p.priority),
         timeline_start = coalesce(update_action_plan.timeline_start, p.timeline_start),
         timeline_end = coalesce(update_action_plan.timeline_end, p.timeline_end),
         user_edited_fields = (select coalesce(array_agg(distinct f order by f), '{}') from unnest(p.user_edited_fields || edited) f)
   where p.id = update_action_plan.action_plan_id and p.user_id = (select private.current_user_id())
  returning * into result;
  if result.id is null then
    raise exception 'Only the owner can update this action plan' using errcode = '42501';
  end if;
  return result;
end;
$function$
;

CREATE OR REPLACE FUNCTION public.update_my_profile(display_name text DEFAULT NULL::text, timezone text DEFAULT NULL::text, preferences jsonb DEFAULT NULL::jsonb)
 RETURNS public.profiles
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  result public.profiles;
  problem text;
begin
  if (select private.current_user_id()) is null then
    raise exception 'Only a signed-in user can update their profile' using errcode = '42501';
  end if;
  if update_my_profile.timezone is not null and not private.is_valid_timezone(update_my_profile.timezone) then
    raise exception 'Unknown time zone: %', update_my_profile.timezone
      using errcode = '22023', hint = 'Use an IANA name such as Europe/Berlin.';
  end if;
  if update_my_profile.preferences is not null and jsonb_typeof(update_my_profile.preferences) <> 'object' then
    raise exception 'preferences must be a JSON object' using errcode = '22023';
  end if;
  problem := private.json_bound_violation('profile_preferences', update_my_profile.preferences);
  if problem is not null then
    raise exception 'preferences %', problem using errcode = '23514', constraint = 'profiles_preferences_bounded';
  end if;
  update public.profiles p
     set display_name = coalesce(update_my_profile.display_name, p.display_name),
         timezone = coalesce(update_my_profile.timezone, p.timezone),
         preferences = coalesce(update_my_profile.preferences, p.preferences)
   where p.id = (select private.current_user_id())
  returning p.* into result;
  if result.id is null then
    raise exception 'The caller has no profile to update' using errcode = 'PT404';
  end if;
  return result;
end;
$function$
;

