-- The skills catalogue as each named user: signed-in users (owner, stranger, coaches) read
-- active skills; the service role reads and writes all; anon, coach_ingest and coach_analyst
-- nothing. list_skills validates its category and limit.
begin;
select plan(22);

select tests.create_supabase_user('skills-unassigned-coach@example.com', 'coach');

-- Signed-in users ------------------------------------------------------------------------
select tests.authenticate_as('alice@example.com');
select is((select count(*)::int from public.skills), 12, 'Alice reads the 12 active skills');
select is_empty($$ select 1 from public.skills where not active $$, 'but not the retired one');
select results_eq($$ select slug from public.list_skills('communication') $$,
  $$ values ('active-listening'), ('giving-feedback'), ('public-speaking') $$,
  'list_skills(category) gives that category''s active skills by name');
select is((select count(*)::int from public.list_skills()), 12, 'list_skills() gives every active skill');
select is((select count(*)::int from public.list_skills("limit" => 5)), 5, 'limit bounds the list');
select results_eq($$ select category, slug from public.list_skills("limit" => 3) $$,
  $$ values ('career', 'interviewing'), ('career', 'scholarship-essays'), ('communication', 'active-listening') $$,
  'ordered by category, then name');
select throws_ok($$ select * from public.list_skills('cooking') $$, '22023', 'Unknown category: cooking',
  'An unknown category is refused, naming it');
select throws_ok($$ select * from public.list_skills("limit" => 0) $$, '22023', 'limit must be between 1 and 200',
  'A limit of 0 is refused');
select throws_ok($$ select * from public.list_skills("limit" => 201) $$, '22023', 'limit must be between 1 and 200',
  'A limit over 200 is refused');
select throws_ok($$ insert into public.skills (slug, name, category) values ('forged', 'Forged', 'learning') $$,
  '42501', null, 'Alice cannot add a skill');
select throws_ok($$ update public.skills set active = false $$, '42501', null, 'nor change one');
select throws_ok($$ delete from public.skills $$, '42501', null, 'nor delete one');

select tests.authenticate_as('bob@example.com');
select is((select count(*)::int from public.list_skills()), 12, 'Bob reads the same catalogue');
select tests.authenticate_as('carol@example.com');
select is((select count(*)::int from public.list_skills()), 12, 'So does Carol, an assigned coach');
select tests.authenticate_as('skills-unassigned-coach@example.com');
select is((select count(*)::int from public.list_skills()), 12, 'and a coach with no clients');

-- Roles without access ---------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok($$ select 1 from public.skills $$, '42501', null, 'anon cannot read skills');
select throws_ok($$ select * from public.list_skills() $$, '42501', null, 'nor call list_skills');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select 1 from public.skills $$, '42501', null, 'coach_ingest cannot read skills');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select 1 from public.skills $$, '42501', null, 'coach_analyst cannot read skills');

-- The service role ----------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.list_skills()), 13, 'The service role lists the retired skill too');
select lives_ok($$ insert into public.skills (slug, name, category) values ('negotiation', 'Negotiation', 'career') $$,
  'and adds skills');
select throws_ok($$ insert into public.skills (slug, name, category) values ('Bad Slug', 'Bad', 'career') $$,
  '23514', null, 'A slug that is not lowercase words joined by hyphens is refused');
select tests.clear_authentication();

select * from finish();
rollback;
