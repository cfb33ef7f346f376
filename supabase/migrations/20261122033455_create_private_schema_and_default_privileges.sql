-- Purpose: deny by default. Creates the `private` schema for internals (security definer
-- helpers, trigger functions) and revokes the privileges that Postgres and the Supabase
-- image hand out by default on new objects in `public`, so every later migration grants
-- exactly what each role needs, explicitly.
-- Objects: schema private; default privileges of role postgres in schemas public and private.
-- Destructive: none.

create schema if not exists private;
comment on schema private is
  'Internals of Coach Ledger: helpers and trigger functions. Not exposed through the API.';

-- RLS policies call helpers in private as the API roles, so they need to look inside;
-- each function still needs its own grant.
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Functions: Postgres grants execute to PUBLIC by default (a global default, so it is revoked
-- globally: a per-schema revoke cannot remove it); the Supabase image also grants it to
-- anon, authenticated and service_role in public. Every function is granted one by one.
alter default privileges revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from anon, authenticated, service_role;
alter default privileges in schema private revoke execute on functions from public;

-- Tables and sequences: with the image's legacy default (auto_expose_new_tables = true) new
-- tables are granted to the API roles; revoke that so both defaults end the same way.
alter default privileges in schema public revoke all on tables from anon, authenticated, service_role;
alter default privileges in schema public revoke all on sequences from anon, authenticated, service_role;

-- Shared trigger function: keeps updated_at current on every update.
create or replace function private.trigger_set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
comment on function private.trigger_set_updated_at() is
  'Trigger function: sets updated_at to now() on every update (triggers named <table>_set_updated_at).';
