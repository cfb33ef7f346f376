-- Purpose: private.current_user_id() and private.idempotency_scope() in PL/pgSQL (issue 15,
-- the single-request path). Both were SQL functions with their own search_path (and
-- current_user_id security definer), which PostgreSQL cannot inline: every call planned its
-- query again, current_user_id's with its lookup of private.external_identities. Measured
-- on the dev database (1,000 calls in a DO block, as an authenticated user):
-- current_user_id 161 us a call, idempotency_scope (which calls it) 181 us; as PL/pgSQL,
-- with their plans cached per session, 10 us and 22 us. Every RLS policy calls
-- (select private.current_user_id()) once per query, and the write paths call both, so
-- this is paid by almost every request. Same answers: the rules are unchanged, and pgTAP 55
-- tests them for every kind of token.
-- Objects: functions private.current_user_id() and private.idempotency_scope() (bodies;
-- language). Destructive: none.

create or replace function private.current_user_id()
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
-- Security definer: it reads private.external_identities, which no API role may read.
declare
  claims jsonb := auth.jwt();
  sub text := coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''), claims ->> 'sub');
  iss text := claims ->> 'iss';
begin
  if iss is null or iss in ('supabase', 'supabase-demo') or iss ~ '/auth/v1$' then
    if sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      return sub::uuid;
    end if;
    return null;
  end if;
  return (select e.user_id from private.external_identities as e where e.issuer = iss and e.subject = sub);
end;
$$;

create or replace function private.idempotency_scope()
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  if private.caller_role() = 'authenticated' then
    return coalesce(private.current_user_id()::text, 'anonymous');
  end if;
  return 'service';
end;
$$;
