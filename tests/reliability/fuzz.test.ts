/**
 * Malformed-input fuzz of every edge function and every RPC the API roles may call, through
 * the gateway as a client would send it: generated bodies (wrong types, unknown and missing
 * fields, huge and deep values, NUL bytes, broken JSON and UTF-8), query strings, methods,
 * odd RPC names, and every kind of token (none, anon, users, service, ingest, expired,
 * foreign-signed, garbage). Every answer must be below 500 with a JSON body, and an answer
 * that is not 2xx must have written nothing (a fingerprint of every table a request can
 * write is compared around it). Deterministic: FUZZ_SEED and FUZZ_CASES reproduce a run.
 * It runs on a stack of its own: valid requests among the generated ones change seed data.
 * The one 5xx allowed is the local stand-in's documented 501 for what it does not serve yet
 * (filters and shaping on RPC results: the supabase.from() issue), counted apart.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { ALICE, BOB } from "../helpers.ts";
import { mintToken, startThrowawayStack, statusEnv, type ThrowawayStack } from "../../local/stack.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261124);
const CASES = Number(process.env.FUZZ_CASES ?? 2500);

let own: ThrowawayStack;
let sql: postgres.Sql;
beforeAll(async () => {
  own = await startThrowawayStack({ prefix: "coach-ledger-fuzz", fast: true });
  sql = postgres(statusEnv(own.cfg).DB_URL, { max: 2, onnotice: () => {} });
  // Thousands of requests from a few users: rate limits would answer most of them 429
  // before they reach what the fuzz is for. Every request is still counted.
  await sql`update private.rate_limit_policies set quota = 1000000000`;
  // The fingerprint below must change only by what a request writes: pg_cron's jobs (the
  // metrics refresh every 2 minutes rewrites analytics rows) are paused for this stack.
  await sql`select cron.alter_job(jobid, active => false) from cron.job`;
}, 180_000);
afterAll(async () => {
  await sql?.end();
  await own?.dispose();
});

/** The stand-in's documented 501s: RPC shaping it does not serve yet, and the Storage routes it does not serve. */
function notServedYet(status: number, text: string, method: string, url: string): boolean {
  if (status !== 501) return false;
  // A HEAD answer has no body: the storage routes the stand-in does not serve, by path, and
  // shaping (select, order, limit, offset, or/and, filters) of an RPC that returns no set of rows.
  if (method === "HEAD") {
    return /\/storage\/v1\/(render\/|object\/(info|list-v2)(\/|$|\?))/.test(url)
      || /\/rest\/v1\/rpc\/[^?]*\?(.*&)?((select|order|limit|offset|or|and)=|[^=&]+=(not\.)?[a-z]+\.)/.test(url);
  }
  return /"code":"PGRST000".*is not (supported|served) by the local gateway/.test(text)
    || /"code":"NotImplemented".*is not served by the local stand-in/.test(text);
}

/** Paths under /storage/v1 (local/gateway/storage.ts), valid and not. */
const STORAGE_PATHS = [
  "bucket", "bucket/session-media", "bucket/%00", "object/session-media/u/x/a.wav", "object/authenticated/session-media/u/x/a.wav",
  "object/public/session-media/u/x/a.wav", "object/public/%00/x", "object/sign/session-media/u/x/a.wav", "object/sign/session-media",
  "object/upload/sign/session-media/u/x/a.wav", "object/list/session-media", "object/session-media", "object/move", "object/copy", "object/info/session-media/a",
  "object/session-media/a%00b", "object/session-media/..%2F..%2Fx", "object/sign/session-media/a.wav?token=not.a.jwt",
  "object/upload/sign/session-media/a.wav?token=eyJhbGciOiJIUzI1NiJ9.e30.x", `object/session-media/${"k".repeat(2000)}`, "render/image/x",
];

