/** Phoenix frames as realtime-js and supabase/realtime exchange them. */
import assert from "node:assert/strict";
import { broadcast, close, decode, encode, encodeBroadcast, reply, subTopic, system, vsnOf } from "./protocol.ts";

const join = { join_ref: "3", ref: "3", topic: "realtime:room", event: "phx_join", payload: { config: {} } };

Deno.test("encode() writes vsn 2.0.0 as arrays and 1.0.0 as objects", () => {
  assert.equal(encode("2.0.0", join), '["3","3","realtime:room","phx_join",{"config":{}}]');
  assert.deepEqual(JSON.parse(encode("1.0.0", join)), join);
});

Deno.test("decode() reads both versions and returns null for frames that are not messages", () => {
  assert.deepEqual(decode("2.0.0", encode("2.0.0", join)), join);
  assert.deepEqual(decode("1.0.0", encode("1.0.0", join)), join);
  assert.deepEqual(decode("1.0.0", '{"topic":"t","event":"e"}'), { join_ref: null, ref: null, topic: "t", event: "e", payload: {} });
  for (const junk of ["not json", "[1,2]", '{"topic":1,"event":"e"}', '["1","1","t","e"]', "null", "[]"]) {
    assert.equal(decode("1.0.0", junk), null, junk);
    assert.equal(decode("2.0.0", junk), null, junk);
  }
  assert.equal(decode("2.0.0", new Uint8Array([1, 2, 3])), null);
  assert.deepEqual(decode("2.0.0", '["1","2","t","e",{},"ignored"]'), { join_ref: "1", ref: "2", topic: "t", event: "e", payload: {} },
    "Phoenix reads the first five elements of a longer array");
});

Deno.test("system() and close() are what Realtime's shutdown_response sends", () => {
  assert.deepEqual(system("realtime:coach_interactions:x", "7", "error", "Token has expired 0 seconds ago"), {
    join_ref: "7", ref: null, topic: "realtime:coach_interactions:x", event: "system",
    payload: { extension: "system", status: "error", message: "Token has expired 0 seconds ago", channel: "coach_interactions:x" },
  });
  assert.deepEqual(close("realtime:room", "7"), { join_ref: "7", ref: "7", topic: "realtime:room", event: "phx_close", payload: {} });
});

Deno.test("reply() and broadcast() carry the refs and payload shapes realtime-js reads", () => {
  assert.deepEqual(reply(join, "ok", { postgres_changes: [] }), {
    join_ref: "3", ref: "3", topic: "realtime:room", event: "phx_reply", payload: { status: "ok", response: { postgres_changes: [] } },
  });
  assert.deepEqual(broadcast("realtime:room", { id: "m1", event: "INSERT", payload: { a: 1 } }).payload, {
    type: "broadcast", event: "INSERT", payload: { a: 1 }, meta: { id: "m1" },
  });
});

Deno.test("subTopic() and vsnOf() read the topic name and the protocol version", () => {
  assert.equal(subTopic("realtime:coach_interactions:x"), "coach_interactions:x");
  assert.equal(subTopic("phoenix"), "phoenix");
  assert.equal(vsnOf(new URL("ws://h/realtime/v1/websocket?vsn=2.0.0")), "2.0.0");
  assert.equal(vsnOf(new URL("ws://h/realtime/v1/websocket")), "1.0.0");
});

/** A binary user broadcast push as realtime-js's Serializer writes it (kind 3). */
function userBroadcastPush(parts: { joinRef: string; ref: string; topic: string; event: string; meta?: string }, encoding: 0 | 1, payload: Uint8Array): Uint8Array {
  const utf8 = new TextEncoder();
  const fields = [parts.joinRef, parts.ref, parts.topic, parts.event, parts.meta ?? ""].map((f) => utf8.encode(f));
  return new Uint8Array([3, ...fields.map((f) => f.length), encoding, ...fields.flatMap((f) => [...f]), ...payload]);
}

Deno.test("decode() reads a 2.0.0 binary user broadcast push, multi-byte text and binary payloads included", () => {
  const json = new TextEncoder().encode('{"typing":true,"who":"Zoë"}');
  const frame = userBroadcastPush({ joinRef: "4", ref: "9", topic: "realtime:room:café", event: "typing ✍", meta: '{"x":1}' }, 1, json);
  assert.deepEqual(decode("2.0.0", frame.buffer), {
    join_ref: "4", ref: "9", topic: "realtime:room:café", event: "broadcast", payload: {},
    user: { event: "typing ✍", encoding: "json", data: json },
  });
  const bytes = new Uint8Array([0, 255, 7]);
  const binary = userBroadcastPush({ joinRef: "4", ref: "10", topic: "realtime:room", event: "blob" }, 0, bytes);
  assert.deepEqual(decode("2.0.0", binary)?.user, { event: "blob", encoding: "binary", data: bytes });
  assert.equal(decode("1.0.0", frame.buffer), null, "1.0.0 sockets carry no binary frames");
  assert.equal(decode("2.0.0", frame.slice(0, 12)), null, "a truncated frame");
  assert.equal(decode("2.0.0", new Uint8Array([4, 0, 0, 0, 0, 1])), null, "a kind the server never receives");
});

Deno.test("encodeBroadcast() sends a user broadcast as a binary frame to 2.0.0 and as JSON (or nothing) to 1.0.0", () => {
  const data = new TextEncoder().encode('{"n":1}');
  const out = encodeBroadcast("2.0.0", "realtime:room", { user: { event: "typing", encoding: "json", data } }) as Uint8Array;
  const topic = new TextEncoder().encode("realtime:room");
  assert.deepEqual([...out.slice(0, 5)], [4, topic.length, 6, 0, 1]);
  assert.equal(new TextDecoder().decode(out.slice(5)), 'realtime:roomtyping{"n":1}');
  assert.deepEqual(JSON.parse(encodeBroadcast("1.0.0", "realtime:room", { user: { event: "typing", encoding: "json", data } }) as string), {
    join_ref: null, ref: null, topic: "realtime:room", event: "broadcast", payload: { event: "typing", payload: { n: 1 }, type: "broadcast" },
  });
  const blob = { user: { event: "blob", encoding: "binary" as const, data: new Uint8Array([1, 2]) } };
  assert.deepEqual([...(encodeBroadcast("2.0.0", "realtime:room", blob) as Uint8Array).slice(-2)], [1, 2]);
  assert.equal(encodeBroadcast("1.0.0", "realtime:room", blob), null);
  const sent = { json: { type: "broadcast", event: "typing", payload: { n: 1 } } };
  assert.equal(encodeBroadcast("2.0.0", "realtime:room", sent), '[null,null,"realtime:room","broadcast",{"type":"broadcast","event":"typing","payload":{"n":1}}]');
});
