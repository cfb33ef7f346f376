/** Shared by the benchmarks: pgbench runs against a throwaway stack, and percentiles. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dbUrl, type StackConfig } from "../local/stack.ts";

/** The p-th percentile of an ascending list (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs pgbench with a script; returns transactions/s and latency percentiles (ms) from its transaction log. */
export function pgbench(cfg: StackConfig, name: string, script: string, clients: number, duration: number): {
  tps: number; p50: number; p95: number; p99: number; failed: number;
} {
  const dir = mkdtempSync(join(tmpdir(), `pgbench-${name}-`));
  writeFileSync(join(dir, "script.sql"), script);
  const r = spawnSync("/usr/lib/postgresql/15/bin/pgbench", [
    "-n", "-c", String(clients), "-j", "2", "-T", String(duration), "-f", join(dir, "script.sql"),
    "-l", "--log-prefix", join(dir, "log"), dbUrl(cfg),
  ], { encoding: "utf8", env: { ...process.env, PGPASSWORD: "postgres" } });
  if (r.status !== 0) throw new Error(`pgbench ${name} failed:\n${r.stdout}\n${r.stderr}`);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const latencies: number[] = [];
  for (const f of readdirSync(dir).filter((f) => f.startsWith("log"))) {
    for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
      const cols = line.split(" ");
      if (cols.length > 2) latencies.push(Number(cols[2]) / 1000);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return { tps, p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), failed };
}
