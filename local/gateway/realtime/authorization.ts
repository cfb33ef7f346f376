/**
 * Who may use a channel, as supabase/realtime decides it: the channel's token
 * (RealtimeWeb.ChannelsAuthorization and JwtVerification: a valid signature, `role` and
 * `exp` present, `exp` in the future) and, for a private channel, the checks of
 * Realtime.Tenants.Authorization with `role`, `request.jwt.claims` and `realtime.topic` set
 * as the user: reads (a probe row per extension, `broadcast` and `presence`, then a SELECT
 * under RLS) and writes (an INSERT of a row per extension under RLS), all rolled back.
 *
 * Hosted Realtime runs the read check at join and when the channel's access token is
 * refreshed. The stand-in also re-checks the broadcast read before every delivery of a
 * committed message; to keep that cheap the answer is cached per topic and claims (the exact claims the check ran with: role, sub,
 * exp and the rest). An entry lives until the earliest of: the token's `exp`, an
 * invalidation (the gateway drops every entry when Postgres notifies that authorization
 * inputs changed, e.g. a coach assignment was written), and CACHE_TTL_MS. The TTL bounds
 * how late the cache notices a change no write announces (an assignment window that ends
 * or starts by the clock alone); for the interaction topics the audit call of every
 * coach's delivery re-checks the assignment at the moment of delivery anyway (delivery.ts).
 */
import { decodeJwt } from "jose";
import type postgres from "postgres";
import { type Keys, verify } from "../keys.ts";

/** Claims of a channel's token, with the two Realtime requires. */
export type Claims = Record<string, unknown> & { role: string; exp: number };

/** A token accepted, or refused with Realtime's error code and message. */
export type TokenCheck = { ok: true; claims: Claims } | { ok: false; code: string; message: string };

/** How long a cached read check may be reused at most (ms). */
export const CACHE_TTL_MS = 30_000;

/** Realtime's message for a token whose `exp` has passed. */
export function expiredMessage(exp: number, now = Date.now()): string {
  return `Token has expired ${Math.max(0, Math.floor(now / 1000) - exp)} seconds ago`;
}

/** Checks a channel's token as Realtime's confirm_token does. */
export async function checkToken(keys: Keys, token: string | null, now = Date.now()): Promise<TokenCheck> {
  let peeked: Record<string, unknown>;
  try {
    if (!token) throw new Error("no token");
    peeked = decodeJwt(token);
  } catch {
    return { ok: false, code: "MalformedJWT", message: "The token provided is not a valid JWT" };
  }
  const checked = await verify(keys, token);
  if (!checked.ok) {
    if (checked.problem === "expired" && typeof peeked.exp === "number") {
      return { ok: false, code: "InvalidJWTToken", message: expiredMessage(peeked.exp, now) };
    }
    return { ok: false, code: "JwtSignatureError", message: "Failed to validate JWT signature" };
  }
  const claims = checked.claims as Record<string, unknown>;
  if (typeof claims.role !== "string" || !claims.role || typeof claims.exp !== "number") {
    return { ok: false, code: "InvalidJWTToken", message: "Fields `role` and `exp` are required in JWT" };
  }
  if (claims.exp * 1000 <= now) {
    return { ok: false, code: "InvalidJWTToken", message: expiredMessage(claims.exp, now) };
  }
  return { ok: true, claims: claims as Claims };
}

/** True once the token's `exp` has passed. */
export function isExpired(claims: Claims, now = Date.now()): boolean {
  return claims.exp * 1000 <= now;
}

/** The cache key of a read check: the topic and the exact claims. */
export function cacheKey(topic: string, claims: Claims): string {
  return `${topic}\n${JSON.stringify(claims)}`;
}

/** Cached answers of the read check, per topic and claims (see the module comment). */
export class AuthorizationCache {
  #entries = new Map<string, { allowed: boolean; until: number }>();
  #generation = 0;
  readonly ttlMs: number;
  readonly maxEntries: number;

