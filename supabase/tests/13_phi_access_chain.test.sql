-- The PHI access log's hash chain: one position per row, every column covered by the row
-- hash (each one tampered in turn), every break reported, deletions found in the middle and
-- at the end. Concurrency is tested end to end in tests/e2e/audit_chain.test.ts.
begin;
select plan(35);

select tests.create_supabase_user('chain-subject@example.com');

-- As the read paths do (they are security definer functions owned by postgres).
select audit.record_phi_access(tests.get_user_id('chain-subject@example.com'), 'coach_interactions', n, 'chain test ' || n, 'chain-' || n)
from generate_series(1, 6) n;

create temporary table chain_rows on commit drop as
select chain_seq, id from audit.phi_access_log where purpose like 'chain test %' order by chain_seq;

select is((select max(chain_seq) - min(chain_seq) + 1 from chain_rows), 6::bigint,
  'Six rows written in one transaction take six consecutive chain positions');
select is((select last_seq from audit.phi_access_chain_head), (select max(chain_seq) from audit.phi_access_log),
  'The chain head is at the last row');
select is((select last_hash from audit.phi_access_chain_head),
  (select row_hash from audit.phi_access_log order by chain_seq desc limit 1),
  'The chain head holds the last row''s hash');
select is((select breaks from audit.verify_phi_access_log()), 0::bigint, 'The intact chain has no breaks');
select is_empty($$ select * from audit.phi_access_log_breaks() $$, 'phi_access_log_breaks lists nothing for an intact chain');

-- Tampering, as the table owner could with the guard trigger disabled. Each change runs in a
-- subtransaction that is rolled back after the breaks are read, so each case starts intact.
alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete;

create function pg_temp.breaks_after(change text) returns text[]
language plpgsql as $$
declare
  found text[];
begin
  begin
    execute change;
    select coalesce(array_agg(b.problem || ' @' || (b.chain_seq - (select min(chain_seq) from chain_rows) + 1) order by b.chain_seq, b.problem), '{}')
      into found from audit.phi_access_log_breaks() b;
    raise exception 'roll back' using errcode = 'P0004';
  exception when sqlstate 'P0004' then
    return found;
  end;
end;
$$;

-- The third test row (@3) is changed; its hash no longer matches its fields.
create function pg_temp.tamper(col text, val text) returns text[]
language sql as $$
  select pg_temp.breaks_after(format(
    'update audit.phi_access_log set %I = %s where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 2 limit 1)',
    col, val))
$$;

select is(pg_temp.tamper('accessed_at', 'accessed_at + interval ''1 microsecond'''),
  array['row_hash does not match the row''s fields @3'], 'Changing accessed_at by a microsecond is found');
select is(pg_temp.tamper('actor_id', 'gen_random_uuid()'),
  array['row_hash does not match the row''s fields @3'], 'Changing actor_id is found');
select is(pg_temp.tamper('actor_role', '''authenticated'''),
  array['row_hash does not match the row''s fields @3'], 'Changing actor_role is found');
select is(pg_temp.tamper('subject_user_id', 'gen_random_uuid()'),
  array['row_hash does not match the row''s fields @3'], 'Changing subject_user_id is found');
select is(pg_temp.tamper('resource', '''coach_interactions:redacted'''),
  array['row_hash does not match the row''s fields @3'], 'Changing resource is found');
select is(pg_temp.tamper('row_count', 'row_count + 1'),
  array['row_hash does not match the row''s fields @3'], 'Changing row_count is found');
select is(pg_temp.tamper('purpose', '''routine'''),
  array['row_hash does not match the row''s fields @3'], 'Changing purpose is found');
select is(pg_temp.tamper('request_id', '''chain-x'''),
  array['row_hash does not match the row''s fields @3'], 'Setting request_id is found');
select is(pg_temp.tamper('trace_id', 'null'),
  array['row_hash does not match the row''s fields @3'], 'Clearing trace_id is found');
-- id is generated always: move the row to another id by deleting and re-inserting it as is.
select is(pg_temp.breaks_after($$
  alter table audit.phi_access_log disable trigger phi_access_log_chain;
  with gone as (
    delete from audit.phi_access_log where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 2 limit 1)
    returning *)
  insert into audit.phi_access_log (id, accessed_at, actor_id, actor_role, subject_user_id, resource, row_count, purpose,
                                    request_id, trace_id, prev_hash, row_hash, chain_seq)
  overriding system value
  select id + 1000000, accessed_at, actor_id, actor_role, subject_user_id, resource, row_count, purpose,
         request_id, trace_id, prev_hash, row_hash, chain_seq from gone;
$$), array['row_hash does not match the row''s fields @3'], 'Changing id is found');
select is(pg_temp.tamper('prev_hash', 'repeat(''a'', 64)'),
  array['prev_hash is not the previous row''s row_hash @3', 'row_hash does not match the row''s fields @3'],
  'Changing prev_hash is found');
