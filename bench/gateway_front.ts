/**
 * The gateway's TCP front (local/gateway/listener.ts), what it costs: `npm run bench:front`.
 * Starts a throwaway stack and drives the same requests, from the same number of
 * keep-alive clients for the same time, through the front (TCP, as every client connects)
 * and straight to the Unix socket its Deno.serve answers on behind it (the ceiling: the
 * gateway without the front), side by side in one run. Two requests: GET /health (one
 * `select 1`) and GET /functions/v1/me (JWT checks, a transaction, a profile read).
 * Options: --duration S (default 10), --clients N (default 16).
 */
import { request, Agent } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, totalmem } from "node:os";
import { ensureSystemPackages, mintToken, startThrowawayStack, type GatewayState } from "../local/stack.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const DURATION = opt("--duration", 10);
const CLIENTS = opt("--clients", 16);

interface Result { rps: number; p50: number; p95: number; errors: number }

/** Closed loop: CLIENTS workers send requests back to back for DURATION seconds. */
async function drive(target: { port?: number; socketPath?: string }, path: string, headers: Record<string, string>): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + DURATION * 1000;
  const one = () => new Promise<void>((resolve) => {
    const t0 = performance.now();
    const req = request({ host: "127.0.0.1", ...target, path, headers, agent }, (res) => {
      res.resume();
      res.on("end", () => {
        if (res.statusCode === 200) latencies.push(performance.now() - t0);
        else errors++;
        resolve();
      });
    });
    req.on("error", () => { errors++; resolve(); });
    req.end();
  });
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < end) await one();
  }));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / DURATION, p50: at(0.5), p95: at(0.95), errors };
}

ensureSystemPackages();
const stack = await startThrowawayStack({ prefix: "coach-ledger-bench-front", fast: false });
try {
  const state = JSON.parse(readFileSync(join(stack.cfg.stateDir, "gateway.json"), "utf8")) as GatewayState;
  if (!state.upstream) throw new Error("the gateway did not record its Unix socket");
  const token = await mintToken(stack.cfg, { email: "alice@example.com" });
  console.log(`# Gateway front benchmark\n`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB; ${CLIENTS} keep-alive clients, ${DURATION} s per row\n`);
  console.log("| request | path | req/s | p50 | p95 | errors |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const [name, path, headers] of [
    ["GET /health", "/health", {}],
    ["GET /functions/v1/me", "/functions/v1/me", { authorization: `Bearer ${token}` }],
  ] as [string, string, Record<string, string>][]) {
    const direct = await drive({ socketPath: state.upstream }, path, headers);
    const front = await drive({ port: stack.cfg.apiPort }, path, headers);
    const row = (via: string, r: Result) =>
      console.log(`| ${name} | ${via} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} ms | ${r.p95.toFixed(1)} ms | ${r.errors} |`);
    row("Unix socket, no front (ceiling)", direct);
    row("TCP front", front);
    console.log(`| | front / ceiling | ${(100 * front.rps / direct.rps).toFixed(0)}% | | | |`);
  }
} finally {
  await stack.dispose();
}