/** mulberry32: a small seeded PRNG, so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FUNCTIONS: { name: string; methods: string[]; fields: string[]; query?: string[] }[] = [
  {
    name: "log-interaction", methods: ["POST"],
    fields: ["request_id", "user_id", "sender", "channel", "session_id", "conversation_id", "coach_persona", "content", "metadata",
      "model", "latency_ms", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "sentiment", "momentum_state",
      "status", "error_code", "tracked_skill_id", "created_at"],
  },
  { name: "history", methods: ["GET"], fields: [], query: ["user_id", "limit", "before", "redacted", "purpose"] },
  { name: "interaction-aggregate", methods: ["POST"], fields: ["from", "to"] },
  { name: "summary", methods: ["POST"], fields: ["session_id", "refresh"] },
  { name: "me", methods: ["GET"], fields: [] },
  { name: "audit-checkpoint", methods: ["POST"], fields: [] },
  {
    name: "events", methods: ["POST", "GET"],
    fields: ["request_id", "user_id", "kind", "interaction_id", "session_id", "group_id", "category", "score", "payload", "tracked_skill_id", "created_at"],
    query: ["user_id", "session_id", "group_id", "kind", "since", "until", "limit", "before"],
  },
  {
    name: "assessments", methods: ["POST", "GET"],
    fields: ["request_id", "session_id", "group_id", "rubric_version", "overall_score", "criteria", "strengths", "improvements", "model", "tracked_skill_id", "created_at"],
    query: ["session_id", "group_id", "latest", "limit", "before"],
  },
  { name: "coaching-ai/coaching/alignment-check", methods: ["POST"], fields: ["tenant_id", "goal_id"] },
  { name: "coaching-ai/operations/scheduling-suggestions", methods: ["POST"], fields: ["tenant_id", "action_ids", "hours_per_week"] },
  { name: "coaching-ai/analysis/operations", methods: ["POST"], fields: ["tenant_id", "analysis_type"] },
  { name: "business-data", methods: ["GET"], fields: [], query: ["tenant_id"] },
  { name: "media/upload-url", methods: ["POST"], fields: ["session_id", "kind", "filename", "content_type", "bytes", "duration_ms", "tracked_skill_id"] },
  { name: "media/complete", methods: ["POST"], fields: ["media_id"] },
  { name: "media", methods: ["GET"], fields: [], query: ["session_id"] },
  { name: "media-retention", methods: ["POST"], fields: ["source", "batch_size"] },
];

const ODD_STRINGS = [
  "", " ", "a", "null", "true", "0", "-1", "1e309", "NaN", "🙂", "\u0000", "a\u0000b", "\ud800", "\\", "\"", "'; drop table x; --",
  "%00", "%ZZ", "../..", "<script>", "x".repeat(300), "y".repeat(70_000), ALICE, BOB, crypto.randomUUID(), "2026-13-45",
  "2026-11-24", "2026-11-24T00:00:00Z", "user", "ai_coach", "human_coach", "rating", "chat", "ok", "error", "gpt-4o",
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

/** A random JSON value, nested up to `depth`. */
function value(r: () => number, depth: number): unknown {
  const k = r();
  if (depth <= 0 || k < 0.45) {
    const s = r();
    if (s < 0.1) return null;
    if (s < 0.2) return r() < 0.5;
    if (s < 0.4) return pick(r, [0, -1, 1, 1.5, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e308, -0, 100_000_001, 5, 3]);
    return pick(r, ODD_STRINGS);
  }
  if (k < 0.7) return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth - 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 4); i > 0; i--) o[pick(r, ["text", "a", "", "sender", "__proto__", "x".repeat(40)])] = value(r, depth - 1);
  return o;
}

/** An object over the target's fields (a random subset, random values) plus, sometimes, unknown keys. */
function fieldsObject(r: () => number, fields: string[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of fields) if (r() < 0.5) o[f] = r() < 0.3 ? { text: pick(r, ODD_STRINGS) } : value(r, 3);
  if (r() < 0.2) o[pick(r, ["unknown", "role", "id", "actor_id"])] = value(r, 2);
  return o;
}

