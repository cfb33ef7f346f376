/**
 * createCoachLedger against a fake batch route (fake_servers.ts): batching by size, interval
 * and bytes, retries and their delays, idempotency across retries, 413 splitting, 409
 * requeueing, refusals, bounded memory, shutdown, and that the SDK never holds a Node process
 * open by itself. Delays are injected or a few ms long; nothing asserts a duration.
 */
import { spawn } from "node:child_process";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { type CoachLedger, CoachLedgerError, type CoachLedgerOptions, createCoachLedger, type LedgerItem, type Problem } from "../src/index.ts";
import { type FakeLedger, fakeLedger, unreachableUrl, waitFor } from "./fake_servers.ts";

const ALICE = "a11ce000-0000-4000-8000-000000000001";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const msg = (text: string) => ({ sender: "ai_coach" as const, user_id: ALICE, content: { text } });
/** A sleep that returns at once and records how long it was asked to wait. */
const record = (delays: number[]) => (ms: number) => {
  delays.push(ms);
  return Promise.resolve();
};

let server: FakeLedger;
const ledgers: CoachLedger[] = [];

beforeEach(async () => {
  server = await fakeLedger();
});

afterEach(async () => {
  for (const l of ledgers.splice(0)) await l.shutdown({ timeoutMs: 2_000 });
  await server.close();
});

/** A ledger on the fake server: no interval flush unless asked, retries a few ms apart. */
function ledger(options: Partial<CoachLedgerOptions> = {}): CoachLedger {
  const l = createCoachLedger({
    url: server.url,
    key: "service-role-key",
    flushIntervalMs: 600_000,
    ...options,
    retry: { baseDelayMs: 1, maxDelayMs: 5, ...options.retry },
  });
  ledgers.push(l);
  return l;
}

describe("log() and event()", () => {
  test("log() returns the request_id it assigned, or the caller's own, and sends it", async () => {
    const l = ledger();
    const mine = l.log({ ...msg("b"), request_id: "mine-1" });
    const generated = l.log(msg("a"));
    const ev = l.event({ kind: "rating", score: 5, user_id: ALICE });
    expect(mine).toBe("mine-1");
    expect(generated).toMatch(UUID);
    expect(ev).toMatch(UUID);
    const result = await l.flush();
    expect(result).toMatchObject({ created: 3, refused: 0, queued: 0 });
    expect(server.sentIds()).toEqual(["mine-1", generated, ev]);
    const [first, second, third] = server.requests[0].items;
    // Interactions go without `type` (the API's default); events say they are events.
    expect("type" in first).toBe(false);
    expect(second).toEqual({ ...msg("a"), request_id: generated });
    expect(third).toEqual({ type: "event", kind: "rating", score: 5, user_id: ALICE, request_id: ev });
  });

  test("requests carry the key as bearer token and apikey, or a separate apiKey", async () => {
    const l = ledger({ url: `${server.url}/functions/v1/`, apiKey: "anon-key" });
    l.log(msg("a"));
    await l.flush();
    expect(server.requests[0].headers.authorization).toBe("Bearer service-role-key");
    expect(server.requests[0].headers.apikey).toBe("anon-key");
    expect(server.requests[0].headers["content-type"]).toBe("application/json");
    expect(server.requests[0].headers.prefer).toBe("return=minimal");
  });

  test("log() and event() throw TypeError for malformed items, and only then", () => {
    const l = ledger();
    const bad: unknown[] = [
      null,
      "text",
      { content: { text: "no sender" } },
      { sender: "robot", content: { text: "x" } },
      { sender: "user" },
      { sender: "user", content: { body: "no text" } },
      { sender: "user", content: { text: "x" }, request_id: "has space" },
      { sender: "user", content: { text: "x" }, request_id: "x".repeat(129) },
      { sender: "user", content: { text: "x" }, tracked_skill_id: "raw-id" },
      { sender: "user", content: { text: "x" }, type: "event" },
    ];
    for (const item of bad) expect(() => l.log(item as never), JSON.stringify(item)).toThrow(TypeError);
    expect(() => l.event({ kind: "clicked" } as never)).toThrow(TypeError);
    expect(() => l.event({} as never)).toThrow(TypeError);
    const cycle: Record<string, unknown> = { text: "x" };
    cycle.self = cycle;
    expect(() => l.log({ sender: "user", content: cycle as never })).toThrow(TypeError);
    expect(() => l.log({ sender: "user", content: { text: "x".repeat(1024 * 1024) } })).toThrow(TypeError);
    // Values the server judges (a bad uuid, a score out of range) are its to refuse.
    expect(() => l.log({ sender: "user", content: { text: "x" }, user_id: "not-a-uuid" })).not.toThrow();
    expect(() => l.event({ kind: "rating", score: 9 })).not.toThrow();
    expect(l.stats().queued).toBe(2);
  });

  test("createCoachLedger throws TypeError for invalid options", () => {
    const url = "http://127.0.0.1:1";
    expect(() => createCoachLedger({ url: "not a url", key: "k" })).toThrow(TypeError);
    expect(() => createCoachLedger({ url, key: "" })).toThrow(TypeError);
    expect(() => createCoachLedger({ url, key: "k", flushAt: 501 })).toThrow(TypeError);
    expect(() => createCoachLedger({ url, key: "k", maxBatchBytes: 2 * 1024 * 1024 })).toThrow(TypeError);
    expect(() => createCoachLedger({ url, key: "k", trackedSkillHashKey: "short" })).toThrow(TypeError);
  });
});

