-- Prompt versions as each named user: the service role writes versions and moves labels; a
-- version's content never changes and no version is deleted; a label names one version per
-- prompt; nobody else reads or writes prompts. Migration 20261124130000 writes version 1 of all eleven routes,
-- labelled production.
begin;
select plan(20);

select tests.authenticate_as_service_role();
select is((select count(*)::int from public.prompt_templates where label = 'production'), 11,
  'Version 1 of the eleven routes is labelled production');
select is((select version from public.create_prompt_version('analysis/operations', 'You are a strict coach.', 'Goal: {{goal}}')), 2,
  'A new version of a prompt is numbered after the last');
select is((select label from public.prompt_templates where name = 'analysis/operations' and version = 1), 'production',
  'and production stays where it was until promoted');
select is((select version from public.set_prompt_label('analysis/operations', 2, 'production')), 2, 'Promoting version 2');
select results_eq($$ select version, label from public.prompt_templates where name = 'analysis/operations' order by version $$,
  $$ values (1, null::text), (2, 'production') $$, 'moves the label: one version per name and label');
select is((select version from public.create_prompt_version('analysis/operations', 'v3', 'u', 'gpt-4o', '{"temperature": 0}', 'staging')), 3,
  'A version can be written with a label at once');
select is((select label from public.prompt_templates where name = 'analysis/operations' and version = 3), 'staging', 'which it carries');
select is((select version from public.create_prompt_version('coaching/new-route', 's', 'u')), 1, 'A new name starts at version 1');
select throws_ok($$ update public.prompt_templates set system_template = 'changed' where name = 'analysis/operations' and version = 1 $$,
  '42501', null, 'A version''s content cannot change');
select throws_ok($$ delete from public.prompt_templates where name = 'coaching/new-route' $$, '42501', null, 'nor can a version be deleted');
select throws_ok($$ insert into public.prompt_templates (name, version, label, system_template, user_template)
    values ('analysis/operations', 9, 'production', 's', 'u') $$,
  '23505', null, 'A second version with the same label is refused');
select throws_ok($$ select public.set_prompt_label('analysis/operations', 99, 'production') $$, 'PT404',
  'No version 99 of prompt analysis/operations', 'An unknown version cannot be labelled');
select throws_ok($$ select public.set_prompt_label('analysis/operations', 1, 'Not OK') $$, '22023', null, 'A label is a lowercase identifier');
select throws_ok($$ select public.create_prompt_version('Bad Name', 's', 'u') $$, '23514', null, 'A name is a lowercase route');
select throws_ok($$ select public.create_prompt_version('coaching/x', '', 'u') $$, '23514', null, 'Templates are not empty');
select throws_ok($$ select public.create_prompt_version('coaching/x', 's', 'u', parameters => '[1]') $$, '23514', null, 'Parameters are an object');

select tests.authenticate_as('alice@example.com');
select throws_ok($$ select * from public.prompt_templates $$, '42501', null, 'A signed-in user reads no prompts');
select throws_ok($$ select public.create_prompt_version('coaching/x', 's', 'u') $$, '42501', null, 'nor writes one');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.prompt_templates $$, '42501', null, 'anon reads no prompts');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select public.set_prompt_label('analysis/operations', 1, 'production') $$, '42501', null,
  'coach_ingest moves no label');
select tests.clear_authentication();

select * from finish();
rollback;
