/**
 * The ledger client: queues interactions and events in memory and sends them to
 * POST {url}/functions/v1/log-interaction/batch in batches, so that logging never slows or
 * breaks the app that logs.
 *
 * - `log()` / `event()` are synchronous: they check the item (TypeError for a programmer
 *   error), give it a `request_id` (the idempotency key) and serialize it at once, then
 *   return. Nothing on the network path can throw into the caller.
 * - Batches leave when `flushAt` items wait, when the oldest waiting item is
 *   `flushIntervalMs` old, on `flush()` and on `shutdown()`; each is at most 500 items and
 *   `maxBatchBytes` of JSON. One request is in flight per client at a time.
 * - A batch that fails as a whole with a network error, a timeout, 408, 429 or 5xx is sent
 *   again, unchanged (same request_ids, so the server stores nothing twice), after an
 *   exponential backoff with full jitter that is at least the server's Retry-After. 413
 *   splits the batch in halves. 401/403/422 and other 4xx give the batch up (`onError`).
 * - Per item: created and replayed are done; refused with 409 (the same request_id is in
 *   flight elsewhere) goes back to the queue for the next flush; any other refusal is final
 *   (`onRefused`).
 * - Memory is bounded: at most `maxQueueSize` items wait; when full, the oldest is dropped
 *   and counted. Items of a batch that ran out of retries go back to the front of the queue.
 * - Timers never keep a process alive on their own (`unref`, `Deno.unrefTimer`), except while
 *   someone awaits `flush()` or `shutdown()`.
 *
 * Only web platform APIs are used (fetch, AbortController, crypto.randomUUID, setTimeout),
 * so the same code runs on Node, Deno and edge runtimes.
 */
import type {
  BatchItemResult,
  BatchResponse,
  EventInput,
  InteractionInput,
  LedgerItem,
  Problem,
} from "./types.ts";
import { checkHashKey, hashTrackedSkillId } from "./tracked_skill.ts";

/** Most items the batch route takes in one request. */
export const MAX_BATCH_ITEMS = 500;
/** Largest body the batch route takes, in bytes (1 MiB). */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** The batch route, under the project URL. */
const BATCH_PATH = "functions/v1/log-interaction/batch";
/** What a request_id must look like (the server's IDEMPOTENCY_KEY). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SENDERS = new Set(["user", "ai_coach", "human_coach", "system"]);
const EVENT_KINDS = new Set(["delivered", "read", "rating", "feedback", "error", "session_state"]);
/** Bytes of `{"items":[` and `]}` around the items. */
const ENVELOPE_BYTES = '{"items":[]}'.length;

const DEFAULTS = {
  flushAt: 100,
  flushIntervalMs: 1_000,
  maxQueueSize: 10_000,
  timeoutMs: 15_000,
  shutdownTimeoutMs: 10_000,
  retry: { maxAttempts: 6, maxElapsedMs: 30_000, baseDelayMs: 500, maxDelayMs: 10_000 },
} as const;

/** How one batch is retried within one flush. A batch gives up at whichever limit comes first. */
export interface RetryOptions {
  /** Requests per batch, the first included (default 6). */
  maxAttempts?: number;
  /** Time from a batch's first request after which it is not retried again (default 30,000 ms). */
  maxElapsedMs?: number;
  /** The backoff before retry n is random in [0, min(maxDelayMs, baseDelayMs × 2^(n-1))) (default 500 ms). */
  baseDelayMs?: number;
  /** Cap of the exponential backoff (default 10,000 ms); a longer Retry-After still wins. */
  maxDelayMs?: number;
}

