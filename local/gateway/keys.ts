/**
 * API keys and JWTs as Supabase's API gateway handles them: the new-style
 * `sb_publishable_…` / `sb_secret_…` keys stand for the anon / service_role JWTs, and a
 * request's effective token is its Authorization bearer, or else its `apikey`.
 */
import { errors, jwtVerify, type JWTPayload } from "jose";

/** The local keys: new-style key strings and the JWTs they map to. */
export interface Keys {
  jwtSecret: string;
  anonKey: string;
  serviceRoleKey: string;
  publishableKey: string;
  secretKey: string;
}

/** Maps a new-style key to its JWT; any other value is returned unchanged. */
export function mapApiKey(keys: Keys, key: string): string {
  if (key === keys.publishableKey) return keys.anonKey;
  if (key === keys.secretKey) return keys.serviceRoleKey;
  return key;
}

/**
 * The bearer token the request carries, as the gateway forwards it: the Authorization
 * bearer unless it is a new-style key, else the (mapped) `apikey` header or query param.
 */
export function effectiveToken(keys: Keys, req: Request, url: URL): string | null {
  const auth = req.headers.get("authorization");
  const bearer = auth ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] ?? null : null;
  if (bearer) return mapApiKey(keys, bearer);
  const apikey = req.headers.get("apikey") ?? url.searchParams.get("apikey");
  return apikey ? mapApiKey(keys, apikey) : null;
}

const hmacKeys = new Map<string, Promise<CryptoKey>>();

/** The secret as an HMAC key, imported once (importing per request costs more than verifying). */
export function hmacKey(secret: string): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    hmacKeys.set(secret, key);
  }
  return key;
}

/** Why a token was refused. */
export type TokenProblem = "missing" | "expired" | "invalid";

/** Verifies an HS256 token signed with the local secret. */
export async function verify(
  keys: Keys,
  token: string | null,
): Promise<{ ok: true; claims: JWTPayload } | { ok: false; problem: TokenProblem; message: string }> {
  if (!token) return { ok: false, problem: "missing", message: "Missing authorization header" };
  try {
    const { payload } = await jwtVerify(token, await hmacKey(keys.jwtSecret), { algorithms: ["HS256"] });
    return { ok: true, claims: payload };
  } catch (err) {
    if (err instanceof errors.JWTExpired) return { ok: false, problem: "expired", message: "JWT expired" };
    return { ok: false, problem: "invalid", message: err instanceof Error ? err.message : "Invalid JWT" };
  }
}
