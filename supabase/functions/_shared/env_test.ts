import assert from "node:assert/strict";
import { optionalEnv, requireEnv } from "./env.ts";

Deno.test("requireEnv() returns a set variable", () => {
  Deno.env.set("COACH_LEDGER_TEST_VAR", "value");
  assert.equal(requireEnv("COACH_LEDGER_TEST_VAR"), "value");
  Deno.env.delete("COACH_LEDGER_TEST_VAR");
});

Deno.test("requireEnv() throws naming a missing or empty variable", () => {
  Deno.env.set("COACH_LEDGER_EMPTY_VAR", "");
  assert.throws(() => requireEnv("COACH_LEDGER_EMPTY_VAR"), /^Error: Missing environment variable COACH_LEDGER_EMPTY_VAR$/);
  assert.throws(() => requireEnv("COACH_LEDGER_UNSET_VAR"), /Missing environment variable COACH_LEDGER_UNSET_VAR/);
  assert.equal(optionalEnv("COACH_LEDGER_EMPTY_VAR"), undefined);
  Deno.env.delete("COACH_LEDGER_EMPTY_VAR");
});
