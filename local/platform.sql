-- local/platform.sql: what the Supabase Postgres image provides and Coach Ledger relies on.
--
-- Applied by the local stack (local/cli.ts) as the bootstrap superuser `supabase_admin`
-- to the `postgres` database, before the Supabase CLI pushes roles, migrations and seed.
-- Dev and CI only: never apply this to a hosted project, which already has all of it.
-- Facts it follows: ../shared/PLATFORM.md (roles, auth, realtime, storage, extensions).
--
-- Every start runs it again, so it is written in two kinds of statements:
-- - "create what is missing" (create … if not exists, create or replace of the platform's
--   own functions), which runs every time and can never undo a migration;
-- - grants, revokes, role settings, ownership and default privileges, which run only on a
--   fresh database (no migration applied yet: no supabase_migrations.schema_migrations),
--   as the Supabase image applies its init scripts once, when its database is created.
--   Our migrations change some of these (the first one revokes the image's default
--   privileges in public); running them again at a warm start would undo that.
-- A later addition that creates an object on an existing database must grant what it
-- needs in the same guarded step (do $$ begin if … is null then create …; grant …; end if;
-- end $$), never as a bare grant that runs at every start.

set client_min_messages = warning;

-- Whether this database is fresh: the CLI creates schema_migrations on its first push.
select to_regclass('supabase_migrations.schema_migrations') is null as platform_fresh \gset

-- ---------------------------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------------------------
do $roles$
begin
  if not exists (select from pg_roles where rolname = 'postgres') then
    create role postgres;
  end if;
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator;
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin;
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin;
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin;
  end if;
end
$roles$;

\if :platform_fresh
-- `postgres` is demoted on Supabase: migrations must never rely on superuser powers.
alter role postgres with nosuperuser createdb createrole login replication bypassrls
  password 'postgres';
alter role anon with nologin inherit;
alter role authenticated with nologin inherit;
alter role service_role with nologin inherit bypassrls;
alter role authenticator with login noinherit password 'postgres';
alter role supabase_auth_admin with nologin noinherit createrole; -- login: see auth below
alter role supabase_storage_admin with nologin noinherit;
alter role supabase_realtime_admin with nologin noinherit;

grant anon, authenticated, service_role to postgres;
-- As on Supabase, postgres can manage policies on realtime.messages and storage.objects.
grant supabase_realtime_admin, supabase_storage_admin to postgres;
grant anon, authenticated, service_role to authenticator;

-- As on Supabase, extensions are on the search path of the roles that run SQL directly.
alter role postgres set search_path = "$user", public, extensions;
alter role supabase_admin set search_path = "$user", public, extensions;

-- PostgREST's statement timeouts and API role settings, as the image configures them.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';

-- The CLI connects as postgres and creates schemas (private, analytics, audit,
-- supabase_migrations) and, with --include-roles, custom roles.
grant create, connect, temporary on database postgres to postgres;
grant connect on database postgres to anon, authenticated, service_role, authenticator;
\endif

-- ---------------------------------------------------------------------------------------
-- Schemas public and extensions
-- ---------------------------------------------------------------------------------------
create schema if not exists extensions;

create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
-- pgTAP lives in `extensions`, as `supabase test db` installs it; plpgsql_check lints
-- our plpgsql functions in the test suite.
create extension if not exists pgtap with schema extensions;
create extension if not exists plpgsql_check with schema extensions;
-- pg_cron is preloaded (shared_preload_libraries) and created in pg_catalog, as on Supabase.
create extension if not exists pg_cron with schema pg_catalog;

\if :platform_fresh
grant usage, create on schema public to postgres;
grant usage on schema public to anon, authenticated, service_role;
grant usage on schema extensions to anon, authenticated, service_role;
grant usage on schema extensions to postgres with grant option;

grant usage on schema cron to postgres;
grant all on all tables in schema cron to postgres;
grant all on all sequences in schema cron to postgres;
grant execute on all functions in schema cron to postgres;

