/**
 * Broadcasts sent by clients and Presence through the local Realtime, with supabase-js over
 * both protocol versions, then frame by frame: a client and their assigned coach on the
 * client's private topic (authorized by the policies on realtime.messages), a topic the user
 * may read but not write, public channels, and Realtime's limits.
 */
import type { RealtimeChannel, SupabaseClient } from "@supabase/supabase-js";
import postgres from "postgres";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ALICE, stack } from "../helpers.ts";
import { assignedPair, closeAll, opened, rawSocket, realtimeClient, tokenFor, waitFor } from "./realtime_helpers.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
afterAll(() => sql.end());
afterEach(closeAll);

/** A subscribed channel that records the broadcasts of one event, presence syncs and system messages. */
interface Open {
  client: SupabaseClient;
  channel: RealtimeChannel;
  status: string;
  error?: string;
  /** Payloads of `typing` broadcasts, as sent. */
  got: unknown[];
  /** presenceState() at each sync. */
  syncs: Record<string, Record<string, unknown>[]>[];
  /** join and leave events: [event, key]. */
  presenceEvents: [string, string][];
  system: Record<string, unknown>[];
  statuses: string[];
}

/** Joins `topic` as the user (or with `token`), with the given config, listening to `typing` and presence. */
async function open(email: string, topic: string, vsn: string, config: Record<string, unknown> = {}, presence = false): Promise<Open> {
  const client = await realtimeClient({ token: await tokenFor(email) }, vsn);
  const channel = client.channel(topic, { config: { private: true, ...config } });
  const o: Open = { client, channel, status: "", got: [], syncs: [], presenceEvents: [], system: [], statuses: [] };
  channel.on("broadcast", { event: "typing" }, (msg) => o.got.push(msg.payload));
  channel.on("system", {}, (payload) => o.system.push(payload as Record<string, unknown>));
  if (presence) {
    channel.on("presence", { event: "sync" }, () => o.syncs.push(channel.presenceState() as Record<string, Record<string, unknown>[]>));
    channel.on("presence", { event: "join" }, ({ key }) => o.presenceEvents.push(["join", key]));
    channel.on("presence", { event: "leave" }, ({ key }) => o.presenceEvents.push(["leave", key]));
  }
  opened.push({ client, channel });
  const joined = await new Promise<{ status: string; error?: string }>((resolve) => {
    channel.subscribe((status, err) => {
      o.statuses.push(status);
      if (status === "SUBSCRIBED" || status === "CHANNEL_ERROR" || status === "TIMED_OUT") resolve({ status, error: err?.message });
    });
  });
  return Object.assign(o, joined);
}

/** The presence state without the server's refs: key → list of payloads. */
function present(state: Record<string, Record<string, unknown>[]>): Record<string, Record<string, unknown>[]> {
  return Object.fromEntries(Object.entries(state).map(([key, metas]) =>
    [key, metas.map(({ presence_ref, ...rest }) => (expect(typeof presence_ref).toBe("string"), rest))]));
}

/** Resolves once the channel's latest presence state equals `expected` (refs left out). */
const synced = (o: Open, expected: Record<string, Record<string, unknown>[]>) =>
  waitFor(() => {
    const last = o.syncs.at(-1);
    return last && JSON.stringify(present(last)) === JSON.stringify(expected) ? true : undefined;
  });

