/** Runs against the test run's database (SUPABASE_DB_URL from npm test). */
import assert from "node:assert/strict";
import {
  apiRoleSettings, callerOf, closeDb, CONSTRAINT_FIELDS, PER_TOKEN_MAX, PER_USER_MAX, POOL_MAX, toHttpError, withServiceRole, withUser,
} from "./db.ts";
import { HttpError } from "./http.ts";
import { adminSql, withDatabaseDown } from "./testing/fixtures.ts";

const ALICE = "a11ce000-0000-4000-8000-000000000001";
const BOB = "b0b00000-0000-4000-8000-000000000002";
const alice = { role: "authenticated", sub: ALICE };

function isHttp(status: number, detail?: RegExp) {
  return (err: unknown) => err instanceof HttpError && err.status === status && (!detail || detail.test(err.message));
}

Deno.test({
  name: "db",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const admin = adminSql();
    try {
      await t.step("withUser() runs as authenticated with the caller's claims, so RLS applies", async () => {
        const rows = await withUser(alice, (tx) =>
          tx`select current_user as role, auth.uid() as uid, (select count(*)::int from public.profiles) as visible`);
        assert.deepEqual([...rows], [{ role: "authenticated", uid: ALICE, visible: 1 }]);
      });
      await t.step("withUser() applies the role and claims before an async fn's first awaited query", async () => {
        const first = await withUser(alice, async (tx) => (await tx`select current_user as role, auth.uid() as uid`)[0]);
        assert.deepEqual({ ...first }, { role: "authenticated", uid: ALICE });
        const service = await withServiceRole(async (tx) => (await tx`select current_user as role`)[0].role);
        assert.equal(service, "service_role");
      });
      await t.step("withUser() settings do not outlive the transaction", async () => {
        await withUser(alice, (tx) => tx`select 1`);
        const rows = await withServiceRole((tx) => tx`select auth.uid() as uid`);
        assert.equal(rows[0].uid, null);
      });
      await t.step("withServiceRole() runs as service_role and sees every profile", async () => {
        const rows = await withServiceRole((tx) => tx`select current_user as role, (select count(*)::int from public.profiles) as n`);
        assert.equal(rows[0].role, "service_role");
        assert.ok(rows[0].n >= 3);
      });
      await t.step("withUser() refuses a token whose role is not an API role", async () => {
        await assert.rejects(withUser({ role: "postgres", sub: ALICE }, (tx) => tx`select 1`), isHttp(403, /role postgres cannot call/));
      });
      await t.step("withUser() rolls back everything when fn throws", async () => {
        await assert.rejects(withServiceRole(async (tx) => {
          await tx`update public.profiles set display_name = 'rolled back' where id = ${ALICE}`;
          throw new Error("abort");
        }), /abort/);
        const rows = await withServiceRole((tx) => tx`select display_name from public.profiles where id = ${ALICE}`);
        assert.notEqual(rows[0].display_name, "rolled back");
      });

      await t.step("each role's transaction carries its statement timeout, read from the roles as PostgREST does", async () => {
        const timeout = (rows: readonly { t: string }[]) => rows[0].t;
        const show = "select current_setting('statement_timeout') as t";
        assert.equal(timeout(await withUser({ role: "anon" }, (tx) => tx.unsafe(show))), "3s");
        assert.equal(timeout(await withUser(alice, (tx) => tx.unsafe(show))), "8s");
        assert.equal(timeout(await withUser({ role: "coach_ingest" }, (tx) => tx.unsafe(show))), "8s");
        // service_role has no timeout of its own: the authenticator's applies, as behind PostgREST.
        assert.equal(timeout(await withServiceRole((tx) => tx.unsafe(show))), "8s");
        // Second, independent view: what was read from pg_roles, next to the roles themselves.
        const settings = await apiRoleSettings();
        const [roles] = await admin`
          select (select rolconfig from pg_roles where rolname = 'anon') as anon,
                 (select rolconfig from pg_roles where rolname = 'service_role') as service,
                 (select rolconfig from pg_roles where rolname = 'authenticator') as authenticator`;
        assert.ok((roles.anon as string[]).includes(`statement_timeout=${settings.get("anon")?.statement_timeout}`));
        assert.equal((roles.service as string[] | null)?.some((s) => s.startsWith("statement_timeout=")) ?? false, false);
        assert.ok((roles.authenticator as string[]).includes(`statement_timeout=${settings.get("service_role")?.statement_timeout}`));
      });
      await t.step("the timeout does not outlive the transaction, and a statement over it answers 504", async () => {
        const [{ t: outside }] = await admin`select current_setting('statement_timeout') as t`;
        assert.equal(outside, "0");
        await assert.rejects(withUser(alice, (tx) => tx`select pg_sleep(5)`, { statementTimeout: "50ms" }), isHttp(504, /statement timeout/));
        const rows = await withUser(alice, (tx) => tx`select current_setting('statement_timeout') as t`);
        assert.equal(rows[0].t, "8s");
      });

      await t.step("one user's overlapping slow calls hold at most their share of the pool, and another user's call goes through", async () => {
        const LOCK = 80_424_242;
        const holder = await admin.reserve();
        const events: string[] = [];
        const outcomes: (string | undefined)[] = [];
        let calls: Promise<void>[] = [];
        try {
          // The barrier: Alice's calls block on a lock the test holds, so they overlap for sure.
          await holder`select pg_advisory_lock(${LOCK})`;
          const n = POOL_MAX + 2;
          calls = Array.from({ length: n }, (_, i) =>
            withUser(alice, (tx) => tx`select pg_advisory_xact_lock_shared(${LOCK})`).then(
              () => {
                outcomes[i] = "ok";
                events.push("alice ok");
              },
              (err) => {
                outcomes[i] = err instanceof HttpError ? `${err.status} ${err.headers?.["Retry-After"] ?? ""}`.trim() : String(err);
              },
            ));
          const blocked = async () => {
            const [{ n }] = await admin`select count(*)::int as n from pg_stat_activity
              where application_name = 'coach-ledger-functions' and wait_event_type = 'Lock'
                and query like '%pg_advisory_xact_lock_shared%'`;
            return n as number;
          };
          for (let i = 0; await blocked() < PER_USER_MAX; i++) {
            assert.ok(i < 1000, "Alice's first calls never reached the lock");
            await new Promise((r) => setTimeout(r, 10));
          }

          const bob = await withUser({ role: "authenticated", sub: BOB }, (tx) => tx`select auth.uid() as uid`);
          events.push("bob ok");
          assert.equal(bob[0].uid, BOB);
          assert.deepEqual(events, ["bob ok"], "Bob's call finished while all of Alice's were still waiting");
          assert.equal(await blocked(), PER_USER_MAX, `Alice holds exactly ${PER_USER_MAX} connections, not the pool`);

          // Alice's calls beyond her share wait a bounded time for one of her own, then 429.
          for (let i = 0; outcomes.filter(Boolean).length < n - PER_USER_MAX; i++) {
            assert.ok(i < 1000, "Alice's queued calls never gave up");
            await new Promise((r) => setTimeout(r, 10));
          }
          assert.deepEqual(outcomes.filter(Boolean), Array(n - PER_USER_MAX).fill("429 1"));
        } finally {
          await holder`select pg_advisory_unlock(${LOCK})`;
          holder.release();
          await Promise.all(calls);
        }
        assert.equal(outcomes.filter((o) => o === "ok").length, PER_USER_MAX, "Alice's admitted calls finish once the lock is free");
        assert.deepEqual(events.slice(0, 1), ["bob ok"]);
      });

      await t.step("a user is one caller across tokens; a role token is a caller of its own, with a larger share", () => {
        const a1 = callerOf({ role: "authenticated", sub: ALICE, session_id: "s1" });
        const a2 = callerOf({ role: "authenticated", sub: ALICE, session_id: "s2" });
        assert.deepEqual(a1, a2);
        assert.equal(a1.max, PER_USER_MAX);
        const i1 = callerOf({ role: "coach_ingest", iat: 1, exp: 2 });
        const i2 = callerOf({ role: "coach_ingest", iat: 3, exp: 4 });
        assert.notEqual(i1.key, i2.key);
        assert.equal(i1.max, PER_TOKEN_MAX);
        assert.ok(PER_USER_MAX < PER_TOKEN_MAX && PER_TOKEN_MAX < POOL_MAX);
      });
      await t.step("a named constraint becomes a field error through the explicit map", () => {
        const err = toHttpError({ code: "23514", message: "violates check", constraint_name: "coach_interactions_sentiment_range" });
        assert.ok(err instanceof HttpError && err.status === 422);
        assert.deepEqual(err.errors, [{ field: "sentiment", message: "violates check" }]);
        const fk = toHttpError({ code: "23503", message: "no such session", constraint_name: "coach_interactions_session_id_fkey" });
        assert.deepEqual((fk as HttpError).errors, [{ field: "session_id", message: "no such session" }]);
        const unknown = toHttpError({ code: "23514", message: "violates check", constraint_name: "some_table_thing_range" });
        assert.ok(unknown instanceof HttpError && unknown.status === 422 && unknown.errors === undefined);
      });
      await t.step("a socket error of the runtime is the database going away (503); a server error or a file error is not", () => {
        const epipe = Object.assign(new Error("write EPIPE"), { code: "EPIPE", errno: -32, syscall: "write" });
        assert.ok(isHttp(503)(toHttpError(epipe)));
        assert.ok(isHttp(503)(toHttpError(Object.assign(new Error("aborted"), { code: "ECONNABORTED" }))));
        const server = { code: "EPIPE", severity: "ERROR", message: "a custom SQLSTATE" };
        assert.equal(toHttpError(server), server);
        // A file or argument error is a bug of ours (500, logged), not an outage.
        const notFound = Object.assign(new Error("no such file"), { code: "ENOENT", syscall: "open" });
        assert.equal(toHttpError(notFound), notFound);
      });
      await t.step("every check and foreign key constraint of coach_interactions has a field in the map", async () => {
        const rows = await admin`select conname from pg_constraint
          where conrelid = 'public.coach_interactions'::regclass and contype in ('c', 'f')
            and conname <> 'coach_interactions_actor_role_known'`;
        const missing = rows.map((r) => r.conname as string).filter((c) => !(c in CONSTRAINT_FIELDS));
        assert.deepEqual(missing, [], "add these constraints to CONSTRAINT_FIELDS in _shared/db.ts");
      });

      await t.step("a database that accepts connections but never answers gives 503 with Retry-After (connect timeout)", async () => {
        await withDatabaseDown(closeDb, async () => {
          await assert.rejects(withUser(alice, (tx) => tx`select 1`),
            (err: unknown) => isHttp(503)(err) && (err as HttpError).headers?.["Retry-After"] === "1");
        }, "silent");
      });
    } finally {
      await closeDb();
      await admin.end();
    }
  },
});