describe("flushing", () => {
  test("flushes by size without flush()", async () => {
    const l = ledger({ flushAt: 3 });
    l.log(msg("1"));
    l.log(msg("2"));
    l.log(msg("3"));
    await waitFor(() => server.stored.size === 3);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0].items).toHaveLength(3);
  });

  test("flushes on the interval without flush()", async () => {
    const l = ledger({ flushIntervalMs: 20 });
    const id = l.log(msg("1"));
    await waitFor(() => server.stored.has(id));
    expect(l.stats()).toMatchObject({ queued: 0, created: 1, sent: 1 });
  });

  test("splits batches at flushAt and to stay within maxBatchBytes", async () => {
    const l = ledger({ flushAt: 4, maxBatchBytes: 4096 });
    for (let i = 0; i < 10; i++) l.log(msg(`${i} ${"x".repeat(1000)}`));
    const result = await l.flush();
    expect(result.created).toBe(10);
    expect(server.requests.length).toBeGreaterThanOrEqual(4);
    for (const r of server.requests) {
      expect(Buffer.byteLength(r.raw)).toBeLessThanOrEqual(4096);
      expect(r.items.length).toBeLessThanOrEqual(4);
    }
  });

  test("sends one request at a time, and concurrent flushes never send an item twice", async () => {
    server.delayMs = 30;
    const l = ledger({ flushAt: 2 });
    const flushes: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      l.log(msg(String(i)));
      if (i % 3 === 0) flushes.push(l.flush());
    }
    await Promise.all(flushes);
    await l.flush();
    expect(server.maxConcurrent).toBe(1);
    expect(server.sentIds()).toHaveLength(12);
    expect(new Set(server.sentIds()).size).toBe(12);
    expect(l.stats()).toMatchObject({ created: 12, replayed: 0, queued: 0 });
  });

  test("flush() covers what was queued when it was called", async () => {
    server.delayMs = 30;
    const l = ledger();
    const a = l.log(msg("a"));
    const first = l.flush();
    const b = l.log(msg("b"));
    const second = l.flush();
    await first;
    expect(server.stored.has(a)).toBe(true);
    await second;
    expect(server.stored.has(b)).toBe(true);
  });
});

