-- Retention of the PHI access log (issue 16): a prefix of the hash chain goes only through a
-- recorded checkpoint, which becomes the anchor; it stops before rows still in their window,
-- before rows about a person under a legal hold, and before the last row; a forged
-- checkpoint anchors nothing; the verifier checks the rest from the anchor and reports an
-- anchor no checkpoint names; the guard lets only the prune's own deletes through; who may
-- run and read what, as each named role.
begin;
select plan(35);

-- A clean log for this file (rolled back at the end): earlier rows, the head and the anchor
-- reset, so that positions start at 1.
alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete;
delete from audit.phi_access_log;
alter table audit.phi_access_log enable trigger phi_access_log_refuse_update_delete;
update audit.phi_access_chain_head set last_seq = 0, last_hash = repeat('0', 64);
update audit.phi_access_log_anchor set through_seq = 0, through_hash = repeat('0', 64), checkpoint_id = null, pruned_at = null;

select tests.create_supabase_user('pia64@example.com');
select tests.create_supabase_user('quinn64@example.com');
select tests.create_supabase_user('rae64@example.com');
create temporary table u64 as
select tests.get_user_id('pia64@example.com') as pia, tests.get_user_id('quinn64@example.com') as quinn,
       tests.get_user_id('rae64@example.com') as rae, now() as at;
grant select on u64 to anon, authenticated, service_role, coach_ingest, coach_analyst;

-- Seven reads: six in 2018 (past the six-year window now), the fifth made by Pia (a coach
-- reading Quinn's data), the sixth about Rae, and one now. Positions 1 to 7.
insert into audit.phi_access_log (accessed_at, actor_id, actor_role, subject_user_id, resource, row_count, purpose)
select v.at, case when v.n = 5 then (select pia from u64) end, case when v.n = 5 then 'authenticated' else 'service_role' end,
       case when v.n = 6 then (select rae from u64) else (select quinn from u64) end,
       'coach_interactions', 1, 'review ' || v.n
from (values (1, timestamptz '2018-01-01 10:00+00'), (2, '2018-01-02 10:00+00'), (3, '2018-01-03 10:00+00'),
             (4, '2018-01-04 10:00+00'), (5, '2018-01-05 10:00+00'), (6, '2018-01-06 10:00+00'), (7, now())) v(n, at)
order by v.n;
-- Checkpoints of positions 2, 4, 5, 6 and 7 (the database does not verify signatures: the
-- exported ones are what npm run audit:verify checks), and one of position 3 with a hash the row
-- does not have.
insert into audit.phi_access_checkpoints (chain_seq, head_hash, signed_at, key_id, jws)
select l.chain_seq, case when l.chain_seq = 3 then repeat('f', 64) else l.row_hash end, now(), 'test', 'jws-' || l.chain_seq
from audit.phi_access_log l where l.chain_seq in (2, 3, 4, 5, 6, 7);
create temporary table hashes64 as select chain_seq, row_hash from audit.phi_access_log;
select tests.authenticate_as_service_role();
select public.place_legal_hold((select pia from u64), 'Litigation 64');
select tests.clear_authentication();

-- The policy ------------------------------------------------------------------------------

select results_eq($$ select retain_for, action from public.retention_policies where data_kind = 'phi_access_log' $$,
  $$ values (interval '6 years', 'delete'::text) $$, 'The PHI access log is kept six years by default, then deleted');
select tests.authenticate_as_service_role();
select throws_ok($$ select public.set_retention_policy('phi_access_log', '7 years', 'strip', 'try') $$, '22023',
  'The PHI access log is deleted as a prefix of its chain, never stripped', 'It cannot be stripped');
select lives_ok($$ select public.set_retention_policy('phi_access_log', '7 years', 'delete', 'Counsel asks for seven') $$,
  'The service role sets its window, audited');
select lives_ok($$ select public.set_retention_policy('phi_access_log', '6 years', 'delete', 'Back to six') $$, 'and back');
select throws_ok($$ select public.set_retention_policy('phi_access_log', '1 day', 'delete', 'shorter') $$, '22023',
  'The PHI access log is kept at least 6 years', 'but never below six years (the record of who read whose data)');
select tests.clear_authentication();

-- Who may prune ---------------------------------------------------------------------------

select tests.authenticate_as_anon();
select throws_ok($$ select private.prune_phi_access_log() $$, '42501', null, 'anon cannot prune the log');
select tests.authenticate_as('quinn64@example.com');
select throws_ok($$ select private.prune_phi_access_log() $$, '42501', null, 'nor can a user');
select throws_ok($$ select private.run_retention() $$, '42501', null, 'nor run retention');
select tests.authenticate_as_role('coach_ingest');
select throws_ok($$ select private.prune_phi_access_log() $$, '42501', null, 'nor an ingest token');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select private.prune_phi_access_log() $$, '42501', null, 'nor an analyst');
select tests.authenticate_as_service_role();
select throws_ok($$ select private.prune_phi_access_log() $$, '42501', null, 'The service role prunes only through the retention job');
select throws_ok($$ delete from audit.phi_access_log where chain_seq = 1 $$, '42501', null, 'and cannot delete log rows itself');
select throws_ok($$ select private.apply_retention_batch('phi_access_log', 1000, (select at from u64)) $$, '22023',
  'data_kind must be one of interaction_content, interaction_events, stage_responses',
  'nor run the per-user batch on it (which would not keep the chain)');
