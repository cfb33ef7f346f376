/**
 * The errors the gateway answers itself, in the shape each real component uses:
 * PostgREST's `{code, message, details, hint}` on `/rest/v1` (PostgREST's Error module:
 * SQLSTATE → HTTP status, connection errors → PGRST000 / PGRST001 with Retry-After),
 * the functions gateway's `{msg}` / `{code, message}` on `/functions/v1`, and Kong's
 * `{message}` elsewhere.
 */

/** A PostgREST-style error body. */
export interface RestError {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

/** A response: status, JSON body (or none) and extra headers. */
export interface RestResult {
  status: number;
  body?: unknown;
  /** The body as JSON text already (what PostgreSQL's json_agg gave, sent as it is). */
  raw?: string;
  headers?: Record<string, string>;
  /** A non-standard status's reason phrase (RAISE PGRST's status_text). */
  statusText?: string;
}

/** Which component's error shape a path gets. */
export type Family = "rest" | "functions" | "other";

/** The family of a request path. */
export function familyOf(pathname: string): Family {
  if (pathname.startsWith("/rest/v1/")) return "rest";
  if (pathname.startsWith("/functions/v1/")) return "functions";
  return "other";
}

/** Seconds a client should wait before retrying while the database is unreachable (PostgREST's first backoff step). */
export const RETRY_AFTER_SECONDS = 1;

/** A PostgREST error body. */
export function restError(code: string, message: string, details: string | null = null, hint: string | null = null): RestError {
  return { code, message, details, hint };
}

/** A JSON response. */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}

/** PostgREST's WWW-Authenticate header for a refused token. */
export function invalidTokenHeader(message: string): Record<string, string> {
  return { "WWW-Authenticate": `Bearer error="invalid_token", error_description="${message.replaceAll('"', "'")}"` };
}

/**
 * HTTP status for a SQLSTATE, as PostgREST's `mapSQLtoHTTP` (src/PostgREST/Error.hs)
 * decides it; `message` matters for 21000 and 22023 as it does there.
 * Deviation: 57P02 and 57P03 (the server crashed, or is starting up or recovering) are
 * 503 here as connection errors are, since a client can only retry them.
 */
export function statusForSqlState(code: string, authenticated: boolean, message = ""): number {
  if (code.startsWith("PT")) {
    const n = Number(code.slice(2));
    return /^PT\d{3}$/.test(code) && n >= 100 && n <= 599 ? n : 500;
  }
  switch (code) {
    case "23503": case "23505": return 409;
    case "25006": return 405;
    case "21000": return message.endsWith("requires a WHERE clause") ? 400 : 500;
    case "22023": return message.startsWith("role") && message.endsWith("does not exist") ? 401 : 400;
    case "53400": return 500;
    case "57P01": case "57P02": case "57P03": return 503;
    case "P0001": return 400;
    case "42883": return message.startsWith("function xmlagg(") ? 406 : 404;
    case "42P01": return 404;
    case "42P17": return 500;
    case "42501": return authenticated ? 403 : 401;
  }
  const prefix: [string, number][] = [
    ["08", 503], ["09", 500], ["0L", 403], ["0P", 403], ["25", 500], ["28", 403], ["2D", 500],
    ["38", 500], ["39", 500], ["3B", 500], ["40", 500], ["53", 503], ["54", 500], ["55", 500],
    ["57", 500], ["58", 500], ["F0", 500], ["HV", 500], ["P0", 500], ["XX", 500],
  ];
  for (const [p, status] of prefix) if (code.startsWith(p)) return status;
  return 400;
}