describe("retries", () => {
  test("retries 5xx and network errors with the same request_ids", async () => {
    server.script.push({ status: 500 }, { status: 503 });
    const l = ledger();
    const ids = [l.log(msg("1")), l.log(msg("2")), l.log(msg("3"))];
    const result = await l.flush();
    expect(result).toMatchObject({ created: 3, requeued: 0 });
    expect(server.requests).toHaveLength(3);
    for (const r of server.requests) expect(r.items.map((i) => i.request_id)).toEqual(ids);
    expect(l.stats()).toMatchObject({ requests: 3, retries: 2, failedRequests: 2, created: 3 });
  });

  test("never stores an item twice when an answer is lost", async () => {
    server.script.push({ lose: true }); // stored, then answered 500
    const l = ledger();
    for (let i = 0; i < 5; i++) l.log(msg(String(i)));
    const result = await l.flush();
    expect(result).toMatchObject({ created: 0, replayed: 5 });
    expect(server.sentIds()).toHaveLength(10);
    expect(new Set(server.sentIds()).size).toBe(5);
    expect(server.stored.size).toBe(5);
  });

  test("waits at least Retry-After, in seconds or as an HTTP-date", async () => {
    server.script.push(
      { status: 429, retryAfter: "7" },
      { status: 503, retryAfter: new Date(Date.now() + 60_000).toUTCString() },
    );
    const delays: number[] = [];
    const l = ledger({
      retry: { maxElapsedMs: 600_000 },
      sleep: record(delays),
    });
    l.log(msg("1"));
    const result = await l.flush();
    expect(result.created).toBe(1);
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeGreaterThanOrEqual(7_000);
    expect(delays[1]).toBeGreaterThanOrEqual(58_000);
  });

  test("caps Retry-After at an hour, and ignores one that is neither delta-seconds nor an HTTP-date", async () => {
    server.script.push(
      { status: 503, retryAfter: "3000000" },
      { status: 503, retryAfter: "9".repeat(400) },
      { status: 503, retryAfter: "1.5" },
      { status: 503, retryAfter: "-5" },
    );
    const delays: number[] = [];
    const l = ledger({ retry: { maxElapsedMs: 100_000_000, maxAttempts: 10 }, random: () => 0.5, sleep: record(delays) });
    l.log(msg("1"));
    const result = await l.flush();
    expect(result.created).toBe(1);
    // An hour twice; then the backoff alone (half of min(5, 1 x 2^(n-1)) ms with this jitter).
    expect(delays).toEqual([3_600_000, 3_600_000, 2, 2]);
  });

  test("a background backoff after a huge Retry-After keeps a timer that fits setTimeout, so delivery resumes", async () => {
    server.script.push({ status: 503, retryAfter: "3000000" });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const l = ledger({ retry: { maxAttempts: 1 } });
      l.log(msg("1"));
      expect((await l.flush()).requeued).toBe(1);
      await new Promise((r) => setTimeout(r, 50));
      expect(warnings).not.toContain("TimeoutOverflowWarning");
      // An explicit flush still delivers at once.
      expect((await l.flush()).created).toBe(1);
    } finally {
      process.off("warning", onWarning);
    }
  });

  test("an async onError or onRefused that rejects is ignored, as a throwing one is", async () => {
    server.refuse = () => ({ status: 422, code: "22023", detail: "no" });
    server.script.push({ status: 401 });
    const l = ledger({ onError: async () => { throw new Error("async onError"); }, onRefused: async () => { throw new Error("async onRefused"); } });
    l.log(msg("1"));
    expect((await l.flush()).failed).toBe(1);
    l.log(msg("2"));
    expect((await l.flush()).refused).toBe(1);
    // An unhandled rejection would fail this file's run (vitest reports it).
    await new Promise((r) => setTimeout(r, 20));
  });

  test("backs off exponentially with full jitter", async () => {
    server.script.push({ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 });
    const delays: number[] = [];
    const l = ledger({
      retry: { baseDelayMs: 100, maxDelayMs: 500, maxAttempts: 5 },
      random: () => 0.5,
      sleep: record(delays),
    });
    l.log(msg("1"));
    await l.flush();
    // Half of min(500, 100 × 2^(n-1)) for n = 1..4.
    expect(delays).toEqual([50, 100, 200, 250]);
  });

  test("puts a batch back in the queue when its retries run out, and reports it", async () => {
    server.script.push({ status: 429, retryAfter: "120" }); // longer than the whole budget
    const errors: CoachLedgerError[] = [];
    const delays: number[] = [];
    const l = ledger({ retry: { maxElapsedMs: 30_000 }, onError: (e) => errors.push(e), sleep: record(delays) });
    const id = l.log(msg("1"));
    const result = await l.flush();
    expect(result).toMatchObject({ created: 0, requeued: 1, queued: 1 });
    expect(delays).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(CoachLedgerError);
    expect(errors[0]).toMatchObject({ status: 429, requeued: true, items: 1, attempts: 1 });
    // The next flush delivers it, with the same request_id.
    const again = await l.flush();
    expect(again.created).toBe(1);
    expect(server.sentIds()).toEqual([id, id]);
  });

  test("aborts a request after timeoutMs and retries it", async () => {
    server.delayNext.push(2_000); // the first request only
    const l = ledger({ timeoutMs: 100 });
    const id = l.log(msg("1"));
    const result = await l.flush();
    expect(result.created + result.replayed).toBe(1);
    expect(l.stats().retries).toBeGreaterThanOrEqual(1);
    await waitFor(() => server.stored.has(id));
    expect(server.stored.size).toBe(1);
  });
});

