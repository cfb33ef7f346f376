import assert from "node:assert/strict";
import { generateSigningJwk, rowHash, signCheckpoint, signingKey, verifyCheckpoint } from "./audit_chain.ts";

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
// the row hash (SQL and this one) agree on both versions, multi-byte text and nulls included.
const VECTOR_ROW = {
  chain_seq: "7", id: "7", accessed_at_utc: "2026-11-24T01:02:03.456789", actor_id: null,
  actor_role: "service_role", subject_user_id: "00000000-0000-4000-8000-000000000001",
  resource: "coach_interactions", row_count: 2, purpose: "Zoë|care", request_id: null,
  prev_hash: "0".repeat(64), row_hash: "",
};

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
