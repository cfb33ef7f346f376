/**
 * PostgREST's RPC behaviours the stand-in copies (issue 14), each from PostgREST's docs:
 * a composite with no row, VARIADIC arguments, db-max-rows, RAISE SQLSTATE 'PGRST',
 * response.status / response.headers, the "Perhaps you meant" hints, a permission error
 * for anon, and the schema cache reloading after DDL (NOTIFY pgrst).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createGateway } from "../app.ts";
import type { Keys } from "../keys.ts";

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`rpc_test.ts needs ${name}; run it through npm test`);
  return v;
}

const keys: Keys = {
  jwtSecret: need("SUPABASE_JWT_SECRET"),
  anonKey: need("SUPABASE_ANON_KEY"),
  serviceRoleKey: need("SUPABASE_SERVICE_ROLE_KEY"),
  publishableKey: need("SUPABASE_PUBLISHABLE_KEY"),
  secretKey: need("SUPABASE_SECRET_KEY"),
  authIssuer: "http://gateway.test/auth/v1",
};
const admin = postgres(need("SUPABASE_DB_URL"), { max: 1, onnotice: () => {} });
const sql = postgres(need("GATEWAY_TEST_DB_URL"), { max: 4, prepare: false, onnotice: () => {} });
const gateway = createGateway({ keys, sql, functionsDir: "/nonexistent", functions: {}, log: () => {}, maxRows: 3 });

const FIXTURES = `
  create type public.gw_rpc_pair as (id int, label text);
  create function public.gw_rpc_nothing() returns public.gw_rpc_pair language sql stable as 'select null::public.gw_rpc_pair';
  create function public.gw_rpc_variadic(prefix text, variadic xs int[]) returns text language sql immutable
    as $$ select prefix || array_to_string(xs, ',') $$;
  create function public.gw_rpc_five() returns setof int language sql stable as 'select generate_series(1, 5)';
  create function public.gw_rpc_teapot() returns json language plpgsql as $$
  begin
    perform set_config('response.status', '418', true);
    perform set_config('response.headers', '[{"Cache-Control": "public"}, {"X-Brewed-By": "pg"}]', true);
    return json_build_object('message', 'short and stout');
  end $$;
  create function public.gw_rpc_bad_status() returns int language plpgsql as $$
  begin perform set_config('response.status', 'teapot', true); return 1; end $$;
  create function public.gw_rpc_bad_headers() returns int language plpgsql as $$
  begin perform set_config('response.headers', '{"X-Not": "an array"}', true); return 1; end $$;
  create function public.gw_rpc_pay() returns void language plpgsql as $$
  begin
    raise sqlstate 'PGRST' using
      message = '{"code":"123","message":"Payment Required","details":"Quota exceeded","hint":"Upgrade your plan"}',
      detail = '{"status":402,"headers":{"X-Powered-By":"Nerd Rage"}}';
  end $$;
  create function public.gw_rpc_pay_badly() returns void language plpgsql as $$
  begin raise sqlstate 'PGRST' using message = 'not json', detail = '{"status":402,"headers":{}}'; end $$;
  create function public.gw_rpc_bad_header_name() returns void language plpgsql as $$
  begin raise sqlstate 'PGRST' using message = '{"code":"1","message":"m"}', detail = '{"status":400,"headers":{"Bad Header":"x"}}'; end $$;
  create function public.gw_rpc_not_modified() returns int language plpgsql as $$
  begin perform set_config('response.status', '304', true); return 1; end $$;
  create function public.gw_rpc_members_only() returns int language sql stable as 'select 1';
  create function public.gw_rpc_table(n int) returns table (k int, label text) language sql stable
    as $$ select g, 'n' || g from generate_series(1, n) g $$;
  create function public.gw_rpc_echo_json(doc jsonb) returns jsonb language sql immutable as 'select doc';
  create type public.gw_rpc_person as (id int, name text, age int);
  create function public.gw_rpc_people(team text default 'a') returns setof public.gw_rpc_person language sql stable as $$
    select * from (values (1, 'Ann', 31), (2, 'Bob', null), (3, 'Cy', 25), (4, 'Dee, Jr.', 40), (5, 'Eve', 31)) as v(id, name, age)
    where team = 'a'
  $$;
  grant execute on function public.gw_rpc_nothing(), public.gw_rpc_variadic(text, int[]), public.gw_rpc_five(),
    public.gw_rpc_teapot(), public.gw_rpc_bad_status(), public.gw_rpc_bad_headers(), public.gw_rpc_pay(),
    public.gw_rpc_pay_badly(), public.gw_rpc_people(text), public.gw_rpc_table(int), public.gw_rpc_echo_json(jsonb),
    public.gw_rpc_bad_header_name(), public.gw_rpc_not_modified() to anon, authenticated;
  revoke execute on function public.gw_rpc_members_only() from public, anon;
  grant execute on function public.gw_rpc_members_only() to authenticated;
`;
const CLEANUP = `
  drop function if exists public.gw_rpc_nothing(), public.gw_rpc_variadic(text, int[]), public.gw_rpc_five(),
    public.gw_rpc_teapot(), public.gw_rpc_bad_status(), public.gw_rpc_bad_headers(), public.gw_rpc_pay(),
    public.gw_rpc_pay_badly(), public.gw_rpc_members_only(), public.gw_rpc_late(), public.gw_rpc_people(text),
    public.gw_rpc_table(int), public.gw_rpc_echo_json(jsonb), public.gw_rpc_bad_header_name(), public.gw_rpc_not_modified();
  drop type if exists public.gw_rpc_pair;
  drop type if exists public.gw_rpc_person;
`;

async function rpc(name: string, init: { body?: unknown; method?: string; query?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const method = init.method ?? "POST";
  return await gateway(new Request(`http://gateway.test/rest/v1/rpc/${name}${init.query ?? ""}`, {
    method,
    headers: { apikey: keys.anonKey, "content-type": "application/json", ...init.headers },
    body: method === "POST" ? JSON.stringify(init.body ?? {}) : undefined,
  }));
}

Deno.test({
  name: "PostgREST RPC conformance",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await admin.unsafe(CLEANUP);
    await admin.unsafe(FIXTURES);
    try {
      await t.step("a function returning a composite with no row answers an object of nulls", async () => {
        const res = await rpc("gw_rpc_nothing");
        assert.equal(res.status, 200, await res.clone().text());
        assert.deepEqual(await res.json(), { id: null, label: null });
      });

      await t.step("VARIADIC: an array in a POST body, repeated or single values in a GET query", async () => {
        let res = await rpc("gw_rpc_variadic", { body: { prefix: "n:", xs: [1, 2, 3] } });
        assert.equal(res.status, 200);
        assert.equal(await res.json(), "n:1,2,3");
        res = await rpc("gw_rpc_variadic", { method: "GET", query: "?prefix=n:&xs=4&xs=5" });
        assert.equal(await res.json(), "n:4,5");
        res = await rpc("gw_rpc_variadic", { method: "GET", query: "?prefix=n:&xs=6" });
        assert.equal(await res.json(), "n:6");
      });

      await t.step("db-max-rows caps a set-returning function; count=exact still counts every row", async () => {
        let res = await rpc("gw_rpc_five");
        assert.deepEqual(await res.json(), [1, 2, 3]);
        assert.equal(res.headers.get("content-range"), "0-2/*");
        res = await rpc("gw_rpc_five", { headers: { prefer: "count=exact" } });
        assert.deepEqual(await res.json(), [1, 2, 3]);
        assert.equal(res.headers.get("content-range"), "0-2/5");
      });

      await t.step("response.status and response.headers set by the function shape the response", async () => {
        const res = await rpc("gw_rpc_teapot");
        assert.equal(res.status, 418);
        assert.equal(res.headers.get("cache-control"), "public");
        assert.equal(res.headers.get("x-brewed-by"), "pg");
        assert.deepEqual(await res.json(), { message: "short and stout" });
        const status = await rpc("gw_rpc_bad_status");
        assert.equal(status.status, 500);
        assert.deepEqual(await status.json(), { code: "PGRST112", message: "Status code must be a positive integer", details: null, hint: null });
        const headers = await rpc("gw_rpc_bad_headers");
        assert.equal(headers.status, 500);
        assert.equal((await headers.json()).code, "PGRST111");
        const notModified = await rpc("gw_rpc_not_modified");
        assert.equal(notModified.status, 304);
        assert.equal(await notModified.text(), "");
      });

      await t.step("RAISE SQLSTATE 'PGRST' sets the status, headers and body; unparseable JSON is PGRST121", async () => {
        const res = await rpc("gw_rpc_pay");
        assert.equal(res.status, 402);
        assert.equal(res.headers.get("x-powered-by"), "Nerd Rage");
        assert.deepEqual(await res.json(), { code: "123", message: "Payment Required", details: "Quota exceeded", hint: "Upgrade your plan" });
        const bad = await rpc("gw_rpc_pay_badly");
        assert.equal(bad.status, 500);
        assert.deepEqual(await bad.json(), {
          code: "PGRST121",
          message: "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
          details: "Invalid JSON value for MESSAGE: 'not json'",
          hint: "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.",
        });
        const badName = await rpc("gw_rpc_bad_header_name");
        assert.equal(badName.status, 500);
        assert.equal((await badName.json()).code, "PGRST121");
      });

      await t.step("PGRST202 hints at the function or the parameters meant, as PostgREST's fuzzy search does", async () => {
        let res = await rpc("gw_rpc_variadik", { body: { prefix: "x" } });
        assert.equal(res.status, 404);
        assert.deepEqual(await res.json(), {
          code: "PGRST202",
          message: "Could not find the function public.gw_rpc_variadik(prefix) in the schema cache",
          details: "Searched for the function public.gw_rpc_variadik with parameter prefix or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
          hint: "Perhaps you meant to call the function public.gw_rpc_variadic",
        });
        res = await rpc("gw_rpc_variadic", { body: { prefix: "x", x: [1] } });
        assert.equal((await res.json()).hint, "Perhaps you meant to call the function public.gw_rpc_variadic(prefix, xs)");
        res = await rpc("zzzzzz_qqqq", { method: "GET" });
        const far = await res.json();
        assert.equal(far.hint, null);
        assert.equal(far.details, "Searched for the function public.zzzzzz_qqqq without parameters, but no matches were found in the schema cache.");
      });

      await t.step("RPC results take select, filters, order, limit, offset and Range, as postgrest-js sends them", async () => {
        // supabase.rpc("gw_rpc_people", { team: "a" }).select("id,who:name").gt("age", 30).order("id", { ascending: false })
        let res = await rpc("gw_rpc_people", { body: { team: "a" }, query: "?select=id,who:name&age=gt.30&order=id.desc" });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), [{ id: 5, who: "Eve" }, { id: 4, who: "Dee, Jr." }, { id: 1, who: "Ann" }]);
        // GET: parameters without an operator are arguments, the others filters.
        res = await rpc("gw_rpc_people", { method: "GET", query: "?team=a&select=id&name=in.(Ann,\"Dee, Jr.\")&order=id" });
        assert.deepEqual(await res.json(), [{ id: 1 }, { id: 4 }]);
        res = await rpc("gw_rpc_people", { method: "GET", query: "?select=id,age::text&age=is.null" });
        assert.deepEqual(await res.json(), [{ id: 2, age: null }]);
        res = await rpc("gw_rpc_people", { method: "GET", query: "?select=id&name=ilike.*E*&age=not.eq.31" });
        assert.deepEqual(await res.json(), [{ id: 4 }]);
        res = await rpc("gw_rpc_people", { method: "GET", query: "?select=id&order=age.desc.nullsfirst,id&limit=3" });
        assert.deepEqual(await res.json(), [{ id: 2 }, { id: 4 }, { id: 1 }]);
        // .range(1, 2) sends offset and limit; count=exact counts the filtered rows.
        res = await rpc("gw_rpc_people", { method: "GET", query: "?select=id&order=id&offset=1&limit=2", headers: { prefer: "count=exact" } });
        assert.deepEqual(await res.json(), [{ id: 2 }, { id: 3 }]);
        assert.equal(res.headers.get("content-range"), "1-2/5");
        res = await rpc("gw_rpc_people", { method: "GET", query: "?select=id&order=id", headers: { range: "3-9" } });
        assert.deepEqual(await res.json(), [{ id: 4 }, { id: 5 }]);
        assert.equal(res.headers.get("content-range"), "3-4/*");
        // Accept: application/vnd.pgrst.object+json after a filter (.single()).
        res = await rpc("gw_rpc_people", { method: "GET", query: "?id=eq.3", headers: { accept: "application/vnd.pgrst.object+json" } });
        assert.deepEqual(await res.json(), { id: 3, name: "Cy", age: 25 });
      });

      await t.step("RETURNS TABLE columns take select and filters; a GET's jsonb argument is the JSON it spells", async () => {
        let res = await rpc("gw_rpc_table", { method: "GET", query: "?n=4&select=label&k=gte.3&order=k.desc" });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), [{ label: "n4" }, { label: "n3" }]);
        res = await rpc("gw_rpc_echo_json", { method: "GET", query: `?doc=${encodeURIComponent('{"a":[1,2]}')}` });
        assert.deepEqual(await res.json(), { a: [1, 2] });
        res = await rpc("gw_rpc_echo_json", { method: "GET", query: "?doc=%7Bnot" });
        assert.equal(res.status, 400);
        assert.equal((await res.json()).code, "22P02");
      });

      await t.step("paging applies to a set of scalars; a single value ignores the Range header", async () => {
        let res = await rpc("gw_rpc_five", { method: "GET", query: "?offset=1&limit=2" });
        assert.deepEqual(await res.json(), [2, 3]);
        assert.equal(res.headers.get("content-range"), "1-2/*");
        res = await rpc("gw_rpc_five", { method: "GET", headers: { range: "2-" } });
        assert.deepEqual(await res.json(), [3, 4, 5].slice(0, 3));
        res = await rpc("gw_rpc_nothing", { method: "GET", headers: { range: "0-1" } });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { id: null, label: null });
        res = await rpc("gw_rpc_five", { method: "GET", query: "?gw_rpc_five=eq.2" });
        assert.equal(res.status, 501);
        assert.equal((await res.json()).code, "PGRST000");
      });

      await t.step("RPC query errors: PostgREST's parse errors and unknown columns; logic trees served", async () => {
        let res = await rpc("gw_rpc_people", { query: "?id=foo.3" });
        assert.equal(res.status, 400);
        assert.deepEqual(await res.json(), {
          code: "PGRST100", message: "failed to parse filter (foo.3)",
          details: "unexpected \"f\" expecting \"not\" or operator (eq, gt, ...)", hint: null,
        });
        res = await rpc("gw_rpc_people", { method: "GET", query: "?select=nope" });
        assert.equal(res.status, 400);
        assert.deepEqual(await res.json(), { code: "42703", message: "column gw_rpc_people.nope does not exist", details: null, hint: null });
        res = await rpc("gw_rpc_people", { method: "GET", query: "?select=id&or=(id.eq.1,id.eq.2)&order=id" });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), [{ id: 1 }, { id: 2 }]);
        res = await rpc("gw_rpc_people", { method: "GET", query: "?age=eq.notanumber" });
        assert.equal(res.status, 400);
        assert.equal((await res.json()).code, "22P02");
      });

      await t.step("a permission error for anon is 401 with WWW-Authenticate: Bearer", async () => {
        const res = await rpc("gw_rpc_members_only");
        assert.equal(res.status, 401);
        assert.equal(res.headers.get("www-authenticate"), "Bearer");
        assert.equal((await res.json()).code, "42501");
      });

      await t.step("the schema cache reloads after DDL (the pgrst_ddl_watch event trigger's NOTIFY)", async () => {
        assert.equal((await rpc("gw_rpc_late")).status, 404);
        await admin.unsafe(`create function public.gw_rpc_late() returns int language sql stable as 'select 7';
                            grant execute on function public.gw_rpc_late() to anon`);
        let res: Response | undefined;
        for (let i = 0; i < 50; i++) {
          res = await rpc("gw_rpc_late");
          if (res.status === 200) break;
          await res.body?.cancel();
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(res!.status, 200);
        assert.equal(await res!.json(), 7);
      });
    } finally {
      await admin.unsafe(CLEANUP);
      await admin.end();
      await sql.end();
    }
  },
});
