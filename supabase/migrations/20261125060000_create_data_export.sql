-- Purpose: the right of access, part 3 of issue 16. private.export_user_data returns what
-- Coach Ledger holds about one person, section by section, in one statement (so in one
-- snapshot): their account and profile, identities, coach assignments, interactions, events, sessions
-- with their stages, action plans with milestones, assessments, applications with their
-- check-ins and proposed state changes, opportunities they added, session media metadata,
-- nudges and the emails sent for them, organisations they belong to, their daily metrics,
-- and every read of their data in the PHI access log. A user exports their own data; the
-- service role exports anyone's. Both functions are in private, which the Data API does not
-- serve: only export-my-data calls them (as its caller), recording each export in
-- audit.privacy_log (private.record_data_export) before it reads any of it.
-- Objects: functions private.data_export_target, private.record_data_export,
-- private.export_user_data; rows of private.rate_limit_policies for export-my-data.
-- Destructive: none.

create or replace function private.data_export_target(user_id uuid)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Security definer: reads profiles to tell an unknown user from one the caller may not see.
-- Whose data the caller may export: their own (a user), or anyone's named by user_id (the
-- service role). Raises otherwise.
declare
  caller_role text := private.caller_role();
  caller uuid := (select private.current_user_id());
begin
  if caller_role = 'authenticated' then
    if caller is null or (data_export_target.user_id is not null and data_export_target.user_id <> caller) then
      raise exception 'A user can export only their own data' using errcode = '42501';
    end if;
    return caller;
  elsif caller_role in ('service_role', 'postgres') then
    if data_export_target.user_id is null then
      raise exception 'user_id is required for the service role' using errcode = '22023';
    end if;
    if not exists (select 1 from public.profiles p where p.id = data_export_target.user_id) then
      raise exception 'user_id does not name a user' using errcode = 'PT404';
    end if;
    return data_export_target.user_id;
  end if;
  raise exception 'Role % cannot export data', caller_role using errcode = '42501';
end;
$$;
comment on function private.data_export_target(uuid) is
  'Internal: the user whose data the caller may export: the signed-in user themselves, or for the service role the user named by user_id (22023 without one, PT404 when unknown); 42501 for anyone else.';
revoke execute on function private.data_export_target(uuid) from public, anon;
grant execute on function private.data_export_target(uuid) to authenticated, service_role;

create or replace function private.record_data_export(user_id uuid default null)
returns table (export_id bigint, subject_user_id uuid)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: writes audit.privacy_log, which no API role may write; checks who may
-- export whose data first.
declare
  target uuid := private.data_export_target(record_data_export.user_id);
begin
  return query select private.log_privacy_operation('data_exported', target, null, null,
    jsonb_build_object('format', 'coach-ledger-export/1')), target;
end;
$$;
comment on function private.record_data_export(uuid) is
  'Records, in audit.privacy_log, an export of a user''s data (data_exported: whose, by whom, when) and returns the log row''s id and whose data it is. A user records their own (user_id null or theirs); the service role anyone''s. export-my-data calls it, committed, before it reads anything.';
revoke execute on function private.record_data_export(uuid) from public, anon;
grant execute on function private.record_data_export(uuid) to authenticated, service_role;

create or replace function private.export_user_data(user_id uuid default null)
returns table (section text, item jsonb)
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Security definer: a user's export includes rows RLS does not show them (the PHI access
-- log about them, the emails sent to them); it checks who may export whose data first.
-- Stable: every section is read in the snapshot of the calling statement.
declare
  target uuid := private.data_export_target(export_user_data.user_id);
