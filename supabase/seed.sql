-- Deterministic demo data for local development and tests. Safe to apply twice.
-- Users: alice (client), bob (client), carol (coach, assigned to alice). Password: password123.

insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                        raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values
  ('00000000-0000-0000-0000-000000000000', 'a11ce000-0000-4000-8000-000000000001', 'authenticated',
   'authenticated', 'alice@example.com', extensions.crypt('password123', extensions.gen_salt('bf')),
   '2026-01-05 09:00:00+00', '{"provider": "email", "providers": ["email"]}',
   '{"full_name": "Alice Archer", "timezone": "America/New_York"}', '2026-01-05 09:00:00+00', '2026-01-05 09:00:00+00'),
  ('00000000-0000-0000-0000-000000000000', 'b0b00000-0000-4000-8000-000000000002', 'authenticated',
   'authenticated', 'bob@example.com', extensions.crypt('password123', extensions.gen_salt('bf')),
   '2026-01-05 09:05:00+00', '{"provider": "email", "providers": ["email"]}',
   '{"full_name": "Bob Baker", "timezone": "Europe/London"}', '2026-01-05 09:05:00+00', '2026-01-05 09:05:00+00'),
  ('00000000-0000-0000-0000-000000000000', 'ca401000-0000-4000-8000-000000000003', 'authenticated',
   'authenticated', 'carol@example.com', extensions.crypt('password123', extensions.gen_salt('bf')),
   '2026-01-04 08:00:00+00', '{"provider": "email", "providers": ["email"], "role": "coach"}',
   '{"full_name": "Carol Chen"}', '2026-01-04 08:00:00+00', '2026-01-04 08:00:00+00')
on conflict (id) do nothing;

insert into public.coach_assignments (id, coach_id, client_id, starts_at)
values ('c0ac4000-0000-4000-8000-000000000001', 'ca401000-0000-4000-8000-000000000003',
        'a11ce000-0000-4000-8000-000000000001', '2026-01-05 10:00:00+00')
on conflict (id) do nothing;

-- Interactions: a short conversation for Alice (with an AI coach and Carol) and one for Bob,
-- through the same write path apps use. Fixed request ids make a second run a replay.
select public.log_coach_interaction(
  sender => m.sender, user_id => m.user_id::uuid, content => jsonb_build_object('text', m.text),
  request_id => m.request_id, conversation_id => m.conversation_id::uuid, channel => m.channel,
  coach_persona => m.persona, model => m.model, latency_ms => m.latency_ms, prompt_tokens => m.prompt_tokens,
  completion_tokens => m.completion_tokens, sentiment => m.sentiment, momentum_state => m.momentum,
  created_at => m.created_at::timestamptz)
from (values
  ('user', 'a11ce000-0000-4000-8000-000000000001', 'I keep skipping my morning walk. Text me at 555-201-7788 if I forget again.',
   'seed-alice-1', 'c0000000-0000-4000-8000-00000000a001', 'chat', null, null, null, null, null, -0.3::real, 'stalled', '2026-03-02 08:00:00+00'),
  ('ai_coach', 'a11ce000-0000-4000-8000-000000000001', 'Mornings are hard. What would make the walk the easy choice tomorrow?',
   'seed-alice-2', 'c0000000-0000-4000-8000-00000000a001', 'chat', 'encourager', 'gpt-4o-mini', 820, 412, 58, 0.2::real, 'stalled', '2026-03-02 08:00:02+00'),
  ('user', 'a11ce000-0000-4000-8000-000000000001', 'Laying out my shoes the night before, I think.',
   'seed-alice-3', 'c0000000-0000-4000-8000-00000000a001', 'chat', null, null, null, null, null, 0.4::real, 'rising', '2026-03-02 08:01:10+00'),
  ('human_coach', 'a11ce000-0000-4000-8000-000000000001', 'Great plan, Alice. Let us review it on Friday.',
   'seed-alice-4', 'c0000000-0000-4000-8000-00000000a001', 'chat', 'carol', null, null, null, null, 0.6::real, 'rising', '2026-03-02 09:30:00+00'),
  ('user', 'b0b00000-0000-4000-8000-000000000002', 'Can we move my session? I am at 12 Oak Lane all week.',
   'seed-bob-1', 'c0000000-0000-4000-8000-00000000b001', 'chat', null, null, null, null, null, 0.0::real, null, '2026-03-03 18:00:00+00'),
  ('ai_coach', 'b0b00000-0000-4000-8000-000000000002', 'Sure. Which evening works best for you?',
   'seed-bob-2', 'c0000000-0000-4000-8000-00000000b001', 'chat', 'planner', 'claude-haiku-4-5', 1240, 380, 40, 0.1::real, null, '2026-03-03 18:00:03+00')
) as m(sender, user_id, text, request_id, conversation_id, channel, persona, model, latency_ms, prompt_tokens,
       completion_tokens, sentiment, momentum, created_at);