select is(pg_temp.tamper('row_hash', 'repeat(''b'', 64)'),
  array['row_hash does not match the row''s fields @3', 'prev_hash is not the previous row''s row_hash @4'],
  'Changing row_hash is found at the row and at its successor');
select ok(pg_temp.tamper('chain_seq', 'chain_seq + 1000000') @> array['row_hash does not match the row''s fields @1000003'],
  'Moving a row to another chain position is found');

-- Every break is reported, not only the first.
select is(pg_temp.breaks_after($$
  update audit.phi_access_log set purpose = 'x' where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 1 limit 1);
  update audit.phi_access_log set purpose = 'y' where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 4 limit 1);
$$), array['row_hash does not match the row''s fields @2', 'row_hash does not match the row''s fields @5'],
  'Two edited rows are both reported');
create function pg_temp.verify_after(change text) returns text
language plpgsql as $$
declare
  v record;
begin
  begin
    execute change;
    select * into v from audit.verify_phi_access_log();
    raise exception 'roll back' using errcode = 'P0004';
  exception when sqlstate 'P0004' then
    return format('%s breaks, first %s, ids %s', v.breaks, v.first_broken_id, v.broken_ids);
  end;
end;
$$;
select is(pg_temp.verify_after($$
  update audit.phi_access_log set purpose = 'x' where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 1 limit 1);
  update audit.phi_access_log set purpose = 'y' where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 4 limit 1);
$$), format('2 breaks, first %s, ids {%s,%s}',
  (select id from chain_rows order by chain_seq offset 1 limit 1),
  (select id from chain_rows order by chain_seq offset 1 limit 1), (select id from chain_rows order by chain_seq offset 4 limit 1)),
  'verify_phi_access_log counts every break and lists every broken row');

-- Deletions.
select is(pg_temp.breaks_after($$
  delete from audit.phi_access_log where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 3 limit 1)
$$), array[format('chain positions %s to %s are missing @5', (select min(chain_seq) + 3 from chain_rows), (select min(chain_seq) + 3 from chain_rows)),
           'prev_hash is not the previous row''s row_hash @5'],
  'A row deleted from the middle is found at the next row');
select is(pg_temp.breaks_after($$
  delete from audit.phi_access_log where chain_seq = (select max(chain_seq) from chain_rows)
$$), array[format('chain positions %s to %s are missing at the end @6', (select max(chain_seq) from chain_rows), (select max(chain_seq) from chain_rows))],
  'A row deleted from the end is found against the chain head');

-- What the owner can still do: delete a row and recompute the chain after it (and the head).
-- The chain verifies again; only a checkpoint exported out of the owner's reach shows it.
select is(pg_temp.breaks_after($$
  do $rewrite$
  declare
    r audit.phi_access_log;
    prev text;
    n bigint;
  begin
    delete from audit.phi_access_log where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 3 limit 1);
    select chain_seq, row_hash into n, prev from audit.phi_access_log
     where chain_seq = (select chain_seq from chain_rows order by chain_seq offset 2 limit 1);
    for r in select * from audit.phi_access_log where chain_seq > n order by chain_seq loop
      n := n + 1;
      r.chain_seq := n;
      r.prev_hash := prev;
      r.row_hash := private._phi_access_row_hash(prev, r);
      update audit.phi_access_log l set chain_seq = r.chain_seq, prev_hash = r.prev_hash, row_hash = r.row_hash where l.id = r.id;
      prev := r.row_hash;
    end loop;
    update audit.phi_access_chain_head set last_seq = n, last_hash = prev;
  end
  $rewrite$;
$$), '{}'::text[], 'A rewrite by the table owner that recomputes the chain is invisible to the in-database verifier (checkpoints catch it)');

alter table audit.phi_access_log enable trigger phi_access_log_refuse_update_delete;

-- The row hash is unambiguous (version 2): the same vector as audit_chain_test.ts, and
-- text moved across a field boundary or a null made '' hashes differently.
create function pg_temp.vector(patch jsonb) returns audit.phi_access_log language sql as $$
  select jsonb_populate_record(null::audit.phi_access_log, '{"id": 7, "chain_seq": 7,
    "accessed_at": "2026-11-24T01:02:03.456789Z", "actor_id": null, "actor_role": "service_role",
    "subject_user_id": "00000000-0000-4000-8000-000000000001", "resource": "coach_interactions",
    "row_count": 2, "purpose": "Zoë|care", "request_id": null, "trace_id": null}'::jsonb || patch)
$$;
select is(private._phi_access_row_hash_v3(repeat('0', 64), pg_temp.vector('{"trace_id": "trace-ü:7"}')),
  '484daee50c4c4e9c0933fc2a79e6239eda5498db9cd3f5bd0346d09a28d4f8dc', 'Version 3 of the row hash matches the shared vector');
