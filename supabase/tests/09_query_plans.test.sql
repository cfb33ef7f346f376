-- Access paths at a realistic volume: the history query uses the (user, time) index and a
-- one-day scan uses the BRIN index, for interactions and for events. Plans, not timings.
begin;
select plan(36);
-- Hold the rollup lock for the whole file, as the rollup functions do before they touch the
-- change log and the metrics: pg_cron's refresh (every 2 minutes) then waits for this file
-- instead of deadlocking with it over rows this file changed.
select pg_advisory_xact_lock(hashtextextended('analytics.aggregate_interaction_metrics', 0));

-- 100 users x 1,000 interactions over 30 days, in time order as they arrive.
alter table public.coach_interactions disable trigger coach_interactions_broadcast;
insert into auth.users (id, email)
select ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'load' || n || '@example.com'
from generate_series(1, 100) n;
insert into public.coach_interactions (user_id, request_id, sender, content, created_at, actor_role)
select ('00000000-0000-4000-8000-' || lpad((1 + k % 100)::text, 12, '0'))::uuid, 'load-' || k, 'user',
       jsonb_build_object('text', 'message number ' || k), '2026-02-01'::timestamptz + k * interval '26 seconds', 'postgres'
from generate_series(1, 100000) k;
insert into public.interaction_events (user_id, kind, score, created_at, actor_role)
select ('00000000-0000-4000-8000-' || lpad((1 + k % 100)::text, 12, '0'))::uuid, 'rating', 1 + k % 5,
       '2026-02-01'::timestamptz + k * interval '26 seconds', 'postgres'
from generate_series(1, 100000) k;
analyze public.coach_interactions;
analyze public.interaction_events;

create function pg_temp.plan_uses(query text, index_name text) returns boolean language plpgsql as $$
declare
  plan json;
begin
  execute 'explain (analyze, format json) ' || query into plan;
  return plan::text like '%"Index Name": "' || index_name || '"%';
end;
$$;

select ok(pg_temp.plan_uses(
  $$ select id from public.coach_interactions where user_id = '00000000-0000-4000-8000-000000000007'
     order by created_at desc, id desc limit 100 $$, 'coach_interactions_user_id_created_at_idx'),
  'A user''s history page is read through the (user_id, created_at, id) index');
select ok(pg_temp.plan_uses(
  $$ select count(*) from public.coach_interactions where created_at >= '2026-02-10' and created_at < '2026-02-11' $$,
  'coach_interactions_created_at_brin'),
  'One day of interactions is read through the BRIN index, not a full scan');
select ok(pg_temp.plan_uses(
  $$ select id from public.interaction_events where user_id = '00000000-0000-4000-8000-000000000007'
     order by created_at desc limit 100 $$, 'interaction_events_user_id_created_at_idx'),
  'A user''s events are read through the (user_id, created_at) index');
select ok(pg_temp.plan_uses(
  $$ select avg(score) from public.interaction_events where kind = 'rating' and created_at >= '2026-02-10' and created_at < '2026-02-11' $$,
  'interaction_events_created_at_brin'),
  'One day of events is read through the BRIN index');

-- Sessions and plans: 20,000 of each over the same 100 users; 1 % of sessions with a coach.
insert into public.coaching_sessions (user_id, coach_id, created_at)
select ('00000000-0000-4000-8000-' || lpad((1 + k % 100)::text, 12, '0'))::uuid,
       case when k % 100 = 0 then 'ca401000-0000-4000-8000-000000000003'::uuid end,
       '2026-02-01'::timestamptz + k * interval '2 minutes'
from generate_series(1, 20000) k;
insert into public.action_plans (user_id, title, created_at)
select ('00000000-0000-4000-8000-' || lpad((1 + k % 100)::text, 12, '0'))::uuid, 'plan ' || k, '2026-02-01'::timestamptz + k * interval '2 minutes'
from generate_series(1, 20000) k;
insert into public.coach_interactions (user_id, session_id, request_id, sender, content, actor_role)
select s.user_id, s.id, 'session-' || s.id, 'user', '{"text": "in a session"}', 'postgres'
from public.coaching_sessions s where s.user_id::text like '00000000-0000-4000-8000-%';
insert into public.interaction_events (user_id, session_id, kind, created_at, actor_role)
select s.user_id, s.id, 'session_state', s.created_at, 'postgres'
from public.coaching_sessions s where s.user_id::text like '00000000-0000-4000-8000-%';
analyze public.coaching_sessions;
analyze public.action_plans;
analyze public.coach_interactions;
analyze public.interaction_events;