select tests.clear_authentication();
select throws_ok($$ delete from audit.phi_access_log where chain_seq = 1 $$, '42501',
  'audit.phi_access_log is append-only: rows cannot be updated or deleted', 'Nor can the owner outside a prune');

-- Pruning ---------------------------------------------------------------------------------

select is((select private.prune_phi_access_log((select at from u64), 1) - 'cutoff'),
  jsonb_build_object('rows', 2, 'through_seq', 2, 'checkpoint_id', (select id from audit.phi_access_checkpoints where chain_seq = 2), 'done', false),
  'With room for one row, the nearest checkpoint (position 2) is the anchor: rows 1 and 2 go');
select results_eq($$ select through_seq, through_hash from audit.phi_access_log_anchor $$,
  $$ select 2::bigint, row_hash from hashes64 where chain_seq = 2 $$, 'The anchor is that checkpoint''s position and hash');
select is((select private.prune_phi_access_log((select at from u64), 1) ->> 'through_seq'), '4',
  'Next, position 4: the checkpoint of position 3, within one row, has a hash the row does not have and anchors nothing');
select results_eq($$ select chain_seq from audit.phi_access_log order by 1 $$, $$ values (5::bigint), (6), (7) $$,
  'Rows 3 and 4 went; the row of Pia''s read stays while she is held (she read it; it is not about her)');
select throws_ok($$ delete from audit.phi_access_log where chain_seq = 6 $$, '42501',
  'audit.phi_access_log is append-only: rows cannot be updated or deleted',
  'The prune''s registration lets nothing past its position through, even in its own transaction');
select is((select private.prune_phi_access_log((select at from u64)) - 'cutoff'),
  jsonb_build_object('rows', 0, 'through_seq', 4, 'done', true), 'A prune under the hold finds nothing more to do');
select is_empty($$ select * from audit.phi_access_log_breaks() $$, 'The verifier checks the rest from the anchor: no break');
select results_eq($$ select checked, breaks from audit.verify_phi_access_log() $$, $$ values (3::bigint, 0::bigint) $$,
  'verify_phi_access_log agrees');

-- The window: a prune at a clock where nothing is six years old finds nothing.
select tests.authenticate_as_service_role();
select public.release_legal_hold((select id from public.legal_holds where user_id = (select pia from u64)), 'Case closed');
select tests.clear_authentication();
select is((select private.prune_phi_access_log(timestamptz '2022-01-05 00:00+00') ->> 'rows'), '0',
  'Before the rows are six years old nothing goes');

-- A hold on the person a row is about stops there too: Rae's row (6) stays, 5 goes. Asked
-- for a clock in the future, the prune counts from now: the window cannot be skipped.
select tests.authenticate_as_service_role();
select public.place_legal_hold((select rae from u64), 'Litigation 64b');
select tests.clear_authentication();
create temporary table pruned64 as select private.prune_phi_access_log('infinity') as r;
select is((select r - 'cutoff' from pruned64),
  jsonb_build_object('rows', 1, 'through_seq', 5, 'checkpoint_id', (select id from audit.phi_access_checkpoints where chain_seq = 5), 'done', true),
  'A hold on the subject of a row stops the prune before it');
