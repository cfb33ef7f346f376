/**
 * AI coaching benchmark: `npm run bench:ai` (options --requests N, default 200 per route;
 * --mix N, default 1,000 operations). Starts a throwaway stack (fsync on) whose functions
 * call a local OpenAI-compatible server that answers at once (each route's answer is the
 * offline provider's for the seed tenant, computed here from routes.ts), stops its pg_cron
 * jobs, and measures in the same run:
 *
 * 1. coaching-ai's own overhead per route: POST /functions/v1/coaching-ai/<route> as Alice
 *    through the gateway, one request at a time, p50/p95, with the model answering
 *    instantly (everything but the model: auth, validation, the context read as the caller,
 *    the rate limit, the prompt and budget read, the model client, the two log rows). Beside
 *    it, the bare call of the same RPC the route reads with: public.get_tenant_context as
 *    Alice over a direct connection (the floor any endpoint reading the data pays).
 * 2. business-data: a miss (the cache emptied before each request) vs a hit, p50/p95 over
 *    HTTP; and the hit ratio under a mix of 90% reads by the tenant's three members and
 *    10% writes to its data (an action's status or a month's figures), against the seed's
 *    target of more than 70%.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, totalmem } from "node:os";
import postgres from "postgres";
import { ensureSystemPackages, mintToken, startThrowawayStack, statusEnv } from "../local/stack.ts";
import { ROUTES } from "../supabase/functions/coaching-ai/routes.ts";
import type { TenantContext } from "../supabase/functions/coaching-ai/context.ts";

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const REQUESTS = option("--requests", 200);
const MIX = option("--mix", 1000);
const TENANT = "7e4a0000-0000-4000-8000-000000000001";
const ALICE = "a11ce000-0000-4000-8000-000000000001";

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function latencies(n: number, fn: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
  for (let i = 0; i < Math.min(20, n); i++) await fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  xs.sort((a, b) => a - b);
  return { p50: percentile(xs, 50), p95: percentile(xs, 95) };
}

const ms = (x: number) => x.toFixed(1).padStart(7);

/** An OpenAI-compatible server that answers every chat completion at once from `answers` (by schema name). */
function instantModel(answers: Map<string, string>): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => raw += c);
    req.on("end", () => {
      const body = JSON.parse(raw);
      const content = answers.get(body.response_format.json_schema.name) ?? "{}";
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({
        id: "chatcmpl-bench", object: "chat.completion", created: Math.floor(Date.now() / 1000), model: body.model,
        choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content } }],
        usage: { prompt_tokens: 900, completion_tokens: 250, total_tokens: 1150 },
      }));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, close: () => server.close() })));
}

