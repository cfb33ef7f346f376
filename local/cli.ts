/**
 * `npm run local -- <command>`: the local stand-in for `supabase start | status | stop | db reset`.
 *
 *   start [--foreground]    create or reuse the cluster, apply platform.sql, migrations and seed,
 *                           start the gateway (a running one is kept if its environment is the
 *                           same, else restarted); --foreground (npm start) prints logs, Ctrl-C stops all
 *   status [-o env|json]    what `supabase status` prints
 *   stop                    stop the gateway (whatever gateway listens on the API port) and the database
 *   reset                   drop and rebuild the database from migrations and seed
 *   token <email> [--role R] [--expires-in S]
 *                           a signed access token for a seeded user
 *   token --role R          a role token (e.g. coach_ingest) with no user
 */
import { existsSync, statSync, openSync, readSync, closeSync } from "node:fs";
import { seedSessionMedia } from "./seed_media.ts";
import {
  ensureGateway, ensureSystemPackages, logFiles, mintToken, rebuildDatabase, stackConfig, stackHealth,
  startDatabase, statusEnv, stopStack, type StackConfig,
} from "./stack.ts";

const usage = `Usage: npm run local -- <start [--foreground] | status [-o env|json] | stop | reset | token <email> [--role R] [--expires-in S]>`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function printStatus(cfg: StackConfig, format: string | undefined): void {
  const env = statusEnv(cfg);
  if (format === "env") {
    for (const [k, v] of Object.entries(env)) console.log(`${k}="${v}"`);
    return;
  }
  if (format === "json") {
    console.log(JSON.stringify(env, null, 2));
    return;
  }
  const rows: [string, string][] = [
    ["API URL", env.API_URL],
    ["REST URL", env.REST_URL],
    ["Functions URL", env.FUNCTIONS_URL],
    ["DB URL", env.DB_URL],
    ["JWT secret", env.JWT_SECRET],
    ["anon key", env.ANON_KEY],
    ["service_role key", env.SERVICE_ROLE_KEY],
    ["Publishable key", env.PUBLISHABLE_KEY],
    ["Secret key", env.SECRET_KEY],
    ["State dir", cfg.stateDir],
  ];
  for (const [k, v] of rows) console.log(`${k.padStart(16)}: ${v}`);
}

/** Prints what is appended to the log files, until stopped. */
function follow(files: string[]): () => void {
  const offsets = new Map(files.map((f) => [f, existsSync(f) ? statSync(f).size : 0]));
  const flush = () => {
    for (const f of files) {
      if (!existsSync(f)) continue;
      const size = statSync(f).size;
      const from = offsets.get(f) ?? 0;
      if (size <= from) continue;
      const buf = Buffer.alloc(size - from);
      const fd = openSync(f, "r");
      readSync(fd, buf, 0, buf.length, from);
      closeSync(fd);
      offsets.set(f, size);
      process.stdout.write(buf);
    }
  };
  const timer = setInterval(flush, 250);
  return () => {
    clearInterval(timer);
    flush();
  };
}

/** Seeds session media (local/seed_media.ts); a failure is a warning, never a failed start. */
async function seedMediaOrWarn(cfg: StackConfig): Promise<void> {
  try {
    const n = await seedSessionMedia(cfg);
    if (n > 0) console.log(`Seeded ${n} session media files for alice@example.com through the media function.\n`);
  } catch (err) {
    console.warn(`Session media were not seeded: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

async function start(cfg: StackConfig, foreground: boolean): Promise<void> {
  const t0 = performance.now();
  ensureSystemPackages();
  const { created } = startDatabase(cfg);
  // A gateway that outlived its database is kept if its environment is unchanged, else restarted.
  const gateway = await ensureGateway(cfg);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const gatewayNote = gateway === "started" ? "" : gateway === "kept" ? ", gateway kept" : ", gateway restarted with a new environment";
  console.log(`Coach Ledger local stack is running (${created ? "new cluster" : "existing cluster"}${gatewayNote}, ${secs}s).\n`);
  await seedMediaOrWarn(cfg);
  printStatus(cfg, undefined);
  if (!foreground) return;
  console.log("\nFollowing logs; Ctrl-C stops the stack.\n");
  const files = logFiles(cfg);
  const stopFollowing = follow([files.postgres, files.gateway]);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    stopFollowing();
    console.log("\nStopping the local stack...");
    await stopStack(cfg);
    console.log("Stopped.");
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  await new Promise(() => {});
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const cfg = stackConfig();
  switch (command) {
    case "start":
      await start(cfg, args.includes("--foreground"));
      return 0;
    case "status": {
      const health = await stackHealth(cfg);
      if (!health.db || !health.gateway) {
        console.error(`Local stack is not running (database: ${health.db ? "up" : "down"}, gateway: ${health.gateway ? "up" : "down"}). Run: npm start`);
        return 1;
      }
      printStatus(cfg, flag(args, "-o") ?? flag(args, "--output"));
      return 0;
    }
    case "stop":
      await stopStack(cfg);
      console.log("Stopped the local stack.");
      return 0;
    case "reset": {
      ensureSystemPackages();
      const health = await stackHealth(cfg);
      if (!health.db) startDatabase(cfg);
      rebuildDatabase(cfg);
      console.log("Rebuilt the database from platform.sql, migrations and seed.");
      if ((await stackHealth(cfg)).gateway) await seedMediaOrWarn(cfg);
      return 0;
    }
    case "token": {
      const email = args[0] && !args[0].startsWith("--") ? args[0] : undefined;
      const expiresIn = flag(args, "--expires-in");
      console.log(await mintToken(cfg, {
        email,
        role: flag(args, "--role"),
        expiresIn: expiresIn ? Number(expiresIn) : undefined,
      }));
      return 0;
    }
    default:
      console.error(usage);
      return 2;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => { if (code !== 0) process.exitCode = code; },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
