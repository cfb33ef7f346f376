/**
 * `media-retention` (POST, service role only; issue 12): applies the privacy window of
 * session media. pg_cron invokes it daily at 03:17 UTC through pg_net
 * (private.run_media_retention); it can also be called by hand.
 *
 * Each round claims up to `batch_size` due rows (public.claim_due_session_media: pending
 * uploads past their window are reconciled first, stored objects whose expires_at has passed
 * are returned), deletes their objects through the Storage API (never by SQL, which hosted
 * Supabase refuses) with the caller's service-role token, and marks the rows expired
 * (public.record_session_media_expiry, which marks only rows whose objects are gone, so a
 * failed delete leaves them due for the next run). Rounds go on until nothing is due or the
 * run's time budget is spent. Transcripts are kept unless their window says otherwise
 * (public.media_retention_settings).
 *
 * Idempotent: a second run finds nothing due; an object already gone is marked expired
 * without a delete. Answers 200 {expired, failed, rounds, more}: `more` is true when rows
 * are still due (the budget ran out, or deletes failed). A failed delete is recorded in
 * private.storage_operations (the storage alert) and counted in `failed`. 403 for any caller
 * but the service role; 422 for an unknown body field.
 */
import { z } from "zod";
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate, bearerToken } from "../_shared/auth.ts";
import { withServiceRole } from "../_shared/db.ts";
import { parseOrThrow, readJson } from "../_shared/validate.ts";
import { removeObjects, StorageCallError } from "../_shared/storage.ts";

/** A run stops claiming new rounds after this long. */
export const RUN_BUDGET_MS = 20_000;

const BodySchema = z.strictObject({
  source: z.string().max(100).optional(),
  batch_size: z.int().min(1).max(1000).default(100),
});

interface Due {
  id: string;
  bucket_id: string;
  storage_path: string;
}

/** Handles /functions/v1/media-retention. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async () => {
    allowMethods(req, "POST");
    const claims = await authenticate(req);
    if (claims.role !== "service_role") throw new HttpError(403, "Forbidden", "Only the service role can run media retention.");
    // No body is an empty object (supabase.functions.invoke without a body sends none).
    const body = parseOrThrow(BodySchema, req.body === null ? {} : await readJson(req, 4096));
    const token = bearerToken(req)!;
    const started = performance.now();
    let expired = 0;
    let failed = 0;
    let rounds = 0;
    let more = false;
    const tried = new Set<string>();
    while (true) {
      if (performance.now() - started > RUN_BUDGET_MS) {
        more = true;
        break;
      }
      const claimed = await withServiceRole((tx) => tx<Due[]>`
        select id, bucket_id, storage_path from public.claim_due_session_media(batch_size => ${body.batch_size})`);
      // Rows whose delete failed in this run come back first: the next run tries them again.
      const due = claimed.filter((d) => !tried.has(d.id));
      if (due.length === 0) {
        more = claimed.length > 0;
        break;
      }
      rounds++;
      for (const d of due) tried.add(d.id);
      const byBucket = Map.groupBy(due, (d) => d.bucket_id);
      for (const [bucket, rows] of byBucket) {
        const startedAt = performance.now();
        let ok = true;
        let detail: string | null = null;
        try {
          await removeObjects(token, bucket, rows.map((r) => r.storage_path));
        } catch (err) {
          if (!(err instanceof StorageCallError)) throw err;
          ok = false;
          detail = err.message;
        }
        const marked = await withServiceRole(async (tx) => {
          await tx`select public.record_storage_operation('retention_delete', ${ok}, ${Math.round(performance.now() - startedAt)},
                                                          null, ${detail})`;
          const [r] = await tx<{ n: number }[]>`select public.record_session_media_expiry(${rows.map((r) => r.id)}::uuid[]) as n`;
          return r.n;
        });
        expired += marked;
        failed += rows.length - marked;
      }
    }
    return json({ expired, failed, rounds, more });
  });
}
