/**
 * `/realtime/v1/websocket`: Broadcast (from the database and from clients) and Presence for
 * local development, standing in for supabase/realtime and split along its seams:
 * realtime/protocol.ts (Phoenix frames and the V2Serializer's binary broadcasts),
 * realtime/authorization.ts (tokens and the private-channel read and write checks),
 * realtime/delivery.ts (fan-out of committed realtime.messages rows), realtime/broadcast.ts
 * (BroadcastHandler), realtime/presence.ts (Presence and PresenceHandler),
 * realtime/channel.ts (a channel's state); this file is the socket and the channels'
 * lifecycle (RealtimeWeb.UserSocket and RealtimeChannel).
 *
 * Supported: heartbeat; phx_join of `realtime:<topic>`, public or private (Realtime's read
 * check of broadcast and, when presence is enabled, presence, as the joining user; either
 * admits), with `broadcast.self`, `broadcast.ack`, `presence.enabled` and `presence.key`;
 * access_token (the token is checked again, a private channel's read check re-run with the
 * new claims, and the claims swapped, or the channel closed as Realtime does); phx_leave;
 * a channel is closed when its token expires (Realtime's confirm_token timer: system message
 * "Token has expired N seconds ago", then phx_close); delivery of committed rows
 * (realtime.send, realtime.broadcast_changes); client broadcasts and presence (track,
 * untrack, presence_state and presence_diff). Beyond Realtime: a write to coach_assignments
 * runs every private channel's read checks again (authorizationChanged). Not supported:
 * postgres_changes (the join is refused) and Realtime's REST broadcast endpoint.
 */
import type postgres from "postgres";
import { effectiveToken, type Keys, verify } from "./keys.ts";
import { type Authorizer, checkToken, type Claims, createAuthorizer, expiredMessage, isExpired, type Policies } from "./realtime/authorization.ts";
import { handleBroadcast } from "./realtime/broadcast.ts";
import { type Channel, type Hub, type JoinConfig, joinConfig } from "./realtime/channel.ts";
import { createDelivery, DATABASE_UNAVAILABLE, noLongerPermitted } from "./realtime/delivery.ts";
import { handlePresence, PresenceTracker, syncPresence, untrack } from "./realtime/presence.ts";
import { close, decode, encode, type Message, reply, subTopic, system, type Vsn, vsnOf } from "./realtime/protocol.ts";

/** The websocket endpoint and its delivery loop. */
export interface RealtimeServer {
  handle(req: Request, url: URL): Promise<Response>;
  close(): Promise<void>;
}

/** Postgres channels the gateway LISTENs on (NOTIFY triggers in platform.sql and our migrations). */
export const BROADCAST_CHANNEL = "realtime_local_broadcast";
export const AUTHORIZATION_CHANNEL = "realtime_local_authorization";

/** Realtime re-checks a channel's token at least this often (its @confirm_token_ms_interval). */
const CONFIRM_TOKEN_MS = 5 * 60_000;

const UNAUTHORIZED = (topic: string) => `You do not have permissions to read from this Channel topic: ${topic}`;

