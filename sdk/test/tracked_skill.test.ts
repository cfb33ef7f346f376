/**
 * hashTrackedSkillId computes what the server stores: HMAC-SHA-256 under
 * TRACKED_SKILL_HASH_KEY in lowercase hex, checked here against node:crypto, an independent
 * implementation (test/deno_test.ts checks it against the server's own trackedSkillHash()),
 * and refuses at once what the server would refuse.
 */
import { createHmac } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createCoachLedger, hashTrackedSkillId } from "../src/index.ts";

const LOCAL_KEY = "coach-ledger-local-tracked-skill-hash-key";
const node = (id: string, key = LOCAL_KEY) => createHmac("sha256", key).update(id, "utf8").digest("hex");

describe("hashTrackedSkillId", () => {
  test("equals an HMAC-SHA-256 computed with node:crypto", async () => {
    const other = "f".repeat(64);
    for (const id of ["sleep-routine", "42", "Skill/ünïcødé 🏃", "x".repeat(256)]) {
      expect(await hashTrackedSkillId(id, LOCAL_KEY)).toBe(node(id));
      expect(await hashTrackedSkillId(id, other)).toBe(node(id, other));
    }
    expect(await hashTrackedSkillId("sleep-routine", LOCAL_KEY)).toMatch(/^[0-9a-f]{64}$/);
  });

  test("the ledger's method uses its trackedSkillHashKey", async () => {
    const ledger = createCoachLedger({ url: "http://127.0.0.1:1", key: "k", trackedSkillHashKey: LOCAL_KEY });
    expect(await ledger.hashTrackedSkillId("sleep-routine")).toBe(node("sleep-routine"));
    const keyless = createCoachLedger({ url: "http://127.0.0.1:1", key: "k" });
    expect(() => keyless.hashTrackedSkillId("sleep-routine")).toThrow(TypeError);
  });

  test("throws TypeError at once for an id or key the server would refuse", () => {
    expect(() => hashTrackedSkillId("", LOCAL_KEY)).toThrow(TypeError);
    expect(() => hashTrackedSkillId("x".repeat(257), LOCAL_KEY)).toThrow(TypeError);
    expect(() => hashTrackedSkillId("tab\there", LOCAL_KEY)).toThrow(TypeError);
    expect(() => hashTrackedSkillId(42 as unknown as string, LOCAL_KEY)).toThrow(TypeError);
    expect(() => hashTrackedSkillId("sleep-routine", "too-short")).toThrow(TypeError);
  });
});
