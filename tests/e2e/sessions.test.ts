/** A coaching session end to end with supabase-js: five stages by rpc(), the summary function, plans and milestones. */
import { describe, expect, it } from "vitest";
import { FunctionsHttpError } from "@supabase/supabase-js";
import { userClient } from "../helpers.ts";
import type { Json } from "../../supabase/functions/_shared/database.types.ts";

const STAGES: Record<number, { [key: string]: Json }> = {
  1: { presence_level: 8, emotional_state: "focused", previous_actions: ["journaling"], readiness_score: 9 },
  2: { topic: "Public speaking", problem_statement: "I freeze in team meetings", current_state_rating: 3,
       strengths: ["well prepared"], obstacles: ["fear of judgement"], resources: ["a supportive manager"] },
  3: { options: ["speak first", "prepare one point"], insights: ["silence grows the fear"], challenges: ["habit"], barriers: ["fast meetings"] },
  4: { goal_statement: "Speak up at least once in every team meeting for a month",
       smart_criteria: { specific: "one point per meeting", measurable: "tally in my notebook", achievable: "I prepare anyway",
                         relevant: "visibility at work", time_bound: "one month" },
       action_steps: ["Write one point before each meeting", "Ask my manager for feedback"], obstacles: ["nerves"],
       contingency_plans: ["post the point in chat if I freeze"] },
  5: { key_learnings: ["preparation lowers fear"], insights: ["one point is enough"], session_value_rating: 9, clarity_level: 9 },
};

describe("coaching session", () => {
  it("runs five stages, gets a summary with action plans, and manages a plan and a milestone", async () => {
    const bob = await userClient("bob@example.com");
    const started = await bob.rpc("start_coaching_session", { session_type: "self_coaching", theme: "Speaking up" });
    expect(started.error).toBeNull();
    const sessionId = started.data!.id;

    const early = await bob.functions.invoke("summary", { body: { session_id: sessionId } });
    expect(((early.error as FunctionsHttpError).context as Response).status).toBe(409);

    for (const n of [1, 2, 3, 4, 5]) {
      const saved = await bob.rpc("save_stage_response", { session_id: sessionId, stage_number: n, responses: STAGES[n] });
      expect(saved.error, `stage ${n}`).toBeNull();
    }
    const bad = await bob.rpc("save_stage_response", { session_id: sessionId, stage_number: 5, responses: { key_learnings: [] } });
    expect(bad.status).toBe(400);
    expect(bad.error?.message).toContain("insights is required");
    const done = await bob.rpc("complete_coaching_session", { session_id: sessionId });
    expect(done.data!.is_complete).toBe(true);

    const summary = await bob.functions.invoke("summary", { body: { session_id: sessionId } });
    expect(summary.error).toBeNull();
    expect(summary.data).toMatchObject({ cached: false, model: "offline", summary_data: { goal_statement: STAGES[4].goal_statement } });
    expect(summary.data.summary).toContain("## Action plan");

    const session = await bob.rpc("get_coaching_session", { session_id: sessionId });
    // get_coaching_session returns jsonb (typed Json): its shape is docs/api.md's.
    const detail = session.data as { summary_model: string; stages: { stage_name: string }[] };
    expect(detail.summary_model).toBe("offline");
    expect(detail.stages.map((s) => s.stage_name)).toEqual(["check_in", "starting_point", "connect", "finish", "check_out"]);
    const again = await bob.functions.invoke("summary", { body: { session_id: sessionId } });
    expect(again.data.cached).toBe(true);

    const plans = await bob.rpc("list_action_plans");
    const mine = plans.data!.filter((p: { session_id: string }) => p.session_id === sessionId);
    expect(mine.map((p: { title: string }) => p.title)).toEqual(["Write one point before each meeting", "Ask my manager for feedback"]);
    expect(mine[0]).toMatchObject({ coaching_theme: "Speaking up", status: "pending", source: "summary" });

    const started1 = await bob.rpc("update_action_plan", { action_plan_id: mine[0].id, status: "in_progress" });
    expect(started1.data!.status).toBe("in_progress");
    expect(Date.parse(started1.data!.updated_at)).toBeGreaterThan(Date.parse(mine[0].updated_at));
    const back = await bob.rpc("update_action_plan", { action_plan_id: mine[0].id, status: "pending" });
    expect(back.data!.status).toBe("pending");
    const invalid = await bob.rpc("update_action_plan", { action_plan_id: mine[1].id, status: "bogus" });
    expect(invalid.status).toBe(400);

    const milestone = await bob.rpc("add_milestone", { action_plan_id: mine[0].id, title: "First meeting done", due_date: "2026-12-01" });
    expect(milestone.data!.completed_at).toBeNull();
    const completed = await bob.rpc("complete_milestone", { milestone_id: milestone.data!.id });
    expect(completed.data!.completed).toBe(true);
    expect(completed.data!.completed_at).not.toBeNull();
  });

  it("another user cannot see or summarise the session", async () => {
    const alice = await userClient("alice@example.com");
    const res = await alice.functions.invoke("summary", { body: { session_id: "b0b00000-5e55-4000-8000-000000000002" } });
    expect(((res.error as FunctionsHttpError).context as Response).status).toBe(404);
  });
});
