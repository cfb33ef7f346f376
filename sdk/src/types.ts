/**
 * The SDK's item types, derived from the generated database types (database.types.ts, a copy
 * of supabase/functions/_shared/database.types.ts that `npm run gen:types` keeps in step).
 *
 * Every field an item may carry is picked by name from the `coach_interactions` or
 * `interaction_events` row, so a column renamed or dropped in a migration breaks this file's
 * type check instead of silently sending a field the API no longer takes. The database keeps
 * enumerations as text with CHECK constraints, so the generated types say `string`; the
 * literal unions below narrow them (and `Column` checks each narrowing still fits the row).
 * Nullable columns become optional fields: the API takes "absent" where the row says null.
 *
 * The wire format is the API's snake_case, unchanged: what you pass to `log()` is what the
 * batch route receives (plus a generated `request_id`).
 */
import type { Database, Json } from "./database.types.ts";

export type { Database, Json };

/** A stored interaction, as the batch route answers it (`items[i].interaction`). */
export type Interaction = Database["public"]["Tables"]["coach_interactions"]["Row"];
/** A stored event, as the batch route answers it (`items[i].event`). */
export type InteractionEvent = Database["public"]["Tables"]["interaction_events"]["Row"];

/** T, after checking that row R has column K and that T fits its type. */
type Column<R, K extends keyof R, T extends NonNullable<R[K]>> = T;

/** The nullable columns K of row R as optional fields without null. */
type OptionalColumns<R, K extends keyof R> = { [P in K]?: Exclude<R[P], null> };

/** A JSON object (content, metadata, payload). */
export type JsonObject = { [key: string]: Json | undefined };

/** Who wrote an interaction (coach_interactions_sender_known). */
export type Sender = Column<Interaction, "sender", "user" | "ai_coach" | "human_coach" | "system">;
/** Where an interaction happened (coach_interactions_channel_known). */
export type Channel = Column<Interaction, "channel", "chat" | "jitai" | "voice" | "email" | "dashboard" | "api">;
/** Whether the call behind an interaction succeeded. */
export type InteractionStatus = Column<Interaction, "status", "ok" | "error">;
/** The kinds of event (interaction_events_kind_known). */
export type EventKind = Column<InteractionEvent, "kind", "delivered" | "read" | "rating" | "feedback" | "error" | "session_state">;

/**
 * One interaction for `log()`: `sender` and `content` are required; `request_id` is generated
 * when absent. `user_id` is required with a service role or `coach_ingest` key.
 * `tracked_skill_id_hash` is the keyed hash (see `hashTrackedSkillId`), never the raw id.
 */
export type InteractionInput =
  & OptionalColumns<
    Interaction,
    | "request_id"
    | "user_id"
    | "session_id"
    | "conversation_id"
    | "coach_persona"
    | "model"
    | "latency_ms"
    | "prompt_tokens"
    | "completion_tokens"
    | "cached_tokens"
    | "cost_usd"
    | "sentiment"
    | "momentum_state"
    | "error_code"
    | "tracked_skill_id_hash"
    | "created_at"
  >
  & {
    /** Optional discriminator; `log()` always sends an interaction. */
    type?: "interaction";
    sender: Sender;
    content: Column<Interaction, "content", { text: string } & JsonObject>;
    channel?: Channel;
    metadata?: Column<Interaction, "metadata", JsonObject>;
    status?: InteractionStatus;
  };

/**
 * One event for `event()`: `kind` is required (and `score`, 1..5, exactly when kind is
 * `rating`); `request_id` is generated when absent.
 */
export type EventInput =
  & OptionalColumns<
    InteractionEvent,
    | "request_id"
    | "user_id"
    | "interaction_id"
    | "session_id"
    | "group_id"
    | "category"
    | "score"
    | "tracked_skill_id_hash"
    | "created_at"
  >
  & {
    /** Optional discriminator; `event()` always sends an event. */
    type?: "event";
    kind: EventKind;
    payload?: Column<InteractionEvent, "payload", JsonObject>;
  };

/** An item as queued and sent: its type made explicit and its request_id assigned. */
export type LedgerItem =
  | (InteractionInput & { type: "interaction"; request_id: string })
  | (EventInput & { type: "event"; request_id: string });

/** One invalid field of a refused item or request. */
export interface FieldError {
  field: string;
  message: string;
}

/** Why an item or a request was refused: RFC 9457 problem details, as the API sends them. */
export interface Problem {
  status: number;
  code?: string;
  title?: string;
  detail?: string;
  errors?: FieldError[];
  trace_id?: string;
  [key: string]: unknown;
}

/** One item of a batch answer, in the order sent. */
export interface BatchItemResult {
  index: number;
  /** Absent from servers that predate events in batches (interactions only). */
  type?: "interaction" | "event";
  outcome: "created" | "replayed" | "refused";
  status: number;
  /** The stored row (a request without `Prefer: return=minimal`). */
  interaction?: Interaction;
  event?: InteractionEvent;
  /** The stored row's id: what the SDK's requests (`Prefer: return=minimal`) get instead of the row. */
  id?: string;
  problem?: Problem;
}

/** The 200 answer of POST /functions/v1/log-interaction/batch. */
export interface BatchResponse {
  created: number;
  replayed: number;
  refused: number;
  items: BatchItemResult[];
}
