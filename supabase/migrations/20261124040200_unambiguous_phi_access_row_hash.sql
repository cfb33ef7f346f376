-- Purpose: two ways the PHI access log could be changed without its hash chain noticing.
--  * The row hash joined the fields with '|' and wrote NULL as '': text moved between
--    purpose and request_id across a '|' (purpose 'a|b', request_id 'c' became 'a' and
--    'b|c'), or a NULL request_id turned into '', hashed the same. Rows from
--    audit.phi_access_chain_head.hash_v2_from_seq on are hashed field by field with each
--    field's length in bytes before it and NULL written as '~' (version 2), which no two
--    different rows share. Rows before that position keep their version 1 hash: re-hashing
--    them would rewrite history that signed checkpoints may already anchor.
--  * audit.record_phi_access stored the x-request-id header as the client sent it (any
--    length, any characters). It now keeps a request id only when it is 1 to 128 of
--    A-Z a-z 0-9 . _ : - (the rule the gateway and the functions use to echo one), else
--    stores null, and a NOT VALID CHECK constraint holds new rows to that rule.
--  * audit.verify_phi_access_log() walks the chain once instead of three times.
-- Objects: column audit.phi_access_chain_head.hash_v2_from_seq; functions
-- private._phi_access_row_hash (body; stable: it reads the head), private.
-- _phi_access_row_hash_v2, audit.record_phi_access and audit.verify_phi_access_log
-- (bodies); constraint phi_access_log_request_id_format. Destructive: none.

alter table audit.phi_access_chain_head add column hash_v2_from_seq bigint;
update audit.phi_access_chain_head set hash_v2_from_seq = last_seq + 1;
alter table audit.phi_access_chain_head alter column hash_v2_from_seq set not null;
comment on column audit.phi_access_chain_head.hash_v2_from_seq is
  'The first chain position hashed with version 2 of the row hash (length-prefixed fields); earlier rows keep version 1.';

-- Version 2: sha256 over a tag and every field, each written as its length in bytes, ':'
-- and its text, NULL as '~'. supabase/functions/_shared/audit_chain.ts computes the same.
create or replace function private._phi_access_row_hash_v2(prev_hash text, r audit.phi_access_log)
returns text
language sql
immutable
set search_path = ''
as $$
  select encode(extensions.digest(
    'coach-ledger/phi-access-row/v2' || string_agg(
      case when f.value is null then '~' else octet_length(f.value) || ':' || f.value end, '' order by f.ord),
    'sha256'), 'hex')
  from unnest(array[
    _phi_access_row_hash_v2.prev_hash, r.chain_seq::text, r.id::text,
    to_char(r.accessed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
    r.actor_id::text, r.actor_role, r.subject_user_id::text, r.resource, r.row_count::text,
    r.purpose, r.request_id
  ]) with ordinality as f(value, ord)
$$;
comment on function private._phi_access_row_hash_v2(text, audit.phi_access_log) is
  'Version 2 of the PHI access row hash: SHA-256 (hex) of ''coach-ledger/phi-access-row/v2'' and, in order, prev_hash, chain_seq, id, accessed_at (UTC, microseconds), actor_id, actor_role, subject_user_id, resource, row_count, purpose, request_id, each as <bytes>:<text>, NULL as ~.';
revoke execute on function private._phi_access_row_hash_v2(text, audit.phi_access_log) from public, anon, authenticated;
-- The service role runs the verifier (audit.phi_access_log_breaks), which hashes every row.
grant execute on function private._phi_access_row_hash_v2(text, audit.phi_access_log) to service_role;

-- The row hash of the version that applies at the row's chain position.
create or replace function private._phi_access_row_hash(prev_hash text, r audit.phi_access_log)
returns text
language sql
stable
set search_path = ''
as $$
  select case
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
  'The hash of a phi_access_log row chained to prev_hash: version 2 (private._phi_access_row_hash_v2) from audit.phi_access_chain_head.hash_v2_from_seq on, version 1 (fields joined by |) before it.';

alter table audit.phi_access_log
  add constraint phi_access_log_request_id_format
  check (request_id is null or request_id ~ '^[A-Za-z0-9._:-]{1,128}$') not valid;

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
  given text := coalesce(record_phi_access.request_id, nullif(current_setting('request.headers', true), '')::jsonb ->> 'x-request-id');
begin
  insert into audit.phi_access_log (actor_id, actor_role, subject_user_id, resource, row_count, purpose, request_id)
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
  'Appends a PHI access row for the current caller (auth.uid() and role). Called by the read paths. The request id (the argument, else the x-request-id header) is kept when it is 1 to 128 of A-Z a-z 0-9 . _ : -, else stored as null.';

create or replace function audit.verify_phi_access_log()
returns table (checked bigint, breaks bigint, first_broken_id bigint, broken_ids bigint[], head_seq bigint, head_hash text)
language sql
stable
set search_path = ''
as $$
  with b as materialized (select * from audit.phi_access_log_breaks())
  select (select count(*) from audit.phi_access_log),
         (select count(*) from b),
         (select b.id from b where b.id is not null order by b.chain_seq limit 1),
         coalesce((select array_agg(distinct b.id order by b.id) from b where b.id is not null), '{}'),
         (select l.chain_seq from audit.phi_access_log l order by l.chain_seq desc limit 1),
         (select l.row_hash from audit.phi_access_log l order by l.chain_seq desc limit 1)
$$;