-- Two weeks of recent activity (the 14 UTC days before the day the seed runs), so every
-- analytics panel has data: Alice and Bob each have four exchanges a day with an AI coach
-- (three personas, two models, latencies from 600 to 1,500 ms, an occasional timeout),
-- Carol answers Alice once a day, and about half the AI replies are rated. Request ids
-- carry the date, so a later run of the seed adds its own days instead of clashing.
with exchanges as (
  select d, k, u.user_id, u.name,
         ((now() at time zone 'UTC')::date - d)::timestamp at time zone 'UTC' + make_interval(hours => 7 + 3 * k) as at,
         to_char((now() at time zone 'UTC')::date - d, 'YYYY-MM-DD') as ymd
  from generate_series(1, 14) d, generate_series(1, 4) k,
       (values ('a11ce000-0000-4000-8000-000000000001'::uuid, 'alice'), ('b0b00000-0000-4000-8000-000000000002'::uuid, 'bob')) u(user_id, name)
),
user_messages as (
  select e.*, public.log_coach_interaction(
    sender => 'user', user_id => e.user_id, channel => case when k = 4 then 'jitai' else 'chat' end,
    conversation_id => md5(e.name || e.ymd || k)::uuid, request_id => 'seed-' || e.ymd || '-' || e.name || '-' || k || '-u',
    content => jsonb_build_object('text', (array['Slept six hours again.', 'I skipped the walk, too busy.',
      'Did my stretches this morning!', 'Feeling stuck on the diet plan.'])[k]),
    sentiment => ((d + k) % 5 - 2) / 2.0, created_at => e.at) as user_logged
  from exchanges e
),
ai_replies as (
  select e.*, public.log_coach_interaction(
    sender => 'ai_coach', user_id => e.user_id, channel => case when k = 4 then 'jitai' else 'chat' end,
    conversation_id => md5(e.name || e.ymd || k)::uuid, request_id => 'seed-' || e.ymd || '-' || e.name || '-' || k || '-ai',
    coach_persona => (array['encourager', 'planner', 'challenger'])[(d + k) % 3 + 1],
    model => case when k % 2 = 0 then 'gpt-4o-mini' else 'claude-haiku-4-5' end,
    content => jsonb_build_object('text', case when (d + k) % 9 = 0 then 'Sorry, I could not answer in time.'
                                          else 'What is one small step you can take today?' end),
    latency_ms => 600 + (d * 97 + k * 131) % 900, prompt_tokens => 300 + (d * 37 + k * 11) % 400,
    completion_tokens => 40 + (d * 13 + k * 7) % 120,
    status => case when (d + k) % 9 = 0 then 'error' else 'ok' end,
    error_code => case when (d + k) % 9 = 0 then 'llm_timeout' end,
    created_at => e.at + interval '2 seconds') as ai_logged
  from user_messages e
),
coach_replies as (
  select e.*, public.log_coach_interaction(
    sender => 'human_coach', user_id => e.user_id, conversation_id => md5(e.name || e.ymd || k)::uuid,
    request_id => 'seed-' || e.ymd || '-' || e.name || '-' || k || '-coach', coach_persona => 'carol',
    content => '{"text": "Noted. Let us talk it through at our next session."}',
    created_at => e.at + make_interval(mins => 20 + d * 5)) as coach_logged
  from ai_replies e
  where e.name = 'alice' and k = 2
)
select count(*) from (
  select public.log_interaction_event(kind => 'rating', user_id => a.user_id, interaction_id => (a.ai_logged).interaction.id,
    score => (1 + (a.d * 3 + a.k) % 5)::smallint, request_id => 'seed-' || a.ymd || '-' || a.name || '-' || a.k || '-rating',
    created_at => a.at + interval '5 minutes')
  from ai_replies a
  where (a.d + a.k) % 2 = 0
    and not exists (select 1 from public.interaction_events ev where ev.request_id = 'seed-' || a.ymd || '-' || a.name || '-' || a.k || '-rating')
  union all
  select null from coach_replies
) logged;

