/**
 * `/realtime/v1/websocket`: Broadcast from Database for local development, speaking the
 * Phoenix channel protocol that realtime-js uses (vsn 1.0.0 JSON objects, vsn 2.0.0 JSON
 * arrays; server messages are always text frames). Supported: heartbeat, phx_join of
 * `realtime:<topic>` (public, or private with the same authorization check Realtime runs:
 * a probe row, then a SELECT as the joining user under RLS, rolled back), access_token,
 * phx_leave, and delivery of committed realtime.messages rows (realtime.send,
 * realtime.broadcast_changes) to the channels joined on their topic. Not supported:
 * postgres_changes, presence and broadcasts sent by clients (answered with an error).
 */
import type postgres from "postgres";
import { effectiveToken, type Keys, verify } from "./keys.ts";

interface Message {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

interface Subscription {
  socket: WebSocket;
  vsn: string;
  joinRef: string | null;
  topic: string;
  isPrivate: boolean;
}

/** The websocket endpoint and its delivery loop. */
export interface RealtimeServer {
  handle(req: Request, url: URL): Promise<Response>;
  close(): Promise<void>;
}

const UNAUTHORIZED = (topic: string) => `Unauthorized: You do not have permissions to read from this Channel topic: ${topic}`;

function encode(vsn: string, m: Message): string {
  return vsn === "2.0.0" ? JSON.stringify([m.join_ref, m.ref, m.topic, m.event, m.payload]) : JSON.stringify(m);
}

function decode(vsn: string, data: unknown): Message | null {
  if (typeof data !== "string") return null;
  const raw = JSON.parse(data);
  if (vsn === "2.0.0") {
    const [join_ref, ref, topic, event, payload] = raw as [string | null, string | null, string, string, Record<string, unknown>];
    return { join_ref, ref, topic, event, payload: payload ?? {} };
  }
  return { join_ref: raw.join_ref ?? null, ref: raw.ref ?? null, topic: raw.topic, event: raw.event, payload: raw.payload ?? {} };
}

/** Starts listening for committed broadcasts and returns the endpoint. */
export async function createRealtime(opts: {
  keys: Keys;
  sql: postgres.Sql;
  log: (line: Record<string, unknown>) => void;
}): Promise<RealtimeServer> {
  const { keys, sql, log } = opts;
  const subscriptions = new Map<string, Set<Subscription>>();

  const send = (s: Subscription, m: Message) => {
    if (s.socket.readyState === WebSocket.OPEN) s.socket.send(encode(s.vsn, m));
  };
  const reply = (socket: WebSocket, vsn: string, m: Message, status: "ok" | "error", response: Record<string, unknown>) => {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(encode(vsn, { join_ref: m.join_ref, ref: m.ref, topic: m.topic, event: "phx_reply", payload: { status, response } }));
    }
  };

  /** Realtime's check for a private channel: can the user SELECT a probe row of the topic? */
  async function authorized(topic: string, claims: Record<string, unknown>): Promise<boolean> {
    const role = typeof claims.role === "string" && claims.role ? claims.role : "anon";
    try {
      return await sql.begin(async (tx) => {
        await tx`select set_config('role', 'service_role', true)`;
        await tx`insert into realtime.messages (topic, extension, payload, event, private)
                 values (${topic}, 'broadcast', '{}', 'authorization_probe', true)`;
        await tx`select set_config('role', ${role}, true),
                        set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                        set_config('request.jwt.claim.sub', ${String(claims.sub ?? "")}, true),
                        set_config('realtime.topic', ${topic}, true)`;
        const [{ n }] = await tx`select count(*)::int as n from realtime.messages
                                 where topic = ${topic} and extension = 'broadcast' and event = 'authorization_probe'`;
        throw new ProbeResult(n > 0);
      });
    } catch (err) {
      if (err instanceof ProbeResult) return err.allowed;
      log({ level: "error", msg: "realtime authorization failed", topic, error: String(err) });
      return false;
    }
  }