describe("answers item by item", () => {
  test("splits a batch in halves on 413, and gives up an item that is too large alone", async () => {
    server.maxItems = 2;
    server.tooLarge = (item) => (item.content as { text?: string } | undefined)?.text === "huge";
    const refused: [LedgerItem, Problem][] = [];
    const l = ledger({ onRefused: (item, problem) => refused.push([item, problem]) });
    const ids = [0, 1, 2, 3, 4].map((i) => l.log(msg(String(i))));
    const huge = l.log(msg("huge"));
    const result = await l.flush();
    expect(result).toMatchObject({ created: 5, refused: 1, queued: 0 });
    expect([...server.stored.keys()].sort()).toEqual([...ids].sort());
    expect(refused).toHaveLength(1);
    expect(refused[0][0]).toMatchObject({ type: "interaction", request_id: huge });
    expect(refused[0][1].status).toBe(413);
    // Later batches stay within the size that worked.
    const before = server.requests.length;
    for (let i = 0; i < 4; i++) l.log(msg(`later ${i}`));
    await l.flush();
    const later = server.requests.slice(before);
    expect(later.length).toBeGreaterThanOrEqual(2);
    for (const r of later) expect(r.items.length).toBeLessThanOrEqual(2);
    expect(later.every((r) => r.items.length <= 2)).toBe(true);
  });

  test("one item too large on its own does not shrink later batches", async () => {
    server.tooLarge = (item) => (item.content as { text?: string } | undefined)?.text === "huge";
    const l = ledger();
    for (let i = 0; i < 99; i++) l.log(msg(String(i)));
    l.log(msg("huge"));
    expect(await l.flush()).toMatchObject({ created: 99, refused: 1 });
    const before = server.requests.length;
    for (let i = 0; i < 100; i++) l.log(msg(`later ${i}`));
    expect((await l.flush()).created).toBe(100);
    expect(server.requests.length - before).toBe(1);
  });

  test("puts an item refused with 409 back for the next flush", async () => {
    server.conflicts.add("in-flight-1");
    const refused: unknown[] = [];
    const l = ledger({ onRefused: (item) => refused.push(item) });
    l.log({ ...msg("a"), request_id: "in-flight-1" });
    l.log(msg("b"));
    const first = await l.flush();
    expect(first).toMatchObject({ created: 1, refused: 0, requeued: 1, queued: 1 });
    expect(server.requests).toHaveLength(1); // not retried within the same flush
    const second = await l.flush();
    expect(second).toMatchObject({ created: 1, requeued: 0, queued: 0 });
    expect(server.stored.has("in-flight-1")).toBe(true);
    expect(refused).toEqual([]);
  });

  test("reports items the server refuses for good, and does not send them again", async () => {
    server.refuse = (item) => item.user_id === "nobody" ? { status: 422, code: "22023", detail: "user_id is not a uuid" } : undefined;
    const refused: [LedgerItem, Problem][] = [];
    const l = ledger({ onRefused: (item, problem) => refused.push([item, problem]) });
    const bad = l.log({ ...msg("a"), user_id: "nobody" });
    const badEvent = l.event({ kind: "read", user_id: "nobody" });
    l.log(msg("b"));
    const result = await l.flush();
    expect(result).toMatchObject({ created: 1, refused: 2, requeued: 0, queued: 0 });
    expect(refused.map(([item]) => [item.type, item.request_id])).toEqual([["interaction", bad], ["event", badEvent]]);
    expect(refused[0][1]).toMatchObject({ status: 422, code: "22023" });
    await l.flush();
    expect(server.requests).toHaveLength(1);
    expect(l.stats()).toMatchObject({ refused: 2, created: 1 });
  });

  test("gives a batch up on 401 without retrying, and reports it", async () => {
    server.script.push({ status: 401, body: { type: "about:blank", title: "Unauthorized", status: 401, detail: "The token has expired." } });
    const errors: CoachLedgerError[] = [];
    const l = ledger({ onError: (e) => errors.push(e) });
    l.log(msg("a"));
    l.log(msg("b"));
    const result = await l.flush();
    expect(result).toMatchObject({ failed: 2, requeued: 0, queued: 0 });
    expect(server.requests).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ status: 401, requeued: false, items: 2 });
    expect(errors[0].problem?.detail).toBe("The token has expired.");
    expect(l.stats()).toMatchObject({ failed: 2, retries: 0 });
  });

  test("exceptions in callbacks do not stop delivery", async () => {
    server.refuse = (item) => item.user_id === "nobody" ? { status: 422, code: "22023", detail: "bad" } : undefined;
    const l = ledger({ onRefused: () => { throw new Error("callback bug"); } });
    l.log({ ...msg("a"), user_id: "nobody" });
    l.log(msg("b"));
    await expect(l.flush()).resolves.toMatchObject({ created: 1, refused: 1 });
  });
});

