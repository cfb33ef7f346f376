/**
 * `npm run audit:verify -- --checkpoints <file> --public-key <file|url> [--db-url <url>]`
 *
 * Verifies the PHI access log independently of the database: reads every row in chain
 * order, recomputes each hash here (never trusting the stored ones or any SQL verifier; the
 * hash version of each row follows the cut-over recorded in audit.phi_access_chain_head),
 * and checks each exported checkpoint: its signature with the public key, and that the row
 * at its position still carries the signed hash. Prints every problem and exits 1 if there
 * is one. The checkpoints file holds one checkpoint per line, as the sink received them
 * (a compact JWS, or JSON with a `jws` field). The public key is a JWK or JWKS file, or the
 * audit-checkpoint function's /jwks URL (public: no token needed); with several keys (after a
 * rotation) each checkpoint is verified with the key its kid names. --db-url defaults to $DB_URL, else the local stack.
 * A log that retention pruned starts after a checkpoint's position: that checkpoint must be
 * in the file (it is printed as the anchor), and signed at least --min-retention-days ago
 * (default 2190, six years: the shortest window the database allows); otherwise the missing
 * prefix is a break.
 */
import { readFileSync } from "node:fs";
import postgres from "postgres";
import type { JWK } from "jose";
import { CHAIN_ROWS_SQL, type ChainRow, verifyChain } from "../supabase/functions/_shared/audit_chain.ts";

const usage = "Usage: npm run audit:verify -- --checkpoints <file> --public-key <file|url> [--db-url <url>] [--min-retention-days N]";

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Reads checkpoints, one per line: a compact JWS or {"jws": "..."}. */
export function parseCheckpoints(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => l.startsWith("{") ? String(JSON.parse(l).jws) : l);
}

/**
 * The public keys from a JWK or JWKS (file or URL): every key must be a public Ed25519 JWK
 * (kty OKP, crv Ed25519, x, no private part d). A JWKS may hold several (rotation): each
 * checkpoint is verified with the key its kid names.
 */
export function parsePublicKeys(text: string): JWK[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error("--public-key is not JSON: give a public JWK or JWKS");
  }
  const keys = parsed && typeof parsed === "object" && Array.isArray((parsed as { keys?: unknown }).keys)
    ? (parsed as { keys: unknown[] }).keys
    : [parsed];
  if (keys.length === 0) throw new Error("--public-key holds an empty key set");
  return keys.map((k) => {
    const jwk = k as JWK;
    if (!jwk || typeof jwk !== "object" || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") {
      throw new Error("--public-key must be a public Ed25519 JWK or JWKS (kty OKP, crv Ed25519, x)");
    }
    if (jwk.d !== undefined) throw new Error("--public-key holds a private key (d): give only the public half");
    if (keys.length > 1 && typeof jwk.kid !== "string") throw new Error("--public-key: every key of a key set needs a kid");
    return jwk;
  });
}

async function publicKeys(source: string): Promise<JWK[]> {
  if (!/^https?:\/\//.test(source)) return parsePublicKeys(readFileSync(source, "utf8"));
  const res = await fetch(source);
  if (!res.ok) throw new Error(`--public-key ${source} answered ${res.status}`);
  return parsePublicKeys(await res.text());
}

/** What the verifier prints for a result: what it read, where a pruned log starts, and every problem. */
export function report(result: Awaited<ReturnType<typeof verifyChain>>, checkpointCount: number): string[] {
  const last = result.checkpoints.at(-1);
  const lines = [`Read ${result.rows} rows of audit.phi_access_log and ${checkpointCount} checkpoints` +
    (last ? ` (the last at position ${last.seq}, signed ${new Date(last.iat * 1000).toISOString()}).` : ".")];
  if (result.anchor) {
    lines.push(`The log starts after position ${result.anchor.seq}: retention deleted the rows up to it, through the checkpoint ` +
      `signed ${new Date(result.anchor.iat * 1000).toISOString()}, which the first row kept chains to.`);
  }
  if (result.findings.length === 0) {
    lines.push("OK: every row's hash recomputes, and the chain matches every checkpoint.");
    return lines;
  }
  for (const f of result.findings) lines.push(`BROKEN${f.seq === null ? "" : ` at position ${f.seq}`}: ${f.problem}`);
  lines.push(`${result.findings.length} problem(s) found.`);
  return lines;
}

/** Runs the verifier; returns the exit code. */
export async function main(args: string[], print: (line: string) => void = console.log): Promise<number> {
  const checkpointsFile = flag(args, "--checkpoints");
  const keySource = flag(args, "--public-key");
  if (!checkpointsFile || !keySource) {
    print(usage);
    return 2;
  }
  const keys = await publicKeys(keySource);
  const checkpoints = parseCheckpoints(readFileSync(checkpointsFile, "utf8"));
  const sql = postgres(flag(args, "--db-url") ?? process.env.DB_URL ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
    { max: 1, onnotice: () => {} });
  try {
    const rows = await sql.unsafe<ChainRow[]>(CHAIN_ROWS_SQL);
    const days = flag(args, "--min-retention-days");
    const minRetentionDays = days === undefined ? undefined : Number(days);
    if (minRetentionDays !== undefined && !(Number.isInteger(minRetentionDays) && minRetentionDays >= 0)) {
      print("--min-retention-days must be a whole number of days");
      return 2;
    }
    const result = await verifyChain(rows, checkpoints, keys, { minRetentionDays });
    for (const line of report(result, checkpoints.length)) print(line);
    return result.findings.length === 0 ? 0 : 1;
  } finally {
    await sql.end();
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  });
}
