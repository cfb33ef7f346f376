/**
 * The local gateway: what Supabase's API gateway does for a client, for the routes
 * Coach Ledger uses. This module only routes and decorates; each route lives where the
 * real component keeps it:
 *
 *   /functions/v1/<name>[/…]   functions.ts (functions gateway + edge runtime)
 *   /rest/v1/…                 rest.ts → rpc.ts (API gateway + PostgREST)
 *   /realtime/v1/websocket     realtime.ts (Realtime: Broadcast and Presence)
 *   /storage/v1/…              storage.ts (Storage: objects, signed URLs; its own size limits)
 *   /auth/v1/…                 auth/routes.ts (Auth: sign-up, sign-in, refresh, user, admin, JWKS)
 *   /health                    200 when the database answers, else 503 with Retry-After
 *   /graphql/v1 …              501: not served by the stand-in
 *
 * Every answer, the gateway's own errors included, carries CORS headers, `x-request-id`
 * (a well-formed incoming one echoed, else a new UUID) and `Server-Timing`. Declared
 * bodies over the limit are refused here, before any route reads them (limits.ts).
 */
import type postgres from "postgres";
import type { Keys } from "./keys.ts";
import type { RealtimeServer } from "./realtime.ts";
import { createFunctions } from "./functions.ts";
import { createRest } from "./rest.ts";
import { createSchemaCache } from "./postgrest/schema_cache.ts";
import { createStorage } from "./storage.ts";
import { createAuth, type AuthOptions } from "./auth/routes.ts";
import { connectionError, familyOf, gatewayError, jsonResponse, payloadTooLarge, retryAfter } from "./errors.ts";
import { declaredLength, DEFAULT_LIMITS, type Limits } from "./limits.ts";

/** What the gateway needs to run. */
export interface GatewayOptions {
  keys: Keys;
  /** postgres.js pool connected as `authenticator`. */
  sql: postgres.Sql;
  /** Directory holding one folder per function. */
  functionsDir: string;
  /** `[functions.<name>]` settings from config.toml. */
  functions: Record<string, { verify_jwt?: boolean }>;
  log?: (line: Record<string, unknown>) => void;
  /** The local Realtime broadcast endpoint, when running. */
  realtime?: RealtimeServer;
  /** Overrides of the default limits (tests lower them). */
  limits?: Partial<Limits>;
  /** Where Storage keeps object bytes; without it /storage/v1 answers 501. */
  storageDir?: string;
  /** config.toml [api] max_rows (PostgREST's db-max-rows); 1000, the CLI's default, without it. */
  maxRows?: number;
  /** What /auth/v1 needs beyond the keys; without it /auth/v1 answers 501. */
  auth?: Omit<AuthOptions, "keys" | "log" | "limits">;
}

const CORS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers":
    "authorization, x-client-info, apikey, content-type, accept, accept-profile, content-profile, prefer, range, idempotency-key, x-request-id, x-tracked-skill-id, x-supabase-api-version, x-upsert, x-metadata, cache-control",
  "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
  "Access-Control-Expose-Headers": "content-range, x-request-id, server-timing, x-total-count, link, x-supabase-api-version",
  "Access-Control-Max-Age": "3600",
};

