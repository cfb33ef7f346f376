/** Shared by the Realtime end-to-end tests: clients, channels that record what they get, raw sockets. */
import type { RealtimeChannel, SupabaseClient } from "@supabase/supabase-js";
import type postgres from "postgres";
import { createClient } from "@supabase/supabase-js";
import { expect } from "vitest";
import { stack, userClient } from "../helpers.ts";
import { mintToken } from "../../local/stack.ts";

/** Polls until get() returns a value; rejects after ms (a guard against hanging, not a speed check). */
export function waitFor<T>(get: () => T | undefined, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      const v = get();
      if (v !== undefined) return resolve(v);
      if (Date.now() - t0 > ms) return reject(new Error("timed out waiting"));
      setTimeout(tick, 50);
    };
    tick();
  });
}

/** Resolves after ms (to let a token expire; never used to measure anything). */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The `exp` claim of a token. */
export function expOf(token: string): number {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp;
}

/** A supabase-js client whose access token is whatever `holder.token` says when asked (on `url`, the stack's by default). */
export async function realtimeClient(holder: { token: string }, vsn: string, url = stack().env.API_URL): Promise<SupabaseClient> {
  const client = createClient(url, stack().env.ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    accessToken: async () => holder.token,
    realtime: { vsn } as Record<string, unknown>,
  });
  await client.realtime.setAuth();
  return client;
}

/** A joined (or refused) private channel and everything it reported. */
export interface Watched {
  client: SupabaseClient;
  channel: RealtimeChannel;
  joined: { status: string; error?: string };
  /** Every status the subscribe callback reported, in order. */
  statuses: string[];
  /** Payloads of `system` messages. */
  system: Record<string, unknown>[];
  /** Payloads of INSERT broadcasts. */
  received: Record<string, unknown>[];
  /** When the subscribe callback reported each status (ms since the epoch). */
  at: Record<string, number>;
}

/** Channels opened by watch(), for the test files' afterEach to remove. */
export const opened: { client: SupabaseClient; channel: RealtimeChannel }[] = [];

/** Removes every channel watch() opened and disconnects its client. */
export async function closeAll(): Promise<void> {
  for (const { client, channel } of opened.splice(0)) {
    await client.removeChannel(channel);
    client.realtime.disconnect();
  }
}

/** Subscribes to a private topic and records statuses, system messages and broadcasts. */
export async function watch(client: SupabaseClient, topic: string): Promise<Watched> {
  const channel = client.channel(topic, { config: { private: true } });
  const w = {
    client, channel, statuses: [] as string[], system: [] as Record<string, unknown>[], received: [] as Record<string, unknown>[],
    at: {} as Record<string, number>,
  };
  channel.on("broadcast", { event: "INSERT" }, (msg) => w.received.push(msg.payload as Record<string, unknown>));
  channel.on("system", {}, (payload) => w.system.push(payload as Record<string, unknown>));
  opened.push({ client, channel });
  const joined = await new Promise<{ status: string; error?: string }>((resolve) => {
    channel.subscribe((status, err) => {
      w.statuses.push(status);
      w.at[status] ??= Date.now();
      if (status === "SUBSCRIBED" || status === "CHANNEL_ERROR" || status === "TIMED_OUT") resolve({ status, error: err?.message });
    });
  });
  return { ...w, joined };
}

/** Texts of the interactions a channel received. */
export const texts = (w: { received: Record<string, unknown>[] }) =>
  w.received.map((p) => (p.record as { content: { text: string } }).content.text);

/** Logs an interaction as the user; returns its unique text. */
export async function logAs(email: string, label = "rt"): Promise<string> {
  const text = `${label} ${crypto.randomUUID()}`;
  const logged = await (await userClient(email)).functions.invoke("log-interaction", { body: { sender: "user", content: { text } } });
  expect(logged.error).toBeNull();
  return text;
}

/** A frame as the tests read it, whatever the protocol version. */
export interface Frame {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

/** A raw socket (vsn 1.0.0 objects or 2.0.0 arrays) that records every frame it receives. */
export async function rawSocket(vsn: "1.0.0" | "2.0.0" = "1.0.0") {
  const frames: Frame[] = [];
  const raw: unknown[] = [];
  /** When each frame arrived (ms since the epoch), index for index with frames. */
  const times: number[] = [];
  const ws = new WebSocket(`${stack().env.API_URL.replace(/^http/, "ws")}/realtime/v1/websocket?apikey=${stack().env.ANON_KEY}&vsn=${vsn}`);
  ws.onmessage = (e) => {
    const data = JSON.parse(String(e.data));
    raw.push(data);
    times.push(Date.now());
    frames.push(Array.isArray(data) ? { join_ref: data[0], ref: data[1], topic: data[2], event: data[3], payload: data[4] } : data);
  };
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  let ref = 0;
  const send = (topic: string, event: string, payload: Record<string, unknown>, joinRef = "1") => {
    const r = String(++ref);
    ws.send(JSON.stringify(vsn === "2.0.0" ? [joinRef, r, topic, event, payload] : { topic, event, payload, ref: r, join_ref: joinRef }));
    return r;
  };
  /** Sends a message and waits for its reply. */
  const push = async (topic: string, event: string, payload: Record<string, unknown>) => {
    const r = send(topic, event, payload);
    return await waitFor(() => frames.find((f) => f.ref === r && f.event === "phx_reply"));
  };
  /** Joins a private topic with a token; resolves with the reply. */
  const join = (topic: string, token: string) =>
    push(topic, "phx_join", { config: { private: true, broadcast: {}, presence: {}, postgres_changes: [] }, access_token: token });
  return { ws, frames, raw, times, send, push, join };
}

/** Frames of broadcasts carrying the given text. */
export const broadcastsOf = (frames: Frame[], text: string) =>
  frames.filter((f) => f.event === "broadcast" && JSON.stringify(f.payload).includes(text));

/** A token for a seeded or created user. */
export const tokenFor = (email: string, expiresIn?: number) => mintToken(stack().cfg, { email, expiresIn });

/**
 * A new client and a new coach assigned to them (open window), written as postgres the way
 * the service role would set them up; emails start with `prefix`.
 */
export async function assignedPair(sql: postgres.Sql, prefix: string): Promise<{ client: string; coach: string; clientEmail: string; coachEmail: string }> {
  const tag = crypto.randomUUID().slice(0, 8);
  const clientEmail = `${prefix}-client-${tag}@example.com`;
  const coachEmail = `${prefix}-coach-${tag}@example.com`;
  const [{ id: client }] = await sql`insert into auth.users (id, email) values (gen_random_uuid(), ${clientEmail}) returning id`;
  const [{ id: coach }] = await sql`insert into auth.users (id, email, raw_app_meta_data)
                                    values (gen_random_uuid(), ${coachEmail}, '{"role": "coach"}') returning id`;
  await sql`insert into public.coach_assignments (coach_id, client_id, starts_at) values (${coach}, ${client}, now() - interval '1 minute')`;
  return { client, coach, clientEmail, coachEmail };
}
