/**
 * Auth's storage: users, identities, sessions and refresh tokens in the `auth` schema,
 * with GoTrue's table and column names (local/platform.sql creates them), reached as
 * `supabase_auth_admin`, the role GoTrue connects as. Passwords are bcrypt hashes made by
 * pgcrypto's crypt() (cost 10, GoTrue's bcrypt.DefaultCost), so the users supabase/seed.sql
 * inserts with extensions.crypt() sign in with their password.
 *
 * The JSON shapes follow supabase/auth's models (User, Identity): a user answers with its
 * identities, app_metadata and user_metadata, and omits the timestamps it has not got.
 */
import type postgres from "postgres";

type Tx = postgres.TransactionSql | postgres.Sql;

/** A row of auth.users as the stand-in reads it. */
export interface UserRow {
  id: string;
  aud: string | null;
  role: string | null;
  email: string | null;
  phone: string | null;
  email_confirmed_at: Date | null;
  phone_confirmed_at: Date | null;
  confirmed_at: Date | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  banned_until: Date | null;
  created_at: Date | null;
  updated_at: Date | null;
  deleted_at: Date | null;
  is_anonymous: boolean;
  has_password: boolean;
}

/** A row of auth.identities. */
export interface IdentityRow {
  id: string;
  provider_id: string;
  user_id: string;
  identity_data: Record<string, unknown>;
  provider: string;
  last_sign_in_at: Date | null;
  created_at: Date | null;
  updated_at: Date | null;
  email: string | null;
}

/** A row of auth.sessions. */
export interface SessionRow {
  id: string;
  user_id: string;
  created_at: Date;
  aal: string | null;
  not_after: Date | null;
}

/** A row of auth.refresh_tokens. */
export interface RefreshTokenRow {
  id: string;
  token: string;
  user_id: string;
  revoked: boolean;
  updated_at: Date;
  parent: string | null;
  session_id: string | null;
}

const USER_COLUMNS = `id, aud, role, email, phone, email_confirmed_at, phone_confirmed_at, confirmed_at,
  last_sign_in_at, raw_app_meta_data, raw_user_meta_data, banned_until, created_at, updated_at,
  deleted_at, is_anonymous, coalesce(encrypted_password, '') <> '' as has_password`;

/** bcrypt's cost for new hashes: GoTrue's (golang.org/x/crypto/bcrypt DefaultCost). */
const BCRYPT_COST = 10;

/** The user with this id, or null. */
export async function userById(sql: Tx, id: string): Promise<UserRow | null> {
  const [row] = await sql.unsafe<UserRow[]>(`select ${USER_COLUMNS} from auth.users where id = $1`, [id]);
  return row ?? null;
}

/** The (non-SSO) user with this email, compared case-insensitively as GoTrue does, or null. */
export async function userByEmail(sql: Tx, email: string): Promise<UserRow | null> {
  const [row] = await sql.unsafe<UserRow[]>(
    `select ${USER_COLUMNS} from auth.users where lower(email) = lower($1) and is_sso_user = false`,
    [email],
  );
  return row ?? null;
}

/** Whether the password matches the user's bcrypt hash (false when the user has none). */
export async function passwordMatches(sql: Tx, userId: string, password: string): Promise<boolean> {
  const [row] = await sql.unsafe<{ ok: boolean }[]>(
    `select coalesce(encrypted_password, '') <> '' and encrypted_password = extensions.crypt($2, encrypted_password) as ok
       from auth.users where id = $1`,
    [userId, password],
  );
  return row?.ok === true;
}

/** What a new user is made of. */
export interface NewUser {
  id?: string;
  email: string | null;
  phone?: string | null;
  password: string | null;
  userMetadata: Record<string, unknown>;
  appMetadata: Record<string, unknown>;
  confirmed: boolean;
  anonymous: boolean;
  role?: string;
  signedIn: boolean;
}

/**
 * Inserts the user and, for an email user, its `email` identity (provider_id the user's id,
 * identity_data {sub, email, email_verified, phone_verified}), as GoTrue's signup does.
 * The profile follows from our trigger on auth.users (private.handle_new_user).
 */
export async function insertUser(sql: Tx, u: NewUser): Promise<UserRow> {
  const id = u.id ?? crypto.randomUUID();
  const provider = u.anonymous ? null : "email";
  const appMeta = provider ? { provider, providers: [provider], ...u.appMetadata } : { ...u.appMetadata };
  const identityData = u.email ? { sub: id, email: u.email, email_verified: u.confirmed, phone_verified: false } : null;
  const userMeta = identityData ? { ...identityData, ...u.userMetadata } : { ...u.userMetadata };
  await sql.unsafe(
    `insert into auth.users (instance_id, id, aud, role, email, phone, encrypted_password, email_confirmed_at,
                             last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_anonymous, created_at, updated_at)
     values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', $2, $3, $4,
             case when $5::text is null then '' else extensions.crypt($5, extensions.gen_salt('bf', ${BCRYPT_COST})) end,
             case when $6 then now() end, case when $7 then now() end, $8::text::jsonb, $9::text::jsonb, $10, now(), now())`,
    [id, u.role ?? "authenticated", u.email, u.phone ?? null, u.password, u.confirmed && u.email !== null, u.signedIn,
      JSON.stringify(appMeta), JSON.stringify(userMeta), u.anonymous],
  );
  if (identityData) {
    await sql.unsafe(
      `insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
       values ($1, $4::uuid, $2::text::jsonb, 'email', case when $3 then now() end, now(), now())`,
      [id, JSON.stringify(identityData), u.signedIn, id],
    );
  }
  return (await userById(sql, id))!;
}

