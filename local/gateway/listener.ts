/**
 * The gateway's TCP front, standing in for what nginx (under Kong) does on Supabase
 * before a request reaches a service: a request head must arrive within
 * `headersTimeoutMs` (nginx's client_header_timeout: 408), be at most `maxHeaderBytes`
 * with at most `maxHeaderCount` lines (large_client_header_buffers: 431), and be well
 * formed (400); an idle keep-alive connection is closed after `keepAliveTimeoutMs`.
 * These answers are JSON, like the gateway's others.
 *
 * Deno.serve has none of these knobs (Deno 2.9: a slow client holds its connection for as
 * long as it likes, and an oversized head gets a body-less 400), and Deno's node:http
 * ignores headersTimeout and requestTimeout. So the gateway's Deno.serve listens on a
 * Unix socket, and this front accepts the TCP connections, checks each request head
 * (HTTP/1.1 framing: Content-Length, chunked, upgrades), and relays the bytes both ways.
 * It reads the responses' framing too, to know when a connection is idle, and to close it
 * after an answer the gateway gives before the request's body has ended (a 413, a 401):
 * that answer, the one change the front makes to what it relays, gets `Connection: close`,
 * as nginx's does, so that no client sends its next request on a connection being closed.
 * The body limits and the body timeout are the gateway's (limits.ts), where the answer
 * can name the route.
 */
import { familyOf, type Family } from "./errors.ts";
import type { Limits } from "./limits.ts";

/** What the front needs. */
export interface ListenerOptions {
  hostname: string;
  port: number;
  /** The Unix socket the gateway's Deno.serve listens on. */
  upstreamPath: string;
  limits: Pick<Limits, "headersTimeoutMs" | "maxHeaderBytes" | "maxHeaderCount" | "keepAliveTimeoutMs">;
  log?: (line: Record<string, unknown>) => void;
}

/** A running front. */
export interface Listener {
  addr: Deno.NetAddr;
  /** Stops accepting and closes every open connection. */
  close(): void;
}

const CRLFCRLF = [13, 10, 13, 10];
const CONNECTION_CLOSE = new TextEncoder().encode("connection: close\r\n");
/** How long, and how much, a lingering close reads and drops (nginx: lingering_time, here far shorter). */
const LINGER_MS = 1_000;
const LINGER_BYTES = 1024 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/1\.[01]$/;
const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large" };

