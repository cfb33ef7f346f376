/**
 * Local stand-ins for the two servers the SDK talks to, on 127.0.0.1 with a free port:
 *
 * - fakeLedger(): POST /functions/v1/log-interaction/batch as the API describes it: items
 *   stored once per request_id (a resend answers `replayed`), per-item refusals (422 by a
 *   rule, 409 "in flight" for chosen request_ids, once), 413 for batches over `maxItems` or
 *   holding an item `tooLarge` says so, scripted whole-request answers (429 with Retry-After,
 *   500, 401, a lost answer after storing), a delay before answering, and a record of every
 *   request (headers, raw body, items) and of the most requests ever in flight at once.
 * - fakeOpenAI(): POST /v1/chat/completions, plain and streaming (SSE, with the usage chunk
 *   when `stream_options.include_usage` is set), with behaviours chosen by the request's model:
 *   `fail-429`, `fail-500`, `tools`, `stream-error` (an error event after two chunks), `long`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the fake ledger received. */
export interface Received {
  headers: IncomingMessage["headers"];
  raw: string;
  items: Record<string, unknown>[];
}

/** A scripted answer to the next request: a whole-request status, or store-then-fail. */
export type Scripted =
  | { status: number; retryAfter?: string; body?: unknown }
  | { lose: true };

export interface FakeLedger {
  url: string;
  requests: Received[];
  /** Stored items by request_id. */
  stored: Map<string, Record<string, unknown>>;
  /** Answers for the next requests, in order; then normal processing. */
  script: Scripted[];
  /** request_ids to answer with a 409 refusal once (as if in flight elsewhere). */
  conflicts: Set<string>;
  /** A refusal rule: a problem for items to refuse (422), else undefined. */
  refuse: (item: Record<string, unknown>) => { status: number; code: string; detail: string } | undefined;
  /** Batches with more items answer 413. */
  maxItems: number;
  /** Batches holding an item this says yes to answer 413. */
  tooLarge: (item: Record<string, unknown>) => boolean;
  /** Wait before answering, in ms. */
  delayMs: number;
  /** Waits for the next requests, in order, before delayMs applies again. */
  delayNext: number[];
  /** Most requests in flight at once so far. */
  maxConcurrent: number;
  /** Every request_id the server was sent, each time it was sent. */
  sentIds(): string[];
  close(): Promise<void>;
}

/** Starts a fake batch route. */
export async function fakeLedger(): Promise<FakeLedger> {
  let active = 0;
  const ledger: FakeLedger = {
    url: "",
    requests: [],
    stored: new Map(),
    script: [],
    conflicts: new Set(),
    refuse: () => undefined,
    maxItems: 500,
    tooLarge: () => false,
    delayMs: 0,
    delayNext: [],
    maxConcurrent: 0,
    sentIds: () => ledger.requests.flatMap((r) => r.items.map((i) => String(i.request_id))),
    close: () => close(server),
  };
  const server = createServer(async (req, res) => {
    active++;
    ledger.maxConcurrent = Math.max(ledger.maxConcurrent, active);
    try {
      const raw = await readBody(req);
      if (req.method !== "POST" || req.url !== "/functions/v1/log-interaction/batch") return send(res, 404, { status: 404 });
      const items = (JSON.parse(raw) as { items: Record<string, unknown>[] }).items;
      ledger.requests.push({ headers: req.headers, raw, items });
      const delay = ledger.delayNext.shift() ?? ledger.delayMs;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const scripted = ledger.script.shift();
      if (scripted && "status" in scripted) {
        const headers: Record<string, string> = scripted.retryAfter === undefined ? {} : { "Retry-After": scripted.retryAfter };
        return send(res, scripted.status, scripted.body ?? { type: "about:blank", status: scripted.status, detail: `scripted ${scripted.status}` }, headers);
      }
      if (items.length > ledger.maxItems || items.some(ledger.tooLarge)) {
        return send(res, 413, { type: "about:blank", title: "Content Too Large", status: 413, detail: "Too large" });
      }
      const answer = answerBatch(ledger, items);
      if (scripted && "lose" in scripted) return send(res, 500, { status: 500, detail: "answer lost" });
      return send(res, 200, answer);
    } finally {
      active--;
    }
  });
  ledger.url = await listen(server);
  return ledger;
}