/** The user's identities, oldest first. */
export async function identitiesOf(sql: Tx, userId: string): Promise<IdentityRow[]> {
  return await sql.unsafe<IdentityRow[]>(
    `select id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email
       from auth.identities where user_id = $1 order by created_at, id`,
    [userId],
  );
}

/** A refresh token as GoTrue makes them (crypto.SecureAlphanumeric(12)): 12 characters of lowercase base32. */
export function newRefreshToken(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  return [...crypto.getRandomValues(new Uint8Array(12))].map((b) => alphabet[b % 32]).join("");
}

/** Starts a session (aal1) with its first refresh token and its `amr` entry; records the sign-in. */
export async function startSession(sql: Tx, userId: string, method: string, userAgent: string | null, ip: string | null): Promise<{ session: SessionRow; refreshToken: string }> {
  const id = crypto.randomUUID();
  const [session] = await sql.unsafe<SessionRow[]>(
    `insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip)
     values ($1, $2, now(), now(), 'aal1', $3, $4::inet)
     returning id, user_id, created_at, aal::text, not_after`,
    [id, userId, userAgent, ip],
  );
  const token = newRefreshToken();
  await sql.unsafe(
    `insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
     values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), null, $3)`,
    [token, userId, id],
  );
  await sql.unsafe(
    `insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id) values ($1, now(), now(), $2, gen_random_uuid())`,
    [id, method],
  );
  await sql.unsafe(`update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1`, [userId]);
  return { session, refreshToken: token };
}

/** The session's `amr` claim: how it was authenticated, newest first. */
export async function amrOf(sql: Tx, sessionId: string): Promise<{ method: string; timestamp: number }[]> {
  return await sql.unsafe<{ method: string; timestamp: number }[]>(
    `select authentication_method as method, extract(epoch from updated_at)::bigint::int as timestamp
       from auth.mfa_amr_claims where session_id = $1 order by updated_at desc`,
    [sessionId],
  );
}

/** The session with this id, or null. */
export async function sessionById(sql: Tx, id: string): Promise<SessionRow | null> {
  const [row] = await sql.unsafe<SessionRow[]>(`select id, user_id, created_at, aal::text, not_after from auth.sessions where id = $1`, [id]);
  return row ?? null;
}

/** The refresh token row, locked for the rest of the transaction, or null. */
export async function lockRefreshToken(sql: Tx, token: string): Promise<RefreshTokenRow | null> {
  const [row] = await sql.unsafe<RefreshTokenRow[]>(
    `select id::text, token, user_id, coalesce(revoked, false) as revoked, updated_at, parent, session_id
       from auth.refresh_tokens where token = $1 for update`,
    [token],
  );
  return row ?? null;
}

/** The session's newest refresh token that is not revoked, or null. */
export async function activeRefreshToken(sql: Tx, sessionId: string): Promise<RefreshTokenRow | null> {
  const [row] = await sql.unsafe<RefreshTokenRow[]>(
    `select id::text, token, user_id, coalesce(revoked, false) as revoked, updated_at, parent, session_id
       from auth.refresh_tokens where session_id = $1 and revoked is not true order by id desc limit 1`,
    [sessionId],
  );
  return row ?? null;
}

/** Revokes the token and issues its child in the same session (rotation). */
export async function rotate(sql: Tx, old: RefreshTokenRow): Promise<string> {
  await sql.unsafe(`update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1`, [old.id]);
  const token = newRefreshToken();
  await sql.unsafe(
    `insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
     values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)`,
    [token, old.user_id, old.token, old.session_id],
  );
  await sql.unsafe(`update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now() where id = $1`, [old.session_id]);
  return token;
}

/** Revokes every refresh token of the session: what GoTrue does when a revoked token is reused. */
export async function revokeFamily(sql: Tx, sessionId: string): Promise<void> {
  await sql.unsafe(`update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = $1 and revoked is not true`, [sessionId]);
}

/** Ends sessions of the user: all of them, only `sessionId`, or all but `sessionId`. */
export async function endSessions(sql: Tx, userId: string, scope: "global" | "local" | "others", sessionId: string | null): Promise<void> {
  if (scope === "global") await sql.unsafe(`delete from auth.sessions where user_id = $1`, [userId]);
  else if (scope === "local") await sql.unsafe(`delete from auth.sessions where user_id = $1 and id = $2`, [userId, sessionId]);
  else await sql.unsafe(`delete from auth.sessions where user_id = $1 and id is distinct from $2`, [userId, sessionId]);
}

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : undefined);

/** The identity as GoTrue's JSON has it. */
export function identityJson(i: IdentityRow): Record<string, unknown> {
  return {
    identity_id: i.id,
    id: i.provider_id,
    user_id: i.user_id,
    identity_data: i.identity_data,
    provider: i.provider,
    last_sign_in_at: iso(i.last_sign_in_at),
    created_at: iso(i.created_at),
    updated_at: iso(i.updated_at),
    ...(i.email ? { email: i.email } : {}),
  };
}

/** The user as GoTrue's JSON has it: empty timestamps are left out. */
export function userJson(u: UserRow, identities: IdentityRow[]): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: u.id,
    aud: u.aud ?? "",
    role: u.role ?? "",
    email: u.email ?? "",
    email_confirmed_at: iso(u.email_confirmed_at),
    phone: u.phone ?? "",
    phone_confirmed_at: iso(u.phone_confirmed_at),
    confirmed_at: iso(u.confirmed_at),
    last_sign_in_at: iso(u.last_sign_in_at),
    app_metadata: u.raw_app_meta_data ?? {},
    user_metadata: u.raw_user_meta_data ?? {},
    identities: identities.map(identityJson),
    created_at: iso(u.created_at),
    updated_at: iso(u.updated_at),
    banned_until: iso(u.banned_until),
    deleted_at: iso(u.deleted_at),
    is_anonymous: u.is_anonymous,
  };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}