/** A request body: mostly JSON, sometimes broken text or bytes, sometimes huge or deep. */
function body(r: () => number, fields: string[]): BodyInit | undefined {
  const k = r();
  if (k < 0.05) return undefined;
  if (k < 0.1) return pick(r, ["{", "{\"a\":", "[1,2", "nul", "\"unterminated", "{}}", "{\"a\":1,}", "\u0000"]);
  if (k < 0.13) return new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
  if (k < 0.15) return "[".repeat(20_000) + "]".repeat(20_000);
  if (k < 0.16) return JSON.stringify({ content: { text: "x", deep: JSON.parse("[".repeat(1500) + "]".repeat(1500)) }, sender: "user" });
  if (k < 0.17) return `{"sender":"user","content":{"text":"x","deep":${"[".repeat(20_000)}${"]".repeat(20_000)}},"responses":${"{\"a\":".repeat(5000)}1${"}".repeat(5000)}}`;
  if (k < 0.18) return JSON.stringify({ text: "z".repeat(3_000_000) });
  if (k < 0.3) return JSON.stringify(value(r, 4));
  return JSON.stringify(fieldsObject(r, fields));
}

/** A request known to be valid; mutations of it reach the handlers' and SQL's own checks. */
interface Template {
  kind: "function" | "rpc";
  name: string;
  method: string;
  token: "alice" | "ingest" | "service" | "carol";
  body: Record<string, unknown>;
}

