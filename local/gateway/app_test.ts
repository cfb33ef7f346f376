/**
 * Gateway tests against the test run's database (GATEWAY_TEST_DB_URL as authenticator,
 * SUPABASE_DB_URL as postgres for fixtures), with fixture functions in testdata/.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { SignJWT } from "jose";
import { createGateway } from "./app.ts";
import { join } from "./path.ts";

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`app_test.ts needs ${name}; run it through npm test`);
  return v;
}

const keys = {
  jwtSecret: "super-secret-jwt-token-with-at-least-32-characters-long",
  anonKey: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0",
  serviceRoleKey: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU",
  publishableKey: "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH",
  secretKey: "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz",
};
const ALICE = "a11ce000-0000-4000-8000-000000000001";

async function sign(claims: Record<string, unknown>, secret = keys.jwtSecret): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
}
const now = () => Math.floor(Date.now() / 1000);
const aliceToken = () => sign({ sub: ALICE, role: "authenticated", email: "alice@example.com", exp: now() + 600 });

const admin = postgres(need("SUPABASE_DB_URL"), { max: 1, onnotice: () => {} });
const sql = postgres(need("GATEWAY_TEST_DB_URL"), { max: 4, prepare: false, onnotice: () => {} });
const logs: Record<string, unknown>[] = [];
const gateway = createGateway({
  keys,
  sql,
  functionsDir: join(import.meta.dirname!, "testdata", "functions"),
  functions: { open: { verify_jwt: false } },
  log: (line) => logs.push(line),
});

const FIXTURES = `
  create sequence public.gw_test_seq;
  create type public.gw_test_pair as (a int, b text);
  create function public.gw_test_set(n int) returns setof int language sql stable as 'select generate_series(1, n)';
  create function public.gw_test_rows() returns setof public.gw_test_pair language sql stable
    as $$ select * from (values (1, 'one'), (2, 'two')) v(a, b) $$;
  create function public.gw_test_row() returns public.gw_test_pair language sql stable as $$ select 1, 'one' $$;
  create function public.gw_test_scalar(a int, b int default 2) returns int language sql immutable as 'select a * b';
  create function public.gw_test_array(xs int[]) returns int language sql immutable as 'select sum(x)::int from unnest(xs) x';
  create function public.gw_test_void() returns void language sql volatile as 'select';
  create function public.gw_test_json(jsonb) returns jsonb language sql immutable as 'select $1';
  create function public.gw_test_context() returns jsonb language sql stable as $$
    select jsonb_build_object(
      'role', current_user,
      'sub', auth.uid(),
      'method', current_setting('request.method', true),
      'path', current_setting('request.path', true),
      'x_test', current_setting('request.headers', true)::jsonb ->> 'x-test')
  $$;
  create function public.gw_test_raise(code text) returns void language plpgsql as $$
    begin raise exception 'raised %', code using errcode = code, detail = 'some detail', hint = 'some hint'; end $$;
  create function public.gw_test_write() returns bigint language sql volatile as $$ select nextval('public.gw_test_seq') $$;
  create function public.gw_test_service_only() returns int language sql stable as 'select 1';
  grant usage on sequence public.gw_test_seq to anon, authenticated;
  grant execute on function public.gw_test_set(int), public.gw_test_rows(), public.gw_test_row(),
    public.gw_test_scalar(int, int), public.gw_test_array(int[]), public.gw_test_void(), public.gw_test_json(jsonb),
    public.gw_test_context(), public.gw_test_raise(text), public.gw_test_write() to anon, authenticated;
  grant execute on function public.gw_test_service_only() to service_role;
`;
const CLEANUP = `
  drop function if exists public.gw_test_set(int), public.gw_test_rows(), public.gw_test_row(),
    public.gw_test_scalar(int, int), public.gw_test_array(int[]), public.gw_test_void(), public.gw_test_json(jsonb),
    public.gw_test_context(), public.gw_test_raise(text), public.gw_test_write(), public.gw_test_service_only();
  drop type if exists public.gw_test_pair;
  drop sequence if exists public.gw_test_seq;
`;

async function call(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
  return await gateway(new Request(`http://gateway.test${path}`, init));
}
async function rpc(name: string, body: unknown, headers: Record<string, string> = {}, method = "POST"): Promise<Response> {
  return await call(`/rest/v1/rpc/${name}`, {
    method,
    headers: { apikey: keys.anonKey, "content-type": "application/json", ...headers },
    body: method === "POST" ? JSON.stringify(body) : undefined,
  });
}

Deno.test({
  name: "gateway",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await admin.unsafe(CLEANUP);
    await admin.unsafe(FIXTURES);
    try {
      await t.step("functions: an unknown function answers 404", async () => {
        const res = await call("/functions/v1/nope", { headers: { authorization: `Bearer ${keys.anonKey}` } });
        assert.equal(res.status, 404);
        assert.equal((await res.json()).code, "NOT_FOUND");
      });
      await t.step("functions: _shared is not a function", async () => {
        const res = await call("/functions/v1/_shared", { headers: { authorization: `Bearer ${keys.anonKey}` } });
        assert.equal(res.status, 404);
        await res.body?.cancel();
      });
      await t.step("functions: a missing token answers 401 with a JSON body", async () => {
        const res = await call("/functions/v1/echo");
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), { msg: "Missing authorization header" });
      });
      await t.step("functions: a malformed, wrongly signed or expired token answers 401 Invalid JWT", async () => {
        for (const token of ["not-a-jwt", await sign({ role: "anon" }, "another-secret-another-secret-another"), await sign({ role: "anon", exp: now() - 10 })]) {
          const res = await call("/functions/v1/echo", { headers: { authorization: `Bearer ${token}` } });
          assert.equal(res.status, 401);
          assert.deepEqual(await res.json(), { msg: "Invalid JWT" });
        }
      });
      await t.step("functions: a valid token reaches the handler with the path stripped of /functions/v1", async () => {
        const token = await aliceToken();
        const res = await call("/functions/v1/echo/sub/path?x=1", { method: "POST", body: "hi", headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.path, "/echo/sub/path");
        assert.equal(body.search, "?x=1");
        assert.equal(body.body, "hi");
        assert.equal(body.authorization, `Bearer ${token}`);
        assert.equal(res.headers.get("access-control-allow-origin"), "*");
      });
      await t.step("functions: sb_publishable and sb_secret keys map to the anon and service_role JWTs", async () => {
        let res = await call("/functions/v1/echo", { headers: { apikey: keys.publishableKey } });
        assert.equal((await res.json()).authorization, `Bearer ${keys.anonKey}`);
        res = await call("/functions/v1/echo", { headers: { authorization: `Bearer ${keys.secretKey}` } });
        assert.equal((await res.json()).authorization, `Bearer ${keys.serviceRoleKey}`);
      });
      await t.step("functions: verify_jwt = false lets a request without a token through", async () => {
        const res = await call("/functions/v1/open");
        assert.equal(res.status, 200);
        assert.equal((await res.json()).authorization, null);
      });
      await t.step("functions: OPTIONS is a CORS preflight without a token", async () => {
        const res = await call("/functions/v1/echo", { method: "OPTIONS" });
        assert.equal(res.status, 200);
        assert.match(res.headers.get("access-control-allow-headers") ?? "", /apikey/);
        await res.body?.cancel();
      });
      await t.step("functions: a handler that throws answers 500 with a JSON body and a log line", async () => {
        logs.length = 0;
        const res = await call("/functions/v1/boom", { headers: { authorization: `Bearer ${keys.anonKey}` } });
        assert.equal(res.status, 500);
        assert.equal((await res.json()).code, "WORKER_ERROR");
        assert.ok(logs.some((l) => l.level === "error" && String(l.error).includes("failed on purpose")));
      });

      await t.step("functions: a module that fails to load answers 500 with a JSON body, every time", async () => {
        for (let i = 0; i < 2; i++) {
          const res = await call("/functions/v1/broken", { headers: { authorization: `Bearer ${keys.anonKey}` } });
          assert.equal(res.status, 500);
          assert.equal((await res.json()).code, "WORKER_ERROR");
        }
      });
      await t.step("rest: no apikey and no token answers 401", async () => {
        const res = await call("/rest/v1/rpc/gw_test_row", { method: "POST" });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).message, "No API key found in request");
      });
      await t.step("rest: an invalid or expired token answers 401 PGRST301 / PGRST303", async () => {
        let res = await rpc("gw_test_row", {}, { authorization: "Bearer nonsense" });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).code, "PGRST301");
        res = await rpc("gw_test_row", {}, { authorization: `Bearer ${await sign({ role: "anon", exp: now() - 5 })}` });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).code, "PGRST303");
      });
      await t.step("rest: table routes answer 501 naming hosted Supabase", async () => {
        const res = await call("/rest/v1/profiles?select=*", { headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 501);
        assert.match((await res.json()).message, /hosted Supabase or supabase start/);
      });
      await t.step("rpc: setof scalar returns a JSON array with Content-Range", async () => {
        const res = await rpc("gw_test_set", { n: 3 });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), [1, 2, 3]);
        assert.equal(res.headers.get("content-range"), "0-2/*");
      });
      await t.step("rpc: Prefer count=exact gives the total in Content-Range", async () => {
        const res = await rpc("gw_test_set", { n: 4 }, { prefer: "count=exact" });
        assert.equal(res.headers.get("content-range"), "0-3/4");
        await res.body?.cancel();
      });
      await t.step("rpc: setof composite returns an array of objects", async () => {
        const res = await rpc("gw_test_rows", {});
        assert.deepEqual(await res.json(), [{ a: 1, b: "one" }, { a: 2, b: "two" }]);
      });
      await t.step("rpc: a single composite returns an object, a scalar returns the value", async () => {
        assert.deepEqual(await (await rpc("gw_test_row", {})).json(), { a: 1, b: "one" });
        assert.equal(await (await rpc("gw_test_scalar", { a: 3 })).json(), 6);
        assert.equal(await (await rpc("gw_test_scalar", { a: 3, b: 5 })).json(), 15);
        assert.equal(await (await rpc("gw_test_array", { xs: [1, 2, 3] })).json(), 6);
      });
      await t.step("rpc: a void function answers 204", async () => {
        const res = await rpc("gw_test_void", {});
        assert.equal(res.status, 204);
        assert.equal(await res.text(), "");
      });
      await t.step("rpc: a single unnamed jsonb parameter receives the whole body", async () => {
        assert.deepEqual(await (await rpc("gw_test_json", { any: ["thing"] })).json(), { any: ["thing"] });
      });
      await t.step("rpc: GET takes arguments from the query string", async () => {
        const res = await call("/rest/v1/rpc/gw_test_scalar?a=4&b=5", { headers: { apikey: keys.anonKey } });
        assert.equal(await res.json(), 20);
      });
      await t.step("rpc: role, claims, method, path and headers are set for the call", async () => {
        const res = await rpc("gw_test_context", {}, { authorization: `Bearer ${await aliceToken()}`, "X-Test": "yes" });
        assert.deepEqual(await res.json(), {
          role: "authenticated", sub: ALICE, method: "POST", path: "/rpc/gw_test_context", x_test: "yes",
        });
        const anon = await (await rpc("gw_test_context", {})).json();
        assert.equal(anon.role, "anon");
        assert.equal(anon.sub, null);
      });
      await t.step("rpc: unknown function or arguments answer 404 PGRST202", async () => {
        let res = await rpc("gw_test_missing", {});
        assert.equal(res.status, 404);
        let body = await res.json();
        assert.equal(body.code, "PGRST202");
        assert.equal(body.message, "Could not find the function public.gw_test_missing without parameters in the schema cache");
        res = await rpc("gw_test_scalar", { a: 1, zzz: 2 });
        body = await res.json();
        assert.equal(res.status, 404);
        assert.equal(body.message, "Could not find the function public.gw_test_scalar(a, zzz) in the schema cache");
      });
      await t.step("rpc: invalid JSON answers 400 PGRST102", async () => {
        const res = await call("/rest/v1/rpc/gw_test_row", { method: "POST", body: "{nope", headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 400);
        assert.equal((await res.json()).code, "PGRST102");
      });
      await t.step("rpc: database errors keep code, message, details and hint with PostgREST's status", async () => {
        const cases: [string, number][] = [["P0001", 400], ["23505", 409], ["23503", 409], ["22023", 400], ["PT402", 402], ["XX000", 500], ["40001", 500]];
        for (const [code, status] of cases) {
          const res = await rpc("gw_test_raise", { code });
          assert.equal(res.status, status, code);
          assert.deepEqual(await res.json(), { code, message: `raised ${code}`, details: "some detail", hint: "some hint" });
        }
      });
      await t.step("rpc: permission denied is 401 for anon and 403 for a signed-in user", async () => {
        let res = await rpc("gw_test_service_only", {});
        assert.equal(res.status, 401);
        assert.equal((await res.json()).code, "42501");
        res = await rpc("gw_test_service_only", {}, { authorization: `Bearer ${await aliceToken()}` });
        assert.equal(res.status, 403);
        await res.body?.cancel();
        res = await rpc("gw_test_service_only", {}, { authorization: `Bearer ${keys.serviceRoleKey}` });
        assert.equal(await res.json(), 1);
      });
      await t.step("rpc: GET runs read-only, so a volatile function answers 405", async () => {
        const res = await call("/rest/v1/rpc/gw_test_write", { headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 405);
        assert.equal((await res.json()).code, "25006");
        assert.equal(await (await rpc("gw_test_write", {})).json(), 1);
      });
      await t.step("rpc: Accept object returns one row or 406 PGRST116", async () => {
        const accept = { accept: "application/vnd.pgrst.object+json" };
        assert.equal(await (await rpc("gw_test_set", { n: 1 }, accept)).json(), 1);
        const res = await rpc("gw_test_set", { n: 2 }, accept);
        assert.equal(res.status, 406);
        assert.equal((await res.json()).code, "PGRST116");
      });
      await t.step("rpc: a schema other than public answers 406 PGRST106", async () => {
        const res = await rpc("gw_test_row", {}, { "content-profile": "private" });
        assert.equal(res.status, 406);
        assert.equal((await res.json()).code, "PGRST106");
      });
      await t.step("rpc: filters on results are refused with 501 rather than ignored", async () => {
        const res = await call("/rest/v1/rpc/gw_test_rows?a=eq.1", { method: "POST", body: "{}", headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 501);
        await res.body?.cancel();
      });
      await t.step("other platform routes answer 501", async () => {
        const res = await call("/auth/v1/token?grant_type=password", { method: "POST" });
        assert.equal(res.status, 501);
        await res.body?.cancel();
      });
    } finally {
      await admin.unsafe(CLEANUP);
      await admin.end();
      await sql.end();
    }
  },
});
