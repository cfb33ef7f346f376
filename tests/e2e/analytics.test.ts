/** Analytics end to end: log through the API, roll up through interaction-aggregate, read as an analyst. */
import { createHash } from "node:crypto";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { client, stack } from "../helpers.ts";
import { mintToken } from "../../local/stack.ts";

const sql = postgres(stack().env.DB_URL, { max: 1, onnotice: () => {} });
afterAll(() => sql.end());

describe("interaction metrics", () => {
  it("a logged conversation and its rating appear in the analyst's metrics after the rollup", async () => {
    const email = `e2e-analytics-${Date.now()}@example.com`;
    const [{ id }] = await sql`insert into auth.users (id, email) values (gen_random_uuid(), ${email}) returning id`;
    const user = client(stack().env.ANON_KEY, await mintToken(stack().cfg, { email }));
    const ingest = client(stack().env.ANON_KEY, await mintToken(stack().cfg, { role: "coach_ingest" }));
    const conversation = crypto.randomUUID();

    const asked = await user.functions.invoke("log-interaction", { body: { sender: "user", conversation_id: conversation, content: { text: "Help me plan my week" } } });
    expect(asked.error).toBeNull();
    const answered = await ingest.functions.invoke("log-interaction", {
      body: { sender: "ai_coach", user_id: id, conversation_id: conversation, coach_persona: "planner", content: { text: "Let us start with Monday." },
              model: "gpt-4o-mini", latency_ms: 750, prompt_tokens: 400, completion_tokens: 100 },
    });
    expect(answered.error).toBeNull();
    const rated = await user.rpc("log_interaction_event", { kind: "rating", interaction_id: answered.data.id, score: 5 });
    expect(rated.error).toBeNull();

    const today = new Date().toISOString().slice(0, 10);
    const rollup = await client(stack().env.SERVICE_ROLE_KEY).functions.invoke("interaction-aggregate", { body: { from: today } });
    expect(rollup.error).toBeNull();
    expect(rollup.data.days[0].day).toBe(today);

    const key = createHash("sha256").update(`coach-ledger-user:${id}`).digest("hex");
    const rows = await sql.begin(async (tx) => {
      await tx`set local role coach_analyst`;
      return await tx`select total_messages, user_messages, ai_coach_messages, response_time_avg, satisfaction_avg,
                             satisfaction_count, coach_persona_mix, prompt_tokens, cost_usd
                      from analytics.user_metrics(${key}, ${today}::date, ${today}::date)`;
    });
    expect(rows.length).toBe(1);
    expect(rows[0]).toMatchObject({
      total_messages: 2, user_messages: 1, ai_coach_messages: 1, response_time_avg: "750.0",
      satisfaction_avg: "5.00", satisfaction_count: 1, coach_persona_mix: { planner: 1 }, prompt_tokens: "400",
    });
    expect(Number(rows[0].cost_usd)).toBeCloseTo((400 * 0.15 + 100 * 0.6) / 1e6, 10);
  });
});
