/**
 * dispatch-notifications against the test run's database and a Resend-compatible email API
 * the test starts on loopback: success, a provider failure retried within the run, 429
 * with Retry-After, a provider that stays down (queued for a later run with backoff, failed
 * after 5 runs), a refused message, the log provider without a key, and who may call it.
 */
import assert from "node:assert/strict";
import { handler, retryAfterSeconds } from "./handler.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, request, token, userToken } from "../_shared/testing/fixtures.ts";

const admin = adminSql();

type Behaviour = "ok" | "flaky" | "limited" | "down" | "bad" | "later" | "never";

/** An email API on a free loopback port; what it answers depends on the recipient's local part. */
function startEmailApi() {
  const calls: { to: string; at: number; auth: string | null; key: string | null; body: Record<string, unknown> }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    const to = String(body.to?.[0] ?? "");
    const behaviour = (to.split("@")[0].split("+")[1] ?? "ok") as Behaviour;
    calls.push({ to, at: Date.now(), auth: req.headers.get("authorization"), key: req.headers.get("idempotency-key"), body });
    const seen = calls.filter((c) => c.to === to).length;
    switch (behaviour) {
      case "flaky":
        return seen === 1 ? new Response("upstream hiccup", { status: 500 }) : Response.json({ id: `re_${seen}` });
      case "limited":
        return seen === 1
          ? Response.json({ name: "rate_limit_exceeded" }, { status: 429, headers: { "retry-after": "1" } })
          : Response.json({ id: "re_limited" });
      case "down":
        return new Response("unavailable", { status: 503 });
      case "bad":
        return Response.json({ name: "validation_error", message: "Invalid `to` field." }, { status: 422 });
      case "later":
        return Response.json({ name: "rate_limit_exceeded" }, { status: 429, headers: { "retry-after": "120" } });
      case "never":
        return Response.json({ name: "rate_limit_exceeded" }, { status: 429, headers: { "retry-after": "99999999999" } });
      default:
        return Response.json({ id: "re_ok" });
    }
  });
  return { url: `http://127.0.0.1:${server.addr.port}/emails`, host: `127.0.0.1:${server.addr.port}`, calls, close: () => server.shutdown() };
}

const created: string[] = [];

/** Queues one email to dispatch-test+<behaviour>@example.com; returns its outbox id. */
async function queue(behaviour: Behaviour, attempts = 0): Promise<string> {
  const [log] = await admin`insert into public.notification_log (user_id, channel, notification_type, template_name, application_ids)
    values (${ALICE}, 'email', 'deadline_72h', 'deadline_reminder_v1', '{}') returning id`;
  created.push(log.id);
  const [row] = await admin`insert into private.email_outbox (notification_id, to_email, subject, text_body, attempts)
    values (${log.id}, ${`dispatch-test+${behaviour}@example.com`}, ${"Test " + behaviour}, 'Body', ${attempts}) returning id`;
  return row.id;
}

async function outbox(id: string) {
  const [row] = await admin`select status, attempts, provider, provider_message_id, last_error, sent_at,
      extract(epoch from next_attempt_at - now())::int as due_in_s
    from private.email_outbox where id = ${id}`;
  return row;
}

