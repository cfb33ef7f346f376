-- Coaching sessions as named users: the five-stage flow, stage validation, history of
-- re-saved stages, completion, action plans (transitions, updated_at), milestones
-- (completed_at by the database), the summary save, and who may read and write.
begin;
select plan(38);

select tests.create_supabase_user('dave@example.com', 'coach');

-- Owner: the flow
select tests.authenticate_as('bob@example.com');
create temporary table s as
select (public.start_coaching_session(session_type => 'self_coaching', theme => 'Evening wind-down')).id;
grant select on s to authenticated, anon, service_role;
select results_eq($$ select current_stage, is_complete, user_id from public.coaching_sessions where id = (select id from s) $$,
  $$ values (1::smallint, false, 'b0b00000-0000-4000-8000-000000000002'::uuid) $$, 'Bob starts a session at stage 1');
select throws_ok($$ select public.start_coaching_session(coach_id => 'ca401000-0000-4000-8000-000000000003') $$, '22023',
  'coach_id must be your assigned coach', 'A coach who is not assigned cannot be named');
select throws_ok($$ select public.save_stage_response((select id from s), 2, '{}') $$, 'PT409',
  'Stage 2 cannot be saved before stage 1 is complete', 'Stages go in order');
select throws_ok($$ select public.save_stage_response((select id from s), 1, '{"presence_level": 11, "emotional_state": "", "previous_actions": ["x", 3]}') $$,
  '22023', 'Stage 1 responses are invalid: presence_level must be an integer from 1 to 10; emotional_state must be a non-empty string; previous_actions must be a list of non-empty strings; readiness_score is required',
  'Invalid stage 1 responses are refused with every problem listed');
select is((select stage_name from public.save_stage_response((select id from s), 1,
  '{"presence_level": 7, "emotional_state": "calm", "previous_actions": [], "readiness_score": 8, "extra_note": "kept"}')),
  'check_in', 'A valid stage 1 is saved under its name');
select is((select responses ->> 'extra_note' from public.stage_responses where session_id = (select id from s) and stage_number = 1),
  'kept', 'Unknown keys are kept');
select is((select current_stage from public.coaching_sessions where id = (select id from s)), 2::smallint, 'Completing stage 1 moves the session to stage 2');
select lives_ok($$ select public.save_stage_response((select id from s), 1,
  '{"presence_level": 5, "emotional_state": "restless", "previous_actions": ["read a book"], "readiness_score": 6}') $$,
  'A stage can be saved again');
select is((select payload -> 'responses' ->> 'emotional_state' from public.interaction_events
           where session_id = (select id from s) and kind = 'session_state'),
  'calm', 'Re-saving keeps the previous responses in the event log');
select is((select responses ->> 'emotional_state' from public.stage_responses where session_id = (select id from s) and stage_number = 1),
  'restless', 'The stage holds the new responses');
select lives_ok($$ select public.save_stage_response((select id from s), 2, '{"topic": "Sleep"}', complete => false) $$,
  'A draft is saved without validation');
select is((select current_stage from public.coaching_sessions where id = (select id from s)), 2::smallint, 'A draft does not advance the session');
select throws_ok($$ select public.save_stage_response((select id from s), 4, '{}') $$, 'PT409',
  'Stage 4 cannot be saved before stage 2 is complete', 'A draft does not unlock the next stage');
select throws_ok($$ select public.complete_coaching_session((select id from s)) $$, 'PT409',
  'All five stages must be complete before the session is', 'An unfinished session cannot be completed');

-- Stages 2 to 5 and completion
select public.save_stage_response((select id from s), 2, '{"topic": "Sleep", "problem_statement": "I go to bed late", "current_state_rating": 4, "strengths": ["disciplined"], "obstacles": ["TV"], "resources": ["partner"]}');
select public.save_stage_response((select id from s), 3, '{"options": ["TV off at 10"], "insights": ["tired mornings"], "challenges": ["habit"], "barriers": ["shows end late"]}');
select throws_ok($$ select public.save_stage_response((select id from s), 4, '{"goal_statement": "Sleep by 11", "smart_criteria": {"specific": "bed by 11", "measurable": ""}, "action_steps": [], "obstacles": [], "contingency_plans": []}') $$,
  '22023', 'Stage 4 responses are invalid: smart_criteria.measurable must be a non-empty string; smart_criteria.achievable must be a non-empty string; smart_criteria.relevant must be a non-empty string; smart_criteria.time_bound must be a non-empty string',
  'Every SMART criterion is required');
select public.save_stage_response((select id from s), 4, '{"goal_statement": "Sleep by 11 on weeknights", "smart_criteria": {"specific": "lights out by 11", "measurable": "sleep app", "achievable": "TV off at 10", "relevant": "energy", "time_bound": "three weeks"}, "action_steps": ["TV timer"], "obstacles": ["late shows"], "contingency_plans": ["record shows"]}');
select throws_ok($$ select public.save_stage_response((select id from s), 5, '{"key_learnings": ["x"], "insights": ["y"], "session_value_rating": 0, "clarity_level": 5}') $$,
  '22023', 'Stage 5 responses are invalid: session_value_rating must be an integer from 1 to 10', 'Ratings are 1 to 10');
