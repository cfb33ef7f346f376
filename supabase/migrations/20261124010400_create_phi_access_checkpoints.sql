-- Purpose: anchor the PHI access log's hash chain outside its owner's reach. The table
-- owner (postgres) can disable the guard triggers, delete or edit rows and recompute the
-- chain, and the in-database verifier cannot tell. A checkpoint is the chain head (position
-- and hash) signed by the audit-checkpoint edge function with a key that lives only in the
-- functions' environment (AUDIT_SIGNING_KEY), never in the database, and exported to an
-- append-only sink (AUDIT_CHECKPOINT_SINK_URL) as well as recorded here. A verifier that
-- holds the public key and the exported checkpoints (npm run audit:verify) recomputes the
-- chain from the rows and finds any history rewritten before the last checkpoint.
-- This table is a convenience copy: a forged or deleted row here cannot pass the
-- verifier, whose checkpoints come from the sink.
-- Objects: table audit.phi_access_checkpoints. Destructive: none.

create table audit.phi_access_checkpoints (
  id bigint generated always as identity primary key,
  chain_seq bigint not null,
  head_hash text not null,
  signed_at timestamptz not null,
  key_id text not null,
  jws text not null,
  sink text,
  created_at timestamptz not null default now(),
  constraint phi_access_checkpoints_chain_seq_nonnegative check (chain_seq >= 0),
  constraint phi_access_checkpoints_head_hash_format check (head_hash ~ '^[0-9a-f]{64}$'),
  constraint phi_access_checkpoints_key_id_length check (char_length(key_id) between 1 and 200),
  constraint phi_access_checkpoints_jws_length check (char_length(jws) between 1 and 8192),
  constraint phi_access_checkpoints_sink_length check (sink is null or char_length(sink) between 1 and 2000)
);
alter table audit.phi_access_checkpoints enable row level security;
comment on table audit.phi_access_checkpoints is
  'Signed checkpoints of the PHI access log''s chain head (position, hash), as created by the audit-checkpoint function and exported to its sink. Append-only.';
comment on column audit.phi_access_checkpoints.jws is
  'The checkpoint as a compact JWS (EdDSA) over {seq, hash, iat, iss}; verifiable with the public key only.';
comment on column audit.phi_access_checkpoints.sink is 'Where the checkpoint was exported (the sink URL), or null when no sink is configured.';

create trigger phi_access_checkpoints_refuse_update_delete
  before update or delete on audit.phi_access_checkpoints
  for each row execute function private.trigger_refuse_change();
create trigger phi_access_checkpoints_refuse_truncate
  before truncate on audit.phi_access_checkpoints
  for each statement execute function private.trigger_refuse_change();

grant select, insert on audit.phi_access_checkpoints to service_role;
create policy "PHI access checkpoints are readable by the service role"
  on audit.phi_access_checkpoints for select to service_role
  using (true);
create policy "PHI access checkpoints are recorded by the service role"
  on audit.phi_access_checkpoints for insert to service_role
  with check (true);
