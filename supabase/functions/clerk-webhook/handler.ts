/**
 * `clerk-webhook` (POST): provisions Coach Ledger users for Clerk, when Clerk is a
 * third-party Auth provider (config.toml [auth.third_party.clerk]). Clerk sends its
 * webhooks through Svix; the signature (svix-id, svix-timestamp, svix-signature over the
 * raw body, HMAC-SHA256 with CLERK_WEBHOOK_SIGNING_SECRET, five minutes' tolerance) is
 * checked with the `svix` library before anything is read. verify_jwt is off: Clerk sends
 * no Supabase token.
 *
 * - `user.created`: a Coach Ledger user for the Clerk user (through Auth's admin API, so
 *   the profile trigger runs: display name from first and last name), then the mapping
 *   (issuer, Clerk user id) -> user in private.external_identities. When the primary
 *   email already belongs to a Coach Ledger user and Clerk has verified it, the Clerk user
 *   is linked to that user (as Supabase Auth links a verified OAuth identity by email),
 *   provided that user's own address is confirmed and no other Clerk user holds it (409
 *   otherwise); an unverified one is refused (422). A replay finds the mapping and
 *   changes nothing; a failed link removes the user it made.
 * - `user.deleted`: the mapped user is deleted through Auth's admin API (their data goes
 *   with them, as for any deleted user) when this webhook made them; a user who existed
 *   before and was linked keeps their account and loses the link; unknown: nothing to do.
 * - Any other event type: 200 `{ignored: <type>}`, so Clerk does not retry it.
 *
 * Answers 200 `{user_id, outcome}` (created, linked, replayed, deleted, unlinked, absent); 400 for a
 * missing or bad signature (nothing is done); 422 for a body that is not a Clerk event.
 */
import { Webhook, WebhookVerificationError } from "svix";
import { z } from "zod";
import { allowMethods, HttpError, json, respond } from "../_shared/http.ts";
import { clerkIssuer } from "../_shared/auth.ts";
import { db, externalUser, withServiceRole } from "../_shared/db.ts";
import { requireEnv } from "../_shared/env.ts";
import { parseOrThrow } from "../_shared/validate.ts";

const email = z.object({
  id: z.string(),
  email_address: z.string(),
  verification: z.object({ status: z.string() }).nullish(),
});

const createdUser = z.object({
  id: z.string().min(1).max(255),
  email_addresses: z.array(email).default([]),
  primary_email_address_id: z.string().nullish(),
  first_name: z.string().nullish(),
  last_name: z.string().nullish(),
});

const event = z.discriminatedUnion("type", [
  z.object({ type: z.literal("user.created"), data: createdUser }),
  z.object({
    type: z.literal("user.deleted"),
    data: z.object({ id: z.string().min(1).max(255).optional(), deleted: z.boolean().optional() }),
  }),
]);

/** Calls Auth's admin API with the service role key. */
async function authAdmin(path: string, init: RequestInit): Promise<Response> {
  const key = requireEnv("SUPABASE_SERVICE_ROLE_KEY");
  return await fetch(`${requireEnv("SUPABASE_URL").replace(/\/+$/, "")}/auth/v1/admin/${path}`, {
    ...init,
    headers: { apikey: key, authorization: `Bearer ${key}`, "content-type": "application/json", "x-supabase-api-version": "2024-01-01", ...init.headers },
    signal: AbortSignal.timeout(10_000),
  });
}

/** Fails the delivery (Clerk retries) when Auth did not do what was asked. */
async function authFailed(res: Response, what: string): Promise<never> {
  const body = await res.text();
  throw new HttpError(502, "Bad Gateway", `Auth refused to ${what}: ${res.status} ${body.slice(0, 200)}`);
}

