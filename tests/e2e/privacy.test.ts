/**
 * Privacy operations end to end (issue 16) with supabase-js: a new user's export compared
 * field by field with what they wrote; retention at a fixed clock for a held and an unheld
 * user, seen through their exports; erasure through the Auth admin API refused under a hold.
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
    expect(trail.map((r) => r.operation)).toEqual(["legal_hold_placed", "data_exported", "legal_hold_released", "data_exported"]);
  });
});
