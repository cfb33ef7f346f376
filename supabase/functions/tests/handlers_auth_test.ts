/**
 * Every function's handler checks the caller's token itself: called directly (no gateway,
 * so no verify_jwt in front), each answers 401 to a token signed with another key, an
 * expired one, one without exp, one from another issuer and a user token without a UUID sub
 * or the "authenticated" audience. Handlers are found on disk, so a new function is covered
 * without editing this file. A webhook that takes no token (clerk-webhook: Svix signatures)
 * must instead refuse every such request with 400 for its missing signature. (supabase/functions/tests/ is where Supabase's guide to testing
 * edge functions puts tests that span functions; it has no index.ts, so it is no function.)
 */
import assert from "node:assert/strict";
import { ALICE, FOREIGN_SECRET, request, sign, token } from "../_shared/testing/fixtures.ts";
import { closeDb } from "../_shared/db.ts";

type Handler = (req: Request) => Promise<Response>;

const functionsDir = new URL("../", import.meta.url);
const handlers: { name: string; handler: Handler }[] = [];
for await (const entry of Deno.readDir(functionsDir)) {
  if (!entry.isDirectory || entry.name.startsWith("_") || entry.name === "tests") continue;
  const module = await import(new URL(`${entry.name}/handler.ts`, functionsDir).href) as { handler: Handler };
  handlers.push({ name: entry.name, handler: module.handler });
}
handlers.sort((a, b) => a.name.localeCompare(b.name));

const now = Math.floor(Date.now() / 1000);
const issuer = `${Deno.env.get("SUPABASE_URL")!.replace(/\/+$/, "")}/auth/v1`;
const aliceClaims = { iss: issuer, sub: ALICE, aud: "authenticated", role: "authenticated", iat: now, exp: now + 600 };

/** The tokens that must be refused, by what is wrong with them. */
const badTokens: Record<string, () => Promise<string>> = {
  "signed with a foreign key": () => token({ sub: ALICE, role: "authenticated" }, FOREIGN_SECRET),
  "service key signed with a foreign key": () => token({ role: "service_role" }, FOREIGN_SECRET),
  "expired": () => sign({ ...aliceClaims, iat: now - 7200, exp: now - 3600 }),
  "without exp": () => sign({ ...aliceClaims, exp: undefined }),
  "from another issuer": () => sign({ ...aliceClaims, iss: "https://elsewhere.example/auth/v1" }),
  "with a non-UUID sub": () => sign({ ...aliceClaims, sub: "admin" }),
  "without the authenticated audience": () => sign({ ...aliceClaims, aud: "anon" }),
};

/** Functions authenticated by a signature of their caller's, not by a token: the env of their secret. */
const SIGNED: Record<string, string> = { "clerk-webhook": "CLERK_WEBHOOK_SIGNING_SECRET" };

/** The method a handler serves, from the Allow header of its 405. */
async function methodOf(handler: Handler): Promise<string> {
  const res = await handler(request("/x", { method: "PATCH" }));
  await res.body?.cancel();
  assert.equal(res.status, 405);
  return (res.headers.get("allow") ?? "").split(",")[0].trim();
}

Deno.test({
  name: "every handler",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    try {
      const names = handlers.map((h) => h.name);
      for (const known of ["history", "interaction-aggregate", "log-interaction", "me", "summary"]) assert.ok(names.includes(known), known);
      for (const { name, handler } of handlers) {
        const method = await methodOf(handler);
        for (const [what, make] of Object.entries(badTokens)) {
          if (SIGNED[name]) {
            await t.step(`${name} handler() answers 400 (no signature) to a token ${what}`, async () => {
              Deno.env.set(SIGNED[name], `whsec_${btoa("handlers-auth-test-secret")}`);
              Deno.env.set("CLERK_ISSUER", "https://clerk.example.com");
              try {
                const res = await handler(request(`/${name}`, { method, bearer: await make(), body: {} }));
                assert.equal(res.status, 400);
                assert.match((await res.json()).detail, /signature/);
              } finally {
                Deno.env.delete(SIGNED[name]);
                Deno.env.delete("CLERK_ISSUER");
              }
            });
            continue;
          }
          await t.step(`${name} handler() answers 401 to a token ${what}`, async () => {
            const res = await handler(request(`/${name}`, { method, bearer: await make(), body: method === "GET" ? undefined : {} }));
            assert.equal(res.status, 401);
            assert.equal(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
            assert.equal((await res.json()).title, "Unauthorized");
          });
        }
      }
    } finally {
      await closeDb();
    }
  },
});
