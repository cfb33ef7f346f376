/**
 * The Docker-free local stand-in for the Supabase platform: a PostgreSQL 15 cluster with
 * pg_cron and pgTAP, local/platform.sql, migrations and seed applied by the official
 * Supabase CLI, and the Deno gateway (local/gateway/) for functions and RPCs.
 * Used by local/cli.ts (npm start, npm run local) and by the test runner.
 */
import { spawn, spawnSync, type SpawnSyncOptions } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { SignJWT } from "jose";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const pgBin = "/usr/lib/postgresql/15/bin";
const bin = (name: string) => join(root, "node_modules", ".bin", name);

/** The CLI's local JWT secret and keys, exactly as `supabase start` prints them. */
export const JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";
export const ANON_KEY =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0";
export const SERVICE_ROLE_KEY =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU";
export const PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH";
export const SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz";
/**
 * The functions' TRACKED_SKILL_HASH_KEY on a local stack (supabase/functions/_shared/
 * tracked_skill.ts): fixed, so hashes are stable across resets and supabase/seed.sql can
 * hash its demo skill with it. A development value only; a hosted project sets its own.
 */
export const LOCAL_TRACKED_SKILL_HASH_KEY = "coach-ledger-local-tracked-skill-hash-key";

/** Where and how one stack runs. */
export interface StackConfig {
  stateDir: string;
  apiPort: number;
  dbPort: number;
  /** fsync off: for throwaway test stacks only. */
  fast: boolean;
  functions: Record<string, { verify_jwt: boolean }>;
  /** The functions the gateway serves (supabase/functions unless LOCAL_FUNCTIONS_DIR says otherwise). */
  functionsDir: string;
}

interface ProjectToml {
  api?: { port?: number; max_rows?: number };
  db?: { port?: number };
  functions?: Record<string, { verify_jwt?: boolean }>;
  auth?: Record<string, unknown> & {
    hook?: { custom_access_token?: { enabled?: boolean; uri?: string } };
    third_party?: { clerk?: { enabled?: boolean; domain?: string } };
  };
}

/** Keys of config.toml's [auth] that the local /auth/v1 honours (local/gateway/auth/settings.ts). */
const AUTH_SETTINGS = [
  "site_url", "jwt_expiry", "enable_signup", "enable_anonymous_sign_ins", "enable_refresh_token_rotation",
  "refresh_token_reuse_interval", "minimum_password_length", "password_requirements",
];

/** config.toml's [auth] settings as the gateway takes them (GATEWAY_AUTH). */
export function authSettings(toml: ProjectToml = readProjectConfig()): Record<string, unknown> {
  const auth = toml.auth ?? {};
  const out: Record<string, unknown> = {};
  for (const k of AUTH_SETTINGS) if (auth[k] !== undefined) out[k] = auth[k];
  const hook = auth.hook?.custom_access_token;
  if (hook?.enabled && hook.uri) out.custom_access_token_hook = hook.uri;
  return out;
}

/** The Clerk issuer when config.toml enables Clerk as a third-party provider: https://<domain>. */
export function clerkIssuer(toml: ProjectToml = readProjectConfig()): string | null {
  const clerk = toml.auth?.third_party?.clerk;
  return clerk?.enabled && clerk.domain ? `https://${clerk.domain}` : null;
}

/** Reads supabase/config.toml: ports and the `[functions.<name>]` blocks. */
export function readProjectConfig(): ProjectToml {
  return parseToml(readFileSync(join(root, "supabase", "config.toml"), "utf8")) as ProjectToml;
}

