/**
 * Gateway tests against the test run's database (GATEWAY_TEST_DB_URL as authenticator,
 * SUPABASE_DB_URL as postgres for fixtures), with fixture functions in testdata/.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { SignJWT } from "jose";
import { createGateway } from "./app.ts";
import { statusForSqlState } from "./errors.ts";
import { join } from "./path.ts";
import { seen as waitFixture } from "./testdata/functions/wait/handler.ts";

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
  authIssuer: "http://gateway.test/auth/v1",
};
const ALICE = "a11ce000-0000-4000-8000-000000000001";

async function sign(claims: Record<string, unknown>, secret = keys.jwtSecret): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
}
const now = () => Math.floor(Date.now() / 1000);
/** Claims of a user token as GoTrue issues one (the gateway checks iss, aud, sub and exp). */
const userClaims = (extra: Record<string, unknown> = {}) => ({
  iss: keys.authIssuer, aud: "authenticated", sub: ALICE, role: "authenticated", email: "alice@example.com", exp: now() + 600, ...extra,
});
const aliceToken = () => sign(userClaims());

const admin = postgres(need("SUPABASE_DB_URL"), { max: 1, onnotice: () => {} });
const sql = postgres(need("GATEWAY_TEST_DB_URL"), { max: 4, prepare: false, onnotice: () => {} });
const logs: Record<string, unknown>[] = [];
const functionsDir = join(import.meta.dirname!, "testdata", "functions");
const gateway = createGateway({
  keys,
  sql,
  functionsDir,
  functions: { open: { verify_jwt: false } },
  log: (line) => logs.push(line),
});
/** The same gateway with small limits, so limits can be hit quickly. */
const small = createGateway({
  keys,
  sql,
  functionsDir,
  functions: { open: { verify_jwt: false } },
  log: () => {},
  limits: { maxBodyBytes: 64, bodyTimeoutMs: 200, maxJsonDepth: 8 },
});
/** A free port nothing listens on, for a database that is down. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
const downSql = postgres(`postgresql://authenticator:postgres@127.0.0.1:${closedPort()}/postgres`, {
  max: 2, prepare: false, connect_timeout: 1, onnotice: () => {},
});
const down = createGateway({ keys, sql: downSql, functionsDir, functions: {}, log: () => {} });

/** A body stream that yields `chunk` bytes per pull, forever or until `total`; counts what was pulled. */
function stream(chunk: number, total = Infinity): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulled >= total) return c.close();
      pulled += chunk;
      c.enqueue(new TextEncoder().encode("x".repeat(chunk)));
    },
  });
  return { body, pulled: () => pulled };
}
/** A body stream that never sends anything. */
function stalled(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) });
}
const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

