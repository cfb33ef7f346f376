/**
 * The caller's identity: verifies and decodes the JWT in the Authorization header with
 * `jose`. HS256 with SUPABASE_JWT_SECRET when it is set (the local stack sets it), else
 * the project's published signing keys (JWKS at SUPABASE_URL/auth/v1/.well-known/jwks.json).
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import { HttpError } from "./http.ts";
import { optionalEnv, requireEnv } from "./env.ts";

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

/** Verifies a token's signature and expiry; throws a 401 HttpError when it is not valid. */
export async function verifyToken(token: string): Promise<Claims> {
  try {
    const secret = optionalEnv("SUPABASE_JWT_SECRET");
    const { payload } = secret
      ? await jwtVerify(token, await hmacKey(secret), { algorithms: ["HS256"] })
      : await jwtVerify(token, jwks ??= createRemoteJWKSet(new URL("/auth/v1/.well-known/jwks.json", requireEnv("SUPABASE_URL"))));
    if (typeof payload.role !== "string" || payload.role === "") {
      throw new HttpError(401, "Unauthorized", "The token has no role claim.");
    }
    return payload as Claims;
  } catch (err) {
    if (err instanceof HttpError) throw err;
    const detail = err instanceof errors.JWTExpired ? "The token has expired." : "The token is not a valid JWT for this project.";
    throw new HttpError(401, "Unauthorized", detail);
  }
}

/** The verified claims of the caller; 401 when the Authorization header is missing or invalid. */
export async function authenticate(req: Request): Promise<Claims> {
  const token = bearerToken(req);
  if (!token) throw new HttpError(401, "Unauthorized", "Missing Authorization: Bearer <token> header.");
  return await verifyToken(token);
}

/** True for a signed-in user's token (role authenticated with a subject). */
export function isUser(claims: Claims): claims is Claims & { sub: string } {
  return claims.role === "authenticated" && typeof claims.sub === "string";
}