const ALICE_SESSION = "a11ce000-5e55-4000-8000-000000000001";
const TENANT = "7e4a0000-0000-4000-8000-000000000001";
const TEMPLATES: Template[] = [
  { kind: "function", name: "log-interaction", method: "POST", token: "alice", body: { sender: "user", content: { text: "hi" } } },
  {
    kind: "function", name: "log-interaction", method: "POST", token: "ingest",
    body: { sender: "ai_coach", user_id: ALICE, content: { text: "x" }, model: "gpt-4o", prompt_tokens: 10, completion_tokens: 5, latency_ms: 100 },
  },
  { kind: "function", name: "history", method: "GET", token: "alice", body: { limit: "5", redacted: "true" } },
  { kind: "function", name: "history", method: "GET", token: "carol", body: { user_id: ALICE, limit: "2" } },
  { kind: "function", name: "interaction-aggregate", method: "POST", token: "service", body: { from: "2026-11-01" } },
  { kind: "function", name: "summary", method: "POST", token: "alice", body: { session_id: ALICE_SESSION } },
  { kind: "rpc", name: "log_coach_interaction", method: "POST", token: "alice", body: { sender: "user", content: { text: "rpc" } } },
  { kind: "rpc", name: "log_interaction_event", method: "POST", token: "alice", body: { kind: "feedback", payload: { note: "n" } } },
  { kind: "rpc", name: "update_my_profile", method: "POST", token: "alice", body: { display_name: "Alice Archer", preferences: {} } },
  { kind: "rpc", name: "start_coaching_session", method: "POST", token: "alice", body: { theme: "fuzz" } },
  {
    kind: "rpc", name: "save_stage_response", method: "POST", token: "alice",
    body: { session_id: ALICE_SESSION, stage_number: 1, responses: { presence_level: 5 }, complete: false },
  },
  { kind: "rpc", name: "get_interaction_history", method: "POST", token: "alice", body: { page_size: 3 } },
  { kind: "rpc", name: "get_coaching_session", method: "POST", token: "carol", body: { session_id: ALICE_SESSION } },
  { kind: "rpc", name: "list_action_plans", method: "POST", token: "alice", body: {} },
  {
    kind: "rpc", name: "track_opportunity", method: "POST", token: "alice",
    body: { title: "Fuzz grant", amount: 100, deadline: "2031-01-01T00:00:00Z", trust_score: 0.5, application_type: "form" },
  },
  { kind: "rpc", name: "coach_state_to_db", method: "POST", token: "alice", body: { state: "Review" } },
  { kind: "rpc", name: "get_game_plan", method: "POST", token: "carol", body: { user_id: ALICE } },
  { kind: "rpc", name: "snooze_micro_task", method: "POST", token: "alice", body: { until: "2031-01-01T00:00:00Z" } },
  { kind: "rpc", name: "respond_to_check_in", method: "POST", token: "alice", body: { check_in_id: crypto.randomUUID(), status: "completed" } },
  { kind: "rpc", name: "claim_email_outbox", method: "POST", token: "service", body: { batch_size: 5, lease_seconds: 60 } },
  {
    kind: "rpc", name: "record_email_delivery", method: "POST", token: "service",
    body: { outbox_id: crypto.randomUUID(), outcome: "retry", error: "503", retry_after_seconds: 30 },
  },
  { kind: "function", name: "game-plan", method: "GET", token: "carol", body: { user_id: ALICE } },
  { kind: "rpc", name: "list_skills", method: "POST", token: "alice", body: { category: "communication", limit: 5 } },
  { kind: "function", name: "events", method: "POST", token: "ingest", body: { kind: "rating", score: 4, user_id: ALICE, session_id: ALICE_SESSION } },
  { kind: "function", name: "events", method: "GET", token: "alice", body: { session_id: ALICE_SESSION, limit: "3" } },
  {
    kind: "function", name: "assessments", method: "POST", token: "ingest",
    body: { request_id: "fuzz-assessment", session_id: ALICE_SESSION, rubric_version: 7, overall_score: 3, criteria: { clarity: 3 } },
  },
  { kind: "function", name: "assessments", method: "GET", token: "carol", body: { session_id: ALICE_SESSION, latest: "true" } },
  { kind: "rpc", name: "log_event", method: "POST", token: "alice", body: { kind: "read", request_id: "fuzz-event" } },
  {
    kind: "rpc", name: "persist_assessment_summary", method: "POST", token: "ingest",
    body: { request_id: "fuzz-rpc-assessment", session_id: ALICE_SESSION, rubric_version: 8, overall_score: 2.5, criteria: { clarity: 2.5 } },
  },
  { kind: "rpc", name: "list_assessments", method: "POST", token: "carol", body: { session_id: ALICE_SESSION, limit: 2 } },
  { kind: "rpc", name: "get_latest_assessment", method: "POST", token: "alice", body: { session_id: ALICE_SESSION } },
  { kind: "rpc", name: "list_my_tenants", method: "POST", token: "carol", body: {} },
  { kind: "rpc", name: "create_tenant", method: "POST", token: "alice", body: { name: "Fuzz tenant" } },
  {
    kind: "rpc", name: "add_tenant_member", method: "POST", token: "alice",
    body: { tenant_id: "7e4a0000-0000-4000-8000-000000000001", user_id: BOB, role: "coach" },
  },
  { kind: "function", name: "dispatch-notifications", method: "POST", token: "service", body: { source: "fuzz" } },
  { kind: "function", name: "coaching-ai/coaching/kpi-recommendations", method: "POST", token: "alice", body: { tenant_id: TENANT, goal_id: "7e4a0000-60a1-4000-8000-000000000001" } },
  {
    kind: "function", name: "coaching-ai/operations/prioritization-suggestions", method: "POST", token: "alice",
    body: { tenant_id: TENANT, action_ids: ["7e4a0000-ac71-4000-8000-000000000001"] },
  },
  { kind: "function", name: "coaching-ai/operations/root-cause-suggestions", method: "POST", token: "service", body: { tenant_id: TENANT, issue_id: "7e4a0000-155e-4000-8000-000000000001" } },
  { kind: "function", name: "business-data", method: "GET", token: "carol", body: { tenant_id: TENANT } },
  {
    kind: "function", name: "media/upload-url", method: "POST", token: "alice",
    body: { session_id: ALICE_SESSION, kind: "audio", filename: "fuzz.wav", content_type: "audio/wav", bytes: 1000 },
  },
  { kind: "function", name: "media/complete", method: "POST", token: "alice", body: { media_id: crypto.randomUUID() } },
  { kind: "function", name: "media", method: "GET", token: "carol", body: { session_id: ALICE_SESSION } },
  { kind: "function", name: "media-retention", method: "POST", token: "service", body: { batch_size: 10 } },
  { kind: "rpc", name: "get_tenant_context", method: "POST", token: "carol", body: { tenant_id: TENANT } },
  { kind: "rpc", name: "record_business_figures", method: "POST", token: "alice", body: { tenant_id: TENANT, month: "2020-01-01", revenue_usd: 100, customers: 3 } },
  { kind: "rpc", name: "set_action_status", method: "POST", token: "alice", body: { action_id: "7e4a0000-ac71-4000-8000-000000000001", status: "in_progress" } },
];