describe("bounded memory and an unreachable server", () => {
  test("drops the oldest items when the queue is full, and counts them", async () => {
    let down = true;
    const errors: CoachLedgerError[] = [];
    const l = ledger({
      maxQueueSize: 5,
      retry: { maxAttempts: 2 },
      onError: (e) => errors.push(e),
      fetch: (input, init) => down ? Promise.reject(new TypeError("fetch failed")) : fetch(input, init),
    });
    const ids = Array.from({ length: 8 }, (_, i) => l.log(msg(String(i))));
    expect(l.stats()).toMatchObject({ queued: 5, dropped: 3 });
    const whileDown = await l.flush();
    expect(whileDown).toMatchObject({ created: 0, requeued: 5, queued: 5 });
    expect(errors[0]).toMatchObject({ requeued: true, attempts: 2, status: undefined });
    down = false;
    const result = await l.flush();
    expect(result.created).toBe(5);
    expect(server.sentIds()).toEqual(ids.slice(3));
  });

  test("log() neither throws nor waits when the server is unreachable", async () => {
    const errors: CoachLedgerError[] = [];
    const l = createCoachLedger({
      url: await unreachableUrl(),
      key: "k",
      flushAt: 10,
      maxQueueSize: 50,
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
      onError: (e) => errors.push(e),
    });
    ledgers.push(l);
    // Synchronous: 200 calls return before any request can even be answered.
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push(l.log(msg(String(i))));
    expect(new Set(ids).size).toBe(200);
    // At most maxQueueSize waiting, plus one batch (flushAt) in flight.
    expect(l.stats().queued).toBeLessThanOrEqual(50);
    expect(l.stats().inFlight).toBeLessThanOrEqual(10);
    const result = await l.flush();
    expect(result.created).toBe(0);
    expect(result.queued).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(l.stats().dropped).toBeGreaterThanOrEqual(150);
  });
});

