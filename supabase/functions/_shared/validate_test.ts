import assert from "node:assert/strict";
import { HttpError } from "./http.ts";
import { idempotencyKeyOf, MAX_JSON_DEPTH, queryOf, readJson, unstorable, writerFieldErrors } from "./validate.ts";

const post = (body: BodyInit) => new Request("http://functions.test/x", { method: "POST", body });

async function refusal(body: BodyInit): Promise<HttpError> {
  try {
    await readJson(post(body), 1_000_000);
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error("readJson accepted the body");
}

Deno.test("readJson() refuses a NUL character anywhere in the body, naming the field (422)", async () => {
  const err = await refusal(JSON.stringify({ content: { text: "ok", extra: "a\u0000b" } }));
  assert.equal(err.status, 422);
  assert.deepEqual(err.errors, [{ field: "content.extra", message: "Contains a NUL character (\\u0000), which cannot be stored" }]);
});

Deno.test("readJson() refuses unpaired surrogates and unstorable keys (422)", async () => {
  const err = await refusal('{"a": ["\\ud800"], "b\\u0000": 1}');
  assert.equal(err.status, 422);
  assert.deepEqual(err.errors?.map((e) => e.field).sort(), ["a.0", "b\u0000"]);
});

Deno.test("readJson() refuses a number beyond a 64-bit float, which JSON.parse would make Infinity (422)", async () => {
  const err = await refusal('{"latency_ms": 1, "metadata": {"score": 1e400, "low": -1e999, "tiny": 1e-400}}');
  assert.equal(err.status, 422);
  // 1e-400 underflows to 0, a storable number: only the overflows are refused.
  assert.deepEqual(err.errors?.map((e) => e.field).sort(), ["metadata.low", "metadata.score"]);
  assert.equal(err.errors?.[0].message, "A number too large to store (beyond a 64-bit float)");
});

Deno.test("readJson() refuses JSON nested deeper than MAX_JSON_DEPTH (422) and accepts it at the limit", async () => {
  const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
  assert.equal((await refusal(deep(20_000))).status, 422);
  assert.deepEqual(unstorable(JSON.parse(deep(MAX_JSON_DEPTH))), []);
  assert.equal(unstorable(JSON.parse(deep(MAX_JSON_DEPTH + 1))).length, 1);
});

Deno.test("readJson() refuses a body that is not UTF-8 (400) or not JSON (400)", async () => {
  assert.equal((await refusal(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]))).status, 400);
  assert.equal((await refusal("{")).status, 400);
});

Deno.test("readJson() returns ordinary JSON as parsed", async () => {
  assert.deepEqual(await readJson(post('{"text": "héllo 💥", "n": [1, {"m": null}]}'), 1000), { text: "héllo 💥", n: [1, { m: null }] });
});

Deno.test("idempotencyKeyOf() takes the body's key or the header, and names a malformed or disagreeing header", () => {
  const req = (key?: string) => new Request("http://x/f", { headers: key === undefined ? {} : { "idempotency-key": key } });
  const errors: { field: string; message: string }[] = [];
  assert.equal(idempotencyKeyOf(req("k-1"), undefined, errors), "k-1");
  assert.equal(idempotencyKeyOf(req(), "b-1", errors), "b-1");
  assert.equal(idempotencyKeyOf(req(), undefined, errors), undefined);
  assert.equal(errors.length, 0);
  idempotencyKeyOf(req("no/slash"), undefined, errors);
  idempotencyKeyOf(req("a"), "b", errors);
  assert.deepEqual(errors.map((e) => e.field), ["Idempotency-Key", "request_id"]);
});

Deno.test("writerFieldErrors() asks service callers for user_id and keeps created_at to them", () => {
  assert.deepEqual(writerFieldErrors({}, true).map((e) => e.field), ["user_id"]);
  assert.deepEqual(writerFieldErrors({ created_at: "2026-01-01T00:00:00Z" }, false).map((e) => e.field), ["created_at"]);
  assert.deepEqual(writerFieldErrors({ user_id: "u", created_at: "2026-01-01T00:00:00Z" }, true), []);
});

Deno.test("queryOf() gives the query string as an object", () => {
  assert.deepEqual(queryOf(new Request("http://x/f?limit=5&kind=read")), { limit: "5", kind: "read" });
});
