/** Phoenix frames as realtime-js and supabase/realtime exchange them. */
import assert from "node:assert/strict";
import { broadcast, close, decode, encode, reply, subTopic, system, vsnOf } from "./protocol.ts";

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
