/**
 * Batch ingestion benchmark: `npm run bench:batch` (options: --duration S, --batch N,
 * --clients N). Starts a throwaway stack (default durability: fsync on) with 1,000 users and
 * prints, side by side in one run, interactions per second for batches of N (100):
 *   1. the ceiling: a plain multi-row INSERT of N rows into coach_interactions (no RLS,
 *      triggers, checks or idempotency), pgbench; and, for reference, plain INSERTs of the
 *      three rows per interaction that the guarantees write (the interaction, its key record
 *      in private.interaction_requests, its broadcast in realtime.messages), in one statement;
 *   2. public.log_coach_interactions with N items as a coach_ingest token (every check,
 *      idempotency key, cost, the broadcast trigger), pgbench;
 *   3. POST /functions/v1/log-interaction/batch with N items from one coach_ingest token,
 *      `--clients` requests in flight at a time for `--duration` seconds: interactions/s and
 *      the latency of a request (p50/p95); once answered with every stored row, once with
 *      `Prefer: return=minimal` (ids only, what the SDK asks for);
 *   4. the SDK (sdk/): `--clients` ledgers, each logging N items and awaiting flush() in a
 *      loop (one request in flight per ledger, as the SDK sends).
 * Rate limits stay on (each batch takes N from its limit) with the bench stack's quotas
 * raised so that they count and refuse nothing.
 */
import { cpus, totalmem } from "node:os";
import postgres from "postgres";
import { ensureSystemPackages, signToken, startThrowawayStack, statusEnv } from "../local/stack.ts";
import { percentile, pgbench } from "./pgbench.ts";
import { createCoachLedger } from "../sdk/src/index.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const DURATION = opt("--duration", 15);
const BATCH = opt("--batch", 100);
const CLIENTS = opt("--clients", 8);
const USERS = 1000;
const userId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

const ms = (x: number) => `${x.toFixed(1)} ms`;
const per = (x: number) => Math.round(x).toLocaleString("en");


/** `clients` loops posting batches back to back for `seconds`. */
async function closedLoop(seconds: number, clients: number, send: () => Promise<Response>): Promise<{ requests: number; errors: number; p50: number; p95: number; elapsed: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const res = await send().catch(() => null);
      if (!res) {
        errors++;
        continue;
      }
      const body = await res.json().catch(() => null) as { created?: number } | null;
      latencies.push(performance.now() - t0);
      if (!res.ok || body?.created !== BATCH) errors++;
    }
  }));
  latencies.sort((a, b) => a - b);
  return { requests: latencies.length, errors, p50: percentile(latencies, 50), p95: percentile(latencies, 95), elapsed: (performance.now() - start) / 1000 };
}

