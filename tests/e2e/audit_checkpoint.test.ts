/**
 * Checkpoints anchor the PHI access log outside the database owner's reach: a rewrite that
 * recomputes the chain passes the in-database verifier but not the checkpoint verifier
 * (npm run audit:verify), which recomputes every hash itself and holds only the public key.
 * Retention deletes a prefix only through a checkpoint, which the verifier then takes as the
 * log's anchor.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { ALICE, stack } from "../helpers.ts";
import {
  CHAIN_ROWS_SQL, type ChainRow, generateSigningJwk, signCheckpoint, signingKey, verifyChain,
} from "../../supabase/functions/_shared/audit_chain.ts";
import { report } from "../../tools/audit-verify.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
afterAll(() => sql.end());

async function readAs(tx: postgres.Sql | postgres.TransactionSql): Promise<ChainRow[]> {
  return await tx.unsafe<ChainRow[]>(CHAIN_ROWS_SQL);
}

describe("PHI access log checkpoints", async () => {
  const key = await signingKey(JSON.stringify(await generateSigningJwk("test-key")));
  const dir = mkdtempSync(join(tmpdir(), "audit-verify-"));
  const keyFile = join(dir, "public.jwk.json");
  writeFileSync(keyFile, JSON.stringify({ keys: [key.publicJwk] }));

  /** Reads a few histories (audited), then signs the head the way audit-checkpoint does. */
  async function checkpointAfterReads(n: number): Promise<string> {
    for (let i = 0; i < n; i++) {
      await sql.begin(async (tx) => {
        await tx`select set_config('role', 'service_role', true), set_config('request.jwt.claims', '{"role":"service_role"}', true)`;
        await tx`select count(*) from public.get_interaction_history(user_id => ${ALICE}::uuid, page_size => 1, purpose => 'checkpoint test')`;
      });
    }
    const [head] = await sql`select chain_seq::text as seq, row_hash as hash from audit.phi_access_log order by chain_seq desc limit 1`;
    return await signCheckpoint({ seq: Number(head.seq), hash: head.hash, iat: Math.floor(Date.now() / 1000), iss: "test" }, key.key, key.kid);
  }

  it("npm run audit:verify accepts an intact log against its checkpoints", { timeout: 60_000 }, async () => {
    const first = await checkpointAfterReads(3);
    const second = await checkpointAfterReads(2);
    const file = join(dir, "checkpoints.jsonl");
    writeFileSync(file, `${first}\n${JSON.stringify({ jws: second })}\n`);
    const { stdout } = await promisify(execFile)(process.execPath,
      ["tools/audit-verify.ts", "--checkpoints", file, "--public-key", keyFile, "--db-url", stack().env.DB_URL]);
    expect(stdout).toContain("OK: every row's hash recomputes, and the chain matches every checkpoint.");
  });

  it("serves the public key set at /functions/v1/audit-checkpoint/jwks without a token, and audit:verify reads it from there", { timeout: 60_000 }, async () => {
    const res = await fetch(`${stack().env.API_URL}/functions/v1/audit-checkpoint/jwks`);
    expect(res.status).toBe(200);
    const jwks = await res.json() as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
    expect(jwks.keys[0].d).toBeUndefined();
    // With no checkpoints, the URL is enough for the verifier to run over the whole chain.
    const none = join(dir, "none.jsonl");
    writeFileSync(none, "");
    const { stdout } = await promisify(execFile)(process.execPath, ["tools/audit-verify.ts", "--checkpoints", none,
      "--public-key", `${stack().env.API_URL}/functions/v1/audit-checkpoint/jwks`, "--db-url", stack().env.DB_URL]);
    expect(stdout).toContain("OK: every row's hash recomputes");
  });

  it("npm run audit:verify refuses a key that is not a public Ed25519 JWK, naming what is wrong (exit 2)", async () => {
    const run = async (key: unknown) => {
      const file = join(dir, "bad-key.json");
      writeFileSync(file, typeof key === "string" ? key : JSON.stringify(key));
      try {
        await promisify(execFile)(process.execPath, ["tools/audit-verify.ts", "--checkpoints", keyFile, "--public-key", file,
          "--db-url", stack().env.DB_URL]);
        return { code: 0, stderr: "" };
      } catch (err) {
        const e = err as { code: number; stderr: string };
        return { code: e.code, stderr: e.stderr.trim() };
      }
    };
    const privateJwk = await generateSigningJwk("leaked");
    expect(await run(privateJwk)).toEqual({ code: 2, stderr: "--public-key holds a private key (d): give only the public half" });
    expect(await run({ keys: [] })).toEqual({ code: 2, stderr: "--public-key holds an empty key set" });
    expect(await run({ kty: "RSA", n: "x", e: "AQAB" })).toEqual({ code: 2,
      stderr: "--public-key must be a public Ed25519 JWK or JWKS (kty OKP, crv Ed25519, x)" });
    expect(await run("not json")).toEqual({ code: 2, stderr: "--public-key is not JSON: give a public JWK or JWKS" });
    const { kid: _kid, ...noKid } = key.publicJwk;
    expect(await run({ keys: [key.publicJwk, noKid] })).toEqual({ code: 2, stderr: "--public-key: every key of a key set needs a kid" });
  });

  it("finds a row deleted before the last checkpoint after the owner recomputed the chain, which SQL's verifier cannot", async () => {
    const jws = await checkpointAfterReads(4);
    let sqlVerdict: Record<string, unknown> | undefined;
    let result: Awaited<ReturnType<typeof verifyChain>> | undefined;
    await sql.begin(async (tx) => {
      // As the table owner: guard off, delete the third-newest row, recompute the chain after it.
      await tx`alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete`;
      const [victim] = await tx`select chain_seq from audit.phi_access_log order by chain_seq desc offset 2 limit 1`;
      await tx`delete from audit.phi_access_log where chain_seq = ${victim.chain_seq}`;
      await tx`do $$
        declare r audit.phi_access_log; prev text; n bigint;
        begin
          select max(chain_seq) into n from audit.phi_access_log where chain_seq < ${tx.unsafe(String(victim.chain_seq))};
          select row_hash into prev from audit.phi_access_log where chain_seq = n;
          for r in select * from audit.phi_access_log where chain_seq > n order by chain_seq loop
            n := n + 1; r.chain_seq := n; r.prev_hash := prev; r.row_hash := private._phi_access_row_hash(prev, r);
            update audit.phi_access_log l set chain_seq = r.chain_seq, prev_hash = r.prev_hash, row_hash = r.row_hash where l.id = r.id;
            prev := r.row_hash;
          end loop;
          update audit.phi_access_chain_head set last_seq = n, last_hash = prev;
        end $$`;
      [sqlVerdict] = await tx`select breaks from audit.verify_phi_access_log()`;
      result = await verifyChain(await readAs(tx), [jws], key.publicJwk);
      throw new Rollback();
    }).catch((err) => { if (!(err instanceof Rollback)) throw err; });
    expect(Number(sqlVerdict!.breaks)).toBe(0);
    expect(result!.findings.map((f) => f.problem)).toEqual([
      expect.stringMatching(/^the checkpoint signed at .* names position \d+, which is missing$/),
    ]);
  });

  it("finds an edited row before the checkpoint, and a forged checkpoint", async () => {
    const jws = await checkpointAfterReads(2);
    const forger = await signingKey(JSON.stringify(await generateSigningJwk("test-key")));
    const forged = await signCheckpoint({ seq: 1, hash: "f".repeat(64), iat: 1, iss: "x" }, forger.key, forger.kid);
    let result: Awaited<ReturnType<typeof verifyChain>> | undefined;
    await sql.begin(async (tx) => {
      await tx`alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete`;
      await tx`update audit.phi_access_log set purpose = 'nothing to see' where chain_seq = (select max(chain_seq) - 1 from audit.phi_access_log)`;
      result = await verifyChain(await readAs(tx), [jws, forged], key.publicJwk);
      throw new Rollback();
    }).catch((err) => { if (!(err instanceof Rollback)) throw err; });
    expect(result!.findings.map((f) => f.problem)).toEqual([
      expect.stringMatching(/^a checkpoint does not verify: /),
      "row_hash does not match the row's fields",
    ]);
  });
});

