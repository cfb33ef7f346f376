/**
 * Auth's signing keys, as a project with asymmetric JWT signing keys has them: user access
 * tokens are signed with the current private key (ES256 here, with its `kid` in the
 * header), and the public parts are published at /auth/v1/.well-known/jwks.json for
 * anyone to verify with (supabase/auth: internal/conf/jwk.go, internal/api/jwks.go). The
 * legacy HS256 secret still signs the anon and service_role keys and still verifies.
 *
 * The keys come in the Supabase CLI's `signing_keys_path` format (what `supabase gen
 * signing-key` writes): a JSON array of private JWKs, the first one signing.
 */
import { createLocalJWKSet, importJWK, type JWK, type JWTVerifyGetKey, SignJWT } from "jose";

/** One private signing key and its public JWK. */
export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: Awaited<ReturnType<typeof importJWK>>;
  publicJwk: JWK;
}

/** The JWK members of a private key that the public one must not carry. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

/** Parses the CLI's signing keys file (a JSON array of private JWKs with `kid` and `alg`). */
export async function loadSigningKeys(json: string): Promise<SigningKey[]> {
  const jwks = JSON.parse(json) as JWK[];
  if (!Array.isArray(jwks) || jwks.length === 0) throw new Error("signing keys: expected a non-empty JSON array of JWKs");
  return await Promise.all(jwks.map(async (jwk) => {
    if (typeof jwk.kid !== "string" || typeof jwk.alg !== "string") throw new Error("signing keys: every key needs a kid and an alg");
    const publicJwk: JWK = Object.fromEntries(Object.entries(jwk).filter(([k]) => !PRIVATE_MEMBERS.includes(k) && k !== "key_ops" && k !== "ext"));
    return {
      kid: jwk.kid,
      alg: jwk.alg,
      // A private key signs only: WebCrypto refuses it with the file's "verify" usage.
      privateKey: await importJWK({ ...jwk, key_ops: undefined, use: undefined }, jwk.alg),
      publicJwk: { ...publicJwk, use: "sig", key_ops: ["verify"] },
    };
  }));
}

/** The JSON Web Key Set Auth publishes: the public parts of every signing key. */
export function jwksOf(keys: SigningKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.publicJwk) };
}

/** A verifier over the published keys (what the gateway and Realtime check tokens with). */
export function localJwks(keys: SigningKey[]): JWTVerifyGetKey {
  return createLocalJWKSet(jwksOf(keys));
}

/** Signs an access token's claims with the current (first) signing key. */
export async function signAccessToken(keys: SigningKey[], claims: Record<string, unknown>): Promise<string> {
  const key = keys[0];
  return await new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" }).sign(key.privateKey);
}