/** Options of `createCoachLedger`. Only `url` and `key` are required. */
export interface CoachLedgerOptions {
  /** The project URL, e.g. http://127.0.0.1:54321 (a trailing /functions/v1 is accepted too). */
  url: string;
  /** Sent as `Authorization: Bearer <key>`: a service role or coach_ingest key, or a user's token. */
  key: string;
  /** Sent as the `apikey` header (default: `key`). */
  apiKey?: string;
  /** Flush when this many items wait (default 100, at most 500). */
  flushAt?: number;
  /** Flush this long after an item arrives in an empty queue (default 1,000 ms). */
  flushIntervalMs?: number;
  /** Most items waiting; when full the oldest is dropped and counted (default 10,000). */
  maxQueueSize?: number;
  /** Largest request body in bytes; batches are split to fit (default and maximum 1 MiB). */
  maxBatchBytes?: number;
  /** Retries of a failed batch within one flush. */
  retry?: RetryOptions;
  /** Per request, aborted after this long and retried (default 15,000 ms). */
  timeoutMs?: number;
  /** The fetch to use (default: the global fetch). */
  fetch?: typeof fetch;
  /** Called when a batch is given up: refused as a whole, or out of retries. Exceptions are ignored. */
  onError?: (error: CoachLedgerError) => void;
  /** Called for each item the server refused for good (not for 409). Exceptions are ignored. */
  onRefused?: (item: LedgerItem, problem: Problem) => void;
  /** The server's TRACKED_SKILL_HASH_KEY, to hash tracked skill ids in this process. */
  trackedSkillHashKey?: string;
  /** For tests: waits between retries (default: a timer that an abort ends early). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** For tests: the jitter's random source in [0, 1) (default Math.random). */
  random?: () => number;
}

/** What one flush did with the items it took. */
export interface FlushResult {
  /** Items the server stored now. */
  created: number;
  /** Items the server had stored already (a retry of a request whose answer was lost). */
  replayed: number;
  /** Items the server refused for good (reported through onRefused). */
  refused: number;
  /** Items given up because their whole request was refused (401, 403, 422, other 4xx). */
  failed: number;
  /**
   * Times an item was put back in the queue: refused with 409, or out of retries. At
   * shutdown such an item is tried again, so it may be counted here and as created.
   */
  requeued: number;
  /** Items dropped by this flush (overflow when putting items back, or shutdown). */
  dropped: number;
  /** Items waiting when the flush ended. */
  queued: number;
}

/** Counters since the client was created, and what waits now. */
export interface LedgerStats {
  /** Items waiting to be sent. */
  queued: number;
  /** Items in the request in flight. */
  inFlight: number;
  /** Batch requests sent, retries included. */
  requests: number;
  /** Items the server accepted: created + replayed. */
  sent: number;
  created: number;
  replayed: number;
  /** Items refused for good (onRefused). */
  refused: number;
  /** Items given up with their whole request (onError). */
  failed: number;
  /** Items put back in the queue (409, or out of retries). */
  requeued: number;
  /** Items dropped: the queue was full, or logged after shutdown, or left at shutdown. */
  dropped: number;
  /** Batch requests that were retries. */
  retries: number;
  /** Batch requests that did not get a 2xx answer (network errors and timeouts included). */
  failedRequests: number;
}

/** Options of `shutdown()`. */
export interface ShutdownOptions {
  /** How long to keep trying to deliver what waits (default 10,000 ms); what is left is dropped. */
  timeoutMs?: number;
}

/** The client `createCoachLedger` returns. */
export interface CoachLedger {
  /** Queues an interaction; returns its request_id. Throws TypeError only for a malformed item. */
  log(item: InteractionInput): string;
  /** Queues an event; returns its request_id. Throws TypeError only for a malformed item. */
  event(item: EventInput): string;
  /** Sends everything queued now; resolves when each item is settled (never rejects). */
  flush(): Promise<FlushResult>;
  /** Stops the timer, flushes within timeoutMs, drops what is left; later log() calls are dropped. */
  shutdown(options?: ShutdownOptions): Promise<FlushResult>;
  /** Counters and queue length. */
  stats(): LedgerStats;
  /**
   * The keyed hash of a raw tracked skill id under `trackedSkillHashKey`. Throws TypeError at
   * once when the client has no key or the id is malformed.
   */
  hashTrackedSkillId(rawId: string): Promise<string>;
}

/** Why a batch was given up, as passed to `onError`. */
export class CoachLedgerError extends Error {
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The server's problem details, when it sent them. */
  readonly problem: Problem | undefined;
  /** Items in the batch given up. */
  readonly items: number;
  /** Requests made for the batch. */
  readonly attempts: number;
  /** True when the items went back to the queue (out of retries), false when they were given up. */
  readonly requeued: boolean;

  constructor(
    message: string,
    details: { status?: number; problem?: Problem; items: number; attempts: number; requeued: boolean; cause?: unknown },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "CoachLedgerError";
    this.status = details.status;
    this.problem = details.problem;
    this.items = details.items;
    this.attempts = details.attempts;
    this.requeued = details.requeued;
  }
}