/** The stack's configuration: config.toml, overridden by LOCAL_API_PORT, LOCAL_DB_PORT, LOCAL_STATE_DIR, LOCAL_FUNCTIONS_DIR. */
export function stackConfig(env: NodeJS.ProcessEnv = process.env): StackConfig {
  const toml = readProjectConfig();
  const functions: StackConfig["functions"] = {};
  for (const [name, block] of Object.entries(toml.functions ?? {})) {
    functions[name] = { verify_jwt: block.verify_jwt ?? true };
  }
  return {
    stateDir: resolve(env.LOCAL_STATE_DIR ?? join(root, ".local")),
    apiPort: Number(env.LOCAL_API_PORT ?? toml.api?.port ?? 54321),
    dbPort: Number(env.LOCAL_DB_PORT ?? toml.db?.port ?? 54322),
    fast: env.LOCAL_DB_FAST === "1",
    functions,
    functionsDir: resolve(env.LOCAL_FUNCTIONS_DIR ?? join(root, "supabase", "functions")),
  };
}

/** URLs and keys of a stack, with the names `supabase status -o env` uses. */
export function statusEnv(cfg: StackConfig): Record<string, string> {
  const api = `http://127.0.0.1:${cfg.apiPort}`;
  return {
    API_URL: api,
    REST_URL: `${api}/rest/v1`,
    FUNCTIONS_URL: `${api}/functions/v1`,
    DB_URL: dbUrl(cfg),
    JWT_SECRET,
    ANON_KEY,
    SERVICE_ROLE_KEY,
    PUBLISHABLE_KEY,
    SECRET_KEY,
  };
}

/** The `postgres` role's URL, as the CLI prints DB_URL. */
export function dbUrl(cfg: StackConfig, user = "postgres", database = "postgres"): string {
  return `postgresql://${user}:postgres@127.0.0.1:${cfg.dbPort}/${database}`;
}

const paths = (cfg: StackConfig) => ({
  data: join(cfg.stateDir, "db"),
  run: join(cfg.stateDir, "run"),
  logs: join(cfg.stateDir, "logs"),
  pgLog: join(cfg.stateDir, "logs", "postgres.log"),
  gatewayLog: join(cfg.stateDir, "logs", "gateway.log"),
  /** Written by the gateway itself once it listens: {pid, port, fingerprint}. */
  gatewayState: join(cfg.stateDir, "gateway.json"),
});

