/**
 * observeOpenAI with the real `openai` package, pointed at a fake chat completions server
 * (fake_servers.ts), logging to a fake batch route: plain, streaming, abandoned, failing and
 * tool-calling completions; the stream's other readers (tee, toReadableStream); the helpers
 * on create's promise; that the caller's client is left alone; and that the tracked skill id
 * is sent only as the HMAC the server would compute.
 */
import { createHmac } from "node:crypto";
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { type CoachLedger, createCoachLedger, observeOpenAI } from "../src/index.ts";
import { ANSWER_MODEL, type FakeLedger, fakeLedger, type FakeOpenAI, fakeOpenAI, REPLY, USAGE } from "./fake_servers.ts";

const ALICE = "a11ce000-0000-4000-8000-000000000001";
const SESSION = "a11ce000-5e55-4000-8000-000000000001";
const CONVERSATION = "c0000000-0000-4000-8000-00000000a001";
const HASH_KEY = "coach-ledger-local-tracked-skill-hash-key";
const SKILL = "active-listening-raw-7f3a";
const MESSAGES = [{ role: "user" as const, content: "I walked 20 minutes today!" }];

let server: FakeLedger;
let ai: FakeOpenAI;
let ledger: CoachLedger;
let client: OpenAI;

beforeEach(async () => {
  server = await fakeLedger();
  ai = await fakeOpenAI();
  ledger = createCoachLedger({ url: server.url, key: "service-role-key", flushIntervalMs: 600_000, trackedSkillHashKey: HASH_KEY });
  client = new OpenAI({ apiKey: "sk-test", baseURL: `${ai.url}/v1`, maxRetries: 0 });
});

afterEach(async () => {
  await ledger.shutdown({ timeoutMs: 2_000 });
  await server.close();
  await ai.close();
});

function wrap(extra: Partial<Parameters<typeof observeOpenAI>[1]> = {}) {
  return observeOpenAI(client, {
    ledger,
    userId: ALICE,
    sessionId: SESSION,
    conversationId: CONVERSATION,
    persona: "encourager",
    trackedSkillId: SKILL,
    channel: "chat",
    metadata: { app: "sdk-test" },
    ...extra,
  });
}

/** Flushes the ledger and returns every item the batch route received. */
async function logged(): Promise<Record<string, unknown>[]> {
  await ledger.flush();
  return server.requests.flatMap((r) => r.items);
}

const expectedHash = createHmac("sha256", HASH_KEY).update(SKILL).digest("hex");

