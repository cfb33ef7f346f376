/**
 * The five coaching stages' responses as zod schemas, matching the SQL validation
 * (private.stage_response_errors): required keys, non-empty strings, lists of non-empty
 * strings, ratings as integers 1..10, the five SMART criteria. Unknown keys are kept.
 * `stages_test.ts` checks both agree on the same samples.
 */
import { z } from "zod";

const text = z.string().trim().min(1);
const list = z.array(text);
const rating = z.int().min(1).max(10);

/** Stage number to schema. */
export const StageSchemas = {
  1: z.looseObject({ presence_level: rating, emotional_state: text, previous_actions: list, readiness_score: rating }),
  2: z.looseObject({
    topic: text, problem_statement: text, current_state_rating: rating, strengths: list, obstacles: list, resources: list,
  }),
  3: z.looseObject({ options: list, insights: list, challenges: list, barriers: list }),
  4: z.looseObject({
    goal_statement: text,
    smart_criteria: z.looseObject({ specific: text, measurable: text, achievable: text, relevant: text, time_bound: text }),
    action_steps: list,
    obstacles: list,
    contingency_plans: list,
  }),
  5: z.looseObject({ key_learnings: list, insights: list, session_value_rating: rating, clarity_level: rating }),
} as const;

/** Stage names by number. */
export const STAGE_NAMES = { 1: "check_in", 2: "starting_point", 3: "connect", 4: "finish", 5: "check_out" } as const;

/** The fields of a stage's responses that fail its schema (empty when valid). */
export function stageErrors(stage: 1 | 2 | 3 | 4 | 5, responses: unknown): string[] {
  const r = StageSchemas[stage].safeParse(responses);
  return r.success ? [] : [...new Set(r.error.issues.map((i) => i.path.slice(0, 2).map(String).join(".") || "(responses)"))];
}
