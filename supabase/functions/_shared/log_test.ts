/** Runs with SUPABASE_JWT_SECRET and TRACKED_SKILL_HASH_KEY from npm test. */
import assert from "node:assert/strict";
import { functionRoute, noteLog } from "./log.ts";
import { HttpError, json, respond } from "./http.ts";
import { authenticate } from "./auth.ts";
import { requestTrackedSkillHash, trackedSkillHash } from "./tracked_skill.ts";
import { ALICE, request, userToken } from "./testing/fixtures.ts";

/** Runs fn and returns what it wrote with console.log, parsed as JSON lines. */
async function captured(fn: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  try {
    await fn();
  } finally {
    console.log = log;
  }
  return lines.map((l) => JSON.parse(l));
}

/** A handler like the real ones: authenticates, hashes the tracked skill id, echoes nothing of the body. */
function handler(req: Request): Promise<Response> {
  return respond(req, async () => {
    await authenticate(req);
    const body = await req.json() as { text: string; tracked_skill_id?: string; fail?: boolean };
    await requestTrackedSkillHash(req, body.tracked_skill_id);
    if (body.fail) throw new HttpError(422, "Unprocessable Content", "Refused.");
    noteLog(req, { provider: "openai", model: "gpt-4o-mini", prompt_tokens: 12, completion_tokens: 3, cached_tokens: 0, cost_usd: 0.00001, llm_latency_ms: 640 });
    return json({ ok: true }, 201);
  });
}

Deno.test("functionRoute() names the function and the route, with or without the /functions/v1 prefix", () => {
  assert.deepEqual(functionRoute("http://x/functions/v1/events?limit=5"), { function: "events", route: "/" });
  assert.deepEqual(functionRoute("http://x/functions/v1/coaching-ai/coaching/alignment-check"), { function: "coaching-ai", route: "/coaching/alignment-check" });
  assert.deepEqual(functionRoute("http://x/history"), { function: "history", route: "/" });
});

Deno.test("every request writes one JSON line with its trace id, route, status, duration, user, skill hash and LLM call, and no content", async () => {
  const raw = `canary-skill-${crypto.randomUUID()}`;
  const secret = "Today I felt anxious about my diagnosis";
  const bearer = await userToken(ALICE);
  let res: Response | undefined;
  const lines = await captured(async () => {
    res = await handler(request("/functions/v1/events/sub", {
      bearer, body: { text: secret }, headers: { "x-request-id": "trace-log-1", "X-Tracked-Skill-Id": raw },
    }));
  });
  await res?.body?.cancel();
  assert.equal(lines.length, 1);
  const [line] = lines;
  assert.ok(!Number.isNaN(Date.parse(line.time as string)));
  assert.equal(typeof line.duration_ms, "number");
  const { time: _t, duration_ms: _d, ...rest } = line;
  assert.deepEqual(rest, {
    level: "info", trace_id: "trace-log-1", function: "events", route: "/sub", method: "POST", status: 201,
    role: "authenticated", user_id: ALICE, tracked_skill_id_hash: await trackedSkillHash(raw),
    provider: "openai", model: "gpt-4o-mini", prompt_tokens: 12, completion_tokens: 3, cached_tokens: 0, cost_usd: 0.00001,
    llm_latency_ms: 640,
  });
  const text = JSON.stringify(lines);
  assert.ok(!text.includes(raw), "never the raw tracked skill id");
  assert.ok(!text.includes(secret), "never content");
});

Deno.test("a refused request logs at warn with its status; one without a token has no user", async () => {
  const bearer = await userToken(ALICE);
  const lines = await captured(async () => {
    await (await handler(request("/functions/v1/events", { bearer, body: { text: "x", fail: true } }))).body?.cancel();
    await (await handler(request("/functions/v1/events", { body: { text: "x" } }))).body?.cancel();
  });
  assert.deepEqual(lines.map((l) => [l.level, l.status, l.user_id]), [["warn", 422, ALICE], ["warn", 401, undefined]]);
});

Deno.test("the keyed hash is HMAC-SHA-256 under TRACKED_SKILL_HASH_KEY, not a bare SHA-256", async () => {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(Deno.env.get("TRACKED_SKILL_HASH_KEY")!), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const expected = Array.from(new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("skill-7"))), (b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(await trackedSkillHash("skill-7"), expected);
  const bare = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("skill-7"))), (b) => b.toString(16).padStart(2, "0")).join("");
  assert.notEqual(await trackedSkillHash("skill-7"), bare);
  const previous = Deno.env.get("TRACKED_SKILL_HASH_KEY")!;
  Deno.env.set("TRACKED_SKILL_HASH_KEY", "another-key-after-rotation-0123456789");
  try {
    assert.notEqual(await trackedSkillHash("skill-7"), expected, "a rotated key gives other hashes");
    Deno.env.set("TRACKED_SKILL_HASH_KEY", "too-short");
    await assert.rejects(trackedSkillHash("skill-7"), /at least 32 characters/);
  } finally {
    Deno.env.set("TRACKED_SKILL_HASH_KEY", previous);
  }
});
