/**
 * Presence, as RealtimeWeb.Presence (Phoenix.Presence over Phoenix.Tracker) keeps it for one
 * Realtime node: per topic, each tracking channel's key and metadata. A channel tracks at
 * most one presence per topic; tracking again replaces its metadata (Phoenix.Presence.update:
 * a new `phx_ref`, the old one as `phx_ref_prev`). Every change yields the diff Phoenix
 * broadcasts as `presence_diff`, `{joins, leaves}`, each grouped by key as
 * `{<key>: {metas: [{phx_ref, ...payload}]}}`; `list()` gives the same grouping for
 * `presence_state`. Then the handler of a client's `presence` messages (PresenceHandler).
 */
import { isDeepStrictEqual } from "node:util";
import { MAX_PAYLOAD_BYTES, mayWrite } from "./broadcast.ts";
import type { Channel, Hub } from "./channel.ts";
import { type Message, reply } from "./protocol.ts";

/** Presences grouped by key, as Phoenix.Presence.group gives them. */
export type PresenceGroup = Record<string, { metas: Record<string, unknown>[] }>;

/** What one change did. */
export interface PresenceDiff {
  joins: PresenceGroup;
  leaves: PresenceGroup;
}

interface Entry {
  key: string;
  meta: Record<string, unknown>;
}

/** Presences of every topic, each tracked by a member (a channel). */
export class PresenceTracker<Member> {
  #topics = new Map<string, Map<Member, Entry>>();

  /** Tracks (or re-tracks) `member` under `key` with `payload`; returns the diff to broadcast. */
  track(topic: string, member: Member, key: string, payload: Record<string, unknown>): PresenceDiff {
    let entries = this.#topics.get(topic);
    if (!entries) this.#topics.set(topic, entries = new Map());
    const previous = entries.get(member);
    const meta: Record<string, unknown> = { ...payload, phx_ref: newRef() };
    if (previous) meta.phx_ref_prev = previous.meta.phx_ref;
    entries.set(member, { key, meta });
    return {
      joins: group([{ key, meta }]),
      leaves: group(previous ? [previous] : []),
    };
  }

  /** Stops tracking `member` on `topic`; null when it was not tracked. */
  untrack(topic: string, member: Member): PresenceDiff | null {
    const entries = this.#topics.get(topic);
    const previous = entries?.get(member);
    if (!entries || !previous) return null;
    entries.delete(member);
    if (entries.size === 0) this.#topics.delete(topic);
    return { joins: group([]), leaves: group([previous]) };
  }

  /** Everyone present on `topic`, grouped by key. */
  list(topic: string): PresenceGroup {
    return group([...this.#topics.get(topic)?.values() ?? []]);
  }
}

function group(entries: Entry[]): PresenceGroup {
  // No prototype: a key is whatever the client chose, "__proto__" included.
  const out: PresenceGroup = Object.create(null);
  for (const { key, meta } of entries) (out[key] ??= { metas: [] }).metas.push(meta);
  return out;
}

/** A unique reference for one tracked presence (Phoenix.Tracker's random ref). */
function newRef(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes));
}

/**
 * Realtime's limit on presence messages from one channel (CLIENT_PRESENCE_MAX_CALLS and
 * CLIENT_PRESENCE_WINDOW_MS, 5 per 30 s by default): the next one closes the channel.
 */
export const PRESENCE_CALLS = { max: 5, windowMs: 30_000 };

/** The key presences of a topic are kept under: private and public channels are apart, as in Realtime. */
export const presenceTopic = (ch: Pick<Channel, "topic" | "isPrivate">) => `${ch.isPrivate ? "private" : "public"}:${ch.topic}`;

/**
 * Handles one `presence` message from a client (PresenceHandler.handle): `track` with a map
 * payload (a private channel first passes Realtime's write check and, if presence was not
 * enabled at join, the presence read check), `untrack`; anything else is answered `error`.
 */
