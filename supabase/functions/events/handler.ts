/**
 * `events` (issue 10; seed SPR-003 "Events persisted with requestId, userId, sessionId,
 * groupId" and `GET /api/v1/events`):
 *
 * - POST logs one event through public.log_event. Callers: a signed-in user (their own
 *   events), the service role or a `coach_ingest` token (user_id required; may set
 *   created_at). Idempotent by the Idempotency-Key header or request_id, with
 *   log-interaction's contract: 201 with the event, 200 with the same event on a replay
 *   (Idempotent-Replayed: true), 409 while the key is in flight, 422 for a key reused with
 *   another payload. A tracked skill id (X-Tracked-Skill-Id or tracked_skill_id) is stored
 *   only as its HMAC (_shared/tracked_skill.ts). Rate limited (policy "events").
 * - GET lists the caller's events, newest first: session_id, group_id, kind, since
 *   (inclusive), until (exclusive), limit 1..200 (default 50), before (the id of the last
 *   event of the previous page: keyset pagination, answered as next_before). The service
 *   role names user_id; ingest tokens write events but do not read them.
 */
import { z } from "zod";
import { allowMethods, HttpError, json, type RequestContext, respond } from "../_shared/http.ts";
import { authenticate, type Claims } from "../_shared/auth.ts";
import { type JSONValue, withUser } from "../_shared/db.ts";
import { idempotencyKeyOf, invalidFields, parseOrThrow, queryOf, readJson, writerFieldErrors } from "../_shared/validate.ts";
import { EVENT_KINDS, EventBody } from "../_shared/events.ts";
import { rateLimitFor } from "../_shared/rate_limit.ts";
import { noteTrackedSkillHeader, requestTrackedSkillHash } from "../_shared/tracked_skill.ts";

/** Largest accepted body, in bytes. */
export const MAX_BODY_BYTES = 32 * 1024;

export { EVENT_KINDS, EventBody };

const SERVICE_ROLES = new Set(["service_role", "coach_ingest"]);

/** The GET query string: strict, so unknown parameters are refused. */
export const EventQuery = z.strictObject({
  user_id: z.uuid().optional(),
  session_id: z.uuid().optional(),
  group_id: z.uuid().optional(),
  kind: z.enum(EVENT_KINDS).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.uuid().optional(),
}).superRefine((q, ctx) => {
  if (q.since !== undefined && q.until !== undefined && Date.parse(q.since) >= Date.parse(q.until)) {
    ctx.addIssue({ code: "custom", path: ["until"], message: "Must be later than since" });
  }
});

/** Handles /functions/v1/events. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "GET", "POST");
    const claims = await authenticate(req);
    const service = SERVICE_ROLES.has(claims.role);
    if (!service && !(claims.role === "authenticated" && claims.sub)) {
      throw new HttpError(403, "Forbidden", "Only a signed-in user, the service role or an ingest token can use events.");
    }
    return req.method === "POST" ? await post(req, claims, service, ctx) : await list(req, claims, ctx);
  });
}

async function post(req: Request, claims: Claims, service: boolean, ctx: RequestContext): Promise<Response> {
  await noteTrackedSkillHeader(req);
    const raw = await readJson(req, MAX_BODY_BYTES);
  const { body, trackedSkillHash } = await ctx.timing.measure("validate", async () => {
    const body = parseOrThrow(EventBody, raw);
    const errors = writerFieldErrors(body, service);
    const key = idempotencyKeyOf(req, body.request_id, errors);
    if (errors.length) throw invalidFields(errors);
    body.request_id = key;
    return { body, trackedSkillHash: await requestTrackedSkillHash(req, body.tracked_skill_id) };
  });

  const rows = await ctx.timing.measure("db", () =>
    withUser(claims, (tx) => tx`
      select to_json(r.event) as event, r.replayed
      from public.log_event(
        kind => ${body.kind},
        request_id => ${body.request_id ?? null},
        user_id => ${body.user_id ?? null}::uuid,
        interaction_id => ${body.interaction_id ?? null}::uuid,
        session_id => ${body.session_id ?? null}::uuid,
        group_id => ${body.group_id ?? null}::uuid,
        category => ${body.category ?? null},
        score => ${body.score ?? null}::smallint,
        payload => ${tx.json((body.payload ?? {}) as { [key: string]: JSONValue })}::jsonb,
        tracked_skill_id_hash => ${trackedSkillHash},
        created_at => ${body.created_at ?? null}::timestamptz
      ) r`, { traceId: ctx.traceId, rateLimit: rateLimitFor("events", ctx) })
  );
  const { event, replayed } = rows[0] as { event: Record<string, unknown>; replayed: boolean };
  return json(event, replayed ? 200 : 201, replayed ? { "Idempotent-Replayed": "true" } : {});
}

async function list(req: Request, claims: Claims, ctx: RequestContext): Promise<Response> {
  if (claims.role === "coach_ingest") {
    throw new HttpError(403, "Forbidden", "An ingest token writes events; read them as the user or with the service role.");
  }
  const q = await ctx.timing.measure("validate", () => {
    const q = parseOrThrow(EventQuery, queryOf(req), "query string");
    if (claims.role === "service_role" && !q.user_id) {
      throw invalidFields([{ field: "user_id", message: "Required for the service role" }], "query string");
    }
    if (claims.role === "authenticated" && q.user_id !== undefined && q.user_id !== claims.sub) {
      throw invalidFields([{ field: "user_id", message: "A user reads only their own events; omit user_id" }], "query string");
    }
    return q;
  });
  const target = q.user_id ?? claims.sub!;
  const events = await ctx.timing.measure("db", () =>
    withUser(claims, async (tx) => {
      // The cursor stays in SQL: a timestamp read into JavaScript keeps milliseconds only, and
      // rows in the same millisecond (or the same microsecond) would fall between pages.
      if (q.before) {
        const [known] = await tx`select 1 from public.interaction_events where id = ${q.before}::uuid and user_id = ${target}::uuid`;
        if (!known) throw invalidFields([{ field: "before", message: "Does not name one of your events" }], "query string");
      }
      const rows = await tx`
        select to_json(e) as event from public.interaction_events e
        where e.user_id = ${target}::uuid
          and (${q.session_id ?? null}::uuid is null or e.session_id = ${q.session_id ?? null}::uuid)
          and (${q.group_id ?? null}::uuid is null or e.group_id = ${q.group_id ?? null}::uuid)
          and (${q.kind ?? null}::text is null or e.kind = ${q.kind ?? null}::text)
          and (${q.since ?? null}::timestamptz is null or e.created_at >= ${q.since ?? null}::timestamptz)
          and (${q.until ?? null}::timestamptz is null or e.created_at < ${q.until ?? null}::timestamptz)
          and (${q.before ?? null}::uuid is null
               or (e.created_at, e.id) < (select c.created_at, c.id from public.interaction_events c where c.id = ${q.before ?? null}::uuid))
        order by e.created_at desc, e.id desc
        limit ${q.limit}`;
      return rows.map((r) => r.event as Record<string, unknown>);
    }, { traceId: ctx.traceId })
  );
  return json({ events, next_before: events.length === q.limit ? events[events.length - 1].id : null });
}
