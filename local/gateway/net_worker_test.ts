/**
 * pg_net's documented behaviour, against the local stand-in (platform.sql + net_worker.ts):
 * requests are sent only after the enqueuing transaction commits, a rolled-back request is
 * never sent, and each outcome lands in net._http_response by request id.
 * Needs the stack's database (SUPABASE_DB_URL). The stack's own gateway runs a worker too,
 * so the test waits for the responses whichever worker sends them.
 */
import postgres from "postgres";
import assert from "node:assert/strict";
import { startNetWorker } from "./net_worker.ts";

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`Missing environment variable ${name}`);
  return v;
}

interface ResponseRow {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean | null;
  error_msg: string | null;
}

async function responseOf(sql: postgres.Sql, id: string, timeoutMs = 10_000): Promise<ResponseRow> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql<ResponseRow[]>`select id::text, status_code, content_type, headers, content, timed_out, error_msg
                                          from net._http_response where id = ${id}`;
    if (row) return row;
    if (Date.now() > until) throw new Error(`no response for request ${id}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "net_worker: posts and gets after commit, records outcomes, never sends a rolled-back request",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seen: { method: string; path: string; query: string; auth: string | null; body: string }[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
      const url = new URL(req.url);
      seen.push({ method: req.method, path: url.pathname, query: url.search, auth: req.headers.get("authorization"), body: await req.text() });
      if (url.pathname === "/slow") await new Promise((r) => setTimeout(r, 1_500));
      return Response.json({ ok: true, path: url.pathname }, { status: url.pathname === "/missing" ? 404 : 200, headers: { "x-test": "1" } });
    });
    const base = `http://127.0.0.1:${server.addr.port}`;
    const sql = postgres(need("SUPABASE_DB_URL"), { max: 3, onnotice: () => {} });
    const worker = await startNetWorker(sql, () => {}, 200);
    try {
      const [{ post }] = await sql`select net.http_post(${base + "/post"}, '{"hello":"world"}'::jsonb, '{"a":"1 2"}'::jsonb,
        '{"Content-Type":"application/json","Authorization":"Bearer k"}'::jsonb)::text as post`;
      const [{ get }] = await sql`select net.http_get(${base + "/missing"})::text as get`;
      const [{ slow }] = await sql`select net.http_get(${base + "/slow"}, timeout_milliseconds => 200)::text as slow`;
      const [{ refused }] = await sql`select net.http_get('http://127.0.0.1:9/closed')::text as refused`;
      // Queued in a transaction that rolls back: never sent.
      let rolledBack = "";
      await sql.begin(async (tx) => {
        [{ id: rolledBack }] = await tx`select net.http_post(${base + "/never"})::text as id`;
        throw new Error("roll back");
      }).catch(() => {});

      // Nothing is sent before commit: a request queued in an open transaction waits for it.
      const held = postgres(need("SUPABASE_DB_URL"), { max: 1, onnotice: () => {} });
      let heldId = "";
      const committed = held.begin(async (tx) => {
        [{ id: heldId }] = await tx`select net.http_post(${base + "/held"})::text as id`;
        await worker.drain();
        assert(!seen.some((s) => s.path === "/held"), "a request was sent before its transaction committed");
      });
      await committed;
      await held.end();
      await worker.drain();

      const p = await responseOf(sql, post);
      assert.deepEqual(p.status_code, 200);
      assert.match(p.content_type ?? "", /application\/json/);
      assert.deepEqual(p.headers?.["x-test"], "1");
      assert.deepEqual(JSON.parse(p.content ?? "{}"), { ok: true, path: "/post" });
      const sent = seen.find((s) => s.path === "/post");
      assert.deepEqual(sent?.method, "POST");
      assert.deepEqual(sent?.query, "?a=1%202");
      assert.deepEqual(sent?.auth, "Bearer k");
      assert.deepEqual(JSON.parse(sent?.body ?? ""), { hello: "world" });

      assert.deepEqual((await responseOf(sql, get)).status_code, 404);
      const s = await responseOf(sql, slow);
      assert.deepEqual([s.status_code, s.timed_out], [null, true]);
      assert.match(s.error_msg ?? "", /Timeout of 200 ms/);
      const r = await responseOf(sql, refused);
      assert.deepEqual([r.status_code, r.timed_out], [null, false]);
      assert(r.error_msg, "a refused connection records its error");
      assert.deepEqual((await responseOf(sql, heldId)).status_code, 200);

      assert(!seen.some((x) => x.path === "/never"), "a rolled-back request was sent");
      const [{ n }] = await sql`select count(*)::int as n from net.http_request_queue where id = ${rolledBack}`;
      assert.deepEqual(n, 0);
    } finally {
      await worker.stop();
      await sql.end();
      await server.shutdown();
    }
  },
});
