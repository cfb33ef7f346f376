/**
 * The caller's identity: verifies and decodes the JWT in the Authorization header with
 * `jose`, by the algorithm in its header, as a project with asymmetric signing keys does:
 * - HS256: the legacy secret, SUPABASE_JWT_SECRET (the anon and service_role keys, and
 *   user tokens of projects that still sign with the secret);
 * - anything else: the issuer's published keys: Clerk's (CLERK_ISSUER, its
 *   /.well-known/jwks.json) when the token names that issuer, else the project's
 *   (SUPABASE_URL/auth/v1/.well-known/jwks.json). jose caches a JWKS and refetches it
 *   when a token names a key id it has not seen (at most every 30 s).
 *
 * Beyond the signature, a token must carry what GoTrue and Supabase's API keys carry, or it
 * is refused with 401 (never 403 or 422: the token, not the request, is wrong):
 * - `exp` (a token that never expires is refused) and a `role`;
 * - `iss`: `${SUPABASE_URL}/auth/v1` (GoTrue's issuer; also what our coach_ingest tokens
 *   carry), or for the anon and service_role API keys "supabase" (hosted) or "supabase-demo"
 *   (the CLI's local keys). The local gateway applies the same rules (local/gateway/keys.ts);
 * - role `authenticated`: `aud` "authenticated" and a UUID `sub`, as GoTrue issues them.
 * A Clerk token must carry role `authenticated` (Clerk's Supabase integration adds it) and
 * a subject that private.external_identities maps to a Coach Ledger user (clerk-webhook
 * provisions it); the caller is then that user: the claims the functions see (and set for
 * SQL) are the user's, with `sub` the user's id and `iss` the project's Auth issuer, and
 * the Clerk token's own issuer and subject kept under `third_party`.
 */
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from "jose";
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

let jwks: { url: string; set: ReturnType<typeof createRemoteJWKSet> } | undefined;
let clerkJwks: { url: string; set: ReturnType<typeof createRemoteJWKSet> } | undefined;

/** The remote key set at url, made once per url (jose caches its keys). */
function remoteJwks(cache: typeof jwks, url: string): NonNullable<typeof jwks> {
  return cache?.url === url ? cache : { url, set: createRemoteJWKSet(new URL(url)) };
}

/** The Clerk issuer whose tokens are accepted (CLERK_ISSUER, e.g. https://example.clerk.accounts.dev), if any. */
export function clerkIssuer(): string | null {
  return optionalEnv("CLERK_ISSUER")?.replace(/\/+$/, "") ?? null;
}
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
  let thirdParty = false;
  try {
    const options = { requiredClaims: ["exp"] };
    const { alg } = decodeProtectedHeader(token);
    if (alg === "HS256") {
      const secret = optionalEnv("SUPABASE_JWT_SECRET");
      if (!secret) throw unauthorized("HS256 tokens need the project's legacy JWT secret (SUPABASE_JWT_SECRET), which is not set.");
      ({ payload } = await jwtVerify(token, await hmacKey(secret), { ...options, algorithms: ["HS256"] }));
    } else {
      const clerk = clerkIssuer();
      thirdParty = clerk !== null && decodeJwt(token).iss === clerk;
      if (thirdParty) {
        clerkJwks = remoteJwks(clerkJwks, `${clerk}/.well-known/jwks.json`);
        ({ payload } = await jwtVerify(token, clerkJwks.set, { ...options, issuer: clerk!, algorithms: ["RS256", "ES256", "EdDSA"] }));
      } else {
        jwks = remoteJwks(jwks, new URL("/auth/v1/.well-known/jwks.json", requireEnv("SUPABASE_URL")).href);
        ({ payload } = await jwtVerify(token, jwks.set, { ...options, algorithms: ["ES256", "RS256", "EdDSA"] }));
      }
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (err instanceof errors.JWTExpired) throw unauthorized("The token has expired.");
    if (err instanceof errors.JWTClaimValidationFailed && err.claim === "exp") throw unauthorized("The token has no expiry (exp).");
    throw unauthorized("The token is not a valid JWT for this project.");
  }
  return thirdParty ? await thirdPartyCaller(payload) : checkClaims(payload);
}

/**
 * A verified Clerk token as the user it maps to (private.external_identities, looked up by
 * the service connection): 401 when its role is not `authenticated` or no user is mapped.
 */
async function thirdPartyCaller(payload: JWTPayload): Promise<Claims> {
  if (payload.role !== "authenticated") throw unauthorized('A Clerk token must carry the claim role "authenticated" (enable the Supabase integration in Clerk).');
  if (typeof payload.sub !== "string" || payload.sub === "") throw unauthorized("The token has no subject (sub).");
  const { externalUser } = await import("./db.ts");
  const user = await externalUser(payload.iss!, payload.sub);
  if (!user) throw unauthorized("This Clerk user has no Coach Ledger account yet (the clerk-webhook provisions it on user.created).");
  return {
    iss: authIssuer(),
    sub: user.id,
    aud: "authenticated",
    exp: payload.exp,
    iat: payload.iat,
    role: "authenticated",
    email: user.email ?? "",
    is_anonymous: false,
    third_party: { iss: payload.iss, sub: payload.sub, ...(typeof payload.sid === "string" ? { sid: payload.sid } : {}) },
  };
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
