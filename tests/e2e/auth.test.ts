/**
 * Sign-in through supabase-js against the local /auth/v1 (issue 13): sign-up, password
 * sign-in, refresh with rotation, sign-out scopes, GoTrue's error codes, the admin API,
 * the custom access token hook's claim, asymmetric signing keys with the JWKS, and
 * onAuthStateChange with automatic refresh.
 */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import postgres from "postgres";
import { AuthApiError, AuthWeakPasswordError, createClient, type AuthChangeEvent, type SupabaseClient } from "@supabase/supabase-js";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { ALICE, CAROL, stack } from "../helpers.ts";
import { signToken } from "../../local/stack.ts";
import { closeAll, logAs, realtimeClient, texts, waitFor, watch } from "./realtime_helpers.ts";

const sql = postgres(stack().env.DB_URL, { max: 1, onnotice: () => {} });
afterAll(async () => await sql.end());
afterEach(() => vi.useRealTimers());

/** A fresh supabase-js client on the anon key, holding its session in memory. */
function anonClient(opts: { autoRefreshToken?: boolean } = {}): SupabaseClient {
  return createClient(stack().env.API_URL, stack().env.ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: opts.autoRefreshToken ?? false, detectSessionInUrl: false },
  });
}

/** A client acting with the given access token (as an app's server would). */
function tokenClient(token: string): SupabaseClient {
  return createClient(stack().env.API_URL, stack().env.ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    accessToken: async () => token,
  });
}

const admin = () => createClient(stack().env.API_URL, stack().env.SERVICE_ROLE_KEY, { auth: { persistSession: false, autoRefreshToken: false } });
const unique = () => `user-${crypto.randomUUID().slice(0, 8)}@example.com`;

