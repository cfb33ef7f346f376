/**
 * `export-my-data` (GET): everything Coach Ledger holds about a person, as one JSON document
 * (the right of access; issue 16). A signed-in user gets their own; the service role gets
 * anyone's, named by `user_id` in the query string.
 *
 * The export is first recorded in audit.privacy_log (private.record_data_export, committed on
 * its own, so an export that fails half-way is still on record), then streamed:
 * private.export_user_data (in private: the Data API cannot serve it unrecorded) returns (section, item) rows in one snapshot, read through a
 * cursor 500 rows at a time, each written as soon as it is read, so a person with 100,000
 * interactions never sits in the function's memory whole. The document ends with
 * `"complete": true`; a failure after the first byte aborts the stream, so a client that
 * did not get that field did not get the whole export.
 *
 * Each stored recording or transcript in `media` carries a signed download URL
 * (`download_url`, valid EXPORT_URL_SECONDS, signed through the Storage API with the service
 * role key: private.export_user_data has already limited the rows to this person, and a
 * caller's token may expire while a long export streams) and `download_expires_at`; both null
 * when there is none, with `download_error` saying why ("not stored", "object not found",
 * "storage unavailable").
 */
import { z } from "zod";
import { allowMethods, HttpError, respond } from "../_shared/http.ts";
import { authenticate, bearerToken, type Claims } from "../_shared/auth.ts";
import { withUser } from "../_shared/db.ts";
import { rateLimitFor } from "../_shared/rate_limit.ts";
import { parseOrThrow, queryOf } from "../_shared/validate.ts";
import { signedDownloadUrls, StorageCallError } from "../_shared/storage.ts";
import { optionalEnv } from "../_shared/env.ts";

/** The document's sections, in the order public.export_user_data returns them. */
export const SECTIONS = [
  "profile", "identities", "coach_assignments", "interactions", "events", "sessions", "action_plans", "assessments",
  "applications", "opportunities", "media", "notifications", "emails", "tenant_memberships", "daily_metrics", "data_access",
] as const;

/** The version of the document's shape. */
export const FORMAT = "coach-ledger-export/1";

/** How long the media download URLs in an export stay valid: an hour to fetch them. */
export const EXPORT_URL_SECONDS = 3600;

/** Rows fetched from the cursor at a time. */
const CURSOR_ROWS = 500;

/** The query string: strict, so unknown parameters are refused. */
export const ExportQuery = z.strictObject({
  user_id: z.uuid().optional(),
});

