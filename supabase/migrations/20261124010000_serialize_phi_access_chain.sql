-- Purpose: make the PHI access log's hash chain strictly serial and its verifier report
-- every break. Until now a row's id was taken before the chain lock and the trigger chained
-- to the highest committed id, so concurrent reads produced rows sharing one prev_hash and
-- the verifier (which stopped at the first break) reported damage no one caused.
-- Now each row gets a chain position (chain_seq) and its predecessor's hash from a one-row
-- chain head, read and advanced under that row's lock, which is held until commit: one
-- position per row, no gaps, no forks, whatever the isolation level (a writer racing under
-- REPEATABLE READ fails with 40001 rather than fork the chain). chain_seq is part of the
-- row hash. audit.phi_access_log_breaks() lists every break; verify_phi_access_log()
-- summarises them.
-- Objects: table audit.phi_access_chain_head; column audit.phi_access_log.chain_seq;
-- functions private._phi_access_row_hash, private.trigger_chain_phi_access,
-- audit.phi_access_log_breaks, audit.verify_phi_access_log (return type changed).
-- Destructive: existing log rows get a chain position in id order and their prev_hash /
-- row_hash are recomputed once, in this migration, with the guard trigger disabled: the
-- old chain could be broken by the concurrency bug without any tampering, and no checkpoint
-- anchored it, so re-chaining loses no evidence. No row's content changes.

create table audit.phi_access_chain_head (
  singleton boolean primary key default true,
  last_seq bigint not null,
  last_hash text not null,
  constraint phi_access_chain_head_singleton check (singleton),
  constraint phi_access_chain_head_seq_nonnegative check (last_seq >= 0),
  constraint phi_access_chain_head_hash_format check (last_hash ~ '^[0-9a-f]{64}$')
);
alter table audit.phi_access_chain_head enable row level security;
revoke all on audit.phi_access_chain_head from public, anon, authenticated, service_role;
-- Compliance (the service role) reads the head to verify the chain's end; nobody writes it
-- but the chain trigger.
grant select on audit.phi_access_chain_head to service_role;
create policy "The PHI chain head is readable by the service role"
  on audit.phi_access_chain_head for select to service_role
  using (true);
comment on table audit.phi_access_chain_head is
  'The position and hash of the last row of audit.phi_access_log. Read and advanced under its row lock by the chain trigger only.';

alter table audit.phi_access_log add column chain_seq bigint;
comment on column audit.phi_access_log.chain_seq is
  'Position in the hash chain: 1, 2, 3, ... with no gaps, in commit order of the writers.';

