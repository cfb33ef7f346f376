/**
 * The Phoenix channel protocol as realtime-js speaks it to supabase/realtime: vsn 1.0.0
 * frames are JSON objects `{join_ref, ref, topic, event, payload}`, vsn 2.0.0 frames JSON
 * arrays `[join_ref, ref, topic, event, payload]` (the stand-in always answers with text
 * frames). Also the server messages Realtime sends: replies, `system` messages and
 * `phx_close` (RealtimeWeb.RealtimeChannel's push_system_message / shutdown_response, and
 * Phoenix.Socket closing a channel whose process stopped with reason :normal).
 */

/** One Phoenix message. */
export interface Message {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
}

/** The protocol versions realtime-js may ask for; anything else is served as 1.0.0. */
export type Vsn = "1.0.0" | "2.0.0";

/** The version a socket asked for in its `vsn` query parameter. */
export function vsnOf(url: URL): Vsn {
  return url.searchParams.get("vsn") === "2.0.0" ? "2.0.0" : "1.0.0";
}

/** Serialises a message for a socket of the given version. */
export function encode(vsn: Vsn, m: Message): string {
  return vsn === "2.0.0" ? JSON.stringify([m.join_ref, m.ref, m.topic, m.event, m.payload]) : JSON.stringify(m);
}

/** Parses a text frame; null for binary frames (client broadcasts) and frames that are not a message. */
export function decode(vsn: Vsn, data: unknown): Message | null {
  if (typeof data !== "string") return null;
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return null;
  }
  if (vsn === "2.0.0") {
    if (!Array.isArray(raw) || raw.length !== 5) return null;
    const [join_ref, ref, topic, event, payload] = raw;
    if (typeof topic !== "string" || typeof event !== "string") return null;
    return { join_ref: str(join_ref), ref: str(ref), topic, event, payload: obj(payload) };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null;
  const o = raw as Record<string, unknown>;
  if (typeof o.topic !== "string" || typeof o.event !== "string") return null;
  return { join_ref: str(o.join_ref), ref: str(o.ref), topic: o.topic, event: o.event, payload: obj(o.payload) };
}

const str = (v: unknown) => (typeof v === "string" ? v : null);
const obj = (v: unknown) => (typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {});

/** `phx_reply` to a client message. */
export function reply(m: Message, status: "ok" | "error", response: Record<string, unknown>): Message {
  return { join_ref: m.join_ref, ref: m.ref, topic: m.topic, event: "phx_reply", payload: { status, response } };
}

/**
 * A `system` message on a channel, as Realtime's push_system_message sends it: `channel` is
 * the topic without its `realtime:` prefix.
 */
export function system(topic: string, joinRef: string | null, status: "ok" | "error", message: string): Message {
  return {
    join_ref: joinRef, ref: null, topic, event: "system",
    payload: { extension: "system", status, message, channel: subTopic(topic) },
  };
}

/**
 * `phx_close` for a channel the server stopped normally: Phoenix sends it with both refs set
 * to the join ref, which is what realtime-js matches before it reports the channel CLOSED.
 */
export function close(topic: string, joinRef: string | null): Message {
  return { join_ref: joinRef, ref: joinRef, topic, event: "phx_close", payload: {} };
}

/** A broadcast as delivered to channels: event `broadcast`, payload `{type, event, payload, meta}`. */
export function broadcast(topic: string, row: { id: string; event: string; payload: unknown }): Message {
  return {
    join_ref: null, ref: null, topic, event: "broadcast",
    payload: { type: "broadcast", event: row.event, payload: row.payload, meta: { id: row.id } },
  };
}

/** `realtime:<name>` → `<name>` (the topic realtime.messages rows carry). */
export function subTopic(topic: string): string {
  return topic.startsWith("realtime:") ? topic.slice("realtime:".length) : topic;
}