-- Roll the seeded days up, as the nightly pg_cron job would.
select * from analytics.aggregate_interaction_metrics(
  (now() at time zone 'UTC')::date - 14, (now() at time zone 'UTC')::date - 1);

-- Today so far: Alice's check-in, the AI's reply and Carol's note, and Bob's message and its
-- reply, within the last hour (from midnight UTC when the seed runs just after it); then the
-- incremental rollup, as pg_cron runs it every two minutes, so that today shows in the daily
-- rollup, usage_by_hour and Grafana at once. Written once: a second run finds the keys.
select public.log_coach_interaction(
  sender => s.sender, user_id => s.user_id, conversation_id => md5('today' || s.name)::uuid,
  request_id => 'seed-today-' || s.name || '-' || s.k, content => jsonb_build_object('text', s.text),
  coach_persona => s.persona, model => s.model, latency_ms => s.latency, prompt_tokens => s.pt, completion_tokens => s.ct,
  created_at => greatest(now() - interval '50 minutes', date_trunc('day', now(), 'UTC')) + s.delay)
from (values
  ('a11ce000-0000-4000-8000-000000000001'::uuid, 'alice', 1, 'user', 'Walked before work today.', null, null, null, null, null, interval '0 minutes'),
  ('a11ce000-0000-4000-8000-000000000001', 'alice', 2, 'ai_coach', 'Three mornings in a row. Same time tomorrow?', 'encourager', 'gpt-4o-mini', 1150, 820, 60, interval '1 second'),
  ('a11ce000-0000-4000-8000-000000000001', 'alice', 3, 'user', 'Yes, and I want to add stretches.', null, null, null, null, null, interval '5 minutes'),
  ('a11ce000-0000-4000-8000-000000000001', 'alice', 4, 'human_coach', 'Love it. Ten minutes after the walk?', 'carol', null, null, null, null, interval '20 minutes'),
  ('b0b00000-0000-4000-8000-000000000002', 'bob', 1, 'user', 'Skipped lunch again.', null, null, null, null, null, interval '10 minutes'),
  ('b0b00000-0000-4000-8000-000000000002', 'bob', 2, 'ai_coach', 'What got in the way?', 'challenger', 'gpt-4o-mini', 2300, 640, 40, interval '10 minutes 2 seconds')
) s(user_id, name, k, sender, text, persona, model, latency, pt, ct, delay)
where not exists (select 1 from public.coach_interactions i where i.user_id = s.user_id and i.request_id = 'seed-today-' || s.name || '-' || s.k);
select * from analytics.refresh_interaction_metrics();

-- Coaching sessions: Alice has finished all five stages of a session with Carol (its AI
-- summary is not generated yet: call the summary function); Bob is at stage 3 of his own.
insert into public.coaching_sessions (id, user_id, coach_id, session_type, theme, current_stage, is_complete, completed_at, created_at)
values
  ('a11ce000-5e55-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'ca401000-0000-4000-8000-000000000003',
   'coach_led', 'Morning routine and sleep', 5, true, '2026-03-05 10:00:00+00', '2026-03-05 09:00:00+00'),
  ('b0b00000-5e55-4000-8000-000000000002', 'b0b00000-0000-4000-8000-000000000002', null,
   'self_coaching', 'Finding time to exercise', 3, false, null, '2026-03-06 19:00:00+00')
on conflict (id) do nothing;

