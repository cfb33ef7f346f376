/**
 * Tracked skill ids, hashed inside the caller's process. The server keeps only
 * HMAC-SHA-256(TRACKED_SKILL_HASH_KEY, raw id) as 64 lowercase hex digits
 * (supabase/functions/_shared/tracked_skill.ts); the SDK computes the same keyed hash here so
 * that the raw id never leaves the process, not even to our own API. Keyed rather than a
 * bare SHA-256 because skill ids are few and guessable: without the key nobody holding the
 * data can hash every candidate and read the ids back.
 *
 * The rules mirror the server's: the key has at least 32 characters, the raw id 1 to 256
 * characters without control characters. Both are checked synchronously (TypeError), so a
 * misconfiguration shows at the call that made it, not later in a background flush.
 * Web Crypto only (`crypto.subtle`), so this runs unchanged on Node, Deno and edge runtimes.
 */

/** Shortest key accepted, in characters (the server's MIN_KEY_LENGTH). */
export const MIN_HASH_KEY_LENGTH = 32;
/** Longest raw id accepted, in characters (the server's MAX_TRACKED_SKILL_ID). */
export const MAX_TRACKED_SKILL_ID = 256;

// The control characters the server refuses in a raw id (C0 and DEL), exactly as it checks.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Imported HMAC keys by secret: importKey is not free, and a process uses one or two keys. */
const keys = new Map<string, Promise<CryptoKey>>();

/** Throws a TypeError unless key can be the server's TRACKED_SKILL_HASH_KEY. */
export function checkHashKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length < MIN_HASH_KEY_LENGTH) {
    throw new TypeError(
      `trackedSkillHashKey must be the server's TRACKED_SKILL_HASH_KEY, a string of at least ${MIN_HASH_KEY_LENGTH} characters`,
    );
  }
}

/** Throws a TypeError unless rawId is a well-formed tracked skill id. */
export function checkTrackedSkillId(rawId: unknown): asserts rawId is string {
  if (typeof rawId !== "string" || rawId.length === 0 || rawId.length > MAX_TRACKED_SKILL_ID || CONTROL.test(rawId)) {
    throw new TypeError(`A tracked skill id must be 1 to ${MAX_TRACKED_SKILL_ID} characters without control characters`);
  }
}

/**
 * HMAC-SHA-256 of a raw tracked skill id under key (the server's TRACKED_SKILL_HASH_KEY), as
 * 64 lowercase hex digits: the value to send as `tracked_skill_id_hash`. Throws a TypeError
 * at once for a malformed id or key; otherwise resolves to the hash.
 */
export function hashTrackedSkillId(rawId: string, key: string): Promise<string> {
  checkTrackedSkillId(rawId);
  checkHashKey(key);
  return sign(rawId, key);
}

async function sign(rawId: string, key: string): Promise<string> {
  let cryptoKey = keys.get(key);
  if (!cryptoKey) {
    cryptoKey = crypto.subtle.importKey("raw", new TextEncoder().encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(key, cryptoKey);
    // A failed import is not cached: the next call tries again.
    cryptoKey.catch(() => keys.delete(key));
  }
  const mac = await crypto.subtle.sign("HMAC", await cryptoKey, new TextEncoder().encode(rawId));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}
