/**
 * Rate limits of the write and paid endpoints. The rule (policies per endpoint and role,
 * counters per user or per token, fixed windows) lives in SQL, in private.take_rate_limit;
 * this module takes one request per call and speaks HTTP about the answer:
 *
 * - the RateLimit-Policy and RateLimit fields of draft-ietf-httpapi-ratelimit-headers-11
 *   (https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/11/), e.g.
 *   `RateLimit-Policy: "log-interaction";q=120;w=60` and `RateLimit: "log-interaction";r=119;t=42`,
 *   on every response of a request that took from a limit (successful or not);
 * - a refusal is 429 with Retry-After (the draft: not earlier than the end of the effective
 *   window, so it equals `t`) and the draft's "quota-exceeded" problem type with
 *   "violated-policies".
 */
import type { Claims } from "./auth.ts";
import { type RateLimitOption, type RateLimitTake, takeRateLimit } from "./db.ts";
import { HttpError, type RequestContext } from "./http.ts";

/** The draft's problem type for a request over its quota. */
export const QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded";

/**
 * Takes one request from the caller's limit for endpoint and applies the answer (below). For
 * a request whose next step is not a database write (summary's LLM call); a write passes
 * `rateLimitFor(endpoint, ctx)` to withUser, which takes inside the same round trip.
 */
export async function enforceRateLimit(endpoint: string, claims: Claims, ctx: RequestContext): Promise<void> {
  applyRateLimit(await ctx.timing.measure("ratelimit", () => takeRateLimit(endpoint, claims)), ctx);
}

/** The withUser option that takes from endpoint's limit before the write and applies the answer. */
export function rateLimitFor(endpoint: string, ctx: RequestContext): RateLimitOption {
  return { endpoint, onTake: (take) => applyRateLimit(take, ctx) };
}

/**
 * Adds a take's RateLimit headers to the request's response; throws 429 when the limit
 * is used up. A role with no policy for the endpoint is not limited (no headers).
 */
export function applyRateLimit(take: RateLimitTake, ctx: RequestContext): void {
  if (take.quota === null || take.window_seconds === null || take.remaining === null || take.reset_seconds === null) return;
  const name = JSON.stringify(take.policy);
  // Both fields are Structured Field lists: a request that took from two limits (a batch of
  // interactions and events) lists both.
  const add = (field: string, member: string) => {
    ctx.headers[field] = ctx.headers[field] ? `${ctx.headers[field]}, ${member}` : member;
  };
  add("RateLimit-Policy", `${name};q=${take.quota};w=${take.window_seconds}`);
  add("RateLimit", `${name};r=${take.remaining};t=${take.reset_seconds}`);
  if (!take.allowed) {
    throw new HttpError(429, "Too Many Requests",
      `You have used all ${take.quota} requests to ${take.policy} allowed per ${take.window_seconds} s; retry in ${take.reset_seconds} s.`, {
        type: QUOTA_EXCEEDED,
        extensions: { "violated-policies": [take.policy] },
        headers: { "Retry-After": String(take.reset_seconds) },
      });
  }
}
