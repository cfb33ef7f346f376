-- Custom database roles, applied by `supabase db push --include-roles` before migrations.
-- Coach Ledger's own roles (coach_analyst, coach_ingest) are added here by the issues that
-- introduce them; the API roles (anon, authenticated, service_role) come with Supabase.
select 1;
