/**
 * The caller's identity: verifies and decodes the JWT in the Authorization header with
 * `jose`. HS256 with SUPABASE_JWT_SECRET when it is set (the local stack sets it), else
 * the project's published signing keys (JWKS at SUPABASE_URL/auth/v1/.well-known/jwks.json).
 *
 * Beyond the signature, a token must carry what GoTrue and Supabase's API keys carry, or it
 * is refused with 401 (never 403 or 422: the token, not the request, is wrong):
 * - `exp` (a token that never expires is refused) and a `role`;
 * - `iss`: `${SUPABASE_URL}/auth/v1` (GoTrue's issuer; also what our coach_ingest tokens
 *   carry), or for the anon and service_role API keys "supabase" (hosted) or "supabase-demo"
 *   (the CLI's local keys). The local gateway applies the same rules (local/gateway/keys.ts);
 * - role `authenticated`: `aud` "authenticated" and a UUID `sub`, as GoTrue issues them.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import { HttpError } from "./http.ts";
import { optionalEnv, requireEnv } from "./env.ts";
import { noteLog } from "./log.ts";

/** Claims of a Supabase access token (user, anon, service_role or a custom role). */
export interface Claims extends JWTPayload {
  role: string;
  sub?: string;
  email?: string;
  [claim: string]: unknown;
}

/** The bearer token of the request, or null. */
export function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1] : null;
}

let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
let hmac: { secret: string; key: Promise<CryptoKey> } | undefined;

/** The HS256 secret as a CryptoKey, imported once per secret rather than per request. */
function hmacKey(secret: string): Promise<CryptoKey> {
  if (hmac?.secret !== secret) {
    hmac = {
      secret,
      key: crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]),
    };
  }
  return hmac.key;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Issuers of Supabase's API keys (hosted projects, the CLI's local stack), for the roles they carry. */
export const API_KEY_ISSUERS = ["supabase", "supabase-demo"];
const API_KEY_ROLES = ["anon", "service_role"];

/** GoTrue's issuer for this project: SUPABASE_URL + /auth/v1. */
export function authIssuer(): string {
  return `${requireEnv("SUPABASE_URL").replace(/\/+$/, "")}/auth/v1`;
}

function unauthorized(detail: string): HttpError {
  return new HttpError(401, "Unauthorized", detail);
}

/** Checks the claims a verified signature does not: role, iss, and for users aud and sub. */
function checkClaims(payload: JWTPayload): Claims {
  const role = payload.role;
  if (typeof role !== "string" || role === "") throw unauthorized("The token has no role claim.");
  const issuers = API_KEY_ROLES.includes(role) ? [authIssuer(), ...API_KEY_ISSUERS] : [authIssuer()];
  if (typeof payload.iss !== "string" || !issuers.includes(payload.iss)) {
    throw unauthorized(`The token's issuer (iss) must be ${issuers.map((i) => `"${i}"`).join(" or ")}.`);
  }
  if (role === "authenticated") {
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!aud.includes("authenticated")) throw unauthorized('A user\'s token must have the audience (aud) "authenticated".');
    if (typeof payload.sub !== "string" || !UUID.test(payload.sub)) throw unauthorized("A user's token must have a UUID subject (sub).");
  }
  return payload as Claims;
}

/** Verifies a token's signature, expiry and claims; throws a 401 HttpError when it is not valid. */
export async function verifyToken(token: string): Promise<Claims> {
  let payload: JWTPayload;
  try {
    const secret = optionalEnv("SUPABASE_JWT_SECRET");
    const options = { requiredClaims: ["exp"] };
    ({ payload } = secret
      ? await jwtVerify(token, await hmacKey(secret), { ...options, algorithms: ["HS256"] })
      : await jwtVerify(token, jwks ??= createRemoteJWKSet(new URL("/auth/v1/.well-known/jwks.json", requireEnv("SUPABASE_URL"))), options));
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw unauthorized("The token has expired.");
    if (err instanceof errors.JWTClaimValidationFailed && err.claim === "exp") throw unauthorized("The token has no expiry (exp).");
    throw unauthorized("The token is not a valid JWT for this project.");
  }
  return checkClaims(payload);
}

/** The verified claims of the caller; 401 when the Authorization header is missing or invalid. */
export async function authenticate(req: Request): Promise<Claims> {
  const token = bearerToken(req);
  if (!token) throw unauthorized("Missing Authorization: Bearer <token> header.");
  const claims = await verifyToken(token);
  noteLog(req, { role: claims.role, ...(typeof claims.sub === "string" ? { user_id: claims.sub } : {}) });
  return claims;
}

/** True for a signed-in user's token (role authenticated with a UUID subject). */
export function isUser(claims: Claims): claims is Claims & { sub: string } {
  return claims.role === "authenticated" && typeof claims.sub === "string" && UUID.test(claims.sub);
}