function answerBatch(ledger: FakeLedger, items: Record<string, unknown>[]) {
  const counts = { created: 0, replayed: 0, refused: 0 };
  const results = items.map((item, index) => {
    const type = item.type === "event" ? "event" : "interaction";
    const id = String(item.request_id);
    const refusal = ledger.conflicts.has(id)
      ? { status: 409, code: "PT409", detail: "This request_id is in flight" }
      : ledger.refuse(item);
    if (ledger.conflicts.has(id)) ledger.conflicts.delete(id);
    if (refusal) {
      counts.refused++;
      return { index, type, outcome: "refused", status: refusal.status, problem: { ...refusal, errors: [{ field: "(item)", message: refusal.detail }] } };
    }
    const replayed = ledger.stored.has(id);
    if (!replayed) ledger.stored.set(id, item);
    counts[replayed ? "replayed" : "created"]++;
    return { index, type, outcome: replayed ? "replayed" : "created", status: replayed ? 200 : 201, [type]: { id: `row-${id}`, ...item } };
  });
  return { ...counts, items: results };
}

/** One chat completion request the fake OpenAI received. */
export interface FakeOpenAI {
  url: string;
  bodies: Record<string, unknown>[];
  close(): Promise<void>;
}

/** What the fake model answers. */
export const REPLY = ["Twenty minutes ", "is a real win."];
export const USAGE = { prompt_tokens: 812, completion_tokens: 64, total_tokens: 876, prompt_tokens_details: { cached_tokens: 512 } };
/** The model name in answers (the request says gpt-4o-mini). */
export const ANSWER_MODEL = "gpt-4o-mini-2024-07-18";

/** Starts a fake chat completions API. */
export async function fakeOpenAI(): Promise<FakeOpenAI> {
  const fake: FakeOpenAI = { url: "", bodies: [], close: () => close(server) };
  const server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    fake.bodies.push(body);
    const model = String(body.model);
    if (model === "fail-429") {
      return send(res, 429, { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } });
    }
    if (model === "fail-500") return send(res, 500, { error: { message: "boom", type: "server_error", code: null } });
    const text = model === "long" ? "x".repeat(40_000) : REPLY.join("");
    const tools = model === "tools"
      ? [{ id: "call_1", type: "function", function: { name: "schedule_walk", arguments: "{\"time\":\"07:00\"}" } }]
      : undefined;
    if (model === "odd-shape") {
      // An OpenAI-compatible server's unusual answer: tool_calls not a list; a null tool call.
      if (body.stream !== true) {
        return send(res, 200, { id: "chatcmpl-odd", object: "chat.completion", created: 1, model: ANSWER_MODEL,
          choices: [{ index: 0, message: { role: "assistant", content: "odd", tool_calls: "none" }, finish_reason: "stop" }] });
      }
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      res.write(`data: ${JSON.stringify({ id: "chatcmpl-odd", object: "chat.completion.chunk", created: 1, model: ANSWER_MODEL, choices: [{ index: 0, delta: { content: "odd", tool_calls: [null] }, finish_reason: "stop" }] })}\n\n`);
      return res.end("data: [DONE]\n\n");
    }
    if (body.stream !== true) {
      return send(res, 200, {
        id: "chatcmpl-1",
        object: "chat.completion",
        created: 1,
        model: ANSWER_MODEL,
        choices: [{ index: 0, message: { role: "assistant", content: tools ? null : text, refusal: null, tool_calls: tools }, finish_reason: tools ? "tool_calls" : "stop", logprobs: null }],
        usage: USAGE,
      });
    }
    const withUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      res.write(`data: ${JSON.stringify({ id: "chatcmpl-2", object: "chat.completion.chunk", created: 1, model: ANSWER_MODEL, choices, ...(withUsage ? { usage: null } : {}), ...extra })}\n\n`);
    chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]);
    if (tools) {
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "schedule_walk", arguments: "" } }] }, finish_reason: null }]);
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: "{}" } }] }, finish_reason: null }]);
    } else {
      for (const part of REPLY) chunk([{ index: 0, delta: { content: part }, finish_reason: null }]);
    }
    if (model === "stream-error") {
      res.write(`data: ${JSON.stringify({ error: { message: "The server had an error", type: "server_error", code: "server_error" } })}\n\n`);
      return res.end();
    }
    chunk([{ index: 0, delta: {}, finish_reason: tools ? "tool_calls" : "stop" }]);
    if (withUsage) chunk([], { usage: USAGE });
    res.end("data: [DONE]\n\n");
  });
  fake.url = await listen(server);
  return fake;
}

/** A URL on 127.0.0.1 where nothing listens (a port that was free a moment ago). */
export async function unreachableUrl(): Promise<string> {
  const server = createServer();
  const url = await listen(server);
  await close(server);
  return url;
}

/** Polls until check() is true; throws after timeoutMs. */
export async function waitFor(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error("waitFor: timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const type = status >= 400 && !(body as { error?: unknown }).error ? "application/problem+json" : "application/json";
  res.writeHead(status, { "Content-Type": type, ...headers });
  res.end(JSON.stringify(body));
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
