/**
 * `media-retention` (POST, service role only; issue 12): applies the privacy window of
 * session media. pg_cron invokes it daily at 03:17 UTC through pg_net
 * (private.run_media_retention); it can also be called by hand.
 *
 * Each round claims up to `batch_size` objects of each reason
 * (public.claim_due_session_media, which first brings the sessions concerned in step with
 * storage.objects): stored objects whose expires_at has passed (expired), objects whose size
 * or type did not fit their upload (rejected), objects under the key of an erased user
 * (erased: public.erase_user invokes this function through pg_net when the user had media),
 * and hour-old objects no row can follow (orphans). It deletes them through the Storage API
 * (never by SQL, which hosted Supabase refuses) with the caller's service-role token, and
 * marks the expired rows
 * (public.record_session_media_expiry, which marks only rows whose objects are gone, so a
 * failed delete leaves them due for the next run). Rounds go on until nothing is due or the
 * run's time budget is spent. Transcripts are kept unless their window says otherwise
 * (retention policies media_audio and media_transcript, which media_retention_settings follows).
 *
 * Idempotent: a second run finds nothing due; a row whose object is already gone is marked
 * expired (the delete finds nothing). Answers 200 {expired, rejected, erased, orphans, failed,
 * rounds, more}: `failed` counts objects still there after their delete (recorded in
 * private.storage_operations, which raises the storage alert); `more` is true when objects
 * are still due (the budget ran out, or deletes failed). Two runs at once may both claim an
 * object; the second's delete finds nothing and counts nothing. 403 for any caller but the
 * service role; 422 for an unknown body field.
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
  id: string | null;
  bucket_id: string;
  storage_path: string;
  reason: "expired" | "rejected" | "erased" | "orphan";
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
    const counts = { expired: 0, rejected: 0, erased: 0, orphans: 0, failed: 0 };
    let rounds = 0;
    let more = false;
    const tried = new Set<string>();
    while (true) {
      if (performance.now() - started > RUN_BUDGET_MS) {
        more = true;
        break;
      }
      const claimed = await withServiceRole((tx) => tx<Due[]>`
        select id, bucket_id, storage_path, reason from public.claim_due_session_media(batch_size => ${body.batch_size})`);
      // Objects whose delete failed in this run come back first: the next run tries them again.
      const due = claimed.filter((d) => !tried.has(`${d.bucket_id}/${d.storage_path}`));
      if (due.length === 0) {
        more = claimed.length > 0;
        break;
      }
      rounds++;
      for (const d of due) tried.add(`${d.bucket_id}/${d.storage_path}`);
      for (const [bucket, rows] of Map.groupBy(due, (d) => d.bucket_id)) {
        const paths = rows.map((r) => r.storage_path);
        const startedAt = performance.now();
        let ok = true;
        let detail: string | null = null;
        try {
          await removeObjects(token, bucket, paths);
        } catch (err) {
          if (!(err instanceof StorageCallError)) throw err;
          ok = false;
          detail = err.message;
        }
        const left = await withServiceRole(async (tx) => {
          await tx`select public.record_storage_operation('retention_delete', ${ok}, ${Math.round(performance.now() - startedAt)},
                                                          null, ${detail})`;
          await tx`select public.record_session_media_expiry(${rows.filter((r) => r.reason === "expired").map((r) => r.id!)}::uuid[])`;
          // What is still there failed, whatever the Storage API answered (another run may have
          // deleted some of these first: those are not failures).
          return new Set((await tx<{ name: string }[]>`
            select name from storage.objects where bucket_id = ${bucket} and name = any(${paths}::text[])`).map((o) => o.name));
        });
        for (const r of rows) {
          if (left.has(r.storage_path)) counts.failed++;
          else if (r.reason === "expired") counts.expired++;
          else if (r.reason === "rejected") counts.rejected++;
          else if (r.reason === "erased") counts.erased++;
          else counts.orphans++;
        }
      }
    }
    return json({ ...counts, rounds, more });
  });
}
