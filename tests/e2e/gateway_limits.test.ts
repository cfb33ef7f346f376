/**
 * The running gateway (a Deno process of its own, on the shared database) bounds what a
 * client sends and tells functions when the client goes away (issue 8, items 3, 8, 14).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, root, startGateway, stopStack, waitForGateway, type StackConfig } from "../../local/stack.ts";
import { stack } from "../helpers.ts";

let cfg: StackConfig;
let api: string;
const anon = () => stack().env.ANON_KEY;

/** Sends raw bytes and reads until the server closes the connection. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let out = "";
    s.on("connect", () => s.write(bytes));
    s.on("data", (d) => (out += d));
    s.on("close", () => resolve(out));
    s.on("error", reject);
  });
}

beforeAll(async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "coach-ledger-gateway-limits-"));
  cfg = { ...stack().cfg, stateDir, apiPort: await freePort() };
  api = `http://127.0.0.1:${cfg.apiPort}`;
  const pid = startGateway(cfg, {
    GATEWAY_FUNCTIONS_DIR: join(root, "local", "gateway", "testdata", "functions"),
    GATEWAY_LIMITS: JSON.stringify({ headersTimeoutMs: 500 }),
  });
  await waitForGateway(cfg, 60_000, pid);
});

afterAll(async () => {
  await stopStack(cfg);
  rmSync(cfg.stateDir, { recursive: true, force: true });
});

describe("the running gateway", () => {
  it("refuses a 2 MB body with 413 on /rest/v1 and /functions/v1, declared or streamed", async () => {
    const big = "x".repeat(2 * 1024 * 1024);
    let res = await fetch(`${api}/rest/v1/rpc/get_my_profile`, { method: "POST", body: big, headers: { apikey: anon(), "content-type": "application/json" } });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      code: "PGRST413", message: "Request body is too large", details: "The local gateway accepts bodies of at most 1048576 bytes.", hint: null,
    });
    expect(res.headers.get("x-request-id")).toBeTruthy();
    res = await fetch(`${api}/functions/v1/echo`, { method: "POST", body: big, headers: { authorization: `Bearer ${anon()}` } });
    expect(res.status).toBe(413);
    expect((await res.json()).code).toBe("PAYLOAD_TOO_LARGE");

    // A chunked body with no end, written on a raw socket until the gateway closes it.
    const { wrote, answer } = await new Promise<{ wrote: number; answer: string }>((resolve) => {
      const socket = connect(cfg.apiPort, "127.0.0.1");
      let wrote = 0;
      let answer = "";
      const chunk = `10000\r\n${"x".repeat(65536)}\r\n`;
      const pump = () => {
        while (wrote < 256 * 1024 * 1024) { // a bound for the test; the gateway stops far earlier
          wrote += 65536;
          if (!socket.write(chunk)) return void socket.once("drain", pump);
        }
      };
      socket.on("connect", () => {
        socket.write(`POST /rest/v1/rpc/get_my_profile HTTP/1.1\r\nHost: x\r\napikey: ${anon()}\r\nTransfer-Encoding: chunked\r\n\r\n`);
        pump();
      });
      socket.on("data", (d) => (answer += d));
      socket.on("error", () => {});
      socket.on("close", () => resolve({ wrote, answer }));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(wrote, "bytes the client could write before the gateway closed the connection").toBeLessThan(32 * 1024 * 1024);
  });

  it("answers a slow request head with 408 and an oversized one with 431, as JSON", async () => {
    const slow = await raw(cfg.apiPort, "POST /rest/v1/rpc/get_my_profile HTTP/1.1\r\nHost: x\r\n");
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(slow.slice(slow.indexOf("\r\n\r\n") + 4)).code).toBe("PGRST408");
    const big = await raw(cfg.apiPort, `GET /functions/v1/echo HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(big).toMatch(/x-request-id: /);
    expect(JSON.parse(big.slice(big.indexOf("\r\n\r\n") + 4))).toEqual({
      code: "REQUEST_HEADER_FIELDS_TOO_LARGE", message: "Request head is larger than 16384 bytes",
    });
  });

  it("a function sees req.signal abort when its client goes away, without Deno's legacy-abort warning", async () => {
    const controller = new AbortController();
    const call = fetch(`${api}/functions/v1/wait`, {
      headers: { authorization: `Bearer ${anon()}`, "x-request-id": "abort-probe" }, signal: controller.signal,
    }).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    await call;
    const log = () => readFileSync(join(cfg.stateDir, "logs", "gateway.log"), "utf8");
    for (let i = 0; i < 50 && !log().includes('"trace_id":"abort-probe"'); i++) await new Promise((r) => setTimeout(r, 50));
    const line = log().split("\n").find((l) => l.includes('"fixture":"wait"'));
    expect(line && JSON.parse(line)).toEqual({ fixture: "wait", aborted: true, trace_id: "abort-probe" });
    // A normal call completes; neither it nor the abort made Deno warn about legacy aborts.
    const ok = await fetch(`${api}/functions/v1/echo`, { headers: { authorization: `Bearer ${anon()}` } });
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    expect(log()).not.toMatch(/legacy/);
  });
});