/** The same pattern as supabase/functions/_shared/http.ts: echo what is well-formed, else make one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's x-request-id when it is well-formed, else a new UUID. */
export function requestIdOf(req: Request): string {
  const given = req.headers.get("x-request-id");
  return given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

/** Adds CORS, x-request-id and Server-Timing (the gateway's own time, after any the function gave). */
function decorate(res: Response, requestId: string, ms: number): Response {
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(CORS)) if (!headers.has(k)) headers.set(k, v);
  if (!headers.has("x-request-id")) headers.set("x-request-id", requestId);
  const gateway = `gateway;dur=${ms.toFixed(1)}`;
  const timing = headers.get("server-timing");
  headers.set("Server-Timing", timing ? `${timing}, ${gateway}` : gateway);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

/**
 * The request's URL as the client addressed it. Behind the TCP front (listener.ts) Deno
 * serves a Unix socket, whose request URLs have no http origin: the Host header gives it.
 */
export function requestUrl(req: Request): URL {
  const url = new URL(req.url);
  if (url.protocol === "http:" || url.protocol === "https:") return url;
  try {
    return new URL(`${url.pathname}${url.search}`, `http://${req.headers.get("host") ?? "localhost"}`);
  } catch {
    return new URL(`${url.pathname}${url.search}`, "http://localhost");
  }
}

/** Builds the gateway's request handler. */
export function createGateway(opts: GatewayOptions): (req: Request) => Promise<Response> {
  const log = opts.log ?? ((line) => console.log(JSON.stringify(line)));
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const serveFunction = createFunctions({ keys: opts.keys, functionsDir: opts.functionsDir, functions: opts.functions, limits, log });
  const cache = createSchemaCache(opts.sql, ["public"]);
  const serveRest = createRest({ keys: opts.keys, sql: opts.sql, limits, cache, maxRows: opts.maxRows ?? 1000 });
  const serveAuth = opts.auth ? createAuth({ ...opts.auth, keys: opts.keys, log, limits }) : undefined;
  const serveStorage = opts.storageDir ? createStorage({ keys: opts.keys, sql: opts.sql, dir: opts.storageDir, bodyTimeoutMs: limits.bodyTimeoutMs }) : undefined;

  async function health(): Promise<Response> {
    try {
      await opts.sql`select 1`;
      return jsonResponse(200, { status: "ok" });
    } catch (err) {
      const conn = connectionError(err);
      const detail = err instanceof Error ? err.message : String(err);
      return jsonResponse(503, { status: "unavailable", message: "The database is not reachable.", details: conn?.details ?? detail }, retryAfter());
    }
  }

  async function route(req: Request, url: URL, requestId: string): Promise<Response> {
    const path = url.pathname;
    // Storage applies its own limits (the bucket's file_size_limit, 50 MiB at most).
    if (path.startsWith("/storage/v1/") && serveStorage) return await serveStorage(req, url, path.slice("/storage/v1/".length));
    const declared = declaredLength(req);
    if (declared !== null && !Number.isNaN(declared) && declared > limits.maxBodyBytes) {
      await req.body?.cancel().catch(() => {});
      return payloadTooLarge(familyOf(path), limits.maxBodyBytes);
    }
    if (path === "/health") return await health();
    if (path.startsWith("/functions/v1/")) return await serveFunction(req, url, path.slice("/functions/v1/".length), requestId);
    if (path.startsWith("/rest/v1/")) return await serveRest(req, url, path.slice("/rest/v1/".length), requestId);
    if (path.startsWith("/auth/v1/") && serveAuth) return await serveAuth(req, url, path.slice("/auth/v1/".length), requestId);
    if (/^\/(auth|storage|realtime|graphql)\/v1(\/|$)/.test(path)) {
      return jsonResponse(501, { message: `${path.split("/")[1]} is not served by the local stand-in; it needs hosted Supabase or supabase start.` });
    }
    return jsonResponse(404, { message: "no Route matched with those values" });
  }

  return async function gateway(req: Request): Promise<Response> {
    const url = requestUrl(req);
    const started = performance.now();
    if (url.pathname === "/realtime/v1/websocket" && opts.realtime) {
      // The upgrade response must be returned as Deno made it.
      return await opts.realtime.handle(req, url);
    }
    const requestId = requestIdOf(req);
    let res: Response;
    try {
      res = await route(req, url, requestId);
    } catch (err) {
      log({ level: "error", trace_id: requestId, path: url.pathname, msg: "gateway error", error: err instanceof Error ? err.stack ?? err.message : String(err) });
      res = gatewayError(familyOf(url.pathname), 500, "The local gateway failed; see its log.", { code: familyOf(url.pathname) === "rest" ? "PGRSTX00" : "GATEWAY_ERROR" });
    }
    const ms = performance.now() - started;
    log({ level: "info", trace_id: requestId, method: req.method, path: url.pathname, status: res.status, ms: Math.round(ms) });
    return decorate(res, requestId, ms);
  };
}