/** Creates a client. Throws TypeError for invalid options. */
export function createCoachLedger(options: CoachLedgerOptions): CoachLedger {
  return new Ledger(options);
}

/** One queued item, serialized once when it was logged. */
interface Entry {
  /** Order of arrival; the queue is always sorted by it. */
  seq: number;
  type: LedgerItem["type"];
  json: string;
  bytes: number;
  /** The pass of a flush that last sent it (so one pass never sends an item twice). */
  pass: number;
}

/** One run of the sender over the items queued up to `target`. */
interface Drain {
  target: number;
  promise: Promise<FlushResult>;
  resolve: (result: FlushResult) => void;
}

/** What one request came to. */
type Attempt =
  | { kind: "ok"; body: BatchResponse }
  | { kind: "retry"; status?: number; problem?: Problem; retryAfterMs?: number; cause?: unknown }
  | { kind: "split"; problem: Problem }
  | { kind: "fatal"; status: number; problem: Problem };

type Timer = ReturnType<typeof setTimeout>;

class Ledger implements CoachLedger {
  private readonly endpoint: string;
  private readonly headers: Record<string, string>;
  private readonly flushAt: number;
  private readonly flushIntervalMs: number;
  private readonly maxQueueSize: number;
  private readonly maxBatchBytes: number;
  private readonly timeoutMs: number;
  private readonly retry: Required<RetryOptions>;
  private readonly fetchImpl: typeof fetch;
  private readonly options: CoachLedgerOptions;
  private readonly random: () => number;

  private queue: Entry[] = [];
  private seq = 0;
  private passes = 0;
  private inFlight = 0;
  /** Largest batch after a 413 (the server's rate limit quota may be smaller than flushAt). */
  private batchCap = MAX_BATCH_ITEMS;
  /** Single items the server answered 413 (too large on their own): they never shrink batchCap. */
  private tooLargeItems = 0;
  private timer: Timer | undefined;
  private sleepTimer: Timer | undefined;
  /** Callers awaiting flush() or shutdown(): while any do, timers keep the process alive. */
  private waiters = 0;
  /** After a batch ran out of retries, no background flush before this time. */
  private backoffUntil = 0;
  private failureStreak = 0;
  private running: Drain | null = null;
  private next: Drain | null = null;
  private closed = false;
  private shutdownResult: Promise<FlushResult> | undefined;
  /** Aborted at the shutdown deadline: ends the request in flight and any wait. */
  private readonly stop = new AbortController();
  private readonly counters = {
    requests: 0, created: 0, replayed: 0, refused: 0, failed: 0, requeued: 0, dropped: 0, retries: 0, failedRequests: 0,
  };

  constructor(options: CoachLedgerOptions) {
    if (options === null || typeof options !== "object") throw new TypeError("createCoachLedger needs { url, key }");
    const { url, key } = options;
    if (typeof url !== "string" || !URL.canParse(url)) throw new TypeError("url must be the project URL, e.g. http://127.0.0.1:54321");
    if (typeof key !== "string" || key.length === 0) throw new TypeError("key must be a non-empty API key or token");
    if (options.trackedSkillHashKey !== undefined) checkHashKey(options.trackedSkillHashKey);
    this.options = options;
    // Accept the project URL with or without a trailing slash or /functions/v1.
    const base = url.replace(/\/+$/, "").replace(/\/functions\/v1$/, "");
    this.endpoint = `${base}/${BATCH_PATH}`;
    this.headers = {
      "Authorization": `Bearer ${key}`,
      "apikey": options.apiKey ?? key,
      "Content-Type": "application/json",
      // Each stored item comes back as its id, not its row: the SDK never reads rows, and the
      // server then encodes and sends a fraction of the answer.
      "Prefer": "return=minimal",
    };
    this.flushAt = intOption("flushAt", options.flushAt, DEFAULTS.flushAt, 1, MAX_BATCH_ITEMS);
    this.flushIntervalMs = intOption("flushIntervalMs", options.flushIntervalMs, DEFAULTS.flushIntervalMs, 1, 2 ** 31 - 1);
    this.maxQueueSize = intOption("maxQueueSize", options.maxQueueSize, DEFAULTS.maxQueueSize, 1, Number.MAX_SAFE_INTEGER);
    this.maxBatchBytes = intOption("maxBatchBytes", options.maxBatchBytes, MAX_BATCH_BYTES, 1024, MAX_BATCH_BYTES);
    this.timeoutMs = intOption("timeoutMs", options.timeoutMs, DEFAULTS.timeoutMs, 1, 2 ** 31 - 1);
    const r = options.retry ?? {};
    this.retry = {
      maxAttempts: intOption("retry.maxAttempts", r.maxAttempts, DEFAULTS.retry.maxAttempts, 1, 1_000),
      maxElapsedMs: intOption("retry.maxElapsedMs", r.maxElapsedMs, DEFAULTS.retry.maxElapsedMs, 0, 2 ** 31 - 1),
      baseDelayMs: intOption("retry.baseDelayMs", r.baseDelayMs, DEFAULTS.retry.baseDelayMs, 0, 2 ** 31 - 1),
      maxDelayMs: intOption("retry.maxDelayMs", r.maxDelayMs, DEFAULTS.retry.maxDelayMs, 0, 2 ** 31 - 1),
    };
    // Called through a closure: some runtimes refuse a fetch called with another `this`.
    const injected = options.fetch;
    this.fetchImpl = injected ?? ((input, init) => globalThis.fetch(input, init));
    this.random = options.random ?? Math.random;
  }