-- The row hash now covers chain_seq as well as every other column.
create or replace function private._phi_access_row_hash(prev_hash text, r audit.phi_access_log)
returns text
language sql
immutable
set search_path = ''
as $$
  select encode(extensions.digest(
    _phi_access_row_hash.prev_hash || '|' || coalesce(r.chain_seq::text, '') || '|' || r.id || '|' ||
    to_char(r.accessed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '|' ||
    coalesce(r.actor_id::text, '') || '|' || r.actor_role || '|' || r.subject_user_id || '|' ||
    r.resource || '|' || r.row_count || '|' || r.purpose || '|' || coalesce(r.request_id, ''),
    'sha256'), 'hex')
$$;
comment on function private._phi_access_row_hash(text, audit.phi_access_log) is
  'SHA-256 (hex) of prev_hash and every field of a phi_access_log row (chain_seq, id, accessed_at in UTC, actor, subject, resource, row_count, purpose, request_id), separated by |.';

-- Re-chain the rows written so far, in id order.
alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete;
do $rechain$
declare
  r audit.phi_access_log;
  prev text := repeat('0', 64);
  n bigint := 0;
begin
  for r in select * from audit.phi_access_log order by id for update loop
    n := n + 1;
    r.chain_seq := n;
    r.prev_hash := prev;
    r.row_hash := private._phi_access_row_hash(prev, r);
    update audit.phi_access_log l
       set chain_seq = r.chain_seq, prev_hash = r.prev_hash, row_hash = r.row_hash
     where l.id = r.id;
    prev := r.row_hash;
  end loop;
  insert into audit.phi_access_chain_head (last_seq, last_hash) values (n, prev);
end
$rechain$;
alter table audit.phi_access_log enable trigger phi_access_log_refuse_update_delete;

alter table audit.phi_access_log alter column chain_seq set not null;
alter table audit.phi_access_log add constraint phi_access_log_chain_seq_key unique (chain_seq);

create or replace function private.trigger_chain_phi_access()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  head audit.phi_access_chain_head;
begin
  -- The head row's lock is held until this transaction ends: writers take chain positions
  -- one at a time, each chained to the row committed just before it.
  select * into head from audit.phi_access_chain_head h where h.singleton for update;
  if not found then
    raise exception 'audit.phi_access_chain_head is missing its row' using errcode = '55000';
  end if;
  new.chain_seq := head.last_seq + 1;
  new.prev_hash := head.last_hash;
  new.row_hash := private._phi_access_row_hash(new.prev_hash, new);
  update audit.phi_access_chain_head h
     set last_seq = new.chain_seq, last_hash = new.row_hash
   where h.singleton;
  return new;
end;
$$;
comment on function private.trigger_chain_phi_access() is
  'Trigger on audit.phi_access_log: takes the next chain position and the previous hash from audit.phi_access_chain_head under its row lock, sets chain_seq, prev_hash and row_hash, and advances the head.';

-- Every break in the chain, one row per problem.
create or replace function audit.phi_access_log_breaks()
returns table (chain_seq bigint, id bigint, problem text)
language sql
stable
set search_path = ''
as $$
  with ordered as (
    select l as r,
           lag(l.row_hash) over w as expected_prev,
           lag(l.chain_seq) over w as previous_seq
    from audit.phi_access_log l
    window w as (order by l.chain_seq)
  ),
  problems as (
    select (o.r).chain_seq, (o.r).id, p.problem, p.ord
    from ordered o
    cross join lateral (values
      (1, case when (o.r).chain_seq <> coalesce(o.previous_seq, 0) + 1
               then format('chain positions %s to %s are missing', coalesce(o.previous_seq, 0) + 1, (o.r).chain_seq - 1) end),
      (2, case when (o.r).prev_hash <> coalesce(o.expected_prev, repeat('0', 64))
               then 'prev_hash is not the previous row''s row_hash' end),
      (3, case when (o.r).row_hash <> private._phi_access_row_hash((o.r).prev_hash, o.r)
               then 'row_hash does not match the row''s fields' end)
    ) p(ord, problem)
    where p.problem is not null
    union all
    -- Rows removed from the end of the chain: the head knows a later position.
    select h.last_seq, null::bigint,
           format('chain positions %s to %s are missing at the end',
                  coalesce((select max(l.chain_seq) from audit.phi_access_log l), 0) + 1, h.last_seq), 4
    from audit.phi_access_chain_head h
    where h.last_seq > coalesce((select max(l.chain_seq) from audit.phi_access_log l), 0)
  )
  select p.chain_seq, p.id, p.problem from problems p order by p.chain_seq, p.ord
$$;
comment on function audit.phi_access_log_breaks() is $$
Every break in the PHI access log's hash chain, in chain order, one row per problem: missing chain
positions (deleted rows), a prev_hash that is not the previous row's row_hash (rows removed, inserted
or reordered), a row_hash that does not match the row's fields (an edited row). Empty when intact.
Example: select * from audit.phi_access_log_breaks();
$$;
revoke execute on function audit.phi_access_log_breaks() from public, anon, authenticated;
grant execute on function audit.phi_access_log_breaks() to service_role;

drop function audit.verify_phi_access_log();
create function audit.verify_phi_access_log()
returns table (checked bigint, breaks bigint, first_broken_id bigint, broken_ids bigint[], head_seq bigint, head_hash text)
language sql
stable
set search_path = ''
as $$
  select (select count(*) from audit.phi_access_log),
         (select count(*) from audit.phi_access_log_breaks()),
         (select b.id from audit.phi_access_log_breaks() b where b.id is not null order by b.chain_seq limit 1),
         coalesce((select array_agg(distinct b.id order by b.id) from audit.phi_access_log_breaks() b where b.id is not null), '{}'),
         (select l.chain_seq from audit.phi_access_log l order by l.chain_seq desc limit 1),
         (select l.row_hash from audit.phi_access_log l order by l.chain_seq desc limit 1)
$$;
comment on function audit.verify_phi_access_log() is $$
Verifies the hash chain of audit.phi_access_log: rows checked, the number of problems found, the first
broken row's id (null when intact), the ids of every broken row, and the chain head (position and hash)
to compare with an exported checkpoint. audit.phi_access_log_breaks() lists the problems.
Example: select * from audit.verify_phi_access_log();
$$;
revoke execute on function audit.verify_phi_access_log() from public, anon, authenticated;
grant execute on function audit.verify_phi_access_log() to service_role;
