import assert from "node:assert/strict";
import { generateSigningJwk, signCheckpoint, signingKey, verifyCheckpoint } from "./audit_chain.ts";

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