  log(item: InteractionInput): string {
    return this.enqueue("interaction", item);
  }

  event(item: EventInput): string {
    return this.enqueue("event", item);
  }

  flush(): Promise<FlushResult> {
    return this.awaited(this.schedule());
  }

  shutdown(options: ShutdownOptions = {}): Promise<FlushResult> {
    if (this.shutdownResult) return this.shutdownResult;
    const timeoutMs = intOption("timeoutMs", options.timeoutMs, DEFAULTS.shutdownTimeoutMs, 0, 2 ** 31 - 1);
    this.closed = true;
    this.clearTimer();
    this.shutdownResult = this.awaited((async () => {
      const deadline = setTimeout(() => this.stop.abort(new Error("shutdown timeout")), timeoutMs);
      let result: FlushResult;
      try {
        // A background flush may be running (and may give up); then one more, in shutdown mode.
        result = await this.schedule();
        if (this.queue.length > 0 && !this.stop.signal.aborted) result = add(result, await this.schedule());
      } finally {
        clearTimeout(deadline);
      }
      const left = this.queue.length;
      this.queue = [];
      this.counters.dropped += left;
      this.stop.abort(new Error("shut down"));
      return { ...result, dropped: result.dropped + left, queued: 0 };
    })());
    return this.shutdownResult;
  }

  stats(): LedgerStats {
    const c = this.counters;
    return { queued: this.queue.length, inFlight: this.inFlight, sent: c.created + c.replayed, ...c };
  }

  hashTrackedSkillId(rawId: string): Promise<string> {
    if (this.options.trackedSkillHashKey === undefined) {
      throw new TypeError("Hashing a tracked skill id needs createCoachLedger({ trackedSkillHashKey }) (the server's TRACKED_SKILL_HASH_KEY)");
    }
    return hashTrackedSkillId(rawId, this.options.trackedSkillHashKey);
  }

  // ---- queueing -------------------------------------------------------------------------

  /** Checks, serializes and queues one item; schedules a flush. */
  private enqueue(type: LedgerItem["type"], input: InteractionInput | EventInput): string {
    const item = checkItem(type, input);
    const requestId = item.request_id ?? crypto.randomUUID();
    if (this.closed) {
      this.counters.dropped++;
      return requestId;
    }
    // Interactions go without `type` (the API's default), so older servers that knew only
    // interactions take them too; events say what they are.
    const { type: _type, ...fields } = item;
    const wire = type === "event" ? { type, ...fields, request_id: requestId } : { ...fields, request_id: requestId };
    const json = JSON.stringify(wire);
    const bytes = utf8Length(json);
    if (bytes + ENVELOPE_BYTES > this.maxBatchBytes) {
      throw new TypeError(`The item is ${bytes} bytes of JSON, more than a batch may hold (${this.maxBatchBytes - ENVELOPE_BYTES})`);
    }
    if (this.queue.length >= this.maxQueueSize) {
      this.queue.shift();
      this.counters.dropped++;
    }
    this.queue.push({ seq: ++this.seq, type, json, bytes, pass: 0 });

    if (this.queue.length >= this.flushAt && this.running === null && Date.now() >= this.backoffUntil) {
      void this.schedule();
    } else {
      this.arm(this.flushIntervalMs);
    }
    return requestId;
  }

