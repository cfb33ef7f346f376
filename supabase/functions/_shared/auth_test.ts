import assert from "node:assert/strict";
import { authenticate, authIssuer, isUser, verifyToken } from "./auth.ts";
import { HttpError } from "./http.ts";
import { FOREIGN_SECRET, sign } from "./testing/fixtures.ts";

const SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";
Deno.env.set("SUPABASE_JWT_SECRET", SECRET);
if (!Deno.env.get("SUPABASE_URL")) Deno.env.set("SUPABASE_URL", "http://127.0.0.1:54321");

const now = () => Math.floor(Date.now() / 1000);
const USER = "a11ce000-0000-4000-8000-000000000001";
/** The claims GoTrue puts in a user's access token. */
const user = (extra: Record<string, unknown> = {}) => ({
  iss: authIssuer(), sub: USER, aud: "authenticated", role: "authenticated", iat: now(), exp: now() + 60, ...extra,
});

async function status401(p: Promise<unknown>, detail: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof HttpError && err.status === 401 && detail.test(err.message));
}

Deno.test("verifyToken() returns the claims of a valid user token", async () => {
  const claims = await verifyToken(await sign(user()));
  assert.equal(claims.sub, USER);
  assert.ok(isUser(claims));
});

Deno.test("verifyToken() accepts the API keys' issuers for the anon and service_role keys, and GoTrue's for any role", async () => {
  for (const role of ["anon", "service_role"]) {
    for (const iss of ["supabase", "supabase-demo", authIssuer()]) {
      assert.equal((await verifyToken(await sign({ iss, role, exp: now() + 60 }))).role, role);
    }
  }
  assert.equal((await verifyToken(await sign({ iss: authIssuer(), role: "coach_ingest", exp: now() + 60 }))).role, "coach_ingest");
});

Deno.test("verifyToken() refuses an expired token, a foreign signature and a token without role", async () => {
  await status401(verifyToken(await sign(user({ exp: now() - 1 }))), /expired/);
  await status401(verifyToken(await sign(user(), FOREIGN_SECRET)), /not a valid JWT/);
  await status401(verifyToken(await sign({ iss: "supabase", exp: now() + 60 })), /no role claim/);
});

Deno.test("verifyToken() refuses a token without exp, which would never expire", async () => {
  const { exp: _, ...noExp } = user();
  await status401(verifyToken(await sign(noExp)), /no expiry/);
  await status401(verifyToken(await sign({ iss: "supabase-demo", role: "service_role" })), /no expiry/);
});

Deno.test("verifyToken() refuses a token from another issuer", async () => {
  await status401(verifyToken(await sign(user({ iss: "https://evil.example/auth/v1" }))), /issuer/);
  await status401(verifyToken(await sign(user({ iss: undefined }))), /issuer/);
  await status401(verifyToken(await sign(user({ iss: "supabase" }))), /issuer/);
  await status401(verifyToken(await sign({ iss: "someone-else", role: "service_role", exp: now() + 60 })), /issuer/);
  await status401(verifyToken(await sign({ iss: "supabase", role: "coach_ingest", exp: now() + 60 })), /issuer/);
});

Deno.test("verifyToken() refuses a user token without aud authenticated or without a UUID sub (401, not 422)", async () => {
  await status401(verifyToken(await sign(user({ aud: "anon" }))), /audience/);
  await status401(verifyToken(await sign(user({ aud: undefined }))), /audience/);
  await status401(verifyToken(await sign(user({ sub: "admin" }))), /UUID subject/);
  await status401(verifyToken(await sign(user({ sub: undefined }))), /UUID subject/);
  const claims = await verifyToken(await sign(user({ aud: ["authenticated", "other"] })));
  assert.ok(isUser(claims));
});

Deno.test("authenticate() refuses a request without a bearer token", async () => {
  await status401(authenticate(new Request("http://x/")), /Missing Authorization/);
  await status401(authenticate(new Request("http://x/", { headers: { authorization: "Basic abc" } })), /Missing Authorization/);
});

Deno.test("isUser() is false for the anon and service_role keys", async () => {
  assert.equal(isUser(await verifyToken(await sign({ iss: "supabase-demo", role: "service_role", exp: now() + 60 }))), false);
  assert.equal(isUser(await verifyToken(await sign({ iss: "supabase-demo", role: "anon", exp: now() + 60 }))), false);
});