/** The OS user the server runs as: ourselves, or an unprivileged one when we are root. */
function serverUser(): { name: string; uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  for (const name of ["postgres", "coachledger"]) {
    const r = spawnSync("id", ["-u", name], { encoding: "utf8" });
    if (r.status === 0) {
      const gid = spawnSync("id", ["-g", name], { encoding: "utf8" }).stdout.trim();
      return { name, uid: Number(r.stdout.trim()), gid: Number(gid) };
    }
  }
  run("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "coachledger"]);
  return serverUser();
}

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status}):\n${r.stdout ?? ""}${r.stderr ?? ""}`);
  }
  return String(r.stdout ?? "");
}

/** Runs a PostgreSQL program as the server's OS user. */
function runPg(program: string, args: string[]): string {
  const user = serverUser();
  const cmd = join(pgBin, program);
  return user ? run("runuser", ["-u", user.name, "--", cmd, ...args]) : run(cmd, args);
}

/** Runs SQL (a file or a string) as the bootstrap superuser over the Unix socket. */
export function psqlAdmin(cfg: StackConfig, sql: { file?: string; command?: string }, database = "postgres"): string {
  const args = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", paths(cfg).run, "-p", String(cfg.dbPort), "-U", "supabase_admin", "-d", database];
  if (sql.file) args.push("-f", sql.file);
  if (sql.command) args.push("-c", sql.command);
  return run("psql", args, { env: { ...process.env, PGOPTIONS: "--client-min-messages=warning" } });
}

/** Makes sure PostgreSQL 15, pgTAP, pg_cron, plpgsql_check and pg_prove are installed. */
export function ensureSystemPackages(): void {
  run("bash", [join(root, "local", "ensure-system.sh")], { stdio: "inherit" });
}

/**
 * After a crash (the postmaster killed), its postmaster.pid stays behind naming a process
 * that is dead, or a zombie until PID 1 reaps it (which can take seconds in a container).
 * pg_ctl takes a zombie for a live server: `status` says running and `start` refuses the
 * lock file. A zombie's lock is stale, so it is removed here before asking pg_ctl.
 */
function clearStaleLock(cfg: StackConfig): void {
  const p = paths(cfg);
  // The data directory's lock and the Unix socket's lock both name the postmaster.
  for (const lock of [join(p.data, "postmaster.pid"), join(p.run, `.s.PGSQL.${cfg.dbPort}.lock`)]) {
    if (!existsSync(lock)) continue;
    const pid = Number(readFileSync(lock, "utf8").split("\n")[0]);
    let state: string | undefined;
    try {
      // /proc/<pid>/stat: "pid (comm) S ...": the state follows the last ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    } catch {
      state = undefined; // no such process (or no /proc): pg_ctl handles a dead pid itself
    }
    if (state === "Z") rmSync(lock, { force: true });
  }
}

function dbRunning(cfg: StackConfig): boolean {
  const p = paths(cfg);
  if (!existsSync(join(p.data, "PG_VERSION"))) return false;
  clearStaleLock(cfg);
  const user = serverUser();
  const cmd = join(pgBin, "pg_ctl");
  const args = ["-D", p.data, "status"];
  const r = user ? spawnSync("runuser", ["-u", user.name, "--", cmd, ...args]) : spawnSync(cmd, args);
  return r.status === 0;
}

function initCluster(cfg: StackConfig): void {
  const p = paths(cfg);
  const user = serverUser();
  for (const dir of [cfg.stateDir, p.data, p.run, p.logs]) mkdirSync(dir, { recursive: true });
  chmodSync(p.data, 0o700);
  if (user) {
    // The server's user must reach its directories, even in a 0700 temp directory.
    chmodSync(cfg.stateDir, 0o755);
    for (const dir of [p.data, p.run, p.logs]) chownSync(dir, user.uid, user.gid);
  }
  const pwfile = join(p.run, "pwfile");
  writeFileSync(pwfile, "postgres\n");
  if (user) chownSync(pwfile, user.uid, user.gid);
  runPg("initdb", [
    "-D", p.data, "-U", "supabase_admin", "--pwfile", pwfile, "-E", "UTF8", "--locale=C.UTF-8",
    "--auth-local=trust", "--auth-host=scram-sha-256",
  ]);
  rmSync(pwfile);
  const conf = [
    "# Coach Ledger local stack (local/stack.ts)",
    "listen_addresses = '127.0.0.1'",
    "shared_preload_libraries = 'pg_cron'",
    "cron.database_name = 'postgres'",
    "cron.use_background_workers = on",
    "max_worker_processes = 24",
    "max_connections = 200",
    "log_min_messages = warning",
    "log_line_prefix = '%m [%p] %q%u@%d '",
    "timezone = 'UTC'",
    "",
  ].join("\n");
  writeFileSync(join(p.data, "postgresql.conf"), readFileSync(join(p.data, "postgresql.conf"), "utf8") + "\n" + conf);
}

function startDb(cfg: StackConfig): void {
  const p = paths(cfg);
  const options = [`-p ${cfg.dbPort}`, `-k ${p.run}`];
  if (cfg.fast) options.push("-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off");
  runPg("pg_ctl", ["-D", p.data, "-l", p.pgLog, "-o", options.join(" "), "-w", "-t", "60", "start"]);
}

/** Applies local/platform.sql, then roles, migrations and seed with the official CLI. */
export function migrate(cfg: StackConfig): void {
  psqlAdmin(cfg, { file: join(root, "local", "platform.sql") });
  run(bin("supabase"), [
    "db", "push", `--remote=${dbUrl(cfg)}`, "--include-roles", "--include-seed", "--yes",
  ], { cwd: root, env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" } });
  storeVaultSecrets(cfg);
}

/**
 * Stores in Vault what a project's owner stores once on Supabase so that pg_cron can call
 * edge functions through pg_net (docs/execution-engine.md, "Scheduling"): the project URL
 * and the service key, under the names the migrations read (project_url, service_role_key).
 * Locally the URL is this stack's gateway; it is written at every start, so a stack moved
 * to another port calls the right one.
 */
export function vaultSecrets(cfg: StackConfig): Record<string, string> {
  return { project_url: `http://127.0.0.1:${cfg.apiPort}`, service_role_key: SERVICE_ROLE_KEY };
}

