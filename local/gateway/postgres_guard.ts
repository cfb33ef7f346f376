/**
 * Keeps the gateway alive through one known defect of postgres.js 3.4.9 (the newest
 * release): a write it queued with setImmediate can run after the connection closed, and
 * nextWrite() then calls write on the socket that closed() set to null
 * (porsager/postgres#1154 and #1208; the guards proposed in #1176 and #1209 are not
 * released). Thrown from an immediate, the TypeError escapes every await and try, and ended
 * the whole gateway when Postgres was killed under load (tests/reliability/faults.test.ts
 * caught it once): functions, REST and Realtime all down instead of answering 503 until
 * Postgres is back.
 *
 * When it happens the connection is already closed: closed() has rejected its queries with
 * CONNECTION_CLOSED (the callers answer 503), and the pool reconnects. The listener
 * recognises exactly that error (a TypeError reading 'write' thrown by nextWrite in
 * postgres.js's connection.js) and logs it; any other uncaught error still ends the process.
 *
 * What surviving does not repair (read from postgres.js's connection.js, not reproduced):
 * the throw skips nextWrite's reset, so that one connection keeps the unsent bytes and a
 * spent timer; its next connection attempts queue their startup message behind them without
 * sending it and time out (a 503 within the connect timeout each), until the queue passes
 * 1 KiB and is flushed, the server refuses it and the connection starts clean. The other
 * connections of the pool are not affected. The fix belongs upstream (porsager/postgres#1209).
 */

/** Whether err is postgres.js's write to a closed connection. */
export function isClosedSocketWrite(err: unknown): boolean {
  if (!(err instanceof TypeError) || !/\(reading 'write'\)|evaluating 'socket\.write'/.test(err.message)) return false;
  const top = (err.stack ?? "").split("\n").find((line) => /^\s+at /.test(line)) ?? "";
  return /\bnextWrite\b/.test(top) && /postgres(?:[/@][^\s]*)?\/src\/connection\.js/.test(top);
}

/** Installs the listener on the global scope (once per process). */
export function surviveClosedSocketWrites(log: (line: Record<string, unknown>) => void): void {
  globalThis.addEventListener("error", (event) => {
    if (!isClosedSocketWrite(event.error)) return;
    event.preventDefault();
    log({
      level: "warn",
      msg: "postgres.js wrote to a closed connection (porsager/postgres#1154); its queries were rejected and the pool reconnects",
    });
  });
}