  constructor(opts: { ttlMs?: number; maxEntries?: number } = {}) {
    this.ttlMs = opts.ttlMs ?? CACHE_TTL_MS;
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  /** Changes with every invalidation; an answer computed under an older generation is not stored. */
  get generation(): number {
    return this.#generation;
  }

  /** The cached answer, or undefined when there is none or it has lapsed. */
  get(topic: string, claims: Claims, now = Date.now()): boolean | undefined {
    const key = cacheKey(topic, claims);
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.allowed;
  }

  /** Stores an answer computed under `generation`, valid until the token's exp or the TTL. */
  set(topic: string, claims: Claims, allowed: boolean, generation: number, now = Date.now()): void {
    if (generation !== this.#generation) return;
    const until = Math.min(claims.exp * 1000, now + this.ttlMs);
    if (until <= now) return;
    if (this.#entries.size >= this.maxEntries) this.#prune(now);
    this.#entries.set(cacheKey(topic, claims), { allowed, until });
  }

  /** Drops every answer (authorization inputs changed). */
  invalidate(): void {
    this.#generation++;
    this.#entries.clear();
  }

  /** Number of entries held (lapsed ones included until next touched). */
  get size(): number {
    return this.#entries.size;
  }

  #prune(now: number): void {
    for (const [key, entry] of this.#entries) if (entry.until <= now) this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) this.#entries.clear();
  }
}

/** The two extensions Realtime authorizes: `broadcast` and `presence` (the `extension` column). */
export type Extension = "broadcast" | "presence";

/** What a check found per extension (absent: not checked). */
export type Permissions = Partial<Record<Extension, boolean>>;

/**
 * A private channel's answers so far, as Realtime's Policies struct keeps them on the
 * socket: per extension, read and write, undefined until checked.
 */
export interface Policies {
  broadcast: { read?: boolean; write?: boolean };
  presence: { read?: boolean; write?: boolean };
}

/** The checks of a private channel: reads (fresh or cached) and writes. */
export interface Authorizer {
  /**
   * The read check (join, access_token refresh, as Realtime does) of `broadcast` and, when
   * asked, `presence`, in one transaction; the broadcast answer is cached.
   */
  authorize(topic: string, claims: Claims, opts?: { presence?: boolean }): Promise<Permissions>;
  /** The broadcast read check before a delivery: the cached answer while it holds, else a fresh check. */
  mayRead(topic: string, claims: Claims): Promise<boolean>;
  /** The write check (a client's first broadcast or presence track on a channel); not cached. */
  mayWrite(topic: string, claims: Claims, extensions: Extension[]): Promise<Permissions>;
  /** Drops every cached answer. */
  invalidate(): void;
  readonly cache: AuthorizationCache;
}

/** Builds the checks over the gateway's pool (connected as `authenticator`). */
export function createAuthorizer(sql: postgres.Sql, cache = new AuthorizationCache()): Authorizer {
  const inFlight = new Map<string, Promise<boolean>>();

  async function authorize(topic: string, claims: Claims, opts: { presence?: boolean } = {}): Promise<Permissions> {
    const generation = cache.generation;
    const found = await probe(sql, topic, claims, opts.presence ? ["broadcast", "presence"] : ["broadcast"]);
    cache.set(topic, claims, found.broadcast === true, generation);
    return found;
  }

  return {
    authorize,
    async mayRead(topic, claims) {
      const cached = cache.get(topic, claims);
      if (cached !== undefined) return cached;
      const key = `${cache.generation}\n${cacheKey(topic, claims)}`;
      let pending = inFlight.get(key);
      if (!pending) {
        pending = authorize(topic, claims).then((p) => p.broadcast === true).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      return await pending;
    },
    mayWrite: (topic, claims, extensions) => writeProbe(sql, topic, claims, extensions),
    invalidate: () => cache.invalidate(),
    cache,
  };
}

/**
 * Realtime's read check of a private topic (Authorization.get_read_authorizations): one
 * probe row per extension is inserted as service_role, then, as the user, a SELECT tells
 * which of them RLS lets the user see; everything is rolled back. A user whose role may not
 * read realtime.messages at all (42501) is refused, as Realtime refuses on a policy error.
 * Throws when the database cannot answer otherwise (the caller refuses: fail closed).
 */
export async function probe(sql: postgres.Sql, topic: string, claims: Claims, extensions: Extension[] = ["broadcast"]): Promise<Permissions> {
  const ids = extensions.map(() => crypto.randomUUID());
  try {
    return await sql.begin(async (tx) => {
      await tx`select set_config('role', 'service_role', true)`;
      await tx`insert into realtime.messages (id, topic, extension)
               select * from unnest(${tx.array(ids)}::uuid[], ${tx.array(extensions.map(() => topic))}::text[], ${tx.array(extensions)}::text[])`;
      await asSubscriber(tx, claims, topic);
      let seen: string[] = [];
      try {
        await tx`savepoint probe`;
        seen = (await tx<{ id: string }[]>`select id::text as id from realtime.messages where id = any(${tx.array(ids)}::uuid[])`).map((r) => r.id);
      } catch (err) {
        if ((err as { code?: string }).code !== "42501") throw err;
        await tx`rollback to savepoint probe`;
      }
      throw new ProbeResult(Object.fromEntries(extensions.map((ext, i) => [ext, seen.includes(ids[i])])));
    });
  } catch (err) {
    if (err instanceof ProbeResult) return err.permissions;
    throw err;
  }
}

/**
 * Realtime's write check (Authorization.get_write_authorizations): as the user, insert a row
 * of the topic per extension, each in its own savepoint; a refusal by RLS or by a missing
 * grant (42501) means no, anything else is an error. Everything is rolled back, so nothing
 * is stored and no broadcast is sent. Extensions not asked about are answered false, as
 * Realtime answers them.
 */
export async function writeProbe(sql: postgres.Sql, topic: string, claims: Claims, extensions: Extension[]): Promise<Permissions> {
  try {
    return await sql.begin(async (tx) => {
      await asSubscriber(tx, claims, topic);
      const permissions: Permissions = { broadcast: false, presence: false };
      for (const ext of extensions) {
        await tx`savepoint write_probe`;
        try {
          await tx`insert into realtime.messages (topic, extension) values (${topic}, ${ext})`;
          permissions[ext] = true;
        } catch (err) {
          if ((err as { code?: string }).code !== "42501") throw err;
          await tx`rollback to savepoint write_probe`;
        }
      }
      throw new ProbeResult(permissions);
    });
  } catch (err) {
    if (err instanceof ProbeResult) return err.permissions;
    throw err;
  }
}

/**
 * Acts as the subscriber for the rest of the transaction, as Realtime sets it up: `role`,
 * `request.jwt.claims`, `request.jwt.claim.sub` and, when given, `realtime.topic`.
 */
export async function asSubscriber(tx: postgres.TransactionSql, claims: Claims, topic?: string): Promise<void> {
  await tx`select set_config('role', ${claims.role}, true),
                  set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                  set_config('request.jwt.claim.sub', ${typeof claims.sub === "string" ? claims.sub : ""}, true),
                  set_config('realtime.topic', ${topic ?? ""}, true)`;
}

/** Carries a check's answer out of the transaction it rolls back. */
class ProbeResult extends Error {
  readonly permissions: Permissions;
  constructor(permissions: Permissions) {
    super("authorization probe (rolled back)");
    this.permissions = permissions;
  }
}
