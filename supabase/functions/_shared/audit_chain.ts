/**
 * The PHI access log's hash chain outside the database: the row hash recomputed in
 * TypeScript (the same fields and format as private._phi_access_row_hash), signed
 * checkpoints of the chain head (compact JWS, EdDSA, with a key the database never sees),
 * and the verifier that checks the rows against exported checkpoints. Runs on Deno (the
 * audit-checkpoint function) and on Node (npm run audit:verify). Web Crypto and jose only.
 */
import { CompactSign, compactVerify, createLocalJWKSet, exportJWK, importJWK, type JWK } from "jose";

/** The shortest retention of the PHI access log the database allows (six years), in days. */
export const DEFAULT_MIN_RETENTION_DAYS = 2190;

/** Hash of no predecessor: the first row's prev_hash. */
export const GENESIS = "0".repeat(64);

/**
 * A phi_access_log row as the verifier reads it (accessed_at already formatted in UTC with
 * microseconds), with the version of the row hash that applies at its position.
 */
export interface ChainRow {
  hash_version: number;
  chain_seq: string;
  id: string;
  accessed_at_utc: string;
  actor_id: string | null;
  actor_role: string;
  subject_user_id: string;
  resource: string;
  row_count: number;
  purpose: string;
  /** Rows before trace_id existed: their trace id. */
  request_id: string | null;
  /** Version 3 rows: the trace id of the read. */
  trace_id: string | null;
  prev_hash: string;
  row_hash: string;
}

/** The SQL that reads rows in chain order for the verifier (any role that may read the log). */
export const CHAIN_ROWS_SQL = `
  select case when l.chain_seq >= coalesce(h.hash_v3_from_seq, 1) then 3
              when l.chain_seq >= coalesce(h.hash_v2_from_seq, 1) then 2 else 1 end as hash_version,
         l.chain_seq::text as chain_seq, l.id::text as id,
         to_char(l.accessed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as accessed_at_utc,
         l.actor_id::text as actor_id, l.actor_role, l.subject_user_id::text as subject_user_id, l.resource, l.row_count,
         l.purpose, l.request_id, l.trace_id, l.prev_hash, l.row_hash
  from audit.phi_access_log l left join audit.phi_access_chain_head h on h.singleton
  order by l.chain_seq`;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A row's hash chained to prev (private._phi_access_row_hash). Version 3 (from
 * audit.phi_access_chain_head.hash_v3_from_seq on): version 2's fields and trace_id, under
 * its own tag. Version 2: sha256 of a tag and every field as <length in UTF-8 bytes>:<text>,
 * null as ~, so no two rows share an input. Version 1 (rows before hash_v2_from_seq): the
 * fields joined by |, null as the empty string.
 */
export function rowHash(prev: string, r: ChainRow): Promise<string> {
  const fields: (string | null)[] = [
    prev, r.chain_seq, r.id, r.accessed_at_utc, r.actor_id, r.actor_role, r.subject_user_id,
    r.resource, String(r.row_count), r.purpose, r.request_id,
  ];
  if (r.hash_version === 1) return sha256Hex(fields.map((f) => f ?? "").join("|"));
  const bytes = new TextEncoder();
  const prefixed = (fs: (string | null)[]) => fs.map((f) => f === null ? "~" : `${bytes.encode(f).length}:${f}`).join("");
  if (r.hash_version === 2) return sha256Hex("coach-ledger/phi-access-row/v2" + prefixed(fields));
  return sha256Hex("coach-ledger/phi-access-row/v3" + prefixed([...fields, r.trace_id]));
}

/** What a checkpoint asserts: the chain's row at position seq has hash `hash`. */
export interface Checkpoint {
  seq: number;
  hash: string;
  /** Seconds since the epoch. */
  iat: number;
  iss: string;
}

const CHECKPOINT_TYPE = "coach-ledger.phi-access-checkpoint+jws";

/** The signing key from its private JWK (OKP Ed25519 with a kid), and its public half. */
export async function signingKey(privateJwk: string): Promise<{ key: CryptoKey; kid: string; publicJwk: JWK }> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(privateJwk) as JWK;
  } catch {
    throw new Error("AUDIT_SIGNING_KEY is not a JSON Web Key");
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.d || !jwk.kid) {
    throw new Error("AUDIT_SIGNING_KEY must be a private Ed25519 JWK (kty OKP, crv Ed25519, d) with a kid");
  }
  const key = await importJWK(jwk, "EdDSA") as CryptoKey;
  // The public half: no private part, and none of the private key's usages (a WebCrypto
  // export says key_ops ["sign"], which a verifier could not import).
  const { kty, crv, x, kid } = jwk;
  return { key, kid, publicJwk: { kty, crv, x, kid, alg: "EdDSA", use: "sig" } };
}

/** Signs a checkpoint as a compact JWS. */
export async function signCheckpoint(c: Checkpoint, key: CryptoKey, kid: string): Promise<string> {
  return await new CompactSign(new TextEncoder().encode(JSON.stringify(c)))
    .setProtectedHeader({ alg: "EdDSA", kid, typ: CHECKPOINT_TYPE })
    .sign(key);
}

/**
 * Verifies a checkpoint's signature with a public key, or with the key of a key set that
 * the JWS header's kid names (so checkpoints signed before a key rotation still verify
 * against a JWKS that keeps the old key); throws when it does not verify.
 */
