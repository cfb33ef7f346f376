/** The interaction log end to end: supabase-js against the gateway, checked in the database. */
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { FunctionsHttpError } from "@supabase/supabase-js";
import { ALICE, BOB, CAROL, client, stack, userClient } from "../helpers.ts";
import { mintToken } from "../../local/stack.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
afterAll(() => sql.end());

async function problemOf(error: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = (error as FunctionsHttpError).context as Response;
  return { status: res.status, body: await res.json() };
}

describe("log-interaction and history", () => {
  const conversation = crypto.randomUUID();

  it("logs a conversation: Alice's message, an AI reply through an ingest token, Carol's note", async () => {
    const alice = await userClient("alice@example.com");
    const mine = await alice.functions.invoke("log-interaction", {
      body: { sender: "user", conversation_id: conversation, content: { text: "I finally ran 5k!" }, sentiment: 0.9 },
      headers: { "Idempotency-Key": `e2e-${conversation}-1` },
    });
    expect(mine.error).toBeNull();
    expect(mine.data).toMatchObject({ user_id: ALICE, sender: "user", request_id: `e2e-${conversation}-1` });

    const ingest = client(stack().env.ANON_KEY, await mintToken(stack().cfg, { role: "coach_ingest" }));
    const ai = await ingest.functions.invoke("log-interaction", {
      body: {
        sender: "ai_coach", user_id: ALICE, conversation_id: conversation, coach_persona: "encourager",
        content: { text: "That is a big milestone. How do you feel?" }, model: "gpt-4o", latency_ms: 910,
        prompt_tokens: 1200, cached_tokens: 200, completion_tokens: 150,
      },
    });
    expect(ai.error).toBeNull();
    expect(Number(ai.data.cost_usd)).toBeCloseTo((1000 * 2.5 + 200 * 1.25 + 150 * 10) / 1e6, 10);

    const carol = await userClient("carol@example.com");
    const note = await carol.functions.invoke("log-interaction", {
      body: { sender: "human_coach", user_id: ALICE, conversation_id: conversation, content: { text: "Proud of you, Alice." } },
    });
    expect(note.error).toBeNull();
    expect(note.data.actor_id).toBe(CAROL);
  });

  it("a replay through supabase-js returns the same row with 200", async () => {
    const alice = await userClient("alice@example.com");
    const again = await alice.functions.invoke("log-interaction", {
      body: { sender: "user", conversation_id: conversation, content: { text: "I finally ran 5k!" }, sentiment: 0.9 },
      headers: { "Idempotency-Key": `e2e-${conversation}-1` },
    });
    expect(again.error).toBeNull();
    expect(again.response?.status).toBe(200);
    const [{ n }] = await sql`select count(*)::int as n from public.coach_interactions where request_id = ${`e2e-${conversation}-1`}`;
    expect(n).toBe(1);
  });

  it("each new row is on the user's private realtime topic", async () => {
    const rows = await sql`
      select topic, private, payload -> 'record' ->> 'sender' as sender
      from realtime.messages where payload -> 'record' ->> 'conversation_id' = ${conversation}
      order by inserted_at`;
    expect([...rows]).toEqual([
      { topic: `coach_interactions:${ALICE}`, private: true, sender: "user" },
      { topic: `coach_interactions:${ALICE}`, private: true, sender: "ai_coach" },
      { topic: `coach_interactions:${ALICE}`, private: true, sender: "human_coach" },
    ]);
  });

  it("history: Alice and Carol read the conversation, Bob is refused, the service role reads it", async () => {
    const inConversation = (items: { conversation_id: string; sender: string }[]) =>
      items.filter((i) => i.conversation_id === conversation).map((i) => i.sender);

    const alice = await (await userClient("alice@example.com")).functions.invoke(`history?limit=10`, { method: "GET" });
    expect(inConversation(alice.data.items)).toEqual(["human_coach", "ai_coach", "user"]);

    const carol = await (await userClient("carol@example.com")).functions.invoke(`history?user_id=${ALICE}&redacted=true`, { method: "GET" });
    expect(carol.data.items.find((i: { sender: string; conversation_id: string }) => i.conversation_id === conversation && i.sender === "human_coach").content.text)
      .toBe("Proud of you, [NAME].");

    const bob = await (await userClient("bob@example.com")).functions.invoke(`history?user_id=${ALICE}`, { method: "GET" });
    const problem = await problemOf(bob.error);
    expect(problem.status).toBe(403);
    expect(problem.body.detail).toBe("Only the user, their assigned coach or the service role can read these interactions");

    const service = await client(stack().env.SERVICE_ROLE_KEY).functions.invoke(`history?user_id=${ALICE}&limit=10`, { method: "GET" });
    expect(inConversation(service.data.items)).toEqual(["human_coach", "ai_coach", "user"]);

    const audit = await sql`select actor_role from audit.phi_access_log where subject_user_id = ${ALICE} order by id desc limit 3`;
    expect(audit.map((r) => r.actor_role)).toEqual(["service_role", "authenticated", "authenticated"]);
  });

  it("the RPCs work through supabase.rpc() too, with PostgREST's statuses", async () => {
    const bob = await userClient("bob@example.com");
    const key = `rpc-${crypto.randomUUID()}`;
    const logged = await bob.rpc("log_coach_interaction", { sender: "user", content: { text: "Via RPC" }, request_id: key });
    expect(logged.error).toBeNull();
    expect(logged.data).toMatchObject({ replayed: false, interaction: { user_id: BOB, request_id: key } });
    const replay = await bob.rpc("log_coach_interaction", { sender: "user", content: { text: "Via RPC" }, request_id: key });
    expect(replay.data!.replayed).toBe(true);
    const reused = await bob.rpc("log_coach_interaction", { sender: "user", content: { text: "Other" }, request_id: key });
    expect(reused.status).toBe(422);
    expect(reused.error?.code).toBe("PT422");
    const history = await bob.rpc("get_interaction_history", { page_size: 1 });
    expect(history.data![0].request_id).toBe(key);
  });

  it("bad input is refused with the field named, and nothing is stored", async () => {
    const alice = await userClient("alice@example.com");
    const key = `bad-${crypto.randomUUID()}`;
    const { error } = await alice.functions.invoke("log-interaction", {
      body: { sender: "user", content: { text: "x" }, sentiment: -2, request_id: key },
    });
    const problem = await problemOf(error);
    expect(problem.status).toBe(422);
    expect(problem.body.errors).toEqual([{ field: "sentiment", message: "Too small: expected number to be >=-1" }]);
    const [{ n }] = await sql`select count(*)::int as n from public.coach_interactions where request_id = ${key}`;
    expect(n).toBe(0);
  });
});
