/**
 * Session media end to end (issue 12), as an app and the platform use it: the `media`
 * function hands out ten-minute signed upload URLs that supabase-js's uploadToSignedUrl
 * takes, completes uploads with the SHA-256 of the stored bytes, and lists a session's media
 * with signed download URLs; Bob is refused on Alice's session and stores nothing; bad
 * input names its field; an expired URL fails; a late upload revives its row; an object that
 * does not fit its upload is rejected, and one uploaded straight to Storage gets a row; the
 * coach's read is audited; removing an object through Storage is seen in the rows;
 * `media-retention` deletes expired audio and rejected objects through the Storage API,
 * keeps the transcript, and finds nothing on a second run.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import type { SupabaseClient } from "@supabase/supabase-js";
import { FunctionsHttpError } from "@supabase/supabase-js";
import { ALICE, CAROL, client, stack, userClient } from "../helpers.ts";
import { SEED_TRANSCRIPT, seedSessionMedia, toneWav } from "../../local/seed_media.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
const SESSION = "a11ce000-5e55-4000-8000-000000000001";
const WAV = new Uint8Array([0x52, 0x49, 0x46, 0x46, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
const TRANSCRIPT = JSON.stringify({ segments: [{ speaker: "client", text: "I want to run a 10k" }] });
const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

let alice: SupabaseClient;
let bob: SupabaseClient;
let carol: SupabaseClient;
let service: SupabaseClient;

interface Media {
  id: string;
  kind: string;
  storage_path: string;
  status: string;
  bytes: number;
  mime_type: string;
  sha256: string | null;
  download_url?: string | null;
}
interface UploadUrl {
  media: Media;
  upload: { bucket: string; path: string; token: string; signed_url: string; expires_at: string; content_type: string };
}

/** Invokes a media route; the parsed body and the status, problem bodies included. */
async function call<T>(as: SupabaseClient, path: string, init: { method?: "GET" | "POST"; body?: unknown } = {}): Promise<{ status: number; body: T }> {
  const { data, error, response } = await as.functions.invoke(path, { method: init.method ?? "POST", body: init.body as Record<string, unknown> });
  if (error instanceof FunctionsHttpError) return { status: error.context.status, body: await error.context.json() };
  if (error) throw error;
  return { status: response!.status, body: data as T };
}

const rowsFor = async (path: string) => (await sql`select status from public.session_media where storage_path = ${path}`).map((r) => r.status);
const objectExists = async (path: string) =>
  (await sql`select 1 from storage.objects where bucket_id = 'session-media' and name = ${path}`).length === 1;

/** Alice uploads a file through the media function, as an app does; the completed row. */
async function upload(kind: "audio" | "transcript", filename: string, contentType: string, bytes: Uint8Array | string): Promise<Media> {
  const size = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.byteLength;
  const started = await call<UploadUrl>(alice, "media/upload-url", {
    body: { session_id: SESSION, kind, filename, content_type: contentType, bytes: size },
  });
  expect(started.status).toBe(201);
  const { path, token } = started.body.upload;
  const put = await alice.storage.from("session-media").uploadToSignedUrl(path, token, new Blob([bytes as BlobPart], { type: contentType }), { contentType });
  expect(put.error).toBeNull();
  const done = await call<{ media: Media }>(alice, "media/complete", { body: { media_id: started.body.media.id } });
  expect(done.status).toBe(200);
  return done.body.media;
}

beforeAll(async () => {
  alice = await userClient("alice@example.com");
  bob = await userClient("bob@example.com");
  carol = await userClient("carol@example.com");
  service = client(stack().env.SERVICE_ROLE_KEY);
});
afterAll(() => sql.end());