insert into public.stage_responses (session_id, stage_number, responses, completed_at)
values
  ('a11ce000-5e55-4000-8000-000000000001', 1, '{"presence_level": 6, "emotional_state": "tired but hopeful", "previous_actions": ["tried going to bed at 11pm"], "readiness_score": 7}', '2026-03-05 09:10:00+00'),
  ('a11ce000-5e55-4000-8000-000000000001', 2, '{"topic": "Morning routine", "problem_statement": "I skip my morning walk because I wake up late", "current_state_rating": 4, "strengths": ["consistent at work"], "obstacles": ["late screen time"], "resources": ["a dog that needs walks"]}', '2026-03-05 09:20:00+00'),
  ('a11ce000-5e55-4000-8000-000000000001', 3, '{"options": ["phone out of the bedroom", "walk after lunch instead"], "insights": ["evenings drive mornings"], "challenges": ["habit of scrolling"], "barriers": ["alarm in the phone"]}', '2026-03-05 09:35:00+00'),
  ('a11ce000-5e55-4000-8000-000000000001', 4, '{"goal_statement": "Walk 20 minutes every weekday morning for the next four weeks", "smart_criteria": {"specific": "20-minute walk before 8am", "measurable": "logged in the app each weekday", "achievable": "dog needs walking anyway", "relevant": "energy and sleep", "time_bound": "four weeks from Monday"}, "action_steps": ["Buy an alarm clock", "Charge the phone in the kitchen", "Lay out shoes the night before"], "obstacles": ["rainy days"], "contingency_plans": ["walk indoors at the mall on rainy days"]}', '2026-03-05 09:50:00+00'),
  ('a11ce000-5e55-4000-8000-000000000001', 5, '{"key_learnings": ["my evening sets up my morning"], "insights": ["small preparation removes friction"], "session_value_rating": 9, "clarity_level": 8}', '2026-03-05 10:00:00+00'),
  ('b0b00000-5e55-4000-8000-000000000002', 1, '{"presence_level": 8, "emotional_state": "motivated", "previous_actions": [], "readiness_score": 8}', '2026-03-06 19:10:00+00'),
  ('b0b00000-5e55-4000-8000-000000000002', 2, '{"topic": "Exercise", "problem_statement": "Work runs late and the gym closes", "current_state_rating": 3, "strengths": ["enjoys running"], "obstacles": ["long commute"], "resources": ["a park near the office"]}', '2026-03-06 19:25:00+00')
on conflict (session_id, stage_number) do nothing;

-- The skills catalogue (one retired skill, which only the service role sees).
insert into public.skills (slug, name, category, description, rubric_version, active)
values
  ('active-listening', 'Active listening', 'communication', 'Hearing what is meant, reflecting it back, and asking before answering.', 1, true),
  ('giving-feedback', 'Giving feedback', 'communication', 'Specific, timely, kind feedback on behaviour rather than on the person.', 1, true),
  ('public-speaking', 'Public speaking', 'communication', 'Making one clear point to a group, and recovering when nerves hit.', 1, true),
  ('delegation', 'Delegation', 'leadership', 'Handing over outcomes, not tasks, with the context and authority to deliver them.', 1, true),
  ('difficult-conversations', 'Difficult conversations', 'leadership', 'Raising what matters early, staying curious, agreeing a next step.', 1, true),
  ('sleep-routine', 'Sleep routine', 'wellbeing', 'A regular wind-down and wake time that survive busy weeks.', 1, true),
  ('stress-recovery', 'Stress recovery', 'wellbeing', 'Noticing overload and taking short, deliberate breaks before it compounds.', 1, true),
  ('prioritisation', 'Prioritisation', 'productivity', 'Choosing the few things that matter this week and saying no to the rest.', 1, true),
  ('deep-work', 'Deep work', 'productivity', 'Protecting blocks of uninterrupted time for demanding work.', 1, true),
  ('interviewing', 'Interviewing', 'career', 'Telling concrete stories of impact and asking the questions that matter to you.', 1, true),
  ('scholarship-essays', 'Scholarship essays', 'career', 'Answering the prompt with one specific story, then editing it down.', 1, true),
  ('spaced-practice', 'Spaced practice', 'learning', 'Short, repeated practice spread over days instead of one long cram.', 1, true),
  ('time-blocking-v0', 'Time blocking (retired)', 'productivity', 'Replaced by deep-work.', 1, false)
on conflict (slug) do nothing;

-- Assessments and events of Alice's completed session, as an AI backend's finalize step writes
-- them (group a11ce000-6a0e-…: her spring programme). The tracked skill is stored as its HMAC
-- under the local development key (TRACKED_SKILL_HASH_KEY in local/stack.ts), as the
-- functions compute it. Fixed request ids make a second run a replay.
select public.persist_assessment_summary(
  request_id => 'seed-assessment-alice-1', session_id => 'a11ce000-5e55-4000-8000-000000000001',
  group_id => 'a11ce000-6a0e-4000-8000-000000000001', rubric_version => 1, overall_score => 3.6,
  criteria => '{"goal_clarity": 4.5, "ownership": 3.5, "action_specificity": 3, "reflection": 3.5}',
  strengths => array['Named a concrete, measurable goal', 'Chose her own first step'],
  improvements => array['Plan for the week when the routine slips'],
  model => 'gpt-4o-mini', created_at => '2026-03-05 10:04:00+00',
  tracked_skill_id_hash => encode(extensions.hmac('sleep-routine', 'coach-ledger-local-tracked-skill-hash-key', 'sha256'), 'hex'));
