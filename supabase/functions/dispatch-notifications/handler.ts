/**
 * `dispatch-notifications` (POST, service role only): delivers the nudge emails the
 * scheduler left in private.email_outbox. pg_cron invokes it every 5 minutes through pg_net
 * when an email is due (private.dispatch_due_emails); it can also be called by hand.
 *
 * Each round claims up to BATCH_SIZE due messages (public.claim_email_outbox: racing
 * dispatchers take different ones), sends them, and records each outcome
 * (public.record_email_delivery): sent, queued again for a later run (backoff in SQL: 1, 2,
 * 4, 8 minutes or the provider's Retry-After; failed after 5 runs), or failed.
 *
 * The provider is any HTTP email API with Resend's request shape: POST EMAIL_API_URL
 * (default https://api.resend.com/emails) with `Authorization: Bearer EMAIL_API_KEY`,
 * `Idempotency-Key: <outbox id>` (a retried send is not sent twice) and
 * {from: EMAIL_FROM, to: [address], subject, text}; a 2xx answer's `id` is kept. Within one
 * run a message is tried up to SEND_TRIES times when the provider answers 429, 408 or 5xx
 * or cannot be reached, waiting the Retry-After it names (up to MAX_WAIT_MS) or an
 * exponential backoff; another 4xx fails the message at once. Without EMAIL_API_KEY the
 * `log` provider writes each message as one JSON line to the function's log and marks it
 * sent: local development sends no mail.
 *
 * Answers 200 {provider, claimed, sent, queued, failed, gone, superseded, unrecorded}: gone,
 * erased with their user while being sent; superseded, claimed meanwhile by another
 * dispatcher after this one's lease ran out; unrecorded, sent but not recorded (logged; sent
 * again after the lease, which the Idempotency-Key makes harmless). 403 for any caller but the
 * service role; 422 for an unknown body field; 503 when EMAIL_API_KEY is set without
 * EMAIL_FROM.
 */
import { z } from "zod";
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { authenticate } from "../_shared/auth.ts";
import { withServiceRole } from "../_shared/db.ts";
import { optionalEnv } from "../_shared/env.ts";
import { parseOrThrow, readJson } from "../_shared/validate.ts";

/** Messages claimed per round. */
export const BATCH_SIZE = 20;
/** Tries of one message within one run. */
export const SEND_TRIES = 3;
/** First backoff between tries; doubles each time. */
export const BACKOFF_MS = 250;
/** Longest wait for a Retry-After within a run; a longer one is left to a later run. */
export const MAX_WAIT_MS = 2_000;
/** Longest Retry-After taken from a provider; a longer one waits this long. */
export const MAX_RETRY_AFTER_S = 86_400;
/** One HTTP call to the provider. */
export const SEND_TIMEOUT_MS = 10_000;
/** A run stops claiming new rounds after this long. */
export const RUN_BUDGET_MS = 20_000;
/** Resend's endpoint, the default EMAIL_API_URL. */
export const DEFAULT_EMAIL_API_URL = "https://api.resend.com/emails";

const BodySchema = z.object({ source: z.string().max(100).optional() }).strict();

/** A claimed message. */
export interface Outgoing {
  id: string;
  to_email: string;
  subject: string;
  text_body: string;
  attempts: number;
}

/** What a provider made of one message. */
export type Delivery =
  | { outcome: "sent"; messageId: string | null }
  | { outcome: "retry"; error: string; retryAfterSeconds: number | null }
  | { outcome: "failed"; error: string };

/** An email provider. */
export interface EmailProvider {
  name: string;
  send(msg: Outgoing): Promise<Delivery>;
}

/** The provider without a key: one JSON line per message, marked sent. */
export const logProvider: EmailProvider = {
  name: "log",
  send(msg) {
    console.log(JSON.stringify({
      level: "info", msg: "email (log provider: not sent)", outbox_id: msg.id, to: msg.to_email, subject: msg.subject, text: msg.text_body,
    }));
    return Promise.resolve({ outcome: "sent", messageId: null });
  },
};

