/** The Storage stand-in's parsing and rules that the end-to-end tests do not reach one by one. */
import assert from "node:assert/strict";
import { mimeAllowed, parseMultipart } from "./storage.ts";

Deno.test("mimeAllowed() matches type and subtype, with * as a subtype, as the server does", () => {
  assert.equal(mimeAllowed("audio/wav", ["audio/wav"]), true);
  assert.equal(mimeAllowed("AUDIO/WAV", ["audio/wav"]), false, "compared as sent, as the server compares them");
  assert.equal(mimeAllowed("audio/ogg", ["audio/*"]), true);
  assert.equal(mimeAllowed("video/ogg", ["audio/*"]), false);
  assert.equal(mimeAllowed("audio/wav", ["audio/mpeg"]), false);
  assert.equal(mimeAllowed("text/plain;charset=UTF-8", ["text/plain"]), false, "parameters are kept for raw uploads");
  assert.equal(mimeAllowed("image/png", null), true, "no list allows everything");
  assert.equal(mimeAllowed("image/png", []), true);
});

Deno.test("parseMultipart() keeps a file part named \"\" (storage-js's), fields, types and bytes", async () => {
  const form = new FormData();
  form.append("cacheControl", "3600");
  form.append("other", new Blob([new Uint8Array([0, 13, 10, 45, 45, 255])], { type: "audio/wav" }), "a.wav");
  const req = new Request("http://x/", { method: "POST", body: form });
  const boundary = /boundary=(.+)$/.exec(req.headers.get("content-type")!)![1];
  const body = new Uint8Array(await req.arrayBuffer());
  // The Fetch API will not send a part named "": rename the file part as storage-js sends it.
  const text = new TextDecoder("latin1").decode(body).replace('name="other"', 'name=""');
  const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
  const parts = parseMultipart(bytes, boundary);
  assert.deepEqual(parts.map((p) => [p.name, p.filename, p.type]), [["cacheControl", null, ""], ["", "a.wav", "audio/wav"]]);
  assert.deepEqual([...parts[1].data], [0, 13, 10, 45, 45, 255]);
  assert.equal(new TextDecoder().decode(parts[0].data), "3600");
  assert.deepEqual(parseMultipart(new TextEncoder().encode("garbage"), boundary), []);
});
