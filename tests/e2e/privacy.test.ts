/**
 * Privacy operations end to end (issue 16) with supabase-js: a new user's export compared
 * field by field with what they wrote; retention at a fixed clock for a held and an unheld
 * user, seen through their exports; erasure through the Auth admin API refused under a hold;
 * media in the export through signed URLs;
 * erase_user through the Data API: nothing personal left to export, media deleted through the
 * Storage API, and the person's share of the rollups the same before and after, and after a
 * recompute, under a pseudonym.
 */
import postgres from "postgres";
import { createClient } from "@supabase/supabase-js";
import { afterAll, describe, expect, it } from "vitest";
import { client, stack, type Client } from "../helpers.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
afterAll(() => sql.end());

const service = () => client(stack().env.SERVICE_ROLE_KEY);

/** Signs up a new user through Auth; returns their id and a client acting as them. */
async function newUser(fullName: string): Promise<{ id: string; email: string; me: Client }> {
  const email = `privacy-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const anon = createClient(stack().env.API_URL, stack().env.ANON_KEY, { auth: { persistSession: false, autoRefreshToken: false } });
  const { data, error } = await anon.auth.signUp({ email, password: "correct-horse", options: { data: { full_name: fullName } } });
  expect(error).toBeNull();
  return { id: data.user!.id, email, me: client(stack().env.ANON_KEY, data.session!.access_token) };
}

/** The export-my-data document, as an app fetches it. */
async function exportOf(c: Client, userId?: string): Promise<Record<string, unknown> & { [section: string]: unknown }> {
  const { data, error } = await c.functions.invoke(`export-my-data${userId ? `?user_id=${userId}` : ""}`, { method: "GET" });
  expect(error).toBeNull();
  expect(data.complete).toBe(true);
  return data;
}

describe("export-my-data", () => {
  it("returns what a new user wrote, field by field", async () => {
    const { id, email, me } = await newUser("Pat Privacy");
    const profile = await me.rpc("update_my_profile", { display_name: "Pat", timezone: "Europe/Berlin", preferences: { reminders: "evening" } });
    expect(profile.error).toBeNull();

    const conversation = crypto.randomUUID();
    const written = [];
    for (const [n, body] of [
      { sender: "user", conversation_id: conversation, content: { text: "I slept six hours again." }, sentiment: -0.4, metadata: { device: "ios" } },
      { sender: "user", conversation_id: conversation, content: { text: "Walked after dinner.", mood: "better" }, channel: "jitai" },
    ].entries()) {
      const res = await me.functions.invoke("log-interaction", { body, headers: { "Idempotency-Key": `privacy-${conversation}-${n}` } });
      expect(res.error).toBeNull();
      written.push(res.data);
    }
    const rating = await me.functions.invoke("events", { body: { kind: "rating", score: 5, interaction_id: written[1].id, category: "helpful" } });
    expect(rating.error).toBeNull();
    const session = await me.rpc("start_coaching_session", { session_type: "self_coaching", theme: "Sleep" });
    expect(session.error).toBeNull();
    const stage1 = { presence_level: 6, emotional_state: "tired", previous_actions: ["no screens after ten"], readiness_score: 7 };
    expect((await me.rpc("save_stage_response", { session_id: session.data!.id, stage_number: 1, responses: stage1 })).error).toBeNull();

    const doc = await exportOf(me);
    expect(doc.user_id).toBe(id);
    expect(doc.profile).toMatchObject({
      account: { email, user_metadata: expect.objectContaining({ full_name: "Pat Privacy" }) },
      profile: { ...profile.data, id, display_name: "Pat", timezone: "Europe/Berlin", preferences: { reminders: "evening" } },
    });
    // Each interaction and the event exactly as the functions answered when they stored them.
    expect(doc.interactions).toEqual(written);
    expect(doc.events).toEqual([rating.data]);
    const sessions = doc.sessions as { id: string; theme: string; stages: { stage_number: number; responses: unknown }[] }[];
    expect(sessions.map((s) => [s.id, s.theme])).toEqual([[session.data!.id, "Sleep"]]);
    expect(sessions[0].stages.map((s) => [s.stage_number, s.responses])).toEqual([[1, stage1]]);
    expect(doc.identities).toEqual([expect.objectContaining({ provider: "email", identity_data: expect.objectContaining({ email }) })]);
    for (const empty of ["coach_assignments", "action_plans", "assessments", "applications", "opportunities", "media", "notifications", "emails", "tenant_memberships", "data_access"]) {
      expect(doc[empty], empty).toEqual([]);
    }

    // Another user cannot have it; the service role can, and both exports are on record.
    const stranger = await newUser("Sam Stranger");
    const refused = await stranger.me.functions.invoke(`export-my-data?user_id=${id}`, { method: "GET" });
    expect((refused.error as { context: Response }).context.status).toBe(403);
    expect((await exportOf(service(), id)).interactions).toEqual(written);
    // The Data API does not serve the export's SQL: an unrecorded export is not possible.
    const direct = await me.rpc("export_user_data" as never);
    expect(direct.error).toMatchObject({ code: "PGRST202" });
    const log = await sql`select actor_id, actor_role from audit.privacy_log where operation = 'data_exported' and subject_user_id = ${id} order by id`;
    expect(log.map((r) => ({ ...r }))).toEqual([{ actor_id: id, actor_role: "authenticated" }, { actor_id: null, actor_role: "service_role" }]);
  });
});

describe("retention and legal holds", () => {
  it("strips what is past its window except under a hold, keeps the metrics' fields, and refuses to erase a held user", async () => {
    const held = await newUser("Hal Held");
    const free = await newUser("Fay Free");
    // An AI backend logged a reply to each three years ago (the service role may set created_at).
    for (const user of [held, free]) {
      const res = await service().functions.invoke("log-interaction", {
        body: { sender: "ai_coach", user_id: user.id, content: { text: `Old advice for ${user.email}` }, metadata: { topic: "sleep" },
                model: "gpt-4o-mini", prompt_tokens: 700, completion_tokens: 50, latency_ms: 800,
                created_at: new Date(Date.now() - 3 * 365 * 86_400_000).toISOString() },
      });
      expect(res.error).toBeNull();
    }
    const hold = await service().rpc("place_legal_hold", { user_id: held.id, reason: "Litigation hold (e2e)" });
    expect(hold.error).toBeNull();

    await sql`select private.run_retention()`;
    const [heldDoc, freeDoc] = [await exportOf(held.me), await exportOf(free.me)];
    const [heldRow] = heldDoc.interactions as Record<string, unknown>[];
    const [freeRow] = freeDoc.interactions as Record<string, unknown>[];
    expect(heldRow).toMatchObject({ content: { text: `Old advice for ${held.email}` }, metadata: { topic: "sleep" }, content_removed_at: null });
    expect(freeRow).toMatchObject({ content: { text: "" }, metadata: {}, model: "gpt-4o-mini", prompt_tokens: 700, completion_tokens: 50, latency_ms: 800 });
    expect(Date.parse(freeRow.content_removed_at as string)).toBeGreaterThan(Date.now() - 60_000);

    // Erasure through Auth's admin API is refused while the hold applies, and works after.
    const admin = createClient(stack().env.API_URL, stack().env.SERVICE_ROLE_KEY, { auth: { persistSession: false, autoRefreshToken: false } }).auth.admin;
    const refused = await admin.deleteUser(held.id);
    // GoTrue answers 500 "Database error deleting user"; auth-js reports a 5xx as AuthRetryableFetchError.
    expect(refused.error).toMatchObject({ name: "AuthRetryableFetchError", status: 500, message: "Database error deleting user" });
    expect(await sql`select 1 from auth.users where id = ${held.id}`).toHaveLength(1);

    const released = await service().rpc("release_legal_hold", { hold_id: hold.data!.id, reason: "Case closed (e2e)" });
    expect(released.error).toBeNull();
    await sql`select private.run_retention()`;
    expect(((await exportOf(held.me)).interactions as Record<string, unknown>[])[0]).toMatchObject({ content: { text: "" }, metadata: {} });
    expect((await admin.deleteUser(held.id)).error).toBeNull();
    expect(await sql`select 1 from auth.users where id = ${held.id}`).toHaveLength(0);
    const trail = await sql`select operation from audit.privacy_log where subject_user_id = ${held.id} order by id`;
    expect(trail.map((r) => r.operation)).toEqual(["legal_hold_placed", "data_exported", "legal_hold_released", "data_exported", "user_erased"]);
    // deleteUser gives no reason: the tombstone says how the user went.
    const [tomb] = await sql`select actor_role, reason, details->>'via' as via from audit.privacy_log where operation = 'user_erased' and subject_user_id = ${held.id}`;
    expect({ ...tomb }).toEqual({ actor_role: "supabase_auth_admin", reason: null, via: "auth.users delete" });
  });
});

/**
 * One person's share of the rollups: their daily rows (found by `where`) and the model-usage
 * rows of a model only they used. Other test files write at the same time, so the totals of
 * all users would move under this test.
 */
async function shareOf(where: postgres.PendingQuery<postgres.Row[]>, model: string): Promise<Record<string, string>> {
  const [t] = await sql`
    select (select sum(total_messages) from analytics.coach_interaction_metrics m where ${where})::text as messages,
           (select sum(response_count) from analytics.coach_interaction_metrics m where ${where})::text as responses,
           (select sum(satisfaction_count) from analytics.coach_interaction_metrics m where ${where})::text as ratings,
           (select sum(prompt_tokens + completion_tokens) from analytics.coach_interaction_metrics m where ${where})::text as tokens,
           (select sum(cost_usd) from analytics.coach_interaction_metrics m where ${where})::text as cost_usd,
           (select sum(calls) from analytics.coach_model_usage_hourly where model = ${model})::text as llm_calls,
           (select sum(prompt_tokens + completion_tokens) from analytics.coach_model_usage_hourly where model = ${model})::text as model_tokens`;
  return { ...t };
}

describe("erase_user", () => {
  it("leaves nothing personal to export, deletes media through Storage, keeps the rollup's totals and leaves a tombstone", async () => {
    const eve = await newUser("Eve Erased");
    const conversation = crypto.randomUUID();
    // A persona and a model no one else uses, to find her share of the rollups afterwards.
    const persona = `e2e-${conversation.slice(0, 8)}`;
    const model = `e2e-model-${conversation.slice(0, 8)}`;
    const mine = await eve.me.functions.invoke("log-interaction", { body: { sender: "user", conversation_id: conversation, content: { text: "My knee hurts when I run." } } });
    expect(mine.error).toBeNull();
    const reply = await service().functions.invoke("log-interaction", {
      body: { sender: "ai_coach", user_id: eve.id, conversation_id: conversation, content: { text: "Rest it for a week, Eve." },
              coach_persona: persona, model, prompt_tokens: 900, completion_tokens: 60, latency_ms: 700 },
    });
    expect(reply.error).toBeNull();
    expect((await eve.me.functions.invoke("events", { body: { kind: "rating", score: 4, interaction_id: reply.data.id } })).error).toBeNull();
    const session = await eve.me.rpc("start_coaching_session", { session_type: "self_coaching", theme: "Running" });
    expect(session.error).toBeNull();
    const transcript = JSON.stringify({ text: "Eve talks about her knee." });
    const started = await eve.me.functions.invoke("media/upload-url", {
      body: { session_id: session.data!.id, kind: "transcript", filename: "t.json", content_type: "application/json", bytes: Buffer.byteLength(transcript) },
    });
    expect(started.error).toBeNull();
    const { path, token } = started.data.upload;
    const put = await eve.me.storage.from("session-media").uploadToSignedUrl(path, token, new Blob([transcript], { type: "application/json" }), { contentType: "application/json" });
    expect(put.error).toBeNull();
    expect((await eve.me.functions.invoke("media/complete", { body: { media_id: started.data.media.id } })).error).toBeNull();

    // Her export, before the erasure, links the transcript through a signed URL valid an hour.
    const [media] = (await exportOf(eve.me)).media as { storage_path: string; download_url: string; download_expires_at: string }[];
    expect(media.storage_path).toBe(path);
    expect(media.download_url).toMatch(/\/storage\/v1\/object\/sign\/session-media\/u\/.+\?token=/);
    expect(await (await fetch(media.download_url)).text()).toBe(transcript);
    expect(Math.abs(Date.parse(media.download_expires_at) - Date.now() - 3_600_000)).toBeLessThan(60_000);

    // The rollup as pg_cron leaves it; what it adds up to.
    await sql`select * from analytics.refresh_interaction_metrics()`;
    const before = await shareOf(sql`m.user_id = ${eve.id}`, model);
    expect(before).toMatchObject({ messages: "2", responses: "1", ratings: "1", tokens: "960", llm_calls: "1", model_tokens: "960" });

    // Only the service role may erase, and only with a reason.
    expect((await eve.me.rpc("erase_user", { user_id: eve.id, reason: "Mine" })).error).toMatchObject({ code: "42501" });
    const noReason = await service().rpc("erase_user", { user_id: eve.id, reason: "" });
    expect(noReason.error).toMatchObject({ code: "22023", message: "reason must be 1 to 1000 characters" });
    expect(noReason.status).toBe(400);
    expect(await sql`select 1 from auth.users where id = ${eve.id}`).toHaveLength(1);

    const erased = await service().rpc("erase_user", { user_id: eve.id, reason: "Erasure request 2026-114 (e2e)" });
    expect(erased.error).toBeNull();
    const result = erased.data as { media_deletion_request: number } & Record<string, unknown>;
    expect(result).toMatchObject({
      user_id: eve.id, replayed: false, media_objects: 1,
      removed: { interactions: 2, events: 1, sessions: 1, session_media: 1 },
      metrics_kept: { hourly_rows: 1, daily_rows: 1 },
    });
    expect(result.media_deletion_request).toEqual(expect.any(Number));

    // Nothing personal is left: the service role's export finds no such user, and her own
    // still-valid token exports empty sections.
    const refused = await service().functions.invoke(`export-my-data?user_id=${eve.id}`, { method: "GET" });
    expect((refused.error as { context: Response }).context.status).toBe(404);
    const doc = await exportOf(eve.me);
    expect(doc.profile).toEqual({ account: null, profile: null });
    for (const section of ["identities", "coach_assignments", "interactions", "events", "sessions", "action_plans", "assessments", "applications",
      "opportunities", "media", "notifications", "emails", "tenant_memberships", "daily_metrics", "data_access"]) {
      expect(doc[section], section).toEqual([]);
    }
    // Her share of the rollups is still there, under a pseudonym (her rows are the erased ones
    // with her persona), and again after the refresh and a recompute of her days from raw rows.
    const pseudonymous = sql`m.erased and m.coach_persona_counts ? ${persona}`;
    expect(await shareOf(pseudonymous, model)).toEqual(before);
    await sql`select * from analytics.refresh_interaction_metrics()`;
    await sql`select * from analytics.aggregate_interaction_metrics(current_date - 1, current_date)`;
    expect(await shareOf(pseudonymous, model)).toEqual(before);
    expect(await shareOf(sql`m.user_id = ${eve.id}`, model)).toMatchObject({ messages: null, tokens: null });
    // The pseudonym is neither her id nor her analytics key.
    const [kept] = await sql`select m.user_id, m.user_key, encode(extensions.digest('coach-ledger-user:' || ${eve.id}, 'sha256'), 'hex') as her_key
                             from analytics.coach_interaction_metrics m where ${pseudonymous}`;
    expect(kept.user_id).not.toBe(eve.id);
    expect(kept.user_key).not.toBe(kept.her_key);

    // The media-retention function, invoked through pg_net at commit, deleted her object through Storage.
    const deadline = Date.now() + 15_000;
    while ((await sql`select 1 from storage.objects where name = ${path}`).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(await sql`select 1 from storage.objects where name = ${path}`).toHaveLength(0);
    let answer: { status_code: number; content: string } | undefined;
    while (!answer && Date.now() < deadline) {
      [answer] = await sql<{ status_code: number; content: string }[]>`select status_code, content from net._http_response where id = ${result.media_deletion_request}`;
      if (!answer) await new Promise((r) => setTimeout(r, 250));
    }
    expect(answer!.status_code).toBe(200);
    expect(JSON.parse(answer!.content)).toMatchObject({ erased: 1, failed: 0 });

    // The tombstone: who erased whom, when and why; a retry gets the same answer.
    const [tomb] = await sql`select actor_role, reason, details->>'via' as via from audit.privacy_log where operation = 'user_erased' and subject_user_id = ${eve.id}`;
    expect({ ...tomb }).toEqual({ actor_role: "service_role", reason: "Erasure request 2026-114 (e2e)", via: "erase_user" });
    const again = await service().rpc("erase_user", { user_id: eve.id, reason: "Erasure request 2026-114 (e2e)" });
    expect(again.data).toEqual({ ...result, replayed: true });
  });
});

describe("erase_user and the jobs beside it", () => {
  /** erase_user as the service role over SQL, giving up on a lock after 300 ms; the error code, or null. */
  async function eraseWithin300ms(userId: string): Promise<string | null> {
    try {
      await sql.begin(async (tx) => {
        await tx`select set_config('role', 'service_role', true), set_config('lock_timeout', '300ms', true)`;
        await tx`select public.erase_user(${userId}::uuid, 'Lock test (e2e)')`;
        throw new Rollback();
      });
    } catch (err) {
      if (err instanceof Rollback) return null;
      return (err as { code?: string }).code ?? String(err);
    }
    return null;
  }

  it("waits for a retention run under way, and for a legal hold being placed (each lock held by another session)", async () => {
    const { id } = await newUser("Lou Locks");
    for (const lock of ["pg_advisory_xact_lock(hashtextextended('retention-run', 0))", "pg_advisory_xact_lock(hashtextextended('legal-hold', 0))"]) {
      const holder = postgres(stack().env.DB_URL, { max: 1, onnotice: () => {} });
      let release!: () => void;
      const released = new Promise<void>((r) => { release = r; });
      let held!: () => void;
      const isHeld = new Promise<void>((r) => { held = r; });
      const holding = holder.begin(async (tx) => {
        await tx.unsafe(`select ${lock}`);
        held();
        await released;
      });
      await isHeld;
      expect(await eraseWithin300ms(id), lock).toBe("55P03");
      release();
      await holding;
      await holder.end();
    }
    // With both free, the same call goes through (rolled back here).
    expect(await eraseWithin300ms(id)).toBeNull();
    expect(await sql`select 1 from auth.users where id = ${id}`).toHaveLength(1);
  });
});

class Rollback extends Error {}
