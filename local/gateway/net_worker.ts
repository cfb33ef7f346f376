/**
 * The local stand-in for pg_net's background worker (supabase/pg_net, worker.c): it takes
 * the requests that committed transactions queued with net.http_get / net.http_post
 * (local/platform.sql), sends them, and records each outcome in net._http_response, the
 * way pg_net does:
 * - a request leaves net.http_request_queue when the worker takes it (so a request is sent
 *   at most once, and one in flight when the worker stops is lost, as with pg_net);
 * - the response row has the request's id, status_code, content_type, headers (jsonb),
 *   content (text); a request that runs past its timeout_milliseconds gets timed_out = true
 *   and an error_msg, a connection failure an error_msg and no status_code.
 * pg_net's worker wakes on its own latch; here a notification at commit wakes the loop
 * (platform.sql's trigger on the queue), and it also looks once a second, so requests
 * queued while the stack was down are sent when it starts.
 */
import type postgres from "postgres";

/** The notification channel the queue's trigger uses. */
export const REQUEST_CHANNEL = "pg_net_local_request";
/** Requests taken per round, like pg_net's batch_size (default 200; smaller here). */
export const BATCH_SIZE = 20;

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string> | null;
  body: Uint8Array | null;
  timeout_milliseconds: number;
}

/** A running worker. */
export interface NetWorker {
  /** Runs one round now: sends every queued request; resolves when their responses are stored. */
  drain(): Promise<number>;
  stop(): Promise<void>;
}

/** Sends one request and returns the row pg_net would store for it. */
async function send(req: QueuedRequest) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), req.timeout_milliseconds);
  try {
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers ?? {})) headers.set(k, String(v));
    const res = await fetch(req.url, {
      method: req.method.toUpperCase(),
      headers,
      body: req.body && req.method.toUpperCase() !== "GET" ? new Uint8Array(req.body) : undefined,
      signal: controller.signal,
    });
    const content = await res.text();
    return {
      id: req.id,
      status_code: res.status,
      content_type: res.headers.get("content-type"),
      headers: Object.fromEntries(res.headers.entries()),
      content,
      timed_out: false,
      error_msg: null,
    };
  } catch (e) {
    const timedOut = controller.signal.aborted;
    return {
      id: req.id,
      status_code: null,
      content_type: null,
      headers: null,
      content: null,
      timed_out: timedOut,
      error_msg: timedOut ? `Timeout of ${req.timeout_milliseconds} ms reached` : String((e as Error).message ?? e),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Starts the worker on a connection that may read and delete the queue (the `postgres` role). */
export async function startNetWorker(
  sql: postgres.Sql,
  log: (line: Record<string, unknown>) => void = () => {},
  pollMs = 1_000,
): Promise<NetWorker> {
  let running: Promise<number> | null = null;
  let again = false;
  let stopped = false;

  async function round(): Promise<number> {
    let sent = 0;
    for (;;) {
      const taken = await sql<QueuedRequest[]>`
        delete from net.http_request_queue q
         where q.id in (select id from net.http_request_queue order by id limit ${BATCH_SIZE} for update skip locked)
        returning q.id::text, q.method, q.url, q.headers, q.body, q.timeout_milliseconds`;
      if (taken.length === 0) return sent;
      const rows = await Promise.all(taken.map(send));
      await sql`insert into net._http_response ${sql(rows, "id", "status_code", "content_type", "headers", "content", "timed_out", "error_msg")}`;
      for (const r of rows) {
        log({ msg: "pg_net request", id: Number(r.id), status: r.status_code, error: r.error_msg ?? undefined });
      }
      sent += rows.length;
    }
  }

  function drain(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      try {
        do {
          again = false;
          total += await round();
        } while (again && !stopped);
      } catch (e) {
        log({ msg: "pg_net worker round failed", error: String((e as Error).message ?? e) });
      } finally {
        running = null;
      }
      return total;
    })();
    return running;
  }

  const listener = await sql.listen(REQUEST_CHANNEL, () => void drain(), () => void drain());
  const timer = setInterval(() => void drain(), pollMs);
  return {
    drain,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await listener.unlisten();
      await running;
    },
  };
}
