/**
 * Session media storage (issue 12; seed 004: "storage p95 < 500 ms"): `npm run bench:storage`.
 * Starts a throwaway stack and measures, one request at a time, p50/p95 of:
 *
 *  - upload of 1 MB: supabase-js's path, POST /storage/v1/object/session-media/<key> as the
 *    owner (a permission trial, the bytes to disk, the row), and the media function's path
 *    (POST /media/upload-url, then PUT to the signed upload URL, then POST /media/complete,
 *    which reads the bytes back to hash them);
 *  - signed URL creation: POST /storage/v1/object/sign/… (one URL) and GET /media (a session's
 *    media with their signed URLs, the coach's read audited);
 *  - download of 1 MB through a signed URL;
 *
 * beside the ceiling measured in the same run: writing the same bytes to a new file (with
 * fsync, as a durable store must) and reading a file of them back, straight on disk.
 * The stack's media rate limits are raised so that they count every request but refuse none.
 * Options: --requests N (default 100 per row), --bytes N (default 1,048,576).
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { ensureSystemPackages, mintToken, startThrowawayStack, statusEnv } from "../local/stack.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const REQUESTS = opt("--requests", 100);
const BYTES = opt("--bytes", 1024 * 1024);
const SESSION = "a11ce000-5e55-4000-8000-000000000001";
const ALICE = "a11ce000-0000-4000-8000-000000000001";

interface Stats { p50: number; p95: number; n: number }

/** Runs fn `REQUESTS` times after 5 warm-up runs; p50/p95 in ms. */
async function measure(fn: (i: number) => Promise<void>): Promise<Stats> {
  for (let i = 0; i < 5; i++) await fn(-1 - i);
  const ms: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    await fn(i);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const at = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  return { p50: at(0.5), p95: at(0.95), n: ms.length };
}

async function ok(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return res;
}

ensureSystemPackages();
const stack = await startThrowawayStack({ prefix: "coach-ledger-bench-storage", fast: false });
const disk = mkdtempSync(join(tmpdir(), "coach-ledger-bench-disk-"));
try {
  const api = `http://127.0.0.1:${stack.cfg.apiPort}`;
  const sql = postgres(statusEnv(stack.cfg).DB_URL, { max: 1, onnotice: () => {} });
  await sql`update private.rate_limit_policies set quota = 1000000000 where endpoint = 'media'`;
  await sql.end();
  const alice = await mintToken(stack.cfg, { email: "alice@example.com" });
  const carol = await mintToken(stack.cfg, { email: "carol@example.com" });
  const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
  const body = new Uint8Array(BYTES).map((_, i) => (i * 2654435761) >>> 24);
  const folder = `u/${ALICE}/s/${SESSION}`;
  const rows: [string, Stats][] = [];

  // The ceiling: the same bytes straight to and from disk.
  rows.push(["disk: write 1 MB to a new file + fsync (ceiling)", await measure(async (i) => {
    const fd = openSync(join(disk, `w${i}`), "wx");
    writeSync(fd, body);
    fsyncSync(fd);
    closeSync(fd);
  })]);
  rows.push(["disk: read a 1 MB file (ceiling)", await measure(async (i) => {
    readFileSync(join(disk, `w${Math.max(i, 0)}`));
  })]);

  // Uploads.
  const uploaded: string[] = [];
  rows.push(["storage: upload 1 MB (POST /object, as the owner)", await measure(async (i) => {
    const key = `${folder}/${1_000_000 + i + 10}/direct.wav`;
    await ok(await fetch(`${api}/storage/v1/object/session-media/${key}`, {
      method: "POST", headers: { ...auth(alice), "Content-Type": "audio/wav" }, body,
    }), "upload");
    if (i >= 0) uploaded.push(key);
  })]);
  rows.push(["media: upload-url + PUT 1 MB to the signed URL + complete (SHA-256)", await measure(async (i) => {
    const started = await (await ok(await fetch(`${api}/functions/v1/media/upload-url`, {
      method: "POST", headers: { ...auth(alice), "Content-Type": "application/json" },
      body: JSON.stringify({ session_id: SESSION, kind: "audio", filename: `bench-${i}.wav`, content_type: "audio/wav", bytes: BYTES }),
    }), "upload-url")).json() as { media: { id: string }; upload: { signed_url: string } };
    await ok(await fetch(started.upload.signed_url, { method: "PUT", headers: { "Content-Type": "audio/wav" }, body }), "signed PUT");
    await ok(await fetch(`${api}/functions/v1/media/complete`, {
      method: "POST", headers: { ...auth(alice), "Content-Type": "application/json" }, body: JSON.stringify({ media_id: started.media.id }),
    }), "complete");
  })]);

  // Signed URLs.
  let signed = "";
  rows.push(["storage: create one signed URL (POST /object/sign)", await measure(async (i) => {
    const res = await (await ok(await fetch(`${api}/storage/v1/object/sign/session-media/${uploaded[Math.max(i, 0) % uploaded.length]}`, {
      method: "POST", headers: { ...auth(alice), "Content-Type": "application/json" }, body: JSON.stringify({ expiresIn: 600 }),
    }), "sign")).json() as { signedURL: string };
    signed = `${api}/storage/v1${res.signedURL}`;
  })]);
  const listed = await (await ok(await fetch(`${api}/functions/v1/media?session_id=${SESSION}`, { headers: auth(alice) }), "list")).json() as { media: unknown[] };
  rows.push([`media: GET /media, ${listed.media.length} objects with signed URLs, as the coach (audited)`, await measure(async () => {
    await (await ok(await fetch(`${api}/functions/v1/media?session_id=${SESSION}`, { headers: auth(carol) }), "list")).arrayBuffer();
  })]);

  // Download.
  rows.push(["storage: download 1 MB through a signed URL", await measure(async () => {
    const got = await (await ok(await fetch(signed), "download")).arrayBuffer();
    if (got.byteLength !== BYTES) throw new Error(`downloaded ${got.byteLength} bytes`);
  })]);

  console.log(`# Session media storage benchmark\n`);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB; ${REQUESTS} requests per row, one at a time, ${BYTES.toLocaleString("en")} bytes per object\n`);
  console.log("| operation | p50 | p95 | p95 / disk ceiling |");
  console.log("| --- | --- | --- | --- |");
  const writeCeiling = rows[0][1].p95;
  const readCeiling = rows[1][1].p95;
  for (const [name, s] of rows) {
    const ceiling = /upload|write/.test(name) ? writeCeiling : /download|read/.test(name) ? readCeiling : null;
    console.log(`| ${name} | ${s.p50.toFixed(1)} ms | ${s.p95.toFixed(1)} ms | ${ceiling ? `${(s.p95 / ceiling).toFixed(1)}x` : ""} |`);
  }
  const worst = Math.max(...rows.slice(2).map(([, s]) => s.p95));
  console.log(`\nslowest p95 through the gateway: ${worst.toFixed(1)} ms (the seed's target: < 500 ms)`);
} finally {
  rmSync(disk, { recursive: true, force: true });
  await stack.dispose();
}