describe("observeOpenAI, plain completions", () => {
  test("logs one ai_coach interaction with model, tokens, latency, status and the request's ids", async () => {
    const openai = wrap();
    const completion = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES });
    expect(completion.choices[0].message.content).toBe(REPLY.join(""));
    const items = await logged();
    expect(items).toHaveLength(1);
    const [item] = items;
    expect(item).toMatchObject({
      sender: "ai_coach",
      user_id: ALICE,
      session_id: SESSION,
      conversation_id: CONVERSATION,
      coach_persona: "encourager",
      channel: "chat",
      content: { text: REPLY.join("") },
      model: ANSWER_MODEL,
      prompt_tokens: USAGE.prompt_tokens,
      completion_tokens: USAGE.completion_tokens,
      cached_tokens: USAGE.prompt_tokens_details.cached_tokens,
      status: "ok",
      tracked_skill_id_hash: expectedHash,
      metadata: { app: "sdk-test", finish_reason: "stop", completion_id: "chatcmpl-1" },
    });
    expect(item).not.toHaveProperty("error_code");
    expect(Number.isInteger(item.latency_ms) && (item.latency_ms as number) >= 0).toBe(true);
    expect(item.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("the raw tracked skill id never leaves the process", async () => {
    const openai = wrap();
    await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES });
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES, stream: true });
    for await (const _ of stream) { /* drain */ }
    await expect(openai.chat.completions.create({ model: "fail-429", messages: MESSAGES })).rejects.toThrow();
    const items = await logged();
    expect(items).toHaveLength(3);
    for (const item of items) expect(item.tracked_skill_id_hash).toBe(expectedHash);
    for (const r of server.requests) expect(r.raw).not.toContain(SKILL);
    for (const body of ai.bodies) expect(JSON.stringify(body)).not.toContain(SKILL);
  });

  test("logs a failed call as an error and rethrows the original error", async () => {
    const openai = wrap();
    const error = await openai.chat.completions.create({ model: "fail-429", messages: MESSAGES }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).status).toBe(429);
    expect((error as Error).message).toContain("Rate limit reached");
    const error500 = await openai.chat.completions.create({ model: "fail-500", messages: MESSAGES }).catch((e: unknown) => e);
    expect(error500).toBeInstanceOf(OpenAI.InternalServerError);
    const items = await logged();
    expect(items).toHaveLength(2);
    expect(items[0]).toMatchObject({
      sender: "ai_coach",
      status: "error",
      error_code: "openai.429.rate_limit_exceeded",
      content: { text: "" },
      model: "fail-429",
      tracked_skill_id_hash: expectedHash,
    });
    expect(items[0]).not.toHaveProperty("prompt_tokens");
    expect(items[1]).toMatchObject({ status: "error", error_code: "openai.500", model: "fail-500" });
  });

  test("names the tools the model called in content", async () => {
    const openai = wrap();
    await openai.chat.completions.create({ model: "tools", messages: MESSAGES });
    const stream = await openai.chat.completions.create({ model: "tools", messages: MESSAGES, stream: true });
    for await (const _ of stream) { /* drain */ }
    const items = await logged();
    expect(items.map((i) => i.content)).toEqual([
      { text: "", tool_calls: ["schedule_walk"] },
      { text: "", tool_calls: ["schedule_walk"] },
    ]);
  });

  test("an answer of an unexpected shape reaches the caller unchanged, and is still logged", async () => {
    const openai = wrap();
    const plain = await client.chat.completions.create({ model: "odd-shape", messages: MESSAGES });
    const observed = await openai.chat.completions.create({ model: "odd-shape", messages: MESSAGES });
    expect(observed).toEqual(plain);
    const direct: unknown[] = [];
    for await (const chunk of await client.chat.completions.create({ model: "odd-shape", messages: MESSAGES, stream: true, stream_options: { include_usage: true } })) direct.push(chunk);
    const seen: unknown[] = [];
    for await (const chunk of await openai.chat.completions.create({ model: "odd-shape", messages: MESSAGES, stream: true, stream_options: { include_usage: true } })) seen.push(chunk);
    expect(seen).toEqual(direct);
    const items = await logged();
    expect(items.map((i) => [i.status, (i.content as { text: string }).text])).toEqual([["ok", "odd"], ["ok", "odd"]]);
  });

  test("cuts a reply longer than the server's bound and marks it", async () => {
    const openai = wrap();
    await openai.chat.completions.create({ model: "long", messages: MESSAGES });
    const [item] = await logged();
    const content = item.content as { text: string; truncated?: boolean };
    expect(content.text).toHaveLength(32_768);
    expect(content.truncated).toBe(true);
  });

  test("withResponse() and parse() still work, and are logged", async () => {
    const openai = wrap();
    const { data, response, request_id } = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES }).withResponse();
    expect(response.status).toBe(200);
    expect(data.model).toBe(ANSWER_MODEL);
    expect(request_id).toBeNull();
    const parsed = await openai.chat.completions.parse({ model: "gpt-4o-mini", messages: MESSAGES });
    expect(parsed.choices[0].message.content).toBe(REPLY.join(""));
    expect(parsed.choices[0].message.parsed).toBeNull();
    const items = await logged();
    expect(items).toHaveLength(2);
    for (const item of items) expect(item).toMatchObject({ status: "ok", model: ANSWER_MODEL, prompt_tokens: USAGE.prompt_tokens });
  });

  test("the stream() helper is logged once per model call", async () => {
    const openai = wrap();
    const runner = openai.chat.completions.stream({ model: "gpt-4o-mini", messages: MESSAGES });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0].message.content).toBe(REPLY.join(""));
    const items = await logged();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ content: { text: REPLY.join("") }, prompt_tokens: USAGE.prompt_tokens, metadata: { stream: true } });
  });

  test("asResponse() hands over the body unread, and the call is logged without content", async () => {
    const openai = wrap();
    const pending = openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES });
    expect(pending).toBeInstanceOf(Promise);
    const response = await pending.asResponse();
    const body = await response.json() as OpenAI.ChatCompletion;
    expect(body.choices[0].message.content).toBe(REPLY.join(""));
    const items = await logged();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ status: "ok", content: { text: "" }, model: "gpt-4o-mini", metadata: { raw_response: true } });
  });
});