select public.save_stage_response((select id from s), 5, '{"key_learnings": ["evenings matter"], "insights": ["TV is the trigger"], "session_value_rating": 8, "clarity_level": 9}');
select ok((public.complete_coaching_session((select id from s))).is_complete, 'With five complete stages the session completes');
select throws_ok($$ select public.save_stage_response((select id from s), 5, '{"key_learnings": ["x"], "insights": ["y"], "session_value_rating": 5, "clarity_level": 5}') $$,
  'PT409', 'The coaching session is complete; its stages can no longer change', 'A complete session cannot change');
select is(jsonb_array_length(public.get_coaching_session((select id from s)) -> 'stages'), 5, 'get_coaching_session returns the session with its five stages');

-- The summary save (service role) creates plans and milestones, and a refresh does not duplicate them
select tests.authenticate_as_service_role();
select private.save_session_summary((select id from s), '# Summary', '{"executive_summary": "x", "goal_statement": "Sleep by 11 on weeknights",
  "action_plan": [{"title": "Set a TV timer", "description": "Off at 10pm", "priority": 1, "due_date": "2026-12-01", "milestones": [{"title": "Timer bought", "due_date": "2026-11-25"}]},
                  {"title": "Record late shows", "priority": 3}]}', 'offline');
select private.save_session_summary((select id from s), '# Summary v2', '{"executive_summary": "y", "goal_statement": "Sleep by 11 on weeknights",
  "action_plan": [{"title": "Set a TV timer", "description": "Off at 10pm sharp", "priority": 2, "due_date": "2026-12-01", "milestones": [{"title": "Timer bought", "due_date": "2026-11-26"}]}]}', 'offline');
select results_eq($$ select title, description, priority, source from public.action_plans where session_id = (select id from s) order by title $$,
  $$ values ('Record late shows', null, 3::smallint, 'summary'), ('Set a TV timer', 'Off at 10pm sharp', 2::smallint, 'summary') $$,
  'A refreshed summary updates its plans in place instead of duplicating them');
select is((select count(*)::int from public.milestones m join public.action_plans p on p.id = m.action_plan_id where p.session_id = (select id from s)), 1,
  'Milestones are not duplicated either');
select is((select summary_model from public.coaching_sessions where id = (select id from s)), 'offline', 'The summary is cached on the session');

-- Owner: plans and milestones
select tests.authenticate_as('bob@example.com');
create temporary table plan as select id from public.action_plans where session_id = (select id from s) and title = 'Set a TV timer';
grant select on plan to authenticated;
select is((select status from public.update_action_plan((select id from plan), status => 'in_progress')), 'in_progress', 'Bob starts a plan');
select throws_ok($$ select public.update_action_plan((select id from plan), status => 'done') $$, '22023',
  'An action plan cannot move from in_progress to done', 'An unknown status is refused');
select public.update_action_plan((select id from plan), status => 'completed');
select throws_ok($$ select public.update_action_plan((select id from plan), status => 'pending') $$, '22023',
  'An action plan cannot move from completed to pending', 'Only allowed transitions are accepted');
select is((select coaching_theme from public.list_action_plans() where id = (select id from plan)), 'Evening wind-down',
  'list_action_plans gives each plan its coaching theme');
select isnt((select completed_at from public.complete_milestone((select m.id from public.milestones m where m.action_plan_id = (select id from plan)))),
  null, 'Completing a milestone sets completed_at in the database');
select is((select completed_at from public.add_milestone((select id from plan), 'Tell my partner')), null, 'A new milestone is open');

-- Assigned coach, stranger, anon
select tests.authenticate_as('carol@example.com');
select is((public.get_coaching_session('a11ce000-5e55-4000-8000-000000000001') ->> 'theme'), 'Morning routine and sleep',
  'Carol reads her client Alice''s session');
select throws_ok($$ select public.save_stage_response('a11ce000-5e55-4000-8000-000000000001', 1, '{}') $$, '42501',
  'Only the session owner can change a coaching session', 'Carol cannot write in Alice''s session');
select is(public.get_coaching_session((select id from s)), null, 'Carol cannot see Bob''s session');
select is_empty($$ select 1 from public.coaching_sessions where user_id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'Carol does not read Alice''s sessions directly, only through the audited RPC');
select is((select count(*)::int from public.list_action_plans(owner_id => 'a11ce000-0000-4000-8000-000000000001')), 0,
  'Carol lists her client Alice''s action plans (none yet)');
select tests.authenticate_as_service_role();
select results_eq($$ select actor_id, resource from audit.phi_access_log where subject_user_id = 'a11ce000-0000-4000-8000-000000000001' and accessed_at = now() order by id $$,
  $$ values ('ca401000-0000-4000-8000-000000000003'::uuid, 'coaching_sessions'), ('ca401000-0000-4000-8000-000000000003'::uuid, 'action_plans') $$,
  'A coach''s reads of a client''s session and plans are in the PHI access log');
select tests.authenticate_as('dave@example.com');
select is_empty($$ select 1 from public.stage_responses $$, 'An unassigned coach sees no stages');
select throws_ok($$ select public.update_action_plan((select id from plan), title => 'mine') $$, '42501',
  'Only the owner can update this action plan', 'A stranger cannot update Bob''s plan');
select throws_ok($$ select * from public.list_action_plans(owner_id => 'b0b00000-0000-4000-8000-000000000002') $$, '42501',
  'Only the user, their assigned coach or the service role can read these action plans', 'A stranger cannot list Bob''s plans');
select tests.authenticate_as_anon();
select throws_ok($$ select public.start_coaching_session() $$, '42501', 'permission denied for function start_coaching_session', 'anon cannot start a session');

select * from finish();
rollback;
