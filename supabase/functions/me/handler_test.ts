/** Runs against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { handler } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { ALICE, token } from "../_shared/testing/fixtures.ts";

function get(bearer?: string, method = "GET"): Request {
  return new Request("http://x/me", { method, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
}

Deno.test({
  name: "me handler",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    try {
      await t.step("handler() returns the signed-in user's profile", async () => {
        const res = await handler(get(await token({ sub: ALICE, role: "authenticated", email: "alice@example.com" })));
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.id, ALICE);
        assert.equal(body.email, "alice@example.com");
        assert.equal(body.profile.display_name, "Alice Archer");
        assert.match(res.headers.get("server-timing") ?? "", /db;dur=/);
      });
      await t.step("handler() returns 401 without a token", async () => {
        const res = await handler(get());
        assert.equal(res.status, 401);
        assert.equal(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
        await res.body?.cancel();
      });
      await t.step("handler() returns 404 for the service role and anon keys, which are no users", async () => {
        const res = await handler(get(await token({ role: "service_role" })));
        assert.equal(res.status, 404);
        assert.match((await res.json()).detail, /^A service_role token belongs to no user/);
        const anon = await handler(get(await token({ role: "anon" })));
        assert.equal(anon.status, 404);
        assert.match((await anon.json()).detail, /^An anon token belongs to no user/);
      });
      await t.step("handler() returns 404 for a user with no profile", async () => {
        const res = await handler(get(await token({ sub: crypto.randomUUID(), role: "authenticated" })));
        assert.equal(res.status, 404);
        assert.equal((await res.json()).detail, "The signed-in user has no profile.");
      });
      await t.step("handler() returns 405 for POST", async () => {
        const res = await handler(get(await token({ role: "anon" }), "POST"));
        assert.equal(res.status, 405);
        await res.body?.cancel();
      });
    } finally {
      await closeDb();
    }
  },
});
