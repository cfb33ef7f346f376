/**
 * Tracked skill ids, privacy-preserving (issue 10; seed SPR-003: "only hashed trackedSkillId
 * propagated to logs/storage; raw IDs never logged/persisted"). A client sends the raw id as
 * the X-Tracked-Skill-Id header or a `tracked_skill_id` body field; the function turns it into
 * HMAC-SHA-256(TRACKED_SKILL_HASH_KEY, id) in hex at once, and only that hash is stored,
 * logged or passed on.
 *
 * Keyed, not a bare SHA-256: skill ids are few and guessable (a slug, a small integer), so
 * anyone holding a database dump could hash every candidate and read the ids back from a
 * bare digest. Without the key, which lives only in the functions' secrets, they cannot.
 * The same id under the same key always gives the same hash, so rows and log lines of one
 * tracked skill still group together.
 *
 * TRACKED_SKILL_HASH_KEY: a function secret of at least 32 characters
 * (`supabase secrets set TRACKED_SKILL_HASH_KEY=$(openssl rand -hex 32)`); the local stack
 * sets a fixed development key (LOCAL_TRACKED_SKILL_HASH_KEY in local/stack.ts). Rotation: set a new key; hashes written before it keep
 * their value and stop matching new ones for the same id (by design nothing can re-key them:
 * the raw ids were never kept), so rotate at a reporting boundary. See docs/api.md.
 */
import { requireEnv } from "./env.ts";
import { HttpError } from "./http.ts";
import { noteLog } from "./log.ts";

/** Shortest key accepted, in characters: a shorter one is a configuration error. */
export const MIN_KEY_LENGTH = 32;

/** Longest raw id accepted, in characters. */
export const MAX_TRACKED_SKILL_ID = 256;

const keys = new Map<string, CryptoKey>();

async function hmacKey(): Promise<CryptoKey> {
  const secret = requireEnv("TRACKED_SKILL_HASH_KEY");
  if (secret.length < MIN_KEY_LENGTH) {
    throw new Error(`TRACKED_SKILL_HASH_KEY must be at least ${MIN_KEY_LENGTH} characters (e.g. openssl rand -hex 32)`);
  }
  let key = keys.get(secret);
  if (!key) {
    key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return key;
}

/** HMAC-SHA-256 of a raw tracked skill id under TRACKED_SKILL_HASH_KEY, as 64 hex digits. */
export async function trackedSkillHash(raw: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(), new TextEncoder().encode(raw));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Notes the hash of a well-formed X-Tracked-Skill-Id on the request's log line before the
 * body is validated, so that a request refused for its body still logs the skill it was
 * about. requestTrackedSkillHash does the checks that answer the client.
 */
export async function noteTrackedSkillHeader(req: Request): Promise<void> {
  const header = req.headers.get("x-tracked-skill-id");
  // deno-lint-ignore no-control-regex
  if (header === null || header.length === 0 || header.length > MAX_TRACKED_SKILL_ID || /[\u0000-\u001f\u007f]/.test(header)) return;
  const hash = await trackedSkillHash(header);
  headerHashes.set(req, hash);
  noteLog(req, { tracked_skill_id_hash: hash });
}

/** Hashes of X-Tracked-Skill-Id already computed by noteTrackedSkillHeader, so none is computed twice. */
const headerHashes = new WeakMap<Request, string>();

/**
 * The hash of the request's tracked skill id (the body field wins over the header), noted on
 * the request's log line; null when neither is given. 422 naming the field when the id is
 * empty, longer than MAX_TRACKED_SKILL_ID or holds control characters, or when header and
 * body disagree.
 */
export async function requestTrackedSkillHash(req: Request, bodyValue?: string): Promise<string | null> {
  const header = req.headers.get("x-tracked-skill-id");
  const bad = (field: string, message: string) =>
    new HttpError(422, "Unprocessable Content", `The request has an invalid ${field}.`, { errors: [{ field, message }] });
  for (const [field, value] of [["tracked_skill_id", bodyValue], ["X-Tracked-Skill-Id", header]] as const) {
    if (value === undefined || value === null) continue;
    // deno-lint-ignore no-control-regex
    if (value.length === 0 || value.length > MAX_TRACKED_SKILL_ID || /[\u0000-\u001f\u007f]/.test(value)) {
      throw bad(field, `Use 1 to ${MAX_TRACKED_SKILL_ID} characters without control characters`);
    }
  }
  if (header !== null && bodyValue !== undefined && header !== bodyValue) {
    throw bad("tracked_skill_id", "Differs from the X-Tracked-Skill-Id header");
  }
  const raw = bodyValue ?? header;
  if (raw === null || raw === undefined) return null;
  const hash = (raw === header ? headerHashes.get(req) : undefined) ?? await trackedSkillHash(raw);
  noteLog(req, { tracked_skill_id_hash: hash });
  return hash;
}
