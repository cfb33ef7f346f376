/**
 * `/storage/v1/…`: a stand-in for Supabase Storage (the supabase/storage server, as
 * @supabase/storage-js calls it), for the routes Coach Ledger's apps use. It copies the
 * server's behaviour, not its code:
 *
 * - Authorization as the server does it: object rows are read and written in
 *   storage.objects / storage.buckets as the caller's role with the caller's claims, so the
 *   storage RLS policies decide; the service role bypasses them. The bearer token is
 *   verified with the project's JWT secret; the apikey header is not required (Supabase's
 *   API gateway does not ask for one on storage routes).
 * - Errors are `{statusCode, code, error, message}` with the server's codes and messages,
 *   sent with HTTP 400 unless the status is 500, as the server's error handler does.
 * - Bucket limits: file_size_limit (and the CLI's global 50 MiB), allowed_mime_types (type
 *   and subtype, `*` as subtype).
 * - Signed URLs: HS256 JWTs signed with the project's JWT secret carrying `url`
 *   (`<bucket>/<path>`), `scope` (download | upload), `iat`, `exp`, and for uploads `owner`
 *   and `upsert`; an expired or tampered token is refused (InvalidJWT), one for another
 *   object or scope too (InvalidSignature).
 * - Writes as the server makes them: a permission trial as the caller (the insert, or
 *   insert-or-update with upsert, rolled back) before any byte is read, then the bytes, then
 *   the row written with the server's own access under a lock on the name.
 * - Bytes live under `dir` (the state directory's storage/), one file per object version;
 *   the row is written after the file, in a transaction whose failure removes the file, and
 *   a replaced or deleted object's file is removed only after the commit, so an object is
 *   never visible in one without the other. (A crash between the file and the commit leaves
 *   an unreferenced file behind; nothing sweeps them: `reset` empties the directory.)
 *
 * Served: bucket get and list; upload (POST, x-upsert) and update (PUT), raw or multipart;
 * download (/object/, /object/authenticated/, /object/public/); list; remove; signed URLs
 * (one or many) and their GET; signed upload URLs and their PUT; move and copy (within or
 * across buckets). Not served (501): bucket writes, object info, list-v2, image
 * transformations (/render/image), the S3
 * protocol and resumable (TUS) uploads. Downloads are whole: no Range (206) or conditional
 * (304) answers.
 */
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type postgres from "postgres";
import { bearerToken, hmacKey, type Keys, verify } from "./keys.ts";
import { jsonResponse } from "./errors.ts";
import { DEFAULT_LIMITS, readBody } from "./limits.ts";

/** What serving /storage/v1 needs. */
export interface StorageOptions {
  keys: Keys;
  /** postgres.js pool connected as `authenticator`. */
  sql: postgres.Sql;
  /** Where object bytes are kept. */
  dir: string;
  /** The global upload limit (the Supabase CLI's default: 50 MiB). */
  maxFileBytes?: number;
  /** Time allowed to receive a buffered body (multipart, JSON): the gateway's. */
  bodyTimeoutMs?: number;
}

/** The CLI's default global upload limit (config.toml [storage] file_size_limit = "50MiB"). */
export const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;
/** How long a signed upload URL is valid (hosted Supabase: two hours). */
export const UPLOAD_URL_SECONDS = 2 * 60 * 60;
/** The server's object key rule (src/storage/limits.ts). */
const KEY = /^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$/;
/** The server's bucket name rule: the key's characters without "/", at most 100 (and never "." or ".."). */
const BUCKET = /^[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}$/;
/** Object names the stand-in stores: the key rule, at most 1,024 characters (the unique index's room). */
const MAX_KEY = 1024;
/** Largest JSON body of sign, list and remove. */
const MAX_JSON_BYTES = 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Claims = Record<string, unknown>;
interface Bucket {
  id: string;
  name: string;
  owner: string | null;
  public: boolean;
  file_size_limit: string | null;
  allowed_mime_types: string[] | null;
  created_at: Date;
  updated_at: Date;
}
interface ObjectRow {
  id: string;
  name: string;
  metadata: { eTag?: string; size?: number; mimetype?: string; cacheControl?: string; lastModified?: string } | null;
  version: string | null;
  updated_at: Date;
}

/** A storage error: the body says the real status; the response is 400 unless it is 500. */
export class StorageError extends Error {
  constructor(readonly statusCode: number, readonly code: string, readonly error: string, message: string) {
    super(message);
  }
  /** The server's answer: HTTP 400 unless the status is 500. */
  response(): Response {
    return this.responseAs(this.statusCode === 500 ? 500 : 400);
  }
  /** The same body with another HTTP status (the stand-in's own 501s). */
  responseAs(status: number): Response {
    return jsonResponse(status, { statusCode: String(this.statusCode), code: this.code, error: this.error, message: this.message });
  }
}
const noSuchBucket = () => new StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found");
const noSuchKey = () => new StorageError(404, "NoSuchKey", "not_found", "Object not found");
/** A request that fails the server's schema validation (its `error` is "Error"). */
const invalidRequest = (message: string) => new StorageError(400, "InvalidRequest", "Error", message);
const invalidKey = (name: string) => new StorageError(400, "InvalidKey", "InvalidKey", `Invalid key: ${name}`);
const internalError = () => new StorageError(500, "InternalError", "Internal", "Internal Server Error");
/** A name the stand-in may store and look up: the key rule and length. */
const validKey = (name: string) => name.length <= MAX_KEY && KEY.test(name);
const validBucket = (id: string) => BUCKET.test(id) && id !== "." && id !== "..";
const VERSION = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Maps a database error as the server does (src/storage/database/errors.ts). */
function databaseError(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (code === "42501") return new StorageError(403, "AccessDenied", "Unauthorized", "new row violates row-level security policy");
  if (code === "23505") return new StorageError(409, "KeyAlreadyExists", "Duplicate", "The resource already exists");
  if (code === "23503") return new StorageError(404, "InvalidRequest", "Error", "The related resource does not exist");
  return err;
}

