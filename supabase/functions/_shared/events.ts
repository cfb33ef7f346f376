/**
 * An event's body (issue 10; seed SPR-003's event log): the POST body of the events function
 * and an event item of log-interaction/batch, validated the same way on both routes.
 */
import { z } from "zod";
import { IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE } from "./validate.ts";
import { MAX_TRACKED_SKILL_ID } from "./tracked_skill.ts";

/** The kinds of event (interaction_events_kind_known). */
export const EVENT_KINDS = ["delivered", "read", "rating", "feedback", "error", "session_state"] as const;

// No control characters (Unicode Cc: C0, DEL and C1), as the table's rule.
const CATEGORY = /^\P{Cc}{1,100}$/u;

/** The POST body: strict, so unknown fields are refused. */
export const EventBody = z.strictObject({
  request_id: z.string().regex(IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_RULE).optional(),
  user_id: z.uuid().optional(),
  kind: z.enum(EVENT_KINDS),
  interaction_id: z.uuid().optional(),
  session_id: z.uuid().optional(),
  group_id: z.uuid().optional(),
  category: z.string().regex(CATEGORY, "Use 1 to 100 characters without control characters").optional(),
  score: z.int().min(1).max(5).optional(),
  payload: z.record(z.string(), z.unknown()).optional(),
  tracked_skill_id: z.string().min(1).max(MAX_TRACKED_SKILL_ID).optional(),
  created_at: z.iso.datetime({ offset: true }).optional(),
}).superRefine((b, ctx) => {
  if ((b.kind === "rating") !== (b.score !== undefined)) {
    ctx.addIssue({ code: "custom", path: ["score"], message: "Required exactly when kind is rating" });
  }
});