/** Error codes of postgres.js (and the socket under it) that mean the database could not be reached. */
const CONNECT_ERRORS = new Set(["ECONNREFUSED", "CONNECT_TIMEOUT", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);
/** … and that mean an open connection was lost. */
const LOST_ERRORS = new Set(["CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/** A postgres.js error that is about the connection, not the query: PGRST000 / PGRST001 (503). */
export function connectionError(err: unknown): RestError | null {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : "";
  const detail = typeof e?.message === "string" ? e.message : String(err);
  if (CONNECT_ERRORS.has(code)) return restError("PGRST000", "Database connection error.", detail);
  if (LOST_ERRORS.has(code)) return restError("PGRST001", "Database client error. Retrying the connection.", detail);
  return null;
}

/** Headers of a 503: when to retry. */
export function retryAfter(): Record<string, string> {
  return { "Retry-After": String(RETRY_AFTER_SECONDS) };
}

/** A PostgREST-style result for any error thrown while calling the database; null if it is not one we map. */
export function databaseErrorResult(err: unknown, authenticated: boolean): RestResult | null {
  const conn = connectionError(err);
  if (conn) return { status: 503, body: conn, headers: retryAfter() };
  const e = err as { code?: string; message?: string; detail?: string; hint?: string };
  if (e?.code === "PGRST") return raisedPgrst(e.message ?? "", e.detail ?? "");
  // Only the server's errors carry a SQLSTATE (postgres.js's PostgresError has a severity);
  // a socket error such as EBADF is not one, whatever its code looks like.
  if (typeof e?.code !== "string" || !/^[0-9A-Z]{5}$/.test(e.code) || !("severity" in (e as object))) return null;
  const status = statusForSqlState(e.code, authenticated, e.message ?? "");
  const headers: Record<string, string> = status === 503 ? retryAfter() : status === 401 ? { "WWW-Authenticate": "Bearer" } : {};
  return { status, body: restError(e.code, e.message ?? "", e.detail ?? null, e.hint ?? null), headers };
}

/**
 * `RAISE SQLSTATE 'PGRST'` (PostgREST's "Add HTTP Headers with RAISE"): the error's message
 * is a JSON object {code, message, details?, hint?} and its detail a JSON object
 * {status, status_text?, headers?}; they become the response's body, status and headers.
 * Either one unparseable: 500 PGRST121.
 */
function raisedPgrst(message: string, detail: string): RestResult {
  // PostgREST's parseRaisePGRST and its PGRST121 details and hints (src/PostgREST/Error.hs).
  const MESSAGE_HINT = "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.";
  const DETAIL_HINT = "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.";
  const bad = (details: string, hint: string): RestResult => ({
    status: 500,
    body: restError("PGRST121", "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error", details, hint),
  });
  const parse = (text: string): Record<string, unknown> | null => {
    try {
      const v = JSON.parse(text);
      return v && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : null;
    } catch {
      return null;
    }
  };
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  const m = parse(message);
  if (!m || typeof m.code !== "string" || typeof m.message !== "string") return bad(`Invalid JSON value for MESSAGE: '${message}'`, MESSAGE_HINT);
  if (detail === "") return bad("DETAIL is missing in the RAISE statement", DETAIL_HINT);
  const d = parse(detail);
  const headers = d?.headers;
  const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
  if (!d || typeof d.status !== "number" || !Number.isInteger(d.status) || d.status < 200 || d.status > 599 ||
    !headers || typeof headers !== "object" || Array.isArray(headers) ||
    Object.entries(headers).some(([k, v]) => !token.test(k) || typeof v !== "string" || /[\r\n\0]/.test(v)) ||
    (d.status_text !== undefined && (typeof d.status_text !== "string" || /[\r\n\0]/.test(d.status_text)))) {
    return bad(`Invalid JSON value for DETAIL: '${detail}'`, DETAIL_HINT);
  }
  return {
    status: d.status,
    body: restError(m.code, m.message, str(m.details), str(m.hint)),
    headers: headers as Record<string, string>,
    statusText: str(d.status_text) ?? undefined,
  };
}

/** The gateway's own errors (limits, timeouts, failures) in the shape of the route's component. */
export function gatewayError(
  family: Family,
  status: number,
  message: string,
  extra: { code?: string; details?: string | null; hint?: string | null; headers?: Record<string, string> } = {},
): Response {
  const headers = { ...(status === 503 ? retryAfter() : {}), ...(extra.headers ?? {}) };
  if (family === "rest") {
    return jsonResponse(status, restError(extra.code ?? `PGRSTX00`, message, extra.details ?? null, extra.hint ?? null), headers);
  }
  if (family === "functions") {
    return jsonResponse(status, { code: extra.code ?? "GATEWAY_ERROR", message }, headers);
  }
  return jsonResponse(status, { message }, headers);
}

/**
 * 413: the body is over the limit (PGRST413 on /rest/v1 is the stand-in's own code:
 * PostgREST has none). The connection is closed after it, so the rest of the body is
 * never read.
 */
export function payloadTooLarge(family: Family, maxBytes: number): Response {
  const headers = { Connection: "close" };
  return family === "rest"
    ? gatewayError("rest", 413, "Request body is too large", {
      code: "PGRST413",
      details: `The local gateway accepts bodies of at most ${maxBytes} bytes.`,
      headers,
    })
    : gatewayError(family, 413, `Request body is larger than ${maxBytes} bytes`, { code: "PAYLOAD_TOO_LARGE", headers });
}

/** 408: the body did not arrive in time; the connection is closed after the answer. */
export function bodyTimeout(family: Family, ms: number): Response {
  return family === "rest"
    ? gatewayError("rest", 408, "Request body not received in time", {
      code: "PGRST408",
      details: `The local gateway waits at most ${ms} ms for a body.`,
      headers: { Connection: "close" },
    })
    : gatewayError(family, 408, `Request body not received within ${ms} ms`, { code: "REQUEST_TIMEOUT", headers: { Connection: "close" } });
}