/** Starts listening for committed broadcasts and authorization changes; returns the endpoint. */
export async function createRealtime(opts: {
  keys: Keys;
  sql: postgres.Sql;
  log: (line: Record<string, unknown>) => void;
  /** The read check and its cache (tests pass their own to look inside). */
  authorizer?: Authorizer;
}): Promise<RealtimeServer> {
  const { keys, sql, log } = opts;
  const byTopic = new Map<string, Set<Channel>>();
  const bySocket = new Map<WebSocket, Map<string, Channel>>();
  const authorizer = opts.authorizer ?? createAuthorizer(sql);
  const delivery = createDelivery({ sql, authorizer, log, subscribers: (topic) => [...byTopic.get(topic) ?? []] });

  const sendOn = (socket: WebSocket, vsn: Vsn, m: Message) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(encode(vsn, m));
  };
  const hub: Hub = {
    members: (topic) => byTopic.get(topic) ?? [],
    authorizer,
    presence: new PresenceTracker<Channel>(),
    shutdown: (ch, message) => shutdown(ch, message),
    send: (ch, m) => sendOn(ch.socket, ch.vsn, m),
    log,
  };

  function remove(ch: Channel): void {
    ch.closed = true;
    clearTimeout(ch.timer);
    untrack(hub, ch);
    const subs = byTopic.get(ch.topic);
    subs?.delete(ch);
    if (subs?.size === 0) byTopic.delete(ch.topic);
    const mine = bySocket.get(ch.socket);
    if (mine?.get(`realtime:${ch.topic}`) === ch) mine.delete(`realtime:${ch.topic}`);
  }

  /** Realtime's shutdown_response: a system error message, then the channel stops (phx_close). */
  function shutdown(ch: Channel, message: string): void {
    if (ch.closed) return;
    remove(ch);
    log({ level: "warn", msg: "realtime: channel shut down", topic: ch.topic, reason: message });
    sendOn(ch.socket, ch.vsn, system(`realtime:${ch.topic}`, ch.joinRef, "error", message));
    sendOn(ch.socket, ch.vsn, close(`realtime:${ch.topic}`, ch.joinRef));
  }

  /** Realtime's confirm_token timer: wakes at the token's exp (at most every 5 minutes) and closes an expired channel. */
  function armExpiry(ch: Channel): void {
    clearTimeout(ch.timer);
    const delay = Math.min(CONFIRM_TOKEN_MS, Math.max(0, ch.claims.exp * 1000 - Date.now()));
    ch.timer = setTimeout(() => {
      if (ch.closed) return;
      if (isExpired(ch.claims)) shutdown(ch, expiredMessage(ch.claims.exp));
      else armExpiry(ch);
    }, delay);
  }

  function channelFor(socket: WebSocket, vsn: Vsn, m: Message, topic: string, config: JoinConfig, token: string, claims: Claims, policies: Policies): Channel {
    const ch: Channel = {
      socket, vsn, joinRef: m.join_ref ?? m.ref, topic, isPrivate: config.isPrivate, claims, token, closed: false, authSeq: 0,
      policies, self: config.self, ack: config.ack, presenceEnabled: config.presenceEnabled, presenceKey: config.presenceKey,
      presenceCalls: { count: 0, resetAt: 0 },
      send: (frame) => sendOn(socket, vsn, frame),
      sendRaw: (data) => { if (socket.readyState === WebSocket.OPEN) socket.send(data); },
      shutdown: (message) => shutdown(ch, message),
    };
    return ch;
  }

  const broadcasts = await sql.listen(BROADCAST_CHANNEL, (raw) => {
    const { id, topic } = JSON.parse(raw) as { id: string; topic: string };
    if (byTopic.has(topic)) delivery.enqueue(id, topic);
  });
  /**
   * Only the stand-in: when authorization inputs change (a coach assignment was written), every
   * private channel forgets its write answers and has its read checks run again, so a coach
   * whose assignment ended stops sending and receiving client broadcasts and presence at once
   * (hosted Realtime keeps a channel's answers until its token changes).
   */
  function authorizationChanged(): void {
    authorizer.invalidate();
    for (const subs of byTopic.values()) {
      for (const ch of subs) {
        if (!ch.isPrivate || ch.closed) continue;
        ch.policies.broadcast.write = undefined;
        ch.policies.presence.write = undefined;
        void recheck(ch);
      }
    }
  }

  async function recheck(ch: Channel): Promise<void> {
    const { authSeq, claims } = ch;
    let found;
    try {
      found = await authorizer.authorize(ch.topic, claims, { presence: ch.presenceEnabled });
    } catch (err) {
      log({ level: "error", msg: "realtime: read check after an authorization change failed", topic: ch.topic, error: String(err) });
      return shutdown(ch, DATABASE_UNAVAILABLE);
    }
    if (ch.closed || authSeq !== ch.authSeq) return;
    const revoked = (was: boolean | undefined, now: boolean | undefined) => was === true && now === false;
    if (revoked(ch.policies.broadcast.read, found.broadcast) || revoked(ch.policies.presence.read, found.presence)) {
      shutdown(ch, noLongerPermitted(ch.topic));
    }
  }

  // Any (re)connection of the listener may have missed notifications: treat it as a change too.
  const authorizationChanges = await sql.listen(AUTHORIZATION_CHANNEL, authorizationChanged, authorizationChanged);

  async function onJoin(socket: WebSocket, vsn: Vsn, fallbackToken: string | null, m: Message): Promise<void> {
    // Realtime's socket routes `realtime:*` only; a duplicate join closes the channel it replaces first, as Phoenix does.
    if (!m.topic.startsWith("realtime:")) return sendOn(socket, vsn, reply(m, "error", { reason: "unmatched topic" }));
    const previous = bySocket.get(socket)?.get(m.topic);
    if (previous) remove(previous);
    const topic = subTopic(m.topic);
    if (topic === "") return sendOn(socket, vsn, reply(m, "error", { reason: "TopicNameRequired: You must provide a topic name" }));
    const config = joinConfig(m.payload);
    if (config.postgresChanges) {
      return sendOn(socket, vsn, reply(m, "error", { reason: "postgres_changes is not served by the local stand-in; use broadcast" }));
    }
    const token = typeof m.payload.access_token === "string" ? m.payload.access_token : fallbackToken;
    const checked = await checkToken(keys, token);
    if (!checked.ok) return sendOn(socket, vsn, reply(m, "error", { reason: `${checked.code}: ${checked.message}` }));
    const policies: Policies = { broadcast: {}, presence: {} };
    if (config.isPrivate) {
      let found;
      try {
        found = await authorizer.authorize(topic, checked.claims, { presence: config.presenceEnabled });
      } catch (err) {
        log({ level: "error", msg: "realtime authorization failed", topic, error: String(err) });
        // Realtime answers an error the database raised (a policy's) as a refusal, and one it could not get as unavailable.
        const refused = typeof (err as { code?: unknown }).code === "string" && /^[0-9A-Z]{5}$/.test((err as { code: string }).code);
        return sendOn(socket, vsn, reply(m, "error", { reason: refused ? `Unauthorized: ${UNAUTHORIZED(topic)}` : DATABASE_UNAVAILABLE }));
      }
      if (!found.broadcast && !found.presence) return sendOn(socket, vsn, reply(m, "error", { reason: `Unauthorized: ${UNAUTHORIZED(topic)}` }));
      policies.broadcast.read = found.broadcast;
      policies.presence.read = found.presence;
    }
    if (socket.readyState !== WebSocket.OPEN) return;
    const mine = bySocket.get(socket) ?? new Map<string, Channel>();
    bySocket.set(socket, mine);
    const ch = channelFor(socket, vsn, m, topic, config, token!, checked.claims, policies);
    mine.set(m.topic, ch);
    const subs = byTopic.get(topic) ?? new Set<Channel>();
    subs.add(ch);
    byTopic.set(topic, subs);
    armExpiry(ch);
    sendOn(socket, vsn, reply(m, "ok", { postgres_changes: [] }));
    syncPresence(hub, ch);
  }

  /**
   * RealtimeChannel.handle_in("access_token"): check the new token and, for a private
   * channel, the read checks again (presence too once enabled). Neither granted closes the
   * channel as at join; a read granted before and refused now closes it as revoked; the
   * write checks are forgotten and run again on the next broadcast or track.
   */
  async function onAccessToken(ch: Channel, token: unknown): Promise<void> {
    if (typeof token !== "string" || token.startsWith("sb_") || token === ch.token) return;
    const seq = ++ch.authSeq;
    const checked = await checkToken(keys, token);
    if (ch.closed || seq !== ch.authSeq) return;
    if (!checked.ok) return shutdown(ch, checked.message);
    const policies: Policies = { broadcast: {}, presence: {} };
    if (ch.isPrivate) {
      let found;
      try {
        found = await authorizer.authorize(ch.topic, checked.claims, { presence: ch.presenceEnabled });
      } catch (err) {
        log({ level: "error", msg: "realtime authorization failed", topic: ch.topic, error: String(err) });
        found = null;
      }
      if (ch.closed || seq !== ch.authSeq) return;
      if (found === null) return shutdown(ch, DATABASE_UNAVAILABLE);
      if (!found.broadcast && !found.presence) return shutdown(ch, UNAUTHORIZED(ch.topic));
      const revoked = (was: boolean | undefined, now: boolean | undefined) => was === true && now === false;
      if (revoked(ch.policies.broadcast.read, found.broadcast) || revoked(ch.policies.presence.read, found.presence)) {
        return shutdown(ch, noLongerPermitted(ch.topic));
      }
      policies.broadcast.read = found.broadcast;
      policies.presence.read = found.presence;
    }
    ch.claims = checked.claims;
    ch.token = token;
    ch.policies = policies;
    armExpiry(ch);
  }

  async function onMessage(socket: WebSocket, vsn: Vsn, fallbackToken: string | null, m: Message | null): Promise<void> {
    if (!m) {
      log({ level: "warn", msg: "realtime: ignored a frame that is not a Phoenix message", vsn });
      return;
    }
    if (m.topic === "phoenix" && m.event === "heartbeat") return sendOn(socket, vsn, reply(m, "ok", {}));
    const ch = bySocket.get(socket)?.get(m.topic);
    switch (m.event) {
      case "phx_join":
        return await onJoin(socket, vsn, fallbackToken, m);
      case "access_token":
        if (ch) await onAccessToken(ch, m.payload.access_token);
        return;
      case "phx_leave":
        if (ch) remove(ch);
        sendOn(socket, vsn, reply(m, "ok", {}));
        sendOn(socket, vsn, close(m.topic, m.join_ref));
        return;
    }
    // Phoenix.Socket answers a message for a topic the socket has not joined.
    if (!ch) return sendOn(socket, vsn, reply(m, "error", { reason: "unmatched topic" }));
    if (ch.closed) return;
    switch (m.event) {
      case "broadcast":
        return await handleBroadcast(hub, ch, m);
      case "presence":
        return await handlePresence(hub, ch, m);
      default:
        // RealtimeChannel.handle_in(type, ...): logged and otherwise ignored.
        log({ level: "info", msg: "realtime: unexpected message from client", topic: m.topic, event: m.event });
    }
  }

  return {
    async handle(req: Request, url: URL): Promise<Response> {
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return Response.json({ message: "Expected a websocket upgrade" }, { status: 426 });
      }
      const apikey = effectiveToken(keys, req, url);
      const checked = await verify(keys, apikey);
      if (!checked.ok) return Response.json({ message: "Invalid API key" }, { status: 401 });
      const vsn = vsnOf(url);
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.binaryType = "arraybuffer";
      // Messages of one topic are handled in order (a Phoenix channel is one process); topics run side by side.
      const queues = new Map<string, Promise<void>>();
      socket.onmessage = (e) => {
        // Decoded once: its topic orders it ("" when it cannot be read), then it is handled.
        const m = decode(vsn, e.data);
        const key = m?.topic ?? "";
        const run = (queues.get(key) ?? Promise.resolve())
          .then(() => onMessage(socket, vsn, apikey, m))
          .catch((err) => log({ level: "error", msg: "realtime message failed", error: String(err) }));
        queues.set(key, run);
        run.then(() => { if (queues.get(key) === run) queues.delete(key); });
      };
      socket.onclose = () => {
        for (const ch of bySocket.get(socket)?.values() ?? []) remove(ch);
        bySocket.delete(socket);
      };
      return response;
    },
    async close(): Promise<void> {
      for (const subs of byTopic.values()) for (const ch of subs) remove(ch);
      await broadcasts.unlisten();
      await authorizationChanges.unlisten();
    },
  };
}
