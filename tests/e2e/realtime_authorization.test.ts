/**
 * Realtime keeps checking who may receive: a channel closes when its token expires, an
 * access_token refresh re-runs the private-channel check, a coach is cut off when the
 * assignment ends, and a coach's receipt of a client's rows is recorded in the PHI access log
 * (the owner's is not). supabase-js over both protocol versions, then frame by frame.
 */
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ALICE, stack } from "../helpers.ts";
import { signToken } from "../../local/stack.ts";
import {
  assignedPair, broadcastsOf, closeAll, expOf, logAs, rawSocket, realtimeClient, sleep, texts, tokenFor, waitFor, watch, type Watched,
} from "./realtime_helpers.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
afterAll(() => sql.end());

const ALICE_TOPIC = `coach_interactions:${ALICE}`;
/** Tokens that expire during a test live this long (s): long enough to join, short enough to wait out. */
const SHORT = 3;

/** A new client and a new coach assigned to them (open window). */
const newAssignment = () => assignedPair(sql, "rt");

/** The realtime receipts recorded for a subject. */
const receiptsOf = (subject: string) =>
  sql`select actor_id, actor_role, resource, row_count, purpose from audit.phi_access_log
      where subject_user_id = ${subject} and purpose = 'realtime' order by id`;

describe.each(["2.0.0", "1.0.0"])("realtime authorization (protocol %s)", (vsn) => {
  afterEach(closeAll);

  it("a coach's receipt is audited and the owner's is not; the coach is cut off once the assignment ends", async () => {
    const a = await newAssignment();
    const topic = `coach_interactions:${a.client}`;
    const owner = await watch(await realtimeClient({ token: await tokenFor(a.clientEmail) }, vsn), topic);
    const coach = await watch(await realtimeClient({ token: await tokenFor(a.coachEmail) }, vsn), topic);
    expect([owner.joined.status, coach.joined.status]).toEqual(["SUBSCRIBED", "SUBSCRIBED"]);

    const first = await logAs(a.clientEmail, "while assigned");
    await waitFor(() => texts(owner).find((t) => t === first));
    await waitFor(() => texts(coach).find((t) => t === first));
    // Recorded before the coach got it; the owner's own receipt records nothing.
    expect(await receiptsOf(a.client)).toEqual([
      { actor_id: a.coach, actor_role: "authenticated", resource: "coach_interactions:realtime", row_count: 1, purpose: "realtime" },
    ]);
    expect(await sql`select 1 from audit.phi_access_log where actor_id = ${a.client}`).toEqual([]);

    await sql.begin(async (tx) => {
      await tx`set local role service_role`;
      await tx`update public.coach_assignments set ends_at = now() where coach_id = ${a.coach} and client_id = ${a.client}`;
    });
    const second = await logAs(a.clientEmail, "after the assignment ended");
    await waitFor(() => texts(owner).find((t) => t === second));
    await waitFor(() => (coach.statuses.includes("CLOSED") ? true : undefined));
    expect(texts(coach)).toEqual([first]);
    expect(coach.system).toEqual([{
      extension: "system", status: "error", channel: topic,
      message: `You no longer have permission to read from this Channel topic: ${topic}`,
    }]);
    expect((await receiptsOf(a.client)).length).toBe(1);
    expect(owner.statuses).toEqual(["SUBSCRIBED"]);
  });

  it("setAuth with the token of a user who may not read the topic closes the channel", async () => {
    const watcher = await watch(await realtimeClient({ token: await tokenFor("alice@example.com") }, vsn), ALICE_TOPIC);
    const holder = { token: await tokenFor("alice@example.com") };
    const switched = await watch(await realtimeClient(holder, vsn), ALICE_TOPIC);
    expect(switched.joined.status).toBe("SUBSCRIBED");

    holder.token = await tokenFor("bob@example.com");
    await switched.client.realtime.setAuth();
    await waitFor(() => (switched.statuses.includes("CLOSED") ? true : undefined));
    expect(switched.system).toEqual([{
      extension: "system", status: "error", channel: ALICE_TOPIC,
      message: `You do not have permissions to read from this Channel topic: ${ALICE_TOPIC}`,
    }]);

    const text = await logAs("alice@example.com", "after setAuth");
    await waitFor(() => texts(watcher).find((t) => t === text));
    expect(texts(switched)).not.toContain(text);
  });
});

describe("realtime authorization, frame by frame", () => {
  afterEach(closeAll);

  it("an access_token of another user closes the channel with Realtime's refusal", async () => {
    const socket = await rawSocket("2.0.0");
    const topic = `realtime:${ALICE_TOPIC}`;
    expect((await socket.join(topic, await tokenFor("alice@example.com"))).payload.status).toBe("ok");
    socket.send(topic, "access_token", { access_token: await tokenFor("bob@example.com") });
    await waitFor(() => socket.frames.find((f) => f.event === "phx_close"));
    expect(socket.raw.slice(-2)).toEqual([
      ["1", null, topic, "system", {
        extension: "system", status: "error", channel: ALICE_TOPIC,
        message: `You do not have permissions to read from this Channel topic: ${ALICE_TOPIC}`,
      }],
      ["1", "1", topic, "phx_close", {}],
    ]);
    socket.ws.close();
  });

  it("an invalid access_token closes the channel saying the token is not a valid JWT", async () => {
    const socket = await rawSocket();
    const topic = `realtime:${ALICE_TOPIC}`;
    expect((await socket.join(topic, await tokenFor("alice@example.com"))).payload.status).toBe("ok");
    socket.send(topic, "access_token", { access_token: "not-a-token" });
    await waitFor(() => socket.frames.find((f) => f.event === "phx_close"));
    expect(socket.frames.find((f) => f.event === "system")?.payload.message).toBe("The token provided is not a valid JWT");
    socket.ws.close();
  });

  it("refuses to join with an expired token or one without exp, with Realtime's reasons", async () => {
    const socket = await rawSocket();
    const expired = await socket.join(`realtime:${ALICE_TOPIC}`, await tokenFor("alice@example.com", -30));
    expect(expired.payload).toEqual({ status: "error", response: { reason: expect.stringMatching(/^InvalidJWTToken: Token has expired \d+ seconds ago$/) } });
    const noExp = await signToken({ sub: ALICE, role: "authenticated", email: "alice@example.com" });
    const refused = await socket.join(`realtime:${ALICE_TOPIC}`, noExp);
    expect(refused.payload).toEqual({ status: "error", response: { reason: "InvalidJWTToken: Fields `role` and `exp` are required in JWT" } });
    socket.ws.close();
  });
});

