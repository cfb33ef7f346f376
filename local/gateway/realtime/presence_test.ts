/** Presence as Phoenix.Presence groups and diffs it, and a join's config as Realtime reads it. */
import assert from "node:assert/strict";
import { joinConfig } from "./channel.ts";
import { PresenceTracker } from "./presence.ts";

/** As the client reads it: JSON (the tracker's groups have no prototype). */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v));

Deno.test("PresenceTracker: track, re-track and untrack give Phoenix's diffs; list() groups by key", () => {
  const tracker = new PresenceTracker<string>();
  const first = tracker.track("t", "a", "coach", { online: true });
  const ref = first.joins.coach.metas[0].phx_ref as string;
  assert.match(ref, /^[A-Za-z0-9+/]{16}$/);
  assert.deepEqual(plain(first), { joins: { coach: { metas: [{ online: true, phx_ref: ref }] } }, leaves: {} });
  tracker.track("t", "b", "coach", { online: true, device: "phone" });
  assert.equal(tracker.list("t").coach.metas.length, 2, "two channels under one key");
  const update = tracker.track("t", "a", "coach", { online: false });
  const next = update.joins.coach.metas[0];
  assert.equal(next.phx_ref_prev, ref);
  assert.notEqual(next.phx_ref, ref);
  assert.deepEqual(plain(update.leaves), { coach: { metas: [{ online: true, phx_ref: ref }] } });
  assert.deepEqual(plain(tracker.list("other")), {});
  const gone = tracker.untrack("t", "a");
  assert.deepEqual(plain(gone), plain({ joins: {}, leaves: { coach: { metas: [next] } } }));
  assert.equal(tracker.untrack("t", "a"), null, "not tracked any more");
  assert.deepEqual(plain(tracker.list("t")).coach.metas.map((m: { device?: string }) => m.device), ["phone"]);
});

Deno.test("PresenceTracker keeps a key named __proto__ as a key", () => {
  const tracker = new PresenceTracker<string>();
  tracker.track("t", "a", "__proto__", { x: 1 });
  const listed = tracker.list("t");
  assert.ok(Object.hasOwn(listed, "__proto__"));
  assert.deepEqual(listed["__proto__"].metas.map((m) => m.x), [1]);
  assert.match(JSON.stringify(listed), /^\{"__proto__":\{"metas":\[\{"x":1,"phx_ref":/);
});

Deno.test("joinConfig() reads flexible booleans and the presence key as Realtime's Join payload does", () => {
  const config = joinConfig({ config: { private: "TRUE", broadcast: { self: true, ack: "true" }, presence: { enabled: "yes", key: "coach" }, postgres_changes: [] } });
  assert.deepEqual(config, { isPrivate: true, self: true, ack: true, presenceEnabled: false, presenceKey: "coach", postgresChanges: false });
  const defaults = joinConfig({});
  assert.equal(defaults.isPrivate || defaults.self || defaults.ack || defaults.presenceEnabled, false);
  assert.match(defaults.presenceKey, /^[0-9a-f-]{36}$/);
  assert.equal(joinConfig({ config: { presence: { key: "" } } }).presenceKey.length, 36, "an empty key is replaced");
  assert.equal(joinConfig({ config: { presence: { key: 42 } } }).presenceKey, "42");
  assert.equal(joinConfig({ config: { postgres_changes: [null] } }).postgresChanges, false, "nulls are dropped, as Realtime drops them");
  assert.equal(joinConfig({ config: { postgres_changes: [{ event: "*" }] } }).postgresChanges, true);
});
