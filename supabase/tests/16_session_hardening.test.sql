-- Coaching sessions, hardened: a summary refresh keeps the user's plan edits; the action
-- plan state machine over every from -> to pair; what an assigned coach cannot do directly
-- (each checked for the stranger as well); client mistakes answered with 4xx codes.
begin;
select plan(33);

select tests.create_supabase_user('dave@example.com', 'coach');
select tests.create_supabase_user('noprofile@example.com');

-- A session of Bob's, complete, with a summary (written as postgres, like the function's service role).
select tests.authenticate_as('bob@example.com');
create temporary table s as select (public.start_coaching_session(theme => 'Hardening')).id;
grant select on s to authenticated, service_role;
select tests.clear_authentication();
select private.save_session_summary((select id from s), '# v1', '{"executive_summary": "x", "goal_statement": "Goal v1",
  "action_plan": [{"title": "Plan A", "description": "model text v1", "priority": 2, "due_date": "2026-12-01", "milestones": []},
                  {"title": "Plan B", "description": "B v1", "priority": 4, "due_date": "2026-12-10", "milestones": [{"title": "B1", "due_date": "2026-12-05"}]}]}', 'offline');
create temporary table plan_a as select id from public.action_plans where session_id = (select id from s) and title = 'Plan A';
create temporary table plan_b as select id from public.action_plans where session_id = (select id from s) and title = 'Plan B';
grant select on plan_a, plan_b to authenticated;

-- Bob edits Plan A's priority, description and end date, and its status.
select tests.authenticate_as('bob@example.com');
select is((select user_edited_fields from public.update_action_plan((select id from plan_a), priority => 1::smallint,
    description => 'my own words', timeline_end => '2027-01-31', status => 'in_progress')),
  array['description', 'priority', 'timeline_end'], 'The fields Bob set are recorded as his');
select tests.clear_authentication();
select private.save_session_summary((select id from s), '# v2', '{"executive_summary": "y", "goal_statement": "Goal v2",
  "action_plan": [{"title": "Plan A", "description": "model text v2", "priority": 5, "due_date": "2026-12-24", "milestones": []},
                  {"title": "Plan B", "description": "B v2", "priority": 3, "due_date": "2026-12-20", "milestones": [{"title": "B1", "due_date": "2026-12-06"}]}]}', 'offline');
select results_eq($$ select description, priority, timeline_end, status, goal_statement from public.action_plans where id = (select id from plan_a) $$,
  $$ values ('my own words', 1::smallint, '2027-01-31'::date, 'in_progress', 'Goal v2') $$,
  'A refresh keeps Bob''s description, priority, end date and status, and updates the goal he did not edit');
select results_eq($$ select description, priority, timeline_end from public.action_plans where id = (select id from plan_b) $$,
  $$ values ('B v2', 3::smallint, '2026-12-20'::date) $$, 'A plan Bob did not edit follows the model');
select is((select due_date from public.milestones where action_plan_id = (select id from plan_b) and title = 'B1'), '2026-12-06'::date,
  'A proposed milestone gets the new due date');
select tests.authenticate_as('bob@example.com');
select public.update_action_plan((select id from plan_b), title => 'Plan B, renamed');
select tests.clear_authentication();
select private.save_session_summary((select id from s), '# v3', '{"executive_summary": "z", "goal_statement": "Goal v3",
  "action_plan": [{"title": "Plan B", "description": "B v3", "priority": 2, "due_date": null, "milestones": []}]}', 'offline');
select results_eq($$ select title, description from public.action_plans where id = (select id from plan_b) $$,
  $$ values ('Plan B, renamed', 'B v3') $$, 'A renamed plan keeps its title and is still found by the refresh');
select is((select count(*)::int from public.action_plans where session_id = (select id from s)), 2, 'A refresh after a rename does not duplicate the plan');

-- The state machine, every pair.
create temporary table transitions as
select f.s as from_status, t.s as to_status
from unnest(array['pending', 'in_progress', 'completed', 'blocked']) f(s)
cross join unnest(array['pending', 'in_progress', 'completed', 'blocked']) t(s)
where f.s <> t.s;
create function pg_temp.try_transition(from_status text, to_status text) returns boolean
language plpgsql as $$
declare
  p uuid;
begin
  insert into public.action_plans (user_id, title, status) values ('b0b00000-0000-4000-8000-000000000002', 'state machine', from_status)
  returning id into p;
  begin
    update public.action_plans set status = to_status where id = p;
    delete from public.action_plans where id = p;
    return true;
  exception when sqlstate '22023' then
    delete from public.action_plans where id = p;
    return false;
  end;
end;
$$;
select results_eq(
  $$ select from_status, to_status from transitions where pg_temp.try_transition(from_status, to_status) order by 1, 2 $$,
  $$ values ('blocked', 'in_progress'), ('blocked', 'pending'), ('completed', 'in_progress'),
            ('in_progress', 'blocked'), ('in_progress', 'completed'), ('in_progress', 'pending'),
            ('pending', 'blocked'), ('pending', 'completed'), ('pending', 'in_progress') $$,
  'Exactly the nine documented transitions are allowed');
select is((select count(*)::int from transitions where not pg_temp.try_transition(from_status, to_status)), 3,
  'The other three pairs are refused (completed to pending or blocked, blocked to completed)');
select is(pg_temp.try_transition('pending', 'archived'), false, 'A move to an unknown status is refused');