select public.persist_assessment_summary(
  request_id => 'seed-assessment-alice-2', session_id => 'a11ce000-5e55-4000-8000-000000000001',
  group_id => 'a11ce000-6a0e-4000-8000-000000000001', rubric_version => 2, overall_score => 3.9,
  criteria => '{"goal_clarity": 4.5, "ownership": 4, "action_specificity": 3.5, "reflection": 3.5, "support_network": 4}',
  strengths => array['Named a concrete, measurable goal', 'Asked Carol to check in on Fridays'],
  improvements => array['Write down the contingency plan'],
  model => 'gpt-4o', created_at => '2026-03-05 10:05:00+00',
  tracked_skill_id_hash => encode(extensions.hmac('sleep-routine', 'coach-ledger-local-tracked-skill-hash-key', 'sha256'), 'hex'));
select public.log_event(kind => 'session_state', request_id => 'seed-event-alice-finalized', user_id => 'a11ce000-0000-4000-8000-000000000001',
  session_id => 'a11ce000-5e55-4000-8000-000000000001', group_id => 'a11ce000-6a0e-4000-8000-000000000001',
  category => 'assessment', payload => '{"state": "assessed", "rubric_version": 2}', created_at => '2026-03-05 10:05:00+00');
select public.log_event(kind => 'rating', request_id => 'seed-event-alice-rating', user_id => 'a11ce000-0000-4000-8000-000000000001',
  session_id => 'a11ce000-5e55-4000-8000-000000000001', group_id => 'a11ce000-6a0e-4000-8000-000000000001',
  category => 'session', score => 5::smallint, created_at => '2026-03-05 10:06:00+00');

