import assert from "node:assert/strict";
import { ApplicationStatusSchema, COACH_STATES, coachStateToDb, dbToCoachState } from "./coach_state.ts";
import { adminSql } from "./testing/fixtures.ts";

Deno.test("coachStateToDb() and dbToCoachState() round-trip all seven states", () => {
  for (const state of COACH_STATES) {
    const db = coachStateToDb(state);
    assert.equal(dbToCoachState(db.status, db.metadata), state, state);
  }
  assert.throws(() => coachStateToDb("Nope" as never));
  assert.equal(dbToCoachState("draft", { coach_stage: "outcome_pending" }), "Tracked", "a stage of another status reads as the first state");
  assert.equal(dbToCoachState("submitted"), "Submitted");
});

Deno.test({
  name: "the TypeScript mapping and the SQL one agree on every state, both ways, and on the statuses",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sql = adminSql();
    try {
      const rows = await sql`select s as state, (public.coach_state_to_db(s)).status::text as status,
                                    (public.coach_state_to_db(s)).metadata as metadata,
                                    public.db_to_coach_state(public.coach_state_to_db(s)) as back
                             from unnest(${[...COACH_STATES]}::text[]) s`;
      for (const r of rows) {
        assert.deepEqual({ status: r.status, metadata: r.metadata }, coachStateToDb(r.state), r.state);
        assert.equal(r.back, r.state);
      }
      // Every (status, stage) pair, the stray ones included, reads the same on both sides.
      const pairs = await sql`select st::text as status, m as metadata, public.db_to_coach_state(st, m) as state
                              from unnest(enum_range(null::public.application_status)) st,
                                   unnest(array['{}', '{"coach_stage": "review"}', '{"coach_stage": "drafting"}',
                                                '{"coach_stage": "outcome_pending"}', '{"coach_stage": 7}']::jsonb[]) m`;
      for (const p of pairs) assert.equal(dbToCoachState(p.status, p.metadata), p.state, `${p.status} ${JSON.stringify(p.metadata)}`);
      const [{ labels }] = await sql`select enum_range(null::public.application_status)::text[] as labels`;
      assert.deepEqual(labels, ApplicationStatusSchema.options);
      await assert.rejects(sql`select public.coach_state_to_db('Nope')`, /Unknown coach state: Nope/);
    } finally {
      await sql.end();
    }
  },
});
