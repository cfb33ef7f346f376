/**
 * Delivery to private channels against the test run's database (GATEWAY_TEST_DB_URL as
 * authenticator, SUPABASE_DB_URL as postgres for fixtures): audit before send, batching,
 * and every way a delivery is withheld.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { cacheKey, type Claims, createAuthorizer } from "./authorization.ts";
import { createDelivery, DATABASE_UNAVAILABLE, noLongerPermitted, type Subscriber } from "./delivery.ts";
import type { Message } from "./protocol.ts";

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`delivery_test.ts needs ${name}; run it through npm test`);
  return v;
}

const admin = postgres(need("SUPABASE_DB_URL"), { max: 1, onnotice: () => {} });
const sql = postgres(need("GATEWAY_TEST_DB_URL"), { max: 4, prepare: false, onnotice: () => {} });
const exp = () => Math.floor(Date.now() / 1000) + 600;
const claimsOf = (sub: string): Claims => ({ sub, role: "authenticated", exp: exp(), aud: "authenticated" });

/** A channel that records what it was sent and why it was closed. */
function subscriber(topic: string, claims: Claims): Subscriber & { sent: Message[]; reasons: string[] } {
  const s = {
    topic, isPrivate: true, claims, closed: false, policies: { broadcast: { read: true }, presence: {} }, sent: [] as Message[], reasons: [] as string[],
    unaudited: undefined as string | undefined,
    send(m: Message) { s.sent.push(m); },
    shutdown(reason: string) { s.closed = true; s.reasons.push(reason); },
  };
  return s;
}

Deno.test({
  name: "realtime delivery",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const tag = crypto.randomUUID().slice(0, 8);
    const [{ id: client }] = await admin`insert into auth.users (id, email) values (gen_random_uuid(), ${`dl-client-${tag}@example.com`}) returning id`;
    const [{ id: stranger }] = await admin`insert into auth.users (id, email) values (gen_random_uuid(), ${`dl-stranger-${tag}@example.com`}) returning id`;
    const [{ id: coach }] = await admin`insert into auth.users (id, email, raw_app_meta_data)
                                       values (gen_random_uuid(), ${`dl-coach-${tag}@example.com`}, '{"role": "coach"}') returning id`;
    await admin`insert into public.coach_assignments (coach_id, client_id, starts_at) values (${coach}, ${client}, now() - interval '1 minute')`;
    const topic = `coach_interactions:${client}`;
    const message = async (n: number) => {
      const [{ id }] = await admin`insert into realtime.messages (topic, extension, payload, event, private)
                                   values (${topic}, 'broadcast', ${admin.json({ n })}, 'INSERT', true) returning id::text as id`;
      return id as string;
    };
    const receipts = (actor: string) =>
      admin`select row_count from audit.phi_access_log where actor_id = ${actor} and subject_user_id = ${client} and purpose = 'realtime' order by id`;
    const log: Record<string, unknown>[] = [];
    const setup = (subs: Subscriber[]) => {
      const authorizer = createAuthorizer(sql);
      return { authorizer, delivery: createDelivery({ sql, authorizer, log: (l) => log.push(l), subscribers: () => subs }) };
    };

    try {
      await t.step("a coach's burst of messages is one batch: sent in order after one audit row for all of them", async () => {
        const s = subscriber(topic, claimsOf(coach));
        const { delivery } = setup([s]);
        const ids = [await message(1), await message(2), await message(3)];
        for (const id of ids) delivery.enqueue(id, topic);
        await delivery.idle();
        assert.deepEqual(s.sent.map((m) => (m.payload.meta as { id: string }).id), ids);
        assert.deepEqual(s.sent.map((m) => m.topic), [`realtime:${topic}`, `realtime:${topic}`, `realtime:${topic}`]);
        assert.deepEqual((await receipts(coach)).map((r) => r.row_count), [3]);
        assert.deepEqual(s.reasons, []);
      });

      await t.step("the owner's receipt records nothing, and the channel is not asked again for the same token", async () => {
        const s = subscriber(topic, claimsOf(client));
        const { delivery } = setup([s]);
        delivery.enqueue(await message(4), topic);
        await delivery.idle();
        assert.equal(s.sent.length, 1);
        assert.equal(s.unaudited, cacheKey(topic, s.claims));
        assert.equal((await receipts(client)).length, 0);
      });

      await t.step("a stranger is refused by the read check and sent nothing", async () => {
        const s = subscriber(topic, claimsOf(stranger));
        const { delivery } = setup([s]);
        delivery.enqueue(await message(5), topic);
        await delivery.idle();
        assert.deepEqual(s.sent, []);
        assert.deepEqual(s.reasons, [noLongerPermitted(topic)]);
      });

      await t.step("an expired token gets Realtime's expiry message and nothing is sent", async () => {
        const s = subscriber(topic, { ...claimsOf(client), exp: Math.floor(Date.now() / 1000) - 5 });
        const { delivery } = setup([s]);
        delivery.enqueue(await message(6), topic);
        await delivery.idle();
        assert.deepEqual(s.sent, []);
        assert.match(s.reasons[0], /^Token has expired \d+ seconds ago$/);
      });

      await t.step("a failing database withholds the messages and closes the channel", async () => {
        const s = subscriber(topic, { ...claimsOf(coach), role: "no_such_role" });
        const { delivery } = setup([s]);
        delivery.enqueue(await message(7), topic);
        await delivery.idle();
        assert.deepEqual(s.sent, []);
        assert.deepEqual(s.reasons, [DATABASE_UNAVAILABLE]);
      });

      await t.step("once the assignment has ended, the audit call refuses the coach even while the cached check still says yes", async () => {
        const s = subscriber(topic, claimsOf(coach));
        const { authorizer, delivery } = setup([s]);
        assert.deepEqual(await authorizer.authorize(topic, s.claims), { broadcast: true });
        // No listener here, so nothing invalidates the cached answer: only the audit call can refuse.
        await admin`update public.coach_assignments set ends_at = now() where coach_id = ${coach} and client_id = ${client}`;
        assert.equal(authorizer.cache.get(topic, s.claims), true);
        const before = (await receipts(coach)).length;
        delivery.enqueue(await message(8), topic);
        await delivery.idle();
        assert.deepEqual(s.sent, []);
        assert.deepEqual(s.reasons, [noLongerPermitted(topic)]);
        assert.equal(authorizer.cache.get(topic, s.claims), false, "the refusal replaces the cached answer");
        assert.equal((await receipts(coach)).length, before, "a refused receipt is not recorded");
      });
    } finally {
      await admin`delete from auth.users where id in (${client}, ${stranger}, ${coach})`;
      await admin.end();
      await sql.end();
    }
  },
});