export async function verifyCheckpoint(jws: string, publicKeys: JWK | JWK[]): Promise<Checkpoint> {
  const keys = Array.isArray(publicKeys) ? publicKeys : [publicKeys];
  // One key without a kid is the key, whatever the header names; a key set is searched by kid.
  const key = keys.length === 1 && !keys[0].kid ? await importJWK(keys[0], "EdDSA") : createLocalJWKSet({ keys });
  const { payload, protectedHeader } = await compactVerify(jws, key, { algorithms: ["EdDSA"] });
  if (protectedHeader.typ !== CHECKPOINT_TYPE) throw new Error("not a PHI access checkpoint");
  const c = JSON.parse(new TextDecoder().decode(payload)) as Checkpoint;
  if (!Number.isSafeInteger(c.seq) || c.seq < 0 || !/^[0-9a-f]{64}$/.test(c.hash)) throw new Error("malformed checkpoint payload");
  return c;
}

/** One problem the verifier found. */
export interface Finding {
  seq: number | null;
  problem: string;
}

/**
 * Checks the rows (in chain order) by recomputing every hash, and each checkpoint against
 * them: its signature, and that the row at its position still has the signed hash. Returns
 * every problem found (empty when the log is intact up to its last checkpoint and beyond).
 *
 * Retention deletes a prefix of the chain only through a checkpoint
 * (private.prune_phi_access_log): when the first row is not at position 1, a signed
 * checkpoint must name the position before it with the hash the row chains to. That
 * checkpoint is the anchor, returned; checkpoints of positions before it cannot be checked
 * against rows any more, and are not. A prefix missing without such a checkpoint is a break,
 * and so is an anchor signed less than the retention window ago (minRetentionDays, six years
 * by default, the shortest window the database allows): the rows it ended were written
 * about when it was signed, so they were deleted before their time.
 */
export async function verifyChain(rows: Iterable<ChainRow>, checkpoints: string[], publicKeys: JWK | JWK[], options: {
  minRetentionDays?: number;
  /** Milliseconds since the epoch (tests). */
  now?: number;
} = {}): Promise<{
  rows: number;
  checkpoints: Checkpoint[];
  anchor: Checkpoint | null;
  findings: Finding[];
}> {
  const findings: Finding[] = [];
  const verified: Checkpoint[] = [];
  for (const jws of checkpoints) {
    try {
      verified.push(await verifyCheckpoint(jws, publicKeys));
    } catch (err) {
      findings.push({ seq: null, problem: `a checkpoint does not verify: ${err instanceof Error ? err.message : err}` });
    }
  }
  const recomputed = new Map<number, string>();
  let anchor: Checkpoint | null = null;
  let expectedSeq = 1;
  let prev = GENESIS;
  let n = 0;
  for (const r of rows) {
    n++;
    const seq = Number(r.chain_seq);
    if (n === 1 && seq > 1) {
      anchor = verified.find((c) => c.seq === seq - 1 && c.hash === r.prev_hash) ?? null;
      if (anchor === null) {
        findings.push({ seq, problem: `chain positions 1 to ${seq - 1} are missing, and no signed checkpoint of position ${seq - 1} has the hash the first row kept chains to` });
      }
      expectedSeq = seq;
      prev = r.prev_hash;
    }
    if (seq !== expectedSeq) findings.push({ seq, problem: `chain positions ${expectedSeq} to ${seq - 1} are missing` });
    if (r.prev_hash !== prev) findings.push({ seq, problem: "prev_hash is not the previous row's hash" });
    const own = await rowHash(r.prev_hash, r);
    if (own !== r.row_hash) findings.push({ seq, problem: "row_hash does not match the row's fields" });
    recomputed.set(seq, own);
    prev = r.row_hash;
    expectedSeq = seq + 1;
  }
  const minRetentionDays = options.minRetentionDays ?? DEFAULT_MIN_RETENTION_DAYS;
  if (anchor !== null && anchor.iat * 1000 > (options.now ?? Date.now()) - minRetentionDays * 86_400_000) {
    findings.push({ seq: anchor.seq, problem: `the log starts after position ${anchor.seq}, through a checkpoint signed ` +
      `${new Date(anchor.iat * 1000).toISOString()}, less than ${minRetentionDays} days ago: rows still within the retention window were deleted` });
  }
  for (const c of verified) {
    // Positions up to the anchor were deleted by retention (the anchor itself matched above).
    if (c.seq === 0 || (anchor !== null && c.seq <= anchor.seq)) continue;
    const at = recomputed.get(c.seq);
    if (at === undefined) {
      findings.push({ seq: c.seq, problem: `the checkpoint signed at ${new Date(c.iat * 1000).toISOString()} names position ${c.seq}, which is missing` });
    } else if (at !== c.hash) {
      findings.push({ seq: c.seq, problem: `history up to position ${c.seq} was rewritten after the checkpoint signed at ${new Date(c.iat * 1000).toISOString()}` });
    }
  }
  // A checkpoint signed strictly later than another cannot name an earlier position (iat
  // has one-second resolution: two signed in the same second are not ordered).
  verified.sort((a, b) => a.iat - b.iat || a.seq - b.seq);
  let highestBefore = -1;
  let sameSecondHighest = -1;
  for (let i = 0; i < verified.length; i++) {
    if (i > 0 && verified[i].iat !== verified[i - 1].iat) {
      highestBefore = Math.max(highestBefore, sameSecondHighest);
      sameSecondHighest = -1;
    }
    if (verified[i].seq < highestBefore) {
      findings.push({ seq: verified[i].seq, problem: "a later checkpoint names an earlier position: rows were removed between them" });
    }
    sameSecondHighest = Math.max(sameSecondHighest, verified[i].seq);
  }
  findings.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  return { rows: n, checkpoints: verified, anchor, findings };
}

/** A new Ed25519 signing key as a private JWK with a kid (for .env files and the local stack). */
export async function generateSigningJwk(kid: string): Promise<JWK> {
  const { privateKey } = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]) as CryptoKeyPair;
  return { ...(await exportJWK(privateKey)), kid };
}