select is(private._phi_access_row_hash_v2(repeat('0', 64), pg_temp.vector('{}')),
  '53f4ec2ed2b405384671851fa537f0d9ce8e76d334cdac799475b20c4dacbfa2', 'Version 2 of the row hash matches the shared vector');
select isnt(private._phi_access_row_hash_v2(repeat('0', 64), pg_temp.vector('{"purpose": "a", "request_id": "b|c"}')),
  private._phi_access_row_hash_v2(repeat('0', 64), pg_temp.vector('{"purpose": "a|b", "request_id": "c"}')),
  'Text moved between purpose and request_id changes the hash');
select isnt(private._phi_access_row_hash_v2(repeat('0', 64), pg_temp.vector('{"request_id": null}')),
  private._phi_access_row_hash_v2(repeat('0', 64), pg_temp.vector('{"request_id": ""}')),
  'A null request_id and an empty one hash differently');
-- Rows before the cut-over keep version 1: with the cut-over moved past the vector's
-- position, the row hash is the old one (the same vector as audit_chain_test.ts).
select is(pg_temp.breaks_after($$
  update audit.phi_access_chain_head set hash_v2_from_seq = 8, hash_v3_from_seq = 9;
  create temporary table v1_hash on commit drop as
    select private._phi_access_row_hash(repeat('0', 64), pg_temp.vector('{}')) as h;
  update audit.phi_access_chain_head set hash_v2_from_seq = 1;
  insert into v1_hash select private._phi_access_row_hash(repeat('0', 64), pg_temp.vector('{}'));
  do $check$ begin
    if (select array_agg(h order by h) from v1_hash) <> array['53f4ec2ed2b405384671851fa537f0d9ce8e76d334cdac799475b20c4dacbfa2',
                                                           '7313656643ea29e403721aa76925e0cab9a668c521e7e0f9bca6085dbfc7271c'] then
      raise exception 'version dispatch: %', (select array_agg(h) from v1_hash);
    end if;
  end $check$;
  update audit.phi_access_chain_head set hash_v3_from_seq = 7;
  do $check$ begin
    if private._phi_access_row_hash(repeat('0', 64), pg_temp.vector('{"trace_id": "trace-ü:7"}'))
       <> '484daee50c4c4e9c0933fc2a79e6239eda5498db9cd3f5bd0346d09a28d4f8dc' then
      raise exception 'version 3 dispatch';
    end if;
  end $check$;
  update audit.phi_access_chain_head set hash_v3_from_seq = 1;
$$), '{}'::text[], 'A position before hash_v2_from_seq is hashed with version 1, from it with version 2, from hash_v3_from_seq with version 3');

-- The trace id kept with a read, in trace_id: the header (or argument) when it is a token of
-- at most 128 characters, else null, so a client cannot write what it likes into the audit log.
create function pg_temp.kept_request_id(headers text, arg text default null) returns text
language plpgsql as $$
declare
  recorded bigint;
begin
  perform set_config('request.headers', headers, true);
  recorded := audit.record_phi_access(tests.get_user_id('chain-subject@example.com'), 'coach_interactions', 1, 'request id test', arg);
  perform set_config('request.headers', '', true);
  return (select l.trace_id from audit.phi_access_log l where l.id = recorded and l.request_id is null);
end;
$$;
select is(pg_temp.kept_request_id('{"x-request-id": "trace-42.a:b_c"}'), 'trace-42.a:b_c', 'A well-formed x-request-id is kept');
select is(pg_temp.kept_request_id(json_build_object('x-request-id', 'a|b ' || repeat('x', 200))::text), null,
  'A malformed or over-long x-request-id is stored as null');
select is(pg_temp.kept_request_id('', ''), null, 'An empty request id argument is stored as null');
select throws_ok($$ insert into audit.phi_access_log (actor_role, subject_user_id, resource, row_count, purpose, request_id)
    values ('postgres', tests.get_user_id('chain-subject@example.com'), 'coach_interactions', 1, 'direct', 'a|b') $$,
  '23514', 'new row for relation "phi_access_log" violates check constraint "phi_access_log_request_id_format"',
  'A malformed request id cannot be stored by any other path either');
select throws_ok($$ insert into audit.phi_access_log (actor_role, subject_user_id, resource, row_count, purpose, trace_id)
    values ('postgres', tests.get_user_id('chain-subject@example.com'), 'coach_interactions', 1, 'direct', 'a b') $$,
  '23514', 'new row for relation "phi_access_log" violates check constraint "phi_access_log_trace_id_format"',
  'nor a malformed trace id');

-- Who may verify.
select tests.authenticate_as('chain-subject@example.com');
select throws_ok($$ select * from audit.phi_access_log_breaks() $$, '42501', 'permission denied for schema audit',
  'A user cannot run the chain verifier');
select tests.authenticate_as_service_role();
select is((select breaks from audit.verify_phi_access_log()), 0::bigint, 'The service role verifies the chain');

select * from finish();
rollback;