const MUTANTS: unknown[] = [
  null, true, 0, -1, 2 ** 63, 1e308, -1e308, 0.5, "", "\u0000", "a\u0000b", "\ud800", "x".repeat(40_000), [], {}, [1, "a"],
  { text: "\u0000" }, { text: "ok", deep: JSON.parse("[".repeat(40) + "]".repeat(40)) }, "2026-02-30", "1970-01-01T00:00:00Z",
  crypto.randomUUID(), ALICE, "user", "0", "true", "1e400", " ", "\n", "💥".repeat(5000),
];

/** The template with one field changed, removed, or one unknown field added. */
function mutate(r: () => number, t: Template): Record<string, unknown> {
  const body = structuredClone(t.body);
  const keys = Object.keys(body);
  const k = r();
  if (k < 0.1 || keys.length === 0) body[pick(r, ["unknown_field", "actor_id", "role", "id"])] = pick(r, MUTANTS);
  else if (k < 0.2) delete body[pick(r, keys)];
  else {
    const key = pick(r, keys);
    const v = body[key];
    if (v && typeof v === "object" && !Array.isArray(v) && r() < 0.5) {
      const inner = v as Record<string, unknown>;
      inner[pick(r, [...Object.keys(inner), "extra"])] = pick(r, MUTANTS);
    } else {
      body[key] = pick(r, MUTANTS);
    }
  }
  return body;
}

interface Rpc {
  name: string;
  args: string[];
}

interface Fingerprint {
  [table: string]: string;
}

/** Counts and last updates of every table a request can write. */
async function fingerprint(): Promise<Fingerprint> {
  const [row] = await sql`
    select (select count(*) from public.coach_interactions)::text as interactions,
           (select count(*) from public.interaction_events)::text as events,
           (select count(*) from audit.phi_access_log)::text as phi_access_log,
           (select count(*) from audit.phi_access_checkpoints)::text as checkpoints,
           (select count(*) from private.interaction_requests)::text as idempotency_keys,
           (select count(*) from private.event_requests)::text as event_keys,
           (select count(*) from public.assessments)::text as assessments,
           (select count(*) from public.tenant_ai_calls)::text as ai_calls,
           (select count(*) || '/' || count(*) filter (where status <> 'pending') from public.session_media) as session_media,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from storage.objects) as storage_objects,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.goals) as goals,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.actions) as actions,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.business_issues) as business_issues,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.business_figures) as business_figures,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.business_foundations) as foundations,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.tenants) as tenants,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.tenant_members) as tenant_members,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.coaching_sessions) as sessions,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.stage_responses) as stages,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.action_plans) as plans,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.milestones) as milestones,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.profiles) as profiles,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.coach_assignments) as assignments,
           (select count(*) || '/' || coalesce(max(computed_at)::text, '') from analytics.coach_interaction_metrics) as metrics,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.opportunities) as opportunities,
           (select count(*) || '/' || coalesce(max(updated_at)::text, '') from public.applications) as applications,
           (select count(*) || '/' || count(*) filter (where status <> 'pending') from public.application_state_proposals) as proposals,
           (select count(*) || '/' || count(*) filter (where status <> 'pending') from public.check_in_tasks) as check_ins,
           (select count(*) from public.notification_log)::text as notifications,
           (select count(*) || '/' || count(*) filter (where status <> 'queued') || '/' || coalesce(sum(attempts), 0)
              from private.email_outbox) as outbox`;
  return row as Fingerprint;
}

