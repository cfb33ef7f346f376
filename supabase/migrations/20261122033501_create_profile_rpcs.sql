-- Purpose: the client API for profiles, callable with supabase.rpc(): read my profile,
-- list the profiles I may see, update my profile. Security invoker: RLS decides.
-- Objects: functions public.get_my_profile, public.list_profiles, public.update_my_profile.
-- Destructive: none.

create or replace function public.get_my_profile()
returns public.profiles
language sql
stable
security invoker
set search_path = ''
as $$
  select p.* from public.profiles p where p.id = (select auth.uid())
$$;
comment on function public.get_my_profile() is $$
The caller's own profile, or null when the caller has none.
Parameters: none. Returns: public.profiles.
Example: select public.get_my_profile();  -- supabase.rpc('get_my_profile')
$$;
grant execute on function public.get_my_profile() to authenticated, service_role;

create or replace function public.list_profiles()
returns setof public.profiles
language sql
stable
security invoker
set search_path = ''
as $$
  select p.* from public.profiles p order by p.created_at, p.id
$$;
comment on function public.list_profiles() is $$
Every profile the caller may see: their own and, for a coach, those of their active clients.
Parameters: none. Returns: setof public.profiles, oldest first.
Example: select * from public.list_profiles();  -- supabase.rpc('list_profiles')
$$;
grant execute on function public.list_profiles() to authenticated, service_role;

create or replace function public.update_my_profile(
  display_name text default null,
  timezone text default null,
  preferences jsonb default null
)
returns public.profiles
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  result public.profiles;
begin
  if (select auth.uid()) is null then
    raise exception 'Only a signed-in user can update their profile' using errcode = '42501';
  end if;
  if update_my_profile.timezone is not null and not private.is_valid_timezone(update_my_profile.timezone) then
    raise exception 'Unknown time zone: %', update_my_profile.timezone
      using errcode = '22023', hint = 'Use an IANA name such as Europe/Berlin.';
  end if;
  if update_my_profile.preferences is not null and jsonb_typeof(update_my_profile.preferences) <> 'object' then
    raise exception 'preferences must be a JSON object' using errcode = '22023';
  end if;
  update public.profiles p
     set display_name = coalesce(update_my_profile.display_name, p.display_name),
         timezone = coalesce(update_my_profile.timezone, p.timezone),
         preferences = coalesce(update_my_profile.preferences, p.preferences)
   where p.id = (select auth.uid())
  returning p.* into result;
  if result.id is null then
    raise exception 'The caller has no profile to update' using errcode = 'P0002';
  end if;
  return result;
end;
$$;
comment on function public.update_my_profile(text, text, jsonb) is $$
Updates the caller's display name, time zone and/or preferences (null leaves a field as it is;
preferences is replaced whole). Returns the updated profile.
Errors: 22023 for an unknown time zone or non-object preferences; 42501 when not signed in.
Example: select public.update_my_profile(timezone => 'Europe/Berlin');
  -- supabase.rpc('update_my_profile', { timezone: 'Europe/Berlin' })
$$;
grant execute on function public.update_my_profile(text, text, jsonb) to authenticated;
