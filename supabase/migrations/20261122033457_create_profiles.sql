-- Purpose: one profile per auth.users row (role, display name, time zone, preferences),
-- created by a trigger when a user signs up. RLS: a user reads and edits their own profile;
-- an assigned coach reads their client's (policy added with coach_assignments).
-- Objects: table public.profiles; functions private.is_valid_timezone,
-- private.handle_new_user; trigger on auth.users.
-- Destructive: none.

create or replace function private.is_valid_timezone(tz text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- An IANA name (Area/Location, or UTC) that this server's tz database knows. Checked by
  -- converting a timestamp, which uses the server's zone cache, rather than by scanning
  -- pg_timezone_names (a walk over the tz files on every call). Declared immutable so a
  -- CHECK constraint can use it: zone names change only with a tzdata upgrade.
  if tz is null or tz !~ '^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+)+)$' then
    return false;
  end if;
  perform timestamptz '2000-01-01 00:00:00+00' at time zone tz;
  return true;
exception when invalid_parameter_value then
  return false;
end;
$$;
comment on function private.is_valid_timezone(text) is
  'True when tz is an IANA time zone name (Area/Location or UTC) known to this server''s tz database.';
-- Evaluated by the profiles_timezone_valid constraint as the writing role.
grant execute on function private.is_valid_timezone(text) to authenticated, service_role;

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  role text not null default 'client',
  display_name text,
  timezone text not null default 'UTC',
  preferences jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint profiles_role_known check (role in ('client', 'coach', 'admin')),
  constraint profiles_display_name_length check (display_name is null or char_length(display_name) between 1 and 200),
  constraint profiles_timezone_valid check (private.is_valid_timezone(timezone)),
  constraint profiles_preferences_object check (jsonb_typeof(preferences) = 'object')
);
alter table public.profiles enable row level security;

comment on table public.profiles is
  'One per auth.users row: the person''s role (client, coach, admin), display name, IANA time zone and preferences.';
comment on column public.profiles.role is
  'client, coach or admin. Set from app_metadata.role at sign-up; only the service role changes it.';
comment on column public.profiles.display_name is
  'Name shown in apps; also used to redact names from interaction content for analysts.';
comment on column public.profiles.timezone is 'IANA time zone name, e.g. Europe/Berlin.';
comment on column public.profiles.preferences is 'App preferences, a JSON object.';

create trigger profiles_set_updated_at
  before update on public.profiles
  for each row execute function private.trigger_set_updated_at();

-- Users read and edit only some columns of their own row; role is not theirs to change.
grant select on public.profiles to authenticated;
grant update (display_name, timezone, preferences) on public.profiles to authenticated;
grant select, insert, update, delete on public.profiles to service_role;

create policy "Profiles are viewable by their owner"
  on public.profiles for select to authenticated
  using ((select auth.uid()) = id);

create policy "Profiles are editable by their owner"
  on public.profiles for update to authenticated
  using ((select auth.uid()) = id)
  with check ((select auth.uid()) = id);

-- Sign-up: create the profile. Security definer because it runs as whoever inserts into
-- auth.users (GoTrue's supabase_auth_admin), which has no rights on public.profiles.
create or replace function private.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  requested_role text := new.raw_app_meta_data ->> 'role';
  requested_timezone text := new.raw_user_meta_data ->> 'timezone';
begin
  insert into public.profiles (id, role, display_name, timezone, created_at, updated_at)
  values (
    new.id,
    case when requested_role in ('client', 'coach', 'admin') then requested_role else 'client' end,
    nullif(coalesce(new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'name'), ''),
    case when private.is_valid_timezone(requested_timezone) then requested_timezone else 'UTC' end,
    coalesce(new.created_at, now()),
    coalesce(new.created_at, now())
  )
  on conflict (id) do nothing;
  return new;
end;
$$;
comment on function private.handle_new_user() is
  'Trigger on auth.users: creates the profile: role from app_metadata.role (client by default), display name from user_metadata.full_name or name, time zone from user_metadata.timezone when valid (UTC otherwise).';
revoke execute on function private.handle_new_user() from public, anon, authenticated;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function private.handle_new_user();
