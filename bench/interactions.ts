/**
 * Interaction log benchmark: `npm run bench:interactions` (options: --seed-rows N,
 * --duration S, --skip-http). Starts a throwaway stack (default durability: fsync on),
 * seeds 1,000 users and 1,000,000 interactions (one user with 10,000), then prints, side by
 * side in one run:
 *   1. pgbench: log_coach_interaction with the full path (RLS role and claims, checks,
 *      idempotency, cost, broadcast trigger) vs a plain INSERT into the same table with no
 *      RLS, trigger or idempotency (the raw ceiling);
 *   2. log-interaction over HTTP at a constant 100 requests/s, then at rising rates until
 *      p95 reaches 50 ms: p50/p95/p99 and errors (latency measured from each request's
 *      scheduled time, so queueing counts); then the best rate again from one coach_ingest
 *      token (every request takes from the same rate-limit counter row);
 *   3. history (limit 100) for the user with 10,000 interactions over HTTP vs the same call
 *      run by pgbench.
 * Rate limits stay on (every log-interaction request takes from its limit, so their cost is
 * measured) but the bench stack's log-interaction quotas are raised so that nothing is
 * refused: 50 users at 1,500 requests/s are far over a user's default 120 per minute.
 */
import { cpus, totalmem } from "node:os";
import postgres from "postgres";
import { ensureSystemPackages, signToken, startThrowawayStack, statusEnv } from "../local/stack.ts";
import { percentile, pgbench } from "./pgbench.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const SEED_ROWS = opt("--seed-rows", 1_000_000);
const DURATION = opt("--duration", 15);
const USERS = 1000;
const HEAVY_USER_ROWS = 10_000;
const userId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

const ms = (x: number) => `${x.toFixed(1)} ms`;