select is((select (r ->> 'cutoff')::timestamptz from pruned64), (select at from u64) - interval '6 years',
  'and a clock in the future counts as now');
select tests.authenticate_as_service_role();
select public.release_legal_hold((select id from public.legal_holds where user_id = (select rae from u64)), 'Case closed');
select tests.clear_authentication();

-- A row edited before a checkpoint is evidence: retention does not delete it.
alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete;
update audit.phi_access_log set purpose = 'nothing to see' where chain_seq = 6;
alter table audit.phi_access_log enable trigger phi_access_log_refuse_update_delete;
select is((select private.prune_phi_access_log((select at from u64)) - 'cutoff'),
  jsonb_build_object('rows', 0, 'through_seq', 5, 'done', false, 'broken_at', 6),
  'A row that no longer hashes to its fields stops retention before it (done false, broken_at)');
alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete;
update audit.phi_access_log set purpose = 'review 6' where chain_seq = 6;
alter table audit.phi_access_log enable trigger phi_access_log_refuse_update_delete;

-- Through the job: the hold released, row 6 goes; the checkpoint of position 7 is the last
-- row's, which always stays; and it is recorded.
select is((select private.run_retention(at => (select at from u64)) -> 'phi_access_log'),
  '{"done": true, "rows": 1, "action": "delete", "through_seq": 6}'::jsonb,
  'The retention job prunes through position 6, not 7: the last row carries the chain on');
select results_eq($$ select chain_seq from audit.phi_access_log $$, $$ values (7::bigint) $$,
  'Only the row still in its window is left');
select results_eq(
  $$ select (details ->> 'rows')::int, (details ->> 'through_seq')::bigint, (details ->> 'checkpoint_id')::bigint
     from audit.privacy_log where operation = 'retention_applied' and details ->> 'data_kind' = 'phi_access_log' $$,
  $$ values (1, 6::bigint, (select id from audit.phi_access_checkpoints where chain_seq = 6)) $$,
  'The job records the prune in the privacy log: how many rows, through which checkpoint');
select is_empty($$ select * from audit.phi_access_log_breaks() $$, 'Still no break');
select public.log_coach_interaction(sender => 'user', user_id => (select quinn from u64), content => '{"text": "hi"}');
select tests.authenticate_as_service_role();
select count(*) from public.get_interaction_history(user_id => (select quinn from u64), purpose => 'after the prune');
select tests.clear_authentication();
select results_eq($$ select chain_seq, prev_hash from audit.phi_access_log order by 1 $$,
  $$ values (7::bigint, (select row_hash from hashes64 where chain_seq = 6)), (8, (select row_hash from hashes64 where chain_seq = 7)) $$,
  'New reads go on chaining after the kept row');

-- An anchor that no checkpoint names is a break (position 3's checkpoint has another hash).
update audit.phi_access_log_anchor set through_seq = 3, through_hash = (select row_hash from hashes64 where chain_seq = 3);
select results_eq($$ select chain_seq, problem from audit.phi_access_log_breaks() order by chain_seq, problem $$,
  $$ values (3::bigint, 'the log starts after position 3, which no recorded checkpoint names with that hash'),
            (7, 'chain positions 4 to 6 are missing'),
            (7, 'prev_hash is not the hash of the anchor the log was pruned to') $$,
  'An anchor moved off its checkpoint is reported, with the rows that no longer follow it');
update audit.phi_access_log_anchor set through_seq = 6, through_hash = (select row_hash from hashes64 where chain_seq = 6);

-- Who reads the anchor.
select tests.authenticate_as_service_role();
select is((select through_seq from audit.phi_access_log_anchor), 6::bigint, 'The service role reads the anchor');
select tests.authenticate_as('quinn64@example.com');
select throws_ok($$ select * from audit.phi_access_log_anchor $$, '42501', null, 'a user cannot');
select tests.authenticate_as_role('coach_analyst');
select throws_ok($$ select * from audit.phi_access_log_anchor $$, '42501', null, 'nor an analyst');
select tests.clear_authentication();

select * from finish();
rollback;