select ok(pg_temp.plan_uses(
  $$ select id from public.coaching_sessions where user_id = '00000000-0000-4000-8000-000000000007' order by created_at desc limit 20 $$,
  'coaching_sessions_user_id_created_at_idx'), 'A user''s sessions are read through the (user_id, created_at) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.coaching_sessions where coach_id = 'ca401000-0000-4000-8000-000000000003' $$,
  'coaching_sessions_coach_id_idx'), 'A coach''s sessions are read through the coach_id index');
select ok(pg_temp.plan_uses(
  $$ select id from public.action_plans where user_id = '00000000-0000-4000-8000-000000000007' order by created_at desc limit 20 $$,
  'action_plans_user_id_created_at_idx'), 'A user''s action plans are read through the (user_id, created_at) index');
select ok(pg_temp.plan_uses(
  format($$ select id from public.coach_interactions where session_id = %L $$,
         (select id from public.coaching_sessions where user_id::text like '00000000-0000-4000-8000-%' limit 1)),
  'coach_interactions_session_id_idx'), 'A session''s interactions are read through the session_id index');
select ok(pg_temp.plan_uses(
  format($$ select id from public.interaction_events where session_id = %L $$,
         (select id from public.coaching_sessions where user_id::text like '00000000-0000-4000-8000-%' limit 1)),
  'interaction_events_session_id_idx'), 'A session''s events are read through the session_id index');