describe.each(["2.0.0", "1.0.0"])("client broadcast (protocol %s)", (vsn) => {
  it("a client and their coach broadcast to each other; self and ack apply to whoever asked for them", async () => {
    const a = await assignedPair(sql, "cb");
    const topic = `coach_interactions:${a.client}`;
    const client = await open(a.clientEmail, topic, vsn, { broadcast: { self: true, ack: true } });
    const coach = await open(a.coachEmail, topic, vsn);
    expect([client.status, coach.status]).toEqual(["SUBSCRIBED", "SUBSCRIBED"]);

    // The client asked for ack: send() resolves once the server has sent the message on.
    expect(await client.channel.send({ type: "broadcast", event: "typing", payload: { who: "client", n: 1 } })).toBe("ok");
    await waitFor(() => (coach.got.length === 1 ? true : undefined));
    await waitFor(() => (client.got.length === 1 ? true : undefined));
    expect(coach.got).toEqual([{ who: "client", n: 1 }]);
    expect(client.got).toEqual([{ who: "client", n: 1 }]);

    expect(await coach.channel.send({ type: "broadcast", event: "typing", payload: { who: "coach", n: 2 } })).toBe("ok");
    await waitFor(() => (client.got.length === 2 ? true : undefined));
    // A later message of the client's has reached the coach: the coach's own was never sent back (no self).
    expect(await client.channel.send({ type: "broadcast", event: "typing", payload: { who: "client", n: 3 } })).toBe("ok");
    await waitFor(() => (coach.got.length === 2 ? true : undefined));
    expect(coach.got).toEqual([{ who: "client", n: 1 }, { who: "client", n: 3 }]);
    expect(client.got).toEqual([{ who: "client", n: 1 }, { who: "coach", n: 2 }, { who: "client", n: 3 }]);
  });

  it("a topic the user may read but not write: a broadcast is dropped unanswered and track is refused", async () => {
    const topic = `nudges:${ALICE}`;
    const sender = await open("alice@example.com", topic, vsn, { broadcast: { self: true, ack: true } });
    const listener = await open("alice@example.com", topic, vsn);
    expect([sender.status, listener.status]).toEqual(["SUBSCRIBED", "SUBSCRIBED"]);
    // Realtime answers a refused broadcast with nothing, so an ack never comes.
    expect(await sender.channel.send({ type: "broadcast", event: "typing", payload: { n: 1 } }, { timeout: 1500 })).toBe("timed out");
    expect(await sender.channel.track({ online: true })).toBe("error");
    // The same socket's next message is handled after those: a broadcast the user may not send reached no one.
    expect(await sender.channel.send({ type: "broadcast", event: "typing", payload: { n: 2 } }, { timeout: 1500 })).toBe("timed out");
    expect([sender.got, listener.got]).toEqual([[], []]);
    expect(sender.statuses).toEqual(["SUBSCRIBED"]);
  });

  it("a stranger cannot join the topic to broadcast or to be present", async () => {
    const a = await assignedPair(sql, "cb");
    const topic = `coach_interactions:${a.client}`;
    const stranger = await open("bob@example.com", topic, vsn, { broadcast: { self: true } }, true);
    expect(stranger.status).toBe("CHANNEL_ERROR");
    expect(stranger.error).toContain(`Unauthorized: You do not have permissions to read from this Channel topic: ${topic}`);
  });
});

describe.each(["2.0.0", "1.0.0"])("presence (protocol %s)", (vsn) => {
  it("a client and their coach see each other come, change and go", async () => {
    const a = await assignedPair(sql, "pr");
    const topic = `coach_interactions:${a.client}`;
    const client = await open(a.clientEmail, topic, vsn, { presence: { key: "client" } }, true);
    expect(client.status).toBe("SUBSCRIBED");
    await synced(client, {});
    expect(await client.channel.track({ status: "online" })).toBe("ok");
    await synced(client, { client: [{ status: "online" }] });

    // A coach who joins later gets the state as it is.
    const coach = await open(a.coachEmail, topic, vsn, { presence: { key: "coach" } }, true);
    expect(coach.status).toBe("SUBSCRIBED");
    await synced(coach, { client: [{ status: "online" }] });
    expect(await coach.channel.track({ status: "online" })).toBe("ok");
    await synced(client, { client: [{ status: "online" }], coach: [{ status: "online" }] });
    await synced(coach, { client: [{ status: "online" }], coach: [{ status: "online" }] });

    // Tracking again replaces the payload; the same payload again changes nothing.
    expect(await client.channel.track({ status: "typing" })).toBe("ok");
    await synced(coach, { client: [{ status: "typing" }], coach: [{ status: "online" }] });
    const syncsBefore = coach.syncs.length;
    expect(await client.channel.track({ status: "typing" })).toBe("ok");

    expect(await coach.channel.untrack()).toBe("ok");
    await synced(client, { client: [{ status: "typing" }] });
    // The unchanged track above sent nothing: the coach saw exactly its own untrack since.
    await synced(coach, { client: [{ status: "typing" }] });
    expect(coach.syncs.length).toBe(syncsBefore + 1);

    // Leaving the channel ends the client's presence.
    await client.client.removeChannel(client.channel);
    await synced(coach, {});
    expect(coach.presenceEvents).toEqual([["join", "client"], ["join", "coach"], ["join", "client"], ["leave", "client"], ["leave", "coach"], ["leave", "client"]]);
  });

  it("more than five presence messages in 30 seconds close the channel, as Realtime limits them, and its presence leaves", async () => {
    const a = await assignedPair(sql, "pr");
    const topic = `coach_interactions:${a.client}`;
    const client = await open(a.clientEmail, topic, vsn, { presence: { key: "client" } }, true);
    const coach = await open(a.coachEmail, topic, vsn, { presence: { key: "coach" } }, true);
    for (let n = 1; n <= 5; n++) expect(await client.channel.track({ n })).toBe("ok");
    await synced(coach, { client: [{ n: 5 }] });
    void client.channel.track({ n: 6 });
    await waitFor(() => (client.statuses.includes("CLOSED") ? true : undefined));
    expect(client.system).toEqual([{ extension: "system", status: "error", channel: topic, message: "Client presence rate limit exceeded" }]);
    await synced(coach, {});
  });

  it("a coach whose assignment ends is closed at once: no more presence, no more broadcasts", async () => {
    const a = await assignedPair(sql, "pr");
    const topic = `coach_interactions:${a.client}`;
    const client = await open(a.clientEmail, topic, vsn, { presence: { key: "client" } }, true);
    const coach = await open(a.coachEmail, topic, vsn, { presence: { key: "coach" } }, true);
    expect(await coach.channel.track({ online: true })).toBe("ok");
    await synced(client, { coach: [{ online: true }] });
    await sql.begin(async (tx) => {
      await tx`set local role service_role`;
      await tx`update public.coach_assignments set ends_at = now() where coach_id = ${a.coach} and client_id = ${a.client}`;
    });
    await waitFor(() => (coach.statuses.includes("CLOSED") ? true : undefined));
    expect(coach.system).toEqual([{
      extension: "system", status: "error", channel: topic,
      message: `You no longer have permission to read from this Channel topic: ${topic}`,
    }]);
    await synced(client, {});
    expect(client.statuses).toEqual(["SUBSCRIBED"]);
  });
});

