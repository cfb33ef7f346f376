/**
 * `/rest/v1/…`: Supabase's API gateway in front of PostgREST. The gateway (Kong's
 * key-auth) wants a project API key in the `apikey` header or query parameter on every
 * request, even with a bearer token; PostgREST then verifies the JWT (the bearer, else
 * the apikey), reads the body within the limits and serves the RPC (rpc.ts) or the table
 * or view route (postgrest/tables.ts).
 */
import type postgres from "postgres";
import { apiKeyOf, effectiveToken, isProjectApiKey, type Keys, verifyApiToken } from "./keys.ts";
import { callRpc } from "./rpc.ts";
import { serveTable } from "./postgrest/tables.ts";
import type { SchemaCache } from "./postgrest/schema_cache.ts";
import { bodyTimeout, invalidTokenHeader, jsonResponse, payloadTooLarge, restError } from "./errors.ts";
import { jsonDepthExceeds, type Limits, readBody } from "./limits.ts";

/** What serving /rest/v1 needs. */
export interface RestOptions {
  keys: Keys;
  /** postgres.js pool connected as `authenticator`. */
  sql: postgres.Sql;
  limits: Limits;
  /** The schema cache of the exposed schemas. */
  cache: SchemaCache;
  /** config.toml [api] max_rows (PostgREST's db-max-rows). */
  maxRows: number;
}

/** Decodes a path segment as Warp does for PostgREST: an invalid escape is kept as it was sent. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Builds the `/rest/v1` route; `rest` is the path after `/rest/v1/`, `requestId` the
 * request's normalised id (app.ts requestIdOf), which SQL sees as the x-request-id header
 * in place of whatever the client sent, as the functions route does.
 */
export function createRest(opts: RestOptions): (req: Request, url: URL, rest: string, requestId: string) => Promise<Response> {
  return async function serveRest(req, url, rest, requestId) {
    if (req.method === "OPTIONS") return new Response(null, { status: 200 });

    const apikey = apiKeyOf(req, url);
    if (!apikey) {
      return jsonResponse(401, { message: "No API key found in request", hint: "No `apikey` request header or url param was found." });
    }
    if (!isProjectApiKey(opts.keys, apikey)) {
      return jsonResponse(401, { message: "Invalid API key", hint: "Double check your Supabase `anon` or `service_role` API key." });
    }
    const token = effectiveToken(opts.keys, req, url);
    const checked = await verifyApiToken(opts.keys, token);
    if (!checked.ok) {
      const code = checked.problem === "expired" || checked.problem === "claims" ? "PGRST303" : "PGRST301";
      return jsonResponse(401, restError(code, checked.message), invalidTokenHeader(checked.message));
    }

    const m = /^rpc\/([^/]+)$/.exec(rest);
    const table = m ? null : /^([^/]+)$/.exec(rest);
    if (!m && (!table || rest === "rpc")) {
      return jsonResponse(404, restError("PGRST125", "Invalid path specified in request URL"));
    }

    let body = "";
    if (req.method === "POST" || (table && (req.method === "PATCH" || req.method === "PUT"))) {
      const read = await readBody(req, opts.limits);
      if (!read.ok) {
        if (read.reason === "too_large") return payloadTooLarge("rest", opts.limits.maxBodyBytes);
        if (read.reason === "timeout") return bodyTimeout("rest", opts.limits.bodyTimeoutMs);
        return jsonResponse(400, restError("PGRST102", "Empty or invalid json", "The request body could not be read."));
      }
      try {
        body = read.bytes ? new TextDecoder("utf-8", { fatal: true }).decode(read.bytes) : "";
      } catch {
        return jsonResponse(400, restError("PGRST102", "Empty or invalid json", "The request body is not valid UTF-8."));
      }
      if (jsonDepthExceeds(body, opts.limits.maxJsonDepth)) {
        return jsonResponse(400, restError("PGRST102", "Empty or invalid json",
          `JSON nested deeper than ${opts.limits.maxJsonDepth} levels is refused.`));
      }
    } else {
      await req.body?.cancel().catch(() => {});
    }

    const claims = checked.claims as Record<string, unknown>;
    const role = typeof claims.role === "string" && claims.role !== "" ? claims.role : "anon";
    const headers = new Headers(req.headers);
    headers.set("x-request-id", requestId);
    const result = table
      ? await serveTable(opts.sql, opts.cache, {
        name: decodeSegment(table[1]),
        method: req.method,
        path: `/${table[1]}`,
        headers,
        query: url.searchParams,
        body,
        role,
        claims,
      }, { schemas: ["public"], maxRows: opts.maxRows })
      : await callRpc(opts.sql, opts.cache, {
      name: decodeSegment(m![1]),
      method: req.method,
      path: `/rpc/${m![1]}`,
      headers,
      query: url.searchParams,
      body,
      role,
      claims,
    }, { maxRows: opts.maxRows });
    // 204, 205 and 304 carry no body (a function may set any of them through response.status).
    if (result.status === 204 || result.status === 205 || result.status === 304) {
      return new Response(null, { status: result.status, headers: result.headers });
    }
    const res = result.raw !== undefined
      ? new Response(req.method === "HEAD" ? null : result.raw, { status: result.status, headers: { "Content-Type": "application/json; charset=utf-8", ...result.headers } })
      : jsonResponse(result.status, req.method === "HEAD" ? undefined : result.body, result.headers);
    return result.statusText ? new Response(res.body, { status: res.status, statusText: result.statusText, headers: res.headers }) : res;
  };
}
