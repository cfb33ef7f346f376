/**
 * Entry point of the local gateway (run with Deno by local/stack.ts). Configuration
 * comes from the environment the stack sets: GATEWAY_PORT, GATEWAY_DB_URL (the
 * `authenticator` role), GATEWAY_FUNCTIONS_DIR, GATEWAY_FUNCTIONS (config.toml's
 * [functions.*] as JSON), SUPABASE_JWT_SECRET and the keys; functions read the same env.
 */
import postgres from "postgres";
import { createGateway } from "./app.ts";
import { createRealtime } from "./realtime.ts";

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`Missing environment variable ${name}`);
  return v;
}

const sql = postgres(need("GATEWAY_DB_URL"), {
  max: 10,
  prepare: false,
  idle_timeout: 30,
  onnotice: () => {},
  connection: { application_name: "coach-ledger-gateway" },
});

const keys = {
  jwtSecret: need("SUPABASE_JWT_SECRET"),
  anonKey: need("SUPABASE_ANON_KEY"),
  serviceRoleKey: need("SUPABASE_SERVICE_ROLE_KEY"),
  publishableKey: need("SUPABASE_PUBLISHABLE_KEY"),
  secretKey: need("SUPABASE_SECRET_KEY"),
};
const log = (line: Record<string, unknown>) => console.log(JSON.stringify(line));
const realtime = await createRealtime({ keys, sql, log });
const handler = createGateway({
  sql,
  functionsDir: need("GATEWAY_FUNCTIONS_DIR"),
  functions: JSON.parse(Deno.env.get("GATEWAY_FUNCTIONS") ?? "{}"),
  keys,
  log,
  realtime,
});

const port = Number(need("GATEWAY_PORT"));
const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => console.log(JSON.stringify({ level: "info", msg: `gateway listening on http://127.0.0.1:${port}` })) }, handler);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    await server.shutdown();
    await realtime.close();
    await sql.end({ timeout: 2 });
    Deno.exit(0);
  });
}
