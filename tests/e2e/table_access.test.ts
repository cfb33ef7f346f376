/**
 * Table access through supabase-js `from()` (issue 14): for every table and view of the
 * exposed schema, as each named user (Alice the owner, Bob a stranger, Carol her coach,
 * anon, the service role), what the gateway answers is exactly what PostgreSQL's rules
 * (grants and RLS, proven in pgTAP) give that user in SQL; and no stranger, coach or anon
 * write through `from()` changes anything.
 */
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { mintToken } from "../../local/stack.ts";
import { ALICE, BOB, CAROL, client, stack } from "../helpers.ts";

const sql = postgres(stack().env.DB_URL, { max: 1, onnotice: () => {} });
afterAll(() => sql.end());

const relations = await sql<{ name: string; kind: string; pk: string | null; col: string }[]>`
  select c.relname as name, c.relkind as kind,
         (select a.attname from pg_constraint k join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
          where k.conrelid = c.oid and k.contype = 'p') as pk,
         (select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum limit 1) as col
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind in ('r', 'v') and c.relname not like 'cf\\_%'
  order by 1`;

const USERS = { alice: { id: ALICE, email: "alice@example.com" }, bob: { id: BOB, email: "bob@example.com" }, carol: { id: CAROL, email: "carol@example.com" } };
type Who = keyof typeof USERS | "anon" | "service";

// deno-lint-ignore no-explicit-any
async function clientOf(who: Who): Promise<any> {
  if (who === "anon") return client(stack().env.ANON_KEY);
  if (who === "service") return client(stack().env.SERVICE_ROLE_KEY);
  return client(stack().env.ANON_KEY, await mintToken(stack().cfg, { email: USERS[who].email }));
}

/** The relation's rows as `who` sees them in SQL: the role and claims PostgREST sets, so grants and RLS decide. */
async function rowsInSql(who: Exclude<Who, "anon">, table: string): Promise<string[]> {
  const role = who === "service" ? "service_role" : "authenticated";
  const claims = who === "service" ? { role } : { role, sub: USERS[who].id, aud: "authenticated" };
  const rows = await sql.begin(async (tx) => {
    await tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    return await tx.unsafe<{ row: string }[]>(`select row_to_json(t)::text as row from public."${table}" t`);
  });
  return rows.map((r) => r.row).sort();
}

/** A checksum of the whole relation, read as postgres. */
async function checksum(table: string): Promise<string> {
  const [r] = await sql.unsafe<{ sum: string }[]>(`select md5(coalesce(string_agg(t::text, ',' order by t::text), '')) as sum from public."${table}" t`);
  return r.sum;
}

