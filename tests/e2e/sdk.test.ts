/**
 * The SDK (sdk/) against the running stack, as an AI backend and an app use it: interactions
 * and events through POST /functions/v1/log-interaction/batch with an ingest token, a second
 * ledger resending the same request ids (replayed, nothing stored twice), observeOpenAI over
 * the real `openai` client pointed at a local fake OpenAI (tokens, cost from model_prices,
 * the tracked skill id hashed in the process to the same value the functions compute), and a
 * signed-in user's ledger whose refused items reach onRefused. The SDK's behaviour under
 * failures (retries, 413 splitting, bounded memory) is covered by its own tests against fake
 * servers (sdk/test/).
 */
import OpenAI from "openai";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCoachLedger, observeOpenAI, type Problem } from "../../sdk/src/index.ts";
import { ANSWER_MODEL, type FakeOpenAI, fakeOpenAI, USAGE } from "../../sdk/test/fake_servers.ts";
import { gatewayEnv, mintToken } from "../../local/stack.ts";
import { ALICE, BOB, stack } from "../helpers.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
let ai: FakeOpenAI;
beforeAll(async () => {
  ai = await fakeOpenAI();
});
afterAll(async () => {
  await ai.close();
  await sql.end();
});

/** A ledger for an AI backend: a coach_ingest token, the project's anon key as apikey. */
async function ingestLedger(extra: Partial<Parameters<typeof createCoachLedger>[0]> = {}) {
  return createCoachLedger({
    url: stack().env.API_URL,
    key: await mintToken(stack().cfg, { role: "coach_ingest" }),
    apiKey: stack().env.ANON_KEY,
    trackedSkillHashKey: gatewayEnv(stack().cfg).TRACKED_SKILL_HASH_KEY,
    flushIntervalMs: 60_000,
    ...extra,
  });
}