  /** Puts entries back in order of arrival; trims the oldest beyond maxQueueSize. */
  private requeue(entries: Entry[], result: FlushResult): void {
    if (entries.length === 0) return;
    this.counters.requeued += entries.length;
    result.requeued += entries.length;
    const merged: Entry[] = [];
    let i = 0, j = 0;
    const back = [...entries].sort((a, b) => a.seq - b.seq);
    while (i < back.length || j < this.queue.length) {
      if (j >= this.queue.length || (i < back.length && back[i].seq < this.queue[j].seq)) merged.push(back[i++]);
      else merged.push(this.queue[j++]);
    }
    const over = Math.max(0, merged.length - this.maxQueueSize);
    this.queue = over > 0 ? merged.slice(over) : merged;
    this.counters.dropped += over;
    result.dropped += over;
  }

  /** The next batch of one pass: queued up to target, not yet sent in this pass, within the limits. */
  private take(target: number, pass: number): Entry[] {
    const limit = Math.min(this.flushAt, this.batchCap);
    const batch: Entry[] = [];
    let bytes = ENVELOPE_BYTES;
    for (const e of this.queue) {
      if (e.seq > target || batch.length >= limit) break;
      if (e.pass === pass) continue;
      const more = e.bytes + (batch.length > 0 ? 1 : 0);
      if (bytes + more > this.maxBatchBytes) break;
      bytes += more;
      batch.push(e);
    }
    if (batch.length > 0) {
      const taken = new Set(batch);
      this.queue = this.queue.filter((e) => !taken.has(e));
      for (const e of batch) e.pass = pass;
    }
    return batch;
  }

  // ---- scheduling -----------------------------------------------------------------------

  /**
   * A flush of everything queued now. Flushes run one at a time: a flush asked for while one
   * runs shares it when it covers the same items, or else waits for the next one, which all
   * later callers share. So no item is ever in two requests at once.
   */
  private schedule(): Promise<FlushResult> {
    const target = this.seq;
    const running = this.running;
    if (running && target <= running.target) return running.promise;
    let next = this.next;
    if (next) next.target = Math.max(next.target, target);
    else {
      let resolve!: (result: FlushResult) => void;
      const promise = new Promise<FlushResult>((r) => (resolve = r));
      next = { target, promise, resolve };
      if (running) this.next = next;
      else this.start(next);
    }
    // Waiting for the running flush too: the summary covers both.
    return running ? Promise.all([running.promise, next.promise]).then(([a, b]) => add(a, b)) : next.promise;
  }

  private start(drain: Drain): void {
    this.running = drain;
    this.clearTimer();
    this.drain(drain.target)
      .catch((): FlushResult => ({ ...zero(), queued: this.queue.length })) // drain() does not throw; belt and braces.
      .then((result) => {
        this.running = null;
        const next = this.next;
        this.next = null;
        drain.resolve(result);
        if (next) this.start(next);
        else this.afterDrain(drain.target);
      });
  }

  /** After a flush: flush again at once if a full batch arrived meanwhile, else arm the timer. */
  private afterDrain(target: number): void {
    if (this.closed || this.queue.length === 0) return;
    const now = Date.now();
    if (this.backoffUntil > now) return this.arm(this.backoffUntil - now);
    const arrived = this.queue.filter((e) => e.seq > target).length;
    if (arrived >= this.flushAt) void this.schedule();
    else this.arm(this.flushIntervalMs);
  }

