/** The token checks and the read-check cache of the local Realtime (no database needed). */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { AuthorizationCache, checkToken, type Claims, expiredMessage } from "./authorization.ts";

const keys = {
  jwtSecret: "super-secret-jwt-token-with-at-least-32-characters-long",
  anonKey: "", serviceRoleKey: "", publishableKey: "", secretKey: "",
};
const now = () => Math.floor(Date.now() / 1000);
const sign = (claims: Record<string, unknown>, secret = keys.jwtSecret) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(secret));
const claims = (sub: string, exp = now() + 600): Claims => ({ sub, role: "authenticated", exp });

Deno.test("checkToken() accepts a signed token with role and exp", async () => {
  const result = await checkToken(keys, await sign({ sub: "u1", role: "authenticated", exp: now() + 60 }));
  assert.equal(result.ok, true);
});

Deno.test("checkToken() refuses with Realtime's codes and messages", async () => {
  const cases: [string | null, string, string | RegExp][] = [
    [null, "MalformedJWT", "The token provided is not a valid JWT"],
    ["not-a-token", "MalformedJWT", "The token provided is not a valid JWT"],
    [await sign({ role: "authenticated", exp: now() + 60 }, "another-secret-of-at-least-32-characters!!"), "JwtSignatureError", "Failed to validate JWT signature"],
    [await sign({ role: "authenticated", exp: now() - 30 }), "InvalidJWTToken", /^Token has expired (29|30|31) seconds ago$/],
    [await sign({ role: "authenticated" }), "InvalidJWTToken", "Fields `role` and `exp` are required in JWT"],
    [await sign({ sub: "u1", exp: now() + 60 }), "InvalidJWTToken", "Fields `role` and `exp` are required in JWT"],
  ];
  for (const [token, code, message] of cases) {
    const result = await checkToken(keys, token);
    assert.equal(result.ok, false, String(token));
    if (result.ok) continue;
    assert.equal(result.code, code);
    if (message instanceof RegExp) assert.match(result.message, message);
    else assert.equal(result.message, message);
  }
});

Deno.test("expiredMessage() counts whole seconds since exp, never negative", () => {
  assert.equal(expiredMessage(100, 107_900), "Token has expired 7 seconds ago");
  assert.equal(expiredMessage(100, 99_000), "Token has expired 0 seconds ago");
});

Deno.test("AuthorizationCache keeps an answer per topic and claims", () => {
  const cache = new AuthorizationCache();
  const carol = claims("carol");
  cache.set("t1", carol, true, cache.generation);
  assert.equal(cache.get("t1", carol), true);
  assert.equal(cache.get("t2", carol), undefined, "another topic");
  assert.equal(cache.get("t1", claims("bob", carol.exp)), undefined, "another user");
  assert.equal(cache.get("t1", { ...carol, exp: carol.exp + 1 }), undefined, "another token of the same user");
  assert.equal(cache.get("t1", { ...carol, role: "anon" }), undefined, "another role");
});

Deno.test("AuthorizationCache answers lapse at the token's exp and after the TTL", () => {
  const cache = new AuthorizationCache({ ttlMs: 30_000 });
  const t0 = 1_000_000_000_000;
  const soon = { ...claims("carol"), exp: t0 / 1000 + 10 };
  cache.set("t", soon, true, cache.generation, t0);
  assert.equal(cache.get("t", soon, t0 + 9_999), true);
  assert.equal(cache.get("t", soon, t0 + 10_000), undefined, "lapsed at exp");
  const later = { ...claims("carol"), exp: t0 / 1000 + 3600 };
  cache.set("t", later, true, cache.generation, t0);
  assert.equal(cache.get("t", later, t0 + 29_999), true);
  assert.equal(cache.get("t", later, t0 + 30_000), undefined, "lapsed after the TTL");
  const expired = { ...claims("carol"), exp: t0 / 1000 - 1 };
  cache.set("t", expired, true, cache.generation, t0);
  assert.equal(cache.get("t", expired, t0), undefined, "an expired token's answer is not stored");
});

Deno.test("AuthorizationCache.invalidate() drops every answer and refuses answers computed before it", () => {
  const cache = new AuthorizationCache();
  const carol = claims("carol");
  cache.set("t1", carol, true, cache.generation);
  cache.set("t2", carol, false, cache.generation);
  const before = cache.generation;
  cache.invalidate();
  assert.equal(cache.get("t1", carol), undefined);
  assert.equal(cache.get("t2", carol), undefined);
  cache.set("t1", carol, true, before);
  assert.equal(cache.get("t1", carol), undefined, "a check that started before the invalidation is not stored");
  cache.set("t1", carol, false, cache.generation);
  assert.equal(cache.get("t1", carol), false);
});

Deno.test("AuthorizationCache stays bounded", () => {
  const cache = new AuthorizationCache({ maxEntries: 10 });
  for (let i = 0; i < 25; i++) cache.set(`t${i}`, claims("carol"), true, cache.generation);
  assert.ok(cache.size <= 10, `size ${cache.size}`);
});
