/**
 * Faults, on stacks of their own so the shared one is untouched:
 *  - Postgres killed (SIGKILL, as in a crash) while writers log interactions through the
 *    gateway: every write the gateway acknowledged (2xx) is in the database after crash
 *    recovery, requests during the outage get a prompt 503 with Retry-After, and the stack
 *    serves again once Postgres is back, without a gateway restart.
 *  - A retry storm: 200 concurrent retries of one request store one row, and every answer
 *    is the row (201 once, 200 after) or "still in flight" (409).
 * Durability needs fsync, so the crash stack runs with fsync on (fast: false).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { mintToken, startThrowawayStack, statusEnv } from "../../local/stack.ts";
import { ALICE, stack } from "../helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Postgres killed during writes", () => {
  it("loses no acknowledged write, answers 503 during the outage and recovers by itself", { timeout: 240_000 }, async () => {
    const own = await startThrowawayStack({ prefix: "coach-ledger-crash", fast: false });
    try {
      const env = statusEnv(own.cfg);
      const token = await mintToken(own.cfg, { role: "coach_ingest" });
      const acknowledged: string[] = [];
      const outage: { status: number; retryAfter: string | null; ms: number; body?: string }[] = [];
      let writing = true;
      let n = 0;
      const writer = async (w: number) => {
        while (writing) {
          const key = `crash-${w}-${n++}`;
          const t0 = performance.now();
          try {
            const res = await fetch(`${env.FUNCTIONS_URL}/log-interaction`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
              body: JSON.stringify({ sender: "ai_coach", user_id: ALICE, content: { text: `write ${key}` } }),
              signal: AbortSignal.timeout(30_000),
            });
            const text = await res.text();
            if (res.status === 201 || res.status === 200) acknowledged.push(key);
            else outage.push({ status: res.status, retryAfter: res.headers.get("retry-after"), ms: performance.now() - t0, body: text.slice(0, 300) });
          } catch (err) {
            outage.push({ status: 0, retryAfter: null, ms: performance.now() - t0, body: String(err) });
          }
        }
      };
      // Six writers: one ingest token may hold six of the functions' ten connections.
      const writers = Array.from({ length: 6 }, (_, w) => writer(w));
      await sleep(1500);
      const before = acknowledged.length;
      const pid = Number(readFileSync(join(own.cfg.stateDir, "db", "postmaster.pid"), "utf8").split("\n")[0]);
      process.kill(pid, "SIGKILL");
      await sleep(1500);
      // What a developer does after a crash: npm run local -- start (crash recovery; the
      // gateway is kept and reconnects by itself). In a child process, so the writers go on.
      const { stdout } = await promisify(execFile)(process.execPath, ["local/cli.ts", "start"], {
        env: { ...process.env, LOCAL_STATE_DIR: own.cfg.stateDir, LOCAL_API_PORT: String(own.cfg.apiPort), LOCAL_DB_PORT: String(own.cfg.dbPort) },
      });
      // The gateway outlived the crash: start keeps it (a dead one would be "started" anew).
      const gatewayLog = () => readFileSync(join(own.cfg.stateDir, "logs", "gateway.log"), "utf8")
        .split("\n").filter((l) => !l.includes('"level":"info"')).slice(-40).join("\n");
      expect(stdout.split("\n")[0], gatewayLog()).toContain("gateway kept");
      const restarted = acknowledged.length;
      await sleep(1500);
      writing = false;
      await Promise.all(writers);

      expect(before).toBeGreaterThan(0);
      expect(acknowledged.length).toBeGreaterThan(restarted); // writes succeed again after recovery
      const sql = postgres(env.DB_URL, { max: 1, onnotice: () => {} });
      try {
        const rows = await sql`select request_id from public.coach_interactions where request_id = any(${acknowledged})`;
        expect(new Set(rows.map((r) => r.request_id)).size).toBe(acknowledged.length);
      } finally {
        await sql.end();
      }
      // During the outage: 503 (or 429 for a caller over its share of the pool while
      // connections wait to connect), always with Retry-After; never a 500.
      expect(outage.length).toBeGreaterThan(0);
      expect(outage.filter((o) => o.status !== 503 && o.status !== 429).map((o) => `${o.status} ${o.body}`), gatewayLog()).toEqual([]);
      expect(outage.every((o) => o.retryAfter !== null)).toBe(true);
      console.log(`crash test: ${acknowledged.length} acknowledged writes (${before} before the kill), all present after recovery; ` +
        `${outage.length} answers during the outage (${[...new Set(outage.map((o) => o.status))].join(", ")}), ` +
        `median ${Math.round(outage.map((o) => o.ms).sort((a, b) => a - b)[outage.length >> 1])} ms, slowest ${Math.round(Math.max(...outage.map((o) => o.ms)))} ms`);
    } finally {
      await own.dispose();
    }
  });
});

describe("retry storm", () => {
  it("200 concurrent retries of one request store one row", { timeout: 60_000 }, async () => {
    const { env, cfg } = stack();
    const token = await mintToken(cfg, { role: "coach_ingest" });
    const key = `storm-${crypto.randomUUID()}`;
    const statuses = await Promise.all(Array.from({ length: 200 }, async () => {
      const res = await fetch(`${env.FUNCTIONS_URL}/log-interaction`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify({ sender: "ai_coach", user_id: ALICE, content: { text: "storm" } }),
      });
      const body = await res.json();
      return { status: res.status, id: body.id as string | undefined };
    }));
    expect(statuses.filter((s) => s.status === 201)).toHaveLength(1);
    expect(statuses.filter((s) => ![200, 201, 409, 429].includes(s.status))).toEqual([]);
    expect(new Set(statuses.filter((s) => s.id).map((s) => s.id)).size).toBe(1);
    const sql = postgres(env.DB_URL, { max: 1, onnotice: () => {} });
    try {
      const [{ n }] = await sql`select count(*)::int as n from public.coach_interactions where request_id = ${key}`;
      expect(n).toBe(1);
    } finally {
      await sql.end();
    }
  });
});
