/**
 * The PHI access log's hash chain under real concurrency: many connections read history
 * at the same moment (each opens its transaction, then all are released together by a
 * barrier), and the chain must still verify with one chain position per row.
 */
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { ALICE, stack } from "../helpers.ts";

const CONNECTIONS = 20;
const sql = postgres(stack().env.DB_URL, { max: CONNECTIONS, onnotice: () => {} });
afterAll(() => sql.end());

/** A promise that resolves once `n` parties have arrived. */
function barrier(n: number): { arrive: () => Promise<void> } {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((r) => (release = r));
  return {
    arrive() {
      if (++arrived === n) release();
      return all;
    },
  };
}

describe("audit.phi_access_log under concurrent reads", () => {
  it("40 history reads, 20 in flight at once, leave an unbroken chain with one position per row", async () => {
    const purpose = `chain-test-${crypto.randomUUID()}`;
    for (let round = 0; round < 2; round++) {
      const gate = barrier(CONNECTIONS);
      await Promise.all(Array.from({ length: CONNECTIONS }, () =>
        sql.begin(async (tx) => {
          await tx`select set_config('role', 'service_role', true),
                          set_config('request.jwt.claims', '{"role":"service_role"}', true)`;
          await gate.arrive();
          await tx`select count(*) from public.get_interaction_history(user_id => ${ALICE}::uuid, page_size => 1, purpose => ${purpose})`;
        })));
    }
    const [{ n }] = await sql`select count(*)::int as n from audit.phi_access_log where purpose = ${purpose}`;
    expect(n).toBe(2 * CONNECTIONS);

    const [verdict] = await sql`select * from audit.verify_phi_access_log()`;
    expect(verdict.first_broken_id).toBeNull();
    // A second, independent check: no two rows share a predecessor.
    const [{ shared }] = await sql`
      select count(*)::int as shared from (
        select prev_hash from audit.phi_access_log group by prev_hash having count(*) > 1) d`;
    expect(shared).toBe(0);
  });
});
