/**
 * The local gateway: what Supabase's API gateway does for a client, for the routes
 * Coach Ledger uses. `/functions/v1/<name>[/…]` runs the function's exported handler
 * (supabase/functions/<name>/handler.ts) with verify_jwt from config.toml;
 * `/rest/v1/rpc/<fn>` calls a function in `public` with PostgREST's semantics;
 * `/realtime/v1/websocket` serves Broadcast from Database (realtime.ts); other
 * `/rest/v1/…`, `/auth/v1/…`, `/storage/v1/…` routes answer 501.
 */
import type postgres from "postgres";
import { toFileUrl, join } from "./path.ts";
import { effectiveToken, type Keys, verify } from "./keys.ts";
import { callRpc } from "./rpc.ts";
import type { RealtimeServer } from "./realtime.ts";

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
}

const CORS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers":
    "authorization, x-client-info, apikey, content-type, accept, accept-profile, content-profile, prefer, range, idempotency-key, x-request-id, x-supabase-api-version",
  "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
  "Access-Control-Expose-Headers": "content-range, x-request-id, server-timing",
  "Access-Control-Max-Age": "3600",
};

function withCors(res: Response): Response {
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(CORS)) if (!headers.has(k)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}

const SLUG = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Builds the gateway's request handler. */
export function createGateway(opts: GatewayOptions): (req: Request) => Promise<Response> {
  const log = opts.log ?? ((line) => console.log(JSON.stringify(line)));
  const modules = new Map<string, Promise<{ handler: (req: Request) => Promise<Response> | Response }>>();

  async function serveFunction(req: Request, url: URL, rest: string): Promise<Response> {
    const slug = rest.split("/")[0];
    if (!SLUG.test(slug) || slug.startsWith("_")) {
      return jsonResponse(404, { code: "NOT_FOUND", message: "Requested function was not found" });
    }
    const file = join(opts.functionsDir, slug, "handler.ts");
    try {
      await Deno.stat(file);
    } catch {
      return jsonResponse(404, { code: "NOT_FOUND", message: "Requested function was not found" });
    }
    if (req.method === "OPTIONS") return new Response("ok", { status: 200 });
    const verifyJwt = opts.functions[slug]?.verify_jwt ?? true;
    const token = effectiveToken(opts.keys, req, url);
    if (verifyJwt) {
      const checked = await verify(opts.keys, token);
      if (!checked.ok) {
        return jsonResponse(401, { msg: checked.problem === "missing" ? "Missing authorization header" : "Invalid JWT" });
      }
    }
    // The function sees the path without /functions/v1, and the mapped bearer token.
    const headers = new Headers(req.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    const inner = new Request(new URL(`/${rest}${url.search}`, url.origin), {
      method: req.method,
      headers,
      body: req.body,
    });
    let mod = modules.get(slug);
    if (!mod) {
      mod = import(toFileUrl(file).href);
      modules.set(slug, mod);
    }
    try {
      const { handler } = await mod;
      if (typeof handler !== "function") throw new Error(`${slug}/handler.ts does not export a handler function`);
      return await handler(inner);
    } catch (err) {
      log({ level: "error", function: slug, msg: "function threw", error: err instanceof Error ? err.stack ?? err.message : String(err) });
      return jsonResponse(500, { code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" });
    }
  }

  async function serveRest(req: Request, url: URL, rest: string): Promise<Response> {
    if (req.method === "OPTIONS") return new Response(null, { status: 200 });
    const token = effectiveToken(opts.keys, req, url);
    if (!token) {
      return jsonResponse(401, { message: "No API key found in request", hint: "No `apikey` request header or url param was found." });
    }
    const checked = await verify(opts.keys, token);
    if (!checked.ok) {
      const code = checked.problem === "expired" ? "PGRST303" : "PGRST301";
      return jsonResponse(401, { code, details: null, hint: null, message: checked.message }, {
        "WWW-Authenticate": `Bearer error="invalid_token", error_description="${checked.message.replaceAll('"', "'")}"`,
      });
    }
    const m = /^rpc\/([^/]+)$/.exec(rest);
    if (!m) {
      return jsonResponse(501, {
        code: "PGRST501",
        message: `Table and view routes (/rest/v1/${rest}) are not served by the local stand-in; they need hosted Supabase or supabase start. Use an RPC (/rest/v1/rpc/<function>).`,
        details: null,
        hint: null,
      });
    }
    const claims = checked.claims as Record<string, unknown>;
    const role = typeof claims.role === "string" && claims.role !== "" ? claims.role : "anon";
    const result = await callRpc(opts.sql, {
      name: decodeURIComponent(m[1]),
      method: req.method,
      path: `/rpc/${m[1]}`,
      headers: req.headers,
      query: url.searchParams,
      body: req.method === "POST" ? await req.text() : "",
      role,
      claims,
    });
    if (result.status === 204) return new Response(null, { status: 204, headers: result.headers });
    return jsonResponse(result.status, req.method === "HEAD" ? undefined : result.body, result.headers);
  }

  return async function gateway(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const started = performance.now();
    let res: Response;
    try {
      if (url.pathname === "/health") {
        await opts.sql`select 1`;
        res = jsonResponse(200, { status: "ok" });
      } else if (url.pathname.startsWith("/functions/v1/")) {
        res = await serveFunction(req, url, url.pathname.slice("/functions/v1/".length));
      } else if (url.pathname.startsWith("/rest/v1/")) {
        res = await serveRest(req, url, url.pathname.slice("/rest/v1/".length));
      } else if (url.pathname === "/realtime/v1/websocket" && opts.realtime) {
        return await opts.realtime.handle(req, url);
      } else if (/^\/(auth|storage|realtime|graphql)\/v1(\/|$)/.test(url.pathname)) {
        res = jsonResponse(501, {
          message: `${url.pathname.split("/")[1]} is not served by the local stand-in; it needs hosted Supabase or supabase start.`,
        });
      } else {
        res = jsonResponse(404, { message: "no Route matched with those values" });
      }
    } catch (err) {
      log({ level: "error", path: url.pathname, msg: "gateway error", error: err instanceof Error ? err.stack ?? err.message : String(err) });
      res = jsonResponse(500, { message: "The local gateway failed; see its log." });
    }
    log({ level: "info", method: req.method, path: url.pathname, status: res.status, ms: Math.round(performance.now() - started) });
    return withCors(res);
  };
}
