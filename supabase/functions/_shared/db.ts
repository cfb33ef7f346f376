/**
 * Database access for functions: a postgres.js pool over SUPABASE_DB_URL (on hosted
 * Supabase the transaction pooler, hence prepare: false). A user-scoped call runs in a
 * transaction that sets the role and request.jwt.claims exactly as PostgREST does, so
 * RLS applies to functions as it does to supabase-js.
 *
 * Bounded, like PostgREST's pool:
 * - Each transaction applies its role's settings (`alter role … set`), read once per process
 *   from pg_roles as PostgREST reads "impersonated role settings". The pool logs in as
 *   `postgres` (no timeout), so a role without its own statement_timeout falls back to the
 *   authenticator's, as it does behind PostgREST: locally and on Supabase anon 3 s,
 *   authenticated 8 s, service_role 8 s (authenticator's), coach_ingest 8 s.
 * - A caller holds at most a share of the POOL_MAX connections at once: a user
 *   PER_USER_MAX, a role token (an AI backend's coach_ingest token, the service key: one
 *   caller carrying many users' traffic) PER_TOKEN_MAX. A further call waits up to
 *   CALLER_WAIT_MS for one of the caller's own to end, else 429 with Retry-After. So one
 *   caller's slow queries cannot starve everyone else.
 * - A call waits up to POOL_WAIT_MS for a free connection, else 503 with Retry-After; a
 *   connection attempt gives up after CONNECT_TIMEOUT_S (503 with Retry-After).
 */
import postgres from "postgres";
import { requireEnv } from "./env.ts";
import { type Claims, isUser } from "./auth.ts";
import { HttpError } from "./http.ts";

/** A transaction handle. */
export type Tx = postgres.TransactionSql;
/** A value postgres.js sends as JSON (tx.json). */
export type JSONValue = postgres.JSONValue;

/** Connections in the pool. */
export const POOL_MAX = 10;
/** Connections one user may hold at once (a fraction of the pool). */
export const PER_USER_MAX = 3;
/** Connections one role token may hold at once: more than a user, still not the whole pool. */
export const PER_TOKEN_MAX = 6;
/** How long a caller's call waits for one of the caller's own connections to end. */
export const CALLER_WAIT_MS = 2_000;
/** How long a call waits for any free connection. */
export const POOL_WAIT_MS = 5_000;
/** How long a new connection may take (TCP, TLS, startup, authentication). */
export const CONNECT_TIMEOUT_S = 3;
/** How long to wait before reconnecting after a failed attempt. */
export const RECONNECT_BACKOFF_S = 0.1;

let pool: postgres.Sql | undefined;

/** The shared pool, created on first use. */
export function db(): postgres.Sql {
  return pool ??= postgres(requireEnv("SUPABASE_DB_URL"), {
    prepare: false,
    max: POOL_MAX,
    idle_timeout: 20,
    connect_timeout: CONNECT_TIMEOUT_S,
    // postgres.js waits 3^failures / 100 s (up to 20 s) before reconnecting after failed
    // attempts, and queued calls wait with it: during an outage concurrent calls took 15-20 s
    // to get their 503. A constant short backoff keeps every answer within the connect timeout.
    backoff: () => RECONNECT_BACKOFF_S,
    connection: { application_name: "coach-ledger-functions" },
  });
}

/** Database roles a token may act as through functions. */
export const API_ROLES = new Set(["anon", "authenticated", "service_role", "coach_ingest"]);

/** Per-call request facts, set like PostgREST's request.headers, and per-call limits. */
export interface CallOptions {
  traceId?: string;
  /** Replaces the role's statement_timeout for this call (e.g. "120s"). */
  statementTimeout?: string;
  /** Whose share of the pool the call uses (callerOf); withServiceRole defaults to the functions' own. */
  caller?: Caller;
  /**
   * Takes one request (or `amount`, all or none: a batch takes one per item) from this
   * endpoint's rate limit (private.take_rate_limit) before the transaction writes anything;
   * onTake sees the answer first and may throw (a 429) to stop it. A list takes from each
   * endpoint (a mixed batch: its interactions and its events), each all or none: when one
   * refuses, what the others took stays taken.
   */
  rateLimit?: RateLimitOption | RateLimitOption[];
}

