/**
 * `audit-checkpoint`: anchors the PHI access log's hash chain outside the database.
 * POST (service role only): reads the chain head (the last row's position and hash), signs
 * it as a compact JWS with AUDIT_SIGNING_KEY (a private Ed25519 JWK that only the
 * functions' environment holds, never the database), exports it to
 * AUDIT_CHECKPOINT_SINK_URL (an append-only store outside the database owner's reach: a
 * POST of {jws, seq, hash} that must answer 2xx) when set, records it in
 * audit.phi_access_checkpoints, and returns it (201). Run it on a schedule; keep the
 * exported checkpoints. GET /audit-checkpoint/jwks: the public key, for verifiers
 * (npm run audit:verify). 503 when no signing key is configured; 502 when the sink refuses.
 */
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate } from "../_shared/auth.ts";
import { withServiceRole } from "../_shared/db.ts";
import { optionalEnv } from "../_shared/env.ts";
import { GENESIS, signCheckpoint, signingKey } from "../_shared/audit_chain.ts";

const SINK_TIMEOUT_MS = 10_000;

async function configuredKey() {
  const jwk = optionalEnv("AUDIT_SIGNING_KEY");
  if (!jwk) {
    throw new HttpError(503, "Service Unavailable", "No audit signing key is configured (AUDIT_SIGNING_KEY).");
  }
  try {
    return await signingKey(jwk);
  } catch (err) {
    console.error(JSON.stringify({ level: "error", msg: "AUDIT_SIGNING_KEY is unusable", error: String(err) }));
    throw new HttpError(503, "Service Unavailable", "The audit signing key is not usable; see the function's log.");
  }
}

async function exportToSink(sink: string, body: Record<string, unknown>): Promise<void> {
  let res: Response;
  try {
    res = await fetch(sink, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(SINK_TIMEOUT_MS),
    });
    await res.body?.cancel();
  } catch (err) {
    throw new HttpError(502, "Bad Gateway", `The checkpoint sink could not be reached (${err instanceof Error ? err.name : "error"}); nothing was recorded.`);
  }
  if (!res.ok) {
    throw new HttpError(502, "Bad Gateway", `The checkpoint sink answered ${res.status}; nothing was recorded.`);
  }
}

/** Handles /functions/v1/audit-checkpoint (POST) and /functions/v1/audit-checkpoint/jwks (GET). */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    const path = new URL(req.url).pathname.replace(/\/+$/, "");
    if (path.endsWith("/jwks")) {
      allowMethods(req, "GET");
      const { publicJwk } = await configuredKey();
      return json({ keys: [publicJwk] }, 200, { "Cache-Control": "public, max-age=300" });
    }
    allowMethods(req, "POST");
    const claims = await authenticate(req);
    if (claims.role !== "service_role") {
      throw new HttpError(403, "Forbidden", "Only the service role can create audit checkpoints.");
    }
    const { key, kid } = await configuredKey();
    const [head] = await ctx.timing.measure("db", () => withServiceRole((tx) => tx`
      select chain_seq::text as seq, row_hash as hash from audit.phi_access_log order by chain_seq desc limit 1`));
    const checkpoint = {
      seq: head ? Number(head.seq) : 0,
      hash: head ? String(head.hash) : GENESIS,
      iat: Math.floor(Date.now() / 1000),
      iss: optionalEnv("SUPABASE_URL") ?? "coach-ledger",
    };
    const jws = await signCheckpoint(checkpoint, key, kid);
    const sink = optionalEnv("AUDIT_CHECKPOINT_SINK_URL") ?? null;
    if (sink) await ctx.timing.measure("sink", () => exportToSink(sink, { jws, seq: checkpoint.seq, hash: checkpoint.hash }));
    const [row] = await ctx.timing.measure("db", () => withServiceRole((tx) => tx`
      insert into audit.phi_access_checkpoints (chain_seq, head_hash, signed_at, key_id, jws, sink)
      values (${checkpoint.seq}, ${checkpoint.hash}, to_timestamp(${checkpoint.iat}), ${kid}, ${jws}, ${sink})
      returning id::text, chain_seq::text, head_hash, signed_at, key_id, jws, sink`, { traceId: ctx.traceId }));
    return json({
      id: Number(row.id), chain_seq: Number(row.chain_seq), head_hash: row.head_hash, signed_at: row.signed_at,
      key_id: row.key_id, jws: row.jws, sink: row.sink,
    }, 201);
  });
}
