import assert from "node:assert/strict";
import { generateSigningJwk, rowHash, signCheckpoint, signingKey, verifyChain, verifyCheckpoint } from "./audit_chain.ts";

Deno.test("signingKey() takes a WebCrypto-exported JWK (with key_ops and ext) and publishes a usable public key", async () => {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]) as CryptoKeyPair;
  const exported = { ...await crypto.subtle.exportKey("jwk", pair.privateKey), kid: "audit-1" };
  assert.deepEqual(exported.key_ops, ["sign"]);
  const { key, kid, publicJwk } = await signingKey(JSON.stringify(exported));
  assert.equal(publicJwk.d, undefined);
  assert.equal(publicJwk.key_ops, undefined);
  const jws = await signCheckpoint({ seq: 3, hash: "a".repeat(64), iat: 1, iss: "test" }, key, kid);
  assert.equal((await verifyCheckpoint(jws, publicJwk)).seq, 3);
});

Deno.test("signingKey() refuses what is not a private Ed25519 JWK with a kid", async () => {
  const jwk = await generateSigningJwk("k");
  await assert.rejects(signingKey("not json"), /not a JSON Web Key/);
  await assert.rejects(signingKey(JSON.stringify({ ...jwk, kid: undefined })), /with a kid/);
  const { d: _d, ...publicOnly } = jwk;
  await assert.rejects(signingKey(JSON.stringify(publicOnly)), /private Ed25519 JWK/);
});

// The same vectors as supabase/tests/13_phi_access_chain.test.sql: the two implementations of
// the row hash (SQL and this one) agree on every version, multi-byte text and nulls included.
const VECTOR_ROW = {
  chain_seq: "7", id: "7", accessed_at_utc: "2026-11-24T01:02:03.456789", actor_id: null,
  actor_role: "service_role", subject_user_id: "00000000-0000-4000-8000-000000000001",
  resource: "coach_interactions", row_count: 2, purpose: "Zoë|care", request_id: null, trace_id: null as string | null,
  prev_hash: "0".repeat(64), row_hash: "",
};

Deno.test("rowHash() version 3 adds trace_id to version 2's fields under its own tag", async () => {
  assert.equal(await rowHash("0".repeat(64), { ...VECTOR_ROW, hash_version: 3, trace_id: "trace-ü:7" }),
    "484daee50c4c4e9c0933fc2a79e6239eda5498db9cd3f5bd0346d09a28d4f8dc");
  const v3 = (trace_id: string | null, request_id: string | null = null) =>
    rowHash("0".repeat(64), { ...VECTOR_ROW, hash_version: 3, trace_id, request_id });
  assert.notEqual(await v3("t-1"), await v3(null), "trace_id is covered");
  assert.notEqual(await v3("t-1"), await v3(null, "t-1"), "moving the id between request_id and trace_id is found");
  assert.notEqual(await v3(null), await rowHash("0".repeat(64), { ...VECTOR_ROW, hash_version: 2 }), "the tag differs from version 2's");
});

Deno.test("rowHash() version 2 prefixes every field with its length in bytes and writes null as ~", async () => {
  assert.equal(await rowHash("0".repeat(64), { ...VECTOR_ROW, hash_version: 2 }),
    "53f4ec2ed2b405384671851fa537f0d9ce8e76d334cdac799475b20c4dacbfa2");
  // Text moved across the purpose / request_id boundary, or a null turned into "", no
  // longer hashes the same (it did in version 1).
  const moved = async (v: number, purpose: string, request_id: string | null) =>
    await rowHash("0".repeat(64), { ...VECTOR_ROW, hash_version: v, purpose, request_id });
  assert.notEqual(await moved(2, "a", "b|c"), await moved(2, "a|b", "c"));
  assert.notEqual(await moved(2, "a", null), await moved(2, "a", ""));
  assert.equal(await moved(1, "a", "b|c"), await moved(1, "a|b", "c"));
  assert.equal(await moved(1, "a", null), await moved(1, "a", ""));
});

Deno.test("rowHash() version 1 (rows before the cut-over) joins the fields with |", async () => {
  assert.equal(await rowHash("0".repeat(64), { ...VECTOR_ROW, hash_version: 1 }),
    "7313656643ea29e403721aa76925e0cab9a668c521e7e0f9bca6085dbfc7271c");
});

