/**
 * Issue 11 end to end with supabase-js `functions.invoke`, as an app calls them: all eleven
 * AI coaching routes for the seed tenant (answered by the offline provider: the local stack
 * runs without a model key), the deprecated route's headers, a stranger's 404, and
 * business-data's cache (miss, hit, invalidation by a write through an RPC, partial
 * failure of one section).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import type { SupabaseClient } from "@supabase/supabase-js";
import { stack, userClient } from "../helpers.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
const TENANT = "7e4a0000-0000-4000-8000-000000000001";
const GOAL = "7e4a0000-60a1-4000-8000-000000000001";
const ISSUE = "7e4a0000-155e-4000-8000-000000000002";
const ACTION = "7e4a0000-ac71-4000-8000-000000000001";

const ROUTES: [string, Record<string, unknown>][] = [
  ["coaching/alignment-check", { tenant_id: TENANT, goal_id: GOAL }],
  ["coaching/alignment-explanation", { tenant_id: TENANT, goal_id: GOAL }],
  ["coaching/alignment-suggestions", { tenant_id: TENANT, goal_id: GOAL }],
  ["coaching/strategy-suggestions", { tenant_id: TENANT, goal_id: GOAL }],
  ["coaching/kpi-recommendations", { tenant_id: TENANT, goal_id: GOAL }],
  ["operations/strategic-alignment", { tenant_id: TENANT }],
  ["operations/prioritization-suggestions", { tenant_id: TENANT, action_ids: [ACTION] }],
  ["operations/scheduling-suggestions", { tenant_id: TENANT, hours_per_week: 10 }],
  ["operations/root-cause-suggestions", { tenant_id: TENANT, issue_id: ISSUE }],
  ["operations/action-suggestions", { tenant_id: TENANT, issue_id: ISSUE }],
  ["analysis/operations", { tenant_id: TENANT }],
];

let alice: SupabaseClient;
let bob: SupabaseClient;
let actionStatus: string;

beforeAll(async () => {
  alice = await userClient("alice@example.com");
  bob = await userClient("bob@example.com");
  [{ status: actionStatus }] = await sql<{ status: string }[]>`select status from public.actions where id = ${ACTION}`;
  await sql`delete from private.rate_limit_counters where endpoint = 'coaching-ai' and subject = ${"user:a11ce000-0000-4000-8000-000000000001"}`;
});
afterAll(async () => {
  await sql`update public.actions set status = ${actionStatus} where id = ${ACTION}`;
  await sql.end();
});

describe("coaching-ai", () => {
  it.each(ROUTES)("%s answers the seed tenant, offline, and logs the call", async (route, body) => {
    const { data, error, response } = await alice.functions.invoke(`coaching-ai/${route}`, { body });
    expect(error).toBeNull();
    expect(data).toMatchObject({ route, tenant_id: TENANT, model: "offline", prompt: { name: route, version: 1 }, cost_usd: null });
    expect(Object.keys(data.result).length).toBeGreaterThan(0);
    expect(response!.headers.has("deprecation")).toBe(route === "analysis/operations");
    const [row] = await sql`select i.channel, i.metadata ->> 'operation' as operation, c.route
                            from public.coach_interactions i join public.tenant_ai_calls c on c.interaction_id = i.id
                            where i.id = ${data.interaction_id}`;
    expect(row).toEqual({ channel: "api", operation: route, route });
  });

  it("the deprecated route names its successors", async () => {
    const { response } = await alice.functions.invoke("coaching-ai/analysis/operations", { body: { tenant_id: TENANT } });
    expect(response!.headers.get("sunset")).toBe("Mon, 31 May 2027 00:00:00 GMT");
    expect(response!.headers.get("link")).toContain("operations/root-cause-suggestions");
  });

  it("a stranger gets 404 for the tenant, not 403", async () => {
    const { error, response } = await bob.functions.invoke("coaching-ai/coaching/alignment-check", { body: { tenant_id: TENANT, goal_id: GOAL } });
    expect(error).not.toBeNull();
    expect(response!.status).toBe(404);
    expect((await response!.json()).detail).toMatch(/No tenant/);
  });

  it("serves its OpenAPI document", async () => {
    const { data } = await alice.functions.invoke("coaching-ai/openapi.json", { method: "GET" });
    expect(Object.keys(data.paths)).toHaveLength(11);
  });
});

describe("business-data", () => {
  const get = () => alice.functions.invoke(`business-data?tenant_id=${TENANT}`, { method: "GET" });

  it("misses, then hits, then misses again after a write to the tenant's actions", async () => {
    await sql`update private.business_data_cache set payload = null, computed_at = null where tenant_id = ${TENANT}`;
    const miss = await get();
    expect(miss.error).toBeNull();
    expect(miss.response!.headers.get("cache-status")).toBe("coach-ledger; fwd=miss; stored");
    expect(miss.data.warnings).toEqual([]);
    expect(miss.data.revenue.months).toHaveLength(6);
    const hit = await get();
    expect(hit.response!.headers.get("cache-status")).toMatch(/^coach-ledger; hit; ttl=\d+$/);
    expect(hit.data).toEqual(miss.data);
    const { error } = await alice.rpc("set_action_status", { action_id: ACTION, status: "blocked" });
    expect(error).toBeNull();
    const after = await get();
    expect(after.response!.headers.get("cache-status")).toBe("coach-ledger; fwd=miss; stored");
    expect(after.data.operations.actions.blocked.map((a: { id: string }) => a.id)).toContain(ACTION);
  });

  it("returns the other sections with a warning when one fails", async () => {
    await sql`update private.business_data_cache set payload = null, computed_at = null where tenant_id = ${TENANT}`;
    const reserved = await sql.reserve();
    try {
      await reserved`begin`;
      await reserved`lock table public.business_figures in access exclusive mode`;
      const { data, response } = await get();
      expect(response!.status).toBe(200);
      expect(response!.headers.get("cache-control")).toBe("no-store");
      expect(data.warnings.map((w: { section: string }) => w.section)).toEqual(["revenue", "customers", "team"]);
      expect(data.operations.goals.total).toBeGreaterThan(0);
    } finally {
      await reserved`rollback`;
      reserved.release();
    }
  });

  it("is 404 for a stranger", async () => {
    const { response } = await bob.functions.invoke(`business-data?tenant_id=${TENANT}`, { method: "GET" });
    expect(response!.status).toBe(404);
  });
});