-- The image's legacy defaults expose what `postgres` creates in public to the API roles.
-- Our first migration revokes these, so both the legacy default and the 2026 default
-- (auto_expose_new_tables = false) end in the same explicit grants.
alter default privileges for role postgres in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant execute on functions to anon, authenticated, service_role;
\endif

-- ---------------------------------------------------------------------------------------
-- supabase_migrations (the CLI also creates it when missing)
-- ---------------------------------------------------------------------------------------
create schema if not exists supabase_migrations authorization postgres;

-- ---------------------------------------------------------------------------------------
-- auth
-- ---------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_auth_admin;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  recovery_token varchar(255),
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  phone text unique default null,
  phone_confirmed_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  banned_until timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);
create unique index if not exists users_email_partial_key on auth.users (email)
  where is_sso_user = false;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

-- The rest of GoTrue's schema that the local /auth/v1 (local/gateway/auth/) uses, with
-- GoTrue's table and column names (supabase/auth migrations): identities, sessions and
-- refresh tokens. Created (and granted) only when missing, so a database from before they
-- existed gains them at its next start; like auth.users they belong to supabase_auth_admin.
do $auth_tables$
begin
  if to_regtype('auth.aal_level') is null then
    create type auth.aal_level as enum ('aal1', 'aal2', 'aal3');
    alter type auth.aal_level owner to supabase_auth_admin;
  end if;
  if to_regclass('auth.identities') is null then
    create table auth.identities (
      provider_id text not null,
      user_id uuid not null references auth.users (id) on delete cascade,
      identity_data jsonb not null,
      provider text not null,
      last_sign_in_at timestamptz,
      created_at timestamptz,
      updated_at timestamptz,
      email text generated always as (lower(identity_data ->> 'email')) stored,
      id uuid not null default gen_random_uuid() primary key,
      constraint identities_provider_id_provider_unique unique (provider_id, provider)
    );
    create index identities_user_id_idx on auth.identities (user_id);
    comment on table auth.identities is 'Auth: Stores identities associated to a user.';
    alter table auth.identities owner to supabase_auth_admin;
    alter table auth.identities enable row level security;
    revoke all on auth.identities from anon, authenticated, service_role;
    grant all on auth.identities to postgres;
  end if;
  if to_regclass('auth.sessions') is null then
    create table auth.sessions (
      id uuid not null primary key,
      user_id uuid not null references auth.users (id) on delete cascade,
      created_at timestamptz,
      updated_at timestamptz,
      factor_id uuid,
      aal auth.aal_level,
      not_after timestamptz,
      refreshed_at timestamp,
      user_agent text,
      ip inet,
      tag text
    );
    create index sessions_user_id_idx on auth.sessions (user_id);
    comment on table auth.sessions is 'Auth: Stores session data associated to a user.';
    alter table auth.sessions owner to supabase_auth_admin;
    alter table auth.sessions enable row level security;
    revoke all on auth.sessions from anon, authenticated, service_role;
    grant all on auth.sessions to postgres;
  end if;
  if to_regclass('auth.refresh_tokens') is null then
    create table auth.refresh_tokens (
      instance_id uuid,
      id bigserial primary key,
      token varchar(255) unique,
      user_id varchar(255),
      revoked boolean,
      created_at timestamptz,
      updated_at timestamptz,
      parent varchar(255),
      session_id uuid references auth.sessions (id) on delete cascade
    );
    create index refresh_tokens_parent_idx on auth.refresh_tokens (parent);
    create index refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
    comment on table auth.refresh_tokens is 'Auth: Store of tokens used to refresh JWT tokens once they expire.';
    alter table auth.refresh_tokens owner to supabase_auth_admin;
    alter sequence auth.refresh_tokens_id_seq owner to supabase_auth_admin;
    alter table auth.refresh_tokens enable row level security;
    revoke all on auth.refresh_tokens from anon, authenticated, service_role;
    grant all on auth.refresh_tokens to postgres;
  end if;
  if to_regclass('auth.mfa_amr_claims') is null then
    -- How each session was authenticated: the access token's `amr` claim.
    create table auth.mfa_amr_claims (
      session_id uuid not null references auth.sessions (id) on delete cascade,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      authentication_method text not null,
      id uuid not null primary key,
      constraint mfa_amr_claims_session_id_authentication_method_pkey unique (session_id, authentication_method)
    );
    comment on table auth.mfa_amr_claims is 'auth: stores authenticator method reference claims for multi factor authentication';
    alter table auth.mfa_amr_claims owner to supabase_auth_admin;
    alter table auth.mfa_amr_claims enable row level security;
    revoke all on auth.mfa_amr_claims from anon, authenticated, service_role;
    grant all on auth.mfa_amr_claims to postgres;
  end if;
  -- GoTrue connects as supabase_auth_admin (a login role on Supabase), with auth first on
  -- its search path; the local /auth/v1 does the same.
  if not (select rolcanlogin from pg_roles where rolname = 'supabase_auth_admin') then
    alter role supabase_auth_admin with login password 'postgres';
    alter role supabase_auth_admin set search_path = auth;
    -- pgcrypto's crypt() hashes passwords locally (GoTrue hashes in Go).
    grant usage on schema extensions to supabase_auth_admin;
  end if;
