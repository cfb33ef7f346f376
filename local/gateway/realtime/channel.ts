/**
 * A joined channel and what its handlers share, as RealtimeWeb.RealtimeChannel keeps them in
 * the channel's socket assigns: the join's config (RealtimeWeb.Channels.Payloads.Join), the
 * token and its claims, the private channel's policies, and the presence state of the channel.
 */
import type { Authorizer, Claims, Policies } from "./authorization.ts";
import type { Subscriber } from "./delivery.ts";
import type { PresenceTracker } from "./presence.ts";
import type { Message, Vsn } from "./protocol.ts";

/** One joined channel on one socket. */
export interface Channel extends Subscriber {
  readonly socket: WebSocket;
  readonly vsn: Vsn;
  readonly joinRef: string | null;
  claims: Claims;
  token: string;
  closed: boolean;
  /** Increases with every access_token push, so that only the newest one takes effect. */
  authSeq: number;
  timer?: ReturnType<typeof setTimeout>;
  policies: Policies;
  /** config.broadcast.self: the sender receives its own broadcasts. */
  readonly self: boolean;
  /** config.broadcast.ack: each broadcast is answered once it has been sent on. */
  readonly ack: boolean;
  /** config.presence.enabled, or true once the channel has tracked. */
  presenceEnabled: boolean;
  /** config.presence.key, else a random UUID. */
  readonly presenceKey: string;
  /** The payload last tracked (a track with the same payload changes nothing). */
  presencePayload?: Record<string, unknown>;
  /** Realtime's per-channel limit on presence messages from the client. */
  presenceCalls: { count: number; resetAt: number };
  /** Sends a frame already encoded for this socket's protocol version. */
  sendRaw(data: string | Uint8Array): void;
}

/** What the broadcast and presence handlers need from the server. */
export interface Hub {
  /** The channels joined on a topic (without `realtime:`), public and private alike. */
  members(topic: string): Iterable<Channel>;
  readonly authorizer: Authorizer;
  readonly presence: PresenceTracker<Channel>;
  /** Realtime's shutdown_response: a system error message, then phx_close. */
  shutdown(ch: Channel, message: string): void;
  /** Sends a message on a channel's socket. */
  send(ch: Channel, m: Message): void;
  log(line: Record<string, unknown>): void;
}

/** The parts of a join's config the server acts on. */
export interface JoinConfig {
  isPrivate: boolean;
  self: boolean;
  ack: boolean;
  presenceEnabled: boolean;
  presenceKey: string;
  /** True when the join asks for postgres_changes (not served locally). */
  postgresChanges: boolean;
}

/**
 * Reads `config` of a phx_join as Realtime's Join payload does: `private`, `broadcast.self`,
 * `broadcast.ack` and `presence.enabled` are flexible booleans (true, or "true" in any case;
 * anything else is false, as Realtime applies its defaults to an invalid field); a
 * `presence.key` that is a number or a boolean is used as its text (JSON keys are text), and
 * an empty, missing or structured one becomes a random UUID.
 */
export function joinConfig(payload: Record<string, unknown>): JoinConfig {
  const config = object(payload.config);
  const broadcast = object(config.broadcast);
  const presence = object(config.presence);
  const key = presence.key;
  return {
    isPrivate: flag(config.private),
    self: flag(broadcast.self),
    ack: flag(broadcast.ack),
    presenceEnabled: flag(presence.enabled),
    presenceKey: (typeof key === "string" && key !== "") || typeof key === "number" || typeof key === "boolean" ? String(key) : crypto.randomUUID(),
    postgresChanges: Array.isArray(config.postgres_changes) && config.postgres_changes.some((c) => c !== null),
  };
}

/** Realtime's FlexibleBoolean: true, or the string "true" in any case. */
function flag(v: unknown): boolean {
  return v === true || (typeof v === "string" && v.toLowerCase() === "true");
}

function object(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {};
}
