-- The seed shows every part of the engine on npm start: Alice's plan has three open
-- applications, a micro-task, a due check-in, and a win waiting for her confirmation.
begin;
select plan(5);

select tests.authenticate_as('alice@example.com');
create temporary table plan on commit drop as select public.get_game_plan() as p;
select results_eq($$ select x ->> 'title', x ->> 'coach_state' from plan, jsonb_array_elements(p -> 'top') x $$,
  $$ values ('STEM Futures Scholarship', 'Drafting'), ('Community Leaders Grant', 'Review'), ('Night-shift bursary', 'Tracked') $$,
  'Alice''s seeded plan ranks her three open applications');
select is((select p -> 'micro_task' ->> 'text' from plan), 'Write the first paragraph of your essay for STEM Futures Scholarship (15 minutes).',
  'Her top application stalled three days ago, so the plan has a micro-task');
select is((select jsonb_agg(x ->> 'title') from plan, jsonb_array_elements(p -> 'check_ins_due') x), '["City Bursary"]'::jsonb,
  'The application submitted 22 days ago has its check-in due');
select results_eq($$ select proposed_state, status from public.application_state_proposals $$,
  $$ values ('Won', 'pending'::public.proposal_status) $$, 'A win Carol proposed waits for Alice''s confirmation');
select is((select count(*)::int from public.applications where momentum_score is not null), 3,
  'The seed persists the momentum of her open applications');

select * from finish();
rollback;
