/**
 * What supabase-js (postgrest-js) sends when an app shapes an RPC's rows, answered as
 * PostgREST answers it (issue 14): select, filters, order, limit, range, single and counts
 * on list_profiles as Carol (her own profile and her client Alice's), over POST and GET.
 */
import { describe, expect, it } from "vitest";
import { ALICE, CAROL, userClient } from "../helpers.ts";

describe("shaping RPC results through supabase-js", () => {
  it("select, eq, order, limit and single", async () => {
    const carol = await userClient("carol@example.com");
    const clients = await carol.rpc("list_profiles").select("id, display_name").eq("role", "client");
    expect(clients.error).toBeNull();
    expect(clients.data).toEqual([{ id: ALICE, display_name: "Alice Archer" }]);

    const newest = await carol.rpc("list_profiles").select("id").order("created_at", { ascending: false }).limit(1);
    expect(newest.data).toEqual([{ id: ALICE }]);

    const me = await carol.rpc("list_profiles").select("display_name").eq("id", CAROL).single();
    expect(me.error).toBeNull();
    expect(me.data).toEqual({ display_name: "Carol Chen" });

    const none = await carol.rpc("list_profiles").select("id").eq("id", "00000000-0000-4000-8000-000000000000").single();
    expect(none.status).toBe(406);
    expect(none.error).toMatchObject({ code: "PGRST116" });
  });

  it("in, ilike, not, is, range and an exact count, over GET as well", async () => {
    const carol = await userClient("carol@example.com");
    const both = await carol.rpc("list_profiles", {}, { count: "exact" }).select("id").in("role", ["client", "coach"]).order("created_at");
    expect(both.data).toEqual([{ id: CAROL }, { id: ALICE }]);
    expect(both.count).toBe(2);

    const named = await carol.rpc("list_profiles", {}, { get: true }).select("id").ilike("display_name", "%archer%");
    expect(named.error).toBeNull();
    expect(named.data).toEqual([{ id: ALICE }]);

    const notAlice = await carol.rpc("list_profiles").select("id").not("id", "eq", ALICE);
    expect(notAlice.data).toEqual([{ id: CAROL }]);

    const noName = await carol.rpc("list_profiles").select("id").is("display_name", null);
    expect(noName.data).toEqual([]);

    const second = await carol.rpc("list_profiles", {}, { count: "exact" }).select("id").order("created_at").range(1, 1);
    expect(second.data).toEqual([{ id: ALICE }]);
    expect(second.count).toBe(2);
  });

  it("an unknown column is PostgreSQL's 42703, a bad filter PostgREST's PGRST100", async () => {
    const carol = await userClient("carol@example.com");
    const unknown = await carol.rpc("list_profiles").select("nickname");
    expect(unknown.status).toBe(400);
    expect(unknown.error).toMatchObject({ code: "42703", message: "column list_profiles.nickname does not exist" });
    const bad = await carol.rpc("list_profiles").filter("role", "nope", "client");
    expect(bad.status).toBe(400);
    expect(bad.error).toMatchObject({ code: "PGRST100" });
  });
});