async function userCreated(issuer: string, data: z.infer<typeof createdUser>): Promise<Response> {
  const existing = await externalUser(issuer, data.id);
  if (existing) return json({ user_id: existing.id, outcome: "replayed" });
  const primary = data.email_addresses.find((e) => e.id === data.primary_email_address_id) ?? data.email_addresses[0];
  if (!primary) throw new HttpError(422, "Unprocessable Content", "The Clerk user has no email address.", { errors: [{ field: "data.email_addresses", message: "at least one email address is required" }] });
  const verified = primary.verification?.status === "verified";
  const fullName = [data.first_name, data.last_name].filter((n) => n).join(" ") || undefined;
  const res = await authAdmin("users", {
    method: "POST",
    body: JSON.stringify({
      email: primary.email_address,
      email_confirm: verified,
      user_metadata: { ...(fullName ? { full_name: fullName } : {}), clerk_user_id: data.id },
    }),
  });
  let userId: string;
  let outcome: "created" | "linked" = "created";
  if (res.ok) {
    userId = ((await res.json()) as { id: string }).id;
  } else {
    const problem = await res.clone().json().catch(() => ({})) as { code?: unknown; error_code?: unknown };
    const code = typeof problem.code === "string" ? problem.code : problem.error_code;
    if (code !== "email_exists") return await authFailed(res, "create the user");
    if (!verified) {
      throw new HttpError(422, "Unprocessable Content", "The email belongs to an existing user and Clerk has not verified it, so the Clerk user is not linked to that user.", {
        errors: [{ field: "data.email_addresses", message: "unverified email of an existing user" }],
      });
    }
    // Only an account whose own address is confirmed, and that no Clerk user of this issuer
    // has claimed yet, is linked: otherwise whoever registered the address first would get
    // the verified Clerk user's data.
    const [row] = await db()<{ id: string }[]>`
      select u.id from auth.users as u
       where lower(u.email) = lower(${primary.email_address}) and u.is_sso_user = false and u.deleted_at is null
         and u.email_confirmed_at is not null
         and not exists (select 1 from private.external_identities as e where e.user_id = u.id and e.issuer = ${issuer})`;
    if (!row) {
      throw new HttpError(409, "Conflict", "The email belongs to an account that cannot be linked (unconfirmed, or already linked to another Clerk user).", {
        errors: [{ field: "data.email_addresses", message: "email of an account that cannot be linked" }],
      });
    }
    userId = row.id;
    outcome = "linked";
  }
  let linked: string;
  try {
    [{ linked }] = await withServiceRole((tx) =>
      tx<{ linked: string }[]>`select public.link_external_identity(${issuer}, ${data.id}, ${userId}) as linked`
    );
  } catch (err) {
    // Never leave a user made here without its mapping: the retry would find the email taken.
    if (outcome === "created") await authAdmin(`users/${userId}`, { method: "DELETE", body: "{}" });
    throw err;
  }
  if (linked !== userId && outcome === "created") {
    // A concurrent delivery linked another user first: remove the one made here.
    await authAdmin(`users/${userId}`, { method: "DELETE", body: "{}" });
    return json({ user_id: linked, outcome: "replayed" });
  }
  return json({ user_id: linked, outcome });
}

async function userDeleted(issuer: string, subject: string | undefined): Promise<Response> {
  const userId = subject ? (await externalUser(issuer, subject))?.id ?? null : null;
  if (!userId) return json({ user_id: null, outcome: "absent" });
  // An account that existed before Clerk and was linked to it keeps living: only the link goes.
  const [made] = await db()<{ made: boolean }[]>`
    select coalesce(raw_user_meta_data ->> 'clerk_user_id' = ${subject!}, false) as made from auth.users where id = ${userId}`;
  if (made && !made.made) {
    await db()`delete from private.external_identities where issuer = ${issuer} and subject = ${subject!}`;
    return json({ user_id: userId, outcome: "unlinked" });
  }
  const res = await authAdmin(`users/${userId}`, { method: "DELETE", body: JSON.stringify({ should_soft_delete: false }) });
  if (!res.ok && res.status !== 404) return await authFailed(res, "delete the user");
  return json({ user_id: userId, outcome: "deleted" });
}

/** Handles POST /functions/v1/clerk-webhook. */
export function handler(req: Request): Promise<Response> {
  return respond(req, async () => {
    allowMethods(req, "POST");
    const issuer = clerkIssuer();
    if (!issuer) throw new HttpError(503, "Service Unavailable", "Clerk is not configured (CLERK_ISSUER is not set).");
    const payload = await req.text();
    try {
      new Webhook(requireEnv("CLERK_WEBHOOK_SIGNING_SECRET")).verify(payload, {
        "svix-id": req.headers.get("svix-id") ?? "",
        "svix-timestamp": req.headers.get("svix-timestamp") ?? "",
        "svix-signature": req.headers.get("svix-signature") ?? "",
      });
    } catch (err) {
      if (err instanceof WebhookVerificationError) throw new HttpError(400, "Bad Request", `The webhook signature is not valid: ${err.message}.`);
      throw err;
    }
    let body: unknown;
    try {
      body = JSON.parse(payload);
    } catch {
      throw new HttpError(422, "Unprocessable Content", "The webhook body is not JSON.");
    }
    const type = (body as { type?: unknown })?.type;
    if (type !== "user.created" && type !== "user.deleted") return json({ ignored: typeof type === "string" ? type : null });
    const e = parseOrThrow(event, body, "webhook event");
    return e.type === "user.created" ? await userCreated(issuer, e.data) : await userDeleted(issuer, e.data.id);
  });
}
