import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { authenticate, isUser, verifyToken } from "./auth.ts";
import { HttpError } from "./http.ts";

const SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";
Deno.env.set("SUPABASE_JWT_SECRET", SECRET);

async function sign(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(secret));
}
const now = () => Math.floor(Date.now() / 1000);

async function status401(p: Promise<unknown>, detail: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof HttpError && err.status === 401 && detail.test(err.message));
}

Deno.test("verifyToken() returns the claims of a valid token", async () => {
  const claims = await verifyToken(await sign({ sub: "u1", role: "authenticated", exp: now() + 60 }));
  assert.equal(claims.sub, "u1");
  assert.ok(isUser(claims));
});

Deno.test("verifyToken() refuses an expired token, a foreign signature and a token without role", async () => {
  await status401(verifyToken(await sign({ role: "anon", exp: now() - 1 })), /expired/);
  await status401(verifyToken(await sign({ role: "anon" }, "x".repeat(40))), /not a valid JWT/);
  await status401(verifyToken(await sign({ sub: "u1" })), /no role claim/);
});

Deno.test("authenticate() refuses a request without a bearer token", async () => {
  await status401(authenticate(new Request("http://x/")), /Missing Authorization/);
  await status401(authenticate(new Request("http://x/", { headers: { authorization: "Basic abc" } })), /Missing Authorization/);
});

Deno.test("isUser() is false for the anon and service_role keys", async () => {
  assert.equal(isUser(await verifyToken(await sign({ role: "service_role" }))), false);
  assert.equal(isUser(await verifyToken(await sign({ role: "anon" }))), false);
});
