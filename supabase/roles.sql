-- Custom database roles, applied by `supabase db push --include-roles` before migrations
-- (and again on every push, so it is idempotent). Their privileges are granted by the
-- migrations; the API roles (anon, authenticated, service_role) come with Supabase.
do $roles$
begin
  -- Write-only ingestion: a JWT whose role claim is coach_ingest may call
  -- public.log_coach_interaction and nothing else.
  if not exists (select from pg_roles where rolname = 'coach_ingest') then
    create role coach_ingest nologin noinherit;
  end if;
  -- Analysts and Grafana: the analytics schema only (redacted views, rollups, RPCs).
  if not exists (select from pg_roles where rolname = 'coach_analyst') then
    create role coach_analyst nologin noinherit;
  end if;
end
$roles$;
