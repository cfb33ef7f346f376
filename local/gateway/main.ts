/**
 * Entry point of the local gateway (run with Deno by local/stack.ts). Configuration
 * comes from the environment the stack sets: GATEWAY_PORT, GATEWAY_DB_URL (the
 * `authenticator` role), GATEWAY_FUNCTIONS_DIR, GATEWAY_FUNCTIONS (config.toml's
 * [functions.*] as JSON), SUPABASE_URL, SUPABASE_JWT_SECRET and the keys; optionally
 * GATEWAY_LIMITS (JSON overrides of limits.ts, for tests), GATEWAY_STORAGE_DIR (where
 * Storage keeps object bytes), GATEWAY_STATE_FILE and
 * GATEWAY_FINGERPRINT; for /auth/v1 GATEWAY_AUTH_DB_URL (the `supabase_auth_admin` role),
 * GATEWAY_AUTH_SIGNING_KEYS (the private JWKs, in the CLI's signing_keys_path format) and
 * GATEWAY_AUTH (config.toml's [auth] settings as JSON); CLERK_ISSUER when Clerk is a
 * third-party provider; GATEWAY_MAX_ROWS (config.toml [api] max_rows). Functions read
 * the same environment. It also runs pg_net's worker
 * (net_worker.ts) over SUPABASE_DB_URL.
 *
 * Once the port is bound, the gateway writes GATEWAY_STATE_FILE ({pid, port, fingerprint}):
 * only a gateway that really listens is ever recorded, so `npm run local -- stop` stops
 * what is listening and `start` can tell whether the running gateway has the environment
 * it would start one with.
 */
import postgres from "postgres";
import { createGateway } from "./app.ts";
import { createRemoteJWKSet } from "jose";
import { createRealtime } from "./realtime.ts";
import { parseAuthSettings } from "./auth/settings.ts";
import { loadSigningKeys, localJwks } from "./auth/tokens.ts";
import { startListener } from "./listener.ts";
import { DEFAULT_LIMITS, type Limits } from "./limits.ts";
import { join } from "./path.ts";
import { surviveClosedSocketWrites } from "./postgres_guard.ts";
import { startNetWorker } from "./net_worker.ts";

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`Missing environment variable ${name}`);
  return v;
}

/** Seconds postgres.js waits for a connection before the request is answered 503. */
const CONNECT_TIMEOUT_SECONDS = 2;
const RECONNECT_BACKOFF_SECONDS = 0.1;

const sql = postgres(need("GATEWAY_DB_URL"), {
  max: 10,
  prepare: false,
  idle_timeout: 30,
  connect_timeout: CONNECT_TIMEOUT_SECONDS,
  // postgres.js waits 3^failures / 100 s (up to 20 s) before reconnecting after failed
  // attempts, and queued calls wait with it: during an outage that turned prompt 503s into
  // 15-20 s waits. A constant 0.1 s keeps every answer within the connect timeout.
  backoff: () => RECONNECT_BACKOFF_SECONDS,
  onnotice: () => {},
  connection: { application_name: "coach-ledger-gateway" },
});

const supabaseUrl = need("SUPABASE_URL");
const signingKeys = await loadSigningKeys(need("GATEWAY_AUTH_SIGNING_KEYS"));
// Clerk as a third-party provider: tokens from its issuer, verified against its JWKS.
const clerkIssuer = Deno.env.get("CLERK_ISSUER")?.replace(/\/+$/, "");
const keys = {
  jwtSecret: need("SUPABASE_JWT_SECRET"),
  anonKey: need("SUPABASE_ANON_KEY"),
  serviceRoleKey: need("SUPABASE_SERVICE_ROLE_KEY"),
  publishableKey: need("SUPABASE_PUBLISHABLE_KEY"),
  secretKey: need("SUPABASE_SECRET_KEY"),
  authIssuer: `${supabaseUrl}/auth/v1`,
  authJwks: localJwks(signingKeys),
  thirdParty: clerkIssuer ? [{ name: "clerk", issuer: clerkIssuer, jwks: createRemoteJWKSet(new URL(`${clerkIssuer}/.well-known/jwks.json`)) }] : [],
};
// Auth connects as supabase_auth_admin, as GoTrue does.
const authSql = postgres(need("GATEWAY_AUTH_DB_URL"), {
  max: 4,
  prepare: false,
  idle_timeout: 30,
  connect_timeout: CONNECT_TIMEOUT_SECONDS,
  backoff: () => RECONNECT_BACKOFF_SECONDS,
  onnotice: () => {},
  connection: { application_name: "coach-ledger-auth" },
});
const limits: Limits = { ...DEFAULT_LIMITS, ...JSON.parse(Deno.env.get("GATEWAY_LIMITS") ?? "{}") };
const log = (line: Record<string, unknown>) => console.log(JSON.stringify(line));
// A Postgres outage must not end the gateway through postgres.js's closed-socket write.
surviveClosedSocketWrites(log);
const realtime = await createRealtime({ keys, sql, log });
// pg_net's background worker, as the platform runs it: a connection of its own as `postgres`
// (SUPABASE_DB_URL), which may take requests from net.http_request_queue.
const netSql = postgres(need("SUPABASE_DB_URL"), {
  max: 2,
  prepare: false,
  idle_timeout: 30,
  connect_timeout: CONNECT_TIMEOUT_SECONDS,
  backoff: () => RECONNECT_BACKOFF_SECONDS,
  onnotice: () => {},
  connection: { application_name: "coach-ledger-pg-net-worker" },
});
const netWorker = await startNetWorker(netSql, log);
const handler = createGateway({
  sql,
  functionsDir: need("GATEWAY_FUNCTIONS_DIR"),
  storageDir: Deno.env.get("GATEWAY_STORAGE_DIR"),
  functions: JSON.parse(Deno.env.get("GATEWAY_FUNCTIONS") ?? "{}"),
  keys,
  log,
  realtime,
  limits,
  maxRows: Number(Deno.env.get("GATEWAY_MAX_ROWS") ?? 1000),
  auth: { sql: authSql, signingKeys, settings: parseAuthSettings(Deno.env.get("GATEWAY_AUTH")), issuer: keys.authIssuer },
});

// Deno.serve answers on a private Unix socket; the TCP front (listener.ts) bounds heads and idles.
const socketDir = await Deno.makeTempDir({ prefix: "coach-ledger-gateway-" });
const upstreamPath = join(socketDir, "http.sock");
const server = Deno.serve({ transport: "unix", path: upstreamPath, onListen: () => {} }, handler);
const port = Number(need("GATEWAY_PORT"));
const front = startListener({ hostname: "127.0.0.1", port, upstreamPath, limits, log });

const stateFile = Deno.env.get("GATEWAY_STATE_FILE");
if (stateFile) {
  const state = { pid: Deno.pid, port: front.addr.port, upstream: upstreamPath, fingerprint: Deno.env.get("GATEWAY_FINGERPRINT") ?? null };
  await Deno.writeTextFile(`${stateFile}.tmp`, JSON.stringify(state));
  await Deno.rename(`${stateFile}.tmp`, stateFile);
}
console.log(JSON.stringify({ level: "info", msg: `gateway listening on http://127.0.0.1:${front.addr.port}`, pid: Deno.pid }));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    front.close();
    await server.shutdown();
    await realtime.close();
    await netWorker.stop();
    await netSql.end({ timeout: 2 });
    await sql.end({ timeout: 2 });
    await authSql.end({ timeout: 2 });
    await Deno.remove(socketDir, { recursive: true }).catch(() => {});
    Deno.exit(0);
  });
}
