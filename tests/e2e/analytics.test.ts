/**
 * Analytics end to end: log through the API, roll up through interaction-aggregate, read as an
 * analyst; and the incremental rollup (today minutes old) under transactions that commit out of
 * order, which needs two connections.
 */
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

  it("the incremental refresh misses nothing when a transaction commits after a refresh that could not see it", async () => {
    const email = `e2e-refresh-${Date.now()}@example.com`;
    const [{ id }] = await sql`insert into auth.users (id, email) values (gen_random_uuid(), ${email}) returning id`;
    const other = postgres(stack().env.DB_URL, { max: 1, onnotice: () => {} });
    const log = (db: postgres.Sql | postgres.TransactionSql, text: string, at: string) =>
      db`select public.log_coach_interaction(sender => 'ai_coach', user_id => ${id}::uuid, content => ${db.json({ text })},
                                             latency_ms => 500, created_at => ${at}::timestamptz)`;
    const hourAgo = new Date(Date.now() - 3600_000).toISOString();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let logged!: () => void;
    const inside = new Promise<void>((resolve) => (logged = resolve));
    try {
      // A: a backdated write, still open while B writes and commits and a refresh runs.
      const a = other.begin(async (tx) => {
        await log(tx, "A, committed late", hourAgo);
        logged();
        await held;
      });
      await inside;
      await log(sql, "B, committed at once", new Date().toISOString());
      await sql`select analytics.refresh_interaction_metrics()`;
      const today = await sql`select coalesce(sum(total_messages), 0)::int as n from analytics.coach_interaction_metrics
                              where user_id = ${id} and day >= (now() at time zone 'UTC')::date - 1`;
      expect(today[0].n).toBe(1);
      release();
      await a;
      await sql`select analytics.refresh_interaction_metrics()`;
      const after = await sql`select coalesce(sum(total_messages), 0)::int as n from analytics.coach_interaction_metrics
                              where user_id = ${id} and day >= (now() at time zone 'UTC')::date - 1`;
      expect(after[0].n).toBe(2);
      // The same days recomputed from raw rows, in a transaction rolled back: the incremental rows equal them.
      const incremental = await sql`select day, total_messages, response_count, response_time_avg, response_time_p95
                                    from analytics.coach_interaction_metrics where user_id = ${id} order by day`;
      const full = await sql.begin(async (tx) => {
        await tx`select analytics.aggregate_interaction_metrics((now() at time zone 'UTC')::date - 1, (now() at time zone 'UTC')::date)`;
        const rows = await tx`select day, total_messages, response_count, response_time_avg, response_time_p95
                              from analytics.coach_interaction_metrics where user_id = ${id} order by day`;
        throw Object.assign(new Error("rollback"), { rows });
      }).catch((err: Error & { rows?: unknown }) => err.rows);
      expect(full).toEqual(incremental);
    } finally {
      release();
      await sql`delete from auth.users where id = ${id}`;
      await other.end();
    }
  });
});
