/**
 * `/realtime/v1/websocket`: Broadcast from Database for local development, standing in for
 * supabase/realtime and split along its seams: realtime/protocol.ts (Phoenix frames),
 * realtime/authorization.ts (tokens and the private-channel read check), realtime/delivery.ts
 * (fan-out of committed realtime.messages rows); this file is the socket and the channels'
 * lifecycle (RealtimeWeb.UserSocket and RealtimeChannel).
 *
 * Supported: heartbeat; phx_join of `realtime:<topic>`, public or private (Realtime's read
 * check as the joining user); access_token (the token is checked again, a private channel's
 * read check re-run with the new claims, and the claims swapped, or the channel closed as
 * Realtime does); phx_leave; a channel is closed when its token expires (Realtime's
 * confirm_token timer: system message "Token has expired N seconds ago", then phx_close);
 * delivery of committed rows (realtime.send, realtime.broadcast_changes). Not supported:
 * postgres_changes, presence and broadcasts sent by clients (answered with an error).
 */
import type postgres from "postgres";
import { effectiveToken, type Keys, verify } from "./keys.ts";
import { type Authorizer, checkToken, type Claims, createAuthorizer, expiredMessage, isExpired } from "./realtime/authorization.ts";
import { createDelivery, DATABASE_UNAVAILABLE, type Subscriber } from "./realtime/delivery.ts";
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

/** A joined channel on one socket. */
interface Channel extends Subscriber {
  readonly socket: WebSocket;
  readonly vsn: Vsn;
  readonly joinRef: string | null;
  claims: Claims;
  token: string;
  closed: boolean;
  /** Increases with every access_token push, so that only the newest one takes effect. */
  authSeq: number;
  timer?: ReturnType<typeof setTimeout>;
}

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

  function remove(ch: Channel): void {
    ch.closed = true;
    clearTimeout(ch.timer);
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

  function channelFor(socket: WebSocket, vsn: Vsn, m: Message, topic: string, isPrivate: boolean, token: string, claims: Claims): Channel {
    const ch: Channel = {
      socket, vsn, joinRef: m.join_ref ?? m.ref, topic, isPrivate, claims, token, closed: false, authSeq: 0,
      send: (frame) => sendOn(socket, vsn, frame),
      shutdown: (message) => shutdown(ch, message),
    };
    return ch;
  }

  const broadcasts = await sql.listen(BROADCAST_CHANNEL, (raw) => {
    const { id, topic } = JSON.parse(raw) as { id: string; topic: string };
    if (byTopic.has(topic)) delivery.enqueue(id, topic);
  });
  // Any (re)connection of the listener may have missed notifications: drop cached answers then too.
  const authorizationChanges = await sql.listen(AUTHORIZATION_CHANNEL, () => authorizer.invalidate(), () => authorizer.invalidate());

  async function onJoin(socket: WebSocket, vsn: Vsn, fallbackToken: string | null, m: Message): Promise<void> {
    const topic = subTopic(m.topic);
    const config = (m.payload.config ?? {}) as { private?: boolean; postgres_changes?: unknown[] };
    if (Array.isArray(config.postgres_changes) && config.postgres_changes.length > 0) {
      return sendOn(socket, vsn, reply(m, "error", { reason: "postgres_changes is not served by the local stand-in; use broadcast" }));
    }
    const token = typeof m.payload.access_token === "string" ? m.payload.access_token : fallbackToken;
    const checked = await checkToken(keys, token);
    if (!checked.ok) return sendOn(socket, vsn, reply(m, "error", { reason: `${checked.code}: ${checked.message}` }));
    const isPrivate = config.private === true;
    if (isPrivate) {
      let allowed: boolean;
      try {
        allowed = await authorizer.authorize(topic, checked.claims);
      } catch (err) {
        log({ level: "error", msg: "realtime authorization failed", topic, error: String(err) });
        return sendOn(socket, vsn, reply(m, "error", { reason: DATABASE_UNAVAILABLE }));
      }
      if (!allowed) return sendOn(socket, vsn, reply(m, "error", { reason: `Unauthorized: ${UNAUTHORIZED(topic)}` }));
    }
    if (socket.readyState !== WebSocket.OPEN) return;
    // A second join of the same topic on a socket replaces the first, as in Phoenix.
    const mine = bySocket.get(socket) ?? new Map<string, Channel>();
    bySocket.set(socket, mine);
    const previous = mine.get(m.topic);
    if (previous) remove(previous);
    const ch = channelFor(socket, vsn, m, topic, isPrivate, token!, checked.claims);
    mine.set(m.topic, ch);
    const subs = byTopic.get(topic) ?? new Set<Channel>();
    subs.add(ch);
    byTopic.set(topic, subs);
    armExpiry(ch);
    sendOn(socket, vsn, reply(m, "ok", { postgres_changes: [] }));
  }

  /** RealtimeChannel.handle_in("access_token"): check the new token and, for a private channel, the topic again. */
  async function onAccessToken(ch: Channel, token: unknown): Promise<void> {
    if (typeof token !== "string" || token.startsWith("sb_") || token === ch.token) return;
    const seq = ++ch.authSeq;
    const checked = await checkToken(keys, token);
    if (ch.closed || seq !== ch.authSeq) return;
    if (!checked.ok) return shutdown(ch, checked.message);
    if (ch.isPrivate) {
      let allowed: boolean | null;
      try {
        allowed = await authorizer.authorize(ch.topic, checked.claims);
      } catch (err) {
        log({ level: "error", msg: "realtime authorization failed", topic: ch.topic, error: String(err) });
        allowed = null;
      }
      if (ch.closed || seq !== ch.authSeq) return;
      if (allowed === null) return shutdown(ch, DATABASE_UNAVAILABLE);
      if (!allowed) return shutdown(ch, UNAUTHORIZED(ch.topic));
    }
    ch.claims = checked.claims;
    ch.token = token;
    armExpiry(ch);
  }

  async function onMessage(socket: WebSocket, vsn: Vsn, fallbackToken: string | null, data: unknown): Promise<void> {
    const m = decode(vsn, data);
    if (!m) {
      log({ level: "warn", msg: "realtime: ignored a frame that is not a text Phoenix message (client broadcasts are not supported locally)" });
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
      default:
        return sendOn(socket, vsn, reply(m, "error", { reason: `${m.event} is not served by the local stand-in` }));
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
      // Messages of one topic are handled in order (a Phoenix channel is one process); topics run side by side.
      const queues = new Map<string, Promise<void>>();
      socket.onmessage = (e) => {
        const key = topicOf(vsn, e.data);
        const run = (queues.get(key) ?? Promise.resolve())
          .then(() => onMessage(socket, vsn, apikey, e.data))
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

/** The topic a frame is about, for ordering ("" when it cannot be read). */
function topicOf(vsn: Vsn, data: unknown): string {
  return decode(vsn, data)?.topic ?? "";
}
