/** Runs with SUPABASE_JWT_SECRET and SUPABASE_URL from npm test. */
import assert from "node:assert/strict";
import { decodeJwt, jwtVerify } from "jose";
import { encodeObjectPath, safeBasename, SIGNED_URL_SECONDS, signedUploadUrl, signUploadToken } from "./storage.ts";

Deno.test("safeBasename() refuses folders, parents and control characters", () => {
  for (const bad of ["../x", "..", ".", "a/b.wav", "a\\b.wav", "/etc/passwd", "x\u0000.wav", "x\n.wav", "...", "___", ""]) {
    assert.equal(safeBasename(bad), null, JSON.stringify(bad));
  }
});

Deno.test("safeBasename() keeps a plain name and makes any other one a valid key segment", () => {
  assert.equal(safeBasename("session-1.wav"), "session-1.wav");
  assert.equal(safeBasename("My Session (1).wav"), "My_Session__1_.wav");
  assert.equal(safeBasename("Café été.m4a"), "Cafe_ete.m4a");
  assert.equal(safeBasename(".hidden.json"), "hidden.json");
  const long = safeBasename(`${"a".repeat(300)}.json`)!;
  assert.equal(long.length, 100);
  assert.ok(long.endsWith(".json"));
  for (const name of ["录音.wav", "x?y#z%.txt", "a&b=c.ogg"]) assert.match(safeBasename(name)!, /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/);
});

Deno.test("signUploadToken() signs the Storage API's upload claims with the JWT secret, valid ten minutes", async () => {
  const now = Date.UTC(2026, 10, 24, 12, 0, 0);
  const { token, expiresAt } = await signUploadToken("session-media", "u/a/s/b/1/x.wav", "a11ce000-0000-4000-8000-000000000001", SIGNED_URL_SECONDS, now);
  const claims = decodeJwt(token);
  assert.deepEqual(claims, {
    owner: "a11ce000-0000-4000-8000-000000000001", url: "session-media/u/a/s/b/1/x.wav", upsert: false, scope: "upload",
    iat: now / 1000, exp: now / 1000 + 600,
  });
  assert.equal(expiresAt.getTime(), now + 600_000);
  const secret = new TextEncoder().encode(Deno.env.get("SUPABASE_JWT_SECRET")!);
  await jwtVerify(token, secret, { currentDate: new Date(now + 599_000) });
  await assert.rejects(jwtVerify(token, secret, { currentDate: new Date(now + 601_000) }), /exp/);
});

Deno.test("signedUploadUrl() encodes each segment of the path", () => {
  assert.equal(encodeObjectPath("u/a b/c"), "u/a%20b/c");
  assert.match(signedUploadUrl("session-media", "u/a/x y.wav", "t"), /\/storage\/v1\/object\/upload\/sign\/session-media\/u\/a\/x%20y\.wav\?token=t$/);
});
