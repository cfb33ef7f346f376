/** The zod stage schemas and the SQL validation agree (runs against the test database). */
import assert from "node:assert/strict";
import { adminSql } from "./testing/fixtures.ts";
import { stageErrors } from "./stages.ts";

const valid = {
  1: { presence_level: 7, emotional_state: "calm", previous_actions: [], readiness_score: 8 },
  2: { topic: "Sleep", problem_statement: "late nights", current_state_rating: 4, strengths: ["a"], obstacles: [], resources: [] },
  3: { options: ["a"], insights: [], challenges: [], barriers: [] },
  4: { goal_statement: "g", smart_criteria: { specific: "s", measurable: "m", achievable: "a", relevant: "r", time_bound: "t" },
       action_steps: ["x"], obstacles: [], contingency_plans: [] },
  5: { key_learnings: ["k"], insights: [], session_value_rating: 9, clarity_level: 8 },
} as const;

const cases: [1 | 2 | 3 | 4 | 5, unknown][] = [
  ...Object.entries(valid).map(([n, r]) => [Number(n) as 1, r] as [1, unknown]),
  [1, { ...valid[1], extra: "kept" }],
  [1, { ...valid[1], presence_level: 11 }],
  [1, { ...valid[1], presence_level: 7.5 }],
  [1, { ...valid[1], emotional_state: "  " }],
  [2, { ...valid[2], strengths: ["ok", ""] }],
  [2, { ...valid[2], current_state_rating: "4" }],
  [3, { options: ["a"] }],
  [4, { ...valid[4], smart_criteria: { specific: "s" } }],
  [4, { ...valid[4], action_steps: "one" }],
  [5, { ...valid[5], clarity_level: 0 }],
  [5, []],
];

Deno.test({
  name: "stage schemas in zod and SQL accept and refuse the same responses",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sql = adminSql();
    try {
      for (const [stage, responses] of cases) {
        const [{ errors }] = await sql`select private.stage_response_errors(${stage}, ${sql.json(responses as never)}::jsonb) as errors`;
        const zodErrors = stageErrors(stage, responses);
        assert.equal(zodErrors.length === 0, errors.length === 0, `stage ${stage} ${JSON.stringify(responses)}: zod ${zodErrors} vs sql ${errors}`);
      }
    } finally {
      await sql.end();
    }
  },
});