async function main(): Promise<void> {
  ensureSystemPackages();
  const answers = new Map<string, string>();
  const model = await instantModel(answers);
  Object.assign(process.env, { OPENAI_API_KEY: "bench", OPENAI_BASE_URL: model.url, OPENAI_MODEL: "gpt-4o-mini" });
  const stack = await startThrowawayStack({ prefix: "coach-ledger-bench-ai", fast: false });
  const env = statusEnv(stack.cfg);
  const sql = postgres(env.DB_URL, { max: 2, onnotice: () => {} });
  console.log(`# AI coaching benchmark\n\nmachine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, fsync on`);
  try {
    await sql`select cron.unschedule(jobname) from cron.job`;
    // Count every call, refuse none; a budget no run reaches.
    await sql`update private.rate_limit_policies set quota = 100000000 where endpoint = 'coaching-ai'`;
    await sql`update public.tenants set monthly_ai_budget_usd = 1000000 where id = ${TENANT}`;
    const asAlice = <T>(fn: (tx: postgres.TransactionSql) => Promise<T>) =>
      sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true),
                        set_config('request.jwt.claims', ${JSON.stringify({ sub: ALICE, role: "authenticated" })}, true)`;
        return await fn(tx);
      });
    const [{ context }] = await asAlice((tx) => tx`select public.get_tenant_context(${TENANT}::uuid) as context`);
    for (const r of ROUTES) {
      answers.set(r.name.replace(/[^a-z0-9]+/g, "_"), JSON.stringify(r.prepare(context as TenantContext, r.example).offline()));
    }

    const token = await mintToken(stack.cfg, { email: "alice@example.com" });
    const headers = { apikey: env.ANON_KEY, authorization: `Bearer ${token}`, "content-type": "application/json" };
    const rpc = await latencies(REQUESTS, () => asAlice((tx) => tx`select public.get_tenant_context(${TENANT}::uuid)`));
    console.log(`\n## coaching-ai overhead per route (model answers instantly), ${REQUESTS} requests each, one at a time\n`);
    console.log(`| route | HTTP p50 ms | HTTP p95 ms | p95 / bare RPC p95 |\n| --- | ---: | ---: | ---: |`);
    for (const r of ROUTES) {
      const url = `${env.API_URL}/functions/v1/coaching-ai/${r.name}`;
      const body = JSON.stringify(r.example);
      const probe = await fetch(url, { method: "POST", headers, body });
      const answer = await probe.json();
      if (probe.status !== 200 || answer.model !== "gpt-4o-mini") throw new Error(`${r.name}: ${probe.status} ${JSON.stringify(answer).slice(0, 300)}`);
      const l = await latencies(REQUESTS, async () => {
        const res = await fetch(url, { method: "POST", headers, body });
        if (res.status !== 200) throw new Error(`${r.name}: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      });
      console.log(`| ${r.name} | ${ms(l.p50)} | ${ms(l.p95)} | ${(l.p95 / rpc.p95).toFixed(1)}x |`);
    }
    console.log(`| bare RPC: get_tenant_context as Alice (direct connection) | ${ms(rpc.p50)} | ${ms(rpc.p95)} | 1.0x |`);

    const bd = `${env.API_URL}/functions/v1/business-data?tenant_id=${TENANT}`;
    const read = async (bearer = token) => {
      const res = await fetch(bd, { headers: { apikey: env.ANON_KEY, authorization: `Bearer ${bearer}` } });
      if (res.status !== 200) throw new Error(`business-data: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      return res.headers.get("cache-status") ?? "";
    };
    // Misses: the entry is cleared before each request (not timed).
    const missOnly: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      await sql`update private.business_data_cache set payload = null, computed_at = null where tenant_id = ${TENANT}`;
      const t0 = performance.now();
      await read();
      missOnly.push(performance.now() - t0);
    }
    missOnly.sort((a, b) => a - b);
    await read();
    const hit = await latencies(REQUESTS, async () => {
      if (!(await read()).includes("hit")) throw new Error("expected a hit");
    });
    console.log(`\n## business-data, ${REQUESTS} requests each, one at a time\n`);
    console.log(`| case | p50 ms | p95 ms |\n| --- | ---: | ---: |`);
    console.log(`| miss (computed: four sections, then stored) | ${ms(percentile(missOnly, 50))} | ${ms(percentile(missOnly, 95))} |`);
    console.log(`| hit (served from private.business_data_cache) | ${ms(hit.p50)} | ${ms(hit.p95)} |`);
    console.log(`| hit p95 / miss p95 | | ${(hit.p95 / percentile(missOnly, 95)).toFixed(2)} |`);

    // The mix: three members read; one operation in ten is a write to the tenant's data.
    await sql`insert into public.tenant_members (tenant_id, user_id, role) values
              (${TENANT}, 'b0b00000-0000-4000-8000-000000000002', 'member') on conflict do nothing`;
    const readers = [token, await mintToken(stack.cfg, { email: "bob@example.com" }), await mintToken(stack.cfg, { email: "carol@example.com" })];
    let state = 0;
    let hits = 0;
    let reads = 0;
    let writes = 0;
    const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < MIX; i++) {
      if (random() < 0.1) {
        writes++;
        await asAlice((tx) => tx`select public.set_action_status('7e4a0000-ac71-4000-8000-000000000001', ${random() < 0.5 ? "todo" : "in_progress"})`);
      } else {
        reads++;
        if ((await read(readers[Math.floor(random() * readers.length)])).includes("hit")) hits++;
      }
    }
    console.log(`\n## business-data hit ratio under a mix of ${MIX} operations (90% reads by three members, 10% writes)\n`);
    console.log(`reads ${reads}, writes ${writes}, hits ${hits}: hit ratio ${(100 * hits / reads).toFixed(1)}% (seed target > 70%)`);
  } finally {
    await sql.end();
    model.close();
    await stack.dispose();
  }
}

await main();
