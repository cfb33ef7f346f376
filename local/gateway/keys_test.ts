/** keys.ts: what every component checks (verify) and what the API gateway's routes add (verifyApiToken). */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { claimsProblem, type Keys, verify, verifyApiToken } from "./keys.ts";

const keys: Keys = {
  jwtSecret: "super-secret-jwt-token-with-at-least-32-characters-long",
  anonKey: "anon", serviceRoleKey: "service", publishableKey: "sb_publishable_x", secretKey: "sb_secret_x",
  authIssuer: "http://127.0.0.1:54321/auth/v1",
};
const now = () => Math.floor(Date.now() / 1000);
const sign = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(keys.jwtSecret));
const USER = "a11ce000-0000-4000-8000-000000000001";
const user = { iss: keys.authIssuer, aud: "authenticated", sub: USER, role: "authenticated", exp: now() + 60 };

Deno.test("verifyApiToken() accepts GoTrue's user tokens, the API keys' issuers, and role tokens from Auth", async () => {
  assert.ok((await verifyApiToken(keys, await sign(user))).ok);
  assert.ok((await verifyApiToken(keys, await sign({ iss: "supabase-demo", role: "anon", exp: now() + 60 }))).ok);
  assert.ok((await verifyApiToken(keys, await sign({ iss: "supabase", role: "service_role", exp: now() + 60 }))).ok);
  assert.ok((await verifyApiToken(keys, await sign({ iss: keys.authIssuer, role: "coach_ingest", exp: now() + 60 }))).ok);
});

Deno.test("verifyApiToken() refuses tokens GoTrue would not issue, naming the claim", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...user, exp: undefined }, /exp/],
    [{ ...user, iss: "https://elsewhere.example/auth/v1" }, /issuer/],
    [{ ...user, iss: "supabase-demo" }, /issuer/],
    [{ ...user, aud: "other" }, /audience/],
    [{ ...user, sub: "admin" }, /sub/],
  ];
  for (const [claims, why] of cases) {
    const checked = await verifyApiToken(keys, await sign(JSON.parse(JSON.stringify(claims))));
    assert.equal(checked.ok, false);
    if (!checked.ok) {
      assert.equal(checked.problem, "claims");
      assert.match(checked.message, why);
    }
    assert.match(claimsProblem(keys, JSON.parse(JSON.stringify(claims))) ?? "", why);
  }
});

Deno.test("verify() checks only signature and expiry, which Realtime builds its own rules on", async () => {
  assert.ok((await verify(keys, await sign({ sub: "u1", role: "authenticated", exp: now() + 60 }))).ok);
  const expired = await verify(keys, await sign({ ...user, exp: now() - 5 }));
  assert.equal(expired.ok ? "ok" : expired.problem, "expired");
  const forged = await verify(keys, await new SignJWT(user).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("another-secret-another-secret-another")));
  assert.equal(forged.ok ? "ok" : forged.problem, "invalid");
});

Deno.test("verify() takes asymmetric tokens from Auth's JWKS and a third party's from its own, by issuer", async () => {
  const { createLocalJWKSet, exportJWK, generateKeyPair } = await import("jose");
  const auth = await generateKeyPair("ES256", { extractable: true });
  const clerk = await generateKeyPair("RS256", { extractable: true });
  const jwks = async (k: Parameters<typeof exportJWK>[0], kid: string) => createLocalJWKSet({ keys: [{ ...(await exportJWK(k)), kid }] });
  const withKeys: Keys = {
    ...keys,
    authJwks: await jwks(auth.publicKey, "auth-1"),
    thirdParty: [{ name: "clerk", issuer: "https://clerk.example.com", jwks: await jwks(clerk.publicKey, "ins_1") }],
  };
  const es = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "auth-1" }).sign(auth.privateKey);
  const rs = (claims: Record<string, unknown>, key: Parameters<SignJWT["sign"]>[0] = clerk.privateKey) =>
    new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "ins_1" }).sign(key);
  const clerkUser = { iss: "https://clerk.example.com", sub: "user_2abc", role: "authenticated", exp: now() + 60 };

  const gotrue = await verifyApiToken(withKeys, await es(user));
  assert.ok(gotrue.ok && gotrue.by === "auth_jwks");
  assert.ok((await verifyApiToken(withKeys, await sign(user))).ok, "the legacy secret still verifies");
  const third = await verifyApiToken(withKeys, await rs(clerkUser));
  assert.ok(third.ok && third.by === "third_party" && third.provider === "clerk");

  const noRole = await verifyApiToken(withKeys, await rs({ ...clerkUser, role: undefined }));
  assert.ok(!noRole.ok && /role/.test(noRole.message));
  // A Clerk-issued token signed with Auth's key, or Auth's issuer signed with Clerk's key: refused.
  assert.ok(!(await verify(withKeys, await es(clerkUser))).ok);
  assert.ok(!(await verify(withKeys, await rs(user))).ok);
  // An HS256 token naming the third party's issuer is not a third-party token.
  assert.ok(!(await verifyApiToken(withKeys, await sign(clerkUser))).ok);
  // Without signing keys, an asymmetric token is refused.
  assert.ok(!(await verify(keys, await es(user))).ok);
});
