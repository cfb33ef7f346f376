/**
 * `/auth/v1`: the subset of Supabase Auth (supabase/auth, "GoTrue") that supabase-js's
 * `auth` client uses, for local development and CI. Routes, bodies, status codes and
 * error codes are GoTrue's (internal/api/*.go); the storage is GoTrue's tables (store.ts).
 *
 *   GET  /health, /settings, /.well-known/jwks.json
 *   POST /signup                  email + password (confirmed at once, as `supabase start`
 *                                 with enable_confirmations = false), or no credentials:
 *                                 an anonymous user (when enable_anonymous_sign_ins)
 *   POST /token?grant_type=password | refresh_token
 *   GET  /user, PUT /user         the caller (password, data; email when unused)
 *   POST /logout?scope=global | local | others
 *   /admin/users[/<id>]           the service role: create, list, get, update, delete
 *
 * Access tokens carry GoTrue's claims, are signed with the project's asymmetric key
 * (tokens.ts) and pass through the custom access token hook when config.toml enables it,
 * called as GoTrue calls it: `select <hook>($1)` as supabase_auth_admin, in the
 * transaction that issues the token, under a 2 s statement timeout. Refresh tokens rotate;
 * reusing a revoked one after refresh_token_reuse_interval revokes the session's family.
 *
 * Not served (answered 501 by GoTrue's 404 shape's absence, see route()): OTP, magic links,
 * OAuth providers, SSO, MFA, phone sign-in, email sending, identity linking, rate limits.
 */
import { isIP } from "node:net";
import type postgres from "postgres";
import { apiKeyOf, bearerToken, isProjectApiKey, type Keys, verify } from "../keys.ts";
import { AuthError, authJson, errorResponse, validationFailed } from "./errors.ts";
import { DEFAULT_LIMITS, jsonDepthExceeds, type Limits, readBody } from "../limits.ts";
import { type AuthSettings, hookFunction } from "./settings.ts";
import * as store from "./store.ts";
import { jwksOf, type SigningKey, signAccessToken } from "./tokens.ts";

/** What serving /auth/v1 needs. */
export interface AuthOptions {
  keys: Keys;
  /** postgres.js pool connected as supabase_auth_admin. */
  sql: postgres.Sql;
  signingKeys: SigningKey[];
  settings: AuthSettings;
  /** GoTrue's issuer: `${SUPABASE_URL}/auth/v1`. */
  issuer: string;
  log: (line: Record<string, unknown>) => void;
  /** The gateway's body limits (size, time, depth); GoTrue caps bodies at 1 MB too. */
  limits?: Pick<Limits, "maxBodyBytes" | "bodyTimeoutMs" | "maxJsonDepth">;
}

