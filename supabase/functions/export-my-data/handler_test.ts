/** Runs against the test run's database (SUPABASE_DB_URL, SUPABASE_JWT_SECRET from npm test). */
import assert from "node:assert/strict";
import { EXPORT_URL_SECONDS, handler, SECTIONS } from "./handler.ts";
import { handler as media } from "../media/handler.ts";
import { removeObjects } from "../_shared/storage.ts";
import { closeDb } from "../_shared/db.ts";
import { adminSql, ALICE, BOB, request, token, userToken, withDatabaseDown } from "../_shared/testing/fixtures.ts";

const admin = adminSql();

function get(bearer: string, query = "", headers: Record<string, string> = {}): Promise<Response> {
  return handler(request(`/export-my-data${query}`, { bearer, headers }));
}

/** The number of privacy-log rows recording an export of this user's data. */
async function exportsOf(userId: string): Promise<number> {
  const [{ n }] = await admin`select count(*)::int as n from audit.privacy_log where operation = 'data_exported' and subject_user_id = ${userId}`;
  return n;
}

Deno.test({
  name: "export-my-data handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const alice = await userToken(ALICE);
    const service = await token({ role: "service_role" });
    let many = "";
    let withMedia = "";
    try {
      await t.step("handler() streams the caller's whole export as one JSON document, every section in order", async () => {
        const before = await exportsOf(ALICE);
        const res = await get(alice);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
        assert.match(res.headers.get("content-disposition") ?? "", new RegExp(`attachment; filename="coach-ledger-export-${ALICE}-`));
        assert.equal(res.headers.get("cache-control"), "no-store");
        const doc = await res.json();
        assert.deepEqual(Object.keys(doc), ["format", "user_id", "exported_at", "export_id", ...SECTIONS, "complete"]);
        assert.equal(doc.format, "coach-ledger-export/1");
        assert.equal(doc.user_id, ALICE);
        assert.equal(doc.complete, true);
        assert.equal(doc.profile.account.email, "alice@example.com");
        for (const section of SECTIONS.filter((s) => s !== "profile")) assert.ok(Array.isArray(doc[section]), section);
        const [{ interactions, events }] = await admin`
          select (select count(*)::int from public.coach_interactions where user_id = ${ALICE}) as interactions,
                 (select count(*)::int from public.interaction_events where user_id = ${ALICE}) as events`;
        assert.equal(doc.interactions.length, interactions);
        assert.equal(doc.events.length, events);
        assert.ok(doc.interactions.every((i: { user_id: string }) => i.user_id === ALICE));
        assert.equal(await exportsOf(ALICE), before + 1, "the export is recorded in the privacy log");
        const [logged] = await admin`select id::text, actor_id, actor_role from audit.privacy_log where id = ${doc.export_id}`;
        assert.deepEqual({ ...logged }, { id: doc.export_id, actor_id: ALICE, actor_role: "authenticated" });
      });
      await t.step("handler() links each stored recording or transcript through a signed URL that fetches its bytes", async () => {
        // A user uploads a transcript through the media function, as an app does.
        const [{ id }] = await admin`insert into auth.users (id, email) values (gen_random_uuid(), ${`export-media-${crypto.randomUUID()}@example.com`}) returning id`;
        withMedia = id;
        const [{ session }] = await admin`insert into public.coaching_sessions (user_id) values (${id}) returning id as session`;
        const bearer = await userToken(id);
        const text = JSON.stringify({ text: "What I said in the session." });
        const started = await (await media(request("/media/upload-url", {
          bearer, body: { session_id: session, kind: "transcript", filename: "t.json", content_type: "application/json", bytes: text.length },
        }))).json();
        const put = await fetch(started.upload.signed_url, { method: "PUT", headers: { "content-type": "application/json" }, body: text });
        assert.equal(put.status, 200, await put.text());
        assert.equal((await media(request("/media/complete", { bearer, body: { media_id: started.media.id } }))).status, 200);

        const doc = await (await get(bearer)).json();
        assert.equal(doc.complete, true);
        assert.equal(doc.media.length, 1);
        const [m] = doc.media;
        assert.equal(m.storage_path, started.upload.path);
        assert.match(m.download_url, /\/storage\/v1\/object\/sign\/session-media\/u\/.+\?token=/);
        assert.ok(Math.abs(Date.parse(m.download_expires_at) - Date.now() - EXPORT_URL_SECONDS * 1000) < 60_000);
        assert.equal(await (await fetch(m.download_url)).text(), text);
        assert.equal(m.download_error, null);
        // Signed with the service role key, so a user token that expires mid-export is no matter.
        const expired = await token({ sub: id, role: "authenticated", exp: Math.floor(Date.now() / 1000) - 10 });
        assert.equal((await media(request(`/media?session_id=${session}`, { bearer: expired }))).status, 401, "that token is expired");
      });
      await t.step("handler() still sends the whole export when Storage does not answer, with null download URLs", async () => {
        const url = Deno.env.get("SUPABASE_URL")!;
        Deno.env.set("SUPABASE_URL", "http://127.0.0.1:9");
        try {
          const res = await get(service, `?user_id=${withMedia}`);
          assert.equal(res.status, 200);
          const doc = await res.json();
          assert.equal(doc.complete, true);
          assert.equal(doc.media.length, 1);
          assert.deepEqual([doc.media[0].download_url, doc.media[0].download_expires_at, doc.media[0].download_error],
            [null, null, "storage unavailable"]);
        } finally {
          Deno.env.set("SUPABASE_URL", url);
        }
      });
      await t.step("handler() says why a recording has no URL: not stored, or the object is gone", async () => {
        const [{ path }] = await admin`select storage_path as path from public.session_media where user_id = ${withMedia}`;
        await removeObjects(service, "session-media", [path]);
        const doc = await (await get(service, `?user_id=${withMedia}`)).json();
        assert.deepEqual([doc.media[0].download_url, doc.media[0].download_error], [null, "object not found"]);
        await admin`update public.session_media set status = 'expired', deleted_at = now() where user_id = ${withMedia}`;
        const again = await (await get(service, `?user_id=${withMedia}`)).json();
        assert.deepEqual([again.media[0].download_url, again.media[0].download_error], [null, "not stored"]);
      });
      await t.step("handler() reads past the cursor's pages: 1,234 interactions of one user arrive whole and in order", async () => {
        const email = `export-many-${crypto.randomUUID()}@example.com`;
        const [{ id }] = await admin`insert into auth.users (id, email) values (gen_random_uuid(), ${email}) returning id`;
        many = id;
        await admin`insert into public.coach_interactions (user_id, request_id, sender, content, actor_role, created_at)
                    select ${id}, 'many-' || n, 'user', jsonb_build_object('text', 'Message ' || n), 'postgres',
                           timestamptz '2026-01-01 00:00:00+00' + n * interval '1 second'
                    from generate_series(1, 1234) n`;
        const res = await get(await userToken(id));
        const doc = await res.json();
        assert.equal(doc.complete, true);
        assert.equal(doc.interactions.length, 1234);
        assert.deepEqual(doc.interactions.map((i: { request_id: string }) => i.request_id),
          Array.from({ length: 1234 }, (_, n) => `many-${n + 1}`));
        assert.equal(doc.profile.account.email, email);
        assert.deepEqual(doc.events, []);
      });
      await t.step("handler() ends its transaction when the client stops reading half-way", async () => {
        const res = await get(await userToken(many));
        const reader = res.body!.getReader();
        const { value } = await reader.read();
        assert.ok(value && value.length > 0);
        await reader.cancel();
        // The export's statement and transaction end: nothing is left running export_user_data.
        let running = 1;
        for (let i = 0; i < 50 && running > 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
          [{ running }] = await admin`select count(*)::int as running from pg_stat_activity
                                      where query like '%export_user_data%' and state <> 'idle' and pid <> pg_backend_pid()`;
        }
        assert.equal(running, 0);
      });
      await t.step("handler() lets the service role export anyone named by user_id", async () => {
        const doc = await (await get(service, `?user_id=${BOB}`)).json();
        assert.equal(doc.user_id, BOB);
        assert.ok(doc.interactions.length >= 1 && doc.interactions.every((i: { user_id: string }) => i.user_id === BOB));
        const [logged] = await admin`select actor_role from audit.privacy_log where id = ${doc.export_id}`;
        assert.equal(logged.actor_role, "service_role");
      });
      await t.step("handler() refuses another user's data with 403 and records nothing", async () => {
        const before = await exportsOf(ALICE);
        const res = await get(await userToken(BOB), `?user_id=${ALICE}`);
        assert.equal(res.status, 403);
        await res.body?.cancel();
        assert.equal(await exportsOf(ALICE), before);
      });
      await t.step("handler() refuses anon and ingest tokens with 403", async () => {
        for (const role of ["anon", "coach_ingest"]) {
          const res = await get(await token({ role }));
          assert.equal(res.status, 403, role);
          await res.body?.cancel();
        }
      });
      await t.step("handler() answers 422 for a bad or missing user_id and unknown parameters, 404 for an unknown user", async () => {
        let res = await get(service);
        assert.equal(res.status, 422);
        assert.equal((await res.json()).errors[0].field, "user_id");
        res = await get(alice, "?user_id=not-a-uuid&format=csv");
        assert.equal(res.status, 422);
        assert.deepEqual((await res.json()).errors.map((e: { field: string }) => e.field).sort(), ["format", "user_id"]);
        res = await get(service, `?user_id=${crypto.randomUUID()}`);
        assert.equal(res.status, 404);
        await res.body?.cancel();
      });
      await t.step("handler() returns 401 without a token and 405 for POST", async () => {
        assert.equal((await handler(request("/export-my-data"))).status, 401);
        const res = await handler(request("/export-my-data", { bearer: alice, body: {} }));
        assert.equal(res.status, 405);
        await res.body?.cancel();
      });
      await t.step("handler() returns 503 when the database is unavailable", async () => {
        await withDatabaseDown(closeDb, async () => {
          const res = await get(alice);
          assert.equal(res.status, 503);
          await res.body?.cancel();
        });
      });
    } finally {
      // The many-interactions user goes (erased), so that the shared test database keeps the
      // row counts other suites expect (tests/e2e/table_access reads every table whole).
      if (many) await admin`delete from auth.users where id = ${many}`;
      // So does the media user, their transcript first (through the Storage API, as always).
      if (withMedia) {
        const paths = (await admin`select name from storage.objects where name like ${`u/${withMedia}/%`}`).map((o) => o.name as string);
        await removeObjects(service, "session-media", paths);
        await admin`delete from auth.users where id = ${withMedia}`;
      }
      await closeDb();
      await admin.end();
    }
  },
});
