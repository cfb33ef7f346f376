/** Runs against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { handler } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { generateSigningJwk, verifyCheckpoint } from "../_shared/audit_chain.ts";
import { adminSql, ALICE, request, token, userToken } from "../_shared/testing/fixtures.ts";

const admin = adminSql();

/** A sink on a free loopback port that records what it receives and answers `status`. */
function startSink(status: number) {
  const received: Record<string, unknown>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    received.push(await req.json());
    return new Response(null, { status });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/checkpoints`, received, close: () => server.shutdown() };
}

Deno.test({
  name: "audit-checkpoint handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const service = await token({ role: "service_role" });
    const jwk = await generateSigningJwk("test-2026-11");
    const post = (bearer = service) => handler(request("/audit-checkpoint", { bearer, method: "POST" }));
    try {
      await t.step("handler() answers 503 when no signing key is configured", async () => {
        Deno.env.delete("AUDIT_SIGNING_KEY");
        const res = await post();
        assert.equal(res.status, 503);
        assert.match((await res.json()).detail, /AUDIT_SIGNING_KEY/);
      });
      Deno.env.set("AUDIT_SIGNING_KEY", JSON.stringify(jwk));
      await t.step("handler() refuses a user token (403)", async () => {
        const res = await post(await userToken(ALICE));
        assert.equal(res.status, 403);
        await res.body?.cancel();
      });
      await t.step("handler() signs the chain head, exports it to the sink and records it (201)", async () => {
        await admin`select audit.record_phi_access(${ALICE}::uuid, 'coach_interactions', 1, 'checkpoint handler test')`;
        const [head] = await admin`select chain_seq::text as seq, row_hash from audit.phi_access_log order by chain_seq desc limit 1`;
        const sink = startSink(201);
        Deno.env.set("AUDIT_CHECKPOINT_SINK_URL", sink.url);
        try {
          const res = await post();
          assert.equal(res.status, 201);
          const body = await res.json();
          assert.equal(body.chain_seq, Number(head.seq));
          assert.equal(body.head_hash, head.row_hash);
          assert.equal(body.key_id, "test-2026-11");
          assert.equal(body.sink, sink.url);
          // The signature verifies with the public key alone.
          const jwks = await (await handler(request("/audit-checkpoint/jwks"))).json();
          assert.equal(jwks.keys[0].d, undefined);
          const checkpoint = await verifyCheckpoint(body.jws, jwks.keys[0]);
          assert.deepEqual([checkpoint.seq, checkpoint.hash], [Number(head.seq), head.row_hash]);
          assert.deepEqual(sink.received, [{ jws: body.jws, seq: Number(head.seq), hash: head.row_hash }]);
          const [stored] = await admin`select jws, sink from audit.phi_access_checkpoints where id = ${body.id}`;
          assert.deepEqual([stored.jws, stored.sink], [body.jws, sink.url]);
        } finally {
          Deno.env.delete("AUDIT_CHECKPOINT_SINK_URL");
          await sink.close();
        }
      });
      await t.step("handler() answers 502 and records nothing when the sink refuses", async () => {
        const sink = startSink(500);
        Deno.env.set("AUDIT_CHECKPOINT_SINK_URL", sink.url);
        try {
          const [{ n: before }] = await admin`select count(*)::int as n from audit.phi_access_checkpoints`;
          const res = await post();
          assert.equal(res.status, 502);
          assert.match((await res.json()).detail, /answered 500; nothing was recorded/);
          const [{ n: after }] = await admin`select count(*)::int as n from audit.phi_access_checkpoints`;
          assert.equal(after, before);
        } finally {
          Deno.env.delete("AUDIT_CHECKPOINT_SINK_URL");
          await sink.close();
        }
      });
      await t.step("a forged signature does not verify with the published key", async () => {
        const res = await post();
        const { jws } = await res.json();
        const other = await generateSigningJwk("test-2026-11");
        const { d: _d, ...otherPublic } = other;
        await assert.rejects(verifyCheckpoint(jws, otherPublic), /signature verification failed/);
      });
    } finally {
      Deno.env.delete("AUDIT_SIGNING_KEY");
      await closeDb();
      await admin.end();
    }
  },
});
