-- Purpose: name the trace id apart from the idempotency key (issue 10). Until now the PHI
-- access log kept the request's trace id (x-request-id) in a column called request_id,
-- while everywhere else request_id is the idempotency key of a write. New rows keep it in
-- trace_id; rows already written keep their request_id (the log is append-only, and signed
-- checkpoints may anchor their hashes).
--  * audit.phi_access_log.trace_id, held to the same format as request_id (1 to 128 of
--    A-Z a-z 0-9 . _ : -), by a NOT VALID check like its sibling's.
--  * Version 3 of the row hash: version 2's fields plus trace_id, under its own tag, from
--    audit.phi_access_chain_head.hash_v3_from_seq on (the next position when this
--    migration runs). Earlier rows keep version 2 or 1. supabase/functions/_shared/
--    audit_chain.ts computes the same.
--  * audit.record_phi_access(subject_user_id, resource, row_count, purpose, trace_id): the
--    last argument is renamed (it always was the trace id; no read path passes it) and the
--    id goes to trace_id. Dropped and created again, since an argument cannot be renamed in
--    place; its grants are those it had (execute revoked from public, anon, authenticated).
-- Objects: column audit.phi_access_log.trace_id and constraint phi_access_log_trace_id_format;
-- column audit.phi_access_chain_head.hash_v3_from_seq; functions
-- private._phi_access_row_hash_v3, private._phi_access_row_hash (body),
-- audit.record_phi_access; comments on the tracked_skill_id_hash columns of
-- coach_interactions and interaction_events. Destructive: none.

alter table audit.phi_access_log add column trace_id text;
comment on column audit.phi_access_log.trace_id is
  'The trace id of the request that read (its x-request-id), when well-formed. Rows before this column keep it in request_id.';
comment on column audit.phi_access_log.request_id is
  'Rows written before trace_id existed: the trace id of the request that read (despite the name, not an idempotency key). Null on newer rows.';
alter table audit.phi_access_log
  add constraint phi_access_log_trace_id_format
  check (trace_id is null or trace_id ~ '^[A-Za-z0-9._:-]{1,128}$') not valid;

alter table audit.phi_access_chain_head add column hash_v3_from_seq bigint;
update audit.phi_access_chain_head set hash_v3_from_seq = last_seq + 1;
alter table audit.phi_access_chain_head alter column hash_v3_from_seq set not null;
comment on column audit.phi_access_chain_head.hash_v3_from_seq is
  'The first chain position hashed with version 3 of the row hash (version 2 plus trace_id).';

create or replace function private._phi_access_row_hash_v3(prev_hash text, r audit.phi_access_log)
returns text
language sql
immutable
set search_path = ''
as $$
  select encode(extensions.digest(
    'coach-ledger/phi-access-row/v3' || string_agg(
      case when f.value is null then '~' else octet_length(f.value) || ':' || f.value end, '' order by f.ord),
    'sha256'), 'hex')
  from unnest(array[
    _phi_access_row_hash_v3.prev_hash, r.chain_seq::text, r.id::text,
    to_char(r.accessed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
    r.actor_id::text, r.actor_role, r.subject_user_id::text, r.resource, r.row_count::text,
    r.purpose, r.request_id, r.trace_id
  ]) with ordinality as f(value, ord)
$$;
comment on function private._phi_access_row_hash_v3(text, audit.phi_access_log) is
  'Version 3 of the PHI access row hash: SHA-256 (hex) of ''coach-ledger/phi-access-row/v3'' and, in order, prev_hash, chain_seq, id, accessed_at (UTC, microseconds), actor_id, actor_role, subject_user_id, resource, row_count, purpose, request_id, trace_id, each as <bytes>:<text>, NULL as ~.';
revoke execute on function private._phi_access_row_hash_v3(text, audit.phi_access_log) from public, anon, authenticated;
-- The service role runs the verifier (audit.phi_access_log_breaks), which hashes every row.
grant execute on function private._phi_access_row_hash_v3(text, audit.phi_access_log) to service_role;

create or replace function private._phi_access_row_hash(prev_hash text, r audit.phi_access_log)
returns text
language sql
stable
set search_path = ''
as $$
  select case
    when r.chain_seq >= coalesce((select h.hash_v3_from_seq from audit.phi_access_chain_head h where h.singleton), 1)
      then private._phi_access_row_hash_v3(_phi_access_row_hash.prev_hash, r)
    when r.chain_seq >= coalesce((select h.hash_v2_from_seq from audit.phi_access_chain_head h where h.singleton), 1)
      then private._phi_access_row_hash_v2(_phi_access_row_hash.prev_hash, r)
    else encode(extensions.digest(
      _phi_access_row_hash.prev_hash || '|' || coalesce(r.chain_seq::text, '') || '|' || r.id || '|' ||
      to_char(r.accessed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '|' ||
      coalesce(r.actor_id::text, '') || '|' || r.actor_role || '|' || r.subject_user_id || '|' ||
      r.resource || '|' || r.row_count || '|' || r.purpose || '|' || coalesce(r.request_id, ''),
      'sha256'), 'hex')
  end
$$;
comment on function private._phi_access_row_hash(text, audit.phi_access_log) is
  'The hash of a phi_access_log row chained to prev_hash: version 3 (with trace_id) from audit.phi_access_chain_head.hash_v3_from_seq on, version 2 (length-prefixed fields) from hash_v2_from_seq, version 1 (fields joined by |) before.';

drop function audit.record_phi_access(uuid, text, integer, text, text);
create function audit.record_phi_access(
  subject_user_id uuid,
  resource text,
  row_count integer,
  purpose text,
  trace_id text default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_id bigint;
  given text := coalesce(record_phi_access.trace_id, nullif(current_setting('request.headers', true), '')::jsonb ->> 'x-request-id');
begin
  insert into audit.phi_access_log (actor_id, actor_role, subject_user_id, resource, row_count, purpose, trace_id)
  values (
    auth.uid(),
    private.caller_role(),
    record_phi_access.subject_user_id, record_phi_access.resource, record_phi_access.row_count,
    record_phi_access.purpose,
    case when given ~ '^[A-Za-z0-9._:-]{1,128}$' then given end
  )
  returning id into new_id;
  return new_id;
end;
$$;
comment on function audit.record_phi_access(uuid, text, integer, text, text) is
  'Appends a PHI access row for the current caller (auth.uid() and role). Called by the read paths. The trace id (the argument, else the x-request-id header) is kept in trace_id when it is 1 to 128 of A-Z a-z 0-9 . _ : -, else stored as null.';
revoke execute on function audit.record_phi_access(uuid, text, integer, text, text) from public, anon, authenticated;

-- The functions now store a keyed hash of tracked skill ids (supabase/functions/_shared/
-- tracked_skill.ts); rows written before keep their bare SHA-256 digest.
comment on column public.coach_interactions.tracked_skill_id_hash is
  'HMAC-SHA-256 (hex) of the tracked skill id under TRACKED_SKILL_HASH_KEY (rows logged before issue 10: its bare SHA-256); the raw id is never stored.';
comment on column public.interaction_events.tracked_skill_id_hash is
  'HMAC-SHA-256 (hex) of the tracked skill id under TRACKED_SKILL_HASH_KEY; the raw id is never stored.';
