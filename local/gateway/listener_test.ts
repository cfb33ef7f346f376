/** The TCP front (listener.ts) with small limits, in front of a Deno.serve on a Unix socket. */
import assert from "node:assert/strict";
import { join } from "./path.ts";
import { startListener } from "./listener.ts";

const limits = { headersTimeoutMs: 300, maxHeaderBytes: 1024, maxHeaderCount: 20, keepAliveTimeoutMs: 300 };
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Reads from a connection until it closes (or `until` says the bytes so far are enough). */
async function readFrom(conn: Deno.Conn, until?: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
  let text = "";
  const buf = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return { text, closed: true };
    text += dec.decode(buf.subarray(0, n));
    if (until?.(text)) return { text, closed: false };
  }
}

/** Whether `text` holds `count` complete responses with Content-Length bodies. */
function responses(count: number): (text: string) => boolean {
  return (text) => {
    let rest = text;
    for (let i = 0; i < count; i++) {
      const end = rest.indexOf("\r\n\r\n");
      if (end < 0) return false;
      const length = Number(/content-length: (\d+)/i.exec(rest.slice(0, end))?.[1] ?? 0);
      if (rest.length < end + 4 + length) return false;
      rest = rest.slice(end + 4 + length);
    }
    return true;
  };
}

function bodyOf(text: string): unknown {
  return JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4));
}