-- The rollup of one day out of thirty reads coach_interactions only through indexes
-- (pg_stat_xact_user_tables counts this transaction's scans).
create temporary table scans_before as
select seq_scan, idx_scan from pg_stat_xact_user_tables where relid = 'public.coach_interactions'::regclass;
select analytics.aggregate_interaction_metrics('2026-02-10');
select results_eq(
  $$ select s.seq_scan - b.seq_scan, s.idx_scan > b.idx_scan
     from pg_stat_xact_user_tables s, scans_before b where s.relid = 'public.coach_interactions'::regclass $$,
  $$ values (0::bigint, true) $$,
  'Aggregating one day reads only that day through the indexes, with no full scan of the log');

-- Opportunities and applications: 100 users, each with 5 opportunities of their own and
-- 50 applications across a catalogue of 2,000 (the seed's pursuits set aside).
delete from public.application_state_proposals;
delete from public.check_in_tasks;
delete from public.applications;
delete from public.opportunities;
insert into public.opportunities (id, owner_id, title, deadline)
select ('0990d000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
       case when n > 2000 then ('00000000-0000-4000-8000-' || lpad((1 + n % 100)::text, 12, '0'))::uuid end,
       'Opportunity ' || n, '2031-01-01'::timestamptz + n * interval '1 hour'
from generate_series(1, 2500) n;
insert into public.applications (user_id, opportunity_id)
select ('00000000-0000-4000-8000-' || lpad(u::text, 12, '0'))::uuid,
       ('0990d000-0000-4000-8000-' || lpad((1 + (u * 37 + k * 41) % 2000)::text, 12, '0'))::uuid
from generate_series(1, 100) u, generate_series(1, 50) k
on conflict do nothing;
analyze public.opportunities;
analyze public.applications;
select ok(pg_temp.plan_uses(
  $$ select id from public.applications where opportunity_id = '0990d000-0000-4000-8000-000000000042' $$,
  'applications_opportunity_id_idx'),
  'The applications to one opportunity (what removing it touches) are found through their index');
select ok(pg_temp.plan_uses(
  $$ select id from public.opportunities where owner_id = '00000000-0000-4000-8000-000000000007' $$,
  'opportunities_owner_id_idx'),
  'A user''s own opportunities are found through the owner index');

-- Check-ins for the submitted half of them, and a month of nudges (two a day per user).
update public.applications set status = 'submitted', submitted_at = '2031-01-01'::timestamptz + (hashtext(id::text) % 60) * interval '1 day'
 where hashtext(id::text) % 2 = 0;
insert into public.check_in_tasks (user_id, application_id, due_at, status)
select user_id, id, submitted_at + interval '21 days', case when hashtext(id::text) % 3 = 0 then 'completed'::public.check_in_status else 'pending' end
from public.applications where status = 'submitted';
insert into public.notification_log (user_id, channel, sent_at, notification_type)
select ('00000000-0000-4000-8000-' || lpad(u::text, 12, '0'))::uuid, c, '2031-01-01'::timestamptz + d * interval '1 day' + u * interval '1 minute', 'micro_task'
from generate_series(1, 100) u, generate_series(0, 29) d, unnest(enum_range(null::public.notification_channel)) c;
analyze public.check_in_tasks;
analyze public.notification_log;
select ok(pg_temp.plan_uses(
  $$ select id from public.check_in_tasks where status = 'pending' and due_at <= '2031-01-25' $$, 'check_in_tasks_due_at_idx'),
  'The scheduler finds due check-ins through the pending due_at index');
select ok(pg_temp.plan_uses(
  $$ select id from public.check_in_tasks where application_id = (select id from public.applications where status = 'submitted' limit 1) $$,
  'check_in_tasks_application_id_idx'),
  'An application''s check-in is found through its index');
select ok(pg_temp.plan_uses(
  $$ select 1 from public.notification_log where user_id = '00000000-0000-4000-8000-000000000007' and channel = 'email'
       and sent_at > '2031-01-20'::timestamptz - interval '24 hours' limit 1 $$,
  'notification_log_user_id_channel_sent_at_idx'),
  'The 24-hour throttle check reads the (user_id, channel, sent_at) index');

-- Proposals: one per submitted application, half answered, made by ten coaches.
insert into public.application_state_proposals (application_id, user_id, proposed_state, proposed_by, proposed_by_role, status,
                                               created_at, expires_at, decided_at)
select a.id, a.user_id, 'Won', ('00000000-0000-4000-8000-' || lpad((1 + hashtext(a.id::text) % 10 + 90)::text, 12, '0'))::uuid, 'authenticated',
       case when hashtext(a.id::text) % 2 = 0 then 'confirmed'::public.proposal_status else 'pending' end,
       '2031-03-01', '2031-03-08', case when hashtext(a.id::text) % 2 = 0 then '2031-03-02'::timestamptz end
from public.applications a where a.status = 'submitted';
analyze public.application_state_proposals;
select ok(pg_temp.plan_uses(
  $$ select id from public.application_state_proposals where application_id = (select id from public.applications where status = 'submitted' limit 1) $$,
  'application_state_proposals_application_id_idx'),
  'An application''s proposals are found through their index');
select ok(pg_temp.plan_uses(
  $$ select id from public.application_state_proposals where user_id = '00000000-0000-4000-8000-000000000007' order by created_at desc limit 20 $$,
  'application_state_proposals_user_id_idx'),
  'A user''s latest proposals are read through the (user_id, created_at) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.application_state_proposals where proposed_by = '00000000-0000-4000-8000-000000000093' $$,
  'application_state_proposals_proposed_by_idx'),
  'A coach''s proposals are found through the proposed_by index');

-- The email outbox: 20,000 messages of the 100 users, all but 50 sent.
insert into public.notification_log (id, user_id, channel, sent_at, notification_type)
select ('00000000-0000-4000-9000-' || lpad(k::text, 12, '0'))::uuid, ('00000000-0000-4000-8000-' || lpad((1 + k % 100)::text, 12, '0'))::uuid,
       'email', '2031-01-01'::timestamptz + k * interval '1 minute', 'deadline_72h'
from generate_series(1, 20000) k;
insert into private.email_outbox (notification_id, to_email, subject, text_body, status, attempts, next_attempt_at, sent_at)
select ('00000000-0000-4000-9000-' || lpad(k::text, 12, '0'))::uuid, 'load' || (1 + k % 100) || '@example.com', 'Reminder', 'Body',
       case when k > 19950 then 'queued' else 'sent' end, 1, '2031-01-01'::timestamptz + k * interval '1 minute',
       case when k > 19950 then null else '2031-01-01'::timestamptz + k * interval '1 minute' end
from generate_series(1, 20000) k;
analyze private.email_outbox;
select ok(pg_temp.plan_uses(
  $$ select id from private.email_outbox where status in ('queued', 'sending') and next_attempt_at <= '2031-03-01'
       order by next_attempt_at limit 20 for update skip locked $$,
  'email_outbox_due_idx'),
  'The dispatcher claims due emails through the partial (next_attempt_at) index, not a scan of sent ones');

-- Issue 10's access paths: a group's events, and assessments by session, group and user
-- (one per load session, in 200 groups).
insert into public.interaction_events (user_id, session_id, group_id, kind, created_at, actor_role)
select s.user_id, s.id, ('00000000-0000-4000-a000-' || lpad((row_number() over (order by s.id) % 200)::text, 12, '0'))::uuid,
       'session_state', s.created_at, 'postgres'
from public.coaching_sessions s where s.user_id::text like '00000000-0000-4000-8000-%';
insert into public.assessments (session_id, group_id, user_id, request_id, rubric_version, overall_score, criteria, created_at, actor_role)
select s.id, ('00000000-0000-4000-a000-' || lpad((row_number() over (order by s.id) % 200)::text, 12, '0'))::uuid, s.user_id,
       'load-assessment-' || s.id, 1, 3.5, '{"clarity": 3.5}', s.created_at, 'postgres'
from public.coaching_sessions s where s.user_id::text like '00000000-0000-4000-8000-%';
analyze public.interaction_events;
analyze public.assessments;
select ok(pg_temp.plan_uses(
  $$ select id from public.interaction_events where group_id = '00000000-0000-4000-a000-000000000007' order by created_at desc limit 50 $$,
  'interaction_events_group_id_created_at_idx'), 'A group''s events are read through the (group_id, created_at) index');
select ok(pg_temp.plan_uses(
  format($$ select id from public.assessments where session_id = %L order by created_at desc, id desc limit 1 $$,
         (select id from public.coaching_sessions where user_id::text like '00000000-0000-4000-8000-%' limit 1)),
  'assessments_session_id_created_at_idx'), 'A session''s latest assessment is read through the (session_id, created_at) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.assessments where group_id = '00000000-0000-4000-a000-000000000007' order by created_at desc, id desc limit 50 $$,
  'assessments_group_id_created_at_idx'), 'A group''s assessments are read through the (group_id, created_at) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.assessments where user_id = '00000000-0000-4000-8000-000000000007' order by created_at desc limit 50 $$,
  'assessments_user_id_created_at_idx'), 'A user''s assessments are read through the (user_id, created_at) index');

