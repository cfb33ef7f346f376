-- Purpose: let the API reach the custom roles from supabase/roles.sql. PostgREST's
-- `authenticator` switches to the role named by a JWT's role claim, so it must be a member
-- of coach_ingest; `postgres` (edge functions' connection) likewise, so functions can act
-- as an ingest caller. coach_analyst is a database login for Grafana, not a JWT role.
-- Objects: role memberships. Destructive: none.

grant coach_ingest to authenticator;
grant coach_ingest to postgres;
grant coach_analyst to postgres;

-- Statement timeout for ingest calls, as the image sets one for the API roles.
alter role coach_ingest set statement_timeout = '8s';

-- The database role a call runs for: the role set by SET ROLE (PostgREST, functions,
-- tests), else the login role. Inside a security definer function current_user is the
-- owner, so the write paths use this to check their caller.
create or replace function private.caller_role()
returns text
language sql
stable
set search_path = ''
as $$
  select coalesce(nullif(current_setting('role', true), 'none'), session_user::text)
$$;
comment on function private.caller_role() is
  'The role the caller acts as (SET ROLE, else the session user); unaffected by security definer.';
grant execute on function private.caller_role() to authenticated, service_role;