/** Whether a MIME type is allowed: same type, and the same subtype or `*` (the server's rule). */
export function mimeAllowed(mime: string, allowed: string[] | null): boolean {
  if (!allowed || allowed.length === 0) return true;
  const [type, subtype] = mime.split("/");
  return allowed.some((a) => {
    const [t, s] = a.split("/");
    return t === type && (s === "*" || s === subtype);
  });
}

/** Builds the `/storage/v1` route; `rest` is the path after `/storage/v1/`. */
export function createStorage(opts: StorageOptions): (req: Request, url: URL, rest: string) => Promise<Response> {
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? DEFAULT_LIMITS.bodyTimeoutMs;
  const sql = opts.sql;

  /** Runs fn in a transaction as the token's role with its claims (RLS applies). */
  function asCaller<T>(claims: Claims, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
    const role = typeof claims.role === "string" && claims.role ? claims.role : "anon";
    return sql.begin(async (tx) => {
      await tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                      set_config('request.jwt.claim.sub', ${typeof claims.sub === "string" ? claims.sub : ""}, true)`;
      return await fn(tx);
    }) as Promise<T>;
  }
  /** Runs fn as the storage server's own superuser access (here the service role: RLS bypassed). */
  const asService = <T>(fn: (tx: postgres.TransactionSql) => Promise<T>) => asCaller({ role: "service_role" }, fn);

  /**
   * The caller's claims. Without a valid token: an error when one is required, else anon
   * with `authenticated` false (the server's "unauthenticated": a private bucket is then
   * not found at all).
   */
  async function callerOf(req: Request, required: boolean): Promise<{ claims: Claims; authenticated: boolean }> {
    const token = bearerToken(opts.keys, req);
    if (!token) {
      if (required) throw invalidRequest("headers must have required property 'authorization'");
      return { claims: { role: "anon" }, authenticated: false };
    }
    const checked = await verify(opts.keys, token);
    if (!checked.ok) {
      if (!required) return { claims: { role: "anon" }, authenticated: false };
      throw new StorageError(403, "AccessDenied", "Unauthorized", checked.problem === "expired" ? "\"exp\" claim timestamp check failed" : checked.message);
    }
    return { claims: checked.claims as Claims, authenticated: true };
  }
  const claimsOf = async (req: Request, required: boolean) => (await callerOf(req, required)).claims;

  async function bucketOf(id: string): Promise<Bucket> {
    const [b] = await asService((tx) => tx<Bucket[]>`select * from storage.buckets where id = ${id}`);
    if (!b) throw noSuchBucket();
    return b;
  }

  const fileOf = (bucket: string, version: string) => `${opts.dir}/${encodeURIComponent(bucket)}/${version}`;
  const removeFile = (path: string) => Deno.remove(path).catch(() => {});

  /** Reads the upload (raw or multipart) within the limit into a new version file. */
  async function receive(req: Request, bucket: Bucket): Promise<{ version: string; size: number; mimetype: string; cacheControl: string; eTag: string }> {
    const limit = Math.min(maxFileBytes, bucket.file_size_limit ? Number(bucket.file_size_limit) : Infinity);
    const tooLarge = () => new StorageError(413, "EntityTooLarge", "Payload too large", "The object exceeded the maximum allowed size");
    const contentType = req.headers.get("content-type") ?? "";
    let body: ReadableStream<Uint8Array> | null;
    let mimetype: string;
    let cacheControl: string;
    if (/^multipart\/form-data/i.test(contentType)) {
      // storage-js sends the file as a part named "" (which the Fetch API's formData() drops;
      // the server's busboy keeps it): parsed here, within the limit plus room for the parts' heads.
      // RFC 2046: a boundary is 1 to 70 characters.
      const boundary = /boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))(?:;|\s|$)/i.exec(contentType);
      const read = boundary ? await readBody(req, { maxBodyBytes: limit + 64 * 1024, bodyTimeoutMs }) : null;
      if (read && !read.ok && read.reason === "too_large") throw tooLarge();
      const form = read?.ok && read.bytes ? parseMultipart(read.bytes, boundary![1] ?? boundary![2]) : [];
      const file = form.find((p) => p.filename !== null);
      if (!file) throw invalidRequest("No content provided");
      const field = form.find((p) => p.name === "contentType" && p.filename === null);
      const typeOf = field ? new TextDecoder().decode(field.data) : file.type || "text/plain";
      mimetype = typeOf.toLowerCase().split(";")[0].trim();
      if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(mimetype)) {
        throw new StorageError(415, "InvalidMimeType", "invalid_mime_type", "Invalid Content-Type header");
      }
      const cc = form.find((p) => p.name === "cacheControl" && p.filename === null);
      const seconds = cc ? new TextDecoder().decode(cc.data) : "";
      cacheControl = /^\d{1,10}$/.test(seconds) ? `max-age=${seconds}` : "no-cache";
      if (file.data.byteLength > limit) throw tooLarge();
      const data = file.data;
      body = new ReadableStream({ start(c) { c.enqueue(data); c.close(); } });
    } else {
      mimetype = contentType || "application/octet-stream";
      cacheControl = req.headers.get("cache-control") ?? "no-cache";
      const declared = Number(req.headers.get("content-length") ?? "NaN");
      if (declared > limit) {
        await req.body?.cancel().catch(() => {});
        throw tooLarge();
      }
      body = req.body;
    }
    if (!mimeAllowed(mimetype, bucket.allowed_mime_types)) {
      await body?.cancel().catch(() => {});
      throw new StorageError(415, "InvalidMimeType", "invalid_mime_type", `mime type ${mimetype} is not supported`);
    }
    const version = crypto.randomUUID();
    const path = fileOf(bucket.id, version);
    await Deno.mkdir(`${opts.dir}/${encodeURIComponent(bucket.id)}`, { recursive: true });
    const file = await Deno.open(path, { write: true, createNew: true });
    const md5 = createHash("md5");
    let size = 0;
    try {
      if (body) {
        for await (const chunk of body) {
          size += chunk.byteLength;
          if (size > limit) throw tooLarge();
          md5.update(chunk);
          let written = 0;
          while (written < chunk.byteLength) written += await file.write(chunk.subarray(written));
        }
      }
      // On disk before the row says it exists: an acknowledged upload survives a crash.
      await file.sync();
    } catch (err) {
      file.close();
      await removeFile(path);
      throw err;
    }
    file.close();
    return { version, size, mimetype, cacheControl, eTag: `"${md5.digest("hex")}"` };
  }

  /**
   * Whether the caller may write `name` (the server's permission trial): the insert, or with
   * upsert the insert-or-update, the caller could make, as the caller and rolled back. An
   * existing object without upsert is KeyAlreadyExists; RLS refusing is AccessDenied.
   */
  async function trial(claims: Claims, bucket: string, name: string, upsert: boolean): Promise<void> {
    const owner = ownerOf(claims);
    await asCaller(claims, async (tx) => {
      await tx.savepoint(async (sp) => {
        await (upsert
          ? sp`insert into storage.objects (bucket_id, name, owner, owner_id) values (${bucket}, ${name}, ${owner}::uuid, ${subOf(claims)})
               on conflict (bucket_id, name) do update set updated_at = now()`
          : sp`insert into storage.objects (bucket_id, name, owner, owner_id) values (${bucket}, ${name}, ${owner}::uuid, ${subOf(claims)})`);
        throw new Rollback();
      }).catch((err) => {
        if (!(err instanceof Rollback)) throw databaseError(err);
      });
    });
  }

  /**
   * Stores an upload the caller may make (trial first, before any byte is read): the file
   * first, then the row, written as the server writes it (its own access, RLS already
   * decided), under a lock on the name so that two uploads of one name take turns. A
   * database error removes the new file; the replaced version's file goes after the commit.
   * (A connection lost during COMMIT keeps the file: the row may exist.)
   */
  async function store(req: Request, claims: Claims, bucket: Bucket, name: string, upsert: boolean, trialFirst = true): Promise<string> {
    if (!validKey(name)) throw invalidKey(name);
    if (trialFirst) await trial(claims, bucket.id, name, upsert);
    const got = await receive(req, bucket);
    const metadata = {
      eTag: got.eTag, size: got.size, mimetype: got.mimetype, cacheControl: got.cacheControl,
      lastModified: new Date().toISOString(), contentLength: got.size, httpStatusCode: 200,
    };
    const userMetadata = userMetadataOf(req);
    const owner = ownerOf(claims);
    let row: { id: string; old_version: string | null };
    try {
      [row] = await asService(async (tx) => {
        await tx`select pg_advisory_xact_lock(hashtextextended(${`storage/${bucket.id}/${name}`}, 0))`;
        const [old] = await tx<{ version: string | null }[]>`select version from storage.objects where bucket_id = ${bucket.id} and name = ${name}`;
        if (old && !upsert) throw new StorageError(409, "KeyAlreadyExists", "Duplicate", "The resource already exists");
        const [r] = await tx<{ id: string }[]>`
          insert into storage.objects (bucket_id, name, owner, owner_id, metadata, user_metadata, version)
          values (${bucket.id}, ${name}, ${owner}::uuid, ${subOf(claims)}, ${tx.json(metadata)}, ${userMetadata ? tx.json(userMetadata as postgres.JSONValue) : null}, ${got.version})
          on conflict (bucket_id, name) do update set owner = excluded.owner, owner_id = excluded.owner_id, metadata = excluded.metadata,
            user_metadata = excluded.user_metadata, version = excluded.version, updated_at = now(), last_accessed_at = now()
          returning id`;
        return [{ id: r.id, old_version: old?.version ?? null }];
      });
    } catch (err) {
      const definite = err instanceof StorageError || /^[0-9A-Z]{5}$/.test((err as { code?: string }).code ?? "");
      if (definite) await removeFile(fileOf(bucket.id, got.version));
      throw databaseError(err);
    }
    if (row.old_version && VERSION.test(row.old_version)) await removeFile(fileOf(bucket.id, row.old_version));
    return row.id;
  }

  /** A new version file holding a copy of an existing version's bytes. */
  async function copyFile(from: { bucket: string; version: string | null }, toBucket: string): Promise<string> {
    if (!from.version || !VERSION.test(from.version)) throw new StorageError(404, "NoSuchKey", "Not found", "The resource was not found");
    const version = crypto.randomUUID();
    await Deno.mkdir(`${opts.dir}/${encodeURIComponent(toBucket)}`, { recursive: true });
    try {
      await Deno.copyFile(fileOf(from.bucket, from.version), fileOf(toBucket, version));
      const copied = await Deno.open(fileOf(toBucket, version), { read: true, write: true });
      try {
        await copied.sync();
      } finally {
        copied.close();
      }
    } catch {
      await removeFile(fileOf(toBucket, version));
      throw new StorageError(404, "NoSuchKey", "Not found", "The resource was not found");
    }
    return version;
  }

  /**
   * Move, as the server does it: a permission trial as the caller (the source must be
   * visible and the caller allowed to update it to its new name, rolled back), then a new
   * version file, then the row renamed with the server's access under locks on both names;
   * the old file goes after the commit. A taken destination is KeyAlreadyExists.
   */
  async function move(claims: Claims, from: { bucket: string; name: string }, to: { bucket: string; name: string }): Promise<Response> {
    const owner = ownerOf(claims);
    await asCaller(claims, async (tx) => {
      await tx.savepoint(async (sp) => {
        const [found] = await sp`select id from storage.objects where bucket_id = ${from.bucket} and name = ${from.name}`;
        if (!found) throw noSuchKey();
        const updated = await sp`update storage.objects set name = ${to.name}, bucket_id = ${to.bucket}, owner = ${owner}::uuid, owner_id = ${subOf(claims)}
                                 where bucket_id = ${from.bucket} and name = ${from.name} returning id`;
        if (updated.length === 0) throw noSuchKey();
        throw new Rollback();
      }).catch((err) => {
        if (!(err instanceof Rollback)) throw databaseError(err);
      });
    });
    const [source] = await asService((tx) => tx<ObjectRow[]>`select id, name, metadata, version, updated_at from storage.objects
                                                          where bucket_id = ${from.bucket} and name = ${from.name}`);
    if (!source) throw noSuchKey();
    if (from.bucket === to.bucket && from.name === to.name) {
      return jsonResponse(200, { message: "Successfully moved", Id: source.id, Key: to.name });
    }
    // The bytes are copied under the locks on both names, from the version the row names
    // then, so an upsert of the source meanwhile cannot leave the row on older bytes.
    let version: string | null = null;
    let old: string | null;
    try {
      old = await asService(async (tx) => {
        for (const key of [`storage/${from.bucket}/${from.name}`, `storage/${to.bucket}/${to.name}`].sort()) {
          await tx`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`;
        }
        const [row] = await tx<{ version: string | null }[]>`select version from storage.objects
                                                             where bucket_id = ${from.bucket} and name = ${from.name} for update`;
        if (!row) throw noSuchKey();
        version = await copyFile({ bucket: from.bucket, version: row.version }, to.bucket);
        // The server keeps the owner when the caller has none (the service role).
        await tx`update storage.objects set name = ${to.name}, bucket_id = ${to.bucket}, owner = coalesce(${owner}::uuid, owner),
                   owner_id = coalesce(${subOf(claims)}, owner_id), version = ${version}, updated_at = now(), last_accessed_at = now()
                 where bucket_id = ${from.bucket} and name = ${from.name}`;
        return row.version;
      });
    } catch (err) {
      if (version) await removeFile(fileOf(to.bucket, version));
      throw databaseError(err);
    }
    if (old && VERSION.test(old)) await removeFile(fileOf(from.bucket, old));
    return jsonResponse(200, { message: "Successfully moved", Id: source.id, Key: to.name });
  }

  /**
   * Copy, as the server does it: the source read as the caller (invisible is NoSuchKey),
   * the permission trial for the destination as the caller (x-upsert allows replacing),
   * then a new version file and the destination row written with the server's access
   * under a lock on its name; a replaced destination's file goes after the commit.
   */
  async function copy(claims: Claims, from: { bucket: string; name: string }, to: { bucket: string; name: string }, upsert: boolean,
    userMetadata: Record<string, unknown> | null, copyMetadata: boolean): Promise<Response> {
    const [source] = await asCaller(claims, (tx) => tx<(ObjectRow & { user_metadata: unknown })[]>`
      select id, name, metadata, version, updated_at, user_metadata from storage.objects where bucket_id = ${from.bucket} and name = ${from.name}`);
    if (!source) throw noSuchKey();
    // As on the server, the destination bucket's type and size limits apply to uploads only.
    await bucketOf(to.bucket);
    await trial(claims, to.bucket, to.name, upsert);
    const version = await copyFile({ bucket: from.bucket, version: source.version }, to.bucket);
    const owner = ownerOf(claims);
    // As the server: the source's own metadata unless copyMetadata is false, then x-metadata.
    const destinationUserMetadata = copyMetadata ? source.user_metadata ?? null : userMetadata;
    let result: { row: Record<string, unknown>; old: string | null };
    try {
      result = await asService(async (tx) => {
        await tx`select pg_advisory_xact_lock(hashtextextended(${`storage/${to.bucket}/${to.name}`}, 0))`;
        const [old] = await tx<{ version: string | null }[]>`select version from storage.objects where bucket_id = ${to.bucket} and name = ${to.name}`;
        if (old && !upsert) throw new StorageError(409, "KeyAlreadyExists", "Duplicate", "The resource already exists");
        const metadata = { ...(source.metadata ?? {}), lastModified: new Date().toISOString() };
        const [row] = await tx`
          insert into storage.objects (bucket_id, name, owner, owner_id, metadata, user_metadata, version)
          values (${to.bucket}, ${to.name}, ${owner}::uuid, ${subOf(claims)}, ${tx.json(metadata as postgres.JSONValue)},
                  ${tx.json(destinationUserMetadata as postgres.JSONValue)}, ${version})
          on conflict (bucket_id, name) do update set owner = excluded.owner, owner_id = excluded.owner_id, metadata = excluded.metadata,
            user_metadata = excluded.user_metadata, version = excluded.version, updated_at = now(), last_accessed_at = now()
          returning id, bucket_id, name, owner, owner_id, version, metadata, user_metadata, created_at, updated_at, last_accessed_at`;
        return { row, old: old?.version ?? null };
      });
    } catch (err) {
      await removeFile(fileOf(to.bucket, version));
      throw databaseError(err);
    }
    if (result.old && VERSION.test(result.old)) await removeFile(fileOf(to.bucket, result.old));
    return jsonResponse(200, { Id: result.row.id, Key: `${to.bucket}/${to.name}`, ...result.row, owner: result.row.owner ?? "" });
  }

  async function serveFile(bucket: string, row: ObjectRow, url: URL, extra: Record<string, string>): Promise<Response> {
    let file: Deno.FsFile;
    try {
      if (!row.version || !VERSION.test(row.version)) throw new Error("no version");
      file = await Deno.open(fileOf(bucket, row.version), { read: true });
    } catch {
      throw new StorageError(404, "NoSuchKey", "Not found", "The resource was not found");
    }
    const md = row.metadata ?? {};
    // As the server does: never serve HTML from storage.
    const mime = (md.mimetype ?? "application/octet-stream").includes("text/html") ? "text/plain" : md.mimetype ?? "application/octet-stream";
    const headers: Record<string, string> = {
      "Content-Type": mime, "Content-Length": String(md.size ?? (await file.stat()).size),
      "ETag": md.eTag ?? "", "Last-Modified": new Date(md.lastModified ?? row.updated_at).toUTCString(),
      "Cache-Control": md.cacheControl ?? "no-cache", "X-Robots-Tag": "none", "X-Content-Type-Options": "nosniff", ...extra,
    };
    const download = url.searchParams.get("download");
    if (download !== null) {
      headers["Content-Disposition"] = download
        ? `attachment; filename=${encodeURIComponent(download)}; filename*=UTF-8''${encodeURIComponent(download)}`
        : "attachment;";
    }
    return new Response(file.readable, { status: 200, headers });
  }

  async function sign(claims: Record<string, unknown>, seconds: number): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return await new SignJWT({ ...claims, iat: now, exp: now + seconds }).setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(opts.keys.jwtSecret));
  }

  /** Verifies a signed-URL token for `<bucket>/<path>` and a scope (the server's messages). */
  async function verifySigned(token: string | null, objectUrl: string, scope: "download" | "upload"): Promise<Claims> {
    if (!token) throw invalidRequest("querystring must have required property 'token'");
    let payload: Claims;
    try {
      payload = (await jwtVerify(token, await hmacKey(opts.keys.jwtSecret), { algorithms: ["HS256"] })).payload as Claims;
    } catch (err) {
      const message = err instanceof joseErrors.JWTExpired ? "\"exp\" claim timestamp check failed"
        : err instanceof Error ? err.message : "Invalid JWT";
      throw new StorageError(400, "InvalidJWT", "InvalidJWT", message);
    }
    const tokenScope = payload.scope ?? (payload.upsert === undefined ? "download" : "upload");
    if (tokenScope !== scope) throw new StorageError(400, "InvalidSignature", "InvalidSignature", `Token is not scoped for ${scope}`);
    if (payload.url !== objectUrl) throw new StorageError(400, "InvalidSignature", "InvalidSignature", "Invalid signature");
    return payload;
  }

  /** A JSON object body of at most MAX_JSON_BYTES. */
  async function jsonBody<T>(req: Request): Promise<Partial<T>> {
    const read = await readBody(req, { maxBodyBytes: MAX_JSON_BYTES, bodyTimeoutMs });
    if (!read.ok && read.reason === "too_large") {
      throw new StorageError(413, "EntityTooLarge", "Payload too large", "The object exceeded the maximum allowed size");
    }
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(read.ok && read.bytes ? read.bytes : new Uint8Array()));
    } catch {
      throw invalidRequest("body must be object");
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw invalidRequest("body must be object");
    return value as Partial<T>;
  }

  async function route(req: Request, url: URL, rest: string): Promise<Response> {
    const parts = rest.split("/").map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
    const method = req.method;
    /** The bucket and object name from parts[from] on; an impossible bucket is not found, an impossible name an invalid key. */
    const objectAt = (from: number, nameRequired = true) => {
      const bucket = parts[from] ?? "";
      const name = parts.slice(from + 1).join("/");
      if (!validBucket(bucket)) throw noSuchBucket();
      if (nameRequired && !validKey(name)) throw invalidKey(name);
      return { bucket, name };
    };

    // Buckets.
    if (parts[0] === "bucket" && (method === "GET" || method === "HEAD")) {
      const claims = await claimsOf(req, true);
      if (parts.length === 1 || parts[1] === "") {
        const rows = await asCaller(claims, (tx) => tx<Bucket[]>`select * from storage.buckets order by name`);
        return jsonResponse(200, rows.map((b) => ({ ...bucketJson(b), type: "STANDARD" })));
      }
      if (!validBucket(parts[1])) throw noSuchBucket();
      const [b] = await asCaller(claims, (tx) => tx<Bucket[]>`select * from storage.buckets where id = ${parts[1]}`);
      if (!b) throw noSuchBucket();
      return jsonResponse(200, bucketJson(b));
    }
    if (parts[0] !== "object" || ["info", "list-v2"].includes(parts[1])) {
      return new StorageError(501, "NotImplemented", "not_implemented",
        `/storage/v1/${parts.slice(0, 2).join("/")} is not served by the local stand-in (bucket writes, object info, list-v2, image transformations, S3 and resumable uploads need hosted Supabase or supabase start).`).responseAs(501);
    }
    // Move and copy: POST /object/move|copy {bucketId, sourceKey, destinationKey, destinationBucket?}.
    if ((parts[1] === "move" || parts[1] === "copy") && parts.length === 2 && method === "POST") {
      const claims = await claimsOf(req, true);
      const body = await jsonBody<{ bucketId: unknown; sourceKey: unknown; destinationKey: unknown; destinationBucket: unknown; copyMetadata: unknown }>(req);
      for (const field of ["bucketId", "sourceKey", "destinationKey"] as const) {
        if (typeof body[field] !== "string") throw invalidRequest(`body must have required property '${field}'`);
      }
      if (body.destinationBucket !== undefined && typeof body.destinationBucket !== "string") {
        throw invalidRequest("body/destinationBucket must be string");
      }
      const from = { bucket: body.bucketId as string, name: body.sourceKey as string };
      const to = { bucket: (body.destinationBucket as string | undefined) || from.bucket, name: body.destinationKey as string };
      for (const b of [from.bucket, to.bucket]) if (!validBucket(b)) throw noSuchBucket();
      for (const n of [from.name, to.name]) if (!validKey(n)) throw invalidKey(n);
      return parts[1] === "move"
        ? await move(claims, from, to)
        : await copy(claims, from, to, req.headers.get("x-upsert") === "true", userMetadataOf(req), body.copyMetadata !== false);
    }

    // Signed download: GET /object/sign/{bucket}/{path}?token=
    if (parts[1] === "sign" && (method === "GET" || method === "HEAD")) {
      const { bucket, name } = objectAt(2);
      const payload = await verifySigned(url.searchParams.get("token"), `${bucket}/${name}`, "download");
      const [row] = await asService((tx) => tx<ObjectRow[]>`select id, name, metadata, version, updated_at from storage.objects
                                                        where bucket_id = ${bucket} and name = ${name}`);
      if (!row) throw noSuchKey();
      return await serveFile(bucket, row, url, { Expires: new Date(Number(payload.exp) * 1000).toUTCString() });
    }
    // Signed URLs: POST /object/sign/{bucket}/{path} {expiresIn} and POST /object/sign/{bucket} {expiresIn, paths}.
    if (parts[1] === "sign" && method === "POST") {
      const claims = await claimsOf(req, true);
      const body = await jsonBody<{ expiresIn: unknown; paths: unknown }>(req);
      const seconds = body.expiresIn;
      if (typeof seconds !== "number" || !Number.isInteger(seconds) || seconds < 1 || seconds > 10 * 365 * 86400) {
        throw new StorageError(400, "InvalidParameter", "InvalidParameter", "Invalid Parameter expiresIn");
      }
      const single = parts.length > 3;
      const { bucket, name } = objectAt(2, single);
      const names = single ? [name] : body.paths;
      if (!Array.isArray(names) || names.length < 1 || names.length > 1000 || names.some((n) => typeof n !== "string")) {
        throw invalidRequest("body must have required property 'paths'");
      }
      const lookup = (names as string[]).filter(validKey);
      const visible = new Set((await asCaller(claims, (tx) => tx<{ name: string }[]>`
        select name from storage.objects where bucket_id = ${bucket} and name = any(${lookup}::text[])`)).map((r) => r.name));
      const signed = async (n: string) => `/object/sign/${bucket}/${n}?token=${await sign({ url: `${bucket}/${n}`, scope: "download" }, seconds)}`;
      if (single) {
        if (!visible.has(name)) throw noSuchKey();
        return jsonResponse(200, { signedURL: await signed(name) });
      }
      return jsonResponse(200, await Promise.all((names as string[]).map(async (n) => visible.has(n)
        ? { error: null, path: n, signedURL: await signed(n) }
        : { error: "Either the object does not exist or you do not have access to it", path: n, signedURL: null })));
    }
    // Signed upload URL: POST /object/upload/sign/{bucket}/{path}; its PUT ?token=.
    if (parts[1] === "upload" && parts[2] === "sign") {
      const { bucket, name } = objectAt(3);
      if (method === "POST") {
        const claims = await claimsOf(req, true);
        await req.body?.cancel().catch(() => {});
        const upsert = req.headers.get("x-upsert") === "true";
        const b = await bucketOf(bucket);
        await trial(claims, b.id, name, upsert);
        const owner = subOf(claims);
        const token = await sign({ ...(owner ? { owner } : {}), url: `${bucket}/${name}`, upsert, scope: "upload" }, UPLOAD_URL_SECONDS);
        return jsonResponse(200, { url: `/object/upload/sign/${bucket}/${name}?token=${token}`, token });
      }
      if (method === "PUT") {
        const payload = await verifySigned(url.searchParams.get("token"), `${bucket}/${name}`, "upload");
        const b = await bucketOf(bucket);
        // The token's owner and upsert decide; RLS was decided when it was issued.
        const as = { role: "service_role", ...(typeof payload.owner === "string" ? { sub: payload.owner } : {}) };
        await store(req, as, b, name, payload.upsert === true, false);
        return jsonResponse(200, { Key: `${bucket}/${name}` });
      }
    }
    // List: POST /object/list/{bucket}.
    if (parts[1] === "list" && method === "POST") {
      const claims = await claimsOf(req, true);
      const body = await jsonBody<{ prefix: unknown; limit: unknown; offset: unknown; search: unknown; sortBy: { column?: unknown; order?: unknown } }>(req);
      if (typeof body.prefix !== "string") throw invalidRequest("body must have required property 'prefix'");
      const { bucket } = objectAt(2, false);
      const search = typeof body.search === "string" ? body.search : "";
      if ((body.prefix && !validKey(body.prefix)) || (search && !validKey(search))) return jsonResponse(200, []);
      const prefix = body.prefix === "" || body.prefix.endsWith("/") ? body.prefix : `${body.prefix}/`;
      const whole = (v: unknown, fallback: number) => Number.isFinite(Number(v ?? fallback)) ? Math.trunc(Number(v ?? fallback)) : fallback;
      const limit = Math.min(Math.max(whole(body.limit, 100), 1), 1500);
      const offset = Math.max(whole(body.offset, 0), 0);
      const columns = ["name", "updated_at", "created_at", "last_accessed_at"];
      const column = columns.includes(String(body.sortBy?.column)) ? String(body.sortBy?.column) : "name";
      const desc = String(body.sortBy?.order ?? "asc").toLowerCase() === "desc";
      const rows = await asCaller(claims, (tx) => tx`
        with o as (
          select substr(name, ${prefix.length + 1}) as rel, id, updated_at, created_at, last_accessed_at, metadata
          from storage.objects
          where bucket_id = ${bucket} and starts_with(name, ${prefix})
            and starts_with(lower(substr(name, ${prefix.length + 1})), lower(${search}))
        ), items as (
          select distinct split_part(rel, '/', 1) as name, null::uuid as id, null::timestamptz as updated_at,
                 null::timestamptz as created_at, null::timestamptz as last_accessed_at, null::jsonb as metadata
          from o where strpos(rel, '/') > 0
          union all
          select rel, id, updated_at, created_at, last_accessed_at, metadata from o where strpos(rel, '/') = 0
        )
        select * from items
        order by
          -- By name, folders and files together; by a time, the folders (no times) first.
          case when ${column} <> 'name' then id is not null end,
          case when ${column} = 'name' and not ${desc} then lower(name) end,
          case when ${column} = 'name' and ${desc} then lower(name) end desc,
          case when not ${desc} then case ${column} when 'updated_at' then updated_at when 'created_at' then created_at
                                                    when 'last_accessed_at' then last_accessed_at end end,
          case when ${desc} then case ${column} when 'updated_at' then updated_at when 'created_at' then created_at
                                                when 'last_accessed_at' then last_accessed_at end end desc,
          name
        limit ${limit} offset ${offset}`);
      return jsonResponse(200, rows);
    }
    // Download: GET /object/{bucket}/{path}, /object/authenticated/…, /object/public/…
    if (method === "GET" || method === "HEAD") {
      const mode = parts[1] === "authenticated" ? "authenticated" : parts[1] === "public" ? "public" : "object";
      const { bucket, name } = objectAt(mode === "object" ? 1 : 2);
      const caller = mode === "public" ? { claims: { role: "anon" }, authenticated: false } : await callerOf(req, mode === "authenticated");
      const b = await bucketOf(bucket);
      if (mode === "public" && !b.public) throw noSuchBucket();
      if (mode === "object" && !b.public && !caller.authenticated) throw noSuchBucket();
      const read = (tx: postgres.TransactionSql) => tx<ObjectRow[]>`select id, name, metadata, version, updated_at from storage.objects
                                                                  where bucket_id = ${bucket} and name = ${name}`;
      const [row] = b.public ? await asService(read) : await asCaller(caller.claims, read);
      if (!row) throw noSuchKey();
      return await serveFile(bucket, row, url, {});
    }
    // Upload and update: POST|PUT /object/{bucket}/{path}.
    if ((method === "POST" || method === "PUT") && parts.length >= 3) {
      const claims = await claimsOf(req, true);
      const { bucket, name } = objectAt(1);
      const b = await bucketOf(bucket);
      const id = await store(req, claims, b, name, method === "PUT" || req.headers.get("x-upsert") === "true");
      return jsonResponse(200, { Id: id, Key: `${bucket}/${name}` });
    }
    // Remove: DELETE /object/{bucket} {prefixes}.
    if (method === "DELETE" && parts.length === 2) {
      const claims = await claimsOf(req, true);
      const body = await jsonBody<{ prefixes: unknown }>(req);
      const { bucket } = objectAt(1, false);
      if (!Array.isArray(body.prefixes) || body.prefixes.length === 0 || body.prefixes.some((p) => typeof p !== "string")) {
        throw invalidRequest("body must have required property 'prefixes'");
      }
      const names = (body.prefixes as string[]).filter(validKey);
      const deleted = await asCaller(claims, (tx) => tx`
        delete from storage.objects where bucket_id = ${bucket} and name = any(${names}::text[])
        returning name, bucket_id, owner, owner_id, version, id, updated_at, created_at, last_accessed_at, metadata, user_metadata`);
      for (const r of deleted) if (typeof r.version === "string" && VERSION.test(r.version)) await removeFile(fileOf(bucket, r.version));
      return jsonResponse(200, deleted.map((r) => ({ ...r, owner: r.owner ?? "" })));
    }
    return jsonResponse(404, { statusCode: "404", code: "NotFound", error: "Not Found", message: `Route ${method}:/storage/v1/${rest} not found` });
  }

  return async function serveStorage(req, url, rest) {
    if (req.method === "OPTIONS") return new Response(null, { status: 200 });
    try {
      return await route(req, url, rest);
    } catch (err) {
      await req.body?.cancel().catch(() => {});
      if (err instanceof StorageError) return err.response();
      const mapped = databaseError(err);
      if (mapped instanceof StorageError) return mapped.response();
      // Anything else is the stand-in's fault: logged, and answered as the server answers it.
      console.error(JSON.stringify({ level: "error", msg: "storage error", path: `/storage/v1/${rest}`, error: err instanceof Error ? err.stack ?? err.message : String(err) }));
      return internalError().response();
    }
  };
}

/** The object owner the server records: the token's sub when it is a user id (UUID). */
function ownerOf(claims: Claims): string | null {
  return typeof claims.sub === "string" && UUID.test(claims.sub) ? claims.sub : null;
}
/** The token's sub, whatever it is (owner_id). */
function subOf(claims: Claims): string | null {
  return typeof claims.sub === "string" && claims.sub ? claims.sub : null;
}
/** The uploader's own metadata: the x-metadata header, base64 JSON (ignored when it does not parse). */
function userMetadataOf(req: Request): Record<string, unknown> | null {
  const header = req.headers.get("x-metadata");
  if (!header) return null;
  try {
    const value = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(header), (c) => c.charCodeAt(0))));
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

class Rollback extends Error {}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle, from);
}

/** The parts of a multipart/form-data body (RFC 7578): name, filename (null for a field), type, bytes. */
export function parseMultipart(bytes: Uint8Array, boundary: string): { name: string; filename: string | null; type: string; data: Uint8Array }[] {
  const enc = new TextEncoder();
  const delimiter = enc.encode(`--${boundary}`);
  const parts: { name: string; filename: string | null; type: string; data: Uint8Array }[] = [];
  let at = indexOf(bytes, delimiter, 0);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (bytes[start] === 0x2d && bytes[start + 1] === 0x2d) break; // the closing delimiter
    const headEnd = indexOf(bytes, enc.encode("\r\n\r\n"), start);
    if (headEnd < 0) break;
    const next = indexOf(bytes, enc.encode(`\r\n--${boundary}`), headEnd + 4);
    if (next < 0) break;
    const head = new TextDecoder().decode(bytes.subarray(start, headEnd));
    const disposition = /content-disposition:([^\r\n]*)/i.exec(head)?.[1] ?? "";
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? "";
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
    const type = /content-type:\s*([^\r\n]*)/i.exec(head)?.[1]?.trim() ?? "";
    parts.push({ name, filename, type, data: bytes.subarray(headEnd + 4, next) });
    at = next + 2;
  }
  return parts;
}

function bucketJson(b: Bucket) {
  return {
    id: b.id, name: b.name, owner: b.owner ?? "", public: b.public,
    file_size_limit: b.file_size_limit === null ? null : Number(b.file_size_limit),
    allowed_mime_types: b.allowed_mime_types, created_at: b.created_at, updated_at: b.updated_at,
  };
}