/**
 * Token expiry, every case at once so that the suite waits for expiry only once: supabase-js
 * channels over both protocol versions and raw sockets of both versions join with tokens that
 * expire after SHORT seconds; another raw socket swaps its short token for a long one.
 */
describe("realtime token expiry", () => {
  const VERSIONS = ["2.0.0", "1.0.0"] as const;
  const topic = `realtime:${ALICE_TOPIC}`;
  const expiredText = /^Token has expired \d+ seconds ago$/;
  let watcher: Watched;
  const expiring: Record<string, { watched: Watched; exp: number }> = {};
  const sockets: Record<string, { socket: Awaited<ReturnType<typeof rawSocket>>; exp: number }> = {};
  let refreshed: Awaited<ReturnType<typeof rawSocket>>;
  let after = "";

  beforeAll(async () => {
    watcher = await watch(await realtimeClient({ token: await tokenFor("alice@example.com") }, "2.0.0"), ALICE_TOPIC);
    for (const vsn of VERSIONS) {
      const short = await tokenFor("alice@example.com", SHORT);
      expiring[vsn] = { watched: await watch(await realtimeClient({ token: short }, vsn), ALICE_TOPIC), exp: expOf(short) };
      const socket = await rawSocket(vsn);
      const token = await tokenFor("alice@example.com", SHORT);
      expect((await socket.join(topic, token)).payload.status).toBe("ok");
      sockets[vsn] = { socket, exp: expOf(token) };
    }
    refreshed = await rawSocket();
    const short = await tokenFor("alice@example.com", SHORT);
    expect((await refreshed.join(topic, short)).payload.status).toBe("ok");
    refreshed.send(topic, "access_token", { access_token: await tokenFor("alice@example.com") });
    // Messages of a topic are handled in order: this reply (to a presence message with no
    // event, which Realtime answers ok) means the new token was handled.
    expect((await refreshed.push(topic, "presence", {})).payload.status).toBe("ok");

    for (const vsn of VERSIONS) {
      await waitFor(() => (expiring[vsn].watched.statuses.includes("CLOSED") ? true : undefined), 30_000);
      await waitFor(() => sockets[vsn].socket.frames.find((f) => f.event === "phx_close"), 30_000);
    }
    await sleep(Math.max(0, expOf(short) * 1000 - Date.now()) + 1000);
    after = await logAs("alice@example.com", "after expiry");
    await waitFor(() => texts(watcher).find((t) => t === after));
  }, 60_000);

  afterAll(async () => {
    await closeAll();
    for (const { socket } of Object.values(sockets)) socket.ws.close();
    refreshed?.ws.close();
  });

  it.each(VERSIONS)("supabase-js %s: the channel is CLOSED at expiry after Realtime's system message, and gets nothing after", (vsn) => {
    const { watched, exp } = expiring[vsn];
    expect(watched.statuses).toEqual(["SUBSCRIBED", "CLOSED"]);
    expect(watched.at.CLOSED).toBeGreaterThanOrEqual(exp * 1000);
    expect(watched.system).toEqual([{ extension: "system", status: "error", channel: ALICE_TOPIC, message: expect.stringMatching(expiredText) }]);
    expect(texts(watched)).not.toContain(after);
    expect(watcher.statuses).toEqual(["SUBSCRIBED"]);
  });

  it.each(VERSIONS)("frames %s: a system error, then phx_close with the join ref, at expiry; nothing after", (vsn) => {
    const { socket, exp } = sockets[vsn];
    const closedAt = socket.frames.findIndex((f) => f.event === "phx_close");
    expect(socket.times[closedAt]).toBeGreaterThanOrEqual(exp * 1000);
    const [system, closed] = socket.raw.slice(closedAt - 1, closedAt + 1);
    const payload = { extension: "system", status: "error", message: expect.stringMatching(expiredText), channel: ALICE_TOPIC };
    if (vsn === "2.0.0") {
      expect(system).toEqual(["1", null, topic, "system", payload]);
      expect(closed).toEqual(["1", "1", topic, "phx_close", {}]);
    } else {
      expect(system).toEqual({ join_ref: "1", ref: null, topic, event: "system", payload });
      expect(closed).toEqual({ join_ref: "1", ref: "1", topic, event: "phx_close", payload: {} });
    }
    expect(socket.frames.slice(closedAt + 1)).toEqual([]);
    expect(broadcastsOf(socket.frames, after)).toEqual([]);
  });

  it("an access_token of the same user swaps the claims: the channel outlives its first token", async () => {
    await waitFor(() => broadcastsOf(refreshed.frames, after)[0]);
    expect(broadcastsOf(refreshed.frames, after).length).toBe(1);
    expect(refreshed.frames.filter((f) => f.event === "system" || f.event === "phx_close")).toEqual([]);
  });
});
