/** Broadcast from Database through the local Realtime endpoint, with supabase-js. */
import type { SupabaseClient } from "@supabase/supabase-js";
import { createClient } from "@supabase/supabase-js";
import { afterEach, describe, expect, it } from "vitest";
import { ALICE, stack, userClient } from "../helpers.ts";
import { mintToken } from "../../local/stack.ts";
import { closeAll, opened, rawSocket, waitFor } from "./realtime_helpers.ts";

/** Joins a private channel; resolves with its status and, when refused, the reason. */
async function join(client: SupabaseClient, topic: string, onBroadcast?: (p: Record<string, unknown>) => void) {
  const channel = client.channel(topic, { config: { private: true } });
  if (onBroadcast) channel.on("broadcast", { event: "INSERT" }, (msg) => onBroadcast(msg.payload as Record<string, unknown>));
  opened.push({ client, channel });
  return await new Promise<{ status: string; error?: string }>((resolve) => {
    channel.subscribe((status, err) => {
      if (status === "SUBSCRIBED" || status === "CHANNEL_ERROR" || status === "TIMED_OUT") resolve({ status, error: err?.message });
    });
  });
}

afterEach(closeAll);

describe.each(["2.0.0", "1.0.0"])("realtime (protocol %s)", (vsn) => {
  async function clientFor(email: string): Promise<SupabaseClient> {
    const token = await mintToken(stack().cfg, { email });
    const client = createClient(stack().env.API_URL, stack().env.ANON_KEY, {
      accessToken: async () => token,
      realtime: { vsn } as Record<string, unknown>,
    });
    await client.realtime.setAuth(token);
    return client;
  }

  it("the user and their coach receive each new interaction on the private topic", async () => {
    const topic = `coach_interactions:${ALICE}`;
    const received: Record<string, Record<string, unknown>[]> = { alice: [], carol: [] };
    const alice = await clientFor("alice@example.com");
    const carol = await clientFor("carol@example.com");
    expect(await join(alice, topic, (p) => received.alice.push(p))).toEqual({ status: "SUBSCRIBED", error: undefined });
    expect((await join(carol, topic, (p) => received.carol.push(p))).status).toBe("SUBSCRIBED");

    const text = `realtime ${vsn} ${crypto.randomUUID()}`;
    const logged = await (await userClient("alice@example.com")).functions.invoke("log-interaction", {
      body: { sender: "user", content: { text } },
    });
    expect(logged.error).toBeNull();
    for (const who of ["alice", "carol"]) {
      const payload = await waitFor(() => received[who].find((p) => (p.record as { content: { text: string } }).content.text === text));
      expect(payload).toMatchObject({ operation: "INSERT", table: "coach_interactions", schema: "public", record: { id: logged.data.id, user_id: ALICE } });
    }
  });

  it("a stranger is refused the topic with Realtime's message", async () => {
    const bob = await clientFor("bob@example.com");
    const result = await join(bob, `coach_interactions:${ALICE}`);
    expect(result.status).toBe("CHANNEL_ERROR");
    expect(result.error).toContain(`Unauthorized: You do not have permissions to read from this Channel topic: coach_interactions:${ALICE}`);
  });
});

describe("realtime endpoint", () => {
  it("answers 426 without a websocket upgrade and refuses an invalid API key", async () => {
    const url = `${stack().env.API_URL}/realtime/v1/websocket?vsn=2.0.0`;
    let res = await fetch(`${url}&apikey=${stack().env.ANON_KEY}`);
    expect(res.status).toBe(426);
    await res.body?.cancel();
    const opened = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`${url.replace(/^http/, "ws")}&apikey=not-a-key`);
      ws.onopen = () => { ws.close(); resolve(true); };
      ws.onerror = () => resolve(false);
    });
    expect(opened).toBe(false);
  });

  it("refuses postgres_changes, which the stand-in does not serve", async () => {
    const client = createClient(stack().env.API_URL, stack().env.ANON_KEY);
    const channel = client.channel("any-table").on("postgres_changes", { event: "*", schema: "public", table: "profiles" }, () => {});
    opened.push({ client, channel });
    const result = await new Promise<{ status: string; error?: string }>((resolve) => {
      channel.subscribe((status, err) => {
        if (status !== "SUBSCRIBED" && status !== "CLOSED") resolve({ status, error: err?.message });
      });
    });
    expect(result.status).toBe("CHANNEL_ERROR");
    expect(result.error).toContain("postgres_changes is not served by the local stand-in");
  });
});

describe("realtime protocol, frame by frame", () => {
  /** A raw vsn 1.0.0 socket joined to Alice's topic. */
  async function aliceSocket(token: string) {
    const socket = await rawSocket("1.0.0");
    const topic = `realtime:coach_interactions:${ALICE}`;
    const joined = await socket.join(topic, token);
    expect(joined.payload.status).toBe("ok");
    return { ...socket, topic };
  }

  async function logAsAlice(): Promise<string> {
    const text = `frames ${crypto.randomUUID()}`;
    const logged = await (await userClient("alice@example.com")).functions.invoke("log-interaction", { body: { sender: "user", content: { text } } });
    expect(logged.error).toBeNull();
    return text;
  }
  const broadcasts = (frames: { event: string; payload: Record<string, unknown> }[], text: string) =>
    frames.filter((f) => f.event === "broadcast" && JSON.stringify(f.payload).includes(text));

  it("answers heartbeats and delivers to a joined socket until it leaves", async () => {
    const token = await mintToken(stack().cfg, { email: "alice@example.com" });
    const watcher = await aliceSocket(token);
    const leaver = await aliceSocket(token);
    const beat = await leaver.push("phoenix", "heartbeat", {});
    expect(beat.payload).toEqual({ status: "ok", response: {} });

    const first = await logAsAlice();
    await waitFor(() => broadcasts(leaver.frames, first)[0]);
    const left = await leaver.push(leaver.topic, "phx_leave", {});
    expect(left.payload.status).toBe("ok");
    const second = await logAsAlice();
    await waitFor(() => broadcasts(watcher.frames, second)[0]);
    expect(broadcasts(leaver.frames, second)).toEqual([]);
    watcher.ws.close();
    leaver.ws.close();
  });

  it("stops delivering to a channel whose new access token is invalid", async () => {
    const token = await mintToken(stack().cfg, { email: "alice@example.com" });
    const watcher = await aliceSocket(token);
    const revoked = await aliceSocket(token);
    revoked.ws.send(JSON.stringify({ topic: revoked.topic, event: "access_token", payload: { access_token: "not-a-token" }, ref: "99", join_ref: "1" }));
    await waitFor(() => revoked.frames.find((f) => f.event === "phx_close"));
    const text = await logAsAlice();
    await waitFor(() => broadcasts(watcher.frames, text)[0]);
    expect(broadcasts(revoked.frames, text)).toEqual([]);
    watcher.ws.close();
    revoked.ws.close();
  });
});