-- What Alice's assigned coach cannot do directly, and the stranger neither.
select tests.clear_authentication();
insert into public.action_plans (id, user_id, title) values ('a11ce000-9999-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', 'Alice''s plan');
insert into public.milestones (id, action_plan_id, title) values ('a11ce000-9999-4000-8000-000000000002', 'a11ce000-9999-4000-8000-000000000001', 'Alice''s milestone');
create temporary table alice_plan as select 'a11ce000-9999-4000-8000-000000000001'::uuid as id;
create temporary table alice_milestone as select 'a11ce000-9999-4000-8000-000000000002'::uuid as id;
grant select on alice_plan, alice_milestone to authenticated;

select tests.authenticate_as('carol@example.com');
select is_empty($$ select 1 from public.stage_responses r join public.coaching_sessions s on s.id = r.session_id $$,
  'Alice''s coach reads no stage responses directly');
select is_empty($$ select 1 from public.stage_responses where session_id = 'a11ce000-5e55-4000-8000-000000000001' $$,
  'not even by the session id of her client''s session');
select is_empty($$ select 1 from public.action_plans where user_id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'Alice''s coach reads no action plans directly');
select is_empty($$ select 1 from public.milestones $$, 'Alice''s coach reads no milestones directly');
select throws_ok($$ select public.update_action_plan((select id from alice_plan), priority => 1::smallint) $$, '42501',
  'Only the owner can update this action plan', 'Alice''s coach cannot update her action plans');
select throws_ok($$ select public.update_action_plan((select id from alice_plan), status => 'blocked') $$, '42501',
  'Only the owner can update this action plan', 'nor change their status');
select throws_ok($$ select public.add_milestone((select id from alice_plan), 'coach milestone') $$, '42501',
  'Only the owner of the action plan can add milestones', 'Alice''s coach cannot add milestones');
select throws_ok($$ select public.complete_milestone((select id from alice_milestone)) $$, '42501',
  'Only the owner of the action plan can complete its milestones', 'Alice''s coach cannot complete milestones');
select throws_ok($$ select public.complete_coaching_session('a11ce000-5e55-4000-8000-000000000001') $$, '42501',
  'Only the session owner can change a coaching session', 'Alice''s coach cannot complete her session');
select tests.authenticate_as('dave@example.com');
select is_empty($$ select 1 from public.stage_responses $$, 'A stranger coach reads no stage responses');
select is_empty($$ select 1 from public.action_plans where user_id = 'a11ce000-0000-4000-8000-000000000001' $$,
  'A stranger coach reads no action plans');
select throws_ok($$ select public.update_action_plan((select id from alice_plan), priority => 1::smallint) $$, '42501',
  'Only the owner can update this action plan', 'A stranger cannot update Alice''s plans');
select throws_ok($$ select public.add_milestone((select id from alice_plan), 'x') $$, '42501',
  'Only the owner of the action plan can add milestones', 'A stranger cannot add milestones');
select throws_ok($$ select public.complete_milestone((select id from alice_milestone)) $$, '42501',
  'Only the owner of the action plan can complete its milestones', 'A stranger cannot complete milestones');

-- Client mistakes are 4xx codes (PT404 and PT409 become 404 and 409).
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.save_stage_response(gen_random_uuid(), 1, '{}') $$, 'PT404',
  'Coaching session not found', 'An unknown session is PT404');
select throws_ok($$ select public.save_stage_response('a11ce000-5e55-4000-8000-000000000001', 1, '{}') $$, 'PT404',
  'Coaching session not found', 'Someone else''s session is PT404, the same answer as an unknown one');
-- A token with the authenticated role but no sub (which PostgREST would let through) is no
-- one's: it owns no session, so it can change none.
select tests._act_as(null, null);
select tests._act_as('authenticated', '{"role": "authenticated", "aud": "authenticated"}'::jsonb);
select throws_ok($$ select public.save_stage_response('a11ce000-5e55-4000-8000-000000000001', 1, '{}') $$, 'PT404',
  'Coaching session not found', 'An authenticated token without sub cannot write to Alice''s session');
select throws_ok($$ select public.complete_coaching_session('a11ce000-5e55-4000-8000-000000000001') $$, 'PT404',
  'Coaching session not found', 'nor complete it');
select tests.authenticate_as('bob@example.com');
select throws_ok($$ select public.complete_coaching_session(gen_random_uuid()) $$, 'PT404',
  'Coaching session not found', 'Completing an unknown session is PT404');
select throws_ok($$ select public.save_stage_response((select id from s), 3, '{}') $$, 'PT409',
  'Stage 3 cannot be saved before stage 1 is complete', 'Out of order is PT409');
select throws_ok($$ select public.save_stage_response((select id from s), 1,
    jsonb_build_object('presence_level', 5, 'emotional_state', repeat('x', 4001), 'previous_actions', '[]'::jsonb, 'readiness_score', 5)) $$,
  '23514', 'responses has a string longer than 4000 characters', 'Stage responses are bounded');
select throws_ok($$ select public.update_action_plan((select id from plan_a), description => repeat('d', 4001)) $$, '23514',
  'new row for relation "action_plans" violates check constraint "action_plans_description_length"', 'A plan description is bounded');
select throws_ok($$ select public.add_milestone((select id from plan_a), 'long', repeat('d', 4001)) $$, '23514',
  'new row for relation "milestones" violates check constraint "milestones_description_length"', 'A milestone description is bounded');
select tests.clear_authentication();
-- A user without a profile (a profile goes only with its user's erasure: its guard is lifted
-- for this one delete, inside this rolled-back transaction).
alter table public.profiles disable trigger profiles_retain_deidentified_metrics;
delete from public.profiles where id = tests.get_user_id('noprofile@example.com');
alter table public.profiles enable trigger profiles_retain_deidentified_metrics;
select tests.authenticate_as('noprofile@example.com');
select throws_ok($$ select public.update_my_profile(display_name => 'x') $$, 'PT404',
  'The caller has no profile to update', 'Updating a missing profile is PT404');

select * from finish();
rollback;