describe("client broadcast across protocol versions", () => {
  it("JSON reaches both versions; a binary payload reaches 2.0.0 sockets only", async () => {
    const a = await assignedPair(sql, "cb");
    const topic = `coach_interactions:${a.client}`;
    const v2 = await open(a.clientEmail, topic, "2.0.0", { broadcast: { self: true, ack: true } });
    const v1 = await open(a.coachEmail, topic, "1.0.0", { broadcast: { ack: true } });
    const bytes = new Uint8Array([0, 1, 2, 254, 255]);
    expect(await v2.channel.send({ type: "broadcast", event: "typing", payload: bytes.buffer })).toBe("ok");
    expect(await v2.channel.send({ type: "broadcast", event: "typing", payload: { from: "2.0.0" } })).toBe("ok");
    expect(await v1.channel.send({ type: "broadcast", event: "typing", payload: { from: "1.0.0" } })).toBe("ok");
    await waitFor(() => (v2.got.length === 3 ? true : undefined));
    await waitFor(() => (v1.got.length === 1 ? true : undefined));
    expect(new Uint8Array(v2.got[0] as ArrayBuffer)).toEqual(bytes);
    expect(v2.got.slice(1)).toEqual([{ from: "2.0.0" }, { from: "1.0.0" }]);
    expect(v1.got).toEqual([{ from: "2.0.0" }]);
  });
});

describe("public channels", () => {
  it("broadcast and presence need no policy, and stay apart from the private channel of the same name", async () => {
    const pair = await assignedPair(sql, "pub");
    const topic = `nudges:${pair.client}`;
    const a = await open(pair.clientEmail, topic, "2.0.0", { private: false, presence: { key: "alice" } }, true);
    const b = await open("bob@example.com", topic, "1.0.0", { private: false, broadcast: { ack: true }, presence: { key: "bob" } }, true);
    const hidden = await open(pair.clientEmail, topic, "2.0.0", {}, true);
    expect([a.status, b.status, hidden.status]).toEqual(["SUBSCRIBED", "SUBSCRIBED", "SUBSCRIBED"]);
    expect(await a.channel.track({ here: true })).toBe("ok");
    await synced(b, { alice: [{ here: true }] });
    expect(await b.channel.send({ type: "broadcast", event: "typing", payload: { n: 1 } })).toBe("ok");
    await waitFor(() => (a.got.length === 1 ? true : undefined));
    expect(a.got).toEqual([{ n: 1 }]);
    // A database broadcast on the private topic comes after everything above on the private
    // channel's socket: by the time it arrives, the private channel has seen neither.
    await sql`select realtime.send('{"n": "after"}'::jsonb, 'typing', ${topic}, true)`;
    await waitFor(() => (hidden.got.length > 0 ? true : undefined));
    expect(hidden.got).toEqual([{ n: "after", id: expect.any(String) }]);
    expect(hidden.syncs).toEqual([]);
  });
});