end
$auth_tables$;

\if :platform_fresh
grant usage on schema auth to postgres, anon, authenticated, service_role;
alter table auth.users owner to supabase_auth_admin;
alter table auth.users enable row level security;
comment on table auth.users is 'Auth: stores user login data within a secure schema.';

-- API roles have no privileges on auth.users; postgres (migrations, seed) has all,
-- which is what lets a migration put a trigger on it.
revoke all on auth.users from anon, authenticated, service_role;
grant all on auth.users to postgres;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to postgres, anon, authenticated, service_role;
\endif

-- ---------------------------------------------------------------------------------------
-- realtime (Broadcast from Database)
-- ---------------------------------------------------------------------------------------
create schema if not exists realtime authorization supabase_realtime_admin;

create table if not exists realtime.messages (
  id uuid not null default gen_random_uuid(),
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  inserted_at timestamp not null default now(),
  updated_at timestamp not null default now(),
  primary key (id, inserted_at)
) partition by range (inserted_at);
-- The Realtime server creates daily partitions and drops them after 72 hours; locally one
-- default partition holds everything and realtime.prune_messages() trims it.
create table if not exists realtime.messages_default partition of realtime.messages default;
create index if not exists messages_inserted_at_topic_index
  on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;

create or replace function realtime.topic() returns text
language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text
$$;

create or replace function realtime.send(
  payload jsonb,
  event text,
  topic text,
  private boolean default true
) returns void
language plpgsql
as $$
begin
  begin
    perform set_config('realtime.topic', topic, true);
    insert into realtime.messages (payload, event, topic, private, extension)
    values (
      case when payload ? 'id' then payload
           else payload || jsonb_build_object('id', gen_random_uuid()) end,
      event, topic, private, 'broadcast'
    );
  exception when others then
    -- A failed broadcast must never abort the caller's transaction.
    raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

create or replace function realtime.broadcast_changes(
  topic_name text,
  event_name text,
  operation text,
  table_name text,
  table_schema text,
  new record,
  old record,
  level text default 'ROW'
) returns void
language plpgsql
as $$
declare
  row_data jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  row_data := jsonb_build_object(
    'old_record', case when old is null then null else to_jsonb(old) end,
    'record', case when new is null then null else to_jsonb(new) end,
    'operation', operation,
    'table', table_name,
    'schema', table_schema
  );
  perform realtime.send(row_data, event_name, topic_name, true);