const FIXTURES = `
  create sequence public.gw_test_seq;
  create table public.gw_test_log (id serial primary key);
  create function public.gw_test_log_rows(n int) returns setof int language sql volatile
    as 'insert into public.gw_test_log default values; select generate_series(1, n)';
  grant insert on public.gw_test_log to anon, authenticated;
  grant usage on sequence public.gw_test_log_id_seq to anon, authenticated;
  grant execute on function public.gw_test_log_rows(int) to anon, authenticated;
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
      'x_test', current_setting('request.headers', true)::jsonb ->> 'x-test',
      'x_request_id', current_setting('request.headers', true)::jsonb ->> 'x-request-id')
  $$;
  create function public.gw_test_raise(code text) returns void language plpgsql as $$
    begin raise exception 'raised %', code using errcode = code, detail = 'some detail', hint = 'some hint'; end $$;
  create function public.gw_test_write() returns bigint language sql volatile as $$ select nextval('public.gw_test_seq') $$;
  create function public.gw_test_service_only() returns int language sql stable as 'select 1';
  create function public.gw_test_text(t text) returns text language sql immutable as 'select t';
  create function public.gw_test_timeout() returns text language sql stable as $$ select current_setting('statement_timeout') $$;
  create function public.gw_test_sleep(s float8) returns void language sql volatile as 'select pg_sleep(s)';
  create function public.gw_test_sleep_long(s float8) returns void language sql volatile
    set statement_timeout = '5s' as 'select pg_sleep(s)';
  do $$ begin
    if not exists (select from pg_roles where rolname = 'gw_test_short') then create role gw_test_short nologin; end if;
  end $$;
  alter role gw_test_short set statement_timeout = '100ms';
  grant gw_test_short to authenticator;
  grant usage on schema public to gw_test_short;
  grant execute on function public.gw_test_text(text), public.gw_test_timeout() to anon, authenticated;
  grant execute on function public.gw_test_sleep(float8), public.gw_test_sleep_long(float8) to gw_test_short;
  grant usage on sequence public.gw_test_seq to anon, authenticated;
  grant execute on function public.gw_test_set(int), public.gw_test_rows(), public.gw_test_row(),
    public.gw_test_scalar(int, int), public.gw_test_array(int[]), public.gw_test_void(), public.gw_test_json(jsonb),
    public.gw_test_context(), public.gw_test_raise(text), public.gw_test_write() to anon, authenticated;
  grant execute on function public.gw_test_service_only() to service_role;
`;
const CLEANUP = `
  drop function if exists public.gw_test_set(int), public.gw_test_rows(), public.gw_test_row(),
    public.gw_test_scalar(int, int), public.gw_test_array(int[]), public.gw_test_void(), public.gw_test_json(jsonb),
    public.gw_test_context(), public.gw_test_raise(text), public.gw_test_write(), public.gw_test_service_only(),
    public.gw_test_text(text), public.gw_test_timeout(), public.gw_test_sleep(float8), public.gw_test_sleep_long(float8);
  drop type if exists public.gw_test_pair;
  drop sequence if exists public.gw_test_seq;
  drop function if exists public.gw_test_log_rows(int);
  drop table if exists public.gw_test_log;
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
        for (const token of ["not-a-jwt", await sign(userClaims(), "another-secret-another-secret-another"), await sign(userClaims({ exp: now() - 10 }))]) {
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
        let res = await call("/functions/v1/echo", { headers: { authorization: `Bearer ${keys.publishableKey}` } });
        assert.equal((await res.json()).authorization, `Bearer ${keys.anonKey}`);
        res = await call("/functions/v1/echo", { headers: { authorization: `Bearer ${keys.secretKey}` } });
        assert.equal((await res.json()).authorization, `Bearer ${keys.serviceRoleKey}`);
        res = await call("/functions/v1/open", { headers: { apikey: keys.publishableKey } });
        assert.equal((await res.json()).authorization, `Bearer ${keys.anonKey}`, "verify_jwt = false forwards the mapped apikey");
      });
      await t.step("functions: verify_jwt = false lets a request without a token through", async () => {
        const res = await call("/functions/v1/open");
        assert.equal(res.status, 200);
        assert.equal((await res.json()).authorization, null);
      });
      await t.step("functions: OPTIONS is a CORS preflight without a token", async () => {
        const res = await call("/functions/v1/echo", { method: "OPTIONS" });
        assert.equal(res.status, 200);
        const allowed = (res.headers.get("access-control-allow-headers") ?? "").split(/,\s*/);
        for (const h of ["apikey", "authorization", "idempotency-key", "x-request-id", "x-tracked-skill-id"]) {
          assert.ok(allowed.includes(h), `${h} is allowed by the gateway's preflight`);
        }
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
        res = await rpc("gw_test_row", {}, { authorization: `Bearer ${await sign(userClaims({ exp: now() - 5 }))}` });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).code, "PGRST303");
      });
      await t.step("rest: a table anon has no grant on answers 401 42501 with WWW-Authenticate, as PostgREST does", async () => {
        const res = await call("/rest/v1/profiles?select=*", { headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 401);
        assert.equal(res.headers.get("www-authenticate"), "Bearer");
        assert.deepEqual(await res.json(), { code: "42501", message: "permission denied for table profiles", details: null, hint: null });
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
        const res = await rpc("gw_test_context", {}, { authorization: `Bearer ${await aliceToken()}`, "X-Test": "yes", "X-Request-Id": "trace-123" });
        assert.deepEqual(await res.json(), {
          role: "authenticated", sub: ALICE, method: "POST", path: "/rpc/gw_test_context", x_test: "yes", x_request_id: "trace-123",
        });
        // A malformed id never reaches SQL (where the PHI access log would store it): the
        // function sees the id the gateway made and answered with.
        const odd = await rpc("gw_test_context", {}, { "X-Request-Id": "a|b ".repeat(100) });
        const made = odd.headers.get("x-request-id");
        assert.match(made ?? "", /^[0-9a-f-]{36}$/);
        assert.equal((await odd.json()).x_request_id, made);
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
      await t.step("rpc: a 406 PGRST116 rolls back what the call wrote, as PostgREST does", async () => {
        const accept = { accept: "application/vnd.pgrst.object+json" };
        const res = await rpc("gw_test_log_rows", { n: 3 }, accept);
        assert.equal(res.status, 406);
        assert.equal((await res.json()).details, "The result contains 3 rows");
        assert.deepEqual([...await admin`select count(*)::int as n from public.gw_test_log`], [{ n: 0 }]);
        assert.equal(await (await rpc("gw_test_log_rows", { n: 1 }, accept)).json(), 1);
        assert.deepEqual([...await admin`select count(*)::int as n from public.gw_test_log`], [{ n: 1 }]);
      });
      await t.step("rpc: a schema other than public answers 406 PGRST106", async () => {
        const res = await rpc("gw_test_row", {}, { "content-profile": "private" });
        assert.equal(res.status, 406);
        assert.equal((await res.json()).code, "PGRST106");
      });
      await t.step("rpc: filters apply to a set of rows, and are refused with 501 (never ignored) on scalars", async () => {
        let res = await call("/rest/v1/rpc/gw_test_rows?a=eq.1", { method: "POST", body: "{}", headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), [{ a: 1, b: "one" }]);
        res = await call("/rest/v1/rpc/gw_test_set?n=3&gw_test_set=eq.1", { headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 501);
        await res.body?.cancel();
      });
      await t.step("rpc: PUT, PATCH and DELETE answer 405 PGRST101 as PostgREST does", async () => {
        for (const method of ["PUT", "PATCH", "DELETE"]) {
          const res = await call("/rest/v1/rpc/gw_test_row", { method, body: "{}", headers: { apikey: keys.anonKey } });
          assert.equal(res.status, 405, method);
          assert.deepEqual(await res.json(), { code: "PGRST101", message: `Cannot use the ${method} method on RPC`, details: null, hint: null });
        }
      });

      // --- Client errors that reached the database and came back 500 (issue 8, item 7) ---
      await t.step("rpc: malformed percent-encoding in the name is a 404 PGRST202, not a 500", async () => {
        const res = await call("/rest/v1/rpc/%ZZ", { method: "POST", body: "{}", headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 404);
        const body = await res.json();
        assert.equal(body.code, "PGRST202");
        assert.deepEqual(Object.keys(body).sort(), ["code", "details", "hint", "message"]);
      });
      await t.step("rpc: a NUL in the name is a 404 PGRST202 without asking the database", async () => {
        for (const name of ["%00", "gw_test_row%00", "gw%00test"]) {
          const res = await call(`/rest/v1/rpc/${name}`, { method: "POST", body: "{}", headers: { apikey: keys.anonKey } });
          assert.equal(res.status, 404, name);
          assert.equal((await res.json()).code, "PGRST202");
        }
      });
      await t.step("rpc: a NUL in an argument (JSON body or query string) is a 400 with the database's code", async () => {
        let res = await rpc("gw_test_text", { t: "a\u0000b" });
        assert.equal(res.status, 400);
        assert.equal((await res.json()).code, "22P05");
        res = await call("/rest/v1/rpc/gw_test_text?t=a%00b", { headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 400);
        assert.match((await res.json()).code, /^22(P05|021)$/);
        assert.equal(await (await rpc("gw_test_text", { t: "still fine" })).json(), "still fine");
      });
      await t.step("rpc: JSON nested 20,000 deep is refused by the gateway with 400 PGRST102", async () => {
        const res = await call("/rest/v1/rpc/gw_test_json", { method: "POST", body: `{"a":${nested(20_000)}}`, headers: { apikey: keys.anonKey } });
        assert.equal(res.status, 400);
        assert.deepEqual(await res.json(), {
          code: "PGRST102", message: "Empty or invalid json", details: "JSON nested deeper than 512 levels is refused.", hint: null,
        });
      });
      await t.step("rpc: JSON up to the depth limit passes, one level more does not; brackets in strings do not count", async () => {
        const at = await small(new Request("http://gateway.test/rest/v1/rpc/gw_test_json", { method: "POST", body: nested(8), headers: { apikey: keys.anonKey } }));
        assert.equal(at.status, 200);
        assert.deepEqual(await at.json(), JSON.parse(nested(8)));
        const over = await small(new Request("http://gateway.test/rest/v1/rpc/gw_test_json", { method: "POST", body: nested(9), headers: { apikey: keys.anonKey } }));
        assert.equal(over.status, 400);
        assert.equal((await over.json()).code, "PGRST102");
        const strings = await small(new Request("http://gateway.test/rest/v1/rpc/gw_test_json", { method: "POST", body: JSON.stringify(["[[[[[[[[[[[[[[[[\\\"[["]), headers: { apikey: keys.anonKey } }));
        assert.equal(strings.status, 200);
        await strings.body?.cancel();
      });
      await t.step("errors: the SQLSTATE to HTTP status mapping follows PostgREST's mapSQLtoHTTP", () => {
        const cases: [string, string, boolean, number][] = [
          ["21000", "more than one row returned by a subquery used as an expression", true, 500],
          ["21000", "UPDATE requires a WHERE clause", true, 400],
          ["22023", 'role "nobody" does not exist', true, 401],
          ["22023", "Unknown time zone: Mars/Base", true, 400],
          ["22021", "invalid byte sequence", true, 400], ["22P05", "unsupported Unicode escape sequence", true, 400],
          ["57014", "canceling statement due to statement timeout", true, 500], ["57P01", "terminating connection", true, 503],
          ["54001", "stack depth limit exceeded", true, 500], ["53300", "too many connections", true, 503], ["53400", "", true, 500],
          ["08006", "", true, 503], ["42501", "", false, 401], ["42501", "", true, 403], ["42883", "function xmlagg(x)", true, 406],
          ["PT402", "", true, 402], ["PTabc", "", true, 500], ["P0002", "", true, 500], ["P0001", "", true, 400],
        ];
        for (const [code, message, authenticated, status] of cases) assert.equal(statusForSqlState(code, authenticated, message), status, `${code} ${message}`);
      });

      // --- Body limits on every route (issue 8, item 3) ---
      await t.step("limits: a declared body over the limit is refused with 413 before anything reads it, on every route", async () => {
        const big = "x".repeat(65);
        const length = { "content-length": String(big.length) };
        let res = await small(new Request("http://gateway.test/rest/v1/rpc/gw_test_json", { method: "POST", body: big, headers: { apikey: keys.anonKey, ...length } }));
        assert.equal(res.status, 413);
        assert.deepEqual(await res.json(), {
          code: "PGRST413", message: "Request body is too large", details: "The local gateway accepts bodies of at most 64 bytes.", hint: null,
        });
        res = await small(new Request("http://gateway.test/functions/v1/echo", { method: "POST", body: big, headers: { authorization: `Bearer ${keys.anonKey}`, ...length } }));
        assert.equal(res.status, 413);
        assert.deepEqual(await res.json(), { code: "PAYLOAD_TOO_LARGE", message: "Request body is larger than 64 bytes" });
        res = await small(new Request("http://gateway.test/rest/v1/profiles", { method: "POST", body: big, headers: { apikey: keys.anonKey, ...length } }));
        assert.equal(res.status, 413, "table routes too");
        assert.equal((await res.json()).code, "PGRST413");
        res = await small(new Request("http://gateway.test/functions/v1/echo", { method: "POST", body: "x".repeat(64), headers: { authorization: `Bearer ${keys.anonKey}` } }));
        assert.equal(res.status, 200, "exactly the limit is accepted");
        assert.equal((await res.json()).body, "x".repeat(64));
      });
      await t.step("limits: a chunked body is cut off at the limit, without reading the rest of it", async () => {
        for (const path of ["/rest/v1/rpc/gw_test_json", "/functions/v1/echo"]) {
          const s = stream(16);
          const res = await small(new Request(`http://gateway.test${path}`, {
            method: "POST", body: s.body, headers: { apikey: keys.anonKey, authorization: `Bearer ${keys.anonKey}` },
          }));
          assert.equal(res.status, 413, path);
          await res.body?.cancel();
          assert.ok(s.pulled() <= 64 + 16 * 2, `${path} read ${s.pulled()} bytes of an endless body`);
        }
        const ok = stream(16, 64);
        const res = await small(new Request("http://gateway.test/rest/v1/rpc/gw_test_text", {
          method: "POST", body: new Blob(['{"t":"', "y".repeat(50), '"}']).stream(), headers: { apikey: keys.anonKey },
        }));
        assert.equal(res.status, 200);
        assert.equal(await res.json(), "y".repeat(50));
        await ok.body.cancel();
      });
      await t.step("limits: a body that stops arriving is answered 408 in the route's error shape", async () => {
        let res = await small(new Request("http://gateway.test/rest/v1/rpc/gw_test_json", { method: "POST", body: stalled(), headers: { apikey: keys.anonKey } }));
        assert.equal(res.status, 408);
        assert.equal((await res.json()).code, "PGRST408");
        assert.equal(res.headers.get("connection"), "close");
        res = await small(new Request("http://gateway.test/functions/v1/echo", { method: "POST", body: stalled(), headers: { authorization: `Bearer ${keys.anonKey}` } }));
        assert.equal(res.status, 408);
        assert.equal((await res.json()).code, "REQUEST_TIMEOUT");
      });

      // --- Per-role statement timeouts on RPCs (issue 8, item 3) ---
      await t.step("rpc: each role's statement_timeout applies (anon 3s, authenticated 8s), as PostgREST applies role settings", async () => {
        assert.equal(await (await rpc("gw_test_timeout", {})).json(), "3s");
        assert.equal(await (await rpc("gw_test_timeout", {}, { authorization: `Bearer ${await aliceToken()}` })).json(), "8s");
      });
      await t.step("rpc: a call running past its role's statement_timeout is cancelled with 57014 (500, as PostgREST)", async () => {
        const token = await sign({ iss: keys.authIssuer, role: "gw_test_short", exp: now() + 600 });
        const res = await rpc("gw_test_sleep", { s: 1 }, { authorization: `Bearer ${token}` });
        assert.equal(res.status, 500);
        assert.deepEqual(await res.json(), { code: "57014", message: "canceling statement due to statement timeout", details: null, hint: null });
        const own = await rpc("gw_test_sleep_long", { s: 0.3 }, { authorization: `Bearer ${token}` });
        assert.equal(own.status, 204, "a function's own set statement_timeout wins");
      });

      // --- Outages (issue 8, item 8) ---
      await t.step("outage: with the database down /health and RPCs answer 503 with Retry-After and PostgREST's shape", async () => {
        const health = await down(new Request("http://gateway.test/health"));
        assert.equal(health.status, 503);
        assert.equal(health.headers.get("retry-after"), "1");
        assert.equal((await health.json()).status, "unavailable");
        const res = await down(new Request("http://gateway.test/rest/v1/rpc/gw_test_row", { method: "POST", body: "{}", headers: { apikey: keys.anonKey } }));
        assert.equal(res.status, 503);
        assert.equal(res.headers.get("retry-after"), "1");
        const body = await res.json();
        assert.equal(body.code, "PGRST000");
        assert.equal(body.message, "Database connection error.");
        assert.ok(res.headers.get("x-request-id"));
      });

      // --- Tokens (issue 8, item 13) ---
      await t.step("tokens: a token without exp, from another issuer, or a user token without aud or a UUID sub is refused with 401", async () => {
        const refused: [string, Record<string, unknown>][] = [
          ["no exp", userClaims({ exp: undefined })],
          ["no iss", userClaims({ iss: undefined })],
          ["foreign iss", userClaims({ iss: "https://evil.example/auth/v1" })],
          ["no aud", userClaims({ aud: undefined })],
          ["wrong aud", userClaims({ aud: "somebody-else" })],
          ["sub admin", userClaims({ sub: "admin" })],
          ["no sub", userClaims({ sub: undefined })],
          ["API-key issuer for a user role", userClaims({ iss: "supabase-demo" })],
        ];
        for (const [why, claims] of refused) {
          const token = await sign(JSON.parse(JSON.stringify(claims)));
          const fn = await call("/functions/v1/echo", { headers: { authorization: `Bearer ${token}` } });
          assert.equal(fn.status, 401, `functions: ${why}`);
          assert.deepEqual(await fn.json(), { msg: "Invalid JWT" });
          const res = await rpc("gw_test_context", {}, { authorization: `Bearer ${token}` });
          assert.equal(res.status, 401, `rest: ${why}`);
          assert.equal((await res.json()).code, "PGRST303", why);
          assert.match(res.headers.get("www-authenticate") ?? "", /invalid_token/);
        }
        const good = await rpc("gw_test_context", {}, { authorization: `Bearer ${await aliceToken()}` });
        assert.equal((await good.json()).sub, ALICE);
        const apiKeyIssuer = await sign({ iss: "supabase", role: "service_role", exp: now() + 60 });
        assert.equal((await call("/functions/v1/echo", { headers: { authorization: `Bearer ${apiKeyIssuer}` } })).status, 200);
      });
      await t.step("tokens: a function call with only an apikey and no Authorization is 401 when verify_jwt is on", async () => {
        for (const apikey of [keys.anonKey, keys.publishableKey]) {
          const res = await call("/functions/v1/echo", { headers: { apikey } });
          assert.equal(res.status, 401);
          assert.deepEqual(await res.json(), { msg: "Missing authorization header" });
        }
      });
      await t.step("tokens: an RPC with a bearer token but no apikey, or an unknown apikey, is refused as Supabase's gateway does", async () => {
        let res = await call("/rest/v1/rpc/gw_test_row", { method: "POST", body: "{}", headers: { authorization: `Bearer ${await aliceToken()}` } });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).message, "No API key found in request");
        res = await call("/rest/v1/rpc/gw_test_row", { method: "POST", body: "{}", headers: { apikey: await aliceToken(), authorization: `Bearer ${await aliceToken()}` } });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).message, "Invalid API key");
        res = await call(`/rest/v1/rpc/gw_test_row?apikey=${keys.publishableKey}`, { method: "POST", body: "{}" });
        assert.equal(res.status, 200, "the apikey query parameter counts");
        await res.body?.cancel();
      });

      // --- x-request-id and Server-Timing on every answer (docs/api.md) ---
      await t.step("every answer, the gateway's own errors included, carries x-request-id and Server-Timing", async () => {
        const answers: [string, Response][] = [
          ["401 functions", await call("/functions/v1/echo", { headers: { "x-request-id": "trace-123" } })],
          ["401 rest", await call("/rest/v1/rpc/gw_test_row", { method: "POST", headers: { "x-request-id": "trace-123" } })],
          ["404 function", await call("/functions/v1/nope", { headers: { "x-request-id": "trace-123" } })],
          ["404 route", await call("/nowhere", { headers: { "x-request-id": "trace-123" } })],
          ["501", await call("/graphql/v1", { method: "POST", headers: { "x-request-id": "trace-123" } })],
          ["413", await small(new Request("http://gateway.test/functions/v1/echo", { method: "POST", body: "x".repeat(100), headers: { "x-request-id": "trace-123" } }))],
          ["503", await down(new Request("http://gateway.test/health", { headers: { "x-request-id": "trace-123" } }))],
          ["200", await call("/functions/v1/echo", { headers: { "x-request-id": "trace-123", authorization: `Bearer ${keys.anonKey}` } })],
        ];
        for (const [what, res] of answers) {
          assert.equal(res.headers.get("x-request-id"), "trace-123", what);
          assert.match(res.headers.get("server-timing") ?? "", /gateway;dur=\d+(\.\d+)?/, what);
          await res.body?.cancel();
        }
        const made = await call("/nowhere", { headers: { "x-request-id": "not well formed!" } });
        assert.match(made.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
        await made.body?.cancel();
      });
      await t.step("functions: the function sees the gateway's x-request-id", async () => {
        logs.length = 0;
        const res = await call("/functions/v1/boom", { headers: { authorization: `Bearer ${keys.anonKey}`, "x-request-id": "trace-boom" } });
        assert.equal(res.headers.get("x-request-id"), "trace-boom");
        await res.body?.cancel();
        assert.ok(logs.some((l) => l.trace_id === "trace-boom" && l.level === "error"));
      });

      // --- Abort (issue 8: functions see the client go away) ---
      await t.step("functions: the client's abort reaches the function through req.signal", async () => {
        const before = waitFixture.aborted;
        const controller = new AbortController();
        const pending = gateway(new Request("http://gateway.test/functions/v1/wait", {
          headers: { authorization: `Bearer ${keys.anonKey}` }, signal: controller.signal,
        }));
        await new Promise((r) => setTimeout(r, 50));
        controller.abort();
        const res = await pending;
        assert.deepEqual(await res.json(), { aborted: true });
        assert.equal(waitFixture.aborted, before + 1);
      });

      await t.step("other platform routes answer 501", async () => {
        const res = await call("/graphql/v1", { method: "POST" });
        assert.equal(res.status, 501);
        await res.body?.cancel();
      });
    } finally {
      await admin.unsafe(CLEANUP);
      await admin.end();
      await sql.end();
      await downSql.end();
    }
  },
});