describe("client messages, frame by frame", () => {
  it("ack, self, presence_state and presence_diff as Realtime sends them; a message for a topic not joined is refused", async () => {
    const topic = `realtime:room:${crypto.randomUUID()}`;
    const token = await tokenFor("alice@example.com");
    const sender = await rawSocket("1.0.0");
    const receiver = await rawSocket("2.0.0");
    const join = (s: typeof sender, config: Record<string, unknown>) =>
      s.push(topic, "phx_join", { config: { private: false, postgres_changes: [], ...config }, access_token: token });
    expect((await join(receiver, { broadcast: {}, presence: { enabled: true, key: "r" } })).payload.status).toBe("ok");
    expect(receiver.raw.at(-1)).toEqual(["1", null, topic, "presence_state", {}]);
    expect((await join(sender, { broadcast: { ack: true, self: false }, presence: { key: "s" } })).payload.status).toBe("ok");

    const ref = sender.send(topic, "broadcast", { type: "broadcast", event: "typing", payload: { n: 1 } });
    const replied = await waitFor(() => sender.frames.find((f) => f.ref === ref));
    expect(replied).toEqual({ join_ref: "1", ref, topic, event: "phx_reply", payload: { status: "ok", response: {} } });
    await waitFor(() => receiver.frames.find((f) => f.event === "broadcast"));
    expect(receiver.raw.at(-1)).toEqual([null, null, topic, "broadcast", { type: "broadcast", event: "typing", payload: { n: 1 } }]);

    expect((await sender.push(topic, "presence", { type: "presence", event: "track", payload: { at: 1 } })).payload)
      .toEqual({ status: "ok", response: {} });
    const diff = await waitFor(() => receiver.frames.find((f) => f.event === "presence_diff"));
    expect(diff).toEqual({
      join_ref: null, ref: null, topic, event: "presence_diff",
      payload: { joins: { s: { metas: [{ at: 1, phx_ref: expect.any(String) }] } }, leaves: {} },
    });
    expect((await sender.push(topic, "presence", { type: "presence", event: "track", payload: "not a map" })).payload)
      .toEqual({ status: "error", response: { reason: "Presence track payload must be a map" } });
    expect((await sender.push(topic, "presence", { type: "presence", event: "wave" })).payload).toEqual({ status: "error", response: {} });
    // The sender did not ask for self: nothing but replies came back to it.
    expect(sender.frames.filter((f) => f.event !== "phx_reply" && f.event !== "presence_diff")).toEqual([]);

    expect((await sender.push("realtime:room:not-joined", "broadcast", { type: "broadcast", event: "typing", payload: {} })).payload)
      .toEqual({ status: "error", response: { reason: "unmatched topic" } });
    sender.ws.close();
    const left = await waitFor(() => receiver.frames.filter((f) => f.event === "presence_diff")[1]);
    expect(left.payload).toEqual({ joins: {}, leaves: { s: { metas: [{ at: 1, phx_ref: (diff.payload.joins as Record<string, { metas: { phx_ref: string }[] }>).s.metas[0].phx_ref }] } } });
    receiver.ws.close();
  });

  it("routes realtime:<name> topics only, and a refused rejoin still closes the channel it would replace", async () => {
    const socket = await rawSocket("1.0.0");
    const carol = await rawSocket("2.0.0");
    const config = (key: string) => ({ config: { private: true, presence: { enabled: true, key }, postgres_changes: [] } });
    const pair = await assignedPair(sql, "fr");
    const alice = await tokenFor(pair.clientEmail);
    expect((await socket.push(`coach_interactions:${pair.client}`, "phx_join", { ...config("a"), access_token: alice })).payload)
      .toEqual({ status: "error", response: { reason: "unmatched topic" } });
    expect((await socket.push("realtime:", "phx_join", { ...config("a"), access_token: alice })).payload)
      .toEqual({ status: "error", response: { reason: "TopicNameRequired: You must provide a topic name" } });

    const topic = `realtime:coach_interactions:${pair.client}`;
    expect((await carol.push(topic, "phx_join", { ...config("carol"), access_token: await tokenFor(pair.coachEmail) })).payload.status).toBe("ok");
    expect((await socket.push(topic, "phx_join", { ...config("a"), access_token: alice })).payload.status).toBe("ok");
    expect((await socket.push(topic, "presence", { type: "presence", event: "track", payload: { here: true } })).payload.status).toBe("ok");
    await waitFor(() => carol.frames.find((f) => f.event === "presence_diff" && "a" in (f.payload.joins as object)));

    const refused = await socket.push(topic, "phx_join", { ...config("a"), access_token: await tokenFor("bob@example.com") });
    expect(refused.payload).toEqual({ status: "error", response: { reason: `Unauthorized: You do not have permissions to read from this Channel topic: coach_interactions:${pair.client}` } });
    await waitFor(() => carol.frames.find((f) => f.event === "presence_diff" && "a" in (f.payload.leaves as object)));
    expect((await socket.push(topic, "broadcast", { type: "broadcast", event: "typing", payload: {} })).payload)
      .toEqual({ status: "error", response: { reason: "unmatched topic" } });
    socket.ws.close();
    carol.ws.close();
  });
});