Deno.test({
  name: "dispatch-notifications handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const service = await token({ role: "service_role" });
    const post = (bearer = service, body?: unknown) =>
      handler(request("/dispatch-notifications", { bearer, method: "POST", ...(body === undefined ? {} : { body }) }));
    const api = startEmailApi();
    try {
      await t.step("retryAfterSeconds reads seconds and HTTP dates", () => {
        assert.equal(retryAfterSeconds("7"), 7);
        assert.equal(retryAfterSeconds(new Date(Date.now() + 30_000).toUTCString()) !== null, true);
        assert.equal(retryAfterSeconds("soon"), null);
        assert.equal(retryAfterSeconds(null), null);
      });

      await t.step("only the service role may dispatch (403); GET is 405; an unknown field is 422", async () => {
        const user = await post(await userToken(ALICE));
        assert.equal(user.status, 403);
        await user.body?.cancel();
        const ingest = await post(await token({ role: "coach_ingest" }));
        assert.equal(ingest.status, 403);
        await ingest.body?.cancel();
        const get = await handler(request("/dispatch-notifications", { bearer: service }));
        assert.equal(get.status, 405);
        await get.body?.cancel();
        const bad = await post(service, { source: "pg_cron", limit: 5 });
        assert.equal(bad.status, 422);
        assert.deepEqual((await bad.json()).errors, [{ field: "limit", message: "Unknown field" }]);
      });

      await t.step("a key without EMAIL_FROM is 503 and claims nothing", async () => {
        const id = await queue("ok");
        Deno.env.set("EMAIL_API_KEY", "re_test_key");
        Deno.env.delete("EMAIL_FROM");
        const res = await post();
        assert.equal(res.status, 503);
        assert.match((await res.json()).detail, /EMAIL_FROM/);
        assert.equal((await outbox(id)).status, "queued");
      });

      Deno.env.set("EMAIL_API_KEY", "re_test_key");
      Deno.env.set("EMAIL_FROM", "Coach Ledger <nudges@example.com>");
      Deno.env.set("EMAIL_API_URL", api.url);

      await t.step("sends, retries within the run, honours 429 Retry-After, queues or fails the rest", async () => {
        const ids = {
          ok: await queue("ok"), flaky: await queue("flaky"), limited: await queue("limited"),
          down: await queue("down"), bad: await queue("bad"), later: await queue("later"), last: await queue("down", 4),
          never: await queue("never"),
        };
        const res = await post(service, { source: "pg_cron" });
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.provider, api.host);
        assert.ok(body.claimed >= 9, `claimed ${body.claimed}`);
        assert.equal(body.unrecorded, 0);

        const ok = await outbox(ids.ok);
        assert.deepEqual([ok.status, ok.provider, ok.provider_message_id, ok.attempts], ["sent", api.host, "re_ok", 1]);
        assert.ok(ok.sent_at);
        const first = api.calls.find((c) => c.key === ids.ok);
        assert.ok(first, "the outbox id is the idempotency key");
        assert.equal(first.auth, "Bearer re_test_key");
        assert.deepEqual(first.body, { from: "Coach Ledger <nudges@example.com>", to: ["dispatch-test+ok@example.com"], subject: "Test ok", text: "Body" });

        assert.equal((await outbox(ids.flaky)).status, "sent", "a 500 is retried within the run");
        assert.equal(api.calls.filter((c) => c.to.includes("+flaky")).length, 2);

        const limited = api.calls.filter((c) => c.to.includes("+limited"));
        assert.equal((await outbox(ids.limited)).status, "sent", "a 429 is retried after its Retry-After");
        assert.equal(limited.length, 2);
        assert.ok(limited[1].at - limited[0].at >= 950, `waited ${limited[1].at - limited[0].at} ms`);

        const down = await outbox(ids.down);
        assert.equal(api.calls.filter((c) => c.to.includes("+down")).length >= 3, true, "tried three times in the run");
        assert.deepEqual([down.status, down.attempts], ["queued", 1], "then queued for a later run");
        assert.match(down.last_error, /^503 unavailable/);
        assert.ok(down.due_in_s >= 55 && down.due_in_s <= 60, `due again in ${down.due_in_s} s (1 minute after the first run)`);

        const last = await outbox(ids.last);
        assert.deepEqual([last.status, last.attempts], ["failed", 5], "failed after the fifth run");

        const bad = await outbox(ids.bad);
        assert.deepEqual([bad.status, api.calls.filter((c) => c.to.includes("+bad")).length], ["failed", 1], "a 422 fails at once");
        assert.match(bad.last_error, /^422 .*validation_error/);

        const later = await outbox(ids.later);
        assert.equal(later.status, "queued", "a Retry-After longer than the run waits is left to a later run");
        assert.ok(later.due_in_s >= 115, `due again in ${later.due_in_s} s`);
        assert.equal(api.calls.filter((c) => c.to.includes("+later")).length, 1);

        const never = await outbox(ids.never);
        assert.equal(never.status, "queued", "an absurd Retry-After is taken as one day, and recorded");
        assert.ok(never.due_in_s >= 86_390 && never.due_in_s <= 86_400, `due again in ${never.due_in_s} s`);
      });

      await t.step("a message erased while it is being sent costs the others nothing", async () => {
        const gone = await queue("ok");
        const kept = await queue("ok");
        const slowApi = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
          const body = await req.json();
          if (req.headers.get("idempotency-key") === gone) {
            await admin`delete from public.notification_log n using private.email_outbox o
                        where o.notification_id = n.id and o.id = ${gone}`;
          }
          return Response.json({ id: `re_${body.to[0]}` });
        });
        Deno.env.set("EMAIL_API_URL", `http://127.0.0.1:${slowApi.addr.port}/emails`);
        try {
          const res = await post();
          assert.equal(res.status, 200);
          const body = await res.json();
          assert.ok(body.gone >= 1, JSON.stringify(body));
          assert.equal((await outbox(kept)).status, "sent");
          assert.equal(await outbox(gone), undefined);
        } finally {
          Deno.env.set("EMAIL_API_URL", api.url);
          await slowApi.shutdown();
        }
      });

      await t.step("a second run finds nothing due and sends nothing twice", async () => {
        const before = api.calls.filter((c) => c.to.startsWith("dispatch-test+")).length;
        const res = await post();
        assert.equal(res.status, 200);
        await res.body?.cancel();
        assert.equal(api.calls.filter((c) => c.to.startsWith("dispatch-test+")).length, before);
      });

      await t.step("without EMAIL_API_KEY the log provider marks the message sent", async () => {
        Deno.env.delete("EMAIL_API_KEY");
        const id = await queue("ok");
        const calls = api.calls.length;
        const res = await post();
        assert.equal(res.status, 200);
        assert.equal((await res.json()).provider, "log");
        const row = await outbox(id);
        assert.deepEqual([row.status, row.provider, row.provider_message_id], ["sent", "log", null]);
        assert.equal(api.calls.length, calls, "nothing went to the email API");
      });

      await t.step("record_email_delivery refuses an unknown outcome and leaves settled messages alone", async () => {
        const id = await queue("ok");
        await assert.rejects(admin`select public.record_email_delivery(${id}::uuid, 'maybe')`, /outcome must be sent, retry or failed/);
        await admin`update private.email_outbox set status = 'failed', last_error = 'x' where id = ${id}`;
        const [{ status }] = await admin`select public.record_email_delivery(${id}::uuid, 'sent') as status`;
        assert.equal(status, "failed");
      });
    } finally {
      Deno.env.delete("EMAIL_API_KEY");
      Deno.env.delete("EMAIL_FROM");
      Deno.env.delete("EMAIL_API_URL");
      if (created.length) await admin`delete from public.notification_log where id = any(${created}::uuid[])`;
      await api.close();
      await admin.end();
      await closeDb();
    }
  },
});
