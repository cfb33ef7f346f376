/**
 * The coach states of an application and their stored form, the same mapping as
 * public.coach_state_to_db / public.db_to_coach_state in SQL (migration
 * 20261124050200_create_coach_state_mapping.sql; coach_state_test.ts proves they agree).
 * Seed: Coach Execution Engine, section 1.
 */
import { z } from "zod";

export const COACH_STATES = ["Tracked", "Drafting", "Review", "Submitted", "Outcome Pending", "Won", "Lost"] as const;

/** A coach state: one of the seven (the seed's CoachStateMappingSchema). */
export const CoachStateMappingSchema = z.enum(COACH_STATES);
export type CoachState = z.infer<typeof CoachStateMappingSchema>;

/** The DB status of an application (enum public.application_status). */
export const ApplicationStatusSchema = z.enum(["draft", "submitted", "awarded", "rejected"]);
export type ApplicationStatus = z.infer<typeof ApplicationStatusSchema>;

/** The stored form of a coach state: the status, and the coach stage where the status is ambiguous. */
export interface CoachStateDb {
  status: ApplicationStatus;
  metadata: { coach_stage?: string };
}

const TO_DB: Record<CoachState, CoachStateDb> = {
  "Tracked": { status: "draft", metadata: { coach_stage: "tracked" } },
  "Drafting": { status: "draft", metadata: { coach_stage: "drafting" } },
  "Review": { status: "draft", metadata: { coach_stage: "review" } },
  "Submitted": { status: "submitted", metadata: { coach_stage: "submitted" } },
  "Outcome Pending": { status: "submitted", metadata: { coach_stage: "outcome_pending" } },
  "Won": { status: "awarded", metadata: {} },
  "Lost": { status: "rejected", metadata: {} },
};

/** The stored form of a coach state (coachStateToDb in the seed). */
export function coachStateToDb(state: CoachState): CoachStateDb {
  const db = TO_DB[CoachStateMappingSchema.parse(state)];
  return { status: db.status, metadata: { ...db.metadata } };
}

/**
 * The coach state of a stored application (dbToCoachState in the seed). Total: a coach
 * stage that does not belong to the status, or none, reads as the status's first state.
 */
export function dbToCoachState(status: ApplicationStatus, metadata: { coach_stage?: unknown } = {}): CoachState {
  const stage = metadata?.coach_stage;
  switch (status) {
    case "draft":
      return stage === "drafting" ? "Drafting" : stage === "review" ? "Review" : "Tracked";
    case "submitted":
      return stage === "outcome_pending" ? "Outcome Pending" : "Submitted";
    case "awarded":
      return "Won";
    case "rejected":
      return "Lost";
  }
}
