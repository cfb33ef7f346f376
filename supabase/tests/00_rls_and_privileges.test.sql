-- Deny by default: RLS everywhere in exposed schemas, no privileges for anon, explicit
-- function grants only, security definer functions pinned, plpgsql functions clean.
begin;
select plan(15);

select is_empty(
  $$ select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity $$,
  'Every table in public has row level security enabled'
);

select is_empty(
  $$ select table_name, privilege_type from information_schema.role_table_grants
     where grantee = 'anon' and table_schema in ('public', 'private') $$,
  'anon has no privilege on any table in public or private'
);

select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('public', 'private')
       and (has_function_privilege('anon', p.oid, 'execute')
            or exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0 and a.privilege_type = 'EXECUTE')
            or p.proacl is null) $$,
  'No function in public or private is executable by anon or PUBLIC'
);

select is_empty(
  $$ select table_schema, table_name, privilege_type from information_schema.role_table_grants
     where grantee in ('coach_analyst', 'coach_ingest') and table_schema in ('public', 'private', 'audit', 'auth') $$,
  'coach_analyst and coach_ingest hold no privilege on any table outside analytics'
);

select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('public', 'private', 'audit') and has_function_privilege('coach_ingest', p.oid, 'execute')
       and p.oid not in (
         'public.log_coach_interaction(text, jsonb, text, uuid, text, uuid, uuid, text, jsonb, text, integer, integer, integer, integer, numeric, real, text, text, text, text, timestamptz)'::regprocedure,
         'public.log_coach_interactions(jsonb)'::regprocedure,
         'public.log_event(text, text, uuid, uuid, uuid, uuid, text, smallint, jsonb, text, timestamptz)'::regprocedure,
         'public.log_events(jsonb)'::regprocedure,
         'public.persist_assessment_summary(text, uuid, numeric, jsonb, integer, uuid, text[], text[], text, text, timestamptz)'::regprocedure) $$,
  'coach_ingest can execute the ingest write paths (interactions and events one by one and in batches, assessments) and no other function'
);

select is_empty(
  $$ select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'analytics' and c.relkind in ('r', 'v', 'm', 'p')
       and has_table_privilege('coach_analyst', c.oid, 'insert, update, delete, truncate') $$,
  'coach_analyst cannot change anything in analytics'
);

select table_privs_are('public', 'profiles', 'authenticated', array['SELECT'],
  'authenticated may only select whole rows of profiles');
select column_privs_are('public', 'profiles', 'timezone', 'authenticated', array['SELECT', 'UPDATE'],
  'authenticated may update a profile''s timezone');
select column_privs_are('public', 'profiles', 'role', 'authenticated', array['SELECT'],
  'authenticated may not update a profile''s role');
select table_privs_are('public', 'coach_assignments', 'authenticated', array['SELECT'],
  'authenticated may only read coach_assignments');
select table_privs_are('public', 'coach_assignments', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  'service_role manages coach_assignments');

select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('public', 'private') and p.prosecdef
       and not coalesce(p.proconfig, '{}') @> array['search_path=""'] $$,
  'Every security definer function sets search_path to empty'
);

select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('public', 'private') and obj_description(p.oid, 'pg_proc') is null $$,
  'Every function in public and private has a comment'
);

select is_empty(
  $$ select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relkind in ('r', 'p', 'v') and obj_description(c.oid, 'pg_class') is null $$,
  'Every table and view in public has a comment'
);

-- plpgsql_check: every plpgsql function (a trigger function against each table it is a
-- trigger on, with its transition tables) compiles cleanly with no errors or warnings.
select is_empty(
  $$ select p.oid::regprocedure::text, r.message
     from pg_proc p
     join pg_namespace n on n.oid = p.pronamespace
     join pg_language l on l.oid = p.prolang and l.lanname = 'plpgsql'
     left join lateral (select t.tgrelid, t.tgoldtable, t.tgnewtable from pg_trigger t where t.tgfoid = p.oid and not t.tgisinternal) trg on true
     cross join lateral extensions.plpgsql_check_function_tb(p.oid, coalesce(trg.tgrelid, 0),
                                                             oldtable => trg.tgoldtable, newtable => trg.tgnewtable) r
     where n.nspname in ('public', 'private') and r.level in ('error', 'warning') $$,
  'plpgsql_check finds no errors or warnings in our plpgsql functions'
);

select * from finish();
rollback;
