/** Request validation with zod: a failed parse becomes a 422 listing every bad field. */
import type { z } from "zod";
import { type FieldError, HttpError } from "./http.ts";

/** The field errors of a zod error: unknown keys each become their own error. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ field: base ? `${base}.${key}` : key, message: "Unknown field" });
    } else {
      out.push({ field: base || "(body)", message: issue.message });
    }
  }
  return out;
}

/** The 422 Unprocessable Content naming every invalid field of the request body or query string. */
export function invalidFields(errors: FieldError[], what = "request body"): HttpError {
  return new HttpError(422, "Unprocessable Content", `The ${what} has invalid fields: ${errors.map((e) => e.field).join(", ")}.`, { errors });
}

/** Parses data with schema or throws 422 Unprocessable Content with the field errors. */
export function parseOrThrow<T extends z.ZodType>(schema: T, data: unknown, what = "request body"): z.infer<T> {
  const result = schema.safeParse(data);
  if (!result.success) throw invalidFields(fieldErrors(result.error), what);
  return result.data;
}

/** An idempotency key: 1 to 128 letters, digits or . _ : - (the header's and request_id's rule). */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;
/** The message for a malformed idempotency key. */
export const IDEMPOTENCY_KEY_RULE = "Use 1 to 128 letters, digits or . _ : -";

/**
 * The write's idempotency key: the body's request_id or the Idempotency-Key header, which
 * must agree. Adds a field error to `errors` for a malformed header or a mismatch.
 */
export function idempotencyKeyOf(req: Request, bodyKey: string | undefined, errors: FieldError[]): string | undefined {
  const header = req.headers.get("idempotency-key");
  if (header !== null && !IDEMPOTENCY_KEY.test(header)) {
    errors.push({ field: "Idempotency-Key", message: IDEMPOTENCY_KEY_RULE });
  } else if (header !== null && bodyKey !== undefined && header !== bodyKey) {
    errors.push({ field: "request_id", message: "Differs from the Idempotency-Key header" });
  }
  return bodyKey ?? header ?? undefined;
}

/**
 * The rules of a write made for a user: the service role and ingest tokens (service) must
 * name user_id; only they may backdate created_at. The field errors, if any.
 */
export function writerFieldErrors(body: { user_id?: string; created_at?: string }, service: boolean): FieldError[] {
  const errors: FieldError[] = [];
  if (body.user_id === undefined && service) {
    errors.push({ field: "user_id", message: "Required for the service role and ingest tokens" });
  }
  if (body.created_at !== undefined && !service) {
    errors.push({ field: "created_at", message: "Only the service role or an ingest token may set created_at" });
  }
  return errors;
}

/** The query string as an object (the last value of a repeated name), for a strict schema. */
export function queryOf(req: Request): Record<string, string> {
  return Object.fromEntries(new URL(req.url).searchParams);
}

/**
 * Reads a JSON body of at most maxBytes: 413 when larger, 400 when it is not JSON, 422 when
 * it holds what Postgres cannot store (unstorable), unless the caller checks that itself
 * (`checkStorable: false`, a batch checking item by item).
 */
export async function readJson(req: Request, maxBytes: number, opts: { checkStorable?: boolean } = {}): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (declared > maxBytes) {
    throw new HttpError(413, "Content Too Large", `The body is larger than ${maxBytes} bytes.`);
  }
  const reader = req.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (reader) {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw new HttpError(413, "Content Too Large", `The body is larger than ${maxBytes} bytes.`);
      }
      chunks.push(value);
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(concat(chunks, size));
  } catch {
    throw new HttpError(400, "Bad Request", "The body is not valid UTF-8.");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, "Bad Request", "The body is not valid JSON.");
  }
  const errors = opts.checkStorable === false ? [] : unstorable(value);
  if (errors.length) {
    throw new HttpError(422, "Unprocessable Content", `The request body has invalid fields: ${errors.map((e) => e.field).join(", ")}.`, { errors });
  }
  return value;
}

/** Deepest nesting of a request body the functions read (PostgREST's stand-in refuses deeper too). */
export const MAX_JSON_DEPTH = 512;

/**
 * What JSON can say but Postgres cannot store, found without recursion: nesting deeper than
 * MAX_JSON_DEPTH (Postgres's JSON parser would run out of stack), the NUL character (jsonb
 * and text refuse \u0000), unpaired UTF-16 surrogates (not Unicode) and numbers beyond a
 * 64-bit float (JSON.parse reads 1e400 as Infinity, which would be sent on as null). Each is
 * a field error.
 */
export function unstorable(value: unknown): FieldError[] {
  const errors: FieldError[] = [];
  const stack: [unknown, string, number][] = [[value, "", 1]];
  while (stack.length > 0 && errors.length < 20) {
    const [v, path, depth] = stack.pop()!;
    const field = path || "(body)";
    if (typeof v === "string") {
      if (v.includes("\u0000")) errors.push({ field, message: "Contains a NUL character (\\u0000), which cannot be stored" });
      else if (!v.isWellFormed()) errors.push({ field, message: "Contains an unpaired surrogate: not valid Unicode" });
    } else if (typeof v === "number" && !Number.isFinite(v)) {
      errors.push({ field, message: "A number too large to store (beyond a 64-bit float)" });
    } else if (v !== null && typeof v === "object") {
      if (depth > MAX_JSON_DEPTH) {
        errors.push({ field, message: `Nested deeper than ${MAX_JSON_DEPTH} levels` });
        continue;
      }
      for (const [k, child] of Object.entries(v)) {
        if (k.includes("\u0000") || !k.isWellFormed()) errors.push({ field: path ? `${path}.${k}` : k, message: "The key is not storable text" });
        stack.push([child, path ? `${path}.${k}` : k, depth + 1]);
      }
    }
  }
  return errors;
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
