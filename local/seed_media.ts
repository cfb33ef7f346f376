/**
 * Seed media for the local stack (issue 12): `npm start` and `npm run local -- reset` give
 * Alice's seeded session a short recording and its transcript, uploaded the way an app
 * uploads them (the media function's signed upload URL, Storage, then complete), so the
 * media routes, signed URLs and the storage panel show data. supabase/seed.sql cannot do
 * this: the bytes live in Storage, not in the database. Idempotent: a session that already
 * has the seed files is left alone.
 */
import { type StackConfig, mintToken } from "./stack.ts";

/** Alice's seeded session (supabase/seed.sql). */
export const SEED_SESSION = "a11ce000-5e55-4000-8000-000000000001";

/** A mono 16-bit PCM WAV of `ms` milliseconds: a 440 Hz tone at 8 kHz. */
export function toneWav(ms = 500, rate = 8000): Uint8Array<ArrayBuffer> {
  const samples = Math.round((rate * ms) / 1000);
  const buf = Buffer.alloc(44 + samples * 2);
  buf.write("RIFF", 0, "ascii");
  buf.writeUInt32LE(36 + samples * 2, 4);
  buf.write("WAVEfmt ", 8, "ascii");
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28); // byte rate
  buf.writeUInt16LE(2, 32); // block align
  buf.writeUInt16LE(16, 34); // bits per sample
  buf.write("data", 36, "ascii");
  buf.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) buf.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  return new Uint8Array(buf);
}

/** The seed transcript of the recording. */
export const SEED_TRANSCRIPT = JSON.stringify({
  language: "en",
  segments: [
    { start_ms: 0, end_ms: 250, speaker: "client", text: "I keep putting off the first step of my plan." },
    { start_ms: 250, end_ms: 500, speaker: "coach", text: "What would make that first step small enough to start today?" },
  ],
});

/**
 * Uploads the seed recording and transcript to Alice's session through the media function,
 * unless they are there already; returns how many files it uploaded.
 */
export async function seedSessionMedia(cfg: StackConfig): Promise<number> {
  const api = `http://127.0.0.1:${cfg.apiPort}`;
  const token = await mintToken(cfg, { email: "alice@example.com" });
  const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const listed = await fetch(`${api}/functions/v1/media?session_id=${SEED_SESSION}`, { headers });
  if (!listed.ok) throw new Error(`GET /media answered ${listed.status}: ${await listed.text()}`);
  const names = new Set(((await listed.json()) as { media: { storage_path: string; status: string }[] }).media
    .filter((m) => m.status === "stored").map((m) => m.storage_path.split("/").pop()));
  const files = [
    { kind: "audio", filename: "seed-check-in.wav", content_type: "audio/wav", bytes: toneWav(), duration_ms: 500 },
    { kind: "transcript", filename: "seed-check-in.json", content_type: "application/json", bytes: new TextEncoder().encode(SEED_TRANSCRIPT) },
  ];
  let uploaded = 0;
  for (const f of files) {
    if (names.has(f.filename)) continue;
    const started = await fetch(`${api}/functions/v1/media/upload-url`, {
      method: "POST", headers,
      body: JSON.stringify({ session_id: SEED_SESSION, kind: f.kind, filename: f.filename, content_type: f.content_type, bytes: f.bytes.byteLength,
                             ...(f.duration_ms ? { duration_ms: f.duration_ms } : {}) }),
    });
    if (started.status !== 201) throw new Error(`POST /media/upload-url answered ${started.status}: ${await started.text()}`);
    const { media, upload } = await started.json() as { media: { id: string }; upload: { signed_url: string } };
    const put = await fetch(upload.signed_url, { method: "PUT", headers: { "Content-Type": f.content_type }, body: f.bytes });
    if (!put.ok) throw new Error(`PUT to the signed upload URL answered ${put.status}: ${await put.text()}`);
    const done = await fetch(`${api}/functions/v1/media/complete`, { method: "POST", headers, body: JSON.stringify({ media_id: media.id }) });
    if (!done.ok) throw new Error(`POST /media/complete answered ${done.status}: ${await done.text()}`);
    uploaded++;
  }
  return uploaded;
}
