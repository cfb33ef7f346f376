/**
 * The execution engine end to end: a pursuit with supabase-js (track, a coach proposes
 * Submitted, the owner confirms, the check-in is due 21 days later, the game plan), nudge
 * schedulers racing on concurrent connections (one email and one toast per user, never
 * two), a toast arriving on nudges:<user_id> over the local Realtime endpoint, and the
 * dispatcher invoked the way pg_cron does it (pg_net, the service key from Vault) delivering
 * an email through the running dispatch-notifications function.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import postgres from "postgres";
import { ALICE, stack, userClient } from "../helpers.ts";
import { closeAll, realtimeClient, sleep, waitFor, watch } from "./realtime_helpers.ts";
import { mintToken } from "../../local/stack.ts";

const sql = postgres(stack().env.DB_URL, { max: 12, onnotice: () => {} });
const made: string[] = [];

afterEach(closeAll);
afterAll(async () => {
  if (made.length) await sql`delete from auth.users where id = any(${made}::uuid[])`;
  await sql.end();
});

/**
 * n users, each with a confirmed email address and one pursuit of their own due in two days whose
 * progress stalled three days ago: due for a deadline email and a micro-task toast now.
 */
async function dueUsers(n: number, label: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    insert into auth.users (id, email, email_confirmed_at)
    select gen_random_uuid(), ${label} || '-' || k || '-' || gen_random_uuid() || '@example.com', now() from generate_series(1, ${n}) k
    returning id`;
  const ids = rows.map((r) => r.id);
  made.push(...ids);
  await sql`
    with o as (
      insert into public.opportunities (owner_id, title, amount, deadline, trust_score, application_type)
      select u, ${label} || ' grant', 500, now() + interval '2 days', 0.7, 'form' from unnest(${ids}::uuid[]) u
      returning id, owner_id
    )
    insert into public.applications (user_id, opportunity_id, last_progress_at)
    select o.owner_id, o.id, now() - interval '3 days' from o`;
  return ids;
}

/** Polls an async check until it returns a value; rejects after ms (a guard against hanging). */
async function poll<T>(get: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("timed out waiting");
    await sleep(50);
  }
}

async function nudgesOf(ids: string[]) {
  return await sql<{ user_id: string; channel: string; n: number }[]>`
    select user_id::text, channel::text, count(*)::int as n from public.notification_log
    where user_id = any(${ids}::uuid[]) group by 1, 2`;
}

describe("execution engine", () => {
  it("tracks, takes a coach's proposal, confirms it, schedules the check-in 21 days on, and plans", async () => {
    const alice = await userClient("alice@example.com");
    const carol = await userClient("carol@example.com");
    const title = `E2E grant ${crypto.randomUUID()}`;
    const deadline = new Date(Date.now() + 10 * 86_400_000).toISOString();
    const tracked = await alice.rpc("track_opportunity", { title, amount: 1200, deadline, trust_score: 0.8, application_type: "form" });
    expect(tracked.error).toBeNull();
    expect(tracked.data!.status).toBe("draft");
    const applicationId = tracked.data!.id as string;

    const confirmEarly = await carol.rpc("respond_to_proposal", { proposal_id: crypto.randomUUID(), accept: true });
    expect(confirmEarly.status).toBe(404);

    const proposed = await carol.rpc("propose_application_state", { application_id: applicationId, state: "Submitted" });
    expect(proposed.error).toBeNull();
    expect(proposed.data!.status).toBe("pending");

    const coachConfirms = await carol.rpc("respond_to_proposal", { proposal_id: proposed.data!.id, accept: true });
    expect(coachConfirms.status, "a coach can propose but never confirm").toBe(404);

    const confirmed = await alice.rpc("respond_to_proposal", { proposal_id: proposed.data!.id, accept: true });
    expect(confirmed.error).toBeNull();
    expect(confirmed.data!.status).toBe("confirmed");

    const [app] = await sql`select status::text, submitted_at, (select due_at from public.check_in_tasks c where c.application_id = a.id) as due_at
                            from public.applications a where a.id = ${applicationId}`;
    expect(app.status).toBe("submitted");
    expect(app.due_at.getTime() - app.submitted_at.getTime()).toBe(21 * 86_400_000);

    const before = await alice.rpc("get_game_plan", { at: new Date(app.due_at.getTime() - 1000).toISOString() });
    // get_game_plan returns jsonb (typed Json): its shape is docs/api.md's.
    type GamePlan = { check_ins_due: { application_id: string }[] };
    expect((before.data as GamePlan).check_ins_due.map((c) => c.application_id)).not.toContain(applicationId);
    const due = await alice.rpc("get_game_plan", { at: new Date(app.due_at.getTime() + 1000).toISOString() });
    expect((due.data as GamePlan).check_ins_due.map((c) => c.application_id)).toContain(applicationId);

    const plan = await alice.functions.invoke("game-plan", { method: "GET" });
    expect(plan.error).toBeNull();
    expect(plan.data.user_id).toBe(ALICE);
    expect(plan.data.top.map((x: { application_id: string }) => x.application_id), "a submitted application leaves the top three")
      .not.toContain(applicationId);
  });

  it("sends one email and one toast per user when two schedulers race, the second waiting for the first", async () => {
    const ids = await dueUsers(20, "race2");
    const a = await sql.reserve();
    const b = await sql.reserve();
    try {
      await a`begin`;
      const [{ first }] = await a`select private.run_nudge_scheduler() as first`;
      expect(first.emails).toBeGreaterThanOrEqual(20);
      await b`begin`;
      const [{ pid }] = await b`select pg_backend_pid() as pid`;
      let second: { emails: number; toasts: number } | undefined;
      const racing = b`select private.run_nudge_scheduler() as r`.then(([row]) => (second = row.r));
      // The second run waits on the first one's throttle claims until it commits.
      await poll(async () => {
        const [w] = await sql`select wait_event_type from pg_stat_activity where pid = ${pid}`;
        return w?.wait_event_type === "Lock" ? true : undefined;
      }).catch(() => undefined);
      const [waiting] = await sql`select wait_event_type from pg_stat_activity where pid = ${pid}`;
      expect(waiting.wait_event_type).toBe("Lock");
      expect(second).toBeUndefined();
      await a`commit`;
      await racing;
      await b`commit`;
      const mine = (await nudgesOf(ids));
      expect(mine).toHaveLength(40);
      expect(mine.every((r) => r.n === 1)).toBe(true);
      expect(second).toBeDefined();
    } finally {
      a.release();
      b.release();
    }
  });

  it("sends one email and one toast per user when eight schedulers start together", async () => {
    const ids = await dueUsers(50, "race8");
    const conns = await Promise.all(Array.from({ length: 8 }, () => sql.reserve()));
    try {
      await Promise.all(conns.map((c) => c`begin`));
      const results = await Promise.all(conns.map(async (c) => {
        const [{ r }] = await c`select private.run_nudge_scheduler() as r`;
        await c`commit`;
        return r as { emails: number; toasts: number };
      }));
      const mine = await nudgesOf(ids);
      expect(mine).toHaveLength(100);
      expect(mine.every((r) => r.n === 1), JSON.stringify(mine.filter((r) => r.n !== 1))).toBe(true);
      expect(results.reduce((s, r) => s + r.emails, 0)).toBeGreaterThanOrEqual(50);
      const [{ outbox }] = await sql`select count(*)::int as outbox from private.email_outbox o
        join public.notification_log n on n.id = o.notification_id where n.user_id = any(${ids}::uuid[])`;
      expect(outbox).toBe(50);
    } finally {
      for (const c of conns) c.release();
    }
  });

  it("delivers a toast on nudges:<user_id> over Realtime, to that user only", async () => {
    const [id] = await dueUsers(1, "toast");
    const [{ email }] = await sql`select email from auth.users where id = ${id}`;
    const mine = await watch(await realtimeClient({ token: await mintToken(stack().cfg, { email }) }, "1.0.0"), `nudges:${id}`);
    expect(mine.joined.status).toBe("SUBSCRIBED");
    const received: Record<string, unknown>[] = [];
    mine.channel.on("broadcast", { event: "nudge" }, (msg) => received.push(msg.payload as Record<string, unknown>));
    const stranger = await watch(await realtimeClient({ token: await mintToken(stack().cfg, { email: "bob@example.com" }) }, "1.0.0"), `nudges:${id}`);
    expect(stranger.joined.status).toBe("CHANNEL_ERROR");

    await sql`select private.run_nudge_scheduler()`;
    const toast = await waitFor(() => received[0]);
    expect(toast.notification_type).toBe("micro_task");
    expect(toast.text).toBe("Fill in the first section of the form for toast grant (10 minutes).");
    const [log] = await sql`select id::text from public.notification_log where user_id = ${id} and channel = 'dashboard_toast'`;
    expect(toast.notification_id).toBe(log.id);
    await sleep(200);
    expect(received).toHaveLength(1);
  });

  it("dispatches a due email the way pg_cron does: pg_net posts to dispatch-notifications with the key from Vault", async () => {
    const [id] = await dueUsers(1, "dispatch");
    await sql`select private.run_nudge_scheduler()`;
    const [{ request_id }] = await sql`select private.dispatch_due_emails() as request_id`;
    expect(request_id).not.toBeNull();
    const response = await poll(async () => {
      const [r] = await sql`select status_code, content from net._http_response where id = ${request_id}`;
      return r;
    }, 20_000);
    expect(response.status_code).toBe(200);
    expect(JSON.parse(response.content).provider).toBe("log");
    const [row] = await sql`select o.status, o.provider from private.email_outbox o
      join public.notification_log n on n.id = o.notification_id where n.user_id = ${id}`;
    expect(row).toEqual({ status: "sent", provider: "log" });
  });
});