async function main(): Promise<void> {
  ensureSystemPackages();
  const stack = await startThrowawayStack({ prefix: "coach-ledger-bench-batch", fast: false });
  const cfg = stack.cfg;
  const env = statusEnv(cfg);
  console.log(`# Batch ingestion benchmark\n\nmachine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, fsync on; batches of ${BATCH}`);
  const sql = postgres(env.DB_URL, { max: 2, onnotice: () => {} });
  try {
    await sql`insert into auth.users (id, email)
              select ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'bench' || n || '@example.com'
              from generate_series(1, ${USERS}) n`;
    await sql`update private.rate_limit_policies set quota = 1000000000 where endpoint = 'log-interaction'`;
    console.log("rate limits: log-interaction quotas raised to 1,000,000,000 per window for this stack (counted, never refused)");

    // The rows both SQL paths write: N AI replies for random users, each with a model and tokens.
    const items = `(select jsonb_agg(jsonb_build_object(
        'request_id', gen_random_uuid()::text,
        'user_id', '00000000-0000-4000-8000-' || lpad((1 + (random() * ${USERS - 1})::int)::text, 12, '0'),
        'sender', 'ai_coach', 'content', jsonb_build_object('text', 'Batch bench reply about the walk'),
        'model', 'gpt-4o-mini', 'prompt_tokens', 800, 'completion_tokens', 60, 'latency_ms', 900))
      from generate_series(1, ${BATCH}))`;
    await sql`alter table public.coach_interactions disable trigger coach_interactions_broadcast`;
    await sql`alter table public.coach_interactions disable trigger coach_interactions_check_bounds`;
    const raw = pgbench(cfg, "raw", `
insert into public.coach_interactions (user_id, request_id, sender, content, model, prompt_tokens, completion_tokens, latency_ms, actor_role)
select ('00000000-0000-4000-8000-' || lpad((1 + (random() * ${USERS - 1})::int)::text, 12, '0'))::uuid, gen_random_uuid()::text,
       'ai_coach', jsonb_build_object('text', 'Batch bench reply about the walk'), 'gpt-4o-mini', 800, 60, 900, 'postgres'
from generate_series(1, ${BATCH});
`, CLIENTS, DURATION);
    // The rows the guarantees write, with nothing else: an interaction, its key record and its
    // broadcast message (realtime.messages keeps the local stand-in's delivery trigger).
    const rows3 = pgbench(cfg, "rows3", `
with i as (
  insert into public.coach_interactions (user_id, request_id, sender, content, model, prompt_tokens, completion_tokens, latency_ms, actor_role)
  select ('00000000-0000-4000-8000-' || lpad((1 + (random() * ${USERS - 1})::int)::text, 12, '0'))::uuid, gen_random_uuid()::text,
         'ai_coach', jsonb_build_object('text', 'Batch bench reply about the walk'), 'gpt-4o-mini', 800, 60, 900, 'postgres'
  from generate_series(1, ${BATCH})
  returning *
), k as (
  insert into private.interaction_requests (user_id, actor_scope, request_id, interaction_id, payload_hash)
  select i.user_id, 'service', i.request_id, i.id, md5(i.request_id) || md5(i.request_id) from i
)
insert into realtime.messages (topic, extension, event, private, payload)
select 'coach_interactions:' || i.user_id, 'broadcast', 'INSERT', true,
       jsonb_build_object('old_record', null, 'record', to_jsonb(i), 'operation', 'INSERT', 'table', 'coach_interactions', 'schema', 'public', 'id', gen_random_uuid())
from i;
`, CLIENTS, DURATION);
    await sql`alter table public.coach_interactions enable trigger coach_interactions_broadcast`;
    await sql`alter table public.coach_interactions enable trigger coach_interactions_check_bounds`;
    const full = pgbench(cfg, "full", `
begin;
select set_config('role', 'coach_ingest', true), set_config('request.jwt.claims', '{"role": "coach_ingest"}', true);
select count(*) from public.log_coach_interactions(${items});
commit;
`, CLIENTS, DURATION);
    console.log(`\n## In SQL (pgbench, ${CLIENTS} clients, ${DURATION} s, ${BATCH} rows per transaction)\n`);
    console.log("| path | interactions/s | batch p50 | batch p95 | failed |\n| --- | --- | --- | --- | --- |");
    console.log(`| plain multi-row INSERT, no RLS/trigger/checks/idempotency (ceiling) | ${per(raw.tps * BATCH)} | ${ms(raw.p50)} | ${ms(raw.p95)} | ${raw.failed} |`);
    console.log(`| plain INSERTs of the 3 rows per interaction the guarantees write (interaction, key record, broadcast) | ${per(rows3.tps * BATCH)} | ${ms(rows3.p50)} | ${ms(rows3.p95)} | ${rows3.failed} |`);
    console.log(`| log_coach_interactions, full path | ${per(full.tps * BATCH)} | ${ms(full.p50)} | ${ms(full.p95)} | ${full.failed} |`);
    console.log(`\nfull path = ${((full.tps / raw.tps) * 100).toFixed(0)}% of the ceiling; the 3 rows alone = ${((rows3.tps / raw.tps) * 100).toFixed(0)}% of it, and the full path = ${((full.tps / rows3.tps) * 100).toFixed(0)}% of the 3 rows`);

    const ingest = await signToken({ iss: `${env.API_URL}/auth/v1`, role: "coach_ingest", exp: Math.floor(Date.now() / 1000) + 3600 });
    let seq = 0;
    const item = (i: number) => ({
      request_id: `hb-${seq++}-${crypto.randomUUID()}`, user_id: userId(1 + ((seq + i) % USERS)), sender: "ai_coach" as const,
      content: { text: "Batch bench reply about the walk" }, model: "gpt-4o-mini", prompt_tokens: 800, completion_tokens: 60, latency_ms: 900,
    });
    const sender = (prefer: Record<string, string>) => () =>
      fetch(`${env.FUNCTIONS_URL}/log-interaction/batch`, {
        method: "POST", headers: { authorization: `Bearer ${ingest}`, "content-type": "application/json", ...prefer },
        body: JSON.stringify({ items: Array.from({ length: BATCH }, (_, i) => item(i)) }),
      });
    await closedLoop(2, 2, sender({})); // warm-up
    console.log(`\n## POST /functions/v1/log-interaction/batch (one coach_ingest token, ${CLIENTS} requests in flight, ${DURATION} s)\n`);
    console.log("| answer | requests | interactions/s | request p50 | request p95 | errors | share of the ceiling | of the SQL path |\n| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const [name, prefer] of [["every stored row", {}], ["ids only (Prefer: return=minimal)", { prefer: "return=minimal" }]] as const) {
      const http = await closedLoop(DURATION, CLIENTS, sender(prefer));
      const rate = (http.requests * BATCH) / http.elapsed;
      console.log(`| ${name} | ${http.requests} | ${per(rate)} | ${ms(http.p50)} | ${ms(http.p95)} | ${http.errors} | ${((rate / (raw.tps * BATCH)) * 100).toFixed(0)}% | ${((rate / (full.tps * BATCH)) * 100).toFixed(0)}% |`);
    }

    // The SDK as an AI backend uses it: ledgers that log a batch's worth and flush, in a loop.
    const ledgers = Array.from({ length: CLIENTS }, () => createCoachLedger({ url: env.API_URL, key: ingest, flushAt: BATCH, flushIntervalMs: 60_000 }));
    let logged = 0;
    let lost = 0;
    const started = performance.now();
    const until = started + DURATION * 1000;
    await Promise.all(ledgers.map(async (ledger) => {
      while (performance.now() < until) {
        for (let i = 0; i < BATCH; i++) ledger.log(item(i));
        const result = await ledger.flush();
        logged += result.created;
        lost += result.refused + result.failed + result.dropped;
      }
    }));
    await Promise.all(ledgers.map((ledger) => ledger.shutdown()));
    const sdkRate = logged / ((performance.now() - started) / 1000);
    console.log(`\n## The SDK (${CLIENTS} ledgers, flushAt ${BATCH}, each logging ${BATCH} and awaiting flush() in a loop, ${DURATION} s)\n`);
    console.log(`${per(sdkRate)} interactions/s stored, ${lost} refused, failed or dropped; ${((sdkRate / (raw.tps * BATCH)) * 100).toFixed(0)}% of the ceiling`);
  } finally {
    await sql.end();
    await stack.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
