/**
 * Issue 10 end to end with supabase-js: an AI backend's ingest token writes a session's events
 * and its assessment summary through the functions; the session's owner reads them back by
 * session and by group (functions and RPCs), her coach reads the assessment (audited), and
 * the ingest token's retries change nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import type { SupabaseClient } from "@supabase/supabase-js";
import { ALICE, client, stack, userClient } from "../helpers.ts";
import { mintToken } from "../../local/stack.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
let ingest: SupabaseClient;
let alice: SupabaseClient;
let session: string;
const group = crypto.randomUUID();

beforeAll(async () => {
  ingest = client(stack().env.ANON_KEY, await mintToken(stack().cfg, { role: "coach_ingest" }));
  alice = await userClient("alice@example.com");
  [{ id: session }] = await sql<{ id: string }[]>`insert into public.coaching_sessions (user_id, theme) values (${ALICE}, 'e2e assessment') returning id`;
});
afterAll(() => sql.end());

describe("events and assessments", () => {
  it("an ingest token writes a session's events and its summary; Alice reads them by session and by group", async () => {
    for (const [i, body] of [
      { kind: "session_state", payload: { state: "started" } },
      { kind: "rating", score: 5, category: "session" },
      { kind: "session_state", payload: { state: "finalized" } },
    ].entries()) {
      const { data, error } = await ingest.functions.invoke("events", {
        body: { ...body, user_id: ALICE, session_id: session, group_id: group },
        headers: { "Idempotency-Key": `e2e-ev-${session}-${i}`, "X-Tracked-Skill-Id": "e2e-skill-delegation" },
      });
      expect(error).toBeNull();
      expect(data).toMatchObject({ user_id: ALICE, session_id: session, group_id: group, request_id: `e2e-ev-${session}-${i}`, actor_role: "coach_ingest" });
    }
    const summary = {
      session_id: session, group_id: group, overall_score: 4.1, criteria: { goal_clarity: 4.5, ownership: 3.5 },
      strengths: ["Clear goal"], improvements: ["Name a support person"], model: "gpt-4o-mini", tracked_skill_id: "e2e-skill-delegation",
    };
    const first = await ingest.functions.invoke("assessments", { body: summary, headers: { "Idempotency-Key": `e2e-as-${session}` } });
    expect(first.error).toBeNull();
    expect(first.data).toMatchObject({ user_id: ALICE, session_id: session, group_id: group, overall_score: 4.1, rubric_version: 1 });
    // A retry of the callback is a replay: same row, nothing new.
    const retry = await ingest.functions.invoke("assessments", { body: summary, headers: { "Idempotency-Key": `e2e-as-${session}` } });
    expect(retry.data).toEqual(first.data);

    const bySession = await alice.functions.invoke(`events?session_id=${session}`, { method: "GET" });
    expect(bySession.error).toBeNull();
    expect(bySession.data.events.map((e: { kind: string }) => e.kind)).toEqual(["session_state", "rating", "session_state"]);
    const byGroup = await alice.functions.invoke(`events?group_id=${group}&kind=rating`, { method: "GET" });
    expect(byGroup.data.events).toHaveLength(1);
    expect(byGroup.data.events[0]).toMatchObject({ score: 5, tracked_skill_id_hash: first.data.tracked_skill_id_hash });

    const latest = await alice.rpc("get_latest_assessment", { session_id: session }).maybeSingle();
    expect(latest.error).toBeNull();
    expect(latest.data).toMatchObject({ id: first.data.id, overall_score: 4.1, criteria: { goal_clarity: 4.5, ownership: 3.5 } });
    const listed = await alice.rpc("list_assessments", { group_id: group, limit: 10 });
    expect(listed.data?.map((a: { id: string }) => a.id)).toEqual([first.data.id]);
    const viaFunction = await alice.functions.invoke(`assessments?group_id=${group}`, { method: "GET" });
    expect(viaFunction.data).toEqual({ assessments: [first.data], next_before: null });
    const direct = await alice.rpc("list_assessments", { session_id: session });
    expect(direct.data).toHaveLength(1);
  });

  it("Carol, Alice's coach, reads the summary and the read is in the PHI access log; Bob reads nothing", async () => {
    const carol = await userClient("carol@example.com");
    const trace = `e2e-coach-read-${crypto.randomUUID()}`;
    const read = await carol.functions.invoke(`assessments?session_id=${session}&latest=true`, { method: "GET", headers: { "x-request-id": trace } });
    expect(read.error).toBeNull();
    expect(read.data.assessment).toMatchObject({ session_id: session, user_id: ALICE });
    const [{ n }] = await sql`select count(*)::int as n from audit.phi_access_log where trace_id = ${trace} and resource = 'assessments'`;
    expect(n).toBe(1);
    const bob = await userClient("bob@example.com");
    const none = await bob.rpc("list_assessments", { session_id: session });
    expect(none.data).toEqual([]);
    const events = await bob.functions.invoke(`events?session_id=${session}`, { method: "GET" });
    expect(events.data.events).toEqual([]);
  });

  it("bad input is a 422 naming the field and stores nothing", async () => {
    const res = await fetch(`${stack().env.API_URL}/functions/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${await mintToken(stack().cfg, { role: "coach_ingest" })}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "rating", score: 9, user_id: ALICE, session_id: session }),
    });
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toMatch(/application\/problem\+json/);
    const problem = await res.json();
    expect(problem.errors.map((e: { field: string }) => e.field)).toEqual(["score"]);
    expect(problem.trace_id).toBe(res.headers.get("x-request-id"));
    const [{ n }] = await sql`select count(*)::int as n from public.interaction_events where session_id = ${session} and score = 9`;
    expect(n).toBe(0);
  });
});
