/**
 * PostgREST's Response (src/PostgREST/Response.hs) pieces shared by the table and RPC
 * routes: what a function or trigger asked of the response through the response.status /
 * response.headers settings, and Content-Range.
 */
import { restError, type RestResult } from "../errors.ts";

/**
 * The response.status and response.headers a function set (PostgREST: an array of
 * single-key objects with string values; a later value of a header wins). Invalid values
 * are PostgREST's PGRST112 and PGRST111 (500).
 */
export function responseGucs(gucs: { status: string | null; headers: string | null }): { status?: number; headers: Record<string, string> } | { error: RestResult } {
  const out: { status?: number; headers: Record<string, string> } = { headers: {} };
  if (gucs.status !== null) {
    const status = Number(gucs.status);
    // Deno's Response takes 200-599 only.
    if (!/^\d+$/.test(gucs.status) || status < 200 || status > 599) {
      return { error: { status: 500, body: restError("PGRST112", "Status code must be a positive integer") } };
    }
    out.status = status;
  }
  if (gucs.headers !== null) {
    const invalid = { error: { status: 500, body: restError("PGRST111", "response.headers guc must be a JSON array composed of objects with a single key and a string value") } };
    let parsed: unknown;
    try {
      parsed = JSON.parse(gucs.headers);
    } catch {
      return invalid;
    }
    if (!Array.isArray(parsed)) return invalid;
    for (const item of parsed) {
      const entries = item && typeof item === "object" && !Array.isArray(item) ? Object.entries(item) : [];
      if (entries.length !== 1 || typeof entries[0][1] !== "string" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(entries[0][0]) || /[\r\n\0]/.test(entries[0][1])) {
        return invalid;
      }
      out.headers[entries[0][0]] = entries[0][1] as string;
    }
  }
  return out;
}

/** `lower-upper/total` (`*` for the range when no rows came back, and for an unknown total). */
export function contentRange(offset: number, rows: number, total: number | null): string {
  return `${rows > 0 ? `${offset}-${offset + rows - 1}` : "*"}/${total ?? "*"}`;
}