function storeVaultSecrets(cfg: StackConfig): void {
  const statements = Object.entries(vaultSecrets(cfg)).map(([name, value]) => {
    const q = (v: string) => `'${v.replaceAll("'", "''")}'`;
    return `if exists (select from vault.secrets where name = ${q(name)}) then
      perform vault.update_secret(s.id, ${q(value)}) from vault.secrets s where s.name = ${q(name)};
    else
      perform vault.create_secret(${q(value)}, ${q(name)}, 'Set by the local stack (local/stack.ts)');
    end if;`;
  });
  psqlAdmin(cfg, { command: `do $$ begin ${statements.join("\n")} end $$` });
}

/**
 * Drops and recreates the `postgres` database, then applies platform.sql, migrations and
 * seed. Storage's bytes in the state directory go with it, since the rows that named them did.
 */
export function rebuildDatabase(cfg: StackConfig): void {
  psqlAdmin(cfg, { command: "drop database if exists postgres with (force)" }, "template1");
  rmSync(join(cfg.stateDir, "storage"), { recursive: true, force: true });
  psqlAdmin(cfg, { command: "create database postgres" }, "template1");
  migrate(cfg);
  // pg_cron's scheduler is a background worker of the server, connected to this database:
  // dropping it ended the scheduler for good ("pg_cron scheduler shutting down", exit 0, so
  // the server does not start it again). A restart starts it on the new database.
  runPg("pg_ctl", ["-D", paths(cfg).data, "-m", "fast", "-w", "stop"]);
  startDb(cfg);
}

/** Starts (creating on first use) the database; applies platform.sql, migrations and seed. */
export function startDatabase(cfg: StackConfig): { created: boolean } {
  const created = !existsSync(join(paths(cfg).data, "PG_VERSION"));
  if (created) initCluster(cfg);
  if (!dbRunning(cfg)) startDb(cfg);
  migrate(cfg);
  return { created };
}

/**
 * The local stack's audit signing key (a private Ed25519 JWK, as the audit-checkpoint
 * function takes it), created on first use in the state directory (mode 0600). Dev and CI
 * only: on a hosted project the key is a function secret that no database role can read.
 */
export function localAuditSigningKey(cfg: StackConfig): string {
  const file = join(cfg.stateDir, "audit-signing-key.jwk.json");
  if (!existsSync(file)) {
    mkdirSync(cfg.stateDir, { recursive: true });
    const { privateKey } = generateKeyPairSync("ed25519");
    const jwk = { ...privateKey.export({ format: "jwk" }), kid: `local-${new Date().toISOString().slice(0, 10)}` };
    writeFileSync(file, JSON.stringify(jwk) + "\n", { mode: 0o600 });
  }
  return readFileSync(file, "utf8").trim();
}

/**
 * The local stack's Auth signing keys in the Supabase CLI's `signing_keys_path` format (a
 * JSON array of private JWKs; what `supabase gen signing-key --algorithm ES256` writes):
 * one ES256 key, created on first use in the state directory (mode 0600). Access tokens
 * from /auth/v1 are signed with it; its public part is the JWKS at
 * /auth/v1/.well-known/jwks.json. The legacy HS256 secret (JWT_SECRET) still signs the
 * anon and service_role keys.
 */
