/**
 * Clerk as a third-party Auth provider (issue 13): a gateway of its own on the shared
 * database with CLERK_ISSUER pointing at a JWKS endpoint this test serves, tokens signed
 * with the test's RS256 key as Clerk signs session tokens, and Clerk's webhooks signed with
 * Svix. A mapped Clerk user reaches their own rows (RPC, function, Realtime's read check)
 * and nobody else's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { createClient } from "@supabase/supabase-js";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { Webhook } from "svix";
import { freePort, startGateway, stopStack, waitForGateway, type StackConfig } from "../../local/stack.ts";
import { ALICE, stack } from "../helpers.ts";
import { closeAll, realtimeClient, texts, waitFor, watch } from "./realtime_helpers.ts";

const SECRET = `whsec_${Buffer.from("coach-ledger-clerk-webhook-test-secret").toString("base64")}`;
const sql = postgres(stack().env.DB_URL, { max: 1, onnotice: () => {} });
let cfg: StackConfig;
let api: string;
let issuer: string;
let jwksServer: Server;
let privateKey: CryptoKey;
const clerkId = `user_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
const email = `${clerkId}@example.com`;

/** A Clerk session token (v2 claims) with the Supabase integration's role claim. */
async function clerkToken(claims: Record<string, unknown> = {}, key: CryptoKey = privateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ azp: "http://localhost:3000", sid: "sess_test", v: 2, fva: [0, -1], role: "authenticated", sub: clerkId, ...claims })
    .setProtectedHeader({ alg: "RS256", kid: "ins_test", typ: "JWT" })
    .setIssuer(issuer).setIssuedAt(now).setNotBefore(now - 5).setExpirationTime(now + 60)
    .sign(key);
}

/** Posts a Clerk event to clerk-webhook, signed as Svix signs it. */
async function deliver(event: Record<string, unknown>, secret = SECRET): Promise<Response> {
  const body = JSON.stringify(event);
  const id = `msg_${crypto.randomUUID()}`;
  const at = new Date();
  const signature = new Webhook(secret).sign(id, at, body);
  return await fetch(`${api}/functions/v1/clerk-webhook`, {
    method: "POST",
    headers: { "content-type": "application/json", "svix-id": id, "svix-timestamp": String(Math.floor(at.getTime() / 1000)), "svix-signature": signature },
    body,
  });
}

const created = () => ({
  object: "event", type: "user.created", timestamp: Date.now(), instance_id: "ins_test",
  data: {
    object: "user", id: clerkId, first_name: "Gil", last_name: "Green", primary_email_address_id: "idn_1",
    email_addresses: [{ id: "idn_1", email_address: email, verification: { status: "verified" } }],
  },
});

beforeAll(async () => {
  const pair = await generateKeyPair("RS256", { extractable: true });
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "ins_test", alg: "RS256", use: "sig" };
  jwksServer = createServer((req, res) => {
    if (req.url === "/.well-known/jwks.json") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
    } else res.writeHead(404).end();
  });
  const port = await freePort();
  await new Promise<void>((resolve) => jwksServer.listen(port, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${port}`;
  cfg = { ...stack().cfg, stateDir: mkdtempSync(join(tmpdir(), "coach-ledger-clerk-")), apiPort: await freePort() };
  api = `http://127.0.0.1:${cfg.apiPort}`;
  const pid = startGateway(cfg, { CLERK_ISSUER: issuer, CLERK_WEBHOOK_SIGNING_SECRET: SECRET });
  await waitForGateway(cfg, 60_000, pid);
});

afterAll(async () => {
  await stopStack(cfg);
  rmSync(cfg.stateDir, { recursive: true, force: true });
  await new Promise((resolve) => jwksServer.close(resolve));
  await sql.end();
});