Deno.test("verifyChain() picks each checkpoint's key by kid (rotation) and orders checkpoints only by a strictly later iat", async () => {
  const old = await signingKey(JSON.stringify(await generateSigningJwk("audit-2025")));
  const current = await signingKey(JSON.stringify(await generateSigningJwk("audit-2026")));
  const genesis = (iat: number, key = current) => signCheckpoint({ seq: 0, hash: "0".repeat(64), iat, iss: "t" }, key.key, key.kid);
  const both = [old.publicJwk, current.publicJwk];
  // Signed with the retired key and the current one: both verify against a key set holding both.
  let result = await verifyChain([], [await genesis(1, old), await genesis(2)], both);
  assert.deepEqual(result.findings, []);
  assert.equal(result.checkpoints.length, 2);
  // A single public key without a kid is used whatever the header names.
  const { kid: _kid, ...anonymous } = current.publicJwk;
  assert.deepEqual((await verifyChain([], [await genesis(2)], anonymous)).findings, []);
  // The retired key alone cannot verify the current key's checkpoint.
  result = await verifyChain([], [await genesis(2)], [old.publicJwk]);
  assert.match(result.findings[0].problem, /^a checkpoint does not verify: /);

  // Positions 1 and 2, hashed as the database would.
  const row = (seq: number, prev: string) => ({
    hash_version: 2, chain_seq: String(seq), id: String(seq), accessed_at_utc: "2026-11-24T00:00:00.000000", actor_id: null,
    actor_role: "service_role", subject_user_id: "00000000-0000-4000-8000-000000000001", resource: "r", row_count: 1,
    purpose: "p", request_id: null, trace_id: null, prev_hash: prev, row_hash: "",
  });
  const r1 = row(1, "0".repeat(64));
  r1.row_hash = await rowHash(r1.prev_hash, r1);
  const r2 = row(2, r1.row_hash);
  r2.row_hash = await rowHash(r2.prev_hash, r2);
  const at = (seq: number, iat: number) =>
    signCheckpoint({ seq, hash: seq === 1 ? r1.row_hash : r2.row_hash, iat, iss: "t" }, current.key, current.kid);
  // Two checkpoints signed in the same second are not ordered, whichever comes first.
  for (const pair of [[await at(2, 5), await at(1, 5)], [await at(1, 5), await at(2, 5)]]) {
    assert.deepEqual((await verifyChain([r1, r2], pair, both)).findings, []);
  }
  // A strictly later checkpoint naming an earlier position is found.
  assert.deepEqual((await verifyChain([r1, r2], [await at(2, 5), await at(1, 6)], both)).findings.map((f) => f.problem),
    ["a later checkpoint names an earlier position: rows were removed between them"]);
});

Deno.test("verifyChain() accepts a prefix deleted by retention only through a signed checkpoint of the position before the first row kept", async () => {
  const key = await signingKey(JSON.stringify(await generateSigningJwk("audit-2026")));
  const row = async (seq: number, prev: string) => {
    const r = {
      hash_version: 3, chain_seq: String(seq), id: String(seq), accessed_at_utc: "2020-01-01T00:00:00.000000", actor_id: null,
      actor_role: "service_role", subject_user_id: "00000000-0000-4000-8000-000000000001", resource: "r", row_count: 1,
      purpose: "p", request_id: null, trace_id: null, prev_hash: prev, row_hash: "",
    };
    r.row_hash = await rowHash(prev, r);
    return r;
  };
  const chain = [await row(1, "0".repeat(64))];
  for (let seq = 2; seq <= 5; seq++) chain.push(await row(seq, chain.at(-1)!.row_hash));
  const sign = (seq: number, iat: number, hash = chain[seq - 1].row_hash) =>
    signCheckpoint({ seq, hash, iat, iss: "t" }, key.key, key.kid);
  const early = await sign(1, 10);
  const anchor = await sign(3, 20);
  const kept = chain.slice(3); // positions 4 and 5: 1 to 3 were pruned through the checkpoint of 3

  let result = await verifyChain(kept, [early, anchor, await sign(5, 30)], key.publicJwk);
  assert.deepEqual(result.findings, []);
  assert.deepEqual(result.anchor, { seq: 3, hash: chain[2].row_hash, iat: 20, iss: "t" });
  assert.equal(result.rows, 2);

  // Without the anchor's checkpoint the missing prefix is a break, however the rest checks out.
  result = await verifyChain(kept, [early], key.publicJwk);
  assert.equal(result.anchor, null);
  assert.deepEqual(result.findings.map((f) => f.problem), [
    "the checkpoint signed at 1970-01-01T00:00:10.000Z names position 1, which is missing",
    "chain positions 1 to 3 are missing, and no signed checkpoint of position 3 has the hash the first row kept chains to",
  ]);
  // A checkpoint of that position with another hash anchors nothing either.
  result = await verifyChain(kept, [await sign(3, 20, "e".repeat(64))], key.publicJwk);
  assert.equal(result.anchor, null);
  assert.deepEqual(result.findings.map((f) => f.problem), [
    "the checkpoint signed at 1970-01-01T00:00:20.000Z names position 3, which is missing",
    "chain positions 1 to 3 are missing, and no signed checkpoint of position 3 has the hash the first row kept chains to",
  ]);
  // A row deleted just after the anchor is found: the first row kept no longer follows it.
  result = await verifyChain([chain[4]], [anchor], key.publicJwk);
  assert.deepEqual(result.findings.map((f) => f.problem), [
    "the checkpoint signed at 1970-01-01T00:00:20.000Z names position 3, which is missing",
    "chain positions 1 to 4 are missing, and no signed checkpoint of position 4 has the hash the first row kept chains to",
  ]);
  // An intact log from position 1 has no anchor.
  assert.equal((await verifyChain(chain, [anchor], key.publicJwk)).anchor, null);
  // An anchor signed less than the retention window ago means rows went before their time.
  const recent = await sign(3, Math.floor(Date.now() / 1000) - 86_400);
  result = await verifyChain(kept, [recent], key.publicJwk);
  assert.equal(result.anchor?.seq, 3);
  assert.deepEqual(result.findings.map((f) => f.problem), [
    `the log starts after position 3, through a checkpoint signed ${new Date((Math.floor(Date.now() / 1000) - 86_400) * 1000).toISOString()}, ` +
    "less than 2190 days ago: rows still within the retention window were deleted",
  ]);
  assert.deepEqual((await verifyChain(kept, [recent], key.publicJwk, { minRetentionDays: 0 })).findings, [],
    "a deployment that keeps the log less long says so");
});