-- A tenant for the business-coaching endpoints (issue 11): Alice's studio, with Carol as its
-- coach (she reads its data and writes none).
insert into public.tenants (id, name, created_by, created_at)
values ('7e4a0000-0000-4000-8000-000000000001', 'Archer Wellness Studio', 'a11ce000-0000-4000-8000-000000000001', '2026-01-05 09:00:00+00')
on conflict (id) do nothing;
insert into public.tenant_members (tenant_id, user_id, role)
values ('7e4a0000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'owner'),
       ('7e4a0000-0000-4000-8000-000000000001', 'ca401000-0000-4000-8000-000000000003', 'coach')
on conflict (tenant_id, user_id) do nothing;

-- The studio's strategy and operations data: its foundation, three goals with strategies and
-- KPIs, actions (one waits for another), two open issues and six months of figures (months
-- relative to when the seed runs).
insert into public.business_foundations (tenant_id, purpose, vision, mission, core_values, niche, ideal_client, value_proposition)
values ('7e4a0000-0000-4000-8000-000000000001',
  'Help busy professionals build habits that keep them well.',
  'A neighbourhood studio every desk worker in town can reach in ten minutes.',
  'Small-group movement and sleep coaching that fits around a working day.',
  array['Consistency over intensity', 'Every body belongs', 'Measure what matters'],
  'Office workers aged 30-55 with little time and back or sleep trouble',
  'A manager who sits eight hours a day and has tried and dropped two gym memberships',
  'Forty-minute sessions before or after work, with a coach who checks in between them')
on conflict (tenant_id) do nothing;
insert into public.goals (id, tenant_id, title, description, horizon, status, owner_id, due_date) values
  ('7e4a0000-60a1-4000-8000-000000000001', '7e4a0000-0000-4000-8000-000000000001', 'Reach 120 active members',
   'Grow from 84 to 120 members who come at least twice a month.', 'year', 'active', 'a11ce000-0000-4000-8000-000000000001', (date_trunc('year', now()) + interval '1 year - 1 day')::date),
  ('7e4a0000-60a1-4000-8000-000000000002', '7e4a0000-0000-4000-8000-000000000001', 'Cut monthly churn below 4%',
   'Keep members past their third month.', 'quarter', 'active', 'a11ce000-0000-4000-8000-000000000001', (date_trunc('quarter', now()) + interval '3 months - 1 day')::date),
  ('7e4a0000-60a1-4000-8000-000000000003', '7e4a0000-0000-4000-8000-000000000001', 'Open a second room',
   null, 'three_years', 'draft', null, null)
on conflict (id) do nothing;
insert into public.strategies (id, tenant_id, goal_id, title, description, status) values
  ('7e4a0000-57a7-4000-8000-000000000001', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000001',
   'Corporate wellness partnerships', 'Sell ten-session packs to two local employers.', 'active'),
  ('7e4a0000-57a7-4000-8000-000000000002', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000001',
   'Member referrals', 'A free month for each friend who stays three months.', 'proposed'),
  ('7e4a0000-57a7-4000-8000-000000000003', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000002',
   'Third-month check-in call', 'A coach calls every member in week ten.', 'active')
on conflict (id) do nothing;
insert into public.kpis (id, tenant_id, goal_id, name, unit, baseline, target, current_value, direction) values
  ('7e4a0000-6b15-4000-8000-000000000001', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000001',
   'Active members', 'members', 84, 120, 97, 'increase'),
  ('7e4a0000-6b15-4000-8000-000000000002', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000002',
   'Monthly churn', '%', 7.5, 4, 6.1, 'decrease'),
  ('7e4a0000-6b15-4000-8000-000000000003', '7e4a0000-0000-4000-8000-000000000001', null,
   'Net promoter score', 'points', 41, 50, 44, 'increase')
on conflict (id) do nothing;
insert into public.actions (id, tenant_id, goal_id, title, due_date, priority, status, assignee_id, estimated_hours, dependencies) values
  ('7e4a0000-ac71-4000-8000-000000000001', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000001',
   'Draft the corporate pack offer', (now() + interval '5 days')::date, 'high', 'in_progress', 'a11ce000-0000-4000-8000-000000000001', 6, '{}'),
  ('7e4a0000-ac71-4000-8000-000000000002', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000001',
   'Pitch the pack to the council offices', (now() + interval '14 days')::date, 'high', 'todo', 'a11ce000-0000-4000-8000-000000000001', 4,
   '{7e4a0000-ac71-4000-8000-000000000001}'),
  ('7e4a0000-ac71-4000-8000-000000000003', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000002',
   'Script the week-ten check-in call', (now() - interval '2 days')::date, 'medium', 'todo', null, 2, '{}'),
  ('7e4a0000-ac71-4000-8000-000000000004', '7e4a0000-0000-4000-8000-000000000001', null,
   'Fix the booking page on phones', (now() + interval '3 days')::date, 'critical', 'blocked', null, 8, '{}'),
  ('7e4a0000-ac71-4000-8000-000000000005', '7e4a0000-0000-4000-8000-000000000001', '7e4a0000-60a1-4000-8000-000000000002',
   'Send the member survey', (now() - interval '20 days')::date, 'low', 'done', 'a11ce000-0000-4000-8000-000000000001', 1, '{}')
on conflict (id) do nothing;
insert into public.business_issues (id, tenant_id, title, description, impact, status) values
  ('7e4a0000-155e-4000-8000-000000000001', '7e4a0000-0000-4000-8000-000000000001', 'Evening classes half empty',
   'The 19:00 sessions average 4 of 10 places since the autumn.', 'high', 'open'),
  ('7e4a0000-155e-4000-8000-000000000002', '7e4a0000-0000-4000-8000-000000000001', 'Bookings fail on phones',
   'About one in five phone bookings errors out at payment.', 'critical', 'investigating')
on conflict (id) do nothing;
insert into public.business_figures (tenant_id, month, revenue_usd, customers, churned_customers, team_size)
select '7e4a0000-0000-4000-8000-000000000001', (date_trunc('month', now()) - make_interval(months => k))::date,
       9800 + (6 - k) * 450, 84 + (6 - k) * 2 + (6 - k) / 2, 7 - (6 - k) / 3, 4 + (case when k <= 2 then 1 else 0 end)
from generate_series(1, 6) k
on conflict (tenant_id, month) do nothing;

-- The prompts of the AI coaching endpoints (version 1 of each, labelled production) come
-- with migration 20261124130000, so that a deployed project has them too.

-- The studio's AI coaching calls of the last six weeks (priced gpt-4o-mini calls, as
-- coaching-ai logs them), so that spend against budget shows in analytics.tenant_ai_spend.
with calls as (
  select k, (array['coaching/alignment-check', 'operations/root-cause-suggestions', 'coaching/kpi-recommendations',
                   'operations/prioritization-suggestions'])[1 + k % 4] as route,
         now() - make_interval(days => k * 4, hours => k) as at
  from generate_series(1, 10) k
  where not exists (select 1 from public.tenant_ai_calls c where c.tenant_id = '7e4a0000-0000-4000-8000-000000000001')
), logged as (
  select c.*, (public.log_coach_interaction(
    sender => 'ai_coach', user_id => 'a11ce000-0000-4000-8000-000000000001', channel => 'api',
    content => jsonb_build_object('text', c.route || ' for tenant 7e4a0000-0000-4000-8000-000000000001'),
    metadata => jsonb_build_object('operation', c.route, 'tenant_id', '7e4a0000-0000-4000-8000-000000000001',
                                   'prompt_name', c.route, 'prompt_version', 1),
    request_id => 'seed-ai-call-' || c.k, model => 'gpt-4o-mini', latency_ms => 1800 + c.k * 37,
    prompt_tokens => 1400 + c.k * 50, completion_tokens => 350 + c.k * 11, created_at => c.at)).interaction as i
  from calls c
)
insert into public.tenant_ai_calls (tenant_id, interaction_id, route, prompt_version, model, status, cost_usd, created_at)
select '7e4a0000-0000-4000-8000-000000000001', (l.i).id, l.route, 1, 'gpt-4o-mini', 'ok', coalesce((l.i).cost_usd, 0), l.at
from logged l;

