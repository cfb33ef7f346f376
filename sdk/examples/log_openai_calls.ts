/**
 * Example: log OpenAI chat completions (plain and streamed) and an app event to Coach Ledger,
 * then read the stored rows back. Runs without network: unless OPENAI_API_KEY is set, it
 * starts a tiny fake chat completions server on 127.0.0.1 and points the real `openai` client
 * at it.
 *
 *   npm start                                    # the local stack, in another terminal
 *   export COACH_LEDGER_KEY=$(npx node local/cli.ts status -o env | sed -n 's/^SERVICE_ROLE_KEY="\(.*\)"$/\1/p')
 *   npx node sdk/examples/log_openai_calls.ts
 *
 * Environment: COACH_LEDGER_URL (default http://127.0.0.1:54321), COACH_LEDGER_KEY (required:
 * the service role key, or a coach_ingest token), TRACKED_SKILL_HASH_KEY (default: the local
 * stack's development key, LOCAL_TRACKED_SKILL_HASH_KEY in local/stack.ts), OPENAI_API_KEY and
 * OPENAI_MODEL (optional: use the real OpenAI API instead of the fake).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { createCoachLedger, observeOpenAI } from "../src/index.ts";

const url = process.env.COACH_LEDGER_URL ?? "http://127.0.0.1:54321";
const key = process.env.COACH_LEDGER_KEY;
const hashKey = process.env.TRACKED_SKILL_HASH_KEY ?? "coach-ledger-local-tracked-skill-hash-key";
const ALICE = "a11ce000-0000-4000-8000-000000000001"; // a seeded client
const ALICE_SESSION = "a11ce000-5e55-4000-8000-000000000001"; // her seeded coaching session

if (!key) {
  console.error("Set COACH_LEDGER_KEY to the service role key: see the comment at the top of this file.");
  process.exit(1);
}

// One id for this run, to find its rows afterwards.
const run = crypto.randomUUID();

const fake = process.env.OPENAI_API_KEY ? undefined : await fakeOpenAI();
const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "sk-fake", baseURL: fake?.url });
const model = process.env.OPENAI_MODEL ?? "gpt-4o-mini";

const ledger = createCoachLedger({
  url,
  key,
  trackedSkillHashKey: hashKey,
  onError: (error) => console.error(`ledger: ${error.message}`),
  onRefused: (item, problem) => console.error(`ledger: refused ${item.type} ${item.request_id}: ${problem.status} ${problem.detail ?? ""}`),
});

// Wrap per user and conversation: every completion through `openai` is logged for Alice.
const openai = observeOpenAI(client, {
  ledger,
  userId: ALICE,
  sessionId: ALICE_SESSION,
  conversationId: run,
  persona: "encourager",
  trackedSkillId: "sleep-routine", // sent only as its keyed hash
  channel: "chat",
  metadata: { example: "log_openai_calls" },
});

const messages = [{ role: "user" as const, content: "I walked for twenty minutes this morning!" }];

const reply = await openai.chat.completions.create({ model, messages });
console.log(`plain:    ${reply.choices[0]?.message.content}`);

let streamed = "";
for await (const chunk of await openai.chat.completions.create({ model, messages, stream: true })) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
}
console.log(`streamed: ${streamed}`);

// An app event beside them: Alice rated the reply.
ledger.event({ kind: "rating", score: 5, user_id: ALICE, group_id: run, category: "example" });

// Before the process ends: send what waits (log() itself never waits).
const result = await ledger.shutdown();
console.log("shutdown:", JSON.stringify(result));
console.log("stats:   ", JSON.stringify(ledger.stats()));

// Read this run's rows back through the Data API (the service role reads every row).
const headers = { apikey: key, Authorization: `Bearer ${key}` };
for (
  const path of [
    `coach_interactions?conversation_id=eq.${run}&select=request_id,sender,model,latency_ms,prompt_tokens,completion_tokens,cached_tokens,cost_usd,status,tracked_skill_id_hash,metadata&order=created_at`,
    `interaction_events?group_id=eq.${run}&select=request_id,kind,score,category`,
  ]
) {
  try {
    const response = await fetch(`${url}/rest/v1/${path}`, { headers });
    console.log(`${path.split("?")[0]} (${response.status}):`, await response.text());
  } catch (error) {
    console.error(`could not read ${path.split("?")[0]}: ${(error as Error).message}`);
  }
}

await fake?.close();

/** A fake chat completions API: a fixed reply with token usage, plain or streamed (SSE). */
async function fakeOpenAI(): Promise<{ url: string; close: () => Promise<void> }> {
  const text = ["Twenty minutes ", "is a real win. ", "Same time tomorrow?"];
  const usage = { prompt_tokens: 812, completion_tokens: 14, total_tokens: 826, prompt_tokens_details: { cached_tokens: 512 } };
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d));
    req.on("end", () => {
      const body = JSON.parse(raw) as { model: string; stream?: boolean; stream_options?: { include_usage?: boolean } };
      const base = { id: "chatcmpl-example", created: Math.floor(Date.now() / 1000), model: `${body.model}-2024-07-18` };
      if (!body.stream) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({
          ...base,
          object: "chat.completion",
          choices: [{ index: 0, message: { role: "assistant", content: text.join(""), refusal: null }, finish_reason: "stop", logprobs: null }],
          usage,
        }));
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      const send = (chunk: object) => res.write(`data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", ...chunk })}\n\n`);
      for (const part of text) send({ choices: [{ index: 0, delta: { content: part }, finish_reason: null }] });
      send({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
      if (body.stream_options?.include_usage) send({ choices: [], usage });
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