export function localSigningKeys(cfg: StackConfig): string {
  const file = join(cfg.stateDir, "signing_keys.json");
  if (!existsSync(file)) {
    mkdirSync(cfg.stateDir, { recursive: true });
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = { ...privateKey.export({ format: "jwk" }), kid: crypto.randomUUID(), alg: "ES256", use: "sig", key_ops: ["sign", "verify"], ext: true };
    writeFileSync(file, JSON.stringify([jwk]) + "\n", { mode: 0o600 });
  }
  return readFileSync(file, "utf8").trim();
}

/** The environment the gateway and the functions run with. */
export function gatewayEnv(cfg: StackConfig): Record<string, string> {
  // A key given in the shell or the functions' .env wins over the local one.
  const functionsDir = cfg.functionsDir ?? join(root, "supabase", "functions");
  const dotenv = existsSync(join(functionsDir, ".env")) ? readFileSync(join(functionsDir, ".env"), "utf8") : "";
  const ownAuditKey = process.env.AUDIT_SIGNING_KEY || /^\s*AUDIT_SIGNING_KEY=\S/m.test(dotenv);
  const ownSkillKey = process.env.TRACKED_SKILL_HASH_KEY || /^\s*TRACKED_SKILL_HASH_KEY=\S/m.test(dotenv);
  const toml = readProjectConfig();
  const clerk = clerkIssuer(toml);
  return {
    GATEWAY_AUTH_DB_URL: dbUrl(cfg, "supabase_auth_admin"),
    GATEWAY_AUTH_SIGNING_KEYS: localSigningKeys(cfg),
    GATEWAY_AUTH: JSON.stringify(authSettings(toml)),
    GATEWAY_MAX_ROWS: String(toml.api?.max_rows ?? 1000),
    ...(clerk ? { CLERK_ISSUER: clerk } : {}),
    ...(ownAuditKey ? {} : { AUDIT_SIGNING_KEY: localAuditSigningKey(cfg) }),
    ...(ownSkillKey ? {} : { TRACKED_SKILL_HASH_KEY: LOCAL_TRACKED_SKILL_HASH_KEY }),
    GATEWAY_PORT: String(cfg.apiPort),
    GATEWAY_FUNCTIONS: JSON.stringify(cfg.functions),
    GATEWAY_FUNCTIONS_DIR: cfg.functionsDir ?? join(root, "supabase", "functions"),
    GATEWAY_DB_URL: dbUrl(cfg, "authenticator"),
    GATEWAY_STATE_FILE: paths(cfg).gatewayState,
    GATEWAY_STORAGE_DIR: join(cfg.stateDir, "storage"),
    SUPABASE_URL: `http://127.0.0.1:${cfg.apiPort}`,
    SUPABASE_ANON_KEY: ANON_KEY,
    SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
    SUPABASE_DB_URL: dbUrl(cfg),
    SUPABASE_JWT_SECRET: JWT_SECRET,
    SUPABASE_PUBLISHABLE_KEY: PUBLISHABLE_KEY,
    SUPABASE_SECRET_KEY: SECRET_KEY,
  };
}

/** The command that runs the gateway with Deno. */
export function gatewayCommand(functionsDir = join(root, "supabase", "functions")): string[] {
  // Like `supabase functions serve`, the functions get the variables of a .env beside them.
  const envFile = join(functionsDir, ".env");
  return [
    // --unstable-no-legacy-abort: a request's signal aborts only when its client goes away
    // (so functions can stop work for a gone client), not after every response as well.
    bin("deno"), "run", "--allow-all", "--unstable-no-legacy-abort", "--config", join(root, "deno.json"),
    ...(existsSync(envFile) ? [`--env-file=${envFile}`] : []),
    join(root, "local", "gateway", "main.ts"),
  ];
}

const ENV_NAME = /^\s*#?\s*([A-Z][A-Z0-9_]*)=/gm;

