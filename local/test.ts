/**
 * `npm test`: every suite, in order, against one throwaway stack on free ports in a temp
 * directory (always torn down):
 *   1. type checks: deno check (functions, gateway, SDK), tsc --noEmit (Node code, tests, SDK)
 *   2. the SDK's own tests (sdk/): vitest against local fake servers, and its Deno smoke test
 *   3. generated files: supabase/functions/_shared/database.types.ts and its SDK copy must be
 *      what `npm run gen:types` makes from the migrations (local/gen_types.ts), and
 *      docs/architecture/db_schema.{puml,md} what `npm run docs:erd` draws (local/gen_erd.ts)
 *   4. pgTAP: pg_prove over supabase/tests/ (database built from platform.sql + migrations + seed)
 *   5. deno test: functions and gateway
 *   6. vitest: end-to-end tests with supabase-js (and the SDK) against the gateway
 *   7. Supabase's linter: supabase db advisors --level info must report nothing
 * Ends with one line `N passed, N failed` over all suites; exits non-zero on any failure.
 *
 *   npm test -- --only pgtap,deno   run some suites (typecheck, sdk, types, pgtap, deno, vitest, advisors)
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import {
  dbUrl, ensureSystemPackages, gatewayEnv, root, startThrowawayStack, statusEnv, type StackConfig,
} from "./stack.ts";
import { ERD_FILES, generateErd } from "./gen_erd.ts";
import { generateTypes, TYPES_FILES } from "./gen_types.ts";

interface Tally {
  suite: string;
  passed: number;
  failed: number;
  /** What failed, repeated in the summary so that the end of a long log names it. */
  failures?: string[];
}

const bin = (name: string) => join(root, "node_modules", ".bin", name);