/** One endpoint's take of CallOptions.rateLimit. */
export interface RateLimitOption {
  endpoint: string;
  onTake: (take: RateLimitTake) => void;
  amount?: number;
}

/** A counting semaphore whose waiters give up after a bounded time. */
class Slots {
  readonly size: number;
  #free: number;
  #waiters: (() => void)[] = [];
  constructor(size: number) {
    this.size = size;
    this.#free = size;
  }
  /** True when nothing holds or waits for a slot. */
  get idle(): boolean {
    return this.#free === this.size && this.#waiters.length === 0;
  }
  /** Takes a slot, waiting at most waitMs; false when none came free in time. */
  acquire(waitMs: number): Promise<boolean> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve(false);
      }, waitMs);
      this.#waiters.push(wake);
    });
  }
  /** Hands the slot to the first waiter, or frees it. */
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}

const poolSlots = new Slots(POOL_MAX);
const callerSlots = new Map<string, Slots>();

/** Who a call counts against: a key and how many connections that caller may hold at once. */
export interface Caller {
  key: string;
  max: number;
}

/** The caller of a token: the user (PER_USER_MAX), or for a role token the token itself, by its claims (PER_TOKEN_MAX). */
export function callerOf(claims: Claims): Caller {
  return isUser(claims)
    ? { key: `user:${claims.sub}`, max: PER_USER_MAX }
    : { key: `${claims.role}:${JSON.stringify(claims)}`, max: PER_TOKEN_MAX };
}

/** The functions' own server-side work (withServiceRole without a caller). */
const FUNCTIONS_CALLER: Caller = { key: "service_role:functions", max: PER_TOKEN_MAX };

/**
 * Waits for one of the caller's slots, then for a pool connection; returns the release
 * function. 429 when the caller's own calls keep their slots too long, 503 when the pool
 * stays full.
 */
async function admit(caller: Caller): Promise<() => void> {
  let own = callerSlots.get(caller.key);
  if (!own) callerSlots.set(caller.key, own = new Slots(caller.max));
  const forget = () => {
    if (own.idle && callerSlots.get(caller.key) === own) callerSlots.delete(caller.key);
  };
  if (!await own.acquire(CALLER_WAIT_MS)) {
    forget();
    throw new HttpError(429, "Too Many Requests",
      `You have ${own.size} requests in progress, the most one caller may have at once; retry when one has finished.`, {
        type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
        extensions: { "violated-policies": ["concurrency"] },
        headers: {
          "Retry-After": "1",
          "RateLimit-Policy": `"concurrency";q=${own.size};qu="concurrent-requests"`,
          "RateLimit": `"concurrency";r=0`,
        },
      });
  }
  if (!await poolSlots.acquire(POOL_WAIT_MS)) {
    own.release();
    forget();
    throw new HttpError(503, "Service Unavailable", "Every database connection is busy; retry later.", {
      type: "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity",
      headers: { "Retry-After": "1" },
    });
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    poolSlots.release();
    own.release();
    forget();
  };
}

let roleSettings: Promise<Map<string, Record<string, string>>> | undefined;

/**
 * The settings each API role carries (`alter role … set`), as PostgREST reads them: from
 * pg_roles.rolconfig, only settings the role may set itself (context user, or a granted SET
 * privilege). Read once per process; a failed read is retried on the next call.
 */
