/**
 * Daily rollup benchmark: `npm run bench:rollup` (option --rows N, default 1,000,000).
 * Starts a throwaway stack, puts N interactions (1,000 users, four conversations each,
 * AI latencies, human replies, errors, personas) and one rating per 20 messages into one
 * UTC day, then times, in the same run, analytics.aggregate_interaction_metrics for that
 * day against a plain sequential scan of the same rows that computes nothing but a count
 * and two sums (the floor for reading the day once). Since issue 15 the day is also rolled
 * up incrementally: after the hours are built (analytics.refresh_interaction_metrics), it
 * times analytics.finalize_interaction_metrics (the nightly job: the day merged from its
 * hours; the target is within 2x of the scan) and one refresh after two minutes of traffic at
 * this volume (ROWS / 720 rows over all users, inserted and rolled back each run). Three runs
 * each; the median counts.
 */
import { cpus, totalmem } from "node:os";
import postgres from "postgres";
import { ensureSystemPackages, startThrowawayStack, statusEnv } from "../local/stack.ts";

const i = process.argv.indexOf("--rows");
const ROWS = i >= 0 ? Number(process.argv[i + 1]) : 1_000_000;
const DAY = "2026-03-10";

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  ensureSystemPackages();
  const stack = await startThrowawayStack({ prefix: "coach-ledger-bench-rollup", fast: false, gateway: false });
  const sql = postgres(statusEnv(stack.cfg).DB_URL, { max: 1, onnotice: () => {} });
  console.log(`# Daily rollup benchmark\n\nmachine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, fsync on`);
  try {
    const t0 = performance.now();
    await sql`insert into auth.users (id, email)
              select ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'rollup' || n || '@example.com'
              from generate_series(1, 1000) n`;
    await sql`alter table public.coach_interactions disable trigger coach_interactions_broadcast`;
    await sql`insert into public.coach_interactions
                (user_id, conversation_id, request_id, sender, coach_persona, content, model, latency_ms, prompt_tokens,
                 completion_tokens, cost_usd, status, error_code, created_at, actor_role)
              select ('00000000-0000-4000-8000-' || lpad((1 + k % 1000)::text, 12, '0'))::uuid,
                     md5('conv' || (k % 4000))::uuid, 'r-' || k,
                     (array['user', 'ai_coach', 'user', 'human_coach'])[1 + (k / 1000) % 4],
                     case when (k / 1000) % 4 in (1, 3) then (array['encourager', 'planner', 'challenger'])[1 + k % 3] end,
                     '{"text": "benchmark message"}',
                     case when (k / 1000) % 4 = 1 then 'gpt-4o-mini' end,
                     case when (k / 1000) % 4 = 1 then 300 + k % 1200 end,
                     case when (k / 1000) % 4 = 1 then 400 end, case when (k / 1000) % 4 = 1 then 80 end,
                     case when (k / 1000) % 4 = 1 then 0.0001 end,
                     case when k % 97 = 0 then 'error' else 'ok' end, case when k % 97 = 0 then 'llm_timeout' end,
                     ${DAY}::timestamptz + (k * (interval '86399 seconds' / ${ROWS})), 'postgres'
              from generate_series(1, ${ROWS}) k`;
    await sql`insert into public.interaction_events (user_id, kind, score, created_at, actor_role)
              select ('00000000-0000-4000-8000-' || lpad((1 + k % 1000)::text, 12, '0'))::uuid, 'rating', 1 + k % 5,
                     ${DAY}::timestamptz + (k * (interval '86399 seconds' / ${ROWS / 20})), 'postgres'
              from generate_series(1, ${ROWS / 20}) k`;
    await sql`vacuum analyze public.coach_interactions`;
    await sql`vacuum analyze public.interaction_events`;
    console.log(`seeded ${ROWS.toLocaleString("en")} interactions and ${(ROWS / 20).toLocaleString("en")} ratings into ${DAY} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

    const built = await timed(() => sql`select * from analytics.refresh_interaction_metrics(400)`);
    console.log(`hours built by the incremental rollup in ${(built / 1000).toFixed(1)} s\n`);
    const rollup: number[] = [];
    const scan: number[] = [];
    const finalize: number[] = [];
    const refresh: number[] = [];
    const burst = Math.round(ROWS / 720);
    for (let run = 0; run < 3; run++) {
      rollup.push(await timed(() => sql`select * from analytics.aggregate_interaction_metrics(${DAY}::date)`));
      finalize.push(await timed(() => sql`select * from analytics.finalize_interaction_metrics(${DAY}::date)`));
      // Two minutes of traffic at this volume, then the refresh pg_cron would run; rolled back.
      await sql.begin(async (tx) => {
        await tx`insert into public.coach_interactions (user_id, request_id, sender, content, latency_ms, created_at, actor_role)
                 select ('00000000-0000-4000-8000-' || lpad((1 + k % 1000)::text, 12, '0'))::uuid, 'burst-' || ${run} || '-' || k, 'ai_coach',
                        '{"text": "burst"}', 300 + k % 900, ${DAY}::timestamptz + interval '23 hours 58 minutes' + k * interval '100 ms', 'postgres'
                 from generate_series(1, ${burst}) k`;
        refresh.push(await timed(() => tx`select * from analytics.refresh_interaction_metrics()`));
        throw new Error("rolled back");
      }).catch((err: Error) => { if (err.message !== "rolled back") throw err; });
      scan.push(await timed(() => sql.begin(async (tx) => {
        await tx`set local enable_indexscan = off`;
        await tx`set local enable_bitmapscan = off`;
        await tx`select count(*), sum(latency_ms), sum(prompt_tokens) from public.coach_interactions
                 where created_at >= ${DAY}::timestamptz and created_at < ${DAY}::timestamptz + interval '1 day'`;
      })));
    }
    const [{ users, messages }] = await sql`select count(*)::int as users, sum(total_messages)::int as messages
                                            from analytics.coach_interaction_metrics where day = ${DAY}`;
    console.log("| what | run 1 | run 2 | run 3 | median |\n| --- | --- | --- | --- | --- |");
    const fmt = (xs: number[]) => xs.map((x) => `${(x / 1000).toFixed(2)} s`).join(" | ");
    console.log(`| aggregate_interaction_metrics('${DAY}') | ${fmt(rollup)} | ${(median(rollup) / 1000).toFixed(2)} s |`);
    console.log(`| sequential scan of the day (count and two sums) | ${fmt(scan)} | ${(median(scan) / 1000).toFixed(2)} s |`);
    console.log(`| finalize_interaction_metrics('${DAY}'): the nightly job, the day from its hours | ${fmt(finalize)} | ${(median(finalize) / 1000).toFixed(2)} s |`);
    console.log(`| refresh_interaction_metrics() after ${burst.toLocaleString("en")} new rows (two minutes at this volume) | ${fmt(refresh)} | ${(median(refresh) / 1000).toFixed(2)} s |`);
    console.log(`\nfrom raw / scan = ${(median(rollup) / median(scan)).toFixed(2)}x; nightly (finalize) / scan = ${(median(finalize) / median(scan)).toFixed(2)}x; the rollup wrote ${users} user rows covering ${messages.toLocaleString("en")} messages`);
    console.log(`a refresh every two minutes at this volume: ${((median(refresh) * 720) / 1000 / 60).toFixed(1)} min of one core per day`);
  } finally {
    await sql.end();
    await stack.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
