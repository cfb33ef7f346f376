/** Identity through supabase-js against the local gateway: rpc() and functions.invoke(). */
import { describe, expect, it } from "vitest";
import { FunctionsHttpError } from "@supabase/supabase-js";
import { ALICE, BOB, CAROL, client, stack, userClient } from "../helpers.ts";
import { mintToken, signToken } from "../../local/stack.ts";

describe("profiles through rpc()", () => {
  it("Alice's token sees Alice's profile and not Bob's", async () => {
    const alice = await userClient("alice@example.com");
    const mine = await alice.rpc("get_my_profile");
    expect(mine.error).toBeNull();
    expect(mine.data).toMatchObject({ id: ALICE, role: "client", display_name: "Alice Archer" });
    const visible = await alice.rpc("list_profiles");
    expect(visible.error).toBeNull();
    expect(visible.data!.map((p: { id: string }) => p.id)).toEqual([ALICE]);
  });

  it("Bob sees only himself", async () => {
    const bob = await userClient("bob@example.com");
    const { data } = await bob.rpc("list_profiles");
    expect(data!.map((p: { id: string }) => p.id)).toEqual([BOB]);
  });

  it("Carol, Alice's coach, sees Alice's profile and her own", async () => {
    const carol = await userClient("carol@example.com");
    const { data } = await carol.rpc("list_profiles");
    expect(data!.map((p: { id: string }) => p.id).sort()).toEqual([ALICE, CAROL].sort());
  });

  it("the anon key sees neither: 401 permission denied", async () => {
    for (const key of [stack().env.ANON_KEY, stack().env.PUBLISHABLE_KEY]) {
      const res = await client(key).rpc("list_profiles");
      expect(res.status).toBe(401);
      expect(res.error).toMatchObject({ code: "42501", message: "permission denied for function list_profiles" });
      expect(res.data).toBeNull();
    }
  });

  it("the service role key sees every profile", async () => {
    for (const key of [stack().env.SERVICE_ROLE_KEY, stack().env.SECRET_KEY]) {
      const { data, error } = await client(key).rpc("list_profiles");
      expect(error).toBeNull();
      expect(data!.length).toBeGreaterThanOrEqual(3);
    }
  });

  it("Bob updates his own profile, and a bad time zone is refused and changes nothing", async () => {
    const bob = await userClient("bob@example.com");
    const ok = await bob.rpc("update_my_profile", { display_name: "Bob B.", preferences: { locale: "en-GB" } });
    expect(ok.error).toBeNull();
    expect(ok.data).toMatchObject({ id: BOB, display_name: "Bob B.", preferences: { locale: "en-GB" } });
    const bad = await bob.rpc("update_my_profile", { timezone: "Mars/Base", display_name: "Not saved" });
    expect(bad.status).toBe(400);
    expect(bad.error).toMatchObject({ code: "22023", message: "Unknown time zone: Mars/Base" });
    const after = await bob.rpc("get_my_profile");
    expect(after.data!.display_name).toBe("Bob B.");
  });

  it("an expired or foreign token is refused with 401", async () => {
    const expired = await signToken({ sub: ALICE, role: "authenticated", exp: Math.floor(Date.now() / 1000) - 10 });
    const res = await client(stack().env.ANON_KEY, expired).rpc("get_my_profile");
    expect(res.status).toBe(401);
    expect(res.error?.code).toBe("PGRST303");
  });
});

describe("functions through functions.invoke()", () => {
  it("me returns the signed-in user's profile", async () => {
    const alice = await userClient("alice@example.com");
    const { data, error } = await alice.functions.invoke("me", { method: "GET" });
    expect(error).toBeNull();
    expect(data).toMatchObject({ id: ALICE, email: "alice@example.com", profile: { id: ALICE, display_name: "Alice Archer" } });
  });

  it("me answers 404 problem+json for the anon key, which is no user", async () => {
    const { error } = await client(stack().env.ANON_KEY).functions.invoke("me", { method: "GET" });
    expect(error).toBeInstanceOf(FunctionsHttpError);
    const res = (error as FunctionsHttpError).context as Response;
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(await res.json()).toMatchObject({ status: 404, title: "Not Found" });
  });

  it("an invalid JWT is refused by the gateway with 401", async () => {
    const { error } = await client("not-a-real-key").functions.invoke("me", { method: "GET" });
    const res = (error as FunctionsHttpError).context as Response;
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ msg: "Invalid JWT" });
  });

  it("an unknown function answers 404", async () => {
    const { error } = await client(stack().env.ANON_KEY).functions.invoke("no-such-function");
    expect(((error as FunctionsHttpError).context as Response).status).toBe(404);
  });

  it("a CORS preflight is answered without a token", async () => {
    const res = await fetch(`${stack().env.FUNCTIONS_URL}/me`, {
      method: "OPTIONS",
      headers: { origin: "http://app.example", "access-control-request-method": "GET" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    await res.body?.cancel();
  });
});

describe("tokens", () => {
  it("a user token carries the claims GoTrue puts in one", async () => {
    const token = await mintToken(stack().cfg, { email: "carol@example.com" });
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    expect(Object.keys(claims).sort()).toEqual(
      ["aal", "amr", "app_metadata", "aud", "email", "exp", "iat", "is_anonymous", "iss", "phone", "role", "session_id", "sub", "user_metadata"].sort(),
    );
    expect(claims).toMatchObject({ sub: CAROL, aud: "authenticated", role: "authenticated", email: "carol@example.com", app_metadata: { role: "coach" } });
    expect(claims.exp - claims.iat).toBe(3600);
  });

  it("an unknown email is refused", async () => {
    await expect(mintToken(stack().cfg, { email: "nobody@example.com" })).rejects.toThrow("No user with email nobody@example.com");
  });
});