export function apiRoleSettings(): Promise<Map<string, Record<string, string>>> {
  return roleSettings ??= (async () => {
    const rows = await db()`
      with role_setting as (
        select r.rolname, unnest(r.rolconfig) as setting
        from pg_catalog.pg_roles r
        where r.rolname = any(${[...API_ROLES, "authenticator"]}::text[])
      ), kv as (
        select rolname, substr(setting, 1, strpos(setting, '=') - 1) as key, substr(setting, strpos(setting, '=') + 1) as value
        from role_setting
      )
      select kv.rolname, kv.key, kv.value
      from kv join pg_catalog.pg_settings ps
        on ps.name = kv.key and (ps.context = 'user' or has_parameter_privilege(ps.name, 'set'))`;
    const byRole = new Map<string, Record<string, string>>();
    for (const r of rows) byRole.set(r.rolname, { ...byRole.get(r.rolname), [r.key]: r.value });
    const fallback = byRole.get("authenticator")?.statement_timeout;
    const settings = new Map<string, Record<string, string>>();
    for (const role of API_ROLES) {
      const own = byRole.get(role) ?? {};
      settings.set(role, fallback && !own.statement_timeout ? { statement_timeout: fallback, ...own } : own);
    }
    return settings;
  })().catch((err) => {
    roleSettings = undefined;
    throw err;
  });
}

async function withClaims<T>(
  role: string,
  claims: Record<string, unknown>,
  fn: (tx: Tx) => Promise<T>,
  opts: CallOptions,
  caller: Caller,
): Promise<T> {
  const release = await admit(caller);
  // The take runs in a statement of its own on another pooled connection, committed at once:
  // its counter row is locked only for the take, never for this transaction (one token's
  // requests all share that row). It is sent before BEGIN, so the two overlap (no round trip
  // more), and postgres.js hands out connections in order, so a transaction that holds a
  // connection never waits for a take that still needs one.
  const limits = opts.rateLimit === undefined ? [] : Array.isArray(opts.rateLimit) ? opts.rateLimit : [opts.rateLimit];
  const takes = limits.map((limit) => queryTake(limit.endpoint, claims, limit.amount));
  for (const take of takes) take.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  try {
    const settings = { ...(await apiRoleSettings()).get(role) };
    if (opts.statementTimeout) settings.statement_timeout = opts.statementTimeout;
    return await db().begin(async (tx) => {
      for (const [i, take] of takes.entries()) limits[i].onTake(await take);
      const headers = JSON.stringify(opts.traceId ? { "x-request-id": opts.traceId } : {});
      // Sent now (execute()), not awaited: fn's first query is pipelined behind it on the
      // same connection (one round trip less). postgres.js sends a query only when it is
      // awaited or executed, so without execute() an async fn that awaits its first query
      // sent that query first, as postgres with no claims. Order is kept, and if this
      // statement fails the transaction is aborted, so fn's query cannot run without the
      // role and settings.
      const setup = tx`select set_config('role', ${role}, true),
                      set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                      set_config('request.headers', ${headers}, true),
                      (select count(set_config(s.key, s.value, true)) from jsonb_each_text(${tx.json(settings)}::jsonb) s)`.execute();
      const [, result] = await Promise.all([setup, fn(tx)]);
      return result;
    }) as T;
  } catch (err) {
    throw toHttpError(err);
  } finally {
    release();
  }
}

/** Runs fn in a transaction as the caller: the token's role (one of API_ROLES) and claims. */
export async function withUser<T>(claims: Claims, fn: (tx: Tx) => Promise<T>, opts: CallOptions = {}): Promise<T> {
  if (!API_ROLES.has(claims.role)) {
    throw new HttpError(403, "Forbidden", `A token with role ${claims.role} cannot call this function.`);
  }
  return await withClaims(claims.role, claims, fn, opts, opts.caller ?? callerOf(claims));
}

/** Runs fn in a transaction as service_role (bypasses RLS; use for server-side work only). */
export async function withServiceRole<T>(fn: (tx: Tx) => Promise<T>, opts: CallOptions = {}): Promise<T> {
  return await withClaims("service_role", { role: "service_role" }, fn, opts, opts.caller ?? FUNCTIONS_CALLER);
}

/** A rate limit after one take (private.take_rate_limit); quota and the rest are null when the role has no policy. */
export interface RateLimitTake {
  allowed: boolean;
  policy: string;
  quota: number | null;
  window_seconds: number | null;
  remaining: number | null;
  reset_seconds: number | null;
}