-- Coach execution engine (dates relative to when the seed runs, so `npm start` always shows
-- a live plan): a catalogue, and Alice's five pursuits. Her top application stalled three
-- days ago (a micro-task), a win Carol proposed waits for Alice's confirmation, and one
-- submitted 22 days ago has its check-in due. Bob tracks a grant of his own due in two days.
-- The nudge scheduler then runs once: Alice gets her check-in as a toast, Bob a deadline
-- reminder email (in the outbox until dispatch-notifications, run by pg_cron within five
-- minutes, writes it to the gateway's log: no mail leaves a local stack).
insert into public.opportunities (id, owner_id, title, provider, amount, deadline, trust_score, application_type, url)
values
  ('0990f000-0000-4000-8000-000000000001', null, 'STEM Futures Scholarship', 'Futures Fund', 5000, now() + interval '5 days', 0.9, 'essay', 'https://example.org/stem-futures'),
  ('0990f000-0000-4000-8000-000000000002', null, 'Community Leaders Grant', 'City Foundation', 2000, now() + interval '12 days', 0.7, 'form', null),
  ('0990f000-0000-4000-8000-000000000003', 'a11ce000-0000-4000-8000-000000000001', 'Night-shift bursary', 'Riverside Hospital', 800, now() + interval '40 days', 0.6, 'mixed', null),
  ('0990f000-0000-4000-8000-000000000004', null, 'Regional Arts Award', 'Arts Council', 1500, now() - interval '20 days', 0.8, 'essay', null),
  ('0990f000-0000-4000-8000-000000000005', null, 'City Bursary', 'City of Riverside', 1000, now() - interval '25 days', 0.9, 'form', null),
  ('0990f000-0000-4000-8000-000000000006', null, 'Open Source Fellowship', 'Code Commons', 3000, now() + interval '25 days', 0.5, 'mixed', null),
  ('0990f000-0000-4000-8000-000000000007', 'b0b00000-0000-4000-8000-000000000002', 'Weekend bootcamp grant', 'Riverside Tech Hub', 600, now() + interval '2 days', 0.8, 'form', null)
on conflict (id) do nothing;

insert into public.applications (id, user_id, opportunity_id, status, submitted_at, last_progress_at, metadata)
values
  ('0a99f000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', '0990f000-0000-4000-8000-000000000001',
   'draft', null, now() - interval '3 days', '{"coach_stage": "drafting"}'),
  ('0a99f000-0000-4000-8000-000000000002', 'a11ce000-0000-4000-8000-000000000001', '0990f000-0000-4000-8000-000000000002',
   'draft', null, now() - interval '1 day', '{"coach_stage": "review"}'),
  ('0a99f000-0000-4000-8000-000000000003', 'a11ce000-0000-4000-8000-000000000001', '0990f000-0000-4000-8000-000000000003',
   'draft', null, now() - interval '6 hours', '{"coach_stage": "tracked"}'),
  ('0a99f000-0000-4000-8000-000000000004', 'a11ce000-0000-4000-8000-000000000001', '0990f000-0000-4000-8000-000000000004',
   'submitted', now() - interval '30 days', now() - interval '2 days', '{"coach_stage": "outcome_pending"}'),
  ('0a99f000-0000-4000-8000-000000000005', 'a11ce000-0000-4000-8000-000000000001', '0990f000-0000-4000-8000-000000000005',
   'submitted', now() - interval '22 days', now() - interval '22 days', '{"coach_stage": "submitted"}'),
  ('0a99f000-0000-4000-8000-000000000007', 'b0b00000-0000-4000-8000-000000000002', '0990f000-0000-4000-8000-000000000007',
   'draft', null, now() - interval '1 day', '{"coach_stage": "drafting"}')
on conflict (id) do nothing;

insert into public.check_in_tasks (id, user_id, application_id, due_at, created_at)
values
  ('0c1cf000-0000-4000-8000-000000000004', 'a11ce000-0000-4000-8000-000000000001', '0a99f000-0000-4000-8000-000000000004',
   now() - interval '9 days', now() - interval '30 days'),
  ('0c1cf000-0000-4000-8000-000000000005', 'a11ce000-0000-4000-8000-000000000001', '0a99f000-0000-4000-8000-000000000005',
   now() - interval '1 day', now() - interval '22 days')
on conflict (id) do nothing;
update public.check_in_tasks set status = 'dismissed' where id = '0c1cf000-0000-4000-8000-000000000004' and status = 'pending';

insert into public.application_state_proposals (id, application_id, user_id, proposed_state, proposed_by, proposed_by_role, created_at, expires_at)
values
  ('09a0f000-0000-4000-8000-000000000004', '0a99f000-0000-4000-8000-000000000004', 'a11ce000-0000-4000-8000-000000000001',
   'Won', 'ca401000-0000-4000-8000-000000000003', 'authenticated', now() - interval '1 day', now() + interval '6 days')
on conflict (id) do nothing;

select private.persist_momentum_scores();
select private.run_nudge_scheduler();

-- Privacy operations: a legal hold on Bob's session (retention and erasure leave it alone),
-- and a message of Alice's from three years ago, which the retention job strips (its
-- content goes; model, tokens and cost stay).
select public.place_legal_hold(user_id => 'b0b00000-0000-4000-8000-000000000002',
  reason => 'Complaint about this session under review (seed)', session_id => 'b0b00000-5e55-4000-8000-000000000002');
