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
 * - Bytes live under `dir` (the state directory's storage/), one file per object version;
 *   the row is written after the file, in a transaction whose failure removes the file, and
 *   a replaced or deleted object's file is removed only after the commit, so an object is
 *   never visible in one without the other.
 *
 * Served: bucket get and list; upload (POST, x-upsert) and update (PUT), raw or multipart;
 * download (/object/, /object/authenticated/, /object/public/); list; remove; signed URLs
 * (one or many) and their GET; signed upload URLs and their PUT. Not served (501): bucket
 * writes, move, copy, object info, list-v2, image transformations (/render/image), the S3
 * protocol and resumable (TUS) uploads.
 */
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { createHash } from "node:crypto";
import type postgres from "postgres";
import { bearerToken, hmacKey, type Keys, verify } from "./keys.ts";
import { jsonResponse } from "./errors.ts";

/** What serving /storage/v1 needs. */
export interface StorageOptions {
  keys: Keys;
  /** postgres.js pool connected as `authenticator`. */
  sql: postgres.Sql;
  /** Where object bytes are kept. */
  dir: string;
  /** The global upload limit (the Supabase CLI's default: 50 MiB). */
  maxFileBytes?: number;
}

/** The CLI's default global upload limit (config.toml [storage] file_size_limit = "50MiB"). */
export const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;
/** How long a signed upload URL is valid (hosted Supabase: two hours). */
export const UPLOAD_URL_SECONDS = 2 * 60 * 60;
/** The server's object key rule (src/storage/limits.ts). */
const KEY = /^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$/;
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
const invalidRequest = (message: string) => new StorageError(400, "InvalidRequest", "Error", message);

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
  const [type, subtype] = mime.toLowerCase().split("/");
  return allowed.some((a) => {
    const [t, s] = a.toLowerCase().split("/");
    return t === type && (s === "*" || s === subtype);
  });
}