  /** Arms the flush timer unless it is armed; it never keeps the process alive by itself. */
  private arm(ms: number): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A flush under way re-arms the timer when it ends; a backoff after a give-up is kept.
      if (this.running) return;
      const wait = this.backoffUntil - Date.now();
      if (wait > 0) return this.arm(wait);
      void this.schedule();
    }, Math.min(ms, MAX_TIMER_MS));
    keepAlive(this.timer, false);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** p, while the process is kept alive for it: someone awaits it. */
  private async awaited<T>(p: Promise<T>): Promise<T> {
    if (this.waiters++ === 0 && this.sleepTimer !== undefined) keepAlive(this.sleepTimer, true);
    try {
      return await p;
    } finally {
      if (--this.waiters === 0 && this.sleepTimer !== undefined) keepAlive(this.sleepTimer, false);
    }
  }

  // ---- sending --------------------------------------------------------------------------

  /**
   * Sends the items queued up to target, batch after batch. Stops early when a batch runs out
   * of retries (the server is unreachable: the rest can wait for the next flush). At shutdown,
   * items refused with 409 are tried again in further passes, as there is no next flush.
   */
  private async drain(target: number): Promise<FlushResult> {
    const result = zero();
    let pass = ++this.passes;
    let extraPasses = 0;
    while (!this.stop.signal.aborted) {
      const batch = this.take(target, pass);
      if (batch.length === 0) {
        const waiting = this.queue.some((e) => e.seq <= target && e.pass === pass);
        if (!this.closed || !waiting || extraPasses >= this.retry.maxAttempts - 1) break;
        extraPasses++;
        await this.sleep(this.backoff(extraPasses));
        pass = ++this.passes;
        continue;
      }
      this.inFlight = batch.length;
      const outcome = await this.send(batch, result);
      this.inFlight = 0;
      if (outcome === "gave-up") break;
    }
    result.queued = this.queue.length;
    return result;
  }

  /** One batch until it is settled: done (every item answered or given up), or given up for now. */
  private async send(batch: Entry[], result: FlushResult): Promise<"done" | "gave-up"> {
    const started = Date.now();
    for (let attempt = 1;; attempt++) {
      const answer = await this.post(batch);
      if (answer.kind === "ok") {
        this.failureStreak = 0;
        this.backoffUntil = 0;
        this.settle(batch, answer.body, result);
        return "done";
      }
      if (answer.kind === "split") {
        if (batch.length === 1) {
          this.tooLargeItems++;
          this.refuse(batch[0], answer.problem, result);
          return "done";
        }
        // Too large for the body limit or for the rate limit's whole quota: halve. Later batches
        // keep to the half once a half got through whole; a single item the server refuses
        // as too large says nothing about the batch size, so it never shrinks it.
        const half = Math.ceil(batch.length / 2);
        const before = this.tooLargeItems;
        const first = await this.send(batch.slice(0, half), result);
        if (first === "gave-up") {
          this.requeue(batch.slice(half), result);
          return first;
        }
        const second = await this.send(batch.slice(half), result);
        if (this.tooLargeItems === before) this.batchCap = Math.min(this.batchCap, half);
        return second;
      }
      if (answer.kind === "fatal") {
        this.counters.failed += batch.length;
        result.failed += batch.length;
        this.report(new CoachLedgerError(
          `The batch was refused with ${answer.status}${answer.problem.detail ? `: ${answer.problem.detail}` : ""}; ${batch.length} items given up`,
          { status: answer.status, problem: answer.problem, items: batch.length, attempts: attempt, requeued: false },
        ));
        return "done";
      }
      const delay = Math.max(this.backoff(attempt), answer.retryAfterMs ?? 0);
      const outOfTime = Date.now() - started + delay > this.retry.maxElapsedMs;
      if (!this.stop.signal.aborted && attempt < this.retry.maxAttempts && !outOfTime) {
        this.counters.retries++;
        await this.sleep(delay);
        if (!this.stop.signal.aborted) continue;
      }
      this.giveUp(batch, answer, attempt, result);
      return "gave-up";
    }
  }

  /** A batch out of retries: back to the queue for a later flush, or dropped at shutdown. */
  private giveUp(batch: Entry[], answer: Attempt & { kind: "retry" }, attempts: number, result: FlushResult): void {
    this.failureStreak++;
    this.backoffUntil = Date.now() + Math.max(answer.retryAfterMs ?? 0, this.backoff(this.failureStreak), this.flushIntervalMs);
    const requeued = !this.closed;
    if (requeued) this.requeue(batch, result);
    else {
      this.counters.dropped += batch.length;
      result.dropped += batch.length;
    }
    const why = answer.status !== undefined ? `status ${answer.status}` : errorText(answer.cause);
    this.report(new CoachLedgerError(
      `The batch could not be delivered after ${attempts} attempts (${why}); ${batch.length} items ${requeued ? "requeued" : "dropped at shutdown"}`,
      { status: answer.status, problem: answer.problem, items: batch.length, attempts, requeued, cause: answer.cause },
    ));
  }

  /** Applies a 200 answer item by item. */
  private settle(batch: Entry[], body: BatchResponse, result: FlushResult): void {
    const byIndex = new Map<number, BatchItemResult>();
    for (const r of body.items) if (r && typeof r.index === "number") byIndex.set(r.index, r);
    const again: Entry[] = [];
    batch.forEach((entry, index) => {
      const r = byIndex.get(index);
      if (r?.outcome === "created") {
        this.counters.created++;
        result.created++;
      } else if (r?.outcome === "replayed") {
        this.counters.replayed++;
        result.replayed++;
      } else if (r?.outcome === "refused" && r.status !== 409) {
        this.refuse(entry, r.problem ?? { status: r.status }, result);
      } else {
        // 409: the same request_id is in flight in another request; or an item the answer
        // left out. Both are safe to send again.
        again.push(entry);
      }
    });
    this.requeue(again, result);
  }

  private refuse(entry: Entry, problem: Problem, result: FlushResult): void {
    this.counters.refused++;
    result.refused++;
    const onRefused = this.options.onRefused;
    if (!onRefused) return;
    try {
      ignoreRejection(onRefused({ type: entry.type, ...JSON.parse(entry.json) } as LedgerItem, problem));
    } catch {
      // A callback's failure must not stop delivery.
    }
  }

  private report(error: CoachLedgerError): void {
    try {
      ignoreRejection(this.options.onError?.(error));
    } catch {
      // A callback's failure must not stop delivery.
    }
  }

  /** One request for a batch; never throws. */
  private async post(batch: Entry[]): Promise<Attempt> {
    this.counters.requests++;
    const body = `{"items":[${batch.map((e) => e.json).join(",")}]}`;
    const controller = new AbortController();
    const onStop = () => controller.abort(this.stop.signal.reason);
    this.stop.signal.addEventListener("abort", onStop);
    const timeout = setTimeout(() => controller.abort(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    keepAlive(timeout, false);
    try {
      const response = await this.fetchImpl(this.endpoint, { method: "POST", headers: this.headers, body, signal: controller.signal });
      // Always read the body: it frees the connection, and it holds the answer or the problem.
      const text = await response.text();
      if (response.ok) {
        const parsed = parseJson(text) as BatchResponse | undefined;
        if (parsed && Array.isArray(parsed.items)) return { kind: "ok", body: parsed };
        this.counters.failedRequests++;
        return { kind: "retry", status: response.status, cause: new Error("The batch answer is not {items: [...]}") };
      }
      this.counters.failedRequests++;
      const problem = problemOf(text, response.status);
      const status = response.status;
      if (status === 413) return { kind: "split", problem };
      if (status === 408 || status === 429 || status >= 500) {
        return { kind: "retry", status, problem, retryAfterMs: retryAfter(response.headers.get("retry-after")) };
      }
      return { kind: "fatal", status, problem };
    } catch (error) {
      this.counters.failedRequests++;
      return { kind: "retry", cause: controller.signal.aborted ? controller.signal.reason : error };
    } finally {
      clearTimeout(timeout);
      this.stop.signal.removeEventListener("abort", onStop);
    }
  }

  /** Full jitter: random in [0, min(maxDelayMs, baseDelayMs × 2^(attempt-1))). */
  private backoff(attempt: number): number {
    const cap = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
    return Math.floor(this.random() * cap);
  }

  /** Waits ms, or less if the client is stopped. Keeps the process alive only while someone awaits a flush. */
  private sleep(ms: number): Promise<void> {
    const signal = this.stop.signal;
    if (this.options.sleep) return this.options.sleep(ms, signal).catch(() => undefined);
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        if (this.sleepTimer === timer) this.sleepTimer = undefined;
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, MAX_TIMER_MS));
      this.sleepTimer = timer;
      keepAlive(timer, this.waiters > 0);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

// ---- helpers --------------------------------------------------------------------------

/**
 * The item as given, after the checks that make it deliverable at all. The server owns every
 * other rule (value ranges, uuids, who may log what) and refuses an item that breaks one
 * through onRefused; repeating them here would be a second copy to keep in step.
 */
function checkItem(type: LedgerItem["type"], input: InteractionInput | EventInput): InteractionInput | EventInput {
  const what = type === "event" ? "event()" : "log()";
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new TypeError(`${what} takes an object`);
  const item = input as Record<string, unknown>;
  if (item.type !== undefined && item.type !== type) throw new TypeError(`${what} takes items of type "${type}", not "${String(item.type)}"`);
  if (item.request_id !== undefined && (typeof item.request_id !== "string" || !REQUEST_ID.test(item.request_id))) {
    throw new TypeError(`${what}: request_id must be 1 to 128 letters, digits or . _ : -`);
  }
  if ("tracked_skill_id" in item) {
    throw new TypeError(`${what}: send tracked_skill_id_hash (ledger.hashTrackedSkillId(id)), never the raw tracked_skill_id`);
  }
  if (type === "interaction") {
    if (typeof item.sender !== "string" || !SENDERS.has(item.sender)) {
      throw new TypeError(`log(): sender must be one of ${[...SENDERS].join(", ")}`);
    }
    const content = item.content as Record<string, unknown> | null | undefined;
    if (content === null || typeof content !== "object" || Array.isArray(content) || typeof content.text !== "string") {
      throw new TypeError("log(): content must be an object with a string text");
    }
  } else if (typeof item.kind !== "string" || !EVENT_KINDS.has(item.kind)) {
    throw new TypeError(`event(): kind must be one of ${[...EVENT_KINDS].join(", ")}`);
  }
  return input;
}

/** Swallows the rejection of an async callback (an unhandled one would end a Node process). */
function ignoreRejection(value: unknown): void {
  if (value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function") {
    (value as PromiseLike<unknown>).then(undefined, () => {});
  }
}

/** An integer option within [min, max], or its default; TypeError otherwise. */
function intOption(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) throw new TypeError(`${name} must be an integer from ${min} to ${max}`);
  return value;
}

