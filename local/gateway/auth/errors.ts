/**
 * Auth's error answers, as supabase/auth writes them (internal/api/errors.go, HTTPError and
 * HandleResponseError): every response carries `X-Supabase-Api-Version: 2024-01-01`; a
 * client that sent that header (auth-js does) gets `{code, message}` with the error code,
 * any other gets the legacy `{code: <status>, error_code, msg}`. A weak password also
 * carries `weak_password: {reasons}`. auth-js reads the code from whichever shape the
 * response's API version implies (lib/fetch.ts handleError).
 */

/** The API version this stand-in speaks, as GoTrue names it. */
export const API_VERSION = "2024-01-01";

/** An Auth error: HTTP status, GoTrue's error code and message. */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Whether the request asked for API version 2024-01-01 or later. */
function modernClient(req: Request): boolean {
  const v = req.headers.get("x-supabase-api-version");
  return v !== null && /^\d{4}-\d{2}-\d{2}$/.test(v) && v >= API_VERSION;
}

/** A JSON answer with Auth's API version header. */
export function authJson(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { ...(status === 204 ? {} : { "content-type": "application/json" }), "x-supabase-api-version": API_VERSION, ...headers },
  });
}

/** The error as the client's API version shapes it. */
export function errorResponse(req: Request, err: AuthError, requestId: string): Response {
  const body = modernClient(req)
    ? { code: err.code, message: err.message, ...err.extra }
    : { code: err.status, error_code: err.code, msg: err.message, ...err.extra, ...(err.status >= 500 ? { error_id: requestId } : {}) };
  return authJson(err.status, body, { "x-sb-error-code": err.code });
}

/** 400 with GoTrue's `validation_failed`, the code of a request it cannot use. */
export function validationFailed(message: string): AuthError {
  return new AuthError(400, "validation_failed", message);
}
