/**
 * Structured request logs (issue 10; seed SPR-003 "Operational Hygiene"): every function
 * request writes one JSON line to stdout when it finishes, which Supabase's function logs
 * (and the local gateway's log) keep:
 *
 *   {"time", "level", "trace_id", "function", "route", "method", "status", "duration_ms",
 *    "user_id", "role", "tracked_skill_id_hash", and for an LLM call "provider", "model",
 *    "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "llm_latency_ms"}
 *
 * Fields come from what a request learned: `authenticate` notes the verified subject, the
 * tracked skill helper the hash, a handler its LLM call. Never content, never PHI, never a
 * raw tracked skill id: only the fields of LogFields can be noted. `respond` (http.ts)
 * writes the line.
 */

/** What a request may add to its log line. */
export interface LogFields {
  user_id?: string;
  role?: string;
  tracked_skill_id_hash?: string;
  provider?: string;
  model?: string;
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  cached_tokens?: number | null;
  cost_usd?: number | null;
  llm_latency_ms?: number;
}

const noted = new WeakMap<Request, LogFields>();

/** Adds fields to the log line of req. */
export function noteLog(req: Request, fields: LogFields): void {
  noted.set(req, { ...noted.get(req), ...fields });
}

/** The function and the route within it, from the URL: /functions/v1/<function>/<route> or /<function>/<route>. */
export function functionRoute(url: string): { function: string; route: string } {
  const parts = new URL(url).pathname.split("/").filter(Boolean);
  const rest = parts[0] === "functions" && parts[1] === "v1" ? parts.slice(2) : parts;
  return { function: rest[0] ?? "", route: "/" + rest.slice(1).join("/") };
}

/** The finished request's log line, as an object (exported for tests). */
export function requestLogLine(
  req: Request, traceId: string, status: number, startedAt: number, now = performance.now(),
): Record<string, unknown> {
  const { function: fn, route } = functionRoute(req.url);
  return {
    time: new Date().toISOString(),
    level: status >= 500 ? "error" : status >= 400 ? "warn" : "info",
    trace_id: traceId,
    function: fn,
    route,
    method: req.method,
    status,
    duration_ms: Math.round((now - startedAt) * 10) / 10,
    ...noted.get(req),
  };
}

/** Writes the finished request's log line to stdout. */
export function logRequest(req: Request, traceId: string, status: number, startedAt: number): void {
  console.log(JSON.stringify(requestLogLine(req, traceId, status, startedAt)));
}
