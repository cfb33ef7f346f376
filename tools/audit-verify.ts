/**
 * `npm run audit:verify -- --checkpoints <file> --public-key <file|url> [--db-url <url>]`
 *
 * Verifies the PHI access log independently of the database: reads every row in chain
 * order, recomputes each hash here (never trusting the stored ones or any SQL verifier),
 * and checks each exported checkpoint: its signature with the public key, and that the row
 * at its position still carries the signed hash. Prints every problem and exits 1 if there
 * is one. The checkpoints file holds one checkpoint per line, as the sink received them
 * (a compact JWS, or JSON with a `jws` field). The public key is a JWK or JWKS file, or the
 * audit-checkpoint function's /jwks URL. --db-url defaults to $DB_URL, else the local stack.
 */
import { readFileSync } from "node:fs";
import postgres from "postgres";
import type { JWK } from "jose";
import { CHAIN_ROWS_SQL, type ChainRow, verifyChain } from "../supabase/functions/_shared/audit_chain.ts";

const usage = "Usage: npm run audit:verify -- --checkpoints <file> --public-key <file|url> [--db-url <url>]";

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Reads checkpoints, one per line: a compact JWS or {"jws": "..."}. */
export function parseCheckpoints(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => l.startsWith("{") ? String(JSON.parse(l).jws) : l);
}

async function publicKey(source: string): Promise<JWK> {
  const text = /^https?:\/\//.test(source) ? await (await fetch(source)).text() : readFileSync(source, "utf8");
  const parsed = JSON.parse(text) as JWK | { keys: JWK[] };
  const jwk = "keys" in parsed ? parsed.keys[0] : parsed;
  if (!jwk || jwk.d) throw new Error("--public-key must be a public JWK or JWKS (without the private part d)");
  return jwk;
}

/** Runs the verifier; returns the exit code. */
export async function main(args: string[], print: (line: string) => void = console.log): Promise<number> {
  const checkpointsFile = flag(args, "--checkpoints");
  const keySource = flag(args, "--public-key");
  if (!checkpointsFile || !keySource) {
    print(usage);
    return 2;
  }
  const jwk = await publicKey(keySource);
  const checkpoints = parseCheckpoints(readFileSync(checkpointsFile, "utf8"));
  const sql = postgres(flag(args, "--db-url") ?? process.env.DB_URL ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
    { max: 1, onnotice: () => {} });
  try {
    const rows = await sql.unsafe<ChainRow[]>(CHAIN_ROWS_SQL);
    const result = await verifyChain(rows, checkpoints, jwk);
    const last = result.checkpoints.at(-1);
    print(`Read ${result.rows} rows of audit.phi_access_log and ${checkpoints.length} checkpoints` +
      (last ? ` (the last at position ${last.seq}, signed ${new Date(last.iat * 1000).toISOString()}).` : "."));
    if (result.findings.length === 0) {
      print("OK: every row's hash recomputes, and the chain matches every checkpoint.");
      return 0;
    }
    for (const f of result.findings) print(`BROKEN${f.seq === null ? "" : ` at position ${f.seq}`}: ${f.problem}`);
    print(`${result.findings.length} problem(s) found.`);
    return 1;
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