/** Roles GoTrue treats as admins (GOTRUE_JWT_ADMIN_ROLES' default). */
const ADMIN_ROLES = ["service_role", "supabase_admin"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** GoTrue's email check (internal/api/mail.go validateEmail: a syntactically valid address, at most 255 long). */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** GoTrue's hook statement timeout (hooks.pgfunc default, 2 s). */
const HOOK_TIMEOUT_MS = 2000;
/** Claims the hook's output must keep (supabase/auth internal/tokens MinimumViableTokenSchema). */
const REQUIRED_CLAIMS = ["aud", "exp", "iat", "sub", "email", "phone", "role", "aal", "session_id", "is_anonymous"];

type Sql = postgres.TransactionSql | postgres.Sql;
type Json = Record<string, unknown>;

/**
 * The request body as a JSON object, read within the gateway's limits: 413 when too large,
 * 400 bad_json when it is not a JSON object, 400 validation_failed for a NUL character
 * (Postgres stores none) or nesting deeper than the gateway allows.
 */
async function body(req: Request, limits: NonNullable<AuthOptions["limits"]>): Promise<Json> {
  const read = await readBody(req, limits);
  if (!read.ok) {
    if (read.reason === "too_large") throw new AuthError(413, "request_entity_too_large", "Request body too large");
    throw new AuthError(400, "bad_json", "Could not read the request body");
  }
  const text = read.bytes ? new TextDecoder().decode(read.bytes) : "";
  if (text.trim() === "") return {};
  if (jsonDepthExceeds(text, limits.maxJsonDepth)) throw validationFailed("Request body is nested too deeply");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AuthError(400, "bad_json", "Could not parse request body as JSON");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new AuthError(400, "bad_json", "Could not parse request body as JSON");
  if (/\\u0000|\u0000/.test(text)) throw validationFailed("Request body must not contain NUL characters");
  return parsed as Json;
}

/** A field that must be a string when present: 400 bad_json otherwise, as Go's decoder answers. */
function optionalString(b: Json, field: string): string | null {
  const v = b[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new AuthError(400, "bad_json", `Could not parse request body as JSON: ${field} must be a string`);
  return v;
}

/** GoTrue's validateEmail (internal/api/mail.go). */
function checkEmail(email: string): void {
  if (email.length > 255) throw validationFailed("An email address is too long");
  if (!EMAIL.test(email)) throw validationFailed("Unable to validate email address: invalid format");
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const obj = (v: unknown): Json | null => (v && typeof v === "object" && !Array.isArray(v) ? v as Json : null);

/** GoTrue's password strength check (internal/api/password.go checkPasswordStrength). */
function checkPassword(settings: AuthSettings, password: string): void {
  if (password.length > 72) throw validationFailed("Password cannot be longer than 72 characters");
  const reasons: string[] = [];
  const messages: string[] = [];
  if (password.length < settings.minimum_password_length) {
    reasons.push("length");
    messages.push(`Password should be at least ${settings.minimum_password_length} characters.`);
  }
  const sets: Record<string, string[]> = {
    letters_digits: ["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"],
    lower_upper_letters_digits: ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"],
    lower_upper_letters_digits_symbols: ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "!@#$%^&*()_+-=[]{};'\\:\"|<>?,./`~"],
  };
  const required = sets[settings.password_requirements];
  if (required && !required.every((set) => [...password].some((c) => set.includes(c)))) {
    reasons.push("characters");
    messages.push(`Password should contain at least one character of each: ${required.join(", ")}.`);
  }
  if (reasons.length) throw new AuthError(422, "weak_password", messages.join(" "), { weak_password: { reasons } });
}

/** The client's address and agent, as GoTrue records them on a session. */
function clientOf(req: Request): { ua: string | null; ip: string | null } {
  const forwarded = req.headers.get("x-forwarded-for")?.split(",")[0]?.trim() ?? null;
  const ip = forwarded && isIP(forwarded) !== 0 ? forwarded : null;
  return { ua: req.headers.get("user-agent"), ip };
}

/** Builds the `/auth/v1` route; `rest` is the path after `/auth/v1/`. */
export function createAuth(opts: AuthOptions): (req: Request, url: URL, rest: string, requestId: string) => Promise<Response> {
  const { sql, settings } = opts;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const hook = settings.custom_access_token_hook ? hookFunction(settings.custom_access_token_hook) : null;

  async function userJson(db: Sql, user: store.UserRow): Promise<Json> {
    return store.userJson(user, await store.identitiesOf(db, user.id));
  }

  /**
   * GoTrue's access token claims for the user in the session, through the hook when enabled;
   * `method` is the grant's authentication method (password, anonymous, token_refresh).
   */
  async function accessToken(tx: Sql, user: store.UserRow, session: store.SessionRow, method: string): Promise<{ token: string; exp: number }> {
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + settings.jwt_expiry;
    let claims: Json = {
      iss: opts.issuer,
      sub: user.id,
      aud: user.aud ?? "",
      exp,
      iat,
      email: user.email ?? "",
      phone: user.phone ?? "",
      app_metadata: user.raw_app_meta_data ?? {},
      user_metadata: user.raw_user_meta_data ?? {},
      role: user.role ?? "",
      aal: session.aal ?? "aal1",
      amr: await store.amrOf(tx, session.id),
      session_id: session.id,
      is_anonymous: user.is_anonymous,
    };
    if (hook) claims = await runHook(tx, user.id, claims, method);
    return { token: await signAccessToken(opts.signingKeys, claims), exp: Number(claims.exp) };
  }

  /** Calls the custom access token hook as GoTrue does (hookspgfunc.runPostgresHook). */
  async function runHook(tx: Sql, userId: string, claims: Json, method: string): Promise<Json> {
    const input = {
      metadata: { uuid: crypto.randomUUID(), time: new Date().toISOString(), name: "customize-access-token", ip_address: "" },
      user_id: userId,
      claims,
      authentication_method: method,
    };
    let output: unknown;
    await tx.unsafe(`set local statement_timeout to '${HOOK_TIMEOUT_MS}'`);
    try {
      const [row] = await tx.unsafe<{ out: unknown }[]>(`select ${hook}($1::text::jsonb) as out`, [JSON.stringify(input)]);
      output = typeof row.out === "string" ? JSON.parse(row.out) : row.out;
    } catch (err) {
      opts.log({ level: "error", msg: "custom access token hook failed", error: err instanceof Error ? err.message : String(err) });
      throw new AuthError(500, "unexpected_failure", "Error running hook URI: " + settings.custom_access_token_hook);
    }
    await tx.unsafe(`set local statement_timeout to default`);
    const error = obj(obj(output)?.error);
    if (error && typeof error.message === "string" && error.message !== "") {
      const status = typeof error.http_code === "number" && error.http_code >= 400 && error.http_code < 600 ? error.http_code : 500;
      throw new AuthError(status, status === 500 ? "unexpected_failure" : "unknown", error.message);
    }
    if (!obj(output) || !("claims" in obj(output)!)) throw new AuthError(500, "unexpected_failure", "output claims field is missing");
    const out = obj(obj(output)?.claims);
    const missing = out ? REQUIRED_CLAIMS.filter((c) => !(c in out)) : REQUIRED_CLAIMS;
    if (!out || missing.length) {
      throw new AuthError(500, "unexpected_failure", `output claims do not conform to the expected schema: \n${missing.map((c) => `- (root): ${c} is required\n`).join("")}`);
    }
    return out;
  }

  /** The token response GoTrue answers a sign-in, sign-up or refresh with. */
  async function tokenResponse(tx: Sql, user: store.UserRow, session: store.SessionRow, refreshToken: string, method: string): Promise<Json> {
    const { token, exp } = await accessToken(tx, user, session, method);
    return {
      access_token: token,
      token_type: "bearer",
      expires_in: settings.jwt_expiry,
      expires_at: exp,
      refresh_token: refreshToken,
      user: await userJson(tx, user),
    };
  }

  /** The Authorization bearer (new-style keys mapped), verified: 401 no_authorization without one. */
  async function verifiedBearer(req: Request) {
    const token = bearerToken(opts.keys, req);
    if (!token) throw new AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token");
    return await verify(opts.keys, token);
  }

  /** The signed-in caller: a user token of this project whose user and session still exist. */
  async function caller(req: Request): Promise<{ user: store.UserRow; sessionId: string | null; claims: Json }> {
    const checked = await verifiedBearer(req);
    if (!checked.ok || checked.by === "third_party") {
      const why = checked.ok ? "token is not issued by this project" : checked.message;
      throw new AuthError(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${why}`);
    }
    const claims = checked.claims as Json;
    const sub = str(claims.sub);
    if (!sub) throw new AuthError(403, "bad_jwt", "invalid claim: missing sub claim");
    if (!UUID.test(sub)) throw new AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID");
    const user = await store.userById(sql, sub);
    if (!user) throw new AuthError(403, "user_not_found", "User from sub claim in JWT does not exist");
    if (user.banned_until && new Date(user.banned_until) > new Date()) throw new AuthError(403, "user_banned", "User is banned");
    const sessionId = str(claims.session_id);
    if (sessionId && UUID.test(sessionId) && !(await store.sessionById(sql, sessionId))) {
      throw new AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist");
    }
    return { user, sessionId: sessionId && UUID.test(sessionId) ? sessionId : null, claims };
  }

  /** The caller must be an admin (the service role); GoTrue's requireAdmin. */
  async function requireAdmin(req: Request): Promise<void> {
    const checked = await verifiedBearer(req);
    if (!checked.ok) throw new AuthError(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${checked.message}`);
    if (checked.by === "third_party") throw new AuthError(403, "not_admin", "User not allowed");
    const role = str((checked.claims as Json).role);
    if (!role || !ADMIN_ROLES.includes(role)) throw new AuthError(403, "not_admin", "User not allowed");
  }

  async function signup(req: Request): Promise<Response> {
    const b = await body(req, limits);
    const email = optionalString(b, "email")?.trim() ?? "";
    const password = optionalString(b, "password") ?? "";
    optionalString(b, "phone");
    if (b.data !== undefined && b.data !== null && !obj(b.data)) throw new AuthError(400, "bad_json", "Could not parse request body as JSON: data must be an object");
    const data = obj(b.data) ?? {};
    if (email === "" && !str(b.phone)) {
      // No email and no phone is an anonymous sign-in, whatever the password (GoTrue's router).
      if (!settings.enable_anonymous_sign_ins) throw new AuthError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled");
      if (!settings.enable_signup) throw new AuthError(422, "signup_disabled", "Signups not allowed for this instance");
      return await sql.begin(async (tx) => {
        const user = await store.insertUser(tx, { email: null, password: null, userMetadata: data, appMetadata: {}, confirmed: false, anonymous: true, signedIn: true });
        const { session, refreshToken } = await store.startSession(tx, user.id, "anonymous", clientOf(req).ua, clientOf(req).ip);
        return authJson(200, await tokenResponse(tx, (await store.userById(tx, user.id))!, session, refreshToken, "anonymous"));
      });
    }
    if (!settings.enable_signup) throw new AuthError(422, "signup_disabled", "Signups not allowed for this instance");
    if (password === "") throw validationFailed("Signup requires a valid password");
    checkPassword(settings, password);
    if (email !== "" && str(b.phone)) throw validationFailed("Only an email address or phone number should be provided on signup.");
    if (str(b.phone)) throw new AuthError(422, "phone_provider_disabled", "Phone signups are disabled");
    checkEmail(email);
    return await sql.begin(async (tx) => {
      await tx.unsafe(`select pg_advisory_xact_lock(hashtext('auth.users.email:' || lower($1)))`, [email]);
      if (await store.userByEmail(tx, email)) throw new AuthError(422, "user_already_exists", "User already registered");
      const user = await store.insertUser(tx, { email: email.toLowerCase(), password, userMetadata: data, appMetadata: {}, confirmed: true, anonymous: false, signedIn: true });
      const { session, refreshToken } = await store.startSession(tx, user.id, "password", clientOf(req).ua, clientOf(req).ip);
      return authJson(200, await tokenResponse(tx, (await store.userById(tx, user.id))!, session, refreshToken, "password"));
    });
  }

  async function passwordGrant(req: Request): Promise<Response> {
    const b = await body(req, limits);
    const email = optionalString(b, "email")?.trim() ?? "";
    const password = optionalString(b, "password") ?? "";
    optionalString(b, "phone");
    if (email !== "" && str(b.phone)) throw validationFailed("Only an email address or phone number should be provided on login.");
    if (str(b.phone)) throw new AuthError(422, "phone_provider_disabled", "Phone logins are disabled");
    if (email === "") throw validationFailed("missing email or phone");
    if (email.length > 255 || password.length > 1000) throw new AuthError(400, "invalid_credentials", "Invalid login credentials");
    const user = await store.userByEmail(sql, email);
    if (!user || user.deleted_at || !(await store.passwordMatches(sql, user.id, password))) {
      throw new AuthError(400, "invalid_credentials", "Invalid login credentials");
    }
    if (user.banned_until && new Date(user.banned_until) > new Date()) throw new AuthError(400, "user_banned", "User is banned");
    if (!user.email_confirmed_at) throw new AuthError(400, "email_not_confirmed", "Email not confirmed");
    return await sql.begin(async (tx) => {
      const { session, refreshToken } = await store.startSession(tx, user.id, "password", clientOf(req).ua, clientOf(req).ip);
      await tx.unsafe(`update auth.identities set last_sign_in_at = now(), updated_at = now() where user_id = $1 and provider = 'email'`, [user.id]);
      return authJson(200, await tokenResponse(tx, (await store.userById(tx, user.id))!, session, refreshToken, "password"));
    });
  }

  async function refreshGrant(req: Request): Promise<Response> {
    const b = await body(req, limits);
    const given = optionalString(b, "refresh_token") ?? "";
    if (!/^[a-z0-9]{12}$/.test(given)) throw validationFailed("Refresh token is not valid");
    const notFound = new AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
    // A reuse revokes the family and must commit even though the request fails.
    let failure: AuthError | null = null;
    const res = await sql.begin(async (tx) => {
      const token = await store.lockRefreshToken(tx, given);
      if (!token || !token.session_id) throw notFound;
      const session = await store.sessionById(tx, token.session_id);
      if (!session) throw new AuthError(400, "session_not_found", "Invalid Refresh Token: No Valid Session Found");
      if (session.not_after && new Date(session.not_after) <= new Date()) throw new AuthError(400, "session_expired", "Invalid Refresh Token: Session Expired");
      const user = await store.userById(tx, token.user_id);
      if (!user) throw notFound;
      if (user.banned_until && new Date(user.banned_until) > new Date()) throw new AuthError(400, "user_banned", "Invalid Refresh Token: User Banned");
      let next: string;
      if (token.revoked) {
        // GoTrue's reuse rules (internal/tokens/service.go RefreshTokenGrant): the parent of the
        // active token gets the active token back (a retried refresh); within the reuse
        // interval of its revocation a revoked token gets a new child; any other reuse is
        // taken for a stolen token and revokes the session's whole family.
        const active = await store.activeRefreshToken(tx, token.session_id);
        const withinReuse = (Date.now() - new Date(token.updated_at).getTime()) / 1000 <= settings.refresh_token_reuse_interval;
        if (active && active.parent === token.token) {
          next = active.token;
        } else if (withinReuse) {
          next = await store.rotate(tx, token);
        } else {
          await store.revokeFamily(tx, token.session_id);
          failure = new AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used");
          return null;
        }
      } else {
        next = settings.enable_refresh_token_rotation ? await store.rotate(tx, token) : token.token;
      }
      return authJson(200, await tokenResponse(tx, user, session, next, "token_refresh"));
    });
    if (failure) throw failure;
    return res!;
  }

  async function getUser(req: Request): Promise<Response> {
    const { user } = await caller(req);
    return authJson(200, await userJson(sql, user));
  }

  async function updateUser(req: Request): Promise<Response> {
    const { user, sessionId } = await caller(req);
    const b = await body(req, limits);
    const password = b.password === undefined ? null : str(b.password);
    if (b.password !== undefined && password === null) throw validationFailed("password must be a string");
    const data = b.data === undefined ? null : obj(b.data);
    if (b.data !== undefined && data === null) throw validationFailed("data must be an object");
    const email = b.email === undefined ? null : str(b.email)?.trim() ?? "";
    if (email !== null) checkEmail(email);
    if (str(b.phone)) throw new AuthError(422, "phone_provider_disabled", "Phone signups are disabled");
    if (b.app_metadata !== undefined) throw new AuthError(403, "not_admin", "Updating app_metadata requires admin privileges");
    if (password !== null && user.is_anonymous && !user.email && email === null) {
      throw new AuthError(422, "validation_failed", "Updating password of an anonymous user without an email or phone is not allowed");
    }
    return await sql.begin(async (tx) => {
      if (password !== null) {
        checkPassword(settings, password);
        if (await store.passwordMatches(tx, user.id, password)) {
          throw new AuthError(422, "same_password", "New password should be different from the old password.");
        }
        await tx.unsafe(`update auth.users set encrypted_password = extensions.crypt($2, extensions.gen_salt('bf', 10)), updated_at = now() where id = $1`, [user.id, password]);
        // GoTrue signs the user out of every other session when the password changes.
        await store.endSessions(tx, user.id, "others", sessionId);
      }
      if (data !== null) {
        // user_metadata is merged key by key; a null value removes the key (GoTrue's UpdateUserMetaData).
        await tx.unsafe(
          `update auth.users set raw_user_meta_data = (coalesce(raw_user_meta_data, '{}') || $2::text::jsonb) - array(select key from jsonb_each($2::text::jsonb) where value = 'null'), updated_at = now() where id = $1`,
          [user.id, JSON.stringify(data)],
        );
      }
      if (email !== null && email.toLowerCase() !== (user.email ?? "").toLowerCase()) {
        await tx.unsafe(`select pg_advisory_xact_lock(hashtext('auth.users.email:' || lower($1)))`, [email]);
        const other = await store.userByEmail(tx, email);
        if (other) throw new AuthError(422, "email_exists", "A user with this email address has already been registered");
        await tx.unsafe(`update auth.users set email = $2, email_confirmed_at = now(), updated_at = now() where id = $1`, [user.id, email.toLowerCase()]);
        if (user.is_anonymous) {
          // An anonymous user who adds an email becomes a permanent one, as GoTrue's
          // emailChangeVerify makes them: an email identity, the email provider, not anonymous.
          const identity = { sub: user.id, email: email.toLowerCase(), email_verified: true, phone_verified: false };
          await tx.unsafe(
            `insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
             values ($1, $3::uuid, $2::text::jsonb, 'email', now(), now(), now())`,
            [user.id, JSON.stringify(identity), user.id],
          );
          await tx.unsafe(
            `update auth.users set is_anonymous = false,
                    raw_app_meta_data = coalesce(raw_app_meta_data, '{}') || '{"provider": "email", "providers": ["email"]}'::jsonb,
                    raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || $2::text::jsonb
              where id = $1`,
            [user.id, JSON.stringify(identity)],
          );
        } else {
          // The stand-in sends no email, so a permanent user's change applies at once
          // (GoTrue sends a confirmation link and changes the address when it is followed).
          await tx.unsafe(
            `update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text), updated_at = now() where user_id = $1 and provider = 'email'`,
            [user.id, email.toLowerCase()],
          );
        }
      }
      return authJson(200, await userJson(tx, (await store.userById(tx, user.id))!));
    });
  }

  async function logout(req: Request, url: URL): Promise<Response> {
    const scope = url.searchParams.get("scope") ?? "global";
    if (scope !== "global" && scope !== "local" && scope !== "others") throw validationFailed(`Unsupported logout scope "${scope}"`);
    const { user, sessionId } = await caller(req);
    // A token without a session_id signs the user out everywhere, whatever the scope (GoTrue's Logout).
    await store.endSessions(sql, user.id, sessionId ? scope : "global", sessionId);
    return authJson(204, null);
  }

  /** GoTrue's settings document: which providers and sign-ups this instance allows. */
  function settingsDoc(): Json {
    // internal/api/settings.go, in its order; only email (and anonymous, when enabled) is served here.
    const external: Json = { anonymous_users: settings.enable_anonymous_sign_ins };
    for (const p of ["apple", "azure", "bitbucket", "discord", "facebook", "snapchat", "figma", "fly", "github", "gitlab", "google", "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "spotify", "slack", "slack_oidc", "workos", "twitch", "twitter"]) {
      external[p] = false;
    }
    Object.assign(external, { email: true, phone: false, zoom: false });
    return {
      external, disable_signup: !settings.enable_signup, mailer_autoconfirm: true, phone_autoconfirm: false, sms_provider: "twilio",
      saml_enabled: false, saml_private_key_next_configured: false, passkeys_enabled: false,
    };
  }

  async function adminUsers(req: Request, url: URL, id: string | null): Promise<Response> {
    await requireAdmin(req);
    if (id === null && req.method === "GET") {
      const page = Math.min(1_000_000, Math.max(1, Number.parseInt(url.searchParams.get("page") ?? "1", 10) || 1));
      const perPage = Math.min(1000, Math.max(1, Number.parseInt(url.searchParams.get("per_page") ?? "50", 10) || 50));
      const [{ total }] = await sql.unsafe<{ total: number }[]>(`select count(*)::int as total from auth.users`);
      const ids = await sql.unsafe<{ id: string }[]>(`select id from auth.users order by created_at desc, id limit $1 offset $2`, [perPage, (page - 1) * perPage]);
      const users = [];
      // GoTrue does not load identities for the list: each user has "identities": null.
      for (const { id: uid } of ids) users.push({ ...store.userJson((await store.userById(sql, uid))!, []), identities: null });
      const last = Math.max(1, Math.ceil(total / perPage));
      const links = [];
      if (page < last) links.push(`</admin/users?page=${page + 1}&per_page=${perPage}>; rel="next"`);
      links.push(`</admin/users?page=${last}&per_page=${perPage}>; rel="last"`);
      return authJson(200, { users, aud: "authenticated" }, { "x-total-count": String(total), link: links.join(", ") });
    }
    if (id === null && req.method === "POST") return await adminCreate(req);
    if (id === null) throw new AuthError(405, "method_not_allowed", "Method Not Allowed");
    if (!UUID.test(id)) throw new AuthError(404, "validation_failed", "user_id must be an UUID");
    const user = await store.userById(sql, id);
    if (!user) throw new AuthError(404, "user_not_found", "User not found");
    if (req.method === "GET") return authJson(200, await userJson(sql, user));
    if (req.method === "PUT") return await adminUpdate(req, user);
    if (req.method === "DELETE") {
      const b = await body(req, limits);
      if (b.should_soft_delete === true) throw new AuthError(501, "not_implemented", "Soft deletion is not served by the local Auth stand-in");
      // GoTrue (internal/api/admin.go, adminUserDelete) answers a failed delete, such as a
      // trigger refusing it (a legal hold), with 500 "Database error deleting user".
      try {
        await sql.unsafe(`delete from auth.users where id = $1`, [id]);
      } catch (err) {
        if ((err as { severity?: string }).severity === undefined) throw err;
        throw new AuthError(500, "unexpected_failure", "Database error deleting user");
      }
      return authJson(200, {});
    }
    throw new AuthError(405, "method_not_allowed", "Method Not Allowed");
  }

  async function adminCreate(req: Request): Promise<Response> {
    const b = await body(req, limits);
    const email = optionalString(b, "email")?.trim() ?? "";
    const password = optionalString(b, "password");
    optionalString(b, "phone");
    if (email === "" && !str(b.phone)) throw validationFailed("Cannot create a user without either an email or phone");
    if (str(b.phone)) throw new AuthError(422, "phone_provider_disabled", "Phone signups are disabled");
    checkEmail(email);
    if (password !== null && password.length > 72) throw validationFailed("Password cannot be longer than 72 characters");
    const userMetadata = obj(b.user_metadata) ?? obj(b.data) ?? {};
    const appMetadata = obj(b.app_metadata) ?? {};
    const id = str(b.id);
    if (id !== null && !UUID.test(id)) throw validationFailed("ID must conform to the uuid v4 format");
    return await sql.begin(async (tx) => {
      await tx.unsafe(`select pg_advisory_xact_lock(hashtext('auth.users.email:' || lower($1)))`, [email]);
      if (await store.userByEmail(tx, email)) throw new AuthError(422, "email_exists", "A user with this email address has already been registered");
      if (id && await store.userById(tx, id)) throw new AuthError(422, "user_already_exists", "User already registered");
      const user = await store.insertUser(tx, {
        id: id ?? undefined, email: email.toLowerCase(), password, userMetadata, appMetadata,
        confirmed: b.email_confirm === true, anonymous: false, signedIn: false, role: str(b.role) ?? undefined,
      });
      return authJson(200, await userJson(tx, user));
    });
  }

  async function adminUpdate(req: Request, user: store.UserRow): Promise<Response> {
    const b = await body(req, limits);
    const password = optionalString(b, "password");
    if (password !== null) checkPassword(settings, password);
    const email = optionalString(b, "email")?.trim() ?? null;
    if (email !== null) checkEmail(email);
    const userMetadata = b.user_metadata === undefined ? null : obj(b.user_metadata);
    const appMetadata = b.app_metadata === undefined ? null : obj(b.app_metadata);
    const ban = str(b.ban_duration);
    return await sql.begin(async (tx) => {
      if (email !== null && email.toLowerCase() !== (user.email ?? "").toLowerCase()) {
        await tx.unsafe(`select pg_advisory_xact_lock(hashtext('auth.users.email:' || lower($1)))`, [email]);
        if (await store.userByEmail(tx, email)) throw new AuthError(422, "email_exists", "A user with this email address has already been registered");
        await tx.unsafe(`update auth.users set email = $2 where id = $1`, [user.id, email.toLowerCase()]);
        await tx.unsafe(
          `update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text), updated_at = now() where user_id = $1 and provider = 'email'`,
          [user.id, email.toLowerCase()],
        );
      }
      if (password !== null) {
        await tx.unsafe(`update auth.users set encrypted_password = extensions.crypt($2, extensions.gen_salt('bf', 10)) where id = $1`, [user.id, password]);
        await store.endSessions(tx, user.id, "global", null); // an admin's password change signs the user out everywhere
      }
      if (userMetadata) {
        await tx.unsafe(`update auth.users set raw_user_meta_data = (coalesce(raw_user_meta_data, '{}') || $2::text::jsonb) - array(select key from jsonb_each($2::text::jsonb) where value = 'null') where id = $1`, [user.id, JSON.stringify(userMetadata)]);
      }
      if (appMetadata) {
        await tx.unsafe(`update auth.users set raw_app_meta_data = (coalesce(raw_app_meta_data, '{}') || $2::text::jsonb) - array(select key from jsonb_each($2::text::jsonb) where value = 'null') where id = $1`, [user.id, JSON.stringify(appMetadata)]);
      }
      if (b.email_confirm === true) await tx.unsafe(`update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) where id = $1`, [user.id]);
      if (ban !== null) {
        if (ban === "none") await tx.unsafe(`update auth.users set banned_until = null where id = $1`, [user.id]);
        else {
          const m = /^(\d{1,6})(h|m|s)$/.exec(ban);
          if (!m) throw validationFailed("invalid format for ban duration: expected a duration such as 24h or none");
          await tx.unsafe(`update auth.users set banned_until = now() + ($2 || ' ' || $3)::interval where id = $1`, [user.id, m[1], { h: "hours", m: "minutes", s: "seconds" }[m[2]]!]);
        }
      }
      await tx.unsafe(`update auth.users set updated_at = now() where id = $1`, [user.id]);
      return authJson(200, await userJson(tx, (await store.userById(tx, user.id))!));
    });
  }

  async function route(req: Request, url: URL, rest: string): Promise<Response> {
    if (rest === ".well-known/jwks.json" && req.method === "GET") {
      return authJson(200, jwksOf(opts.signingKeys), { "cache-control": "public, max-age=600" });
    }
    // The API gateway wants a project key on every other Auth route (Kong key-auth).
    const apikey = apiKeyOf(req, url);
    if (!apikey) return authJson(401, { message: "No API key found in request", hint: "No `apikey` request header or url param was found." });
    if (!isProjectApiKey(opts.keys, apikey)) return authJson(401, { message: "Invalid API key", hint: "Double check your Supabase `anon` or `service_role` API key." });
    const route = `${req.method} ${rest}`;
    if (route === "GET health") return authJson(200, { version: "local", name: "GoTrue", description: "GoTrue is a user registration and authentication API" });
    if (route === "GET settings") return authJson(200, settingsDoc());
    if (route === "POST signup") return await signup(req);
    if (route === "POST token") {
      const grant = url.searchParams.get("grant_type");
      if (grant === "password") return await passwordGrant(req);
      if (grant === "refresh_token") return await refreshGrant(req);
      throw new AuthError(400, "invalid_credentials", "unsupported_grant_type");
    }
    if (route === "GET user") return await getUser(req);
    if (route === "PUT user") return await updateUser(req);
    if (route === "POST logout") return await logout(req, url);
    const admin = /^admin\/users(?:\/([^/]+))?$/.exec(rest);
    if (admin) return await adminUsers(req, url, admin[1] ?? null);
    return authJson(404, { code: 404, error_code: "not_found", msg: `${req.method} /auth/v1/${rest} is not served by the local Auth stand-in` });
  }

  return async function serveAuth(req, url, rest, requestId) {
    if (req.method === "OPTIONS") return new Response(null, { status: 200 });
    try {
      return await route(req, url, rest);
    } catch (err) {
      if (err instanceof AuthError) return errorResponse(req, err, requestId);
      throw err;
    }
  };
}