begin
  return query
  select 'profile', jsonb_build_object(
    'account', (select jsonb_build_object('email', u.email, 'phone', u.phone, 'created_at', u.created_at,
                                          'last_sign_in_at', u.last_sign_in_at, 'user_metadata', u.raw_user_meta_data)
                from auth.users u where u.id = target),
    'profile', (select to_jsonb(p) from public.profiles p where p.id = target));

  -- How they sign in: Auth's identities (provider and its data) and other providers' subjects.
  return query
  select 'identities', jsonb_build_object('provider', i.provider, 'identity_data', i.identity_data, 'created_at', i.created_at)
  from auth.identities i where i.user_id = target
  union all
  select 'identities', jsonb_build_object('issuer', x.issuer, 'subject', x.subject, 'created_at', x.created_at)
  from private.external_identities x where x.user_id = target;

  return query
  select 'coach_assignments', to_jsonb(a) || jsonb_build_object('as', case when a.client_id = target then 'client' else 'coach' end)
  from public.coach_assignments a where a.client_id = target or a.coach_id = target
  order by a.created_at, a.id;

  return query
  select 'interactions', to_jsonb(i) from public.coach_interactions i where i.user_id = target order by i.created_at, i.id;

  return query
  select 'events', to_jsonb(e) from public.interaction_events e where e.user_id = target order by e.created_at, e.id;

  return query
  select 'sessions', to_jsonb(s) || jsonb_build_object('stages', coalesce(
           (select jsonb_agg(to_jsonb(r) order by r.stage_number) from public.stage_responses r where r.session_id = s.id), '[]'::jsonb))
  from public.coaching_sessions s where s.user_id = target
  order by s.created_at, s.id;

  return query
  select 'action_plans', to_jsonb(a) || jsonb_build_object('milestones', coalesce(
           (select jsonb_agg(to_jsonb(m) order by m.due_date nulls last, m.created_at, m.id)
            from public.milestones m where m.action_plan_id = a.id), '[]'::jsonb))
  from public.action_plans a where a.user_id = target
  order by a.created_at, a.id;

  return query
  select 'assessments', to_jsonb(a) from public.assessments a where a.user_id = target order by a.created_at, a.id;

  return query
  select 'applications', to_jsonb(a) || jsonb_build_object(
           'check_ins', coalesce((select jsonb_agg(to_jsonb(c) order by c.due_at, c.id) from public.check_in_tasks c
                                  where c.application_id = a.id and c.user_id = target), '[]'::jsonb),
           'state_proposals', coalesce((select jsonb_agg(to_jsonb(p) order by p.created_at, p.id) from public.application_state_proposals p
                                        where p.application_id = a.id and p.user_id = target), '[]'::jsonb))
  from public.applications a where a.user_id = target
  order by a.created_at, a.id;

  return query
  select 'opportunities', to_jsonb(o) from public.opportunities o where o.owner_id = target order by o.created_at, o.id;

  return query
  select 'media', to_jsonb(m) from public.session_media m where m.user_id = target order by m.created_at, m.id;

  return query
  select 'notifications', to_jsonb(n) from public.notification_log n where n.user_id = target order by n.sent_at, n.id;

  return query
  select 'emails', jsonb_build_object('id', o.id, 'notification_id', o.notification_id, 'to_email', o.to_email,
                                      'subject', o.subject, 'text_body', o.text_body, 'status', o.status,
                                      'created_at', o.created_at, 'sent_at', o.sent_at)
  from private.email_outbox o join public.notification_log n on n.id = o.notification_id
  where n.user_id = target
  order by o.created_at, o.id;

  return query
  select 'tenant_memberships', to_jsonb(m) from public.tenant_members m where m.user_id = target order by m.created_at;

  -- Their metrics, per day (counts, tokens, cost, response times; no content).
  return query
  select 'daily_metrics', to_jsonb(d) - 'response_time_buckets' - 'response_time_counts'
  from analytics.coach_interaction_metrics d where d.user_id = target order by d.day;

  -- Who read their data: the access log's facts, without its hash chain.
  return query
  select 'data_access', jsonb_build_object('accessed_at', l.accessed_at, 'actor_id', l.actor_id, 'actor_role', l.actor_role,
                                           'resource', l.resource, 'row_count', l.row_count, 'purpose', l.purpose)
  from audit.phi_access_log l where l.subject_user_id = target
  order by l.chain_seq;
end;
$$;
comment on function private.export_user_data(uuid) is
  'Everything Coach Ledger holds about one user, as (section, item) rows in this order: profile (account with user metadata, and profile), identities, coach_assignments, interactions, events, sessions (with stages), action_plans (with milestones), assessments, applications (with check_ins and state_proposals), opportunities (those they added), media (metadata), notifications, emails, tenant_memberships, daily_metrics, data_access (every read of their data in the PHI access log). A user exports their own; the service role anyone''s (user_id). Read in one snapshot. Not served by the Data API: export-my-data records each export, then streams this as one JSON document.';
revoke execute on function private.export_user_data(uuid) from public, anon;
grant execute on function private.export_user_data(uuid) to authenticated, service_role;

insert into private.rate_limit_policies (endpoint, role, quota, window_seconds) values
  ('export-my-data', 'authenticated', 10, 3600),
  ('export-my-data', 'service_role', 1000, 3600)
on conflict do nothing;
