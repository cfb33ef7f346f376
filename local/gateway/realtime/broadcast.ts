/**
 * Broadcasts sent by clients (`channel.send({type: 'broadcast', ...})`), as Realtime's
 * BroadcastHandler handles them: never stored, sent on at once to the other channels joined
 * on the same topic with the same privacy (and to the sender when its join asked for
 * `broadcast.self`), then answered `ok` when the join asked for `broadcast.ack`.
 *
 * On a private channel the first broadcast runs Realtime's write check (an INSERT of a row
 * of the topic as the user, under RLS, rolled back; authorization.ts); the answer is kept
 * until the channel's token changes. A refused broadcast is dropped with no reply, as
 * Realtime drops it (a client waiting for an ack times out). Receivers of a private topic
 * are the channels whose broadcast read was granted at join or at their last access_token.
 */
import type { Channel, Hub } from "./channel.ts";
import { encodeBroadcast, type Message, reply } from "./protocol.ts";

/**
 * Realtime's payload limit: the tenant's max_payload_size_in_kb (3000 by default, as the
 * Supabase CLI runs it) times 1000, plus 500 bytes of padding. Realtime measures the Erlang
 * term; the stand-in measures the payload's bytes as they came.
 */
export const MAX_PAYLOAD_BYTES = 3000 * 1000 + 500;

/** The size of a client message's payload as the stand-in measures it. */
export function payloadBytes(m: Message): number {
  return m.user ? m.user.data.length : new TextEncoder().encode(JSON.stringify(m.payload)).length;
}

/** Handles one `broadcast` message from a client on a joined channel. */
export async function handleBroadcast(hub: Hub, ch: Channel, m: Message): Promise<void> {
  if (ch.isPrivate && !(await mayWrite(hub, ch, "broadcast"))) return;
  // A channel shut down while its check ran (token expired, access revoked) sends nothing.
  if (ch.closed) return;
  if (payloadBytes(m) > MAX_PAYLOAD_BYTES) {
    if (ch.ack) hub.send(ch, reply(m, "error", "payload_size_exceeded"));
    return;
  }
  const body = m.user ? { user: m.user } : { json: m.payload };
  const encoded = new Map<string, string | Uint8Array | null>();
  for (const r of hub.members(ch.topic)) {
    if (r.closed || r.isPrivate !== ch.isPrivate || (r === ch && !ch.self)) continue;
    if (r.isPrivate && r.policies.broadcast.read !== true) continue;
    if (!encoded.has(r.vsn)) encoded.set(r.vsn, encodeBroadcast(r.vsn, `realtime:${ch.topic}`, body));
    const frame = encoded.get(r.vsn);
    if (frame !== null && frame !== undefined) r.sendRaw(frame);
  }
  if (ch.ack) hub.send(ch, reply(m, "ok", {}));
}

/**
 * Whether a private channel may write `extension`: Realtime's write check, run once for
 * both extensions and kept on the channel until its token changes. False when the database
 * cannot answer (logged; Realtime logs and drops the message too).
 */
export async function mayWrite(hub: Hub, ch: Channel, extension: "broadcast" | "presence"): Promise<boolean> {
  if (ch.policies[extension].write === undefined) {
    const seq = ch.authSeq;
    const claims = ch.claims;
    let found;
    try {
      found = await hub.authorizer.mayWrite(ch.topic, claims, ["broadcast", "presence"]);
    } catch (err) {
      hub.log({ level: "error", msg: "realtime: write check failed", topic: ch.topic, error: String(err) });
      return false;
    }
    // An access_token that arrived meanwhile resets the policies: this answer is for the old token.
    if (seq !== ch.authSeq) return found[extension] === true;
    ch.policies.broadcast.write = found.broadcast === true;
    ch.policies.presence.write = found.presence === true;
  }
  return ch.policies[extension].write === true;
}