-- (Once: on a second run its created_at, three years before now, would differ from the first.)
select public.log_coach_interaction(
  sender => 'ai_coach', content => '{"text": "Last winter you slept better after evening walks, Alice."}', request_id => 'seed-old-1',
  user_id => 'a11ce000-0000-4000-8000-000000000001', coach_persona => 'Coach Ana', model => 'gpt-4o-mini',
  latency_ms => 850, prompt_tokens => 600, completion_tokens => 45, created_at => now() - interval '3 years')
where not exists (select 1 from public.coach_interactions where request_id = 'seed-old-1');
select private.run_retention();

-- An erased person: Dave talked to the AI coach yesterday, then asked to be forgotten. His
-- rows are gone; his metrics and cost stay under a random pseudonym (erased rows in
-- analytics), and audit.privacy_log holds the tombstone. Once only: a second run finds the
-- tombstone and does nothing.
do $$
begin
  if exists (select 1 from audit.privacy_log where operation = 'user_erased' and subject_user_id = 'da7e0000-0000-4000-8000-000000000004') then
    return;
  end if;
  insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                          raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
  values ('00000000-0000-0000-0000-000000000000', 'da7e0000-0000-4000-8000-000000000004', 'authenticated', 'authenticated',
          'dave@example.com', extensions.crypt('password123', extensions.gen_salt('bf')), now() - interval '2 days',
          '{"provider": "email", "providers": ["email"]}', '{"full_name": "Dave Dunn"}', now() - interval '2 days', now() - interval '2 days');
  perform public.log_coach_interaction(
    sender => m.sender, user_id => 'da7e0000-0000-4000-8000-000000000004', content => jsonb_build_object('text', m.text),
    request_id => m.request_id, conversation_id => 'da7e0000-c0a1-4000-8000-000000000001', coach_persona => m.persona,
    model => m.model, latency_ms => m.latency, prompt_tokens => m.pt, completion_tokens => m.ct,
    created_at => now() - interval '1 day' + m.at)
  from (values ('user', 'I want to run a 10k, Dave here.', 'seed-dave-1', null, null, null, null, null, interval '0'),
               ('ai_coach', 'Three runs a week for eight weeks, Dave.', 'seed-dave-2', 'Coach Ana', 'gpt-4o-mini', 900, 520, 40, interval '2 seconds'))
       as m(sender, text, request_id, persona, model, latency, pt, ct, at);
  perform public.erase_user('da7e0000-0000-4000-8000-000000000004', 'Erasure request by email (seed)');
end;
$$;
