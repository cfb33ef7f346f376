/**
 * What the gateway accepts from a client, on every route, before any of it reaches a
 * function or the database. On hosted Supabase the API gateway and the load balancers in
 * front of PostgREST and the edge runtime refuse oversized or slow requests (Kong's
 * request-size-limiting answers 413, nginx's client_header_timeout /
 * client_body_timeout / large_client_header_buffers answer 408 / 431); PostgREST itself
 * reads whatever it is given. The local stand-in picks its own numbers, documented in
 * docs/local-stack.md:
 *
 * - bodies up to 1 MiB (Content-Length checked before reading, chunked bodies cut off at
 *   the first byte past it), received within 30 s;
 * - JSON bodies of RPCs nested at most 512 deep (PostgreSQL's own parser runs out of
 *   stack far deeper, at 54001, which would be a 500);
 * - request heads up to 16 KiB and 100 header lines, received within 10 s of the
 *   connection opening or of their first byte (listener.ts); idle keep-alive connections
 *   closed after 15 s (clients close theirs sooner: Node's fetch after 4 s).
 */

/** The gateway's limits; every one can be lowered for tests. */
export interface Limits {
  /** Largest request body, in bytes. */
  maxBodyBytes: number;
  /** Deepest nesting of a JSON body on /rest/v1. */
  maxJsonDepth: number;
  /** Time allowed to receive a whole request body. */
  bodyTimeoutMs: number;
  /** Time allowed to receive a request head. */
  headersTimeoutMs: number;
  /** Largest request head (request line and headers), in bytes. */
  maxHeaderBytes: number;
  /** Most header lines in a request head. */
  maxHeaderCount: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
}

/** The local stand-in's limits. */
export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 1024 * 1024,
  maxJsonDepth: 512,
  bodyTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  keepAliveTimeoutMs: 15_000,
};

/** A body read within the limits, or why it was not. */
export type BodyResult =
  | { ok: true; bytes: Uint8Array<ArrayBuffer> | null }
  | { ok: false; reason: "too_large" | "timeout" | "unreadable" };

/** Whether the declared Content-Length is already over the limit (or not a length at all). */
export function declaredLength(req: Request): number | null {
  const raw = req.headers.get("content-length");
  if (raw === null) return null;
  return /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
}

/**
 * Reads a request body without ever holding more than `maxBodyBytes + chunk` of it: a
 * declared Content-Length over the limit is refused before reading, a chunked body is
 * cut off at the first chunk past it, and a body not complete within `bodyTimeoutMs`
 * is abandoned.
 */
export async function readBody(req: Request, limits: Pick<Limits, "maxBodyBytes" | "bodyTimeoutMs">): Promise<BodyResult> {
  const declared = declaredLength(req);
  if (declared !== null && (Number.isNaN(declared) || declared > limits.maxBodyBytes)) {
    await req.body?.cancel().catch(() => {});
    return Number.isNaN(declared) ? { ok: false, reason: "unreadable" } : { ok: false, reason: "too_large" };
  }
  if (!req.body) return { ok: true, bytes: null };
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {});
  }, limits.bodyTimeoutMs);
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limits.maxBodyBytes) {
        await reader.cancel().catch(() => {});
        return { ok: false, reason: "too_large" };
      }
      chunks.push(value);
    }
  } catch {
    return { ok: false, reason: timedOut ? "timeout" : "unreadable" };
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) return { ok: false, reason: "timeout" };
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return { ok: true, bytes };
}

/** Whether JSON text nests objects and arrays deeper than `max` (strings are skipped). */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}
