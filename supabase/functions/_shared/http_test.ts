import assert from "node:assert/strict";
import { allowMethods, HttpError, json, respond } from "./http.ts";

Deno.test("respond() answers OPTIONS with CORS headers without running the body", async () => {
  let ran = false;
  const res = await respond(new Request("http://x/f", { method: "OPTIONS" }), () => {
    ran = true;
    return Promise.resolve(json({}));
  });
  assert.equal(res.status, 200);
  assert.equal(ran, false);
  const allowed = (res.headers.get("access-control-allow-headers") ?? "").split(/,\s*/);
  for (const h of ["authorization", "apikey", "content-type", "idempotency-key", "x-request-id", "x-tracked-skill-id"]) {
    assert.ok(allowed.includes(h), `${h} is allowed by the preflight`);
  }
  await res.body?.cancel();
});

Deno.test("respond() echoes a well-formed x-request-id and replaces a malformed one", async () => {
  let res = await respond(new Request("http://x/f", { headers: { "x-request-id": "req-123" } }), () => Promise.resolve(json({ ok: true })));
  assert.equal(res.headers.get("x-request-id"), "req-123");
  await res.body?.cancel();
  res = await respond(new Request("http://x/f", { headers: { "x-request-id": "bad id with spaces" } }), () => Promise.resolve(json({})));
  assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  await res.body?.cancel();
});

Deno.test("respond() reports measured timings in Server-Timing", async () => {
  const res = await respond(new Request("http://x/f"), async (ctx) => {
    await ctx.timing.measure("db", () => Promise.resolve(1));
    return json({});
  });
  assert.match(res.headers.get("server-timing") ?? "", /^db;dur=\d+(\.\d)?$/);
  await res.body?.cancel();
});

Deno.test("respond() turns an HttpError into problem+json with its field errors and the trace id as trace_id", async () => {
  const res = await respond(new Request("http://x/f", { headers: { "x-request-id": "r1" } }), () => {
    throw new HttpError(422, "Unprocessable Content", "The body has invalid fields.", {
      errors: [{ field: "sender", message: "Required" }],
    });
  });
  assert.equal(res.status, 422);
  assert.equal(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
  assert.deepEqual(await res.json(), {
    type: "about:blank", title: "Unprocessable Content", status: 422, detail: "The body has invalid fields.",
    errors: [{ field: "sender", message: "Required" }], trace_id: "r1",
  });
});

Deno.test("respond() logs an unexpected error and answers 500 problem+json", async () => {
  const logged: string[] = [];
  const original = console.error;
  console.error = (line: string) => logged.push(line);
  try {
    const res = await respond(new Request("http://x/f"), () => {
      throw new Error("database exploded");
    });
    assert.equal(res.status, 500);
    assert.equal((await res.json()).title, "Internal Server Error");
    assert.equal(logged.length, 1);
    assert.match(logged[0], /database exploded/);
    assert.equal(JSON.parse(logged[0]).trace_id, res.headers.get("x-request-id"));
  } finally {
    console.error = original;
  }
});

Deno.test("allowMethods() throws 405 with an Allow header", async () => {
  const res = await respond(new Request("http://x/f", { method: "DELETE" }), () => {
    allowMethods(new Request("http://x/f", { method: "DELETE" }), "GET", "POST");
    return Promise.resolve(json({}));
  });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("allow"), "GET, POST, OPTIONS");
  await res.body?.cancel();
});