describe("media", () => {
  it("Alice uploads audio and a transcript through signed upload URLs and reads them back through signed URLs", async () => {
    const started = await call<UploadUrl>(alice, "media/upload-url", {
      body: { session_id: SESSION, kind: "audio", filename: "Week 1 (check-in).wav", content_type: "audio/wav", bytes: WAV.byteLength, duration_ms: 1200 },
    });
    expect(started.status).toBe(201);
    const { media, upload: up } = started.body;
    // The seed's key convention on the server's clock, with a sanitised basename.
    expect(up.path).toMatch(new RegExp(`^u/${ALICE}/s/${SESSION}/\\d{13}/Week_1__check-in_\\.wav$`));
    expect(Math.abs(Number(up.path.split("/")[4]) - Date.now())).toBeLessThan(60_000);
    expect(media).toMatchObject({ status: "pending", kind: "audio", mime_type: "audio/wav", bytes: WAV.byteLength });
    // Valid ten minutes.
    expect(Date.parse(up.expires_at) - Date.now()).toBeGreaterThan(590_000);
    expect(Date.parse(up.expires_at) - Date.now()).toBeLessThanOrEqual(600_000);
    expect(up.signed_url).toBe(`${stack().env.API_URL}/storage/v1/object/upload/sign/session-media/${up.path}?token=${up.token}`);

    // Completing before the bytes are there is a conflict.
    expect((await call(alice, "media/complete", { body: { media_id: media.id } })).status).toBe(409);
    const put = await alice.storage.from("session-media").uploadToSignedUrl(up.path, up.token, new Blob([WAV], { type: "audio/wav" }), { contentType: "audio/wav" });
    expect(put.error).toBeNull();
    const done = await call<{ media: Media }>(alice, "media/complete", { body: { media_id: media.id } });
    expect(done.body.media).toMatchObject({ id: media.id, status: "stored", sha256: sha256(WAV), bytes: WAV.byteLength });

    const transcript = await upload("transcript", "transcript.json", "application/json", TRANSCRIPT);
    expect(transcript).toMatchObject({ status: "stored", sha256: sha256(TRANSCRIPT), mime_type: "application/json" });

    const listed = await call<{ media: Media[] }>(alice, `media?session_id=${SESSION}`, { method: "GET" });
    expect(listed.status).toBe(200);
    const byId = new Map(listed.body.media.map((m) => [m.id, m]));
    const audioUrl = byId.get(media.id)!.download_url!;
    expect(audioUrl).toMatch(/\/storage\/v1\/object\/sign\/session-media\/u\/.+\?token=/);
    expect(new Uint8Array(await (await fetch(audioUrl)).arrayBuffer())).toEqual(WAV);
    expect(await (await fetch(byId.get(transcript.id)!.download_url!)).text()).toBe(TRANSCRIPT);
    // The download token lives ten minutes.
    const claims = JSON.parse(Buffer.from(new URL(audioUrl).searchParams.get("token")!.split(".")[1], "base64url").toString());
    expect(claims.exp - claims.iat).toBe(600);
  });

  it("Bob is refused on Alice's session, and nothing is stored", async () => {
    const before = await sql`select count(*)::int as n from public.session_media`;
    const up = await call<{ errors: { field: string }[] }>(bob, "media/upload-url", {
      body: { session_id: SESSION, kind: "audio", filename: "x.wav", content_type: "audio/wav", bytes: 10 },
    });
    expect(up.status).toBe(422);
    expect(up.body.errors.map((e) => e.field)).toEqual(["session_id"]);
    const list = await call<{ errors: { field: string }[] }>(bob, `media?session_id=${SESSION}`, { method: "GET" });
    expect(list.status).toBe(422);
    expect(list.body.errors.map((e) => e.field)).toEqual(["session_id"]);
    const [{ id }] = await sql`select id from public.session_media where session_id = ${SESSION} limit 1`;
    expect((await call(bob, "media/complete", { body: { media_id: id } })).status).toBe(422);
    expect(await sql`select count(*)::int as n from public.session_media`).toEqual(before);
  });

  it("bad input names its field and stores nothing: a type, a size, a path-traversal name, an unknown field", async () => {
    const before = await sql`select count(*)::int as n from public.session_media`;
    const base = { session_id: SESSION, kind: "audio", filename: "a.wav", content_type: "audio/wav", bytes: 10 };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, content_type: "image/png" }, "content_type"],
      [{ ...base, content_type: "application/json" }, "content_type"],
      [{ ...base, bytes: 104857601 }, "bytes"],
      [{ ...base, filename: "../x" }, "filename"],
      [{ ...base, filename: "a/../../b.wav" }, "filename"],
      [{ ...base, kind: "video" }, "kind"],
      [{ ...base, session_id: "not-a-uuid" }, "session_id"],
      [{ ...base, owner: ALICE }, "owner"],
    ];
    for (const [body, field] of cases) {
      const res = await call<{ errors: { field: string }[] }>(alice, "media/upload-url", { body });
      expect([res.status, res.body.errors?.map((e) => e.field)], JSON.stringify(body)).toEqual([422, [field]]);
    }
    expect(await sql`select count(*)::int as n from public.session_media`).toEqual(before);
  });

  it("storage refuses a wrong type and an expired upload URL", async () => {
    const started = await call<UploadUrl>(alice, "media/upload-url", {
      body: { session_id: SESSION, kind: "audio", filename: "late.wav", content_type: "audio/wav", bytes: WAV.byteLength },
    });
    const { path, token } = started.body.upload;
    const wrong = await alice.storage.from("session-media").uploadToSignedUrl(path, token, new Blob([WAV]), { contentType: "image/png" });
    expect(wrong.error).toMatchObject({ statusCode: "415" });
    // The same claims, past their ten minutes.
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    const expired = await new SignJWT({ ...claims, iat: claims.iat - 700, exp: claims.exp - 700 }).setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(new TextEncoder().encode(stack().env.JWT_SECRET));
    const late = await alice.storage.from("session-media").uploadToSignedUrl(path, expired, new Blob([WAV], { type: "audio/wav" }), { contentType: "audio/wav" });
    expect(late.error).toMatchObject({ statusCode: "400", message: "\"exp\" claim timestamp check failed" });
    expect(await objectExists(path)).toBe(false);
    // An hour past its window, the pending row is abandoned when the session is next read...
    await sql`update public.session_media set upload_expires_at = now() - interval '61 minutes' where storage_path = ${path}`;
    await call(alice, `media?session_id=${SESSION}`, { method: "GET" });
    expect(await rowsFor(path)).toEqual(["abandoned"]);
    // ...and revived if its bytes arrive after all (a long upload begun in time).
    expect((await alice.storage.from("session-media").uploadToSignedUrl(path, token, new Blob([WAV], { type: "audio/wav" }), { contentType: "audio/wav" })).error).toBeNull();
    const done = await call<{ media: Media }>(alice, "media/complete", { body: { media_id: started.body.media.id } });
    expect(done.body.media).toMatchObject({ status: "stored", sha256: sha256(WAV) });
  });

  it("an object that does not fit its upload is rejected and removed by retention; a direct upload gets its row", async () => {
    const started = await call<UploadUrl>(alice, "media/upload-url", {
      body: { session_id: SESSION, kind: "transcript", filename: "notes.json", content_type: "application/json", bytes: 20 },
    });
    const { path, token } = started.body.upload;
    // The bucket takes audio, but this upload was declared a transcript (kept forever).
    expect((await alice.storage.from("session-media").uploadToSignedUrl(path, token, new Blob([WAV], { type: "audio/wav" }), { contentType: "audio/wav" })).error).toBeNull();
    const done = await call<{ errors: { field: string; message: string }[] }>(alice, "media/complete", { body: { media_id: started.body.media.id } });
    expect([done.status, done.body.errors.map((e) => e.field)]).toEqual([422, ["media_id"]]);
    expect(done.body.errors[0].message).toBe(`The uploaded object (${WAV.byteLength} bytes of audio/wav) does not fit this transcript upload`);
    // The refused request changed nothing; the next reconciliation rejects the row.
    expect(await rowsFor(path)).toEqual(["pending"]);

    const direct = `u/${ALICE}/s/${SESSION}/${Date.now()}/direct.ogg`;
    expect((await alice.storage.from("session-media").upload(direct, new Blob([WAV], { type: "audio/ogg" }))).error).toBeNull();
    const listed = await call<{ media: Media[] }>(alice, `media?session_id=${SESSION}`, { method: "GET" });
    expect(await rowsFor(path)).toEqual(["rejected"]);
    expect(listed.body.media.find((m) => m.storage_path === direct)).toMatchObject({ kind: "audio", status: "stored", mime_type: "audio/ogg", sha256: null });

    const run = await call<{ rejected: number; failed: number }>(service, "media-retention", { body: {} });
    expect(run.body).toMatchObject({ failed: 0 });
    expect(run.body.rejected).toBeGreaterThanOrEqual(1);
    expect(await objectExists(path)).toBe(false);
    expect(await objectExists(direct)).toBe(true);
  });

  it("the assigned coach reads the session's media, and the read is audited", async () => {
    const audio = await upload("audio", "coach.wav", "audio/wav", WAV);
    const [{ n: before }] = await sql`select count(*)::int as n from audit.phi_access_log where actor_id = ${CAROL} and resource = 'session_media'`;
    const listed = await call<{ media: Media[] }>(carol, `media?session_id=${SESSION}`, { method: "GET" });
    expect(listed.status).toBe(200);
    const url = listed.body.media.find((m) => m.id === audio.id)!.download_url!;
    expect(new Uint8Array(await (await fetch(url)).arrayBuffer())).toEqual(WAV);
    const log = await sql`select subject_user_id::text, row_count from audit.phi_access_log
                          where actor_id = ${CAROL} and resource = 'session_media' order by id desc`;
    expect(log.length).toBe(before + 1);
    expect(log[0]).toEqual({ subject_user_id: ALICE, row_count: listed.body.media.length });
    // The owner's own reads are not PHI access by someone else.
    const [{ n: owner }] = await sql`select count(*)::int as n from audit.phi_access_log where actor_id = ${ALICE} and resource = 'session_media'`;
    expect(owner).toBe(0);
  });

  it("an object removed through Storage shows as deleted in the session's media", async () => {
    const audio = await upload("audio", "removed.wav", "audio/wav", WAV);
    expect((await alice.storage.from("session-media").remove([audio.storage_path])).data).toHaveLength(1);
    const listed = await call<{ media: Media[] }>(alice, `media?session_id=${SESSION}`, { method: "GET" });
    expect(listed.body.media.find((m) => m.id === audio.id)).toMatchObject({ status: "deleted", download_url: null });
  });

  it("retention deletes expired audio through the Storage API, keeps the transcript, and is idempotent", async () => {
    const audio = await upload("audio", "old.wav", "audio/wav", WAV);
    const transcript = await upload("transcript", "old.json", "application/json", TRANSCRIPT);
    expect(transcript).toMatchObject({ status: "stored" });
    const [{ expires_at }] = await sql`select expires_at from public.session_media where id = ${transcript.id}`;
    expect(expires_at).toBeNull();
    // Thirty days on: the audio's window has passed.
    await sql`update public.session_media set expires_at = now() - interval '1 minute' where id = ${audio.id}`;
    const [{ version }] = await sql`select version from storage.objects where bucket_id = 'session-media' and name = ${audio.storage_path}`;
    const file = join(stack().cfg.stateDir, "storage", "session-media", version);
    expect(existsSync(file)).toBe(true);

    const run = await call<{ expired: number; failed: number; more: boolean }>(service, "media-retention", { body: {} });
    expect(run.status).toBe(200);
    expect(run.body.expired).toBeGreaterThanOrEqual(1);
    expect(run.body).toMatchObject({ failed: 0, more: false });
    expect(await objectExists(audio.storage_path)).toBe(false);
    expect(existsSync(file)).toBe(false);
    expect(await objectExists(transcript.storage_path)).toBe(true);
    expect(await rowsFor(audio.storage_path)).toEqual(["expired"]);

    const again = await call<{ expired: number }>(service, "media-retention", { body: {} });
    expect(again.body).toMatchObject({ expired: 0, failed: 0 });
    const listed = await call<{ media: Media[] }>(alice, `media?session_id=${SESSION}`, { method: "GET" });
    expect(listed.body.media.find((m) => m.id === audio.id)).toMatchObject({ status: "expired", download_url: null });
    expect(listed.body.media.find((m) => m.id === transcript.id)!.download_url).toBeTruthy();
    // Only the service role runs it.
    expect((await call(alice, "media-retention", { body: {} })).status).toBe(403);
  });

  it("storage operations are recorded for the storage panel and alert", async () => {
    const [w] = await sql.begin(async (tx) => {
      await tx`set local role coach_analyst`;
      return await tx`select uploads, operations, failures from analytics.storage_window(60)`;
    });
    expect(w.uploads).toBeGreaterThanOrEqual(5);
    expect(w.operations).toBeGreaterThanOrEqual(5);
    const ops = await sql`select distinct operation from private.storage_operations where at > now() - interval '1 hour' order by 1`;
    expect(ops.map((o) => o.operation)).toEqual(["complete", "download_urls", "retention_delete"]);
  });

  it("npm start's seed media are uploaded through the media function once, stored with their hashes", async () => {
    await seedSessionMedia(stack().cfg);
    expect(await seedSessionMedia(stack().cfg)).toBe(0);
    const rows = await sql`select kind, status, bytes::int, sha256 from public.session_media
                           where session_id = ${SESSION} and storage_path ~ '/seed-check-in[.](wav|json)$' order by kind`;
    const wav = toneWav();
    expect(rows).toEqual([
      { kind: "audio", status: "stored", bytes: wav.byteLength, sha256: sha256(wav) },
      { kind: "transcript", status: "stored", bytes: Buffer.byteLength(SEED_TRANSCRIPT), sha256: sha256(SEED_TRANSCRIPT) },
    ]);
    // A playable WAV: RIFF/WAVE with a 16-bit PCM format chunk.
    expect(Buffer.from(wav.subarray(0, 4)).toString()).toBe("RIFF");
    expect(Buffer.from(wav.subarray(8, 12)).toString()).toBe("WAVE");
  });
});
