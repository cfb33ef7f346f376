/**
 * @coach-ledger/sdk: log AI model calls and app events to Coach Ledger from Node, Deno and
 * edge runtimes, with no runtime dependencies.
 *
 *   const ledger = createCoachLedger({ url, key });
 *   ledger.log({ sender: "user", user_id, content: { text: "Walked 20 minutes" } });
 *   const openai = observeOpenAI(new OpenAI(), { ledger, userId: user_id });
 *   await ledger.shutdown();
 *
 * client.ts holds the queue, batching and retries; openai.ts the OpenAI wrapper;
 * tracked_skill.ts the keyed hash of tracked skill ids; types.ts the item types, derived from
 * the generated database types. See README.md.
 */
export {
  type CoachLedger,
  CoachLedgerError,
  type CoachLedgerOptions,
  createCoachLedger,
  type FlushResult,
  type LedgerStats,
  MAX_BATCH_BYTES,
  MAX_BATCH_ITEMS,
  type RetryOptions,
  type ShutdownOptions,
} from "./client.ts";
export { type ChatCompletionsClient, errorCode, observeOpenAI, type ObserveOpenAIOptions } from "./openai.ts";
export { hashTrackedSkillId, MAX_TRACKED_SKILL_ID, MIN_HASH_KEY_LENGTH } from "./tracked_skill.ts";
export type {
  BatchItemResult,
  BatchResponse,
  Channel,
  Database,
  EventInput,
  EventKind,
  FieldError,
  Interaction,
  InteractionEvent,
  InteractionInput,
  InteractionStatus,
  Json,
  JsonObject,
  LedgerItem,
  Problem,
  Sender,
} from "./types.ts";