describe("Clerk webhooks", () => {
  it("refuses a delivery without a valid Svix signature and changes nothing", async () => {
    const res = await deliver(created(), `whsec_${Buffer.from("some-other-secret").toString("base64")}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ title: "Bad Request", detail: expect.stringContaining("No matching signature found") });
    const unsigned = await fetch(`${api}/functions/v1/clerk-webhook`, { method: "POST", body: JSON.stringify(created()) });
    expect(unsigned.status).toBe(400);
    expect(await sql`select 1 from auth.users where email = ${email}`).toHaveLength(0);
  });

  it("user.created provisions a user and its mapping; a replay changes nothing", async () => {
    const res = await deliver(created());
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ outcome: "created", user_id: expect.any(String) });
    const [row] = await sql`select e.user_id, u.email, p.display_name, p.role from private.external_identities e
      join auth.users u on u.id = e.user_id join public.profiles p on p.id = e.user_id
      where e.issuer = ${issuer} and e.subject = ${clerkId}`;
    expect(row).toEqual({ user_id: body.user_id, email, display_name: "Gil Green", role: "client" });
    const again = await deliver(created());
    expect(await again.json()).toEqual({ user_id: body.user_id, outcome: "replayed" });
    const bad = await deliver({ type: "user.created", data: { id: clerkId, email_addresses: "nope" } });
    expect(bad.status).toBe(422);
  });
});

describe("Clerk session tokens", () => {
  it("reach the mapped user's own rows through RPCs and functions, and nobody else's", async () => {
    const [{ user_id: userId }] = await sql`select user_id from private.external_identities where issuer = ${issuer} and subject = ${clerkId}`;
    const token = await clerkToken();
    const supabase = createClient(api, stack().env.ANON_KEY, { auth: { persistSession: false, autoRefreshToken: false }, accessToken: async () => token });
    const profile = await supabase.rpc("get_my_profile");
    expect(profile.error).toBeNull();
    expect(profile.data).toMatchObject({ id: userId, display_name: "Gil Green" });
    const visible = await supabase.rpc("list_profiles");
    expect(visible.data.map((p: { id: string }) => p.id)).toEqual([userId]);
    const me = await supabase.functions.invoke("me", { method: "GET" });
    expect(me.error).toBeNull();
    expect(me.data).toMatchObject({ id: userId, email });
    const logged = await supabase.functions.invoke("log-interaction", {
      body: { sender: "user", conversation_id: crypto.randomUUID(), content: { text: "Hello from Clerk" } },
      headers: { "Idempotency-Key": `clerk-${crypto.randomUUID()}` },
    });
    expect(logged.error).toBeNull();
    expect(logged.data.user_id).toBe(userId);
    const mine = await supabase.rpc("get_interaction_history", { page_size: 10 });
    expect(mine.error).toBeNull();
    expect(mine.data.map((r: { user_id: string }) => r.user_id)).toEqual([userId]);
    const alices = await supabase.rpc("get_interaction_history", { user_id: ALICE });
    expect(alices.error).not.toBeNull();
    expect(alices.status).toBe(403);
  });

  it("join the mapped user's private Realtime channel and receive their rows; Alice's channel refuses them", async () => {
    const [{ user_id: userId }] = await sql`select user_id from private.external_identities where issuer = ${issuer} and subject = ${clerkId}`;
    try {
      const own = await watch(await realtimeClient({ token: await clerkToken() }, "2.0.0", api), `coach_interactions:${userId}`);
      expect(own.joined.status).toBe("SUBSCRIBED");
      const alices = await watch(await realtimeClient({ token: await clerkToken() }, "1.0.0", api), `coach_interactions:${ALICE}`);
      expect(alices.joined.status).toBe("CHANNEL_ERROR");
      const token = await clerkToken();
      const supabase = createClient(api, stack().env.ANON_KEY, { auth: { persistSession: false, autoRefreshToken: false }, accessToken: async () => token });
      const text = `clerk realtime ${crypto.randomUUID()}`;
      const logged = await supabase.functions.invoke("log-interaction", { body: { sender: "user", content: { text } }, headers: { "Idempotency-Key": `clerk-rt-${crypto.randomUUID()}` } });
      expect(logged.error).toBeNull();
      await waitFor(() => texts(own).find((t) => t === text));
    } finally {
      await closeAll();
    }
  });

  it("refuses a token without role authenticated, one signed by another key, and an unmapped subject", async () => {
    const call = async (token: string) =>
      await fetch(`${api}/rest/v1/rpc/get_my_profile`, { method: "POST", headers: { apikey: stack().env.ANON_KEY, authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}" });
    const noRole = await call(await clerkToken({ role: undefined }));
    expect(noRole.status).toBe(401);
    expect((await noRole.json()).message).toMatch(/role/);
    const other = await generateKeyPair("RS256");
    expect((await call(await clerkToken({}, other.privateKey))).status).toBe(401);
    const fn = await fetch(`${api}/functions/v1/me`, { headers: { authorization: `Bearer ${await clerkToken({ sub: "user_unknown" })}` } });
    expect(fn.status).toBe(401);
    expect((await fn.json()).detail).toMatch(/no Coach Ledger account/);
    // Through PostgREST an unmapped subject is nobody: get_my_profile finds no profile.
    const unmapped = await call(await clerkToken({ sub: "user_unknown" }));
    expect(unmapped.status).toBe(200);
    expect((await unmapped.json())?.id ?? null).toBeNull();
  });
});

describe("user.deleted", () => {
  it("deletes the mapped user with their data; a second delivery finds nothing", async () => {
    const [{ user_id: userId }] = await sql`select user_id from private.external_identities where issuer = ${issuer} and subject = ${clerkId}`;
    const res = await deliver({ object: "event", type: "user.deleted", data: { object: "user", id: clerkId, deleted: true } });
    expect(await res.json()).toEqual({ user_id: userId, outcome: "deleted" });
    expect(await sql`select 1 from auth.users where id = ${userId}`).toHaveLength(0);
    expect(await sql`select 1 from private.external_identities where subject = ${clerkId}`).toHaveLength(0);
    const again = await deliver({ object: "event", type: "user.deleted", data: { object: "user", id: clerkId, deleted: true } });
    expect(await again.json()).toEqual({ user_id: null, outcome: "absent" });
  });
});
