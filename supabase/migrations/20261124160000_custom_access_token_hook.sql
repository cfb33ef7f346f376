-- Purpose: Supabase Auth's custom access token hook (issue 13). Auth calls
-- public.custom_access_token_hook(event) as supabase_auth_admin before it signs an access
-- token (config.toml [auth.hook.custom_access_token]); the hook returns the claims with
-- `user_role` added: the user's Coach Ledger role from public.profiles (client, coach or
-- admin), so an app can shape its UI from the token without a round trip. The role in the
-- token is informational: every policy and RPC still reads public.profiles, so a role
-- changed after the token was issued takes effect at once, whatever the token says.
-- Objects: function public.custom_access_token_hook(jsonb); a SELECT policy on
-- public.profiles for supabase_auth_admin; grants to supabase_auth_admin (usage on public,
-- execute on the hook, select of profiles.id and profiles.role).

create function public.custom_access_token_hook(event jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  claims jsonb := event -> 'claims';
  profile_role text;
begin
  if jsonb_typeof(claims) is distinct from 'object' then
    -- Auth answers the sign-in with this status and message (hookserrors.Check).
    return jsonb_build_object('error', jsonb_build_object(
      'http_code', 500, 'message', 'custom_access_token_hook: the event carries no claims object'));
  end if;
  select p.role into profile_role
    from public.profiles as p
   where p.id = case when event ->> 'user_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                     then (event ->> 'user_id')::uuid end;
  -- JSON null when the user has no profile (never the case for a user made through Auth).
  return jsonb_build_object('claims', claims || jsonb_build_object('user_role', profile_role));
end;
$$;

comment on function public.custom_access_token_hook(jsonb) is
  'Supabase Auth custom access token hook (config.toml [auth.hook.custom_access_token]): returns {claims} with user_role set to the user''s profiles.role (JSON null without a profile); {error} when the event has no claims object. Executable by supabase_auth_admin only.';

revoke execute on function public.custom_access_token_hook(jsonb) from public, anon, authenticated, service_role;
grant usage on schema public to supabase_auth_admin;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
grant select (id, role) on table public.profiles to supabase_auth_admin;

create policy "Auth reads roles for the access token hook"
  on public.profiles
  as permissive
  for select
  to supabase_auth_admin
  using (true);
