/**
 * The Phoenix channel protocol as realtime-js speaks it to supabase/realtime: vsn 1.0.0
 * frames are JSON objects `{join_ref, ref, topic, event, payload}`, vsn 2.0.0 frames JSON
 * arrays `[join_ref, ref, topic, event, payload]` plus the binary frames of Realtime's
 * V2Serializer for broadcasts a client sends: a "user broadcast push" (kind 3) in, a "user
 * broadcast" (kind 4) out. Also the server messages Realtime sends: replies, `system`
 * messages and `phx_close` (RealtimeWeb.RealtimeChannel's push_system_message /
 * shutdown_response, and Phoenix.Socket closing a channel whose process stopped with
 * reason :normal).
 */

/** One Phoenix message. */
export interface Message {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
  /** Set when the message came as a binary user broadcast push (its payload is then `{}`). */
  user?: UserBroadcast;
}

/**
 * A broadcast as the V2Serializer carries it in binary frames (RealtimeWeb.Socket.UserBroadcast):
 * the user's event name and payload bytes, JSON or opaque binary.
 */
export interface UserBroadcast {
  event: string;
  encoding: "json" | "binary";
  data: Uint8Array;
}

/** Kinds of the V2Serializer's binary frames that the stand-in reads and writes. */
const USER_BROADCAST_PUSH = 3;
const USER_BROADCAST = 4;

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

/** Parses a frame; null for frames that are not a message (and for binary frames on vsn 1.0.0). */
export function decode(vsn: Vsn, data: unknown): Message | null {
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    return vsn === "2.0.0" ? decodeBinary(data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) : null;
  }
  if (typeof data !== "string") return null;
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return null;
  }
  if (vsn === "2.0.0") {
    if (!Array.isArray(raw) || raw.length < 5) return null;
    const [join_ref, ref, topic, event, payload] = raw;
    if (typeof topic !== "string" || typeof event !== "string") return null;
    return { join_ref: str(join_ref), ref: str(ref), topic, event, payload: obj(payload) };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null;
  const o = raw as Record<string, unknown>;
  if (typeof o.topic !== "string" || typeof o.event !== "string") return null;
  return { join_ref: str(o.join_ref), ref: str(o.ref), topic: o.topic, event: o.event, payload: obj(o.payload) };
}

/**
 * A binary user broadcast push: kind 3, the sizes of join_ref, ref, topic, user event and
 * metadata (one byte each), the payload encoding (0 binary, 1 JSON), those five strings and
 * the payload. Realtime does not use the metadata yet; neither does the stand-in.
 */
function decodeBinary(bytes: Uint8Array): Message | null {
  if (bytes.length < 7 || bytes[0] !== USER_BROADCAST_PUSH) return null;
  const sizes = [bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]];
  const encoding = bytes[6] === 0 ? "binary" : "json";
  const text = new TextDecoder();
  const parts: string[] = [];
  let offset = 7;
  for (const size of sizes) {
    if (offset + size > bytes.length) return null;
    parts.push(text.decode(bytes.subarray(offset, offset + size)));
    offset += size;
  }
  const [joinRef, ref, topic, event] = parts;
  return {
    join_ref: joinRef, ref, topic, event: "broadcast", payload: {},
    user: { event, encoding, data: bytes.slice(offset) },
  };
}

/**
 * A client's broadcast as it reaches another channel (BroadcastHandler and MessageDispatcher):
 * a JSON broadcast goes on as it came, event `broadcast`; a binary user broadcast goes to a
 * 2.0.0 socket as a binary user broadcast frame (kind 4: sizes of topic, event and metadata,
 * the encoding, then those strings and the payload; no metadata), and to a 1.0.0 socket as
 * a JSON broadcast `{event, payload, type}` when its payload is JSON, or not at all (1.0.0
 * cannot carry binary payloads). Null when nothing is to be sent.
 */
export function encodeBroadcast(vsn: Vsn, topic: string, b: { json: Record<string, unknown> } | { user: UserBroadcast }): string | Uint8Array | null {
  if ("json" in b) return encode(vsn, { join_ref: null, ref: null, topic, event: "broadcast", payload: b.json });
  const { event, encoding, data } = b.user;
  if (vsn === "1.0.0") {
    if (encoding !== "json") return null;
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder().decode(data));
    } catch {
      return null;
    }
    return encode(vsn, { join_ref: null, ref: null, topic, event: "broadcast", payload: { event, payload, type: "broadcast" } });
  }
  const utf8 = new TextEncoder();
  const t = utf8.encode(topic);
  const e = utf8.encode(event);
  if (t.length > 255 || e.length > 255) return null;
  const out = new Uint8Array(5 + t.length + e.length + data.length);
  out.set([USER_BROADCAST, t.length, e.length, 0, encoding === "json" ? 1 : 0]);
  out.set(t, 5);
  out.set(e, 5 + t.length);
  out.set(data, 5 + t.length + e.length);
  return out;
}

const str = (v: unknown) => (typeof v === "string" ? v : null);
const obj = (v: unknown) => (typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {});

/** `phx_reply` to a client message. */
export function reply(m: Message, status: "ok" | "error", response: Record<string, unknown> | string): Message {
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