describe("from() reads as each named user match the database's rules", () => {
  for (const who of ["alice", "bob", "carol", "service"] as const) {
    it(`${who}: every table and view`, async () => {
      const db = await clientOf(who);
      for (const { name } of relations) {
        const expected = await rowsInSql(who, name).catch((e: { code?: string }) => e.code ?? "error");
        const res = await db.from(name).select("*");
        if (typeof expected === "string") {
          // No grant: PostgreSQL's 42501 as PostgREST answers it to a signed-in user.
          expect(res.status, name).toBe(403);
          expect(res.error, name).toMatchObject({ code: expected });
          continue;
        }
        expect(res.error, name).toBeNull();
        const got = (res.data as unknown[]).map((r) => JSON.stringify(r));
        expect(got.length, name).toBe(expected.length);
        // Compare as PostgreSQL prints the rows: parse both so key order and number formats agree.
        expect(new Set(got.map((r) => JSON.stringify(JSON.parse(r)))), name).toEqual(new Set(expected.map((r) => JSON.stringify(JSON.parse(r)))));
      }
    });
  }

  it("the rules are not vacuous: Alice reads her own rows, Bob none of hers, Carol her client's profile (not her sessions), the service role everything", async () => {
    const [alice, bob, carol, service] = await Promise.all([clientOf("alice"), clientOf("bob"), clientOf("carol"), clientOf("service")]);
    const mine = await alice.from("coach_interactions").select("user_id");
    expect(mine.data.length).toBeGreaterThan(0);
    expect(new Set(mine.data.map((r: { user_id: string }) => r.user_id))).toEqual(new Set([ALICE]));
    expect((await bob.from("coach_interactions").select("id").eq("user_id", ALICE)).data).toEqual([]);
    expect((await bob.from("coaching_sessions").select("id").eq("user_id", ALICE)).data).toEqual([]);
    expect((await bob.from("profiles").select("id").eq("id", ALICE)).data).toEqual([]);
    expect((await carol.from("profiles").select("display_name").eq("id", ALICE)).data).toEqual([{ display_name: "Alice Archer" }]);
    expect((await carol.from("coaching_sessions").select("id").eq("user_id", ALICE)).data).toEqual([]);
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from public.coach_interactions`;
    const all = await service.from("coach_interactions").select("id", { count: "exact", head: true });
    expect(all.count).toBe(n);
  });

  it("anon: every table and view answers 401 42501 with WWW-Authenticate, as PostgREST does", async () => {
    const anon = await clientOf("anon");
    for (const { name } of relations) {
      const res = await anon.from(name).select("*");
      expect(res.status, name).toBe(401);
      expect(res.error, name).toMatchObject({ code: "42501" });
    }
  });
});

describe("from() writes by a stranger, a coach or anon change nothing", () => {
  for (const who of ["bob", "carol", "anon"] as const) {
    it(`${who}: insert, update, delete and PUT on every table and view`, async () => {
      const db = await clientOf(who);
      for (const { name, col, pk } of relations) {
        const before = await checksum(name);
        const inserted = await db.from(name).insert({});
        expect([401, 403, 400], `${name} insert ${inserted.status}`).toContain(inserted.status);
        if (who === "anon") expect(inserted.status, name).toBe(401);
        const updated = await db.from(name).update({ [col]: null }, { count: "exact" }).not(pk ?? col, "is", null);
        expect(updated.status === 204 ? updated.count : updated.status, `${name} update`).toBe(updated.status === 204 ? 0 : updated.status);
        if (updated.status !== 204) expect(updated.error?.code, name).toMatch(/^(42501|PGRST204)$/);
        const deleted = await db.from(name).delete({ count: "exact" }).not(pk ?? col, "is", null);
        if (deleted.status === 204) expect(deleted.count, `${name} delete`).toBe(0);
        else expect(deleted.error?.code, `${name} delete`).toBe("42501");
        // PUT (postgrest-js has no PUT): an existing row, one column changed, written back by its primary key.
        const keys = (await sql<{ k: string }[]>`select a.attname as k from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                                                 where i.indrelid = ${`public."${name}"`}::regclass and i.indisprimary`).map((r) => r.k);
        // Generated columns left out: PostgreSQL refuses a value for them before it checks privileges.
        const generated = (await sql<{ k: string }[]>`select attname as k from pg_attribute where attrelid = ${`public."${name}"`}::regclass and attgenerated <> ''`).map((r) => r.k);
        const [existing] = keys.length
          ? await sql.unsafe<{ row: Record<string, unknown> }[]>(`select to_jsonb(t) - $1::text[] as row from public."${name}" t limit 1`, [generated])
          : [];
        if (existing) {
          const query = keys.map((k) => `${k}=eq.${encodeURIComponent(String(existing.row[k]))}`).join("&");
          const changed = Object.keys(existing.row).find((k) => !keys.includes(k));
          const res = await fetch(`${stack().env.API_URL}/rest/v1/${name}?${query}`, {
            method: "PUT",
            headers: { apikey: stack().env.ANON_KEY, "content-type": "application/json", ...(who === "anon" ? {} : { authorization: `Bearer ${await mintToken(stack().cfg, { email: USERS[who].email })}` }) },
            body: JSON.stringify(changed ? { ...existing.row, [changed]: null } : existing.row),
          });
          expect([400, 401, 403], `${name} put ${res.status}`).toContain(res.status);
          if (who === "anon") expect(res.status, name).toBe(401);
        }
        expect(await checksum(name), name).toBe(before);
      }
    });
  }
});