-- A user's tenants (issue 11): 2,000 tenants of 5 members each over the 100 load users.
insert into public.tenants (id, name)
select ('00000000-0000-4000-b000-' || lpad(k::text, 12, '0'))::uuid, 'load tenant ' || k from generate_series(1, 2000) k;
insert into public.tenant_members (tenant_id, user_id, role)
select ('00000000-0000-4000-b000-' || lpad(k::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad((1 + (k * 5 + j) % 100)::text, 12, '0'))::uuid, 'member'
from generate_series(1, 2000) k, generate_series(0, 4) j;
analyze public.tenant_members;
select ok(pg_temp.plan_uses(
  $$ select tenant_id from public.tenant_members where user_id = '00000000-0000-4000-8000-000000000007' $$,
  'tenant_members_user_id_idx'), 'A user''s tenants are read through the user_id index');

-- The tenants' strategy and operations data: 10 goals per tenant with a strategy and a KPI
-- each, 20 actions per tenant (assigned to its members), 10 issues per tenant.
insert into public.goals (id, tenant_id, title, owner_id)
select ('00000000-0000-4000-c000-' || lpad((k * 10 + g)::text, 12, '0'))::uuid, ('00000000-0000-4000-b000-' || lpad(k::text, 12, '0'))::uuid,
       'goal ' || g, ('00000000-0000-4000-8000-' || lpad((1 + (k * 5 + g % 5) % 100)::text, 12, '0'))::uuid
from generate_series(1, 2000) k, generate_series(0, 9) g;
insert into public.strategies (tenant_id, goal_id, title) select g.tenant_id, g.id, 'strategy' from public.goals g where g.title like 'goal %';
insert into public.kpis (tenant_id, goal_id, name, unit) select g.tenant_id, g.id, 'kpi', 'units' from public.goals g where g.title like 'goal %';
insert into public.actions (tenant_id, goal_id, title, assignee_id)
select ('00000000-0000-4000-b000-' || lpad(k::text, 12, '0'))::uuid, ('00000000-0000-4000-c000-' || lpad((k * 10 + a % 10)::text, 12, '0'))::uuid,
       'action ' || a, ('00000000-0000-4000-8000-' || lpad((1 + (k * 5 + a % 5) % 100)::text, 12, '0'))::uuid
from generate_series(1, 2000) k, generate_series(0, 19) a;
insert into public.business_issues (tenant_id, title, status)
select ('00000000-0000-4000-b000-' || lpad(k::text, 12, '0'))::uuid, 'issue ' || i, case when i % 3 = 0 then 'resolved' else 'open' end
from generate_series(1, 2000) k, generate_series(0, 9) i;
analyze public.goals;
analyze public.strategies;
analyze public.kpis;
analyze public.actions;
analyze public.business_issues;
select ok(pg_temp.plan_uses(
  $$ select id from public.goals where tenant_id = '00000000-0000-4000-b000-000000000007' and owner_id = '00000000-0000-4000-8000-000000000036' $$,
  'goals_tenant_id_owner_id_idx'), 'A member''s goals in a tenant are read through the (tenant_id, owner_id) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.strategies where tenant_id = '00000000-0000-4000-b000-000000000007' and goal_id = '00000000-0000-4000-c000-000000000070' $$,
  'strategies_tenant_id_goal_id_idx'), 'A goal''s strategies are read through the (tenant_id, goal_id) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.kpis where tenant_id = '00000000-0000-4000-b000-000000000007' $$,
  'kpis_tenant_id_goal_id_idx'), 'A tenant''s KPIs are read through the (tenant_id, goal_id) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.actions where tenant_id = '00000000-0000-4000-b000-000000000007' and goal_id = '00000000-0000-4000-c000-000000000071' $$,
  'actions_tenant_id_goal_id_idx'), 'A goal''s actions are read through the (tenant_id, goal_id) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.actions where tenant_id = '00000000-0000-4000-b000-000000000007' and assignee_id = '00000000-0000-4000-8000-000000000036' $$,
  'actions_tenant_id_assignee_id_idx'), 'A member''s actions are read through the (tenant_id, assignee_id) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.business_issues where tenant_id = '00000000-0000-4000-b000-000000000007' and status = 'open' $$,
  'business_issues_tenant_id_status_idx'), 'A tenant''s open issues are read through the (tenant_id, status) index');