export async function handlePresence(hub: Hub, ch: Channel, m: Message): Promise<void> {
  const event = m.payload.event;
  if (!("event" in m.payload)) return hub.send(ch, reply(m, "ok", {}));
  const now = Date.now();
  if (now > ch.presenceCalls.resetAt) ch.presenceCalls = { count: 1, resetAt: now + PRESENCE_CALLS.windowMs };
  else if (ch.presenceCalls.count >= PRESENCE_CALLS.max) return hub.shutdown(ch, "Client presence rate limit exceeded");
  else ch.presenceCalls.count++;
  switch (typeof event === "string" ? event.toLowerCase() : null) {
    case "track":
      return await track(hub, ch, m);
    case "untrack":
      untrack(hub, ch);
      return hub.send(ch, reply(m, "ok", {}));
    default:
      hub.log({ level: "warn", msg: "realtime: unknown presence event", event: String(event) });
      return hub.send(ch, reply(m, "error", {}));
  }
}

async function track(hub: Hub, ch: Channel, m: Message): Promise<void> {
  if (ch.isPrivate) {
    // As Realtime: the presence read check runs here only when neither it nor the write check
    // has run (a broadcast's write check also answers presence.write, after which a channel
    // that joined without presence tracks without being granted presence reads).
    if (ch.policies.presence.write === undefined && ch.policies.presence.read === undefined) {
      try {
        const found = await hub.authorizer.authorize(ch.topic, ch.claims, { presence: true });
        ch.policies.broadcast.read = found.broadcast;
        ch.policies.presence.read = found.presence;
      } catch (err) {
        hub.log({ level: "error", msg: "realtime: presence read check failed", topic: ch.topic, error: String(err) });
        return hub.send(ch, reply(m, "error", {}));
      }
    }
    if (!(await mayWrite(hub, ch, "presence"))) return hub.send(ch, reply(m, "error", {}));
    if (ch.closed) return;
  }
  const payload = "payload" in m.payload ? m.payload.payload : {};
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    return hub.send(ch, reply(m, "error", { reason: "Presence track payload must be a map" }));
  }
  const meta = payload as Record<string, unknown>;
  if (ch.presencePayload !== undefined && isDeepStrictEqual(ch.presencePayload, meta)) return hub.send(ch, reply(m, "ok", {}));
  if (new TextEncoder().encode(JSON.stringify(meta)).length > MAX_PAYLOAD_BYTES) return hub.shutdown(ch, "Track message size exceeded");
  const diff = hub.presence.track(presenceTopic(ch), ch, ch.presenceKey, meta);
  ch.presencePayload = meta;
  ch.presenceEnabled = true;
  hub.send(ch, reply(m, "ok", {}));
  sendDiff(hub, ch, diff);
}

/** Stops tracking a channel's presence (untrack, leave, close) and tells the topic. */
export function untrack(hub: Hub, ch: Channel): void {
  ch.presencePayload = undefined;
  const diff = hub.presence.untrack(presenceTopic(ch), ch);
  if (diff) sendDiff(hub, ch, diff);
}

/**
 * `presence_state` after a join, as PresenceHandler.sync sends it: when presence is enabled,
 * on a public channel or a private one whose presence read was granted.
 */
export function syncPresence(hub: Hub, ch: Channel): void {
  if (!ch.presenceEnabled || (ch.isPrivate && ch.policies.presence.read !== true)) return;
  hub.send(ch, { join_ref: ch.joinRef, ref: null, topic: `realtime:${ch.topic}`, event: "presence_state", payload: hub.presence.list(presenceTopic(ch)) });
}

/**
 * `presence_diff` to every open channel of the topic (the one that changed included), as the
 * MessageDispatcher sends it: public channels all get it, private ones when their presence
 * read was granted.
 */
function sendDiff(hub: Hub, from: Channel, diff: PresenceDiff): void {
  const frame: Message = { join_ref: null, ref: null, topic: `realtime:${from.topic}`, event: "presence_diff", payload: diff as unknown as Record<string, unknown> };
  for (const r of hub.members(from.topic)) {
    if (r.closed || r.isPrivate !== from.isPrivate || (r.isPrivate && r.policies.presence.read !== true)) continue;
    hub.send(r, frame);
  }
}