async function seed(sql: postgres.Sql): Promise<void> {
  const t0 = performance.now();
  await sql`insert into auth.users (id, email)
            select ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'bench' || n || '@example.com'
            from generate_series(1, ${USERS}) n`;
  // The seed goes straight into the table (no broadcast: a million realtime rows would only
  // measure the seeding). User 1 gets HEAVY_USER_ROWS rows; the rest spread over the others.
  await sql`alter table public.coach_interactions disable trigger coach_interactions_broadcast`;
  await sql`insert into public.coach_interactions
              (user_id, request_id, sender, channel, coach_persona, content, model, latency_ms, prompt_tokens,
               completion_tokens, cost_usd, sentiment, created_at, actor_role)
            select case when k <= ${HEAVY_USER_ROWS} then ${userId(1)}::uuid
                        else ('00000000-0000-4000-8000-' || lpad((2 + k % ${USERS - 1})::text, 12, '0'))::uuid end,
                   'seed-' || k,
                   case when k % 2 = 0 then 'user' else 'ai_coach' end,
                   'chat', case when k % 2 = 1 then 'encourager' end,
                   jsonb_build_object('text', 'Seeded message ' || k || ' about sleep, steps and a morning walk.'),
                   case when k % 2 = 1 then 'gpt-4o-mini' end,
                   case when k % 2 = 1 then 400 + k % 900 end,
                   case when k % 2 = 1 then 300 + k % 500 end,
                   case when k % 2 = 1 then 50 + k % 200 end,
                   case when k % 2 = 1 then 0.0002 end,
                   ((k % 200) - 100) / 100.0,
                   now() - interval '90 days' + k * (interval '90 days' / ${SEED_ROWS}),
                   'postgres'
            from generate_series(1, ${SEED_ROWS}) k`;
  await sql`alter table public.coach_interactions enable trigger coach_interactions_broadcast`;
  await sql`analyze public.coach_interactions`;
  console.log(`seeded ${USERS} users and ${SEED_ROWS.toLocaleString("en")} interactions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}


interface LoadResult { rate: number; sent: number; ok: number; errors: number; p50: number; p95: number; p99: number; achieved: number }

/** Sends requests at a constant arrival rate for `seconds`; latency counts from the scheduled time. */
async function constantRate(rate: number, seconds: number, make: (i: number) => Promise<Response>): Promise<LoadResult> {
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(make(i).then(async (res) => {
      await res.arrayBuffer();
      latencies.push(performance.now() - due);
      res.ok ? ok++ : errors++;
    }, () => {
      latencies.push(performance.now() - due);
      errors++;
    }));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rate, sent: total, ok, errors, achieved: total / elapsed,
    p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99),
  };
}

async function main(): Promise<void> {
  ensureSystemPackages();
  const stack = await startThrowawayStack({ prefix: "coach-ledger-bench", fast: false });
  const cfg = stack.cfg;
  const env = statusEnv(cfg);
  console.log(`# Interaction log benchmark\n\nmachine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, fsync on`);
  const sql = postgres(env.DB_URL, { max: 2, onnotice: () => {} });
  try {
    await seed(sql);
    await sql`update private.rate_limit_policies set quota = 1000000000 where endpoint = 'log-interaction'`;
    console.log("rate limits: log-interaction quotas raised to 1,000,000,000 per window for this stack (counted, never refused)");

    // 1. The write path in SQL.
    const full = pgbench(cfg, "full", `
\\set uid random(2, ${USERS})
begin;
select set_config('role', 'authenticated', true),
       set_config('request.jwt.claims', json_build_object('sub', '00000000-0000-4000-8000-' || lpad(:uid::text, 12, '0'), 'role', 'authenticated')::text, true);
select public.log_coach_interaction(sender => 'user', content => '{"text": "pgbench message about my walk"}', request_id => gen_random_uuid()::text, sentiment => 0.3);
commit;
`, 8, DURATION);
    await sql`alter table public.coach_interactions disable trigger coach_interactions_broadcast`;
    const raw = pgbench(cfg, "raw", `
\\set uid random(2, ${USERS})
insert into public.coach_interactions (user_id, request_id, sender, content, sentiment, actor_role)
values (('00000000-0000-4000-8000-' || lpad(:uid::text, 12, '0'))::uuid, gen_random_uuid()::text, 'user', '{"text": "pgbench message about my walk"}', 0.3, 'postgres');
`, 8, DURATION);
    await sql`alter table public.coach_interactions enable trigger coach_interactions_broadcast`;
    console.log(`\n## Write path in SQL (pgbench, 8 clients, ${DURATION} s)\n`);
    console.log("| path | tx/s | p50 | p95 | p99 | failed |\n| --- | --- | --- | --- | --- | --- |");
    console.log(`| log_coach_interaction, full path | ${full.tps.toFixed(0)} | ${ms(full.p50)} | ${ms(full.p95)} | ${ms(full.p99)} | ${full.failed} |`);
    console.log(`| plain INSERT, no RLS/trigger/idempotency (ceiling) | ${raw.tps.toFixed(0)} | ${ms(raw.p50)} | ${ms(raw.p95)} | ${ms(raw.p99)} | ${raw.failed} |`);
    console.log(`\nfull path = ${((full.tps / raw.tps) * 100).toFixed(0)}% of the raw ceiling`);

    // The rate-limit take alone, all clients on one counter row (one ingest token): the hot row.
    const take = pgbench(cfg, "take", `
select allowed from private.take_rate_limit('log-interaction', '{"role": "coach_ingest", "iss": "supabase", "iat": 1}'::jsonb);
`, 8, DURATION);
    console.log(`\n## Rate-limit take, one counter row (pgbench, 8 clients, ${DURATION} s)\n`);
    console.log("| path | tx/s | p50 | p95 | p99 | failed |\n| --- | --- | --- | --- | --- | --- |");
    console.log(`| private.take_rate_limit, one ingest token | ${take.tps.toFixed(0)} | ${ms(take.p50)} | ${ms(take.p95)} | ${ms(take.p99)} | ${take.failed} |`);

    if (!args.includes("--skip-http")) {
      // 2. log-interaction over HTTP.
      const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) =>
        signToken({ iss: `${env.API_URL}/auth/v1`, sub: userId(2 + i), role: "authenticated", aud: "authenticated", exp: Math.floor(Date.now() / 1000) + 3600 })));
      const url = `${env.FUNCTIONS_URL}/log-interaction`;
      const body = JSON.stringify({ sender: "user", content: { text: "HTTP bench message about my walk" }, sentiment: 0.3 });
      const post = (i: number) => fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens[i % tokens.length]}`, "content-type": "application/json", "idempotency-key": `http-${i}-${crypto.randomUUID()}` },
        body,
      });
      await constantRate(50, 2, post); // warm-up
      console.log(`\n## log-interaction over HTTP (constant arrival rate, ${DURATION} s per rate)\n`);
      console.log("| rate (req/s) | achieved | ok | errors | p50 | p95 | p99 |\n| --- | --- | --- | --- | --- | --- | --- |");
      const row = (r: LoadResult) => console.log(`| ${r.rate} | ${r.achieved.toFixed(0)} | ${r.ok} | ${r.errors} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} |`);
      row(await constantRate(100, DURATION, post));
      let best = 100;
      for (const rate of [200, 300, 400, 500, 600, 800, 1000, 1200, 1500]) {
        const r = await constantRate(rate, DURATION, post);
        row(r);
        if (r.p95 >= 50 || r.errors > 0) break;
        best = rate;
      }
      console.log(`\nhighest tested rate with p95 under 50 ms and no errors: ${best} req/s`);

      // The same rate from one coach_ingest token, as an AI backend logs its replies.
      const ingest = await signToken({ iss: `${env.API_URL}/auth/v1`, role: "coach_ingest", exp: Math.floor(Date.now() / 1000) + 3600 });
      const aiBody = (i: number) => JSON.stringify({
        sender: "ai_coach", user_id: userId(2 + (i % 50)), content: { text: "HTTP bench reply about the walk" }, model: "gpt-4o-mini",
      });
      const postAi = (i: number) => fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${ingest}`, "content-type": "application/json", "idempotency-key": `ai-${i}-${crypto.randomUUID()}` },
        body: aiBody(i),
      });
      console.log(`\n## log-interaction from one coach_ingest token (${DURATION} s)\n`);
      console.log("| rate (req/s) | achieved | ok | errors | p50 | p95 | p99 |\n| --- | --- | --- | --- | --- | --- | --- |");
      row(await constantRate(best, DURATION, postAi));

      // 3. history for the user with 10,000 interactions.
      const heavy = await signToken({ iss: `${env.API_URL}/auth/v1`, sub: userId(1), role: "authenticated", aud: "authenticated", exp: Math.floor(Date.now() / 1000) + 3600 });
      const get = () => fetch(`${env.FUNCTIONS_URL}/history?limit=100`, { headers: { authorization: `Bearer ${heavy}` } });
      await constantRate(20, 2, get);
      const hist = await constantRate(50, DURATION, get);
      const histSql = pgbench(cfg, "history", `
begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"sub": "${userId(1)}", "role": "authenticated"}', true);
select count(*) from public.get_interaction_history(page_size => 100);
commit;
`, 1, DURATION);
      console.log(`\n## history, limit 100, user with ${HEAVY_USER_ROWS.toLocaleString("en")} interactions\n`);
      console.log("| path | rate | p50 | p95 | p99 |\n| --- | --- | --- | --- | --- |");
      console.log(`| GET /functions/v1/history (HTTP, 50 req/s) | ${hist.achieved.toFixed(0)} req/s | ${ms(hist.p50)} | ${ms(hist.p95)} | ${ms(hist.p99)} |`);
      console.log(`| get_interaction_history in SQL (pgbench, 1 client) | ${histSql.tps.toFixed(0)} tx/s | ${ms(histSql.p50)} | ${ms(histSql.p95)} | ${ms(histSql.p99)} |`);
    }
  } finally {
    await sql.end();
    await stack.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