function indexOfSeq(buf: Uint8Array, seq: number[], from = 0): number {
  outer: for (let i = from; i <= buf.length - seq.length; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The parts of a message head that decide its framing. */
interface Head {
  startLine: string;
  headers: [string, string][];
}

function parseHead(bytes: Uint8Array): Head | null {
  const text = new TextDecoder("latin1").decode(bytes);
  const lines = text.split("\r\n");
  const startLine = lines[0];
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return null;
    headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return { startLine, headers };
}

function header(head: Head, name: string): string[] {
  return head.headers.filter(([k]) => k === name).map(([, v]) => v);
}

/** How a message body is delimited. */
type Framing = { kind: "none" } | { kind: "length"; n: number } | { kind: "chunked" } | { kind: "close" } | { kind: "tunnel" };

/** The framing of a request, or why it is refused (RFC 9112 §6.3). */
function requestFraming(head: Head): Framing | string {
  const te = header(head, "transfer-encoding");
  const cl = header(head, "content-length");
  if (te.length > 0 && cl.length > 0) return "Content-Length and Transfer-Encoding together";
  if (te.length > 0) {
    return te.join(",").toLowerCase().split(",").map((s) => s.trim()).at(-1) === "chunked" ? { kind: "chunked" } : "Unsupported Transfer-Encoding";
  }
  if (cl.length > 0) {
    if (new Set(cl).size !== 1 || !/^\d{1,15}$/.test(cl[0])) return "Invalid Content-Length";
    return Number(cl[0]) > 0 ? { kind: "length", n: Number(cl[0]) } : { kind: "none" };
  }
  const connection = header(head, "connection").join(",").toLowerCase();
  if (header(head, "upgrade").length > 0 && connection.includes("upgrade")) return { kind: "tunnel" };
  return { kind: "none" };
}

/** The framing of a response to a request made with `method`. */
function responseFraming(status: number, method: string, head: Head): Framing {
  if (status === 101) return { kind: "tunnel" };
  if (method === "HEAD" || status === 204 || status === 304) return { kind: "none" };
  const te = header(head, "transfer-encoding");
  if (te.length > 0) return te.join(",").toLowerCase().includes("chunked") ? { kind: "chunked" } : { kind: "close" };
  const cl = header(head, "content-length");
  if (cl.length > 0 && /^\d+$/.test(cl[0])) return Number(cl[0]) > 0 ? { kind: "length", n: Number(cl[0]) } : { kind: "none" };
  return { kind: "close" };
}

/** Follows a chunked body across reads: how much of each read belongs to it, and where it ends. */
class ChunkedScanner {
  private state: "size" | "data" | "data-crlf" | "trailer" = "size";
  private remaining = 0;
  private line = "";

  /** Consumes from `buf` at `from`; returns the offset after the body, or -1 when it needs more bytes. */
  scan(buf: Uint8Array, from: number): number | "invalid" {
    let i = from;
    while (i < buf.length) {
      if (this.state === "data") {
        const n = Math.min(this.remaining, buf.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = "data-crlf";
        continue;
      }
      const c = buf[i++];
      if (c !== 10) {
        if (c !== 13) this.line += String.fromCharCode(c);
        if (this.line.length > 4096) return "invalid";
        continue;
      }
      const line = this.line;
      this.line = "";
      if (this.state === "size") {
        const m = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(line);
        if (!m) return "invalid";
        this.remaining = parseInt(m[1], 16);
        this.state = this.remaining === 0 ? "trailer" : "data";
      } else if (this.state === "data-crlf") {
        if (line !== "") return "invalid";
        this.state = "size";
      } else if (line === "") {
        return i; // end of trailer: the body is over
      }
    }
    return -1;
  }
}

/** The error family of a request target (origin-form or absolute-form). */
function familyOfTarget(target: string): Family {
  try {
    return familyOf(new URL(target, "http://gateway").pathname);
  } catch {
    return "other";
  }
}

/** Serialises one of the front's own JSON answers; the connection closes after it. */
function rawResponse(status: number, family: Family, message: string, code: string): Uint8Array {
  const body = family === "rest"
    ? JSON.stringify({ code, message, details: null, hint: null })
    : family === "functions" ? JSON.stringify({ code, message }) : JSON.stringify({ message });
  const bytes = new TextEncoder().encode(body);
  const head = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}`,
    "content-type: application/json; charset=utf-8",
    `content-length: ${bytes.length}`,
    "connection: close",
    "access-control-allow-origin: *",
    "access-control-expose-headers: content-range, x-request-id, server-timing",
    `x-request-id: ${crypto.randomUUID()}`,
    "server-timing: gateway;dur=0.0",
    "", "",
  ].join("\r\n");
  return concat(new TextEncoder().encode(head), bytes);
}

const CODES: Record<number, Record<Family, string>> = {
  400: { rest: "PGRST400", functions: "BAD_REQUEST", other: "" },
  408: { rest: "PGRST408", functions: "REQUEST_TIMEOUT", other: "" },
  431: { rest: "PGRST431", functions: "REQUEST_HEADER_FIELDS_TOO_LARGE", other: "" },
};

/** Starts the front on `hostname:port`, relaying to the Unix socket `upstreamPath`. */
export function startListener(opts: ListenerOptions): Listener {
  const server = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  const open = new Set<Deno.Conn>();
  const log = opts.log ?? (() => {});
  const { limits } = opts;

  async function serve(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn | null = null;
    let closed = false;
    const methods: string[] = []; // methods of requests whose responses have not started yet
    let forwarded = 0;
    let completed = 0;
    let lingering = false; // answered before the request body ended: read and drop the rest, then close
    let dropped = 0; // bytes dropped while lingering (at most LINGER_BYTES)
    let headTimer: ReturnType<typeof setTimeout> | undefined;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;

    const close = () => {
      if (closed) return;
      closed = true;
      clearTimeout(headTimer);
      clearTimeout(idleTimer);
      try { client.close(); } catch { /* already closed */ }
      try { upstream?.close(); } catch { /* already closed */ }
      open.delete(client);
      if (upstream) open.delete(upstream);
    };
    const writeAll = async (conn: Deno.Conn, bytes: Uint8Array) => {
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    };
    // drain: the refusal comes while the client may still be sending (a head or body over a
    // limit), so close as nginx's lingering close does: stop writing, read and drop what still
    // comes for up to LINGER_MS and LINGER_BYTES, then close. Closing at once, with the
    // client's bytes unread, resets the connection and can destroy the answer before the
    // client reads it (the client then sees no answer at all).
    const refuse = async (status: number, family: Family, message: string, drain = false) => {
      log({ level: "info", msg: "request refused by the front", status, reason: message });
      // Only when no response is under way can an answer of ours be told apart from one.
      if (forwarded === completed) {
        try { await writeAll(client, rawResponse(status, family, message, CODES[status][family])); } catch { /* gone */ }
      }
      if (drain && !closed) {
        try { await client.closeWrite(); } catch { /* gone */ }
        const deadline = setTimeout(close, LINGER_MS);
        let drained = 0;
        while (!closed && drained < LINGER_BYTES) {
          const n = await client.read(readChunk).catch(() => null);
          if (n === null) break;
          drained += n;
        }
        clearTimeout(deadline);
      }
      close();
    };
    let family: Family = "other"; // whose error shape the current request gets, once its path is known
    const armHeadTimer = () => {
      clearTimeout(headTimer);
      headTimer = setTimeout(() => void refuse(408, family, `Request head not received within ${limits.headersTimeoutMs} ms`), limits.headersTimeoutMs);
    };
    const armIdleTimer = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(close, limits.keepAliveTimeoutMs);
    };

    let pending: Uint8Array = new Uint8Array(0);
    let mode: Framing = { kind: "none" }; // framing of the request body being relayed; "none" = expecting a head
    let remaining = 0;
    let chunked: ChunkedScanner | null = null;
    let headStarted = true; // the first head's clock runs from accept
    armHeadTimer();

    const pumpUpstream = async (up: Deno.Conn) => {
      // What was read from the gateway and not yet relayed: a response head is held until it
      // is whole, so that the front can say in it that the connection will close.
      let buf: Uint8Array = new Uint8Array(0);
      let rmode: Framing | null = null;
      let rremaining = 0;
      let rchunked: ChunkedScanner | null = null;
      let closing = false; // the response being relayed is an early answer: the connection closes after it
      const chunk = new Uint8Array(64 * 1024);
      try {
        while (!closed) {
          const n = await up.read(chunk);
          if (n === null) break;
          const data = chunk.slice(0, n);
          if (rmode?.kind === "tunnel" || rmode?.kind === "close") {
            await writeAll(client, data);
            continue;
          }
          buf = concat(buf, data);
          let i = 0; // parsed up to here
          let sent = 0; // relayed up to here
          while (i < buf.length) {
            if (rmode === null) {
              const end = indexOfSeq(buf, CRLFCRLF, i);
              if (end < 0) break;
              const head = parseHead(buf.subarray(i, end));
              const status = Number(head?.startLine.split(" ")[1] ?? 0);
              if (!head || status === 0) { rmode = { kind: "close" }; i = buf.length; break; }
              i = end + 4;
              if (status >= 100 && status < 200 && status !== 101) continue; // interim answer
              rmode = responseFraming(status, methods.shift() ?? "GET", head);
              if (rmode.kind === "length") rremaining = rmode.n;
              if (rmode.kind === "chunked") rchunked = new ChunkedScanner();
              // The gateway answers (a 413, a 401…) the request whose body is still coming: the
              // front will close the connection after this answer (see below), so the answer
              // says so, as nginx's does. Without it a client that has written its whole body
              // keeps the connection for its next request, which then meets the close and gets
              // no answer at all (Node's fetch: "other side closed"; a POST is not retried).
              closing = forwarded - completed === 1 && (mode.kind === "length" || mode.kind === "chunked");
              if (closing && !header(head, "connection").some((v) => /(^|,)\s*close\s*(,|$)/i.test(v))) {
                await writeAll(client, buf.subarray(sent, end + 2));
                await writeAll(client, CONNECTION_CLOSE);
                sent = end + 2;
              }
            }
            if (rmode.kind === "length") {
              const take = Math.min(rremaining, buf.length - i);
              i += take;
              rremaining -= take;
              if (rremaining > 0) break;
            } else if (rmode.kind === "chunked") {
              const end = rchunked!.scan(buf, i);
              if (end === "invalid") { rmode = { kind: "close" }; i = buf.length; break; }
              if (end < 0) { i = buf.length; break; }
              i = end;
            } else if (rmode.kind !== "none") {
              i = buf.length; // tunnel or close-delimited: relay the rest as it comes
              break;
            }
            rmode = null;
            completed++;
            if (closing) {
              // The early answer is relayed: stop relaying the body, tell the client we are done,
              // and drop what it still sends for a moment so that our answer is not lost to a
              // reset, as nginx's lingering close does.
              await writeAll(client, buf.subarray(sent, i));
              lingering = true;
              up.close();
              try { await client.closeWrite(); } catch { /* gone */ }
              setTimeout(close, LINGER_MS);
              return;
            }
            if (forwarded === completed && mode.kind === "none" && pending.length === 0) armIdleTimer();
          }
          await writeAll(client, buf.subarray(sent, i));
          buf = buf.slice(i);
        }
      } catch {
        // either side went away
      }
      close();
    };

    const readChunk = new Uint8Array(64 * 1024);
    try {
      while (!closed) {
        const n = await client.read(readChunk);
        if (n === null) break;
        clearTimeout(idleTimer);
        if (lingering) {
          // Answered already: drop what still comes, up to LINGER_BYTES in all, then close.
          dropped += n;
          if (dropped >= LINGER_BYTES) break;
          continue;
        }
        pending = concat(pending, readChunk.slice(0, n));
        while (pending.length > 0 && !closed) {
          if (mode.kind === "tunnel") {
            await writeAll(upstream!, pending);
            pending = new Uint8Array(0);
            break;
          }
          if (mode.kind === "none") {
            family = "other";
            const lineEnd = indexOfSeq(pending, [13, 10]);
            if (lineEnd >= 0) {
              const m = REQUEST_LINE.exec(new TextDecoder("latin1").decode(pending.subarray(0, Math.min(lineEnd, limits.maxHeaderBytes))));
              if (m) family = familyOfTarget(m[2]);
            }
            if (!headStarted) {
              headStarted = true;
              armHeadTimer();
            }
            const end = indexOfSeq(pending, CRLFCRLF);
            if (end < 0) {
              if (pending.length > limits.maxHeaderBytes) return await refuse(431, family, `Request head is larger than ${limits.maxHeaderBytes} bytes`, true);
              break;
            }
            if (end + 4 > limits.maxHeaderBytes) return await refuse(431, family, `Request head is larger than ${limits.maxHeaderBytes} bytes`, true);
            const head = parseHead(pending.subarray(0, end));
            const line = head ? REQUEST_LINE.exec(head.startLine) : null;
            if (!head || !line) return await refuse(400, family, "Malformed request head", true);
            if (head.headers.length > limits.maxHeaderCount) return await refuse(431, family, `Request head has more than ${limits.maxHeaderCount} header lines`, true);
            const framing = requestFraming(head);
            if (typeof framing === "string") return await refuse(400, family, framing, true);
            clearTimeout(headTimer);
            headStarted = false;
            if (!upstream) {
              upstream = await Deno.connect({ transport: "unix", path: opts.upstreamPath });
              open.add(upstream);
              void pumpUpstream(upstream);
            }
            methods.push(line[1]);
            forwarded++;
            await writeAll(upstream, pending.subarray(0, end + 4));
            pending = pending.slice(end + 4);
            mode = framing;
            if (framing.kind === "length") remaining = framing.n;
            if (framing.kind === "chunked") chunked = new ChunkedScanner();
            continue;
          }
          let take: number;
          if (mode.kind === "length") {
            take = Math.min(remaining, pending.length);
            remaining -= take;
            if (remaining === 0) mode = { kind: "none" };
          } else {
            const end = chunked!.scan(pending, 0);
            if (end === "invalid") return await refuse(400, "other", "Malformed chunked body", true);
            take = end < 0 ? pending.length : end;
            if (end >= 0) mode = { kind: "none" };
          }
          await writeAll(upstream!, pending.subarray(0, take));
          pending = pending.slice(take);
        }
      }
    } catch {
      // the client or the gateway went away
    }
    // Lingering: drop at most LINGER_BYTES in all (the client stops once it reads our answer).
    while (lingering && !closed && dropped < LINGER_BYTES) {
      const n = await client.read(readChunk).catch(() => null);
      if (n === null) break;
      dropped += n;
    }
    // Budget spent: stop reading, so that the client's writes back up, and leave the close
    // to the linger timer. Closing now, with its bytes unread, would reset the connection
    // and could destroy our answer before the client reads it.
    if (lingering && !closed && dropped >= LINGER_BYTES) return;
    // The client is gone (or closed its side): closing the upstream connection too is what
    // lets Deno abort the request's signal for a function still running.
    close();
  }

  void (async () => {
    for await (const conn of server) {
      open.add(conn);
      void serve(conn);
    }
  })().catch(() => {});

  return {
    addr: server.addr as Deno.NetAddr,
    close() {
      try { server.close(); } catch { /* already closed */ }
      for (const c of open) {
        try { c.close(); } catch { /* already closed */ }
      }
      open.clear();
    },
  };
}