end;
$$;

-- Local delivery only: the Realtime server streams committed rows of realtime.messages to
-- subscribers; the local gateway (local/gateway/realtime.ts) learns of them from this
-- notification, sent at commit (rolled-back rows, like authorization probes, send nothing).
create or replace function realtime._notify_local_gateway()
returns trigger
language plpgsql
as $$
begin
  perform pg_notify('realtime_local_broadcast', json_build_object('id', new.id, 'topic', new.topic)::text);
  return null;
end;
$$;
create or replace trigger messages_notify_local_gateway
  after insert on realtime.messages
  for each row execute function realtime._notify_local_gateway();

-- Local housekeeping only: drops broadcast rows older than the Realtime server keeps.
create or replace function realtime.prune_messages(keep interval default interval '72 hours')
returns bigint
language sql
as $$
  with gone as (
    delete from realtime.messages where inserted_at < now() - keep returning 1
  )
  select count(*) from gone
$$;

\if :platform_fresh
grant usage on schema realtime to postgres, anon, authenticated, service_role;
alter table realtime.messages owner to supabase_realtime_admin;
alter table realtime.messages_default owner to supabase_realtime_admin;
alter table realtime.messages enable row level security;
alter table realtime.messages_default enable row level security;
grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;

alter function realtime._notify_local_gateway() owner to supabase_realtime_admin;
revoke execute on function realtime._notify_local_gateway() from public;
alter function realtime.topic() owner to supabase_realtime_admin;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  owner to supabase_realtime_admin;
alter function realtime.prune_messages(interval) owner to supabase_realtime_admin;
revoke execute on function realtime.prune_messages(interval) from public;
grant execute on function realtime.topic(),
  realtime.send(jsonb, text, text, boolean),
  realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  to postgres, anon, authenticated, service_role;
\endif

-- ---------------------------------------------------------------------------------------
-- storage
-- ---------------------------------------------------------------------------------------
create schema if not exists storage authorization supabase_storage_admin;

create table if not exists storage.buckets (
  id text primary key,
  name text not null unique,
  owner uuid,
  public boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now()
);
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
-- Columns of the storage server's later migrations: the version of the object's bytes, the
-- owner as text (any JWT sub) and the uploader's own metadata.
alter table storage.objects add column if not exists version text;
alter table storage.objects add column if not exists owner_id text;
alter table storage.objects add column if not exists user_metadata jsonb;

create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end;
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end;
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end;
$$;

\if :platform_fresh
grant usage on schema storage to postgres, anon, authenticated, service_role;
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
grant all on storage.buckets, storage.objects to postgres, anon, authenticated, service_role;

alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
grant execute on function storage.foldername(text), storage.filename(text),
  storage.extension(text) to postgres, anon, authenticated, service_role;
\endif

