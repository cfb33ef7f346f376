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
