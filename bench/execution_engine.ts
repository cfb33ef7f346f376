/**
 * Execution engine benchmark: `npm run bench:engine` (options --requests N, default 500;
 * --users N, default 100,000). Starts a throwaway stack (fsync on), stops its pg_cron jobs
 * so that nothing runs beside the measurements, and measures in the same run:
 *
 * 1. The game plan of a user with 200 applications, one request at a time, as p50/p95:
 *    GET /functions/v1/game-plan over HTTP (the user's token, through the gateway), the RPC
 *    public.get_game_plan over a direct connection, and the raw-SQL ceiling: one plain
 *    query reading the same rows (the user's applications with their opportunities, due
 *    check-ins, awarded amounts) and ranking them, with no function, no auth and no JSON.
 * 2. One nudge-scheduler run over N users (two applications each over a catalogue of 1,000
 *    opportunities, deadlines spread over 40 days, every fifth user stalled, every tenth
 *    with a due check-in): private.run_nudge_scheduler at a fixed clock, rolled back after
 *    each of three runs, against the raw-SQL ceiling of the same reads (the deadline
 *    candidates and each user's top application, counted) and of the same writes (a plain
 *    insert of as many notification_log rows). Medians of three.
 */
import { cpus, totalmem } from "node:os";
import postgres from "postgres";
import { ensureSystemPackages, mintToken, startThrowawayStack, statusEnv } from "../local/stack.ts";

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const REQUESTS = option("--requests", 500);
const USERS = option("--users", 100_000);
const AT = "2031-03-01 12:00+00";
const PLAN_USER = "b0b00000-0000-4000-8000-000000000002";

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function latencies(n: number, fn: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
  for (let i = 0; i < Math.min(50, n); i++) await fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await timed(fn));
  xs.sort((a, b) => a - b);
  return { p50: percentile(xs, 50), p95: percentile(xs, 95) };
}

