/**
 * The tracked-skill canary (issue 10; seed SPR-003: "only hashed trackedSkillId appears in
 * logs/storage; never the raw ID"): one unique raw id goes through every path that accepts one
 * (log-interaction, events and assessments; header and body; as users, ingest token and service
 * role; accepted and refused requests), then every table (a full pg_dump --data-only of the
 * test database) and the captured function, gateway and database logs are searched: the raw id
 * must appear nowhere, while its keyed hash is stored.
 */
import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { ALICE, stack } from "../helpers.ts";
import { dbUrl, mintToken } from "../../local/stack.ts";

const sql = postgres(stack().env.DB_URL, { max: 2, onnotice: () => {} });
afterAll(() => sql.end());

async function call(fn: string, bearer: string, body: unknown, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${stack().env.API_URL}/functions/v1/${fn}`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, apikey: stack().env.ANON_KEY, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  expect(text).not.toContain(CANARY);
  return res.status;
}

const CANARY = `canary-skill-${crypto.randomUUID()}`;

describe("tracked skill id canary", () => {
  it("a raw tracked skill id is stored and logged nowhere, only its hash", async () => {
    const alice = await mintToken(stack().cfg, { email: "alice@example.com" });
    const ingest = await mintToken(stack().cfg, { role: "coach_ingest" });
    const service = await mintToken(stack().cfg, { role: "service_role" });
    const [{ id: session }] = await sql<{ id: string }[]>`insert into public.coaching_sessions (user_id) values (${ALICE}) returning id`;
    const skill = { "X-Tracked-Skill-Id": CANARY };
    const statuses = [
      await call("log-interaction", alice, { sender: "user", content: { text: `canary header ${session}` } }, skill),
      await call("log-interaction", ingest, { sender: "ai_coach", user_id: ALICE, content: { text: `canary body ${session}` }, tracked_skill_id: CANARY }),
      await call("log-interaction", alice, { sender: "user", content: { text: "refused" }, sentiment: 7 }, skill),
      await call("events", alice, { kind: "read", group_id: crypto.randomUUID() }, skill),
      await call("events", service, { kind: "feedback", user_id: ALICE, session_id: session, tracked_skill_id: CANARY }),
      await call("events", alice, { kind: "rating", score: 0 }, skill),
      await call("assessments", ingest, { request_id: `canary-${session}`, session_id: session, overall_score: 3, criteria: { clarity: 3 } }, skill),
      await call("assessments", service, { request_id: `canary-2-${session}`, session_id: session, rubric_version: 2, overall_score: 3, criteria: { clarity: 3 }, tracked_skill_id: CANARY }),
      await call("assessments", ingest, { request_id: `canary-3-${session}`, session_id: session, overall_score: 9, criteria: { clarity: 3 } }, skill),
    ];
    expect(statuses).toEqual([201, 201, 422, 201, 201, 422, 201, 201, 422]);

    // The hash is what was stored: in all three tables.
    const [{ interactions, events, assessments }] = await sql`
      select (select count(*)::int from public.coach_interactions where tracked_skill_id_hash is not null and created_at > now() - interval '5 minutes'
                and content->>'text' like ${"canary % " + session}) as interactions,
             (select count(*)::int from public.interaction_events where tracked_skill_id_hash is not null and session_id = ${session}) as events,
             (select count(*)::int from public.assessments where tracked_skill_id_hash is not null and session_id = ${session}) as assessments`;
    expect([interactions, events, assessments]).toEqual([2, 1, 2]);

    // Every table of the database (every schema: auth, storage, net, vault, cron, audit, ...), as
    // the bootstrap superuser's pg_dump sees it.
    const dump = execFileSync("pg_dump", ["--data-only", "--no-owner", dbUrl(stack().cfg, "supabase_admin")], { maxBuffer: 1 << 30 }).toString();
    expect(dump.length).toBeGreaterThan(10_000);
    expect(dump).toContain(`canary header ${session}`);
    expect(dump).not.toContain(CANARY);

    // The logs: functions (in the gateway's log), the gateway, the database. The functions
    // wrote a line for each request, with the hash where one was given.
    await new Promise((r) => setTimeout(r, 300));
    const logsDir = join(stack().cfg.stateDir, "logs");
    const logs = readdirSync(logsDir).map((f) => readFileSync(join(logsDir, f), "utf8")).join("\n");
    expect(logs).not.toContain(CANARY);
    const lines = readFileSync(join(logsDir, "gateway.log"), "utf8").split("\n").filter((l) => l.includes('"function":"assessments"'));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const hashes = lines.map((l) => JSON.parse(l).tracked_skill_id_hash).filter(Boolean);
    expect(hashes.every((h: string) => /^[0-9a-f]{64}$/.test(h))).toBe(true);
  });
});
