/** Runs against the test run's database (SUPABASE_DB_URL from npm test). */
import assert from "node:assert/strict";
import { closeDb, withServiceRole, withUser } from "./db.ts";
import { HttpError } from "./http.ts";

const ALICE = "a11ce000-0000-4000-8000-000000000001";

Deno.test({
  name: "db",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    try {
      await t.step("withUser() runs as authenticated with the caller's claims, so RLS applies", async () => {
        const rows = await withUser({ role: "authenticated", sub: ALICE }, (tx) =>
          tx`select current_user as role, auth.uid() as uid, (select count(*)::int from public.profiles) as visible`);
        assert.deepEqual([...rows], [{ role: "authenticated", uid: ALICE, visible: 1 }]);
      });
      await t.step("withUser() settings do not outlive the transaction", async () => {
        await withUser({ role: "authenticated", sub: ALICE }, (tx) => tx`select 1`);
        const rows = await withServiceRole((tx) => tx`select auth.uid() as uid`);
        assert.equal(rows[0].uid, null);
      });
      await t.step("withServiceRole() runs as service_role and sees every profile", async () => {
        const rows = await withServiceRole((tx) => tx`select current_user as role, (select count(*)::int from public.profiles) as n`);
        assert.equal(rows[0].role, "service_role");
        assert.ok(rows[0].n >= 3);
      });
      await t.step("withUser() refuses a token whose role is not an API role", async () => {
        await assert.rejects(
          withUser({ role: "postgres", sub: ALICE }, (tx) => tx`select 1`),
          (err: unknown) => err instanceof HttpError && err.status === 403 && /role postgres cannot call/.test(err.message),
        );
      });
      await t.step("withUser() rolls back everything when fn throws", async () => {
        await assert.rejects(withServiceRole(async (tx) => {
          await tx`update public.profiles set display_name = 'rolled back' where id = ${ALICE}`;
          throw new Error("abort");
        }), /abort/);
        const rows = await withServiceRole((tx) => tx`select display_name from public.profiles where id = ${ALICE}`);
        assert.notEqual(rows[0].display_name, "rolled back");
      });
    } finally {
      await closeDb();
    }
  },
});