describe("PHI access log retention", async () => {
  const key = await signingKey(JSON.stringify(await generateSigningJwk("retention-key")));

  it("prunes through a recorded checkpoint, which audit:verify's check takes as the anchor; without it, or with a recent one, the missing prefix is a break", async () => {
    let pruned: Record<string, unknown> | undefined;
    let sqlBreaks: unknown;
    let rows: ChainRow[] = [];
    let jws = "";
    let recentJws = "";
    await sql.begin(async (tx) => {
      // A log of its own for this transaction (rolled back): three reads in 2018, past the
      // six-year window, then one now. Other files' reads wait on the chain head meanwhile.
      await tx`alter table audit.phi_access_log disable trigger phi_access_log_refuse_update_delete`;
      await tx`delete from audit.phi_access_log`;
      await tx`alter table audit.phi_access_log enable trigger phi_access_log_refuse_update_delete`;
      await tx`update audit.phi_access_chain_head set last_seq = 0, last_hash = repeat('0', 64)`;
      await tx`update audit.phi_access_log_anchor set through_seq = 0, through_hash = repeat('0', 64), checkpoint_id = null, pruned_at = null`;
      await tx`update public.legal_holds set released_at = now(), released_by_role = 'postgres', release_reason = 'test' where released_at is null`;
      for (const day of ["2018-01-01", "2018-01-02", "2018-01-03"]) {
        await tx`insert into audit.phi_access_log (accessed_at, actor_role, subject_user_id, resource, row_count, purpose)
                 values (${day}::timestamptz, 'service_role', ${ALICE}::uuid, 'coach_interactions', 1, 'retention test')`;
      }
      // The checkpoint audit-checkpoint signed back then, of position 2, exported and recorded.
      const [head] = await tx`select chain_seq::int as seq, row_hash as hash from audit.phi_access_log where chain_seq = 2`;
      jws = await signCheckpoint({ seq: head.seq, hash: head.hash, iat: Date.parse("2018-01-02T11:00:00Z") / 1000, iss: "test" }, key.key, key.kid);
      recentJws = await signCheckpoint({ seq: head.seq, hash: head.hash, iat: Math.floor(Date.now() / 1000), iss: "test" }, key.key, key.kid);
      await tx`insert into audit.phi_access_checkpoints (chain_seq, head_hash, signed_at, key_id, jws)
               values (${head.seq}, ${head.hash}, '2018-01-02T11:00:00Z', ${key.kid}, ${jws})`;
      await tx`select audit.record_phi_access(${ALICE}::uuid, 'coach_interactions', 1, 'now')`;
      [pruned] = (await tx`select private.prune_phi_access_log() as r`).map((x) => x.r);
      [sqlBreaks] = (await tx`select breaks from audit.verify_phi_access_log()`).map((r) => Number(r.breaks));
      rows = await readAs(tx);
      throw new Rollback();
    }).catch((err) => { if (!(err instanceof Rollback)) throw err; });
    // Row 3 is past the window too, but no checkpoint follows it yet: not done.
    expect(pruned).toMatchObject({ rows: 2, through_seq: 2, done: false });
    expect(sqlBreaks).toBe(0);
    expect(rows.map((r) => Number(r.chain_seq))).toEqual([3, 4]);

    const result = await verifyChain(rows, [jws], key.publicJwk);
    expect(result.findings).toEqual([]);
    expect(result.anchor).toMatchObject({ seq: 2, iat: Date.parse("2018-01-02T11:00:00Z") / 1000 });
    expect(report(result, 1)).toEqual([
      "Read 2 rows of audit.phi_access_log and 1 checkpoints (the last at position 2, signed 2018-01-02T11:00:00.000Z).",
      "The log starts after position 2: retention deleted the rows up to it, through the checkpoint signed 2018-01-02T11:00:00.000Z, which the first row kept chains to.",
      "OK: every row's hash recomputes, and the chain matches every checkpoint.",
    ]);
    // Without the checkpoint in the verifier's file, the pruned prefix is a deletion.
    const bare = await verifyChain(rows, [], key.publicJwk);
    expect(bare.findings.map((f) => f.problem)).toEqual([
      "chain positions 1 to 2 are missing, and no signed checkpoint of position 2 has the hash the first row kept chains to",
    ]);
    expect(report(bare, 0).at(-1)).toBe("1 problem(s) found.");
    // A checkpoint of the same position signed today anchors a deletion before its time.
    const early = await verifyChain(rows, [recentJws], key.publicJwk);
    expect(early.findings.map((f) => f.problem)).toEqual([
      expect.stringMatching(/^the log starts after position 2, through a checkpoint signed .*, less than 2190 days ago: rows still within the retention window were deleted$/),
    ]);
  });
});

class Rollback extends Error {}
