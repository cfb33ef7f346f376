/**
 * API keys and JWTs as Supabase's API gateway and GoTrue handle them: the new-style
 * `sb_publishable_…` / `sb_secret_…` keys stand for the anon / service_role JWTs, and a
 * request's effective token is its Authorization bearer, or else its `apikey`.
 *
 * `verify` checks a token's signature and expiry (what every component checks; Realtime
 * adds its own claim rules). As on a project with asymmetric signing keys, a token is
 * verified by its header's `alg`: HS256 with the legacy JWT secret (the anon and
 * service_role keys, tokens minted with the secret), anything else against a JWKS: the
 * issuer's when the token names a configured third-party issuer (Clerk), else Auth's own
 * (the keys /auth/v1/.well-known/jwks.json publishes). `verifyApiToken`, for the functions and REST routes, also
 * wants the claims GoTrue or the platform put in a token: an `exp` (a token that never
 * expires is refused), an issuer we know (`<SUPABASE_URL>/auth/v1` for tokens GoTrue
 * issues, `supabase` / `supabase-demo` for the anon and service_role API keys), and for
 * role `authenticated` the audience `authenticated` and a UUID `sub` (GoTrue's user id).
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";

/** A third-party Auth provider (`[auth.third_party.*]`): its issuer and its published keys. */
export interface ThirdPartyIssuer {
  /** The provider's name in config.toml (`clerk`). */
  name: string;
  /** `iss` of its tokens, e.g. https://example.clerk.accounts.dev. */
  issuer: string;
  jwks: JWTVerifyGetKey;
}

/** The local keys: new-style key strings, the JWTs they map to, and the Auth issuer. */
export interface Keys {
  jwtSecret: string;
  anonKey: string;
  serviceRoleKey: string;
  publishableKey: string;
  secretKey: string;
  /** `iss` of the tokens GoTrue issues: `${SUPABASE_URL}/auth/v1`; without it only API-key issuers are accepted. */
  authIssuer?: string;
  /** Auth's asymmetric signing keys (public parts), when it signs with them. */
  authJwks?: JWTVerifyGetKey;
  /** Third-party providers whose tokens are accepted. */
  thirdParty?: ThirdPartyIssuer[];
}

/** Asymmetric algorithms a JWKS may verify (Auth: ES256, RS256, EdDSA; Clerk: RS256). */
const ASYMMETRIC = ["ES256", "RS256", "EdDSA"];