-- The spend check (coaching-ai): 20 AI calls a month for six months per tenant.
insert into public.tenant_ai_calls (tenant_id, route, model, status, cost_usd, created_at)
select t.id, 'coaching/alignment-check', 'gpt-4o-mini', 'ok', 0.0004, now() - make_interval(days => k * 9)
from public.tenants t cross join generate_series(1, 20) k where t.name like 'load tenant %';
analyze public.tenant_ai_calls;
select ok(pg_temp.plan_uses(
  $$ select sum(c.cost_usd) from public.tenant_ai_calls c
     where c.tenant_id = '00000000-0000-4000-b000-000000000007' and c.created_at >= date_trunc('month', now()) $$,
  'tenant_ai_calls_tenant_id_created_at_idx'), 'A tenant''s spend this month is summed through the (tenant_id, created_at) index');

-- Session media (issue 12): four objects per load session, a tenth of them stored audio
-- past its window.
insert into public.session_media (session_id, user_id, kind, storage_path, mime_type, bytes, status, uploaded_at, created_at)
select s.id, s.user_id, case when k % 2 = 0 then 'audio' else 'transcript' end,
       'u/' || s.user_id || '/s/' || s.id || '/' || k || '/media-' || k || '.wav', 'audio/wav', 1000,
       'stored', s.created_at, s.created_at + make_interval(mins => k)
from public.coaching_sessions s cross join generate_series(1, 4) k
where s.user_id::text like '00000000-0000-4000-8000-%';
analyze public.session_media;
select ok(pg_temp.plan_uses(
  format($$ select id from public.session_media where session_id = %L order by created_at desc $$,
         (select id from public.coaching_sessions where user_id::text like '00000000-0000-4000-8000-%' limit 1)),
  'session_media_session_id_created_at_idx'), 'A session''s media are read through the (session_id, created_at) index');
select ok(pg_temp.plan_uses(
  $$ select id from public.session_media where user_id = '00000000-0000-4000-8000-000000000007' $$,
  'session_media_user_id_idx'), 'A user''s media are read through the user_id index');
select ok(pg_temp.plan_uses(
  $$ select id from public.session_media where status = 'stored' and expires_at is not null and expires_at < now() - interval '400 days' limit 100 $$,
  'session_media_expires_at_idx'), 'The retention job finds expired media through the partial expires_at index');
-- A few uploads still pending, one past its window per hundred sessions.
update public.session_media set status = 'pending', uploaded_at = null, upload_expires_at = created_at + interval '10 minutes'
where storage_path like '%/1/media-1.wav' and right(session_id::text, 2) = '00';
analyze public.session_media;
select ok(pg_temp.plan_uses(
  $$ select distinct session_id from public.session_media where status = 'pending' and upload_expires_at <= now() limit 100 $$,
  'session_media_upload_expires_at_idx'), 'The retention job finds abandoned uploads through the partial upload_expires_at index');

-- Storage operations: thirty days of them, one a minute.
insert into private.storage_operations (at, operation, ok, duration_ms)
select now() - make_interval(mins => k), 'download_urls', k % 50 <> 0, 20 + k % 30 from generate_series(1, 43200) k;
analyze private.storage_operations;
select ok(pg_temp.plan_uses(
  $$ select count(*) from private.storage_operations o where o.at > now() - interval '5 minutes' and o.at <= now() $$,
  'storage_operations_at_idx'), 'The storage window reads the last minutes through the at index');

select * from finish();
rollback;