async function main(): Promise<void> {
  ensureSystemPackages();
  const stack = await startThrowawayStack({ prefix: "coach-ledger-bench-engine", fast: false });
  const env = statusEnv(stack.cfg);
  const sql = postgres(env.DB_URL, { max: 2, onnotice: () => {} });
  console.log(`# Execution engine benchmark\n\nmachine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, fsync on`);
  try {
    await sql`select cron.unschedule(jobname) from cron.job`;

    // 1. Bob's game plan with 200 applications of his own (deadlines over 60 days, 20 submitted with check-ins).
    await sql`
      with o as (
        insert into public.opportunities (owner_id, title, provider, amount, deadline, trust_score, application_type)
        select ${PLAN_USER}::uuid, 'Pursuit ' || k, 'Provider ' || k % 17, 500 + k * 10, now() + k * interval '7 hours',
               (k % 10) / 10.0, (array['essay', 'form', 'mixed'])[1 + k % 3]
        from generate_series(1, 200) k
        returning id, amount
      )
      insert into public.applications (user_id, opportunity_id, status, submitted_at, last_progress_at)
      select ${PLAN_USER}::uuid, o.id, case when row_number() over () <= 20 then 'submitted'::public.application_status else 'draft' end,
             case when row_number() over () <= 20 then now() - interval '30 days' end, now() - interval '3 days'
      from o`;
    await sql`insert into public.check_in_tasks (user_id, application_id, due_at)
              select user_id, id, submitted_at + interval '21 days' from public.applications
              where user_id = ${PLAN_USER} and status = 'submitted' on conflict do nothing`;
    await sql`vacuum analyze public.applications`;
    await sql`vacuum analyze public.opportunities`;
    const token = await mintToken(stack.cfg, { email: "bob@example.com" });
    const url = `${env.API_URL}/functions/v1/game-plan`;
    const headers = { apikey: env.ANON_KEY, authorization: `Bearer ${token}` };
    const probe = await (await fetch(url, { headers })).json();
    if (!Array.isArray(probe.top) || probe.top.length !== 3) throw new Error(`unexpected plan: ${JSON.stringify(probe).slice(0, 200)}`);

    const http = await latencies(REQUESTS, async () => {
      const res = await fetch(url, { headers });
      if (res.status !== 200) throw new Error(`game-plan answered ${res.status}`);
      await res.arrayBuffer();
    });
    const rpc = await latencies(REQUESTS, () => sql`select public.get_game_plan(user_id => ${PLAN_USER}::uuid)`);
    const raw = await latencies(REQUESTS, () => sql`
      select (select array_agg(id) from (
                select a.id from public.applications a join public.opportunities o on o.id = a.opportunity_id
                where a.user_id = ${PLAN_USER} and a.status = 'draft' and o.deadline >= now()
                order by (greatest(0, least(1, 1 - extract(epoch from o.deadline - now()) / 2592000)) * 0.6 + o.trust_score * 0.4) desc,
                         o.deadline, o.amount desc
                limit 3) t),
             (select count(*) from public.check_in_tasks c where c.user_id = ${PLAN_USER} and c.status = 'pending' and c.due_at <= now()),
             (select coalesce(sum(o.amount), 0) from public.applications a join public.opportunities o on o.id = a.opportunity_id
              where a.user_id = ${PLAN_USER} and a.status = 'awarded' and a.confirmed_at is not null)`);
    console.log(`\n## Game plan, one user with 200 applications (${REQUESTS} sequential requests each)\n`);
    console.log("| path | p50 | p95 |\n| --- | --- | --- |");
    console.log(`| GET /functions/v1/game-plan over HTTP | ${http.p50.toFixed(2)} ms | ${http.p95.toFixed(2)} ms |`);
    console.log(`| select public.get_game_plan(...) on a direct connection | ${rpc.p50.toFixed(2)} ms | ${rpc.p95.toFixed(2)} ms |`);
    console.log(`| raw-SQL ceiling: one plain query over the same rows | ${raw.p50.toFixed(2)} ms | ${raw.p95.toFixed(2)} ms |`);
    console.log(`\nHTTP p95 / RPC p95 = ${(http.p95 / rpc.p95).toFixed(2)}x; RPC p95 / raw p95 = ${(rpc.p95 / raw.p95).toFixed(2)}x (target: HTTP p95 < 20 ms)`);

    // 2. One scheduler run over USERS users.
    const t0 = performance.now();
    await sql`insert into auth.users (id, email, email_confirmed_at)
              select ('00000000-0000-4000-a000-' || lpad(n::text, 12, '0'))::uuid, 'engine' || n || '@example.com', now()
              from generate_series(1, ${USERS}) n`;
    await sql`insert into public.opportunities (id, title, provider, amount, deadline, trust_score, application_type)
              select ('00000000-0000-4000-b000-' || lpad(k::text, 12, '0'))::uuid, 'Catalogue ' || k, 'Provider', 1000 + k,
                     ${AT}::timestamptz + k * interval '58 minutes', (k % 10) / 10.0, (array['essay', 'form', 'mixed'])[1 + k % 3]
              from generate_series(1, 1000) k`;
    await sql`insert into public.applications (user_id, opportunity_id, status, submitted_at, last_progress_at)
              select ('00000000-0000-4000-a000-' || lpad(n::text, 12, '0'))::uuid,
                     ('00000000-0000-4000-b000-' || lpad((1 + (n * 7 + j * 389) % 1000)::text, 12, '0'))::uuid,
                     case when j = 1 and n % 10 = 0 then 'submitted'::public.application_status else 'draft' end,
                     case when j = 1 and n % 10 = 0 then ${AT}::timestamptz - interval '25 days' end,
                     case when n % 5 = 0 then ${AT}::timestamptz - interval '3 days' else ${AT}::timestamptz - interval '1 hour' end
              from generate_series(1, ${USERS}) n, generate_series(1, 2) j`;
    await sql`insert into public.check_in_tasks (user_id, application_id, due_at)
              select user_id, id, submitted_at + interval '21 days' from public.applications
              where status = 'submitted' and submitted_at is not null on conflict do nothing`;
    for (const t of ["auth.users", "public.profiles", "public.opportunities", "public.applications", "public.check_in_tasks"]) {
      await sql.unsafe(`vacuum analyze ${t}`);
    }
    console.log(`\nseeded ${USERS.toLocaleString("en")} users with ${(USERS * 2).toLocaleString("en")} applications in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const runs: number[] = [];
    const readCeiling: number[] = [];
    const writeCeiling: number[] = [];
    let result: { emails: number; toasts: number } = { emails: 0, toasts: 0 };
    for (let run = 0; run < 3; run++) {
      runs.push(await timed(() => sql.begin(async (tx) => {
        [{ r: result }] = await tx`select private.run_nudge_scheduler(${AT}::timestamptz) as r`;
        throw new RollbackSignal();
      }).catch((e) => { if (!(e instanceof RollbackSignal)) throw e; })));
      readCeiling.push(await timed(() => sql`
        select
          (select count(*) from public.applications a join public.opportunities o on o.id = a.opportunity_id
            where a.status = 'draft' and o.deadline > ${AT}::timestamptz and o.deadline <= ${AT}::timestamptz + interval '72 hours'),
          (select count(*) from (
             select distinct on (a.user_id) a.user_id, a.last_progress_at from public.applications a
             join public.opportunities o on o.id = a.opportunity_id
             where a.status = 'draft' and o.deadline >= ${AT}::timestamptz
             order by a.user_id, (greatest(0, least(1, 1 - extract(epoch from o.deadline - ${AT}::timestamptz) / 2592000)) * 0.6 + o.trust_score * 0.4) desc,
                      o.deadline, o.amount desc) t
           where t.last_progress_at <= ${AT}::timestamptz - interval '48 hours'),
          (select count(*) from public.check_in_tasks c where c.status = 'pending' and c.due_at <= ${AT}::timestamptz)`));
      const n = result.emails + result.toasts;
      writeCeiling.push(await timed(() => sql.begin(async (tx) => {
        await tx`insert into public.notification_log (user_id, channel, sent_at, notification_type)
                 select ('00000000-0000-4000-a000-' || lpad((1 + k % ${USERS})::text, 12, '0'))::uuid, 'email', ${AT}::timestamptz, 'deadline_72h'
                 from generate_series(1, ${n}) k`;
        throw new RollbackSignal();
      }).catch((e) => { if (!(e instanceof RollbackSignal)) throw e; })));
    }
    console.log(`\n## One nudge-scheduler run over ${USERS.toLocaleString("en")} users (three runs, each rolled back)\n`);
    const fmt = (xs: number[]) => xs.map((x) => `${(x / 1000).toFixed(2)} s`).join(" | ");
    console.log("| what | run 1 | run 2 | run 3 | median |\n| --- | --- | --- | --- | --- |");
    console.log(`| private.run_nudge_scheduler (${result.emails.toLocaleString("en")} emails, ${result.toasts.toLocaleString("en")} toasts) | ${fmt(runs)} | ${(median(runs) / 1000).toFixed(2)} s |`);
    console.log(`| raw-SQL ceiling of the reads (deadline candidates, each user's top application, due check-ins) | ${fmt(readCeiling)} | ${(median(readCeiling) / 1000).toFixed(2)} s |`);
    console.log(`| raw-SQL ceiling of the writes (plain insert of ${(result.emails + result.toasts).toLocaleString("en")} notification_log rows) | ${fmt(writeCeiling)} | ${(median(writeCeiling) / 1000).toFixed(2)} s |`);
    console.log(`\nscheduler / (reads + writes) = ${(median(runs) / (median(readCeiling) + median(writeCeiling))).toFixed(2)}x`);
  } finally {
    await sql.end();
    await stack.dispose();
  }
}

class RollbackSignal extends Error {}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
