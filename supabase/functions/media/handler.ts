/**
 * `media` (issue 12; seed 004 "Audio/Object Storage" and "Session Transcript Storage"):
 * session recordings and transcripts in the private session-media bucket.
 *
 * - POST /media/upload-url {session_id, kind, filename, content_type, bytes, duration_ms?,
 *   tracked_skill_id?}: for the caller's own session (the service role: any session), checks
 *   the kind, type and size against the bucket (public.start_session_media_upload), builds
 *   the key u/{userId}/s/{sessionId}/{ts}/{basename} on the server's clock from a sanitised
 *   basename, records the pending session_media row and answers 201 with a signed upload URL
 *   valid ten minutes (`uploadToSignedUrl(path, token, file)` in supabase-js).
 * - POST /media/complete {media_id}: once the bytes are uploaded, reads them back as the
 *   caller, hashes them (SHA-256, streamed) and marks the row stored with the object's size,
 *   type and time (public.complete_session_media_upload, with the eTag of what was hashed).
 *   409 while the object is missing or if it changed meanwhile; 422 when the object's size
 *   or type does not fit the upload (nothing changes; the next reconciliation rejects the
 *   row and the retention job deletes the object).
 * - GET /media?session_id=…: the session's media, newest first, each stored object with a
 *   signed download URL valid ten minutes, created as the caller (storage RLS decides). The
 *   owner, the owner's assigned coach (the read is recorded in audit.phi_access_log by
 *   public.list_session_media) or the service role.
 *
 * Bad input (another user's session, a type the bucket or the kind does not allow, a size
 * over the bucket's limit, a file name with folders such as `../x`) is a 422 naming the
 * field, and stores nothing. Every Storage API call (the read-back of complete, the signed
 * download URLs) is recorded in private.storage_operations (public.record_storage_operation)
 * for the storage panel and alerts. Every route takes from the rate limit "media".
 */
import { z } from "zod";
import { allowMethods, HttpError, json, type RequestContext, respond } from "../_shared/http.ts";
import { authenticate, bearerToken, type Claims, isUser } from "../_shared/auth.ts";
import { withServiceRole, withUser } from "../_shared/db.ts";
import { invalidFields, parseOrThrow, queryOf, readJson } from "../_shared/validate.ts";
import { rateLimitFor } from "../_shared/rate_limit.ts";
import { MAX_TRACKED_SKILL_ID, noteTrackedSkillHeader, requestTrackedSkillHash } from "../_shared/tracked_skill.ts";
import type { Tables } from "../_shared/database.types.ts";
import {
  MEDIA_BUCKET, objectDigest, safeBasename, SIGNED_URL_SECONDS, signedDownloadUrls, signedUploadUrl, signUploadToken,
  StorageCallError,
} from "../_shared/storage.ts";

/** Largest accepted body, in bytes. */
export const MAX_BODY_BYTES = 8 * 1024;

/** POST /media/upload-url: strict, so unknown fields are refused. */
export const UploadUrlBody = z.strictObject({
  session_id: z.uuid(),
  kind: z.enum(["audio", "transcript"]),
  filename: z.string().min(1).max(255),
  content_type: z.string().min(3).max(100),
  bytes: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  duration_ms: z.int().min(0).max(86_400_000).optional(),
  tracked_skill_id: z.string().min(1).max(MAX_TRACKED_SKILL_ID).optional(),
});

/** POST /media/complete. */
export const CompleteBody = z.strictObject({ media_id: z.uuid() });

/** GET /media. */
export const ListQuery = z.strictObject({ session_id: z.uuid() });

/** A session_media row as the function answers it (the generated types, `npm run gen:types`). */
type MediaRow = Tables<"session_media">;

/** Handles /functions/v1/media and its routes. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "GET", "POST");
    const route = (/\/media(?:\/(.*))?$/.exec(new URL(req.url).pathname)?.[1] ?? "").replace(/\/+$/, "");
    if (route !== "" && route !== "upload-url" && route !== "complete") {
      throw new HttpError(404, "Not Found", `No route ${route}: use POST /media/upload-url, POST /media/complete or GET /media?session_id=.`);
    }
    allowMethods(req, route === "" ? "GET" : "POST");
    const claims = await authenticate(req);
    if (!isUser(claims) && claims.role !== "service_role") {
      throw new HttpError(403, "Forbidden", "Only a signed-in user or the service role can use media.");
    }
    const token = bearerToken(req)!;
    if (route === "upload-url") return await uploadUrl(req, claims, ctx);
    if (route === "complete") return await complete(req, claims, token, ctx);
    return await list(req, claims, token, ctx);
  });
}

/** Records a storage operation for the panel and alert; never fails the request. */
async function recordOperation(operation: string, ok: boolean, startedAt: number, bytes: number | null, detail: string | null): Promise<void> {
  try {
    await withServiceRole((tx) => tx`select public.record_storage_operation(${operation}, ${ok}, ${Math.round(performance.now() - startedAt)},
                                                                             ${bytes}::bigint, ${detail})`);
  } catch (err) {
    console.error(JSON.stringify({ level: "error", msg: "storage operation not recorded", operation, error: String(err) }));
  }
}

/**
 * Runs a storage step, recording it; a storage failure is recorded and rethrown (502). A
 * result `skip` names (the client's mistake, such as completing before uploading) is not an
 * operation and is not recorded.
 */
