/**
 * Erasure at scale (issue 16): `npm run bench:erase` (option --interactions N, default
 * 100,000; a tenth as many ratings). Starts a throwaway stack, gives one user N interactions
 * over 30 days and their ratings, lets the rollup take them all, leaves the last 1,000 as
 * pending changes (as a user erased right after chatting would), and prints, in one run:
 *
 *  1. the ceiling: the same user's rows deleted plainly in one transaction (their
 *     interactions, events and metric rows, with the append-only guards and the change-log
 *     triggers off), rolled back;
 *  2. `POST /rest/v1/rpc/erase_user` through the gateway as the service role: what the
 *     service waits for, which includes applying the pending changes, re-keying the metrics,
 *     the tombstone and the cascade;
 *  3. the rollup's totals with the pending changes applied (a refresh, rolled back) and after
 *     the erasure, which must be equal (the bench fails otherwise).
 *
 * PostgREST ends a service-role statement after 8 s on Supabase: the ratio says how far a
 * person's size is from that.
 */
import { cpus, totalmem } from "node:os";
import postgres from "postgres";
import { ensureSystemPackages, startThrowawayStack, statusEnv } from "../local/stack.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const N = opt("--interactions", 100_000);
const USER = "e0a5e000-0000-4000-8000-000000000001";

async function main(): Promise<void> {
  ensureSystemPackages();
  const stack = await startThrowawayStack({ prefix: "coach-ledger-bench-erase", fast: true });
  const env = statusEnv(stack.cfg);
  const sql = postgres(env.DB_URL, { max: 2, onnotice: () => {} });
  try {
    console.log(`# Erasure benchmark\n\nmachine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15; one user with ${N.toLocaleString("en")} interactions and ${(N / 10).toLocaleString("en")} ratings\n`);
    await sql`select cron.unschedule(jobid) from cron.job`;
    await sql`insert into auth.users (id, email) values (${USER}, 'erase-bench@example.com')`;
    const rows = async (from: number, to: number) => {
      await sql`insert into public.coach_interactions (user_id, request_id, conversation_id, sender, content, coach_persona, model, prompt_tokens,
                                                       completion_tokens, cost_usd, latency_ms, actor_role, created_at)
                select ${USER}, 'bench-' || n, md5((n / 20)::text)::uuid, case when n % 2 = 0 then 'user' else 'ai_coach' end,
                       jsonb_build_object('text', 'Message number ' || n || ' about the evening walk'),
                       case when n % 2 = 1 then 'encourager' end, case when n % 2 = 1 then 'gpt-4o-mini' end,
                       case when n % 2 = 1 then 600 end, case when n % 2 = 1 then 45 end, case when n % 2 = 1 then 0.0001 end,
                       case when n % 2 = 1 then 850 end, 'postgres',
                       now() - interval '30 days' + n * (interval '30 days' / ${N})
                from generate_series(${from}::int, ${to}::int) n`;
      await sql`insert into public.interaction_events (user_id, kind, score, actor_role, created_at)
                select ${USER}, 'rating', 1 + n % 5, 'postgres', now() - interval '30 days' + n * (interval '30 days' / ${N})
                from generate_series(${from}::int, ${to}::int) n where n % 10 = 0`;
    };
    await rows(1, N - 1000);
    await sql`select * from analytics.refresh_interaction_metrics(36500)`;
    await rows(N - 999, N);
    await sql`vacuum analyze`;
    const totals = async (q: postgres.Sql | postgres.TransactionSql) => ({ ...(await q`
      select (select sum(messages) from analytics.coach_usage_daily)::text as messages,
             (select sum(satisfaction_count) from analytics.coach_usage_daily)::text as ratings,
             (select sum(calls) from analytics.coach_model_usage_hourly)::text as llm_calls,
             (select sum(cost_usd) from analytics.coach_model_usage_hourly)::text as cost_usd`)[0] });
    const [{ pending }] = await sql`select count(*)::int as pending from private.interaction_metrics_changes`;

    // 1. The ceiling: the same rows deleted plainly, rolled back.
    let ceilingMs = 0;
    await sql.begin(async (tx) => {
      await tx`alter table public.coach_interactions disable trigger user`;
      await tx`alter table public.interaction_events disable trigger user`;
      const t0 = performance.now();
      await tx`delete from public.interaction_events where user_id = ${USER}`;
      await tx`delete from public.coach_interactions where user_id = ${USER}`;
      await tx`delete from analytics.coach_interaction_metrics_hourly where user_id = ${USER}`;
      await tx`delete from analytics.coach_interaction_metrics where user_id = ${USER}`;
      ceilingMs = performance.now() - t0;
      throw new Rollback();
    }).catch((err) => { if (!(err instanceof Rollback)) throw err; });

    // What the rollup adds up to with the pending changes in (a refresh, rolled back).
    let before: Record<string, unknown> = {};
    await sql.begin(async (tx) => {
      await tx`select * from analytics.refresh_interaction_metrics(36500)`;
      before = await totals(tx);
      throw new Rollback();
    }).catch((err) => { if (!(err instanceof Rollback)) throw err; });

    // 2. erase_user, as a compliance tool calls it.
    const t1 = performance.now();
    const res = await fetch(`${env.API_URL}/rest/v1/rpc/erase_user`, {
      method: "POST",
      headers: { apikey: env.SERVICE_ROLE_KEY, authorization: `Bearer ${env.SERVICE_ROLE_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ user_id: USER, reason: "Erasure benchmark" }),
    });
    const answer = await res.json() as { removed: { interactions: number; events: number }; metrics_kept: { hourly_rows: number; daily_rows: number } };
    const eraseMs = performance.now() - t1;
    if (res.status !== 200) throw new Error(`erase_user answered ${res.status}: ${JSON.stringify(answer)}`);
    const after = await totals(sql);

    console.log("| path | time |\n| --- | --- |");
    console.log(`| ceiling: plain DELETE of the same interactions, events and metric rows (no triggers), rolled back | ${ceilingMs.toFixed(0)} ms |`);
    console.log(`| POST /rest/v1/rpc/erase_user (service role), ${pending.toLocaleString("en")} changes pending | ${eraseMs.toFixed(0)} ms |`);
    console.log(`\nerase_user = ${(eraseMs / ceilingMs).toFixed(2)}x the ceiling; it removed ${answer.removed.interactions.toLocaleString("en")} interactions and ${answer.removed.events.toLocaleString("en")} events and kept ${answer.metrics_kept.hourly_rows} hourly and ${answer.metrics_kept.daily_rows} daily metric rows under a pseudonym`);
    console.log(`rollup totals with the pending changes in: ${JSON.stringify(before)}\nrollup totals after the erasure:           ${JSON.stringify(after)}`);
    if (JSON.stringify(before) !== JSON.stringify(after)) throw new Error("the erasure changed the rollup's totals");
  } finally {
    await sql.end();
    await stack.dispose();
  }
}

class Rollback extends Error {}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