Deno.test({
  name: "listener",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "listener-test-" });
    const socket = join(dir, "http.sock");
    const aborted: string[] = [];
    const server = Deno.serve({ transport: "unix", path: socket, onListen: () => {} }, async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/slow") {
        await new Promise((r) => setTimeout(r, limits.keepAliveTimeoutMs + limits.headersTimeoutMs + 100));
        return new Response("slow", { headers: { "content-length": "4" } });
      }
      if (url.pathname === "/early") return new Response("no", { status: 413, headers: { "content-length": "2" } });
      if (url.pathname === "/refuse") {
        // As the gateway's routes refuse: the body cancelled, then the answer. Deno's own
        // response then has no Connection: close, whether or not it keeps the connection.
        await req.body?.cancel();
        return new Response("no", { status: 401, headers: { "content-length": "2" } });
      }
      if (url.pathname === "/wait") {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5_000);
          req.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            aborted.push(url.pathname);
            resolve();
          });
        });
        return new Response("waited");
      }
      const body = req.body ? await req.text() : "";
      return Response.json({ method: req.method, path: url.pathname, body });
    });
    const front = startListener({ hostname: "127.0.0.1", port: 0, upstreamPath: socket, limits });
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
    try {
      await t.step("requests pass through, several on one keep-alive connection, pipelined too", async () => {
        const conn = await connect();
        await conn.write(enc.encode("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
        const first = await readFrom(conn, responses(1));
        assert.match(first.text, /^HTTP\/1\.1 200/);
        assert.deepEqual(bodyOf(first.text), { method: "GET", path: "/one", body: "" });
        await conn.write(enc.encode("POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /three HTTP/1.1\r\nHost: x\r\n\r\n"));
        const next = await readFrom(conn, responses(2));
        assert.match(next.text, /"path":"\/two","body":"hello"/);
        assert.match(next.text, /"path":"\/three"/);
        conn.close();
      });
      await t.step("a chunked body passes through whole, in pieces", async () => {
        const conn = await connect();
        await conn.write(enc.encode("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"));
        await new Promise((r) => setTimeout(r, 20));
        await conn.write(enc.encode("lo\r\n6;ext=1\r\n world\r\n0\r\n\r\n"));
        const res = await readFrom(conn, responses(1));
        assert.deepEqual(bodyOf(res.text), { method: "POST", path: "/c", body: "hello world" });
        conn.close();
      });
      await t.step("an answer given before the body ended reaches the client, and the rest of the body is not relayed", async () => {
        const conn = await connect();
        await conn.write(enc.encode(`POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n${"x".repeat(1000)}`));
        const res = await readFrom(conn);
        assert.match(res.text, /^HTTP\/1\.1 413/);
        assert.ok(res.text.endsWith("no"));
        assert.ok(res.closed);
        conn.close();
      });
      await t.step("an answer given before the body ended says Connection: close, and the connection closes after it", async () => {
        // A client that has handed its whole body to the socket (Node's fetch) keeps a
        // connection whose answer does not say close, and sends its next request on it; when
        // the front's close comes a moment later, that request gets no answer ("other side
        // closed"), and a POST is not retried. The fuzz suite's summary cases failed so.
        for (const [name, head, part] of [
          ["Content-Length", "Content-Length: 3000000", "x".repeat(200_000)],
          ["chunked", "Transfer-Encoding: chunked", `30d40\r\n${"x".repeat(200_000)}\r\n`],
        ]) {
          const conn = await connect();
          await conn.write(enc.encode(`POST /refuse HTTP/1.1\r\nHost: x\r\n${head}\r\n\r\n${part}`));
          const res = await readFrom(conn);
          assert.match(res.text, /^HTTP\/1\.1 401/, name);
          assert.match(res.text, /\r\nconnection: close\r\n/i, name);
          assert.equal((res.text.match(/\r\nconnection:/gi) ?? []).length, 1, `${name}: one Connection header`);
          assert.ok(res.text.endsWith("\r\n\r\nno"), name);
          assert.ok(res.closed, name);
          conn.close();
        }
      });
      await t.step("an answer given after the whole body keeps the connection open, without Connection: close", async () => {
        const conn = await connect();
        await conn.write(enc.encode(`POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello`));
        const first = await readFrom(conn, responses(1));
        assert.match(first.text, /^HTTP\/1\.1 401/);
        assert.doesNotMatch(first.text, /\r\nconnection: close/i);
        await conn.write(enc.encode("GET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
        const next = await readFrom(conn, responses(1));
        assert.match(next.text, /"path":"\/after"/);
        conn.close();
      });
      await t.step("after an early answer, a client that keeps sending is cut off after at most 1 MiB more, not read for a second", async () => {
        const conn = await connect();
        await conn.write(enc.encode("POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
        const chunk = enc.encode(`10000\r\n${"x".repeat(65536)}\r\n`);
        let wrote = 0;
        const started = performance.now();
        const answer = readFrom(conn, (text) => text.endsWith("no"));
        try {
          // Writes block once the front stops reading; the front closes after its linger budget.
          while (wrote < 512 * 1024 * 1024) wrote += await conn.write(chunk);
        } catch {
          // the front closed the connection
        }
        const ms = performance.now() - started;
        // The answer is not lost to the close: the client reads it.
        assert.match((await answer).text, /^HTTP\/1\.1 413/);
        conn.close();
        // Socket buffers hold a few MiB; without the budget the front read for a whole
        // second (hundreds of MiB on loopback).
        assert.ok(wrote < 32 * 1024 * 1024, `the client wrote ${wrote} bytes in ${Math.round(ms)} ms before the front closed`);
      });
      await t.step("a head that does not arrive in time is answered 408 as JSON, in the route's error shape", async () => {
        const conn = await connect();
        await conn.write(enc.encode("GET /rest/v1/rpc/x HTTP/1.1\r\nHost: x\r\n"));
        const res = await readFrom(conn);
        assert.ok(res.closed);
        assert.match(res.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
        assert.match(res.text, /content-type: application\/json/);
        assert.match(res.text, /x-request-id: [0-9a-f-]{36}/);
        assert.match(res.text, /server-timing: gateway;dur=/);
        assert.deepEqual(bodyOf(res.text), { code: "PGRST408", message: "Request head not received within 300 ms", details: null, hint: null });
      });
      await t.step("a connection that sends nothing is closed with 408 too", async () => {
        const conn = await connect();
        const res = await readFrom(conn);
        assert.ok(res.closed);
        assert.deepEqual(bodyOf(res.text), { message: "Request head not received within 300 ms" });
      });
      await t.step("200 slow connections are all answered and closed, none left open", async () => {
        const conns = await Promise.all(Array.from({ length: 200 }, () => connect()));
        await Promise.all(conns.map((c) => c.write(enc.encode("GET /functions/v1/x HTTP/1.1\r\n"))));
        const results = await Promise.all(conns.map((c) => readFrom(c)));
        assert.equal(results.filter((r) => r.closed && /^HTTP\/1\.1 408/.test(r.text)).length, 200);
        assert.deepEqual(bodyOf(results[0].text), { code: "REQUEST_TIMEOUT", message: "Request head not received within 300 ms" });
      });
      await t.step("an oversized head is answered 431 as JSON", async () => {
        const conn = await connect();
        await conn.write(enc.encode(`GET /functions/v1/echo HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(2000)}\r\n\r\n`));
        const res = await readFrom(conn);
        assert.match(res.text, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
        assert.deepEqual(bodyOf(res.text), { code: "REQUEST_HEADER_FIELDS_TOO_LARGE", message: "Request head is larger than 1024 bytes" });
        const partial = await connect();
        await partial.write(enc.encode(`GET / HTTP/1.1\r\nX-Big: ${"a".repeat(2000)}`));
        assert.match((await readFrom(partial)).text, /^HTTP\/1\.1 431/, "without waiting for the end of the head");
      });
      await t.step("a head with too many header lines is answered 431 as JSON", async () => {
        const conn = await connect();
        const many = Array.from({ length: 21 }, (_, i) => `X-H${i}: v\r\n`).join("");
        await conn.write(enc.encode(`GET /rest/v1/rpc/x HTTP/1.1\r\n${many}\r\n`));
        const res = await readFrom(conn);
        assert.match(res.text, /^HTTP\/1\.1 431/);
        assert.equal((bodyOf(res.text) as { code: string }).code, "PGRST431");
      });
      await t.step("a malformed head, or Content-Length with Transfer-Encoding, is answered 400 as JSON", async () => {
        for (const head of [
          "NOT HTTP AT ALL\r\n\r\n",
          "GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
          "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
          "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        ]) {
          const conn = await connect();
          await conn.write(enc.encode(head));
          const res = await readFrom(conn);
          assert.match(res.text, /^HTTP\/1\.1 400 Bad Request\r\n/, head);
          assert.ok(typeof (bodyOf(res.text) as { message: string }).message === "string");
        }
      });
      await t.step("an idle keep-alive connection is closed after keepAliveTimeoutMs", async () => {
        const conn = await connect();
        await conn.write(enc.encode("GET /idle HTTP/1.1\r\nHost: x\r\n\r\n"));
        const res = await readFrom(conn, responses(1));
        assert.match(res.text, /^HTTP\/1\.1 200/);
        const after = await readFrom(conn);
        assert.ok(after.closed);
        assert.equal(after.text, "", "closed without an answer: no request was under way");
      });
      await t.step("a slow handler is not cut off by the idle or head timers", async () => {
        const conn = await connect();
        await conn.write(enc.encode("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
        const res = await readFrom(conn, responses(1));
        assert.match(res.text, /^HTTP\/1\.1 200/);
        assert.ok(res.text.endsWith("slow"));
        conn.close();
      });
      await t.step("a client that goes away aborts the handler's request signal", async () => {
        const before = aborted.length;
        const conn = await connect();
        await conn.write(enc.encode("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"));
        await new Promise((r) => setTimeout(r, 50));
        conn.close();
        for (let i = 0; i < 50 && aborted.length === before; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(aborted.length, before + 1);
      });
    } finally {
      front.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