describe("observeOpenAI, streams", () => {
  test("the caller sees the same chunks as without the wrapper, and one interaction is logged at the end", async () => {
    const plain: unknown[] = [];
    for await (const chunk of await client.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES, stream: true })) plain.push(chunk);

    const openai = wrap();
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES, stream: true });
    expect(await logged()).toHaveLength(0); // nothing until the stream ends
    const seen: unknown[] = [];
    for await (const chunk of stream) seen.push(chunk);
    expect(seen).toEqual(plain);

    // Usage was asked for on the caller's behalf, and its extra chunk kept from them.
    expect(ai.bodies[0].stream_options).toBeUndefined();
    expect(ai.bodies[1].stream_options).toEqual({ include_usage: true });

    const items = await logged();
    expect(items).toHaveLength(1);
    const [item] = items;
    expect(item).toMatchObject({
      sender: "ai_coach",
      content: { text: REPLY.join("") },
      model: ANSWER_MODEL,
      prompt_tokens: USAGE.prompt_tokens,
      completion_tokens: USAGE.completion_tokens,
      cached_tokens: USAGE.prompt_tokens_details.cached_tokens,
      status: "ok",
      tracked_skill_id_hash: expectedHash,
      metadata: { app: "sdk-test", stream: true, finish_reason: "stop", completion_id: "chatcmpl-2" },
    });
    const metadata = item.metadata as { ttft_ms: number };
    expect(Number.isInteger(metadata.ttft_ms)).toBe(true);
    expect(metadata.ttft_ms).toBeLessThanOrEqual(item.latency_ms as number);
  });

  test("a caller who asked for usage gets the usage chunk", async () => {
    const openai = wrap();
    const stream = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    const seen: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) seen.push(chunk);
    expect(seen.at(-1)).toMatchObject({ choices: [], usage: USAGE });
    const [item] = await logged();
    expect(item).toMatchObject({ prompt_tokens: USAGE.prompt_tokens, completion_tokens: USAGE.completion_tokens });
  });

  test("includeUsage: false leaves the request alone, and logs no tokens", async () => {
    const openai = wrap({ includeUsage: false });
    for await (const _ of await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES, stream: true })) { /* drain */ }
    expect(ai.bodies[0].stream_options).toBeUndefined();
    const [item] = await logged();
    expect(item).toMatchObject({ content: { text: REPLY.join("") }, status: "ok" });
    expect(item).not.toHaveProperty("prompt_tokens");
  });

  test("logs an abandoned stream once, with what it said so far", async () => {
    const openai = wrap();
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES, stream: true });
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (text.length > 0) break;
    }
    const items = await logged();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ status: "ok", content: { text: REPLY[0] }, metadata: { stream: true, abandoned: true } });
  });

  test("logs a stream that fails midway as an error, and the caller gets the error", async () => {
    const openai = wrap();
    const stream = await openai.chat.completions.create({ model: "stream-error", messages: MESSAGES, stream: true });
    let text = "";
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(text).toBe(REPLY.join(""));
    const items = await logged();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ status: "error", error_code: "openai.server_error", content: { text: REPLY.join("") } });
  });

  test("tee() and toReadableStream() keep working, and are logged once each", async () => {
    const openai = wrap();
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES, stream: true });
    const [left, right] = stream.tee();
    const read = async (s: AsyncIterable<OpenAI.ChatCompletionChunk>) => {
      let text = "";
      for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? "";
      return text;
    };
    expect(await Promise.all([read(left), read(right)])).toEqual([REPLY.join(""), REPLY.join("")]);

    const other = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES, stream: true });
    const lines = (await new Response(other.toReadableStream()).text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe(REPLY.join(""));

    const items = await logged();
    expect(items).toHaveLength(2);
    for (const item of items) expect(item).toMatchObject({ content: { text: REPLY.join("") }, prompt_tokens: USAGE.prompt_tokens });
  });
});

describe("observeOpenAI, wrapping", () => {
  test("leaves the caller's client as it was", async () => {
    const create = client.chat.completions.create;
    const openai = wrap();
    expect(client.chat.completions.create).toBe(create);
    expect(openai).toBeInstanceOf(OpenAI);
    expect(openai.baseURL).toBe(client.baseURL);
    expect(openai.apiKey).toBe("sk-test");
    await client.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES });
    expect(await logged()).toHaveLength(0);
    // Methods of the client itself still run (they use its private fields).
    const other = openai.withOptions({ timeout: 5_000 });
    expect(other).toBeInstanceOf(OpenAI);
  });

  test("refuses a tracked skill id it cannot hash, at wrap time", () => {
    const keyless = createCoachLedger({ url: server.url, key: "k" });
    expect(() => observeOpenAI(client, { ledger: keyless, userId: ALICE, trackedSkillId: SKILL })).toThrow(TypeError);
    expect(() => observeOpenAI(client, { ledger, userId: ALICE, trackedSkillId: "" })).toThrow(TypeError);
    expect(() => observeOpenAI(client, { ledger } as never)).toThrow(TypeError);
    expect(() => observeOpenAI({} as never, { ledger, userId: ALICE })).toThrow(TypeError);
    void keyless.shutdown();
  });

  test("without a tracked skill id, no hash is sent", async () => {
    const openai = observeOpenAI(client, { ledger, userId: ALICE });
    await openai.chat.completions.create({ model: "gpt-4o-mini", messages: MESSAGES });
    const [item] = await logged();
    expect(item).not.toHaveProperty("tracked_skill_id_hash");
    expect(item).not.toHaveProperty("session_id");
  });
});