describe("shutdown()", () => {
  test("flushes what waits, then drops later items", async () => {
    const l = ledger();
    const ids = [l.log(msg("1")), l.log(msg("2")), l.event({ kind: "delivered", user_id: ALICE })];
    const result = await l.shutdown();
    expect(result).toMatchObject({ created: 3, dropped: 0, queued: 0 });
    expect([...server.stored.keys()]).toEqual(ids);
    const late = l.log(msg("late"));
    expect(late).toMatch(UUID);
    await l.flush();
    expect(server.stored.has(late)).toBe(false);
    expect(l.stats()).toMatchObject({ dropped: 1, queued: 0 });
    expect(await l.shutdown()).toBe(result); // idempotent
  });

  test("retries 409 items before giving up, since there is no next flush", async () => {
    server.conflicts.add("in-flight-2");
    const l = ledger();
    l.log({ ...msg("a"), request_id: "in-flight-2" });
    const result = await l.shutdown();
    expect(result).toMatchObject({ created: 1, dropped: 0 });
    expect(server.requests).toHaveLength(2);
  });

  test("drops what it cannot deliver within its timeout", async () => {
    server.delayMs = 5_000;
    const errors: CoachLedgerError[] = [];
    const l = ledger({ onError: (e) => errors.push(e) });
    l.log(msg("1"));
    l.log(msg("2"));
    const result = await l.shutdown({ timeoutMs: 100 });
    expect(result).toMatchObject({ created: 0, dropped: 2, queued: 0 });
    expect(l.stats()).toMatchObject({ dropped: 2, queued: 0, inFlight: 0 });
    expect(errors[0]).toMatchObject({ requeued: false });
  });
});

describe("process lifetime (Node)", () => {
  const index = new URL("../src/index.ts", import.meta.url).href;

  /** Runs an ES module in a fresh Node process; resolves with how it ended. */
  function run(source: string, killAfterMs = 45_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ["--input-type=module", "--no-warnings", "-e", source], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "", stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d));
      child.stderr.on("data", (d: Buffer) => (stderr += d));
      const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      child.on("close", (code, signal) => {
        clearTimeout(killer);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  test("neither the flush timer nor a retry wait keeps a process alive", async () => {
    const url = await unreachableUrl();
    const { code, signal, stdout, stderr } = await run(`
      import { createCoachLedger } from ${JSON.stringify(index)};
      // Waits on the interval timer (a minute).
      const timed = createCoachLedger({ url: ${JSON.stringify(url)}, key: "k", flushIntervalMs: 60000 });
      timed.log({ sender: "user", content: { text: "hi" } });
      // Sends at once, is refused a connection, then waits about a minute to retry.
      const retrying = createCoachLedger({ url: ${JSON.stringify(url)}, key: "k", flushAt: 1, random: () => 0.99,
        retry: { baseDelayMs: 60000, maxDelayMs: 60000, maxElapsedMs: 600000 } });
      retrying.log({ sender: "user", content: { text: "hi" } });
      console.log("logged");
    `);
    expect(stderr).toBe("");
    expect(signal).toBeNull(); // it ended by itself, not killed at the deadline
    expect(code).toBe(0);
    expect(stdout.trim()).toBe("logged");
  });

  test("an awaited flush keeps the process alive until it settles", async () => {
    server.script.push({ status: 503 }, { status: 503 });
    const { code, stdout, stderr } = await run(`
      import { createCoachLedger } from ${JSON.stringify(index)};
      const ledger = createCoachLedger({ url: ${JSON.stringify(server.url)}, key: "k", random: () => 0.99,
        retry: { baseDelayMs: 300, maxDelayMs: 300 } });
      ledger.log({ sender: "user", content: { text: "hi" } });
      const result = await ledger.flush();
      console.log(JSON.stringify(result));
    `);
    // Were the retry waits unref'd here, Node would exit early with 13 (unsettled top-level await).
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ created: 1 });
    expect(server.requests).toHaveLength(3);
  });
});
