/** Shared by the end-to-end tests: the running stack, clients and tokens. */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { inject } from "vitest";
import { mintToken } from "../local/stack.ts";
import type { Database } from "../supabase/functions/_shared/database.types.ts";

/** A supabase-js client typed by the generated types (`npm run gen:types`). */
export type Client = SupabaseClient<Database>;

export const ALICE = "a11ce000-0000-4000-8000-000000000001";
export const BOB = "b0b00000-0000-4000-8000-000000000002";
export const CAROL = "ca401000-0000-4000-8000-000000000003";

/** URLs, keys and config of the stack under test. */
export function stack() {
  return inject("stack");
}

/** A supabase-js client with the given API key and, optionally, a user's access token. */
export function client(key: string, accessToken?: string): Client {
  return createClient<Database>(stack().env.API_URL, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    ...(accessToken ? { accessToken: async () => accessToken } : {}),
  });
}

/** A client signed in as a seeded user (token minted as `npm run local -- token` does). */
export async function userClient(email: string): Promise<Client> {
  return client(stack().env.ANON_KEY, await mintToken(stack().cfg, { email }));
}
