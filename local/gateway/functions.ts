/**
 * `/functions/v1/<name>[/…]`: what Supabase's functions gateway and edge runtime do for a
 * call. The function is `supabase/functions/<name>/handler.ts`, whose module must export
 * `handler(req: Request): Response | Promise<Response>` (checked on load). With
 * `verify_jwt` (config.toml, default true) the call needs `Authorization: Bearer <jwt>`
 * with a token we accept (an `apikey` alone is not enough: 401, as on hosted Supabase).
 * The function sees the path without `/functions/v1`, the mapped bearer token, the
 * gateway's `x-request-id`, the body read within the limits, and the client's abort
 * through `req.signal`.
 */
import { toFileUrl, join } from "./path.ts";
import { bearerToken, effectiveToken, type Keys, verifyApiToken } from "./keys.ts";
import { bodyTimeout, gatewayError, jsonResponse, payloadTooLarge } from "./errors.ts";
import { type Limits, readBody } from "./limits.ts";

/** What a function module must export. */
export interface FunctionModule {
  handler: (req: Request) => Promise<Response> | Response;
}

/** What serving functions needs. */
export interface FunctionsOptions {
  keys: Keys;
  /** Directory holding one folder per function. */
  functionsDir: string;
  /** `[functions.<name>]` settings from config.toml. */
  functions: Record<string, { verify_jwt?: boolean }>;
  limits: Limits;
  log: (line: Record<string, unknown>) => void;
}

const SLUG = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

function notFound(): Response {
  return jsonResponse(404, { code: "NOT_FOUND", message: "Requested function was not found" });
}

/** Builds the `/functions/v1` route; `rest` is the path after `/functions/v1/`. */
export function createFunctions(opts: FunctionsOptions): (req: Request, url: URL, rest: string, requestId: string) => Promise<Response> {
  const modules = new Map<string, Promise<FunctionModule>>();

  async function load(slug: string, file: string): Promise<FunctionModule> {
    let mod = modules.get(slug);
    if (!mod) {
      mod = import(toFileUrl(file).href).then((m: Partial<FunctionModule>) => {
        if (typeof m.handler !== "function") throw new Error(`${slug}/handler.ts does not export a handler function`);
        return m as FunctionModule;
      });
      modules.set(slug, mod);
    }
    return await mod;
  }

  return async function serveFunction(req, url, rest, requestId) {
    const slug = rest.split("/")[0];
    if (!SLUG.test(slug) || slug.startsWith("_")) return notFound();
    const file = join(opts.functionsDir, slug, "handler.ts");
    try {
      await Deno.stat(file);
    } catch {
      return notFound();
    }
    if (req.method === "OPTIONS") return new Response("ok", { status: 200 });

    const verifyJwt = opts.functions[slug]?.verify_jwt ?? true;
    let token: string | null;
    if (verifyJwt) {
      // The functions gateway verifies the Authorization bearer; an apikey alone is no JWT to verify.
      token = bearerToken(opts.keys, req);
      const checked = await verifyApiToken(opts.keys, token);
      if (!checked.ok) {
        return jsonResponse(401, { msg: checked.problem === "missing" ? "Missing authorization header" : "Invalid JWT" });
      }
    } else {
      token = effectiveToken(opts.keys, req, url);
    }

    const body = await readBody(req, opts.limits);
    if (!body.ok) {
      if (body.reason === "too_large") return payloadTooLarge("functions", opts.limits.maxBodyBytes);
      if (body.reason === "timeout") return bodyTimeout("functions", opts.limits.bodyTimeoutMs);
      return gatewayError("functions", 400, "Request body could not be read", { code: "BAD_REQUEST" });
    }

    const headers = new Headers(req.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    headers.set("x-request-id", requestId);
    headers.delete("content-length");
    // The client's abort reaches the function through req.signal. The gateway runs with
    // --unstable-no-legacy-abort, so the signal aborts only when the client goes away
    // (Deno's legacy behaviour also aborts it after every successful response, and warns).
    const inner = new Request(new URL(`/${rest}${url.search}`, url.origin), {
      method: req.method,
      headers,
      body: body.bytes && req.method !== "GET" && req.method !== "HEAD" ? body.bytes : undefined,
      signal: req.signal,
    });
    try {
      const { handler } = await load(slug, file);
      return await handler(inner);
    } catch (err) {
      opts.log({ level: "error", function: slug, trace_id: requestId, msg: "function threw", error: err instanceof Error ? err.stack ?? err.message : String(err) });
      return jsonResponse(500, { code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" });
    }
  };
}
