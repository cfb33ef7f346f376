/**
 * Every function response goes through here: JSON bodies, RFC 9457 problem+json errors,
 * CORS, x-request-id (the trace id: echoed or generated; `trace_id` in problem bodies and
 * logs, not to be confused with `request_id`, the idempotency key of a write), Server-Timing,
 * and one structured log line per request (log.ts).
 */
import { logRequest } from "./log.ts";

/**
 * CORS headers as Supabase's examples set them, plus the headers our functions read
 * (Idempotency-Key, X-Request-Id, X-Tracked-Skill-Id, Prefer), so a browser may send them.
 */
export const corsHeaders: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers":
    "authorization, x-client-info, apikey, content-type, idempotency-key, x-request-id, x-tracked-skill-id, prefer",
  "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
  "Access-Control-Expose-Headers":
    "x-request-id, server-timing, ratelimit, ratelimit-policy, retry-after, idempotent-replayed, preference-applied",
};

/** One invalid field in a request, as listed in a 422 problem. */
export interface FieldError {
  field: string;
  message: string;
}

/** What an HttpError may carry besides status, title and detail. */
export interface ProblemExtras {
  /** Field errors of a 422. */
  errors?: FieldError[];
  /** Response headers (Retry-After, Allow, ...). */
  headers?: Record<string, string>;
  /** The problem type URI (RFC 9457 `type`); "about:blank" when not given. */
  type?: string;
  /** Extension members of the problem body, e.g. "violated-policies". */
  extensions?: Record<string, unknown>;
}

/** An error that becomes a problem+json response with its status. */
export class HttpError extends Error {
  readonly status: number;
  readonly title: string;
  readonly errors?: FieldError[];
  readonly headers?: Record<string, string>;
  readonly type?: string;
  readonly extensions?: Record<string, unknown>;
  constructor(status: number, title: string, detail: string, opts: ProblemExtras = {}) {
    super(detail);
    this.status = status;
    this.title = title;
    this.errors = opts.errors;
    this.headers = opts.headers;
    this.type = opts.type;
    this.extensions = opts.extensions;
  }
}

/** Named timings for the Server-Timing header. */
export class Timing {
  #entries: string[] = [];
  /** Runs fn and records its duration under name. */
  async measure<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.#entries.push(`${name};dur=${(performance.now() - t0).toFixed(1)}`);
    }
  }
  /** The Server-Timing header value. */
  header(): string {
    return this.#entries.join(", ");
  }
}

/**
 * Per-request context: request id, timings and headers that belong on whatever response the
 * request ends with (e.g. RateLimit), applied to the response by `respond`.
 */
export interface RequestContext {
  /** The trace id (x-request-id). */
  traceId: string;
  timing: Timing;
  headers: Record<string, string>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's x-request-id when it is well-formed, else a new UUID. */
export function requestIdOf(req: Request): string {
  const given = req.headers.get("x-request-id");
  return given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

function decorate(res: Response, ctx: RequestContext): Response {
  for (const [k, v] of Object.entries(corsHeaders)) res.headers.set(k, v);
  for (const [k, v] of Object.entries(ctx.headers)) if (!res.headers.has(k)) res.headers.set(k, v);
  res.headers.set("x-request-id", ctx.traceId);
  const timing = ctx.timing.header();
  if (timing) res.headers.set("Server-Timing", timing);
  return res;
}

/** A JSON response. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}

/** An RFC 9457 application/problem+json response. */
export function problem(
  status: number,
  title: string,
  detail: string,
  extra: ProblemExtras & { traceId?: string } = {},
): Response {
  const body: Record<string, unknown> = { type: extra.type ?? "about:blank", title, status, detail, ...extra.extensions };
  if (extra.errors) body.errors = extra.errors;
  if (extra.traceId) body.trace_id = extra.traceId;
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/problem+json; charset=utf-8", ...extra.headers },
  });
}

/** Answers a CORS preflight. */
export function preflight(): Response {
  return new Response("ok", { headers: corsHeaders });
}

/**
 * Runs a handler body with a request context. OPTIONS is answered here; an HttpError
 * becomes its problem response; anything else is logged and becomes a 500 problem.
 * CORS, x-request-id and Server-Timing are added to every response, and every request ends
 * with its log line.
 */
export async function respond(
  req: Request,
  body: (ctx: RequestContext) => Promise<Response>,
): Promise<Response> {
  const startedAt = performance.now();
  const ctx: RequestContext = { traceId: requestIdOf(req), timing: new Timing(), headers: {} };
  const res = await answer(req, ctx, body);
  logRequest(req, ctx.traceId, res.status, startedAt);
  return res;
}

async function answer(req: Request, ctx: RequestContext, body: (ctx: RequestContext) => Promise<Response>): Promise<Response> {
  if (req.method === "OPTIONS") return decorate(preflight(), ctx);
  try {
    return decorate(await body(ctx), ctx);
  } catch (err) {
    if (err instanceof HttpError) {
      return decorate(problem(err.status, err.title, err.message, {
        errors: err.errors, traceId: ctx.traceId, headers: err.headers, type: err.type, extensions: err.extensions,
      }), ctx);
    }
    // The URL's path only: a query string may carry user input.
    console.error(JSON.stringify({
      level: "error", trace_id: ctx.traceId, method: req.method, path: new URL(req.url).pathname,
      error: err instanceof Error ? err.stack ?? err.message : String(err),
      code: (err as { code?: unknown })?.code ?? null,
    }));
    return decorate(problem(500, "Internal Server Error", "The function failed unexpectedly; the error is logged.", {
      traceId: ctx.traceId,
    }), ctx);
  }
}

/** Throws 405 unless the request's method is one of `allowed`. */
export function allowMethods(req: Request, ...allowed: string[]): void {
  if (!allowed.includes(req.method)) {
    throw new HttpError(405, "Method Not Allowed", `${req.method} is not allowed here; use ${allowed.join(" or ")}.`, {
      headers: { Allow: [...allowed, "OPTIONS"].join(", ") },
    });
  }
}
