/**
 * business-data against the test run's database: the document, the five-minute cache (miss,
 * hit, early invalidation by a write, never storing a document computed across a write),
 * partial failure of one section, access and bad input.
 */
import assert from "node:assert/strict";
import { handler, SECTION_TIMEOUT_MS } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, CAROL, request, token, userToken } from "../_shared/testing/fixtures.ts";

const admin = adminSql();
const TENANT = "7e4a0000-0000-4000-8000-000000000001";
const ACTION = "7e4a0000-ac71-4000-8000-000000000003";

async function clearCache(): Promise<void> {
  await admin`update private.business_data_cache set payload = null, computed_at = null where tenant_id = ${TENANT}`;
}

Deno.test({
  name: "business-data handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const get = (query: string, bearer = alice) => handler(request(`/business-data${query}`, { bearer }));
    const [{ status: actionStatus }] = await admin`select status from public.actions where id = ${ACTION}`;
    try {
      await t.step("a miss computes revenue, customers, operations and team from the tenant's tables and stores it", async () => {
        await clearCache();
        const res = await get(`?tenant_id=${TENANT}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("cache-status"), "coach-ledger; fwd=miss; stored");
        assert.equal(res.headers.get("cache-control"), "private, no-cache");
        assert.equal(res.headers.get("age"), "0");
        const body = await res.json();
        assert.deepEqual(body.warnings, []);
        const [figures] = await admin`select revenue_usd::float8 as revenue, customers from public.business_figures
                                      where tenant_id = ${TENANT} order by month desc limit 1`;
        assert.equal(body.revenue.latest, figures.revenue);
        assert.equal(body.revenue.months.length, 6);
        assert.equal(body.customers.customers, figures.customers);
        const [{ n }] = await admin`select count(*)::int as n from public.actions where tenant_id = ${TENANT}`;
        assert.equal(body.operations.actions.total, n);
        assert.ok(body.operations.actions.blocked.some((a: { title: string }) => a.title === "Fix the booking page on phones"));
        assert.ok(body.operations.issues.open_high_impact.length >= 2);
        assert.equal(body.operations.issues.open_high_impact[0].impact, "critical");
        assert.deepEqual(body.team.by_role, { owner: 1, coach: 1 });
        assert.equal(body.team.workload.length, 1, "coaches carry no workload");
      });

      await t.step("a hit within five minutes serves the stored document with its age", async () => {
        const first = await (await get(`?tenant_id=${TENANT}`)).json();
        await admin`update private.business_data_cache set computed_at = now() - interval '61 seconds' where tenant_id = ${TENANT}`;
        const res = await get(`?tenant_id=${TENANT}`);
        assert.match(res.headers.get("cache-status")!, /^coach-ledger; hit; ttl=23\d$/);
        assert.ok(Number(res.headers.get("age")) >= 61);
        assert.equal(res.headers.get("cache-control"), "private, no-cache");
        assert.deepEqual(await res.json(), first);
      });

      await t.step("an entry older than five minutes is a miss", async () => {
        await admin`update private.business_data_cache set computed_at = now() - interval '301 seconds' where tenant_id = ${TENANT}`;
        assert.equal((await get(`?tenant_id=${TENANT}`)).headers.get("cache-status"), "coach-ledger; fwd=miss; stored");
      });

      await t.step("a write to the tenant's data clears the entry at once", async () => {
        assert.match((await get(`?tenant_id=${TENANT}`)).headers.get("cache-status")!, /hit/);
        await admin.begin(async (tx) => {
          await tx`select set_config('role', 'authenticated', true),
                          set_config('request.jwt.claims', ${JSON.stringify({ sub: ALICE, role: "authenticated" })}, true)`;
          await tx`select public.set_action_status(${ACTION}::uuid, 'blocked')`;
        });
        const res = await get(`?tenant_id=${TENANT}`);
        assert.equal(res.headers.get("cache-status"), "coach-ledger; fwd=miss; stored");
        const body = await res.json();
        assert.ok(body.operations.actions.blocked.some((a: { id: string }) => a.id === ACTION));
      });

      await t.step("a section that fails is left out with a warning; the others are returned and nothing is cached", async () => {
        await clearCache();
        let release!: () => void;
        let locked!: () => void;
        const held = new Promise<void>((r) => release = r);
        const isLocked = new Promise<void>((r) => locked = r);
        const lock = admin.begin(async (tx) => {
          await tx`lock table public.business_issues in access exclusive mode`;
          locked();
          await held;
        });
        await isLocked;
        let res: Response;
        try {
          res = await get(`?tenant_id=${TENANT}`);
        } finally {
          release();
          await lock;
        }
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("cache-status"), "coach-ledger; fwd=miss; detail=partial");
        assert.equal(res.headers.get("cache-control"), "no-store");
        const body = await res.json();
        assert.equal(body.operations, null);
        assert.deepEqual(body.warnings, [{ section: "operations", detail: `The operations section took longer than ${SECTION_TIMEOUT_MS} ms and was left out.` }]);
        assert.ok(body.revenue && body.customers && body.team);
        const [{ payload }] = await admin`select payload from private.business_data_cache where tenant_id = ${TENANT}`;
        assert.equal(payload, null);
        assert.equal((await get(`?tenant_id=${TENANT}`)).headers.get("cache-status"), "coach-ledger; fwd=miss; stored");
      });

      await t.step("a document computed while a write to the tenant's data is committing is answered, not stored", async () => {
        await clearCache();
        let release!: () => void;
        let written!: () => void;
        const held = new Promise<void>((r) => release = r);
        const isWritten = new Promise<void>((r) => written = r);
        const writer = admin.begin(async (tx) => {
          await tx`update public.actions set title = title where id = ${ACTION}`;
          written();
          await held;
        });
        await isWritten;
        let res: Response;
        try {
          res = await get(`?tenant_id=${TENANT}`);
        } finally {
          release();
          await writer;
        }
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("cache-status"), "coach-ledger; fwd=miss; detail=changed");
        assert.equal(res.headers.get("cache-control"), "no-store");
        assert.deepEqual((await res.json()).warnings, []);
        assert.equal((await get(`?tenant_id=${TENANT}`)).headers.get("cache-status"), "coach-ledger; fwd=miss; stored");
      });

      await t.step("access: a coach reads, the service role reads, a stranger and an unknown tenant get 404, anon and ingest 403", async () => {
        assert.equal((await get(`?tenant_id=${TENANT}`, await userToken(CAROL))).status, 200);
        assert.equal((await get(`?tenant_id=${TENANT}`, await token({ role: "service_role" }))).status, 200);
        const bob = await get(`?tenant_id=${TENANT}`, await userToken(BOB));
        assert.equal(bob.status, 404);
        assert.equal((await get(`?tenant_id=${crypto.randomUUID()}`)).status, 404);
        assert.equal((await get(`?tenant_id=${TENANT}`, await token({ role: "anon" }))).status, 403);
        assert.equal((await get(`?tenant_id=${TENANT}`, await token({ role: "coach_ingest" }))).status, 403);
        assert.equal((await get(`?tenant_id=${TENANT}`, "")).status, 401);
      });

      await t.step("bad input: a missing or malformed tenant_id and unknown parameters are 422; POST is 405", async () => {
        const res = await get("?tenant_id=nope&extra=1");
        assert.equal(res.status, 422);
        assert.deepEqual((await res.json()).errors.map((e: { field: string }) => e.field).sort(), ["extra", "tenant_id"]);
        assert.equal((await get("")).status, 422);
        assert.equal((await handler(request("/business-data", { bearer: alice, body: {} }))).status, 405);
      });
    } finally {
      await admin`update public.actions set status = ${actionStatus} where id = ${ACTION}`;
      await admin.end();
      await closeDb();
    }
  },
});
