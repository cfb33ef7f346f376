-- Purpose: the HIPAA trail of reads of someone's interactions through the API: when, who
-- (id and role), whose data, what (resource, row count), why (purpose), which request.
-- Append-only for every role (update, delete, truncate refused) and tamper-evident: each
-- row carries a SHA-256 chained to the previous row's; audit.verify_phi_access_log()
-- recomputes the chain. Readable by the service role (compliance) only.
-- Objects: schema audit; table audit.phi_access_log; functions audit.record_phi_access,
-- audit.verify_phi_access_log, private._phi_access_row_hash, private.trigger_chain_phi_access.
-- Destructive: none.

create schema if not exists audit;
comment on schema audit is 'HIPAA audit trail. Not exposed through the API; readable by the service role.';
revoke all on schema audit from public;
grant usage on schema audit to service_role;

create table audit.phi_access_log (
  id bigint generated always as identity primary key,
  accessed_at timestamptz not null default now(),
  actor_id uuid,
  actor_role text not null,
  subject_user_id uuid not null,
  resource text not null,
  row_count integer not null,
  purpose text not null,
  request_id text,
  prev_hash text not null,
  row_hash text not null,
  constraint phi_access_log_row_count_nonnegative check (row_count >= 0),
  constraint phi_access_log_resource_length check (char_length(resource) between 1 and 200),
  constraint phi_access_log_purpose_length check (char_length(purpose) between 1 and 200),
  constraint phi_access_log_hashes_format check (prev_hash ~ '^[0-9a-f]{64}$' and row_hash ~ '^[0-9a-f]{64}$')
);
alter table audit.phi_access_log enable row level security;
comment on table audit.phi_access_log is
  'Every read of someone''s interactions through the API. Append-only; row_hash = sha256(prev_hash || row fields), chained in id order.';


-- The hash of a row's content chained to the previous hash.
create or replace function private._phi_access_row_hash(prev_hash text, r audit.phi_access_log)
returns text
language sql
immutable
set search_path = ''
as $$
  select encode(extensions.digest(
    _phi_access_row_hash.prev_hash || '|' || r.id || '|' ||
    to_char(r.accessed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '|' ||
    coalesce(r.actor_id::text, '') || '|' || r.actor_role || '|' || r.subject_user_id || '|' ||
    r.resource || '|' || r.row_count || '|' || r.purpose || '|' || coalesce(r.request_id, ''),
    'sha256'), 'hex')
$$;
comment on function private._phi_access_row_hash(text, audit.phi_access_log) is
  'SHA-256 (hex) of a phi_access_log row''s fields, chained to prev_hash.';
revoke execute on function private._phi_access_row_hash(text, audit.phi_access_log) from public, anon, authenticated;

create or replace function private.trigger_chain_phi_access()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- One writer at a time, so the chain follows id order (the lock ends with the transaction).
  perform pg_advisory_xact_lock(hashtextextended('audit.phi_access_log', 0));
  new.prev_hash := coalesce(
    (select l.row_hash from audit.phi_access_log l order by l.id desc limit 1),
    repeat('0', 64));
  new.row_hash := private._phi_access_row_hash(new.prev_hash, new);
  return new;
end;
$$;
comment on function private.trigger_chain_phi_access() is
  'Trigger on audit.phi_access_log: sets prev_hash to the last row''s hash and row_hash over the new row.';
revoke execute on function private.trigger_chain_phi_access() from public, anon, authenticated;

create trigger phi_access_log_chain
  before insert on audit.phi_access_log
  for each row execute function private.trigger_chain_phi_access();
create trigger phi_access_log_refuse_update_delete
  before update or delete on audit.phi_access_log
  for each row execute function private.trigger_refuse_change();
create trigger phi_access_log_refuse_truncate
  before truncate on audit.phi_access_log
  for each statement execute function private.trigger_refuse_change();

-- Compliance reads the log; nobody writes it except audit.record_phi_access.
grant select on audit.phi_access_log to service_role;
create policy "The PHI access log is readable by the service role"
  on audit.phi_access_log for select to service_role
  using (true);

-- Records a read. Security definer: API roles have no INSERT on the log.
create or replace function audit.record_phi_access(
  subject_user_id uuid,
  resource text,
  row_count integer,
  purpose text,
  request_id text default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_id bigint;
begin
  insert into audit.phi_access_log (actor_id, actor_role, subject_user_id, resource, row_count, purpose, request_id)
  values (
    auth.uid(),
    private.caller_role(),
    record_phi_access.subject_user_id, record_phi_access.resource, record_phi_access.row_count,
    record_phi_access.purpose,
    coalesce(record_phi_access.request_id, nullif(current_setting('request.headers', true), '')::jsonb ->> 'x-request-id')
  )
  returning id into new_id;
  return new_id;
end;
$$;
comment on function audit.record_phi_access(uuid, text, integer, text, text) is
  'Appends a PHI access row for the current caller (auth.uid() and role). Called by the read paths.';
revoke execute on function audit.record_phi_access(uuid, text, integer, text, text) from public, anon, authenticated;

-- Recomputes the chain: how many rows were checked and the first whose hash does not match.
create or replace function audit.verify_phi_access_log()
returns table (checked bigint, first_broken_id bigint)
language plpgsql
stable
set search_path = ''
as $$
declare
  r audit.phi_access_log;
  expected_prev text := repeat('0', 64);
  n bigint := 0;
begin
  for r in select * from audit.phi_access_log order by id loop
    n := n + 1;
    if r.prev_hash <> expected_prev or r.row_hash <> private._phi_access_row_hash(r.prev_hash, r) then
      checked := n;
      first_broken_id := r.id;
      return next;
      return;
    end if;
    expected_prev := r.row_hash;
  end loop;
  checked := n;
  first_broken_id := null;
  return next;
end;
$$;
comment on function audit.verify_phi_access_log() is
  'Verifies the hash chain of audit.phi_access_log: returns rows checked and the first broken id (null when intact).';
revoke execute on function audit.verify_phi_access_log() from public, anon, authenticated;
grant execute on function audit.verify_phi_access_log() to service_role;
grant execute on function private._phi_access_row_hash(text, audit.phi_access_log) to service_role;