async function measured<T>(operation: string, bytes: (value: T) => number | null, step: () => Promise<T>,
  opts: { skip?: (value: T) => boolean } = {}): Promise<T> {
  const startedAt = performance.now();
  try {
    const value = await step();
    if (!opts.skip?.(value)) await recordOperation(operation, true, startedAt, bytes(value), null);
    return value;
  } catch (err) {
    if (err instanceof StorageCallError) await recordOperation(operation, false, startedAt, null, err.message);
    throw err;
  }
}

async function uploadUrl(req: Request, claims: Claims, ctx: RequestContext): Promise<Response> {
  await noteTrackedSkillHeader(req);
  const raw = await readJson(req, MAX_BODY_BYTES);
  const { body, basename, trackedSkillHash } = await ctx.timing.measure("validate", async () => {
    const body = parseOrThrow(UploadUrlBody, raw);
    const basename = safeBasename(body.filename);
    if (!basename) {
      throw invalidFields([{ field: "filename", message: "Give a file name without folders (no /, \\, . or ..) or control characters, with at least one letter or digit" }]);
    }
    return { body, basename, trackedSkillHash: await requestTrackedSkillHash(req, body.tracked_skill_id) };
  });
  const media = await ctx.timing.measure("db", () =>
    withUser(claims, async (tx) => {
      const [row] = await tx`
        select to_json(m) as media from public.start_session_media_upload(
          session_id => ${body.session_id}::uuid, kind => ${body.kind}, basename => ${basename},
          mime_type => ${body.content_type}, bytes => ${body.bytes}::bigint, duration_ms => ${body.duration_ms ?? null}::integer,
          tracked_skill_id_hash => ${trackedSkillHash}) m`;
      return row.media as MediaRow;
    }, { traceId: ctx.traceId, rateLimit: rateLimitFor("media", ctx) })
  );
  // Signed here, not by a Storage API call (see _shared/storage.ts), so not a storage operation.
  const { token, expiresAt } = await signUploadToken(MEDIA_BUCKET, media.storage_path, media.user_id);
  return json({
    media,
    upload: {
      bucket: MEDIA_BUCKET,
      path: media.storage_path,
      token,
      signed_url: signedUploadUrl(MEDIA_BUCKET, media.storage_path, token),
      expires_at: expiresAt.toISOString(),
      content_type: media.mime_type,
    },
  }, 201);
}

async function complete(req: Request, claims: Claims, token: string, ctx: RequestContext): Promise<Response> {
  const body = parseOrThrow(CompleteBody, await readJson(req, MAX_BODY_BYTES));
  const media = await ctx.timing.measure("db", () =>
    withUser(claims, async (tx) => {
      const [row] = await tx`select to_json(m) as media from public.session_media m where m.id = ${body.media_id}::uuid`;
      return row?.media as MediaRow | undefined;
    }, { traceId: ctx.traceId, rateLimit: rateLimitFor("media", ctx) })
  );
  if (!media) throw invalidFields([{ field: "media_id", message: "Does not name one of your uploads" }]);
  if (!["pending", "stored", "abandoned"].includes(media.status)) {
    throw new HttpError(409, "Conflict", `This upload is ${media.status}: it cannot be completed.`);
  }
  const digest = await ctx.timing.measure("storage", () =>
    measured("complete", (d) => d?.bytes ?? null, () => objectDigest(token, media.bucket_id, media.storage_path), { skip: (d) => d === null }));
  if (!digest) {
    throw new HttpError(409, "Conflict", "The object has not been uploaded yet: PUT it to the signed upload URL first.");
  }
  // The row is the caller's (read above under RLS); the service role records what was hashed.
  const stored = await ctx.timing.measure("db", () =>
    withServiceRole(async (tx) => {
      const [row] = await tx`select to_json(m) as media
                             from public.complete_session_media_upload(${media.id}::uuid, ${digest.sha256}, ${digest.etag}) m`;
      return row.media as MediaRow;
    }, { traceId: ctx.traceId })
  );
  return json({ media: stored });
}

async function list(req: Request, claims: Claims, token: string, ctx: RequestContext): Promise<Response> {
  const q = parseOrThrow(ListQuery, queryOf(req), "query string");
  const rows = await ctx.timing.measure("db", () =>
    withUser(claims, async (tx) => {
      const found = await tx`select to_json(m) as media from public.list_session_media(${q.session_id}::uuid) m`;
      return found.map((r) => r.media as MediaRow);
    }, { traceId: ctx.traceId, rateLimit: rateLimitFor("media", ctx) })
  );
  const stored = rows.filter((m) => m.status === "stored");
  const urls = stored.length === 0 ? new Map<string, string | null>() : await ctx.timing.measure("storage", () =>
    measured("download_urls", () => null, () => signedDownloadUrls(token, MEDIA_BUCKET, stored.map((m) => m.storage_path))));
  const expiresAt = new Date(Date.now() + SIGNED_URL_SECONDS * 1000).toISOString();
  return json({
    media: rows.map((m) => {
      const url = m.status === "stored" ? urls.get(m.storage_path) ?? null : null;
      return { ...m, download_url: url, download_expires_at: url ? expiresAt : null };
    }),
  });
}