describe("malformed-input fuzz of every function and RPC", () => {
  it(`${CASES} generated requests: no 5xx, JSON error bodies, and nothing written by a non-2xx answer (seed ${SEED})`,
    { timeout: 480_000 }, async () => {
      const cfg = own.cfg;
      const env = statusEnv(cfg);
      const r = prng(SEED);
      const rpcs = (await sql<Rpc[]>`
        select p.proname as name,
               coalesce((select array_agg(n) from unnest(p.proargnames) n where n <> ''), '{}') as args
        from pg_proc p
        where p.pronamespace = 'public'::regnamespace and p.prokind = 'f'
          and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute')
               or has_function_privilege('service_role', p.oid, 'execute'))`).map((x) => ({ name: x.name, args: x.args }));
      expect(rpcs.length).toBeGreaterThan(10);

      const foreign = await new SignJWT({ sub: ALICE, role: "authenticated", aud: "authenticated", exp: Math.floor(Date.now() / 1000) + 600 })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode("another-projects-secret-with-at-least-32-chars"));
      // Mostly tokens that get past authentication, so most cases reach the handlers and SQL.
      const valid: string[] = [
        env.ANON_KEY, env.SERVICE_ROLE_KEY, env.PUBLISHABLE_KEY, env.SECRET_KEY,
        await mintToken(cfg, { email: "alice@example.com" }), await mintToken(cfg, { email: "bob@example.com" }),
        await mintToken(cfg, { email: "carol@example.com" }), await mintToken(cfg, { role: "coach_ingest" }),
      ];
      const byName = { alice: valid[4], carol: valid[6], ingest: valid[7], service: env.SERVICE_ROLE_KEY };
      const invalid: (string | null)[] = [
        null, foreign, "not.a.jwt", "Bearer", await mintToken(cfg, { email: "alice@example.com", expiresIn: -60 }),
      ];

      const failures: string[] = [];
      const statuses = new Map<number, number>();
      let notServed = 0;
      let before = await fingerprint();
      // A request without an answer is often the victim of the one before it (a connection it
      // left closing), so its failure names that one too.
      let previous = "none";
      for (let i = 0; i < CASES; i++) {
        const token = r() < 0.8 ? pick(r, valid) : pick(r, invalid);
        const headers: Record<string, string> = {};
        if (token !== null && r() < 0.9) headers.authorization = `Bearer ${token}`;
        if (r() < 0.85) headers.apikey = r() < 0.9 ? env.ANON_KEY : pick(r, ["", "garbage", env.SECRET_KEY]);
        if (r() < 0.8) headers["content-type"] = pick(r, ["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"]);
        if (r() < 0.1) headers["idempotency-key"] = pick(r, ["k-1", "", "x".repeat(200), "bad key", "k\u00e9"]);
        if (r() < 0.1) headers.prefer = pick(r, ["count=exact", "return=representation", "params=single-object", "tx=rollback"]);
        if (r() < 0.1) headers.accept = pick(r, ["application/vnd.pgrst.object+json", "text/csv", "*/*", "application/xml"]);
        if (r() < 0.1) headers.range = pick(r, ["0-1", "5-2", "abc", "0-"]);

        let url: string;
        let method: string;
        let payload: BodyInit | undefined;
        if (r() < 0.4) {
          // A valid request with one mutation, sent with the template's own token and the apikey.
          const t = pick(r, TEMPLATES);
          const body = mutate(r, t);
          headers.authorization = `Bearer ${byName[t.token]}`;
          headers.apikey = env.ANON_KEY;
          headers["content-type"] = "application/json";
          method = t.method;
          if (t.method === "GET") {
            const params = new URLSearchParams();
            for (const [k, v] of Object.entries(body)) params.set(k, typeof v === "string" ? v : JSON.stringify(v));
            url = `${env.FUNCTIONS_URL}/${t.name}?${params}`;
            payload = undefined;
          } else {
            url = t.kind === "function" ? `${env.FUNCTIONS_URL}/${t.name}` : `${env.REST_URL}/rpc/${t.name}`;
            payload = JSON.stringify(body);
          }
        } else if (r() < 0.45) {
          const f = pick(r, FUNCTIONS);
          method = r() < 0.85 ? pick(r, f.methods) : pick(r, ["GET", "POST", "PUT", "DELETE", "PATCH"]);
          const suffix = r() < 0.1 ? pick(r, ["/", "/x", "/jwks", "/%ZZ", "/%00", "/../me"]) : "";
          const params = new URLSearchParams();
          for (const q of f.query ?? []) if (r() < 0.5) params.set(q, String(pick(r, ODD_STRINGS)));
          if (r() < 0.1) params.set(pick(r, ["unknown", "limit", "select"]), String(pick(r, ODD_STRINGS)));
          url = `${env.API_URL}/functions/v1/${f.name}${suffix}${params.size ? `?${params}` : ""}`;
          payload = method === "GET" ? undefined : body(r, f.fields);
        } else if (r() < 0.15) {
          // Storage: random methods, paths, content types and bodies (raw, JSON or multipart).
          method = pick(r, ["GET", "HEAD", "POST", "PUT", "DELETE", "POST"]);
          url = `${env.API_URL}/storage/v1/${pick(r, STORAGE_PATHS)}`;
          if (r() < 0.3) headers["content-type"] = pick(r, ["multipart/form-data; boundary=b", `multipart/form-data; boundary=${"z".repeat(100)}`, "audio/wav", "text/html", ""]);
          if (r() < 0.2) headers["x-upsert"] = pick(r, ["true", "false", "maybe"]);
          payload = method === "GET" || method === "HEAD" ? undefined
            : r() < 0.2 ? "--b\r\nContent-Disposition: form-data; name=\"\"; filename=\"a\"\r\nContent-Type: audio/wav\r\n\r\nx\r\n--b--"
            : body(r, ["prefix", "limit", "offset", "search", "sortBy", "expiresIn", "paths", "prefixes", "bucketId", "sourceKey"]);
        } else {
          const fn = r() < 0.95 ? pick(r, rpcs) : { name: pick(r, ["%ZZ", "%00", "no_such_function", "log%00coach", "%C0%AF", "a%2Fb"]), args: [] };
          const name = /%/.test(fn.name) ? fn.name : encodeURIComponent(fn.name);
          method = r() < 0.8 ? "POST" : pick(r, ["GET", "HEAD", "PUT", "DELETE", "PATCH"]);
          const params = new URLSearchParams();
          if (method !== "POST") for (const a of fn.args) if (r() < 0.5) params.set(a, String(pick(r, ODD_STRINGS)));
          if (r() < 0.1) params.set(pick(r, ["select", "limit", "offset", "order", "id"]), String(pick(r, ODD_STRINGS)));
          url = `${env.REST_URL}/rpc/${name}${params.size ? `?${params}` : ""}`;
          payload = method === "POST" ? body(r, fn.args) : undefined;
        }

        const label = `case ${i}: ${method} ${url.slice(env.API_URL.length, env.API_URL.length + 120)}`;
        let res: Response;
        try {
          res = await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(30_000) });
        } catch (err) {
          // fetch's own message is only "fetch failed": the socket's error is its cause.
          const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
          failures.push(`${label}: no answer (${err instanceof Error ? err.message : err}${cause}); the case before: ${previous}`);
          previous = `${label}: no answer`;
          continue;
        }
        const text = method === "HEAD" ? "" : await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const sent = typeof payload === "string" ? ` body ${payload.slice(0, 300)}` : "";
        if (notServedYet(res.status, text, method, url)) notServed++;
        else if (res.status >= 500) failures.push(`${label}: ${res.status} ${text.slice(0, 200)}${sent}`);
        if (res.status >= 400 && method !== "HEAD") {
          try {
            JSON.parse(text);
          } catch {
            failures.push(`${label}: ${res.status} with a body that is not JSON: ${text.slice(0, 100)}`);
          }
        }
        const after = await fingerprint();
        if (res.status >= 300) {
          const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
          if (changed.length) failures.push(`${label}: answered ${res.status} but changed ${changed.join(", ")}`);
        }
        before = after;
        const size = typeof payload === "string" ? `, a body of ${payload.length} characters` : "";
        previous = `${label}${size}: ${res.status}${res.headers.get("connection") === "close" ? " (connection: close)" : ""}`;
      }
      console.log(`fuzz seed ${SEED}: ${CASES} cases; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; ` +
        `${notServed} of the 501s are the stand-in's documented "not served yet" (RPC filters, Storage routes not served)`);
      expect(failures).toEqual([]);
    });
});