/**
 * What the gateway's behaviour depends on, as one hash: its command, the platform
 * variables, the functions' variables (every name in supabase/functions/.env.example and
 * in the functions directory's .env, with the value the gateway would get) and that
 * .env file. `start` restarts a running gateway whose fingerprint differs.
 */
export function gatewayFingerprint(cfg: StackConfig, extraEnv: Record<string, string> = {}): string {
  const env: Record<string, string | undefined> = { ...process.env, ...gatewayEnv(cfg), ...extraEnv };
  const functionsDir = env.GATEWAY_FUNCTIONS_DIR!;
  const envFile = join(functionsDir, ".env");
  const dotenv = existsSync(envFile) ? readFileSync(envFile, "utf8") : "";
  const example = join(root, "supabase", "functions", ".env.example");
  const names = new Set([...Object.keys(gatewayEnv(cfg)), ...Object.keys(extraEnv)]);
  for (const text of [existsSync(example) ? readFileSync(example, "utf8") : "", dotenv]) {
    for (const m of text.matchAll(ENV_NAME)) names.add(m[1]);
  }
  const vars = [...names].sort().map((n) => [n, env[n] ?? null]);
  return createHash("sha256").update(JSON.stringify({ command: gatewayCommand(functionsDir), vars, dotenv })).digest("hex");
}

/** What a running gateway recorded about itself once it listened. */
export interface GatewayState {
  pid: number;
  port: number;
  /** The Unix socket its Deno.serve answers on, behind the TCP front. */
  upstream?: string;
  fingerprint: string | null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process runs this project's gateway (its command line names local/gateway/main.ts). */
function isGatewayProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(join(root, "local", "gateway", "main.ts"));
  } catch {
    return false;
  }
}

/** The gateway recorded in the state directory, if that process is still alive and is a gateway. */
export function recordedGateway(cfg: StackConfig): GatewayState | null {
  const file = paths(cfg).gatewayState;
  if (!existsSync(file)) return null;
  try {
    const state = JSON.parse(readFileSync(file, "utf8")) as GatewayState;
    return alive(state.pid) && isGatewayProcess(state.pid) ? state : null;
  } catch {
    return null;
  }
}

/** Pids of the processes listening on a TCP port of this machine (Linux: /proc/net and /proc/<pid>/fd). */
export function listeningPids(port: number): number[] {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const localPort = parseInt(cols[1].split(":").at(-1)!, 16);
      if (localPort === port && cols[3] === "0A") inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1])) {
          pids.push(Number(entry));
          break;
        }
      } catch {
        // the descriptor closed meanwhile
      }
    }
  }
  return pids;
}

/** Starts the gateway in the background, logging to the state directory; returns its pid. */
export function startGateway(cfg: StackConfig, extraEnv: Record<string, string> = {}): number {
  const p = paths(cfg);
  mkdirSync(p.logs, { recursive: true });
  const out = openSync(p.gatewayLog, "a");
  const env = { ...process.env, ...gatewayEnv(cfg), ...extraEnv };
  env.GATEWAY_FINGERPRINT = gatewayFingerprint(cfg, extraEnv);
  const [cmd, ...args] = gatewayCommand(env.GATEWAY_FUNCTIONS_DIR);
  const child = spawn(cmd, args, {
    cwd: root,
    detached: true,
    stdio: ["ignore", out, out],
    env,
  });
  child.unref();
  return child.pid!;
}

/**
 * Waits until the gateway answers /health (200), or throws after `timeoutMs`. Given the
 * pid of a gateway just started, it also waits for that process to record itself as the
 * listener, and fails at once if it exits first (for example because the port is taken).
 */