/** Seconds named by a Retry-After header (delta-seconds or an HTTP date), or null. */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Resend-compatible HTTP provider. */
export function httpProvider(url: string, key: string, from: string): EmailProvider {
  return {
    name: new URL(url).host,
    async send(msg) {
      let last: Delivery = { outcome: "retry", error: "not tried", retryAfterSeconds: null };
      for (let attempt = 1; attempt <= SEND_TRIES; attempt++) {
        let wait = BACKOFF_MS * 2 ** (attempt - 1);
        try {
          const res = await fetch(url, {
            method: "POST",
            headers: { "Authorization": `Bearer ${key}`, "Content-Type": "application/json", "Idempotency-Key": msg.id },
            body: JSON.stringify({ from, to: [msg.to_email], subject: msg.subject, text: msg.text_body }),
            signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
          });
          const text = await res.text();
          if (res.ok) {
            let id: unknown = null;
            try {
              id = JSON.parse(text)?.id ?? null;
            } catch { /* a 2xx without JSON is still sent */ }
            return { outcome: "sent", messageId: typeof id === "string" ? id : null };
          }
          const error = `${res.status} ${text.slice(0, 300)}`.trim();
          if (res.status !== 429 && res.status !== 408 && res.status < 500) return { outcome: "failed", error };
          const named = retryAfterSeconds(res.headers.get("retry-after"));
          const after = named === null ? null : Math.min(named, MAX_RETRY_AFTER_S);
          last = { outcome: "retry", error, retryAfterSeconds: after };
          if (after !== null) {
            if (after * 1000 > MAX_WAIT_MS) return last;
            wait = after * 1000;
          }
        } catch (err) {
          last = { outcome: "retry", error: err instanceof Error ? `${err.name}: ${err.message}` : String(err), retryAfterSeconds: null };
        }
        if (attempt < SEND_TRIES) await sleep(wait);
      }
      return last;
    },
  };
}

/** The provider the environment configures. */
export function configuredProvider(): EmailProvider {
  const key = optionalEnv("EMAIL_API_KEY");
  if (!key) return logProvider;
  const from = optionalEnv("EMAIL_FROM");
  if (!from) throw new HttpError(503, "Service Unavailable", "EMAIL_API_KEY is set but EMAIL_FROM is not: no sender to send from.");
  return httpProvider(optionalEnv("EMAIL_API_URL") ?? DEFAULT_EMAIL_API_URL, key, from);
}

/** Handles POST /functions/v1/dispatch-notifications. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async (ctx) => {
    allowMethods(req, "POST");
    const claims = await authenticate(req);
    if (claims.role !== "service_role") {
      throw new HttpError(403, "Forbidden", "Only the service role can dispatch notifications.");
    }
    const raw = req.headers.get("content-length") === "0" || !req.body ? {} : await readJson(req, 1024);
    parseOrThrow(BodySchema, raw);
    const provider = configuredProvider();
    const counts = { claimed: 0, sent: 0, queued: 0, failed: 0, gone: 0, superseded: 0, unrecorded: 0 };
    const until = Date.now() + RUN_BUDGET_MS;
    while (Date.now() < until) {
      const batch = await ctx.timing.measure("db", () =>
        withServiceRole((tx) => tx<Outgoing[]>`select * from public.claim_email_outbox(${BATCH_SIZE})`, { traceId: ctx.traceId })
      );
      counts.claimed += batch.length;
      const results = await ctx.timing.measure("send", () => Promise.all(batch.map((m) => provider.send(m))));
      // One transaction per outcome: a message erased meanwhile (404) or a record that
      // fails must not cost the others theirs (they would be sent again when their lease
      // ends). An unrecorded message is claimed again after its lease, and the provider
      // drops the repeat by its Idempotency-Key.
      for (const [i, r] of results.entries()) {
        try {
          const [{ status }] = await ctx.timing.measure("db", () =>
            withServiceRole((tx) => tx<{ status: "sent" | "queued" | "failed" | "sending" }[]>`
              select public.record_email_delivery(
                ${batch[i].id}::uuid, ${r.outcome}, ${provider.name},
                ${r.outcome === "sent" ? r.messageId : null},
                ${r.outcome === "sent" ? null : r.error},
                ${r.outcome === "retry" ? r.retryAfterSeconds : null},
                ${batch[i].attempts}::integer) as status`, { traceId: ctx.traceId })
          );
          if (status === "sending") counts.superseded++;
          else counts[status]++;
        } catch (err) {
          if (err instanceof HttpError && err.status === 404) {
            counts.gone++;
            continue;
          }
          counts.unrecorded++;
          console.error(JSON.stringify({
            level: "error", msg: "could not record an email's delivery", outbox_id: batch[i].id, outcome: r.outcome,
            error: err instanceof Error ? err.message : String(err),
          }));
        }
      }
      if (batch.length < BATCH_SIZE) break;
    }
    return json({ provider: provider.name, ...counts });
  });
}