/** Runs a command, streaming its output, and returns exit code and captured output. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; out: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => { out += d; process.stdout.write(d); });
    child.stderr.on("data", (d: Buffer) => { out += d; process.stderr.write(d); });
    child.on("close", (code) => resolveRun({ code: code ?? 1, out }));
    child.on("error", (err) => resolveRun({ code: 1, out: String(err) }));
  });
}

function heading(text: string): void {
  console.log(`\n=== ${text} ===`);
}

// deno-style ANSI colour codes would break the parsing below.
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

async function typecheck(): Promise<Tally> {
  heading("type checks");
  const t: Tally = { suite: "typecheck", passed: 0, failed: 0 };
  const deno = await run(bin("deno"), ["check", "--config", join(root, "deno.json"), "supabase/functions", "local/gateway", "sdk/src", "sdk/test/deno_test.ts"]);
  deno.code === 0 ? t.passed++ : t.failed++;
  for (const project of ["tsconfig.json", join("sdk", "tsconfig.json")]) {
    const tsc = await run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", join(root, project)]);
    tsc.code === 0 ? t.passed++ : t.failed++;
  }
  return t;
}

/** The SDK's own tests: vitest (Node, fake servers) and the Deno smoke test; no stack. */
async function sdk(): Promise<Tally> {
  heading("SDK (sdk/: vitest on Node, deno test)");
  const report = join(root, "sdk", "node_modules", ".vitest-report.json");
  const { code } = await run(process.execPath, [
    join(root, "node_modules", "vitest", "vitest.mjs"), "run", "--root", "sdk", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`,
  ]);
  const t: Tally = { suite: "sdk", passed: 0, failed: 0 };
  try {
    const r = JSON.parse(readFileSync(report, "utf8")) as { numPassedTests: number; numFailedTests: number };
    t.passed += r.numPassedTests;
    t.failed += r.numFailedTests + (code !== 0 && r.numFailedTests === 0 ? 1 : 0);
  } catch {
    t.failed++;
  }
  const deno = await run(bin("deno"), [
    "test", "--allow-net", "--allow-env", "--allow-run", "--config", join(root, "deno.json"), "sdk/test/deno_test.ts",
  ], { ...process.env, NO_COLOR: "1" });
  const m = /ok \| (\d+) passed.*\| (\d+) failed/.exec(plain(deno.out));
  t.passed += m ? Number(m[1]) : 0;
  t.failed += m ? Number(m[2]) + (deno.code !== 0 && Number(m[2]) === 0 ? 1 : 0) : 1;
  return t;
}

/** Compares a generated file with the committed one; on a difference, says where and how to fix it. */
function sameAsCommitted(file: string, generated: string, fix: string): boolean {
  const name = file.slice(root.length + 1);
  if (!existsSync(file)) {
    console.error(`${name} is missing.\n${fix}`);
    return false;
  }
  const fresh = generated.split("\n");
  const committed = readFileSync(file, "utf8").split("\n");
  const at = fresh.findIndex((line, i) => line !== committed[i]);
  if (at === -1 && fresh.length === committed.length) {
    console.log(`${name} is what the migrations generate`);
    return true;
  }
  const line = at === -1 ? Math.min(fresh.length, committed.length) : at;
  console.error(`${name} differs from what the migrations generate, from line ${line + 1}:`);
  console.error(`  committed: ${committed[line] ?? "(end of file)"}\n  generated: ${fresh[line] ?? "(end of file)"}`);
  console.error(fix);
  return false;
}

/** Generated files: the database types and the schema diagrams, each one pass or fail. */
async function types(cfg: StackConfig): Promise<Tally> {
  heading("generated types and diagrams (npm run gen:types, npm run docs:erd)");
  const t: Tally = { suite: "types", passed: 0, failed: 0 };
  try {
    const fresh = generateTypes(dbUrl(cfg));
    for (const file of TYPES_FILES) {
      sameAsCommitted(file, fresh, "Run `npm start` then `npm run gen:types`, and commit the file.") ? t.passed++ : t.failed++;
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    t.failed++;
  }
  try {
    const erd = await generateErd(dbUrl(cfg));
    for (const [key, file] of Object.entries(ERD_FILES)) {
      const fix = `Run \`npm run docs:erd\` and commit ${file.slice(root.length + 1)}.`;
      sameAsCommitted(file, erd[key as keyof typeof ERD_FILES], fix) ? t.passed++ : t.failed++;
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    t.failed++;
  }
  return t;
}

async function pgtap(cfg: StackConfig): Promise<Tally> {
  heading("pgTAP (pg_prove supabase/tests)");
  const dir = join(root, "supabase", "tests");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort().map((f) => join(dir, f));
  const { code, out } = await run("pg_prove", [
    "--verbose", "--host", "127.0.0.1", "--port", String(cfg.dbPort), "--username", "postgres", "--dbname", "postgres", ...files,
  ], { ...process.env, PGPASSWORD: "postgres" });
  const passed = (out.match(/^\s*ok \d+/gm) ?? []).length;
  let failed = (out.match(/^\s*not ok \d+/gm) ?? []).length;
  if (code !== 0 && failed === 0) failed = 1;
  // pg_prove's report names each failing file and test; psql's ERROR lines say why a file stopped.
  const report = out.split(/^Test Summary Report\n-+\n/m)[1]?.split(/^Files=/m)[0] ?? "";
  const failures = [...report.split("\n"), ...out.split("\n").filter((l) => /\bERROR:|^DETAIL:/.test(l))]
    .map((l) => l.trim()).filter(Boolean);
  return { suite: "pgtap", passed, failed, failures };
}

async function denoTests(cfg: StackConfig): Promise<Tally> {
  heading("deno test (functions, gateway)");
  const env = { ...process.env, ...gatewayEnv(cfg), GATEWAY_TEST_DB_URL: dbUrl(cfg, "authenticator"), NO_COLOR: "1" };
  const { code, out } = await run(bin("deno"), ["test", "--allow-all", "--config", join(root, "deno.json"), "supabase/functions", "local/gateway"], env);
  // Count steps where a test has them, else tests: "ok | 13 passed (6 steps) | 0 failed".
  let passed = 0;
  let failed = 0;
  const failures: string[] = [];
  for (const line of plain(out).split("\n")) {
    const m = /^\s*(\S.*?) \.\.\. (ok|FAILED)\b/.exec(line);
    if (!m) continue;
    const isParentWithSteps = new RegExp(`^${m[1].replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\.\\.\\.$`, "m").test(plain(out));
    if (isParentWithSteps) continue;
    if (m[2] === "ok") passed++;
    else {
      failed++;
      failures.push(m[1]);
    }
  }
  if (code !== 0 && failed === 0) failed = 1;
  return { suite: "deno", passed, failed, failures };
}

async function vitest(cfg: StackConfig): Promise<Tally> {
  heading("vitest (end-to-end, supabase-js)");
  const report = join(cfg.stateDir, "vitest.json");
  const env = {
    ...process.env,
    COACH_LEDGER_TEST_STACK: "1",
    LOCAL_STATE_DIR: cfg.stateDir,
    LOCAL_API_PORT: String(cfg.apiPort),
    LOCAL_DB_PORT: String(cfg.dbPort),
  };
  const { code } = await run(process.execPath, [
    join(root, "node_modules", "vitest", "vitest.mjs"), "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`,
  ], env);
  try {
    const r = JSON.parse(readFileSync(report, "utf8")) as {
      numPassedTests: number;
      numFailedTests: number;
      testResults: { name: string; message?: string; assertionResults: { fullName: string; status: string }[] }[];
    };
    const failures = r.testResults.flatMap((f) => [
      ...f.assertionResults.filter((a) => a.status === "failed").map((a) => `${relative(root, f.name)}: ${a.fullName}`),
      ...(f.message ? [`${relative(root, f.name)}: ${f.message.split("\n")[0]}`] : []),
    ]);
    return { suite: "vitest", passed: r.numPassedTests, failed: r.numFailedTests + (code !== 0 && r.numFailedTests === 0 ? 1 : 0), failures };
  } catch {
    return { suite: "vitest", passed: 0, failed: 1 };
  }
}

async function advisors(cfg: StackConfig): Promise<Tally> {
  heading("supabase db advisors --level info");
  const { code, out } = await run(bin("supabase"), [
    "db", "advisors", `--remote=${dbUrl(cfg)}`, "--level", "info", "--fail-on", "info",
  ], { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" });
  const clean = code === 0 && /No issues found/.test(out);
  return { suite: "advisors", passed: clean ? 1 : 0, failed: clean ? 0 : 1 };
}

async function main(): Promise<number> {
  const onlyArg = process.argv.indexOf("--only");
  const only = onlyArg >= 0 ? new Set(process.argv[onlyArg + 1].split(",")) : null;
  const wants = (s: string) => !only || only.has(s);
  const started = performance.now();
  ensureSystemPackages();
  const tallies: Tally[] = [];
  if (wants("typecheck")) tallies.push(await typecheck());
  if (wants("sdk")) tallies.push(await sdk());

  const needsStack = ["types", "pgtap", "deno", "vitest", "advisors"].some(wants);
  if (needsStack) {
    heading("throwaway stack");
    let stack: Awaited<ReturnType<typeof startThrowawayStack>> | undefined;
    try {
      const t0 = performance.now();
      stack = await startThrowawayStack({ prefix: "coach-ledger-test", fast: true });
      const cfg = stack.cfg;
      console.log(`stack up in ${((performance.now() - t0) / 1000).toFixed(1)}s in ${cfg.stateDir}: ${statusEnv(cfg).API_URL}, ${statusEnv(cfg).DB_URL}`);
      if (wants("types")) tallies.push(await types(cfg));
      if (wants("pgtap")) tallies.push(await pgtap(cfg));
      if (wants("deno")) tallies.push(await denoTests(cfg));
      if (wants("vitest")) tallies.push(await vitest(cfg));
      if (wants("advisors")) tallies.push(await advisors(cfg));
    } catch (err) {
      console.error(err instanceof Error ? err.message : err);
      tallies.push({ suite: "stack", passed: 0, failed: 1 });
    } finally {
      await stack?.dispose();
    }
  }

  heading("summary");
  for (const t of tallies) {
    console.log(`${t.suite.padEnd(10)} ${t.passed} passed, ${t.failed} failed`);
    if (t.failed > 0) for (const f of (t.failures ?? []).slice(0, 20)) console.log(`  ${f}`);
  }
  const passed = tallies.reduce((n, t) => n + t.passed, 0);
  const failed = tallies.reduce((n, t) => n + t.failed, 0);
  console.log(`time: ${((performance.now() - started) / 1000).toFixed(1)}s`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
