/**
 * The local Storage API (local/gateway/storage.ts) with supabase-js `storage`, as an app
 * calls it, on the session-media bucket and its policies (issue 12): Alice uploads audio and
 * a transcript under her session and reads them back, directly and through signed URLs;
 * Bob is refused on her paths; her coach reads; signed URLs that are expired, tampered with
 * or for another object are refused; signed upload URLs; bucket limits; list and remove; and
 * bytes on disk always match the rows (a refused write leaves no file, a replaced or removed
 * object's file goes).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import type { SupabaseClient } from "@supabase/supabase-js";
import { ALICE, BOB, client, stack, userClient } from "../helpers.ts";
import { mintToken } from "../../local/stack.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
const SESSION = "a11ce000-5e55-4000-8000-000000000001";
const ts = Date.now();
const folder = `u/${ALICE}/s/${SESSION}/${ts}`;
const audio = `${folder}/audio.wav`;
const transcript = `${folder}/transcript.json`;
const WAV = new Uint8Array([0x52, 0x49, 0x46, 0x46, 1, 2, 3, 4]);

let alice: SupabaseClient;
let bob: SupabaseClient;
let carol: SupabaseClient;
let service: SupabaseClient;

/** The files under the stack's storage directory, against the rows of storage.objects. */
async function filesAndRows(): Promise<[number, number]> {
  const dir = join(stack().cfg.stateDir, "storage");
  let files = 0;
  try {
    for (const bucket of readdirSync(dir)) files += readdirSync(join(dir, bucket)).length;
  } catch {
    // no upload yet
  }
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from storage.objects where version is not null`;
  return [files, n];
}

beforeAll(async () => {
  alice = await userClient("alice@example.com");
  bob = await userClient("bob@example.com");
  carol = await userClient("carol@example.com");
  service = client(stack().env.SERVICE_ROLE_KEY);
  await sql`insert into storage.buckets (id, name, public, file_size_limit) values ('e2e-small', 'e2e-small', false, 1024), ('e2e-public', 'e2e-public', true, null)
            on conflict (id) do nothing`;
});
afterAll(() => sql.end());

describe("storage", () => {
  it("Alice uploads audio and a transcript under her session and reads them back", async () => {
    const media = alice.storage.from("session-media");
    const up = await media.upload(audio, new Blob([WAV], { type: "audio/wav" }));
    expect(up.error).toBeNull();
    expect(up.data).toMatchObject({ path: audio, fullPath: `session-media/${audio}` });
    const text = await media.upload(transcript, JSON.stringify({ text: "hello" }), { contentType: "application/json" });
    expect(text.error).toBeNull();
    const got = await media.download(audio);
    expect(new Uint8Array(await got.data!.arrayBuffer())).toEqual(WAV);
    expect(got.data!.type).toBe("audio/wav");
    expect(await (await media.download(transcript)).data!.text()).toBe('{"text":"hello"}');
    const [row] = await sql`select owner::text, metadata ->> 'mimetype' as mimetype, (metadata ->> 'size')::int as size
                            from storage.objects where bucket_id = 'session-media' and name = ${audio}`;
    expect(row).toEqual({ owner: ALICE, mimetype: "audio/wav", size: WAV.length });
    const [files, rows] = await filesAndRows();
    expect(files).toBe(rows);
  });

  it("an existing object is refused without upsert and replaced with it, its old bytes removed", async () => {
    const media = alice.storage.from("session-media");
    const dup = await media.upload(audio, new Blob([new Uint8Array([1])], { type: "audio/wav" }));
    expect(dup.error).toMatchObject({ status: 400, statusCode: "409", message: "The resource already exists" });
    const [files] = await filesAndRows();
    const again = await media.upload(audio, new Blob([new Uint8Array([9, 9, 9])], { type: "audio/wav" }), { upsert: true });
    expect(again.error).toBeNull();
    expect(new Uint8Array(await (await media.download(audio)).data!.arrayBuffer())).toEqual(new Uint8Array([9, 9, 9]));
    const [after, rows] = await filesAndRows();
    expect([after, rows]).toEqual([files, files]);
  });

  it("Bob is refused on Alice's paths: upload, download, list, sign and remove", async () => {
    const media = bob.storage.from("session-media");
    const before = await filesAndRows();
    const up = await media.upload(`${folder}/bob.wav`, new Blob([WAV], { type: "audio/wav" }));
    expect(up.error).toMatchObject({ status: 400, statusCode: "403", message: "new row violates row-level security policy" });
    expect(await filesAndRows()).toEqual(before);
    expect((await media.download(audio)).error).toMatchObject({ statusCode: "404", message: "Object not found" });
    expect((await media.list(folder)).data).toEqual([]);
    expect((await media.createSignedUrl(audio, 60)).error).toMatchObject({ statusCode: "404" });
    expect((await media.remove([audio])).data).toEqual([]);
    expect((await alice.storage.from("session-media").download(audio)).error).toBeNull();
  });

  it("her coach reads her media and writes none", async () => {
    const media = carol.storage.from("session-media");
    expect((await media.download(transcript)).error).toBeNull();
    expect((await media.upload(`${folder}/carol.wav`, new Blob([WAV], { type: "audio/wav" }))).error).toMatchObject({ statusCode: "403" });
  });

  it("a signed URL serves the object until it expires; a tampered token or another object's URL is refused", async () => {
    const media = alice.storage.from("session-media");
    const { data } = await media.createSignedUrl(audio, 600);
    const res = await fetch(data!.signedUrl);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array([9, 9, 9]));
    expect(Date.parse(res.headers.get("expires")!)).toBeGreaterThan(Date.now() + 590_000);
    const tampered = await fetch(data!.signedUrl.replace(/.{4}$/, "AAAA"));
    expect([tampered.status, (await tampered.json()).code]).toEqual([400, "InvalidJWT"]);
    const other = await fetch(data!.signedUrl.replace("audio.wav", "transcript.json"));
    expect(await other.json()).toMatchObject({ code: "InvalidSignature", message: "Invalid signature" });
    const short = await media.createSignedUrl(transcript, 1);
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await fetch(short.data!.signedUrl);
    expect([expired.status, (await expired.json()).code]).toEqual([400, "InvalidJWT"]);
    const many = await media.createSignedUrls([audio, `${folder}/missing.wav`], 60);
    expect(many.data!.map((d) => [d.path, d.signedUrl !== null, d.error])).toEqual([
      [audio, true, null], [`${folder}/missing.wav`, false, "Either the object does not exist or you do not have access to it"]]);
  });

  it("a signed upload URL lets the upload through once, as Alice; Bob gets none for her paths", async () => {
    const media = alice.storage.from("session-media");
    const path = `${folder}/signed.json`;
    const { data, error } = await media.createSignedUploadUrl(path);
    expect(error).toBeNull();
    const put = await media.uploadToSignedUrl(path, data!.token, new Blob(['{"ok":true}'], { type: "application/json" }));
    expect(put.error).toBeNull();
    const [row] = await sql`select owner::text from storage.objects where bucket_id = 'session-media' and name = ${path}`;
    expect(row.owner).toBe(ALICE);
    const twice = await media.uploadToSignedUrl(path, data!.token, new Blob(["{}"], { type: "application/json" }));
    expect(twice.error).toMatchObject({ statusCode: "409" });
    expect((await bob.storage.from("session-media").createSignedUploadUrl(`${folder}/bob.json`)).error).toMatchObject({ statusCode: "403" });
  });

  it("the bucket's limits hold: a disallowed type and an oversize file are refused and store nothing", async () => {
    const before = await filesAndRows();
    const png = await alice.storage.from("session-media").upload(`${folder}/x.png`, new Blob([WAV], { type: "image/png" }));
    expect(png.error).toMatchObject({ status: 400, statusCode: "415", message: "mime type image/png is not supported" });
    const big = await service.storage.from("e2e-small").upload(`big-${ts}.bin`, new Uint8Array(2048), { contentType: "application/octet-stream" });
    expect(big.error).toMatchObject({ status: 400, statusCode: "413", message: "The object exceeded the maximum allowed size" });
    const bigForm = await service.storage.from("e2e-small").upload(`big-${ts}.bin`, new Blob([new Uint8Array(2048)]));
    expect(bigForm.error).toMatchObject({ statusCode: "413" });
    expect(await filesAndRows()).toEqual(before);
  });

  it("getPublicUrl serves a public bucket to anyone and a private one to nobody", async () => {
    const name = `pub-${ts}.txt`;
    expect((await service.storage.from("e2e-public").upload(name, "public text", { contentType: "text/plain" })).error).toBeNull();
    const anon = client(stack().env.ANON_KEY);
    const pub = await fetch(anon.storage.from("e2e-public").getPublicUrl(name).data.publicUrl);
    expect([pub.status, await pub.text()]).toEqual([200, "public text"]);
    const priv = await fetch(anon.storage.from("session-media").getPublicUrl(audio).data.publicUrl);
    expect([priv.status, (await priv.json()).message]).toEqual([400, "Bucket not found"]);
  });

  it("lists a folder's files and subfolders, and removes objects with their bytes", async () => {
    const media = alice.storage.from("session-media");
    const listed = await media.list(folder);
    expect(listed.data!.map((o) => o.name).sort()).toEqual(["audio.wav", "signed.json", "transcript.json"]);
    const up = await media.list(`u/${ALICE}/s/${SESSION}`);
    expect(up.data!.find((o) => o.name === String(ts))).toMatchObject({ id: null, metadata: null });
    const removed = await media.remove([audio, transcript, `${folder}/signed.json`]);
    expect(removed.data!.map((o) => o.name).sort()).toEqual([audio, `${folder}/signed.json`, transcript].sort());
    expect((await media.download(audio)).error).toMatchObject({ statusCode: "404" });
    const [files, rows] = await filesAndRows();
    expect(files).toBe(rows);
  });

  it("concurrent uploads of one name take turns: one row, one file", async () => {
    const media = alice.storage.from("session-media");
    const path = `${folder}/race.wav`;
    const results = await Promise.all([1, 2, 3, 4, 5].map((k) =>
      media.upload(path, new Blob([new Uint8Array([k])], { type: "audio/wav" }), { upsert: true })));
    expect(results.map((r) => r.error)).toEqual([null, null, null, null, null]);
    const [files, rows] = await filesAndRows();
    expect(files).toBe(rows);
    expect((await media.remove([path])).data).toHaveLength(1);
  });

  it("a write whose row cannot be committed removes its bytes: a slow first upload loses the name to a fast one", async () => {
    const path = `${folder}/first.wav`;
    const token = await mintToken(stack().cfg, { email: "alice@example.com" });
    // The slow upload passes the permission trial (no row yet) and starts writing its file...
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(new Uint8Array(1024).fill(1));
        await released;
        c.enqueue(new Uint8Array(1024).fill(2));
        c.close();
      },
    });
    const slow = fetch(`${stack().env.API_URL}/storage/v1/object/session-media/${path}`, {
      method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "audio/wav" }, body, duplex: "half",
    } as RequestInit);
    await new Promise((r) => setTimeout(r, 300));
    const [filesDuring] = await filesAndRows();
    // ...a fast one takes the name meanwhile...
    expect((await alice.storage.from("session-media").upload(path, new Blob([WAV], { type: "audio/wav" }))).error).toBeNull();
    release();
    // ...so the slow one's transaction refuses it after its bytes were written, and its file goes.
    const res = await slow;
    expect([res.status, (await res.json()).statusCode]).toEqual([400, "409"]);
    const [files, rows] = await filesAndRows();
    expect(files).toBe(rows);
    expect(filesDuring).toBe(rows); // the slow file existed (rows then were one fewer)
    expect(new Uint8Array(await (await alice.storage.from("session-media").download(path)).data!.arrayBuffer())).toEqual(WAV);
    expect((await alice.storage.from("session-media").remove([path])).data).toHaveLength(1);
  });

  it("malformed requests get the server's 400s, never a 500; HTML is served as text", async () => {
    const api = `${stack().env.API_URL}/storage/v1`;
    const auth = { authorization: `Bearer ${stack().env.SERVICE_ROLE_KEY}`, "content-type": "application/json" };
    const nullBody = await fetch(`${api}/object/list/session-media`, { method: "POST", headers: auth, body: "null" });
    expect([nullBody.status, (await nullBody.json()).code]).toEqual([400, "InvalidRequest"]);
    const nul = await fetch(`${api}/object/public/%00/x`);
    expect([nul.status, (await nul.json()).code]).toEqual([400, "NoSuchBucket"]);
    const badKey = await fetch(`${api}/object/session-media/a%00b`, { method: "POST", headers: { ...auth, "content-type": "audio/wav" }, body: "x" });
    expect([badKey.status, (await badKey.json()).code]).toEqual([400, "InvalidKey"]);
    const boundary = await fetch(`${api}/object/e2e-public/b-${ts}.txt`, {
      method: "POST", headers: { ...auth, "content-type": `multipart/form-data; boundary=${"x".repeat(200)}` }, body: "--x",
    });
    expect([boundary.status, (await boundary.json()).message]).toEqual([400, "No content provided"]);
    const html = `page-${ts}.html`;
    expect((await service.storage.from("e2e-public").upload(html, "<script>1</script>", { contentType: "text/html; charset=utf-8" })).error).toBeNull();
    const page = await fetch(service.storage.from("e2e-public").getPublicUrl(html).data.publicUrl);
    expect([page.headers.get("content-type"), page.headers.get("x-content-type-options")]).toEqual(["text/plain", "nosniff"]);
    await page.body?.cancel();
  });

  it("the service role reads the bucket with its limits; routes not served say so", async () => {
    const { data } = await service.storage.getBucket("session-media");
    expect(data).toMatchObject({ id: "session-media", public: false, file_size_limit: 104857600 });
    expect((await alice.storage.getBucket("session-media")).error).toMatchObject({ statusCode: "404" });
    const info = await alice.storage.from("session-media").info(audio);
    expect(info.error).toMatchObject({ status: 501 });
  });

  it("moves and copies within Alice's sessions; Bob can neither; the bytes follow the rows", async () => {
    const media = alice.storage.from("session-media");
    const src = `${folder}/to-move.wav`;
    expect((await media.upload(src, new Blob([WAV], { type: "audio/wav" }))).error).toBeNull();
    expect((await bob.storage.from("session-media").move(src, `${folder}/bob.wav`)).error).toMatchObject({ statusCode: "404" });
    expect((await bob.storage.from("session-media").copy(src, `u/${BOB}/s/${SESSION}/${ts}/x.wav`)).error).toMatchObject({ statusCode: "404" });
    // Out of her own sessions, or to a name no session_media row could have: the policies refuse.
    expect((await media.move(src, `u/${BOB}/s/${SESSION}/${ts}/stolen.wav`)).error).toMatchObject({ statusCode: "403" });
    expect((await media.move(src, `${folder}/my recording.wav`)).error).toMatchObject({ statusCode: "403" });
    expect((await media.copy(src, `u/${BOB}/s/${SESSION}/${ts}/stolen.wav`)).error).toMatchObject({ statusCode: "403" });
    const moved = await media.move(src, `${folder}/moved.wav`);
    expect(moved).toMatchObject({ data: { message: "Successfully moved", Key: `${folder}/moved.wav` }, error: null });
    // The service role moving it keeps its owner, as the server does.
    expect((await service.storage.from("session-media").move(`${folder}/moved.wav`, `${folder}/moved-2.wav`)).error).toBeNull();
    const [{ owner }] = await sql`select owner::text from storage.objects where bucket_id = 'session-media' and name = ${`${folder}/moved-2.wav`}`;
    expect(owner).toBe(ALICE);
    expect((await media.move(`${folder}/moved-2.wav`, `${folder}/moved.wav`)).error).toBeNull();
    expect((await media.download(src)).error).toMatchObject({ status: 400 });
    expect(new Uint8Array(await (await media.download(`${folder}/moved.wav`)).data!.arrayBuffer())).toEqual(WAV);
    const copied = await media.copy(`${folder}/moved.wav`, `${folder}/copied.wav`);
    expect(copied).toEqual({ data: { path: `session-media/${folder}/copied.wav` }, error: null });
    expect((await media.copy(`${folder}/moved.wav`, `${folder}/copied.wav`)).error).toMatchObject({ statusCode: "409" });
    expect(new Uint8Array(await (await media.download(`${folder}/copied.wav`)).data!.arrayBuffer())).toEqual(WAV);
    const [files, rows] = await filesAndRows();
    expect(files).toBe(rows);
    expect((await media.remove([`${folder}/moved.wav`, `${folder}/copied.wav`])).data).toHaveLength(2);
  });
});
