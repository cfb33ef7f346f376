/**
 * The right of access at scale (issue 16: "streamed, so a user with 100,000 interactions does
 * not need it all in memory"): `npm run bench:export` (option --interactions N, default
 * 100,000). Starts a throwaway stack, gives one user N interactions, and prints, in one run:
 *
 *  1. the ceiling: the same rows as JSON straight out of PostgreSQL
 *     (`COPY (select to_jsonb(i) ...) TO STDOUT` through psql), time and bytes;
 *  2. GET /functions/v1/export-my-data for that user through the gateway: time to the first
 *     byte, total time and bytes, and the gateway process's resident memory (VmRSS from
 *     /proc, sampled every 20 ms) before and at its peak during the export, beside the
 *     document's size.
 *
 * A function that held the document in memory would grow by about its size; a streamed one
 * grows by its buffers only.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { dbUrl, ensureSystemPackages, mintToken, startThrowawayStack, statusEnv } from "../local/stack.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const N = opt("--interactions", 100_000);
const USER = "e0e00000-0000-4000-8000-000000000001";
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** The resident memory of a process, in bytes (Linux). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function main(): Promise<void> {
  ensureSystemPackages();
  const stack = await startThrowawayStack({ prefix: "coach-ledger-bench-export", fast: false });
  const env = statusEnv(stack.cfg);
  const sql = postgres(env.DB_URL, { max: 2, onnotice: () => {} });
  try {
    console.log(`# Export benchmark\n\nmachine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15; ${N.toLocaleString("en")} interactions of one user\n`);
    await sql`insert into auth.users (id, email) values (${USER}, 'export-bench@example.com')`;
    await sql`insert into public.coach_interactions (user_id, request_id, sender, content, model, prompt_tokens, completion_tokens, latency_ms, actor_role, created_at)
              select ${USER}, 'bench-' || n, case when n % 2 = 0 then 'user' else 'ai_coach' end,
                     jsonb_build_object('text', 'Message number ' || n || ' about the evening walk and how sleep went after it'),
                     case when n % 2 = 1 then 'gpt-4o-mini' end, 600, 45, 850, 'postgres',
                     now() - interval '30 days' + n * interval '1 second'
              from generate_series(1, ${N}) n`;
    await sql`vacuum analyze public.coach_interactions`;

    // 1. The ceiling.
    const t0 = performance.now();
    const copy = spawnSync("psql", [dbUrl(stack.cfg), "-Atc",
      `copy (select to_jsonb(i) from public.coach_interactions i where i.user_id = '${USER}' order by i.created_at, i.id) to stdout`],
      { encoding: "buffer", maxBuffer: 2 ** 31, env: { ...process.env, PGPASSWORD: "postgres" } });
    const ceilingMs = performance.now() - t0;
    if (copy.status !== 0) throw new Error(`psql failed: ${copy.stderr}`);

    // 2. The export, through the gateway, as the user.
    const gateway = (JSON.parse(readFileSync(join(stack.cfg.stateDir, "gateway.json"), "utf8")) as { pid: number }).pid;
    const token = await mintToken(stack.cfg, { email: "export-bench@example.com" });
    const warm = await fetch(`${env.FUNCTIONS_URL}/export-my-data`, { headers: { authorization: `Bearer ${token}` } });
    await warm.arrayBuffer();
    const before = rss(gateway);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rss(gateway)); }, 20);
    const t1 = performance.now();
    const res = await fetch(`${env.FUNCTIONS_URL}/export-my-data`, { headers: { authorization: `Bearer ${token}` } });
    const reader = res.body!.getReader();
    let bytes = 0;
    let firstByteMs = NaN;
    let tail = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (Number.isNaN(firstByteMs)) firstByteMs = performance.now() - t1;
      bytes += value.length;
      tail = (tail + new TextDecoder().decode(value)).slice(-40);
    }
    const exportMs = performance.now() - t1;
    clearInterval(sampler);
    peak = Math.max(peak, rss(gateway));
    if (!tail.includes('"complete":true')) throw new Error(`the export did not complete: ...${tail}`);

    console.log("| path | time | first byte | bytes | rows/s |\n| --- | --- | --- | --- | --- |");
    console.log(`| ceiling: COPY (to_jsonb of the rows) TO STDOUT, psql | ${ceilingMs.toFixed(0)} ms | | ${mb(copy.stdout.length)} | ${Math.round(N / (ceilingMs / 1000)).toLocaleString("en")} |`);
    console.log(`| GET /functions/v1/export-my-data (every section) | ${exportMs.toFixed(0)} ms | ${firstByteMs.toFixed(0)} ms | ${mb(bytes)} | ${Math.round(N / (exportMs / 1000)).toLocaleString("en")} |`);
    console.log(`\nexport time = ${(exportMs / ceilingMs).toFixed(2)}x the ceiling`);
    console.log(`gateway memory (VmRSS): ${mb(before)} before, ${mb(peak)} at its peak during the export: +${mb(peak - before)} for a ${mb(bytes)} document (${((peak - before) / bytes * 100).toFixed(0)}% of its size)`);
  } finally {
    await sql.end();
    await stack.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