/** The take itself: one autocommitted statement on the pool. */
async function queryTake(endpoint: string, claims: Record<string, unknown>, amount = 1): Promise<RateLimitTake> {
  const sql = db();
  const [row] = await sql`select * from private.take_rate_limit(${endpoint}, ${sql.json(claims as JSONValue)}::jsonb, now(), ${amount}::integer)`;
  return row as RateLimitTake;
}

/**
 * Takes one request from the caller's rate limit for endpoint, when no transaction follows
 * at once (summary takes before its LLM call). A statement of its own, so the counter row is
 * locked only for the take.
 */
export async function takeRateLimit(endpoint: string, claims: Claims): Promise<RateLimitTake> {
  const release = await admit(callerOf(claims));
  try {
    return await queryTake(endpoint, claims);
  } catch (err) {
    throw toHttpError(err);
  } finally {
    release();
  }
}

/** Node's (and Deno's node:net) errnos for a connection that broke or could not be made. */
const SOCKET_ERRORS = new Set(["EPIPE", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN", "ENOTCONN", "ENOTFOUND", "EAI_AGAIN"]);
const CONNECTION_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "CONNECT_TIMEOUT", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED"]);

/**
 * The request field each named constraint guards, for the 422's field errors: one explicit
 * map (STYLE 26), so that renaming a constraint or a field is a visible change here rather
 * than a silent change of a parsed name. Fields are named as the request names them.
 */
export const CONSTRAINT_FIELDS: Readonly<Record<string, string | string[]>> = {
  coach_interactions_sender_known: "sender",
  coach_interactions_channel_known: "channel",
  coach_interactions_status_known: "status",
  coach_interactions_error_code_with_error: "error_code",
  coach_interactions_error_code_format: "error_code",
  coach_interactions_request_id_format: "request_id",
  coach_interactions_content_has_text: "content",
  coach_interactions_metadata_object: "metadata",
  coach_interactions_persona_length: "coach_persona",
  coach_interactions_model_length: "model",
  coach_interactions_latency_nonnegative: "latency_ms",
  coach_interactions_tokens_nonnegative: ["prompt_tokens", "completion_tokens", "cached_tokens"],
  coach_interactions_cached_within_prompt: "cached_tokens",
  coach_interactions_cost_nonnegative: "cost_usd",
  coach_interactions_sentiment_range: "sentiment",
  coach_interactions_momentum_state_format: "momentum_state",
  coach_interactions_tracked_skill_id_hash_format: "tracked_skill_id",
  coach_interactions_session_id_fkey: "session_id",
  coach_interactions_user_id_fkey: "user_id",
  coach_interactions_content_bounded: "content",
  coach_interactions_metadata_bounded: "metadata",
  interaction_events_kind_known: "kind",
  interaction_events_score_range: "score",
  interaction_events_rating_has_score: "score",
  interaction_events_category_length: "category",
  interaction_events_category_format: "category",
  interaction_events_request_id_format: "request_id",
  interaction_events_payload_object: "payload",
  interaction_events_payload_bounded: "payload",
  interaction_events_tracked_skill_id_hash_format: "tracked_skill_id",
  interaction_events_user_id_fkey: "user_id",
  interaction_events_interaction_id_fkey: "interaction_id",
  interaction_events_session_id_fkey: "session_id",
  assessments_request_id_format: "request_id",
  assessments_session_id_fkey: "session_id",
  assessments_rubric_version_range: "rubric_version",
  assessments_overall_score_range: "overall_score",
  assessments_criteria_valid: "criteria",
  assessments_strengths_valid: "strengths",
  assessments_improvements_valid: "improvements",
  assessments_model_length: "model",
  assessments_tracked_skill_id_hash_format: "tracked_skill_id",
  list_assessments_target: "session_id",
  list_assessments_limit: "limit",
  list_assessments_before: "before",
  start_session_media_upload_session: "session_id",
  start_session_media_upload_kind: "kind",
  start_session_media_upload_content_type: "content_type",
  start_session_media_upload_bytes: "bytes",
  session_media_path_format: "filename",
  session_media_duration_range: "duration_ms",
  session_media_tracked_skill_id_hash_format: "tracked_skill_id",
  session_media_sha256_format: "sha256",
  complete_session_media_upload_media: "media_id",
  complete_session_media_upload_object: "media_id",
  list_session_media_session: "session_id",
};

/** Titles of the statuses a PTnnn code can ask for (PostgREST's custom status codes). */
const STATUS_TITLES: Record<number, string> = {
  400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Content",
  429: "Too Many Requests",
};

/**
 * The HTTP status of a client's mistake reported by SQLSTATE (PostgREST's PTxxx codes as
 * their number, 42501 as 403, bad values and broken rules as 422), or null for any other.
 */
export function clientErrorStatus(code: string): number | null {
  const pt = /^PT(\d{3})$/.exec(code);
  if (pt) return Number(pt[1]);
  if (code === "42501") return 403;
  if (/^(23514|23502|23503|22023|22P02|22P05|22021|22001|22003|22007|22008)$/.test(code)) return 422;
  return null;
}

/**
 * Maps a database error to the HTTP error a client should see: the database unreachable
 * (postgres.js's connection errors, any socket error, 08xxx, 57P01-03, 53xxx) → 503; the statement timeout → 504; a refused permission → 403; invalid values (NUL bytes
 * and bad encodings among them: 22P05, 22021) → 422 (with
 * the field from CONSTRAINT_FIELDS); PostgREST-style PTnnn codes → nnn.
 * Anything else is returned unchanged (a 500 when it reaches respond()).
 */
export function toHttpError(err: unknown): unknown {
  if (err instanceof HttpError) return err;
  const e = err as { code?: string; message?: string; hint?: string; constraint_name?: string; errno?: string; severity?: string; syscall?: string };
  const code = e?.code ?? "";
  const detail = e?.message ?? "Database error";
  // A socket error of the runtime on the database connection is the database going away
  // too (a server error always has a severity; these never do).
  const socketError = e?.severity === undefined && SOCKET_ERRORS.has(code);
  if (socketError || CONNECTION_ERRORS.has(code) || CONNECTION_ERRORS.has(e?.errno ?? "") || /^(08|57P0[1-3]|53)/.test(code)) {
    return new HttpError(503, "Service Unavailable", "The database is unavailable; retry later.", { headers: { "Retry-After": "1" } });
  }
  if (code === "57014") {
    return new HttpError(504, "Gateway Timeout", "The database did not finish within the statement timeout of your role, so the query was cancelled.");
  }
  const pt = /^PT(\d{3})$/.exec(code);
  if (pt) return new HttpError(Number(pt[1]), STATUS_TITLES[Number(pt[1])] ?? "Error", detail);
  const status = clientErrorStatus(code);
  if (status === 403) return new HttpError(403, "Forbidden", detail);
  if (status === 422) {
    const fields = [e.constraint_name ? CONSTRAINT_FIELDS[e.constraint_name] ?? [] : []].flat();
    return new HttpError(422, "Unprocessable Content", detail, fields.length ? { errors: fields.map((field) => ({ field, message: detail })) } : {});
  }
  return err;
}

/**
 * The Coach Ledger user a third-party provider's subject maps to (private.external_identities,
 * written by clerk-webhook), with their email; null when none. Read as the pool's own role.
 */
export async function externalUser(issuer: string, subject: string): Promise<{ id: string; email: string | null } | null> {
  const [row] = await db()<{ id: string; email: string | null }[]>`
    select e.user_id as id, u.email
      from private.external_identities as e
      join auth.users as u on u.id = e.user_id
     where e.issuer = ${issuer} and e.subject = ${subject}`;
  return row ?? null;
}

/** Closes the pool and forgets the cached role settings (tests). */
export async function closeDb(): Promise<void> {
  await pool?.end({ timeout: 5 });
  pool = undefined;
  roleSettings = undefined;
}