-- ---------------------------------------------------------------------------------------
-- net (pg_net's SQL surface; the request worker is local/gateway/net_worker.ts)
-- ---------------------------------------------------------------------------------------
-- Stand-in for the pg_net extension (supabase/pg_net, not packaged by Debian). Same
-- objects and signatures as pg_net 0.x's docs (supabase.github.io/pg_net/api):
-- net.http_get / net.http_post enqueue a request in net.http_request_queue and return its
-- id; nothing is sent until the calling transaction commits; the outcome lands in
-- net._http_response (status_code, content_type, headers, content, timed_out, error_msg,
-- created). pg_net's background worker is a Postgres process; here the local gateway runs
-- the worker loop (woken at commit by a notification, and polling once a second), so
-- requests queued while the stack is down are sent when it starts. Not copied: pg_net's
-- TTL cleanup of old responses (net.ttl), batch_size and the http_delete/http_collect helpers.
do $net$
begin
  if to_regnamespace('net') is null then
    create schema net;
    create domain net.http_method as text check (value ilike 'get' or value ilike 'post' or value ilike 'delete');
    create unlogged table net.http_request_queue (
      id bigserial,
      method net.http_method not null,
      url text not null,
      headers jsonb,
      body bytea,
      timeout_milliseconds integer not null
    );
    create unlogged table net._http_response (
      id bigint,
      status_code integer,
      content_type text,
      headers jsonb,
      content text,
      timed_out boolean,
      error_msg text,
      created timestamptz not null default now()
    );
    create index _http_response_created_idx on net._http_response (created);
    grant usage on schema net to postgres, anon, authenticated, service_role;
    grant all on net.http_request_queue, net._http_response to postgres;
    grant usage on sequence net.http_request_queue_id_seq to postgres;
  end if;
end
$net$;

create or replace function net._urlencode_params(url text, params jsonb)
returns text
language sql
immutable
as $$
  select case when params is null or params = '{}'::jsonb then url
    else url || case when position('?' in url) > 0 then '&' else '?' end || (
      select string_agg(replace(replace(replace(replace(replace(replace(k, '%', '%25'), ' ', '%20'), '&', '%26'), '=', '%3D'), '+', '%2B'), '#', '%23')
                        || '=' ||
                        replace(replace(replace(replace(replace(replace(v, '%', '%25'), ' ', '%20'), '&', '%26'), '=', '%3D'), '+', '%2B'), '#', '%23'), '&')
      from jsonb_each_text(params) as p(k, v))
  end
$$;

-- Both enqueue one request; pg_net sends a POST body as JSON text in the database's encoding.
create or replace function net._enqueue(method text, url text, headers jsonb, body bytea, timeout_milliseconds integer)
returns bigint
language sql
volatile
security definer
set search_path = ''
as $$
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (method, url, headers, body, timeout_milliseconds)
  returning id
$$;

create or replace function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
)
returns bigint
language sql
volatile
security definer
set search_path = ''
as $$
  select net._enqueue('GET', net._urlencode_params(url, params), headers, null, timeout_milliseconds)
$$;

create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
)
returns bigint
language sql
volatile
security definer
set search_path = ''
as $$
  select net._enqueue('POST', net._urlencode_params(url, params), headers, convert_to(body::text, 'UTF8'), timeout_milliseconds)
$$;

-- Local delivery only: wakes the worker when the enqueuing transaction commits.
create or replace function net._notify_local_worker()
returns trigger
language plpgsql
as $$
begin
  perform pg_notify('pg_net_local_request', new.id::text);
  return null;
end;
$$;
create or replace trigger http_request_queue_notify_local_worker
  after insert on net.http_request_queue
  for each row execute function net._notify_local_worker();

do $net_grants$
begin
  -- Granted as Supabase grants pg_net's API (extensions.grant_pg_net_access: revoked from
  -- public, granted to the API roles and postgres); the helpers stay with their owner.
  revoke execute on function net._urlencode_params(text, jsonb), net._notify_local_worker(),
    net._enqueue(text, text, jsonb, bytea, integer),
    net.http_get(text, jsonb, jsonb, integer), net.http_post(text, jsonb, jsonb, jsonb, integer) from public;
  grant execute on function net.http_get(text, jsonb, jsonb, integer), net.http_post(text, jsonb, jsonb, jsonb, integer)
    to postgres, anon, authenticated, service_role;
end
$net_grants$;