/** Builds the `/storage/v1` route; `rest` is the path after `/storage/v1/`. */
export function createStorage(opts: StorageOptions): (req: Request, url: URL, rest: string) => Promise<Response> {
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
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

  async function claimsOf(req: Request, required: boolean): Promise<Claims> {
    const token = bearerToken(opts.keys, req);
    if (!token) {
      if (required) throw invalidRequest("headers must have required property 'authorization'");
      return { role: "anon" };
    }
    const checked = await verify(opts.keys, token);
    if (!checked.ok) {
      if (!required) return { role: "anon" };
      throw new StorageError(403, "AccessDenied", "Unauthorized", checked.problem === "expired" ? "\"exp\" claim timestamp check failed" : checked.message);
    }
    return checked.claims as Claims;
  }

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
      const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
      const bytes = boundary ? await readAll(req.body, limit + 64 * 1024) : null;
      if (bytes === "too_large") throw tooLarge();
      const form = bytes ? parseMultipart(bytes, boundary![1] ?? boundary![2]) : [];
      const file = form.find((p) => p.filename !== null);
      if (!file) throw invalidRequest("No content provided");
      const field = form.find((p) => p.name === "contentType" && p.filename === null);
      const typeOf = field ? new TextDecoder().decode(field.data) : file.type || "text/plain";
      mimetype = typeOf.toLowerCase().split(";")[0].trim();
      const cc = form.find((p) => p.name === "cacheControl" && p.filename === null);
      cacheControl = cc ? `max-age=${new TextDecoder().decode(cc.data)}` : "no-cache";
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
    } catch (err) {
      file.close();
      await removeFile(path);
      throw err;
    }
    file.close();
    return { version, size, mimetype, cacheControl, eTag: `"${md5.digest("hex")}"` };
  }

  /**
   * Stores an upload: the file first, then the row as `claims` (RLS) in a transaction; a
   * failure removes the new file, and the replaced version's file goes after the commit.
   */
  async function store(req: Request, claims: Claims, bucket: Bucket, name: string, upsert: boolean, owner: string | null): Promise<string> {
    if (!KEY.test(name)) throw new StorageError(400, "InvalidKey", "InvalidKey", `Invalid key: ${name}`);
    const got = await receive(req, bucket);
    const metadata = {
      eTag: got.eTag, size: got.size, mimetype: got.mimetype, cacheControl: got.cacheControl,
      lastModified: new Date().toISOString(), contentLength: got.size, httpStatusCode: 200,
    };
    let row: { id: string; old_version: string | null };
    try {
      [row] = await asCaller(claims, (tx) => upsert
        ? tx<{ id: string; old_version: string | null }[]>`
            with old as (select version from storage.objects where bucket_id = ${bucket.id} and name = ${name})
            insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version)
            values (${bucket.id}, ${name}, ${owner}::uuid, ${owner}, ${tx.json(metadata)}, ${got.version})
            on conflict (bucket_id, name) do update set owner = excluded.owner, owner_id = excluded.owner_id,
              metadata = excluded.metadata, version = excluded.version, updated_at = now(), last_accessed_at = now()
            returning id, (select version from old) as old_version`
        : tx<{ id: string; old_version: string | null }[]>`
            insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version)
            values (${bucket.id}, ${name}, ${owner}::uuid, ${owner}, ${tx.json(metadata)}, ${got.version})
            returning id, null::text as old_version`);
    } catch (err) {
      await removeFile(fileOf(bucket.id, got.version));
      throw databaseError(err);
    }
    if (row.old_version) await removeFile(fileOf(bucket.id, row.old_version));
    return row.id;
  }

  async function serveFile(bucket: string, row: ObjectRow, url: URL, extra: Record<string, string>): Promise<Response> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(fileOf(bucket, row.version ?? ""), { read: true });
    } catch {
      throw new StorageError(404, "NoSuchKey", "Not found", "The resource was not found");
    }
    const md = row.metadata ?? {};
    const mime = md.mimetype === "text/html" ? "text/plain" : md.mimetype ?? "application/octet-stream";
    const headers: Record<string, string> = {
      "Content-Type": mime, "Content-Length": String(md.size ?? (await file.stat()).size),
      "ETag": md.eTag ?? "", "Last-Modified": new Date(md.lastModified ?? row.updated_at).toUTCString(),
      "Cache-Control": md.cacheControl ?? "no-cache", "X-Robots-Tag": "none", ...extra,
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

  async function jsonBody<T>(req: Request): Promise<T> {
    try {
      return await req.json() as T;
    } catch {
      throw invalidRequest("body must be object");
    }
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
    const objectAt = (from: number) => ({ bucket: parts[from] ?? "", name: parts.slice(from + 1).join("/") });

    // Buckets.
    if (parts[0] === "bucket" && method === "GET") {
      const claims = await claimsOf(req, true);
      if (parts.length === 1 || parts[1] === "") {
        const rows = await asCaller(claims, (tx) => tx<Bucket[]>`select * from storage.buckets order by name`);
        return jsonResponse(200, rows.map((b) => ({ ...bucketJson(b), type: "STANDARD" })));
      }
      const [b] = await asCaller(claims, (tx) => tx<Bucket[]>`select * from storage.buckets where id = ${parts[1]}`);
      if (!b) throw noSuchBucket();
      return jsonResponse(200, bucketJson(b));
    }
    if (parts[0] !== "object") {
      return new StorageError(501, "NotImplemented", "not_implemented",
        `/storage/v1/${parts[0]} is not served by the local stand-in (bucket writes, image transformations, S3 and resumable uploads need hosted Supabase or supabase start).`).responseAs(501);
    }

    // Signed download: GET /object/sign/{bucket}/{path}?token=
    if (parts[1] === "sign" && method === "GET") {
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
      const body = await jsonBody<{ expiresIn?: unknown; paths?: unknown }>(req);
      const seconds = body.expiresIn;
      if (typeof seconds !== "number" || !Number.isInteger(seconds) || seconds < 1) {
        throw new StorageError(400, "InvalidParameter", "InvalidParameter", "Invalid Parameter expiresIn");
      }
      const { bucket, name } = objectAt(2);
      const names = parts.length > 3 ? [name] : body.paths;
      if (!Array.isArray(names) || names.length < 1 || names.length > 1000 || names.some((n) => typeof n !== "string")) {
        throw invalidRequest("body must have required property 'paths'");
      }
      const visible = new Set((await asCaller(claims, (tx) => tx<{ name: string }[]>`
        select name from storage.objects where bucket_id = ${bucket} and name = any(${names as string[]}::text[])`)).map((r) => r.name));
      const signed = async (n: string) => `/object/sign/${bucket}/${n}?token=${await sign({ url: `${bucket}/${n}`, scope: "download" }, seconds)}`;
      if (parts.length > 3) {
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
        if (!KEY.test(name)) throw new StorageError(400, "InvalidKey", "InvalidKey", `Invalid key: ${name}`);
        // The server's permission trial: the insert (or upsert) the caller could make, rolled back.
        const owner = typeof claims.sub === "string" && UUID.test(claims.sub) ? claims.sub : null;
        await asCaller(claims, async (tx) => {
          await tx.savepoint(async (sp) => {
            await (upsert
              ? sp`insert into storage.objects (bucket_id, name, owner) values (${b.id}, ${name}, ${owner}::uuid)
                   on conflict (bucket_id, name) do update set updated_at = now()`
              : sp`insert into storage.objects (bucket_id, name, owner) values (${b.id}, ${name}, ${owner}::uuid)`);
            throw new Rollback();
          }).catch((err) => {
            if (!(err instanceof Rollback)) throw databaseError(err);
          });
        });
        const token = await sign({ ...(owner ? { owner } : {}), url: `${bucket}/${name}`, upsert, scope: "upload" }, UPLOAD_URL_SECONDS);
        return jsonResponse(200, { url: `/object/upload/sign/${bucket}/${name}?token=${token}`, token });
      }
      if (method === "PUT") {
        const payload = await verifySigned(url.searchParams.get("token"), `${bucket}/${name}`, "upload");
        const b = await bucketOf(bucket);
        const owner = typeof payload.owner === "string" ? payload.owner : null;
        await store(req, { role: "service_role" }, b, name, payload.upsert === true, owner);
        return jsonResponse(200, { Key: `${bucket}/${name}` });
      }
    }
    // List: POST /object/list/{bucket}.
    if (parts[1] === "list" && method === "POST") {
      const claims = await claimsOf(req, true);
      const body = await jsonBody<{ prefix?: unknown; limit?: unknown; offset?: unknown; search?: unknown; sortBy?: { column?: unknown; order?: unknown } }>(req);
      if (typeof body.prefix !== "string") throw invalidRequest("body must have required property 'prefix'");
      const prefix = body.prefix === "" || body.prefix.endsWith("/") ? body.prefix : `${body.prefix}/`;
      const limit = Math.min(Math.max(Number(body.limit ?? 100) || 100, 1), 1500);
      const offset = Math.max(Number(body.offset ?? 0) || 0, 0);
      const search = typeof body.search === "string" ? body.search : "";
      const desc = String(body.sortBy?.order ?? "asc").toLowerCase() === "desc";
      const rows = await asCaller(claims, (tx) => tx`
        with o as (
          select substr(name, ${prefix.length + 1}) as rel, id, updated_at, created_at, last_accessed_at, metadata
          from storage.objects
          where bucket_id = ${parts[2] ?? ""} and starts_with(name, ${prefix})
            and starts_with(lower(substr(name, ${prefix.length + 1})), lower(${search}))
        ), items as (
          select distinct split_part(rel, '/', 1) as name, null::uuid as id, null::timestamptz as updated_at,
                 null::timestamptz as created_at, null::timestamptz as last_accessed_at, null::jsonb as metadata
          from o where strpos(rel, '/') > 0
          union all
          select rel, id, updated_at, created_at, last_accessed_at, metadata from o where strpos(rel, '/') = 0
        )
        select * from items
        order by case when ${desc} then lower(name) end desc, case when not ${desc} then lower(name) end, name
        limit ${limit} offset ${offset}`);
      return jsonResponse(200, rows);
    }
    // Download: GET /object/{bucket}/{path}, /object/authenticated/…, /object/public/…
    if (method === "GET" || method === "HEAD") {
      const mode = parts[1] === "authenticated" ? "authenticated" : parts[1] === "public" ? "public" : "object";
      const { bucket, name } = objectAt(mode === "object" ? 1 : 2);
      const claims = mode === "public" ? { role: "anon" } : await claimsOf(req, mode === "authenticated");
      const b = await bucketOf(bucket);
      if (mode === "public" && !b.public) throw noSuchBucket();
      if (mode === "object" && !b.public && claims.role === "anon" && !bearerToken(opts.keys, req)) throw noSuchBucket();
      const read = (tx: postgres.TransactionSql) => tx<ObjectRow[]>`select id, name, metadata, version, updated_at from storage.objects
                                                                  where bucket_id = ${bucket} and name = ${name}`;
      const [row] = b.public ? await asService(read) : await asCaller(claims, read);
      if (!row) throw noSuchKey();
      return await serveFile(bucket, row, url, {});
    }
    // Upload and update: POST|PUT /object/{bucket}/{path}.
    if ((method === "POST" || method === "PUT") && parts.length >= 3) {
      const claims = await claimsOf(req, true);
      const { bucket, name } = objectAt(1);
      const b = await bucketOf(bucket);
      const owner = typeof claims.sub === "string" && UUID.test(claims.sub) ? claims.sub : null;
      const id = await store(req, claims, b, name, method === "PUT" || req.headers.get("x-upsert") === "true", owner);
      return jsonResponse(200, { Id: id, Key: `${bucket}/${name}` });
    }
    // Remove: DELETE /object/{bucket} {prefixes}.
    if (method === "DELETE" && parts.length === 2) {
      const claims = await claimsOf(req, true);
      const body = await jsonBody<{ prefixes?: unknown }>(req);
      if (!Array.isArray(body.prefixes) || body.prefixes.length === 0 || body.prefixes.some((p) => typeof p !== "string")) {
        throw invalidRequest("body must have required property 'prefixes'");
      }
      const deleted = await asCaller(claims, (tx) => tx`
        delete from storage.objects where bucket_id = ${parts[1]} and name = any(${body.prefixes as string[]}::text[])
        returning name, bucket_id, owner, owner_id, version, id, updated_at, created_at, last_accessed_at, metadata, user_metadata`);
      for (const r of deleted) if (r.version) await removeFile(fileOf(parts[1], r.version as string));
      return jsonResponse(200, deleted.map((r) => ({ ...r, owner: r.owner ?? "" })));
    }
    if (parts[1] === "move" || parts[1] === "copy" || parts[1] === "info" || parts[1] === "list-v2") {
      return new StorageError(501, "NotImplemented", "not_implemented",
        `/storage/v1/object/${parts[1]} is not served by the local stand-in; it needs hosted Supabase or supabase start.`).responseAs(501);
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
      throw err;
    }
  };
}

class Rollback extends Error {}

/** A body read whole, or "too_large" past max bytes. */
async function readAll(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array | "too_large"> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (body) {
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > max) return "too_large";
      chunks.push(chunk);
    }
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
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