describe("the SDK against the local stack", () => {
  it("logs interactions and events in one batch; a second ledger resending the same ids stores nothing twice", async () => {
    const run = crypto.randomUUID();
    const items = (ledger: Awaited<ReturnType<typeof ingestLedger>>) => [
      ledger.log({ request_id: `sdk-${run}-1`, user_id: ALICE, sender: "user", content: { text: "I walked today" }, conversation_id: run }),
      ledger.log({
        request_id: `sdk-${run}-2`, user_id: ALICE, sender: "ai_coach", content: { text: "Nice." }, conversation_id: run,
        model: "gpt-4o-mini", prompt_tokens: 1000, completion_tokens: 100, latency_ms: 900,
      }),
      ledger.event({ request_id: `sdk-${run}-3`, user_id: ALICE, kind: "rating", score: 5, group_id: run }),
    ];
    const first = await ingestLedger();
    expect(items(first)).toEqual([`sdk-${run}-1`, `sdk-${run}-2`, `sdk-${run}-3`]);
    expect(await first.shutdown()).toMatchObject({ created: 3, replayed: 0, refused: 0, failed: 0, dropped: 0 });

    const second = await ingestLedger();
    items(second);
    expect(await second.shutdown()).toMatchObject({ created: 0, replayed: 3, refused: 0 });

    const rows = await sql`select request_id, cost_usd::float8 as cost from public.coach_interactions where conversation_id = ${run} order by request_id`;
    expect(rows.map((r) => r.request_id)).toEqual([`sdk-${run}-1`, `sdk-${run}-2`]);
    expect(rows[1].cost).toBeGreaterThan(0);
    const [{ n }] = await sql`select count(*)::int as n from public.interaction_events where group_id = ${run}`;
    expect(n).toBe(1);
  });

  it("observeOpenAI logs plain and streamed completions with tokens, cost, latency and the functions' hash of the tracked skill id", async () => {
    const run = crypto.randomUUID();
    const ledger = await ingestLedger();
    const openai = observeOpenAI(new OpenAI({ apiKey: "sk-test", baseURL: `${ai.url}/v1`, maxRetries: 0 }), {
      ledger, userId: ALICE, conversationId: run, persona: "steady", trackedSkillId: "skill-sdk-e2e", channel: "chat",
    });
    const plain = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "I walked" }] });
    expect(plain.choices[0].message.content).toBe("Twenty minutes is a real win.");
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "again" }], stream: true });
    let streamed = "";
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
    expect(streamed).toBe("Twenty minutes is a real win.");
    await expect(openai.chat.completions.create({ model: "fail-500", messages: [{ role: "user", content: "x" }] })).rejects.toThrow();
    expect(await ledger.shutdown()).toMatchObject({ created: 3, refused: 0, failed: 0 });

    const rows = await sql`
      select sender, model, prompt_tokens, completion_tokens, cached_tokens, latency_ms, cost_usd::float8 as cost, status, error_code,
             coach_persona, tracked_skill_id_hash, content ->> 'text' as text, metadata
      from public.coach_interactions where conversation_id = ${run} order by created_at, id`;
    expect(rows).toHaveLength(3);
    const ok = rows.filter((r) => r.status === "ok");
    expect(ok).toHaveLength(2);
    for (const r of ok) {
      expect(r).toMatchObject({
        sender: "ai_coach", model: ANSWER_MODEL, prompt_tokens: USAGE.prompt_tokens, completion_tokens: USAGE.completion_tokens,
        cached_tokens: USAGE.prompt_tokens_details.cached_tokens, coach_persona: "steady", text: "Twenty minutes is a real win.",
      });
      expect(r.latency_ms).toBeGreaterThanOrEqual(0);
      expect(r.cost).toBeGreaterThan(0);
    }
    expect(ok.some((r) => r.metadata.stream === true)).toBe(true);
    const failed = rows.find((r) => r.status === "error")!;
    expect(failed).toMatchObject({ model: "fail-500", error_code: "openai.500" });

    // The same raw id through the single route, hashed by the functions with their key.
    const user = await mintToken(stack().cfg, { email: "alice@example.com" });
    const res = await fetch(`${stack().env.API_URL}/functions/v1/log-interaction`, {
      method: "POST",
      headers: { authorization: `Bearer ${user}`, apikey: stack().env.ANON_KEY, "content-type": "application/json" },
      body: JSON.stringify({ sender: "user", content: { text: "hash check" }, tracked_skill_id: "skill-sdk-e2e", conversation_id: run }),
    });
    expect(res.status).toBe(201);
    const single = await res.json() as { tracked_skill_id_hash: string };
    expect(new Set(rows.map((r) => r.tracked_skill_id_hash))).toEqual(new Set([single.tracked_skill_id_hash]));
    const [{ raw }] = await sql`select count(*)::int as raw from public.coach_interactions where conversation_id = ${run} and (metadata::text || content::text) like '%skill-sdk-e2e%'`;
    expect(raw).toBe(0);
  });

  it("a signed-in user's ledger logs her own messages; what the server refuses reaches onRefused and nothing else is lost", async () => {
    const run = crypto.randomUUID();
    const refused: [string, Problem][] = [];
    const ledger = createCoachLedger({
      url: stack().env.API_URL,
      key: await mintToken(stack().cfg, { email: "alice@example.com" }),
      apiKey: stack().env.ANON_KEY,
      flushIntervalMs: 60_000,
      onRefused: (item, problem) => refused.push([item.request_id, problem]),
    });
    const mine = ledger.log({ sender: "user", content: { text: "mine" }, conversation_id: run });
    const bobs = ledger.log({ sender: "user", user_id: BOB, content: { text: "for bob" }, conversation_id: run });
    const read = ledger.event({ kind: "read" });
    expect(await ledger.shutdown()).toMatchObject({ created: 2, refused: 1 });
    expect(refused.map(([id, p]) => [id, p.status])).toEqual([[bobs, 403]]);
    const [{ n }] = await sql`select count(*)::int as n from public.coach_interactions where request_id = ${mine} and user_id = ${ALICE}`;
    expect(n).toBe(1);
    const [{ e }] = await sql`select count(*)::int as e from public.interaction_events where request_id = ${read} and user_id = ${ALICE}`;
    expect(e).toBe(1);
  });
});
