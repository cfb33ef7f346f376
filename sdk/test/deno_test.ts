/**
 * The SDK on Deno (a smoke test; the behaviour is covered by the vitest suites on Node):
 * delivery through a retried batch against a fake batch route on Deno.serve, the timers left
 * behind by a shutdown ledger (none: Deno's sanitizers check), that pending timers do not
 * keep a Deno process alive (with --allow-run), and the tracked skill hash against the
 * server's own implementation (supabase/functions/_shared/tracked_skill.ts).
 *
 *   node_modules/.bin/deno test --allow-net --allow-env --allow-run --no-lock sdk/test/deno_test.ts
 */
import assert from "node:assert/strict";
import { createCoachLedger, hashTrackedSkillId } from "../src/index.ts";

const ALICE = "a11ce000-0000-4000-8000-000000000001";
const KEY = "coach-ledger-local-tracked-skill-hash-key";

/** A fake batch route: 503 with Retry-After first, then every item created. */
function fakeLedger() {
  const requests: { authorization: string | null; items: { request_id: string; type?: string }[] }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const { items } = await req.json() as { items: { request_id: string; type?: string }[] };
    requests.push({ authorization: req.headers.get("authorization"), items });
    if (requests.length === 1) {
      return new Response(JSON.stringify({ status: 503, detail: "The database is unavailable; retry later." }), {
        status: 503,
        headers: { "content-type": "application/problem+json", "retry-after": "0" },
      });
    }
    const results = items.map((item, index) => ({ index, type: item.type ?? "interaction", outcome: "created", status: 201 }));
    return Response.json({ created: items.length, replayed: 0, refused: 0, items: results });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, requests, close: () => server.shutdown() };
}

Deno.test("createCoachLedger() delivers interactions and events on Deno, retrying a 503 with the same request_ids", async () => {
  const fake = fakeLedger();
  const ledger = createCoachLedger({ url: fake.url, key: "service-role-key", retry: { baseDelayMs: 1, maxDelayMs: 5 } });
  const ids = [
    ledger.log({ sender: "ai_coach", user_id: ALICE, content: { text: "Twenty minutes is a real win." }, model: "gpt-4o-mini" }),
    ledger.event({ kind: "delivered", user_id: ALICE }),
  ];
  const result = await ledger.flush();
  assert.deepEqual(result, { created: 2, replayed: 0, refused: 0, failed: 0, requeued: 0, dropped: 0, queued: 0 });
  assert.equal(fake.requests.length, 2);
  for (const r of fake.requests) {
    assert.equal(r.authorization, "Bearer service-role-key");
    assert.deepEqual(r.items.map((i) => i.request_id), ids);
  }
  assert.equal(fake.requests[1].items[1].type, "event");
  assert.deepEqual(await ledger.shutdown(), { created: 0, replayed: 0, refused: 0, failed: 0, requeued: 0, dropped: 0, queued: 0 });
  await fake.close();
});

Deno.test("a ledger with items waiting on its timer leaves nothing running after shutdown()", async () => {
  const fake = fakeLedger();
  fake.requests.push({ authorization: null, items: [] }); // no 503 this time
  const ledger = createCoachLedger({ url: fake.url, key: "k", flushIntervalMs: 60_000 });
  ledger.log({ sender: "user", user_id: ALICE, content: { text: "hi" } });
  const result = await ledger.shutdown();
  assert.equal(result.created, 1);
  await fake.close();
});

Deno.test({
  name: "a ledger's timers do not keep a Deno process alive (Deno.unrefTimer)",
  // Needs --allow-run (npm run test:deno passes it); skipped without.
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  fn: async () => {
    const index = new URL("../src/index.ts", import.meta.url).href;
    const code = `
      import { createCoachLedger } from ${JSON.stringify(index)};
      const timed = createCoachLedger({ url: "http://127.0.0.1:9", key: "k", flushIntervalMs: 60000 });
      timed.log({ sender: "user", content: { text: "hi" } });
      const retrying = createCoachLedger({ url: "http://127.0.0.1:9", key: "k", flushAt: 1, random: () => 0.99,
        retry: { baseDelayMs: 60000, maxDelayMs: 60000, maxElapsedMs: 600000 } });
      retrying.log({ sender: "user", content: { text: "hi" } });
      console.log("logged");`;
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", "--no-lock", code], stdout: "piped", stderr: "piped" }).spawn();
    const killer = setTimeout(() => child.kill("SIGKILL"), 45_000);
    const { code: exit, signal, stdout, stderr } = await child.output();
    clearTimeout(killer);
    assert.equal(new TextDecoder().decode(stderr), "");
    assert.equal(signal, null); // ended by itself, not killed at the deadline
    assert.equal(exit, 0);
    assert.equal(new TextDecoder().decode(stdout).trim(), "logged");
  },
});

Deno.test("hashTrackedSkillId() equals the server's trackedSkillHash()", async () => {
  Deno.env.set("TRACKED_SKILL_HASH_KEY", KEY);
  const { trackedSkillHash } = await import("../../supabase/functions/_shared/tracked_skill.ts");
  for (const id of ["sleep-routine", "42", "Skill/ünïcødé 🏃"]) {
    assert.equal(await hashTrackedSkillId(id, KEY), await trackedSkillHash(id));
  }
});
