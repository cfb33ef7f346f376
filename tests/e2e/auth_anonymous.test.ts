/**
 * Anonymous sign-in, on a gateway of its own with enable_anonymous_sign_ins on (the
 * project's config.toml keeps it off): an anonymous user gets a session and a profile,
 * reads only their own rows, and becomes a permanent user by adding an email and password.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "@supabase/supabase-js";
import { decodeJwt } from "jose";
import { authSettings, freePort, startGateway, stopStack, waitForGateway, type StackConfig } from "../../local/stack.ts";
import { stack } from "../helpers.ts";

let cfg: StackConfig;
let api: string;

beforeAll(async () => {
  cfg = { ...stack().cfg, stateDir: mkdtempSync(join(tmpdir(), "coach-ledger-anonymous-")), apiPort: await freePort() };
  api = `http://127.0.0.1:${cfg.apiPort}`;
  const pid = startGateway(cfg, { GATEWAY_AUTH: JSON.stringify({ ...authSettings(), enable_anonymous_sign_ins: true }) });
  await waitForGateway(cfg, 60_000, pid);
});

afterAll(async () => {
  await stopStack(cfg);
  rmSync(cfg.stateDir, { recursive: true, force: true });
});

describe("anonymous sign-in", () => {
  it("gives a session and a profile; adding an email and password makes the user permanent", async () => {
    const supabase = createClient(api, stack().env.ANON_KEY, { auth: { persistSession: false, autoRefreshToken: false } });
    const settings = await (await fetch(`${api}/auth/v1/settings`, { headers: { apikey: stack().env.ANON_KEY } })).json();
    expect(settings.external.anonymous_users).toBe(true);

    const { data, error } = await supabase.auth.signInAnonymously({ options: { data: { full_name: "Guest" } } });
    expect(error).toBeNull();
    expect(data.user).toMatchObject({ email: "", is_anonymous: true, app_metadata: {}, identities: [], user_metadata: { full_name: "Guest" } });
    expect(decodeJwt(data.session!.access_token)).toMatchObject({ is_anonymous: true, role: "authenticated", user_role: "client", amr: [{ method: "anonymous", timestamp: expect.any(Number) }] });
    const profile = await supabase.rpc("get_my_profile");
    expect(profile.data).toMatchObject({ id: data.user!.id, role: "client", display_name: "Guest" });
    const visible = await supabase.rpc("list_profiles");
    expect(visible.data.map((p: { id: string }) => p.id)).toEqual([data.user!.id]);

    const passwordOnly = await supabase.auth.updateUser({ password: "guest-password" });
    expect(passwordOnly.error).toMatchObject({ status: 422, code: "validation_failed" });

    const email = `guest-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const upgraded = await supabase.auth.updateUser({ email, password: "guest-password" });
    expect(upgraded.error).toBeNull();
    expect(upgraded.data.user).toMatchObject({ id: data.user!.id, email, is_anonymous: false, app_metadata: { provider: "email", providers: ["email"] } });
    expect(upgraded.data.user!.identities).toEqual([expect.objectContaining({ provider: "email", id: data.user!.id })]);
    const refreshed = await supabase.auth.refreshSession();
    expect(decodeJwt(refreshed.data.session!.access_token)).toMatchObject({ is_anonymous: false, email });
    const again = await createClient(api, stack().env.ANON_KEY, { auth: { persistSession: false } }).auth.signInWithPassword({ email, password: "guest-password" });
    expect(again.error).toBeNull();
    expect(again.data.user!.id).toBe(data.user!.id);
  });
});