/** Handles GET /functions/v1/export-my-data. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "GET");
    const claims = await authenticate(req);
    const isUser = claims.role === "authenticated" && typeof claims.sub === "string";
    if (!(claims.role === "service_role" || isUser)) {
      throw new HttpError(403, "Forbidden", "Only a signed-in user or the service role can export data.");
    }
    const q = parseOrThrow(ExportQuery, queryOf(req), "query string");
    if (claims.role === "service_role" && !q.user_id) {
      throw new HttpError(422, "Unprocessable Content", "The query string has invalid fields: user_id.", {
        errors: [{ field: "user_id", message: "Required for the service role" }],
      });
    }

    // On record before anything is read; the database decides whose data it is (the caller's
    // Coach Ledger id, whatever provider signed the token) and checks who may export it.
    const [recorded] = await ctx.timing.measure("audit", () =>
      withUser(claims, (tx) => tx`select export_id::text, subject_user_id from private.record_data_export(${q.user_id ?? null}::uuid)`, {
        traceId: ctx.traceId, rateLimit: rateLimitFor("export-my-data", ctx),
      }));
    const target = recorded.subject_user_id as string;

    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    stream(claims, bearerToken(req)!, target, recorded.export_id as string, ctx.traceId, writable.getWriter(), req.signal);
    const day = new Date().toISOString().slice(0, 10);
    return new Response(readable, {
      status: 200,
      headers: {
        "content-type": "application/json; charset=utf-8",
        "content-disposition": `attachment; filename="coach-ledger-export-${target}-${day}.json"`,
        "cache-control": "no-store",
      },
    });
  });
}

/** Writes the document to the stream; on a failure, logs it and aborts the stream. */
async function stream(
  claims: Claims,
  token: string,
  target: string,
  exportId: string,
  traceId: string,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  signal: AbortSignal,
): Promise<void> {
  const encoder = new TextEncoder();
  const write = (text: string) => writer.write(encoder.encode(text));
  try {
    await write(`{"format":${JSON.stringify(FORMAT)},"user_id":${JSON.stringify(target)},` +
      `"exported_at":${JSON.stringify(new Date().toISOString())},"export_id":${JSON.stringify(exportId)}`);
    // The section being written (an index in SECTIONS; -1 before the first) and whether it
    // has an item yet. Every section is written, in order, an empty one as [] ("profile", an
    // object, as null).
    let at = -1;
    let items = 0;
    const moveTo = (until: number): string => {
      let out = "";
      while (at < until) {
        if (at >= 0) out += SECTIONS[at] === "profile" ? (items ? "" : "null") : "]";
        at++;
        items = 0;
        if (at < SECTIONS.length) out += SECTIONS[at] === "profile" ? `,"profile":` : `,${JSON.stringify(SECTIONS[at])}:[`;
      }
      return out;
    };
    await withUser(claims, async (tx) => {
      // A client that stops reading leaves the transaction idle between fetches: after 30 s
      // PostgreSQL ends the session, the stream is aborted and the connection goes back.
      await tx`select set_config('idle_in_transaction_session_timeout', '30s', true)`;
      const cursor = tx`select section, item::text as item from private.export_user_data(${claims.role === "service_role" ? target : null}::uuid)`
        .cursor(CURSOR_ROWS);
      for await (const rows of cursor) {
        if (signal.aborted) throw new Error("the client went away");
        let chunk = "";
        const read = rows as unknown as { section: string; item: string }[];
        const media = await withDownloadUrls(optionalEnv("SUPABASE_SERVICE_ROLE_KEY") ?? token, read.filter((r) => r.section === "media").map((r) => r.item));
        for (const row of read) {
          const index = SECTIONS.indexOf(row.section as typeof SECTIONS[number]);
          if (index < at || index < 0) throw new Error(`export_user_data returned section ${row.section} out of order`);
          chunk += moveTo(index);
          if (items++ > 0) chunk += ",";
          chunk += row.section === "media" ? media.shift() : row.item;
        }
        await write(chunk);
      }
    }, { traceId, statementTimeout: "120s" });
    await write(`${moveTo(SECTIONS.length)},"complete":true}\n`);
    await writer.close();
  } catch (err) {
    console.error(JSON.stringify({
      level: "error", trace_id: traceId, function: "export-my-data", msg: "export aborted after the response started",
      error: err instanceof Error ? err.message : String(err ?? "the client stopped reading"),
    }));
    await writer.abort(err).catch(() => {});
  }
}

/**
 * The media items (JSON text, in order) with a signed download URL each: for stored objects,
 * signed in one call per bucket; for the rest, and when Storage does not find an object or
 * does not answer, null with the reason in download_error (the export goes on).
 */
async function withDownloadUrls(token: string, items: string[]): Promise<string[]> {
  if (items.length === 0) return [];
  const rows = items.map((i) => JSON.parse(i) as { bucket_id: string; storage_path: string; status: string } & Record<string, unknown>);
  const urls = new Map<string, string | null>();
  const unavailable = new Set<string>();
  for (const [bucket, stored] of Map.groupBy(rows.filter((r) => r.status === "stored"), (r) => r.bucket_id)) {
    try {
      for (const [path, url] of await signedDownloadUrls(token, bucket, stored.map((r) => r.storage_path), EXPORT_URL_SECONDS)) {
        urls.set(`${bucket}/${path}`, url);
      }
    } catch (err) {
      if (!(err instanceof StorageCallError)) throw err;
      unavailable.add(bucket);
      console.error(JSON.stringify({ level: "warn", function: "export-my-data", msg: "media URLs not signed", error: err.message }));
    }
  }
  const expiresAt = new Date(Date.now() + EXPORT_URL_SECONDS * 1000).toISOString();
  return rows.map((r) => {
    const url = urls.get(`${r.bucket_id}/${r.storage_path}`) ?? null;
    const error = url ? null
      : r.status !== "stored" ? "not stored"
      : unavailable.has(r.bucket_id) ? "storage unavailable"
      : "object not found";
    return JSON.stringify({ ...r, download_url: url, download_expires_at: url ? expiresAt : null, download_error: error });
  });
}