  async function deliver(id: string, topic: string): Promise<void> {
    const subs = subscriptions.get(topic);
    if (!subs || subs.size === 0) return;
    const rows = await sql.begin(async (tx) => {
      await tx`select set_config('role', 'service_role', true)`;
      return await tx`select event, payload, private from realtime.messages where id = ${id} and extension = 'broadcast'`;
    });
    if (rows.length === 0) return;
    const row = rows[0] as { event: string; payload: Record<string, unknown>; private: boolean };
    for (const s of subs) {
      if (s.isPrivate !== row.private) continue;
      send(s, {
        join_ref: null, ref: null, topic: `realtime:${topic}`, event: "broadcast",
        payload: { type: "broadcast", event: row.event, payload: row.payload, meta: { id } },
      });
    }
  }

  const listener = await sql.listen("realtime_local_broadcast", (raw) => {
    const { id, topic } = JSON.parse(raw) as { id: string; topic: string };
    deliver(id, topic).catch((err) => log({ level: "error", msg: "realtime delivery failed", error: String(err) }));
  });

  function unsubscribe(socket: WebSocket, channel?: string): void {
    for (const [topic, subs] of subscriptions) {
      for (const s of subs) {
        if (s.socket === socket && (channel === undefined || `realtime:${s.topic}` === channel)) subs.delete(s);
      }
      if (subs.size === 0) subscriptions.delete(topic);
    }
  }

  async function onMessage(socket: WebSocket, vsn: string, fallbackToken: string | null, data: unknown): Promise<void> {
    const m = decode(vsn, data);
    if (!m) {
      log({ level: "warn", msg: "realtime: binary frames (client broadcasts) are not supported locally" });
      return;
    }
    if (m.topic === "phoenix" && m.event === "heartbeat") return reply(socket, vsn, m, "ok", {});
    const topic = m.topic.startsWith("realtime:") ? m.topic.slice("realtime:".length) : m.topic;
    switch (m.event) {
      case "phx_join": {
        const config = (m.payload.config ?? {}) as { private?: boolean; postgres_changes?: unknown[] };
        if (Array.isArray(config.postgres_changes) && config.postgres_changes.length > 0) {
          return reply(socket, vsn, m, "error", { reason: "postgres_changes is not served by the local stand-in; use broadcast" });
        }
        const token = typeof m.payload.access_token === "string" ? m.payload.access_token : fallbackToken;
        const checked = await verify(keys, token);
        if (!checked.ok) return reply(socket, vsn, m, "error", { reason: checked.problem === "expired" ? "Token has expired" : "Invalid JWT" });
        const isPrivate = config.private === true;
        if (isPrivate && !(await authorized(topic, checked.claims as Record<string, unknown>))) {
          return reply(socket, vsn, m, "error", { reason: UNAUTHORIZED(topic) });
        }
        const subs = subscriptions.get(topic) ?? new Set();
        subs.add({ socket, vsn, joinRef: m.join_ref ?? m.ref, topic, isPrivate });
        subscriptions.set(topic, subs);
        return reply(socket, vsn, m, "ok", { postgres_changes: [] });
      }
      case "access_token": {
        const checked = await verify(keys, typeof m.payload.access_token === "string" ? m.payload.access_token : null);
        if (!checked.ok) {
          unsubscribe(socket, m.topic);
          socket.send(encode(vsn, { join_ref: m.join_ref, ref: null, topic: m.topic, event: "phx_close", payload: {} }));
        }
        return;
      }
      case "phx_leave":
        unsubscribe(socket, m.topic);
        reply(socket, vsn, m, "ok", {});
        socket.send(encode(vsn, { join_ref: m.join_ref, ref: null, topic: m.topic, event: "phx_close", payload: {} }));
        return;
      default:
        return reply(socket, vsn, m, "error", { reason: `${m.event} is not served by the local stand-in` });
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
      const vsn = url.searchParams.get("vsn") === "2.0.0" ? "2.0.0" : "1.0.0";
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => {
        onMessage(socket, vsn, apikey, e.data).catch((err) => log({ level: "error", msg: "realtime message failed", error: String(err) }));
      };
      socket.onclose = () => unsubscribe(socket);
      return response;
    },
    async close(): Promise<void> {
      await listener.unlisten();
    },
  };
}

class ProbeResult extends Error {
  readonly allowed: boolean;
  constructor(allowed: boolean) {
    super("authorization probe (rolled back)");
    this.allowed = allowed;
  }
}
