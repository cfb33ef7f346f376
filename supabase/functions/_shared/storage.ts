/**
 * The functions' side of Supabase Storage (issue 12): calls to the Storage API at
 * SUPABASE_URL/storage/v1 with the caller's own token, so that the storage RLS policies
 * decide as they do for the app (the service role's token bypasses them), and signed upload
 * tokens with a short life.
 *
 * Why the function signs upload tokens itself: the Storage API's signed upload URLs live
 * for a fixed two hours (the server's UPLOAD_SIGNED_URL_EXPIRATION_TIME, not a request
 * parameter), and the seed asks for ten minutes. The token is the one the server issues and
 * verifies (HS256 with the project's JWT secret; claims owner, url, upsert, scope "upload",
 * iat, exp), so `uploadToSignedUrl` in supabase-js takes it unchanged. This needs the
 * function secret SUPABASE_JWT_SECRET (the legacy JWT secret; docs/media.md).
 */
import { SignJWT } from "jose";
import { createHash } from "node:crypto";
import { requireEnv } from "./env.ts";
import { HttpError } from "./http.ts";

/** The bucket of session media. */
export const MEDIA_BUCKET = "session-media";
/** Life of the signed URLs the media function hands out (the seed: ten minutes). */
export const SIGNED_URL_SECONDS = 600;
/** Time allowed for one Storage API call other than a download. */
export const STORAGE_TIMEOUT_MS = 10_000;

/** The Storage API's base URL. */
export function storageUrl(): string {
  return `${requireEnv("SUPABASE_URL").replace(/\/+$/, "")}/storage/v1`;
}

/** A Storage API failure as the function answers it: 502, with the server's message. */
export class StorageCallError extends HttpError {
  constructor(readonly storageStatus: number, readonly storageCode: string, message: string) {
    super(502, "Bad Gateway", `Storage answered ${storageStatus}${storageCode ? ` ${storageCode}` : ""}: ${message}`);
  }
}

/** Calls the Storage API with a bearer token; throws StorageCallError unless the answer is 2xx. */
export async function storageFetch(token: string, path: string, init: RequestInit = {}, timeoutMs = STORAGE_TIMEOUT_MS): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${storageUrl()}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, ...(init.body ? { "Content-Type": "application/json" } : {}), ...init.headers },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new StorageCallError(0, "", err instanceof Error ? err.message : String(err));
  }
  if (res.ok) return res;
  // The server's error body: {statusCode, code, error, message}, its real status in statusCode.
  const body = await res.json().catch(() => ({})) as { statusCode?: string; code?: string; message?: string };
  throw new StorageCallError(Number(body.statusCode ?? res.status), body.code ?? "", body.message ?? res.statusText);
}

/** Signs an upload token for `<bucket>/<path>` valid `seconds`, as the Storage API signs one. */
export async function signUploadToken(bucket: string, path: string, owner: string, seconds = SIGNED_URL_SECONDS, now = Date.now()): Promise<{ token: string; expiresAt: Date }> {
  const iat = Math.floor(now / 1000);
  const token = await new SignJWT({ owner, url: `${bucket}/${path}`, upsert: false, scope: "upload" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(iat)
    .setExpirationTime(iat + seconds)
    .sign(new TextEncoder().encode(requireEnv("SUPABASE_JWT_SECRET")));
  return { token, expiresAt: new Date((iat + seconds) * 1000) };
}

/** The absolute URL a client PUTs the bytes to (storage-js's uploadToSignedUrl builds the same). */
export function signedUploadUrl(bucket: string, path: string, token: string): string {
  return `${storageUrl()}/object/upload/sign/${bucket}/${encodeObjectPath(path)}?token=${token}`;
}

/** An object path with each segment percent-encoded. */
export function encodeObjectPath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/**
 * Signed download URLs for paths, as the caller (RLS decides): one entry per path, the
 * absolute URL or null when the object is missing or not the caller's to read.
 */
export async function signedDownloadUrls(token: string, bucket: string, paths: string[], seconds = SIGNED_URL_SECONDS): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  if (paths.length === 0) return out;
  const res = await storageFetch(token, `/object/sign/${bucket}`, {
    method: "POST",
    body: JSON.stringify({ expiresIn: seconds, paths }),
  });
  const rows = await res.json() as { path: string; signedURL: string | null; error: string | null }[];
  for (const r of rows) out.set(r.path, r.signedURL ? `${storageUrl()}${r.signedURL}` : null);
  return out;
}

/**
 * The SHA-256 and size of an object's bytes, read as the caller (RLS decides) and hashed as
 * they stream, so a large recording is never held in memory, with the ETag of the version
 * read. Null when the object is not there (or not the caller's to read).
 */
export async function objectDigest(token: string, bucket: string, path: string, timeoutMs = 120_000): Promise<{ sha256: string; bytes: number; etag: string | null } | null> {
  let res: Response;
  try {
    res = await storageFetch(token, `/object/authenticated/${bucket}/${encodeObjectPath(path)}`, {}, timeoutMs);
  } catch (err) {
    if (err instanceof StorageCallError && err.storageStatus === 404) return null;
    throw err;
  }
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    for await (const chunk of res.body!) {
      hash.update(chunk);
      bytes += chunk.byteLength;
    }
  } catch (err) {
    throw new StorageCallError(0, "", `the download broke off: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { sha256: hash.digest("hex"), bytes, etag: res.headers.get("etag") };
}

/** Removes objects through the Storage API (never by SQL); the names it removed. */
export async function removeObjects(token: string, bucket: string, paths: string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const res = await storageFetch(token, `/object/${bucket}`, { method: "DELETE", body: JSON.stringify({ prefixes: paths }) });
  return (await res.json() as { name: string }[]).map((o) => o.name);
}

/**
 * A client's file name as the last segment of a key: refused (null) when it names a folder
 * or a parent (`/`, `\`, `.`, `..`) or holds control characters; otherwise every character
 * outside A-Z a-z 0-9 . _ - becomes `_`, leading dots, dashes and underscores go, and a name
 * longer than 100 characters keeps its extension. Null when nothing is left.
 */
export function safeBasename(filename: string): string | null {
  // deno-lint-ignore no-control-regex
  if (/[/\\\u0000-\u001f\u007f]/.test(filename) || filename === "." || filename === "..") return null;
  let name = filename.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._-]+/, "");
  if (name.length > 100) {
    const dot = name.lastIndexOf(".");
    const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : "";
    name = name.slice(0, 100 - ext.length) + ext;
  }
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name) ? name : null;
}