/** The longest wait the SDK honours from Retry-After (1 hour); a longer one is cut to it. */
const MAX_RETRY_AFTER_MS = 3_600_000;
/** The longest delay a timer takes (setTimeout fires at once on anything larger). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The delay a Retry-After header asks for, in ms: delta-seconds (RFC 9110: digits only) or an
 * HTTP-date (IMF-fixdate, as servers send it), at most MAX_RETRY_AFTER_MS; undefined when it
 * is neither (Date.parse alone would read "1.5" or "-5" as dates).
 */
function retryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Math.min(Number(value) * 1000, MAX_RETRY_AFTER_MS);
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.min(Math.max(0, date - now), MAX_RETRY_AFTER_MS);
}

/** The problem+json of an error answer, or a bare one with the status. */
function problemOf(text: string, status: number): Problem {
  const body = parseJson(text);
  if (body !== null && typeof body === "object" && !Array.isArray(body)) return { ...(body as Record<string, unknown>), status };
  return { status, detail: text.slice(0, 500) || undefined };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** UTF-8 length of s without encoding it (lone surrogates count 3, as TextEncoder writes U+FFFD). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function zero(): FlushResult {
  return { created: 0, replayed: 0, refused: 0, failed: 0, requeued: 0, dropped: 0, queued: 0 };
}

function add(a: FlushResult, b: FlushResult): FlushResult {
  return {
    created: a.created + b.created,
    replayed: a.replayed + b.replayed,
    refused: a.refused + b.refused,
    failed: a.failed + b.failed,
    requeued: a.requeued + b.requeued,
    dropped: a.dropped + b.dropped,
    queued: b.queued,
  };
}

/**
 * Lets a timer keep the process alive, or not: `ref`/`unref` on Node and Bun timers,
 * `Deno.refTimer`/`Deno.unrefTimer` on Deno; elsewhere (browsers, workers) there is no such
 * thing and nothing to do.
 */
function keepAlive(timer: unknown, keep: boolean): void {
  if (typeof timer === "object" && timer !== null) {
    const t = timer as { ref?: () => unknown; unref?: () => unknown };
    if (keep) t.ref?.();
    else t.unref?.();
    return;
  }
  const deno = (globalThis as { Deno?: { refTimer?: (id: number) => void; unrefTimer?: (id: number) => void } }).Deno;
  if (typeof timer !== "number" || !deno) return;
  if (keep) deno.refTimer?.(timer);
  else deno.unrefTimer?.(timer);
}