/** Issuers of the platform's API keys (`supabase start` signs with `supabase-demo`). */
const API_KEY_ISSUERS = new Set(["supabase", "supabase-demo"]);
const API_KEY_ROLES = new Set(["anon", "service_role"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Maps a new-style key to its JWT; any other value is returned unchanged. */
export function mapApiKey(keys: Keys, key: string): string {
  if (key === keys.publishableKey) return keys.anonKey;
  if (key === keys.secretKey) return keys.serviceRoleKey;
  return key;
}

/** The Authorization bearer token, if the header carries one (new-style keys mapped). */
export function bearerToken(keys: Keys, req: Request): string | null {
  const auth = req.headers.get("authorization");
  const bearer = auth ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] ?? null : null;
  return bearer ? mapApiKey(keys, bearer) : null;
}

/** The `apikey` header, or else the `apikey` query parameter, as sent. */
export function apiKeyOf(req: Request, url: URL): string | null {
  return req.headers.get("apikey") ?? url.searchParams.get("apikey");
}

/** Whether a value is one of the project's API keys (legacy JWT or new-style). */
export function isProjectApiKey(keys: Keys, key: string): boolean {
  return key === keys.anonKey || key === keys.serviceRoleKey || key === keys.publishableKey || key === keys.secretKey;
}

/**
 * The bearer token the request carries, as the gateway forwards it: the Authorization
 * bearer unless it is a new-style key, else the (mapped) `apikey` header or query param.
 */
export function effectiveToken(keys: Keys, req: Request, url: URL): string | null {
  const bearer = bearerToken(keys, req);
  if (bearer) return bearer;
  const apikey = apiKeyOf(req, url);
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

/** Why a token was refused: no token, expired, bad signature or format, or claims we refuse. */
export type TokenProblem = "missing" | "expired" | "invalid" | "claims";

/** What verified a token's signature: the legacy secret, Auth's signing keys, or a third party's. */
export type VerifiedBy = "legacy_secret" | "auth_jwks" | "third_party";

/** The result of verifying a token. */
export type Verified =
  | { ok: true; claims: JWTPayload; by: VerifiedBy; provider?: string }
  | { ok: false; problem: TokenProblem; message: string };

/** GoTrue's and the platform's rules for the claims of a token we accept; null when they hold. */
export function claimsProblem(keys: Keys, claims: JWTPayload, by: VerifiedBy = "legacy_secret"): string | null {
  if (typeof claims.exp !== "number") return "JWT has no 'exp' claim; tokens that never expire are refused";
  const role = typeof claims.role === "string" && claims.role !== "" ? claims.role : "anon";
  const iss = claims.iss;
  if (by === "third_party") {
    // Supabase admits a third-party provider's token only with role `authenticated` (Clerk's
    // Supabase integration adds it); its subject is the provider's user id, not a UUID.
    if (role !== "authenticated") return "A third-party token's 'role' claim must be 'authenticated'";
    if (typeof claims.sub !== "string" || claims.sub === "") return "JWT has no 'sub' claim";
    return null;
  }
  const fromAuth = keys.authIssuer !== undefined && iss === keys.authIssuer;
  const apiKey = typeof iss === "string" && API_KEY_ISSUERS.has(iss) && API_KEY_ROLES.has(role);
  if (!fromAuth && !apiKey) return "JWT issuer is not accepted";
  if (role === "authenticated") {
    const aud = claims.aud;
    const audiences = Array.isArray(aud) ? aud : [aud];
    if (!audiences.includes("authenticated")) return "JWT not in audience";
    if (typeof claims.sub !== "string" || !UUID.test(claims.sub)) return "JWT 'sub' claim must be a user id (UUID) for role authenticated";
  }
  return null;
}

/**
 * Verifies a token: signature (HS256 with the legacy secret, else the JWKS of its issuer),
 * and exp / nbf when present.
 */
export async function verify(keys: Keys, token: string | null): Promise<Verified> {
  if (!token) return { ok: false, problem: "missing", message: "Missing authorization header" };
  try {
    const { alg } = decodeProtectedHeader(token);
    if (alg === "HS256") {
      const { payload } = await jwtVerify(token, await hmacKey(keys.jwtSecret), { algorithms: ["HS256"] });
      return { ok: true, claims: payload, by: "legacy_secret" };
    }
    const iss = decodeJwt(token).iss;
    const provider = keys.thirdParty?.find((p) => p.issuer === iss);
    if (provider) {
      const { payload } = await jwtVerify(token, provider.jwks, { algorithms: ASYMMETRIC, issuer: provider.issuer });
      return { ok: true, claims: payload, by: "third_party", provider: provider.name };
    }
    if (!keys.authJwks) return { ok: false, problem: "invalid", message: `JWT signed with ${alg} is not accepted: no signing keys` };
    const { payload } = await jwtVerify(token, keys.authJwks, { algorithms: ASYMMETRIC });
    return { ok: true, claims: payload, by: "auth_jwks" };
  } catch (err) {
    if (err instanceof errors.JWTExpired) return { ok: false, problem: "expired", message: "JWT expired" };
    if (err instanceof errors.JWTClaimValidationFailed) return { ok: false, problem: "claims", message: err.message };
    return { ok: false, problem: "invalid", message: err instanceof Error ? err.message : "Invalid JWT" };
  }
}

/** Verifies a token for the API gateway's routes: `verify`, then GoTrue's claims (claimsProblem). */
export async function verifyApiToken(keys: Keys, token: string | null): Promise<Verified> {
  const checked = await verify(keys, token);
  if (!checked.ok) return checked;
  const problem = claimsProblem(keys, checked.claims, checked.by);
  return problem ? { ok: false, problem: "claims", message: problem } : checked;
}