export async function waitForGateway(cfg: StackConfig, timeoutMs = 60_000, pid?: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  const logTail = () => existsSync(paths(cfg).gatewayLog) ? readFileSync(paths(cfg).gatewayLog, "utf8").slice(-2000) : "";
  while (Date.now() < deadline) {
    if (pid !== undefined && !alive(pid)) {
      throw new Error(`The gateway (pid ${pid}) exited before it listened on port ${cfg.apiPort}.\n${logTail()}`);
    }
    const listening = pid === undefined || recordedGateway(cfg)?.pid === pid;
    if (listening) {
      try {
        const res = await fetch(`http://127.0.0.1:${cfg.apiPort}/health`);
        await res.body?.cancel();
        if (res.ok) return;
        last = `status ${res.status}`;
      } catch (err) {
        last = String(err);
      }
    } else {
      last = "not listening yet";
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`The gateway did not answer on port ${cfg.apiPort} (${last}).\n${logTail()}`);
}

async function terminate(pid: number): Promise<void> {
  try {
    process.kill(-pid, "SIGTERM"); // its whole process group: it was started detached
  } catch {
    try { process.kill(pid, "SIGTERM"); } catch { return; }
  }
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) {
    try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    for (let i = 0; i < 20 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Stops the gateway: the one it recorded, and any gateway of this project still listening
 * on the API port (one whose record was lost or overwritten). A process on that port that
 * is not our gateway is left alone.
 */
export async function stopGateway(cfg: StackConfig): Promise<void> {
  const pids = new Set<number>();
  const recorded = recordedGateway(cfg);
  if (recorded) pids.add(recorded.pid);
  for (const pid of listeningPids(cfg.apiPort)) if (isGatewayProcess(pid)) pids.add(pid);
  for (const pid of pids) await terminate(pid);
  rmSync(paths(cfg).gatewayState, { force: true });
}

/**
 * Makes sure the gateway runs with the environment it would be started with now: a live
 * gateway with the same fingerprint is kept, one with another is restarted, and a port
 * held by something else is an error naming it.
 */
export async function ensureGateway(cfg: StackConfig): Promise<"started" | "kept" | "restarted"> {
  const wanted = gatewayFingerprint(cfg);
  const recorded = recordedGateway(cfg);
  const listeners = listeningPids(cfg.apiPort);
  const strangers = listeners.filter((pid) => !isGatewayProcess(pid));
  if (strangers.length > 0) {
    throw new Error(`Port ${cfg.apiPort} is taken by another program (pid ${strangers.join(", ")}); stop it or set LOCAL_API_PORT.`);
  }
  if (recorded && recorded.fingerprint === wanted && listeners.includes(recorded.pid) && listeners.length === 1) {
    await waitForGateway(cfg);
    return "kept";
  }
  const running = recorded !== null || listeners.length > 0;
  await stopGateway(cfg);
  const pid = startGateway(cfg);
  await waitForGateway(cfg, 60_000, pid);
  return running ? "restarted" : "started";
}

/** Stops the gateway (see stopGateway) and the database. */
export async function stopStack(cfg: StackConfig): Promise<void> {
  await stopGateway(cfg);
  if (dbRunning(cfg)) runPg("pg_ctl", ["-D", paths(cfg).data, "-m", "fast", "-w", "stop"]);
}

/** Whether each part of the stack is up. */
export async function stackHealth(cfg: StackConfig): Promise<{ db: boolean; gateway: boolean }> {
  let gateway = false;
  try {
    const res = await fetch(`http://127.0.0.1:${cfg.apiPort}/health`);
    await res.body?.cancel();
    gateway = res.ok;
  } catch {
    gateway = false;
  }
  return { db: dbRunning(cfg), gateway };
}

/**
 * A free TCP port on loopback, drawn at random from 20000-32767: below Linux's ephemeral
 * range (32768-60999), where the kernel hands out ports to `listen(0)` and outgoing
 * connections. A stack that stops and starts again on its port (tests/e2e/cli_restart)
 * once found a port the kernel had meanwhile given to a parallel test's stack.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    const free = await new Promise<boolean>((resolveFree) => {
      const srv = createServer();
      srv.unref();
      srv.once("error", () => resolveFree(false));
      srv.listen(port, "127.0.0.1", () => srv.close(() => resolveFree(true)));
    });
    if (free) return port;
    if (attempt >= 100) throw new Error("No free TCP port found in 20000-32767 after 100 tries");
  }
}

/** Log file paths, for `npm start` to follow. */
export function logFiles(cfg: StackConfig): { postgres: string; gateway: string } {
  return { postgres: paths(cfg).pgLog, gateway: paths(cfg).gatewayLog };
}

/** Signs a token with the local JWT secret. */
export async function signToken(claims: Record<string, unknown>): Promise<string> {
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(JWT_SECRET));
}

/**
 * A user access token for a seeded user with the claims GoTrue puts in one, or (no
 * email) a role token such as `coach_ingest` carrying only `iss`, `role`, `iat`, `exp`.
 */
export async function mintToken(
  cfg: StackConfig,
  opts: { email?: string; role?: string; expiresIn?: number },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + (opts.expiresIn ?? 3600);
  const iss = `http://127.0.0.1:${cfg.apiPort}/auth/v1`;
  if (!opts.email) {
    if (!opts.role) throw new Error("token needs an email or --role");
    return await signToken({ iss, role: opts.role, iat: now, exp });
  }
  const quoted = opts.email.replaceAll("'", "''");
  const row = psqlAdmin(cfg, {
    command: `select json_build_object('id', id, 'email', email, 'phone', coalesce(phone, ''), ` +
      `'app', coalesce(raw_app_meta_data, '{}'), 'user', coalesce(raw_user_meta_data, '{}'), ` +
      `'anon', is_anonymous) from auth.users where lower(email) = lower('${quoted}')`,
  }).trim();
  if (!row) throw new Error(`No user with email ${opts.email} in auth.users`);
  const u = JSON.parse(row) as { id: string; email: string; phone: string; app: object; user: object; anon: boolean };
  // A session row, as GoTrue has for every token it issues, so /auth/v1 knows the token's session.
  const sessionId = crypto.randomUUID();
  psqlAdmin(cfg, {
    command: `insert into auth.sessions (id, user_id, created_at, updated_at, aal) values ('${sessionId}', '${u.id}', now(), now(), 'aal1')`,
  });
  return await signToken({
    iss,
    sub: u.id,
    aud: "authenticated",
    exp,
    iat: now,
    email: u.email,
    phone: u.phone,
    app_metadata: u.app,
    user_metadata: u.user,
    role: opts.role ?? "authenticated",
    aal: "aal1",
    amr: [{ method: "password", timestamp: now }],
    session_id: sessionId,
    is_anonymous: u.anon,
  });
}

/** A stack on free ports in a new temp directory, for tests and benchmarks. */
export interface ThrowawayStack {
  cfg: StackConfig;
  /** Stops everything and removes the directory. */
  dispose(): Promise<void>;
}

/**
 * Starts a throwaway stack: the database (and, unless `gateway: false`, the gateway) on
 * free ports in a temp directory. `fast` turns fsync off (tests); benchmarks keep it on.
 * On a failed start everything started so far is stopped and removed before it throws.
 */
export async function startThrowawayStack(opts: { prefix: string; fast: boolean; gateway?: boolean }): Promise<ThrowawayStack> {
  const stateDir = mkdtempSync(join(tmpdir(), `${opts.prefix}-`));
  const cfg = stackConfig({
    ...process.env,
    LOCAL_STATE_DIR: stateDir,
    LOCAL_API_PORT: String(await freePort()),
    LOCAL_DB_PORT: String(await freePort()),
    LOCAL_DB_FAST: opts.fast ? "1" : "0",
  });
  const dispose = async () => {
    await stopStack(cfg);
    rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    startDatabase(cfg);
    if (opts.gateway !== false) {
      const pid = startGateway(cfg);
      await waitForGateway(cfg, 60_000, pid);
    }
  } catch (err) {
    await dispose();
    throw err;
  }
  return { cfg, dispose };
}