describe("sign-up and sign-in", () => {
  it("signUp confirms at once, creates the profile through the trigger, and signs a GoTrue token with ES256 that the JWKS verifies", async () => {
    const email = unique();
    const supabase = anonClient();
    const { data, error } = await supabase.auth.signUp({ email, password: "correct-horse", options: { data: { full_name: "Dana Diaz", timezone: "Europe/Paris" } } });
    expect(error).toBeNull();
    const { session, user } = data;
    expect(user).toMatchObject({ email, aud: "authenticated", role: "authenticated", is_anonymous: false, app_metadata: { provider: "email", providers: ["email"] } });
    expect(user!.user_metadata).toMatchObject({ email, email_verified: true, phone_verified: false, sub: user!.id, full_name: "Dana Diaz" });
    expect(user!.identities).toEqual([expect.objectContaining({ id: user!.id, user_id: user!.id, provider: "email", identity_data: expect.objectContaining({ email, sub: user!.id }) })]);
    expect(session).toMatchObject({ token_type: "bearer", expires_in: 3600 });
    expect(session!.refresh_token).toMatch(/^[a-z2-7]{12}$/);

    // Exactly GoTrue's claims, plus the hook's user_role; signed with the published key.
    const claims = decodeJwt(session!.access_token);
    expect(Object.keys(claims).sort()).toEqual(
      ["aal", "amr", "app_metadata", "aud", "email", "exp", "iat", "is_anonymous", "iss", "phone", "role", "session_id", "sub", "user_metadata", "user_role"],
    );
    expect(claims).toMatchObject({ iss: `${stack().env.API_URL}/auth/v1`, sub: user!.id, aud: "authenticated", role: "authenticated", aal: "aal1", email, phone: "", is_anonymous: false, user_role: "client" });
    expect(claims.amr).toEqual([{ method: "password", timestamp: expect.any(Number) }]);
    const header = decodeProtectedHeader(session!.access_token);
    expect(header).toMatchObject({ alg: "ES256", typ: "JWT" });
    const jwks = await (await fetch(`${stack().env.API_URL}/auth/v1/.well-known/jwks.json`)).json();
    expect(jwks.keys).toEqual([expect.objectContaining({ kty: "EC", crv: "P-256", alg: "ES256", kid: header.kid, use: "sig", key_ops: ["verify"] })]);
    expect(jwks.keys[0]).not.toHaveProperty("d");
    await jwtVerify(session!.access_token, createLocalJWKSet(jwks));

    // The new user's token works on RPCs and functions at once: the profile came from the trigger.
    const profile = await supabase.rpc("get_my_profile");
    expect(profile.error).toBeNull();
    expect(profile.data).toMatchObject({ id: user!.id, role: "client", display_name: "Dana Diaz", timezone: "Europe/Paris" });
    const me = await supabase.functions.invoke("me", { method: "GET" });
    expect(me.error).toBeNull();
    expect(me.data).toMatchObject({ id: user!.id, email });
  });

  it("a seeded user signs in with the password seed.sql hashed, creates a coaching session, logs an interaction and reads it back (seed 004's E2E)", async () => {
    const supabase = anonClient();
    const { data, error } = await supabase.auth.signInWithPassword({ email: "alice@example.com", password: "password123" });
    expect(error).toBeNull();
    expect(data.user!.id).toBe(ALICE);
    expect(decodeJwt(data.session!.access_token).user_role).toBe("client");
    const started = await supabase.rpc("start_coaching_session", { session_type: "self_coaching", theme: "Signed in" });
    expect(started.error).toBeNull();
    expect(started.data).toMatchObject({ user_id: ALICE, theme: "Signed in" });
    const logged = await supabase.functions.invoke("log-interaction", {
      body: { sender: "user", conversation_id: crypto.randomUUID(), content: { text: "Signed in for real" } },
      headers: { "Idempotency-Key": `auth-e2e-${crypto.randomUUID()}` },
    });
    expect(logged.error).toBeNull();
    expect(logged.data).toMatchObject({ user_id: ALICE, sender: "user" });
    const history = await supabase.rpc("get_interaction_history", { page_size: 5 });
    expect(history.error).toBeNull();
    expect(history.data.map((r: { id: string }) => r.id)).toContain(logged.data.id);
  });

  it("the coach's token carries user_role coach from the hook", async () => {
    const { data } = await anonClient().auth.signInWithPassword({ email: "carol@example.com", password: "password123" });
    expect(decodeJwt(data.session!.access_token)).toMatchObject({ sub: CAROL, user_role: "coach" });
  });

  it("answers wrong passwords, duplicate sign-ups, weak passwords and missing fields with GoTrue's codes, and stores nothing", async () => {
    const supabase = anonClient();
    const [{ count: before }] = await sql`select count(*)::int from auth.users`;

    const wrong = await supabase.auth.signInWithPassword({ email: "alice@example.com", password: "not-her-password" });
    expect(wrong.error).toBeInstanceOf(AuthApiError);
    expect(wrong.error).toMatchObject({ status: 400, code: "invalid_credentials", message: "Invalid login credentials" });
    const nobody = await supabase.auth.signInWithPassword({ email: "nobody@example.com", password: "whatever1" });
    expect(nobody.error).toMatchObject({ status: 400, code: "invalid_credentials" });

    const dup = await supabase.auth.signUp({ email: "ALICE@example.com", password: "another-password" });
    expect(dup.error).toMatchObject({ status: 422, code: "user_already_exists", message: "User already registered" });

    const weak = await supabase.auth.signUp({ email: unique(), password: "abc" });
    expect(weak.error).toBeInstanceOf(AuthWeakPasswordError);
    expect(weak.error).toMatchObject({ status: 422, code: "weak_password", message: "Password should be at least 6 characters.", reasons: ["length"] });

    const badEmail = await supabase.auth.signUp({ email: "not-an-email", password: "long-enough" });
    expect(badEmail.error).toMatchObject({ status: 400, code: "validation_failed", message: "Unable to validate email address: invalid format" });

    const anonymous = await supabase.auth.signInAnonymously();
    expect(anonymous.error).toMatchObject({ status: 422, code: "anonymous_provider_disabled", message: "Anonymous sign-ins are disabled" });

    const [{ count: after }] = await sql`select count(*)::int from auth.users`;
    expect(after).toBe(before);
  });

  it("speaks the legacy error shape to clients that send no API version", async () => {
    const res = await fetch(`${stack().env.API_URL}/auth/v1/token?grant_type=password`, {
      method: "POST",
      headers: { apikey: stack().env.ANON_KEY, "content-type": "application/json" },
      body: JSON.stringify({ email: "alice@example.com", password: "nope" }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("x-sb-error-code")).toBe("invalid_credentials");
    expect(await res.json()).toEqual({ code: 400, error_code: "invalid_credentials", msg: "Invalid login credentials" });
    const nokey = await fetch(`${stack().env.API_URL}/auth/v1/settings`);
    expect(nokey.status).toBe(401);
  });

  it("serves /settings and /health as GoTrue does", async () => {
    const headers = { apikey: stack().env.ANON_KEY };
    const settings = await (await fetch(`${stack().env.API_URL}/auth/v1/settings`, { headers })).json();
    expect(settings).toMatchObject({ disable_signup: false, mailer_autoconfirm: true, external: { email: true, anonymous_users: false, phone: false } });
    const health = await (await fetch(`${stack().env.API_URL}/auth/v1/health`, { headers })).json();
    expect(health).toMatchObject({ name: "GoTrue" });
  });
});

describe("sessions", () => {
  it("refresh rotates the token; a revoked token reused after the reuse interval revokes the whole family", async () => {
    const supabase = anonClient();
    const { data } = await supabase.auth.signInWithPassword({ email: "bob@example.com", password: "password123" });
    const first = data.session!;
    const second = (await supabase.auth.refreshSession()).data.session!;
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(decodeJwt(second.access_token).session_id).toBe(decodeJwt(first.access_token).session_id);
    // A retried refresh with the parent of the active token gets the active token back.
    const retried = await anonClient().auth.refreshSession({ refresh_token: first.refresh_token });
    expect(retried.error).toBeNull();
    expect(retried.data.session!.refresh_token).toBe(second.refresh_token);
    const third = (await supabase.auth.refreshSession()).data.session!;

    // The first token was revoked long ago (past refresh_token_reuse_interval, 10 s).
    const sessionId = decodeJwt(first.access_token).session_id as string;
    await sql`update auth.refresh_tokens set updated_at = now() - interval '1 minute' where session_id = ${sessionId}`;
    const stolen = await anonClient().auth.refreshSession({ refresh_token: first.refresh_token });
    expect(stolen.error).toMatchObject({ status: 400, code: "refresh_token_already_used", message: "Invalid Refresh Token: Already Used" });
    const [{ active }] = await sql`select count(*)::int as active from auth.refresh_tokens where session_id = ${sessionId} and revoked is not true`;
    expect(active).toBe(0);
    await sql`update auth.refresh_tokens set updated_at = now() - interval '1 minute' where session_id = ${sessionId}`;
    const legit = await anonClient().auth.refreshSession({ refresh_token: third.refresh_token });
    expect(legit.error).toMatchObject({ status: 400, code: "refresh_token_already_used" });
  });

  it("after sign-out the access token still verifies until it expires; the refresh token and /user do not", async () => {
    const supabase = anonClient();
    const { data } = await supabase.auth.signInWithPassword({ email: "alice@example.com", password: "password123" });
    const { access_token, refresh_token } = data.session!;
    expect((await supabase.auth.signOut({ scope: "local" })).error).toBeNull();

    const stale = tokenClient(access_token);
    const profile = await stale.rpc("get_my_profile");
    expect(profile.error).toBeNull();
    expect(profile.data.id).toBe(ALICE);
    const me = await stale.functions.invoke("me", { method: "GET" });
    expect(me.error).toBeNull();

    const refreshed = await anonClient().auth.refreshSession({ refresh_token });
    expect(refreshed.error).toMatchObject({ status: 400, code: "refresh_token_not_found", message: "Invalid Refresh Token: Refresh Token Not Found" });
    const user = await anonClient().auth.getUser(access_token);
    expect(user.error?.name).toBe("AuthSessionMissingError");
    const raw = await fetch(`${stack().env.API_URL}/auth/v1/user`, { headers: { apikey: stack().env.ANON_KEY, authorization: `Bearer ${access_token}`, "x-supabase-api-version": "2024-01-01" } });
    expect(raw.status).toBe(403);
    expect(await raw.json()).toEqual({ code: "session_not_found", message: "Session from session_id claim in JWT does not exist" });
  });

  it("signOut scopes: others keeps this session, global ends every one", async () => {
    const email = unique();
    const a = anonClient();
    await a.auth.signUp({ email, password: "scope-password" });
    const b = anonClient();
    const c = anonClient();
    await b.auth.signInWithPassword({ email, password: "scope-password" });
    await c.auth.signInWithPassword({ email, password: "scope-password" });
    const userId = (await a.auth.getUser()).data.user!.id;
    const count = async () => (await sql`select count(*)::int as n from auth.sessions where user_id = ${userId}`)[0].n;
    expect(await count()).toBe(3);
    expect((await a.auth.signOut({ scope: "others" })).error).toBeNull();
    expect(await count()).toBe(1);
    expect((await a.auth.getUser()).error).toBeNull();
    expect((await b.auth.refreshSession()).error).toMatchObject({ code: "refresh_token_not_found" });
    await c.auth.signInWithPassword({ email, password: "scope-password" });
    expect(await count()).toBe(2);
    expect((await c.auth.signOut()).error).toBeNull(); // global is supabase-js's default
    expect(await count()).toBe(0);
  });

  it("a token without a session_id signs its user out everywhere, whatever the scope (GoTrue's logout)", async () => {
    const email = unique();
    const a = anonClient();
    const { data } = await a.auth.signUp({ email, password: "no-session-1" });
    await anonClient().auth.signInWithPassword({ email, password: "no-session-1" });
    const userId = data.user!.id;
    const now = Math.floor(Date.now() / 1000);
    const bare = await signToken({ iss: `${stack().env.API_URL}/auth/v1`, sub: userId, aud: "authenticated", role: "authenticated", iat: now, exp: now + 60 });
    const res = await fetch(`${stack().env.API_URL}/auth/v1/logout?scope=local`, { method: "POST", headers: { apikey: stack().env.ANON_KEY, authorization: `Bearer ${bare}` } });
    expect(res.status).toBe(204);
    expect(await sql`select 1 from auth.sessions where user_id = ${userId}`).toHaveLength(0);
  });

  it("updateUser changes metadata and the password; the old password stops working and other sessions end", async () => {
    const email = unique();
    const supabase = anonClient();
    await supabase.auth.signUp({ email, password: "first-password", options: { data: { full_name: "Eve Early" } } });
    const other = anonClient();
    await other.auth.signInWithPassword({ email, password: "first-password" });
    const same = await supabase.auth.updateUser({ password: "first-password" });
    expect(same.error).toMatchObject({ status: 422, code: "same_password" });
    const updated = await supabase.auth.updateUser({ password: "second-password", data: { full_name: null, nickname: "Eve" } });
    expect(updated.error).toBeNull();
    expect(updated.data.user!.user_metadata).toMatchObject({ nickname: "Eve" });
    expect(updated.data.user!.user_metadata).not.toHaveProperty("full_name");
    expect((await anonClient().auth.signInWithPassword({ email, password: "first-password" })).error).toMatchObject({ code: "invalid_credentials" });
    expect((await anonClient().auth.signInWithPassword({ email, password: "second-password" })).error).toBeNull();
    expect((await other.auth.refreshSession()).error).toMatchObject({ code: "refresh_token_not_found" });
    const appMeta = await fetch(`${stack().env.API_URL}/auth/v1/user`, {
      method: "PUT",
      headers: { apikey: stack().env.ANON_KEY, authorization: `Bearer ${(await supabase.auth.getSession()).data.session!.access_token}`, "content-type": "application/json", "x-supabase-api-version": "2024-01-01" },
      body: JSON.stringify({ app_metadata: { role: "coach" } }),
    });
    expect(appMeta.status).toBe(403);
    expect((await appMeta.json()).code).toBe("not_admin");
  });

  it("onAuthStateChange reports sign-in, automatic refresh and sign-out", async () => {
    const supabase = anonClient({ autoRefreshToken: true });
    const events: AuthChangeEvent[] = [];
    const { data: { subscription } } = supabase.auth.onAuthStateChange((event) => {
      events.push(event);
      // Back to the real clock at once, so the next tick does not find the new token expiring too.
      if (event === "TOKEN_REFRESHED") vi.useRealTimers();
    });
    try {
      const { data } = await supabase.auth.signInWithPassword({ email: "bob@example.com", password: "password123" });
      await supabase.auth.stopAutoRefresh();
      // Move the client's clock to 50 s before the token expires; its refresh ticker
      // (every 30 s, refreshing within 90 s of expiry) refreshes on its first tick.
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime((data.session!.expires_at! - 50) * 1000);
      await supabase.auth.startAutoRefresh();
      await vi.waitUntil(() => events.includes("TOKEN_REFRESHED"), { timeout: 10_000, interval: 50 });
      vi.useRealTimers();
      const after = (await supabase.auth.getSession()).data.session!;
      expect(after.refresh_token).not.toBe(data.session!.refresh_token);
      await supabase.auth.stopAutoRefresh();
      await supabase.auth.signOut();
      // auth-js may refresh twice in that tick (loading the session, then the tick itself).
      expect(events.filter((e, i) => e !== events[i - 1])).toEqual(["INITIAL_SESSION", "SIGNED_IN", "TOKEN_REFRESHED", "SIGNED_OUT"]);
    } finally {
      subscription.unsubscribe();
    }
  });
});

describe("admin API (service role)", () => {
  it("creates, lists, reads, updates and deletes users; a coach made by the admin gets user_role coach", async () => {
    const auth = admin().auth.admin;
    const email = unique();
    const created = await auth.createUser({ email, password: "admin-made-1", email_confirm: true, user_metadata: { full_name: "Frank Fox" }, app_metadata: { role: "coach" } });
    expect(created.error).toBeNull();
    const id = created.data.user!.id;
    expect(created.data.user!.app_metadata).toMatchObject({ provider: "email", role: "coach" });
    const [profile] = await sql`select role, display_name from public.profiles where id = ${id}`;
    expect(profile).toEqual({ role: "coach", display_name: "Frank Fox" });

    const dup = await auth.createUser({ email, password: "whatever-1" });
    expect(dup.error).toMatchObject({ status: 422, code: "email_exists" });

    const listed = await auth.listUsers({ page: 1, perPage: 2 });
    expect(listed.error).toBeNull();
    expect(listed.data.users).toHaveLength(2);
    const [{ total }] = await sql`select count(*)::int as total from auth.users`;
    expect((listed.data as { total: number }).total).toBe(total);

    expect((await auth.getUserById(id)).data.user).toMatchObject({ id, email });
    const missing = await auth.getUserById(crypto.randomUUID());
    expect(missing.error).toMatchObject({ status: 404, code: "user_not_found" });

    const updated = await auth.updateUserById(id, { user_metadata: { timezone: "Asia/Tokyo" } });
    expect(updated.data.user!.user_metadata).toMatchObject({ full_name: "Frank Fox", timezone: "Asia/Tokyo" });

    const signedIn = await anonClient().auth.signInWithPassword({ email, password: "admin-made-1" });
    expect(decodeJwt(signedIn.data.session!.access_token).user_role).toBe("coach");

    expect((await auth.deleteUser(id)).error).toBeNull();
    expect(await sql`select 1 from auth.users where id = ${id}`).toHaveLength(0);
    expect(await sql`select 1 from public.profiles where id = ${id}`).toHaveLength(0);
  });

  it("refuses the admin API to a signed-in user: 403 not_admin", async () => {
    const { data } = await anonClient().auth.signInWithPassword({ email: "alice@example.com", password: "password123" });
    const res = await fetch(`${stack().env.API_URL}/auth/v1/admin/users`, {
      headers: { apikey: stack().env.ANON_KEY, authorization: `Bearer ${data.session!.access_token}`, "x-supabase-api-version": "2024-01-01" },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ code: "not_admin", message: "User not allowed" });
  });
});

describe.each(["2.0.0", "1.0.0"])("Realtime with tokens from /auth/v1 (protocol %s)", (vsn) => {
  afterEach(closeAll);

  it("a signed-in user's ES256 token joins their private channel and receives their rows; another user's is refused", async () => {
    const signIn = async (email: string) =>
      (await anonClient().auth.signInWithPassword({ email, password: "password123" })).data.session!.access_token;
    const topic = `coach_interactions:${ALICE}`;
    const alice = await watch(await realtimeClient({ token: await signIn("alice@example.com") }, vsn), topic);
    expect(alice.joined.status).toBe("SUBSCRIBED");
    const bob = await watch(await realtimeClient({ token: await signIn("bob@example.com") }, vsn), topic);
    expect(bob.joined).toMatchObject({ status: "CHANNEL_ERROR" });
    const text = await logAs("alice@example.com", "es256");
    await waitFor(() => texts(alice).find((t) => t === text));
    expect(texts(bob)).toEqual([]);
  });
});