-- ---------------------------------------------------------------------------------------
-- vault (Supabase Vault's SQL surface)
-- ---------------------------------------------------------------------------------------
-- Stand-in for the supabase_vault extension (supabase/vault): vault.secrets, the
-- vault.create_secret / vault.update_secret functions and the vault.decrypted_secrets view
-- with the same names and columns. Not copied: encryption at rest. Supabase Vault stores
-- `secret` encrypted (libsodium, with a key held outside the database); here `secret`
-- holds the plain text, so never put a real production secret in a local database.
do $vault$
begin
  if to_regnamespace('vault') is null then
    create schema vault;
    create table vault.secrets (
      id uuid primary key default gen_random_uuid(),
      name text,
      description text not null default '',
      secret text not null,
      key_id uuid,
      nonce bytea,
      created_at timestamptz not null default current_timestamp,
      updated_at timestamptz not null default current_timestamp
    );
    create unique index secrets_name_idx on vault.secrets (name) where name is not null;
    grant usage on schema vault to postgres with grant option;
    grant select, delete on vault.secrets to postgres with grant option;
  end if;
end
$vault$;

create or replace view vault.decrypted_secrets as
  select id, name, description, secret, secret as decrypted_secret, key_id, nonce, created_at, updated_at
  from vault.secrets;

create or replace function vault.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  secret_id uuid;
begin
  insert into vault.secrets (secret, name, description, key_id)
  values (new_secret, new_name, coalesce(new_description, ''), new_key_id)
  returning id into secret_id;
  return secret_id;
end;
$$;

create or replace function vault.update_secret(
  secret_id uuid,
  new_secret text default null,
  new_name text default null,
  new_description text default null,
  new_key_id uuid default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  update vault.secrets s
     set secret = coalesce(new_secret, s.secret),
         name = coalesce(new_name, s.name),
         description = coalesce(new_description, s.description),
         key_id = coalesce(new_key_id, s.key_id),
         updated_at = current_timestamp
   where s.id = secret_id;
end;
$$;

do $vault_grants$
begin
  revoke all on vault.decrypted_secrets from public;
  grant select on vault.decrypted_secrets to postgres with grant option;
  revoke execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid) from public;
  grant execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid)
    to postgres with grant option;
end
$vault_grants$;

-- ---------------------------------------------------------------------------------------
-- PostgREST's schema cache reload (the Supabase image's pgrst_ddl_watch / pgrst_drop_watch)
-- ---------------------------------------------------------------------------------------
-- After DDL that can change what PostgREST serves, the image's event triggers send
-- `NOTIFY pgrst, 'reload schema'`; PostgREST (here: local/gateway/postgrest/schema_cache.ts)
-- reloads its schema cache. A rolled-back transaction's notification is never delivered.
create or replace function extensions.pgrst_ddl_watch() returns event_trigger
language plpgsql
as $$
declare
  cmd record;
begin
  for cmd in select * from pg_event_trigger_ddl_commands() loop
    if cmd.command_tag in (
      'CREATE SCHEMA', 'ALTER SCHEMA', 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE',
      'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'CREATE VIEW', 'ALTER VIEW',
      'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW', 'CREATE FUNCTION', 'ALTER FUNCTION',
      'CREATE TRIGGER', 'CREATE TYPE', 'ALTER TYPE', 'CREATE RULE', 'COMMENT'
    ) and cmd.schema_name is distinct from 'pg_temp' then
      notify pgrst, 'reload schema';
    end if;
  end loop;
end;
$$;

create or replace function extensions.pgrst_drop_watch() returns event_trigger
language plpgsql
as $$
declare
  obj record;
begin
  for obj in select * from pg_event_trigger_dropped_objects() loop
    if obj.object_type in (
      'schema', 'table', 'foreign table', 'view', 'materialized view', 'function', 'trigger', 'type', 'rule'
    ) and obj.is_temporary is false then
      notify pgrst, 'reload schema';
    end if;
  end loop;
end;
$$;

do $pgrst$
begin
  if not exists (select from pg_event_trigger where evtname = 'pgrst_ddl_watch') then
    create event trigger pgrst_ddl_watch on ddl_command_end execute procedure extensions.pgrst_ddl_watch();
  end if;
  if not exists (select from pg_event_trigger where evtname = 'pgrst_drop_watch') then
    create event trigger pgrst_drop_watch on sql_drop execute procedure extensions.pgrst_drop_watch();
  end if;
end
$pgrst$;
