/**
 * Grafana is not installed here, so the dashboards, datasource and alert rules are proven
 * as files: their shape against Grafana's provisioning format, and every query run against
 * the seeded test database as coach_analyst after expanding Grafana's macros.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { parse as parseYaml } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { root } from "../../local/stack.ts";
import { stack } from "../helpers.ts";
import { expandMacros, type QueryContext } from "./macros.ts";

const dir = join(root, "grafana");
const yaml = (path: string) => parseYaml(readFileSync(join(dir, path), "utf8"));
const datasources = yaml("provisioning/datasources/coach_ledger.yaml");
const providers = yaml("provisioning/dashboards/coach_ledger.yaml");
const alerting = yaml("provisioning/alerting/coach_ledger_alerts.yaml");
const dashboards = readdirSync(join(dir, "dashboards")).filter((f) => f.endsWith(".json"))
  .map((f) => ({ file: f, json: JSON.parse(readFileSync(join(dir, "dashboards", f), "utf8")) }));
const dsUid: string = datasources.datasources[0].uid;

const sql = postgres(stack().env.DB_URL, { max: 1, onnotice: () => {} });
afterAll(() => sql.end());

/** Runs a query as coach_analyst, read-only, as Grafana's datasource would. */
async function asAnalyst(query: string): Promise<Record<string, unknown>[]> {
  return await sql.begin("read only", async (tx) => {
    await tx`set local role coach_analyst`;
    return [...await tx.unsafe(query)];
  });
}

const to = new Date();
const from = new Date(to.getTime() - 7 * 86_400_000);

describe("provisioning format", () => {
  it("the datasource is a PostgreSQL datasource as coach_analyst, configured from the environment", () => {
    expect(datasources.apiVersion).toBe(1);
    const [ds] = datasources.datasources;
    expect(ds).toMatchObject({ type: "grafana-postgresql-datasource", uid: "coach-ledger-analytics", access: "proxy" });
    for (const value of [ds.url, ds.user, ds.jsonData.database, ds.secureJsonData.password]) expect(value).toMatch(/^\$\{[A-Z_]+\}$/);
  });

  it("the dashboard provider points at a folder of files", () => {
    expect(providers.apiVersion).toBe(1);
    expect(providers.providers[0]).toMatchObject({ type: "file", options: { path: expect.any(String) } });
  });

  for (const { file, json } of dashboards) {
    it(`${file}: required keys, unique panel ids, known datasource, valid layout`, () => {
      for (const key of ["uid", "title", "panels", "schemaVersion", "time", "templating"]) expect(json).toHaveProperty(key);
      const ids = json.panels.map((p: { id: number }) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const p of json.panels) {
        expect(p.datasource.uid, `panel ${p.id}`).toBe(dsUid);
        expect(p.gridPos.w, `panel ${p.id}`).toBeLessThanOrEqual(24);
        expect(p.gridPos.x + p.gridPos.w, `panel ${p.id}`).toBeLessThanOrEqual(24);
        for (const t of p.targets) {
          expect(t.datasource.uid).toBe(dsUid);
          expect(t.rawSql, `panel ${p.id}`).toBeTruthy();
        }
      }
      expect(json.templating.list.map((v: { name: string }) => v.name)).toContain("persona");
      expect(json.time).toEqual({ from: "now-7d", to: "now" });
    });
  }

  it("alert rules: p95 latency over 900 ms, error rate over 2 %, storage failures over 0 and storage p95 over 500 ms, with pending periods and labels", () => {
    expect(alerting.apiVersion).toBe(1);
    const rules = alerting.groups.flatMap((g: { rules: unknown[] }) => g.rules);
    const thresholds = Object.fromEntries(rules.map((r: { uid: string; data: { refId: string; model: { conditions?: { evaluator: { params: number[] } }[] } }[] }) =>
      [r.uid, r.data.find((d) => d.refId === "C")!.model.conditions![0].evaluator.params[0]]));
    expect(thresholds).toEqual({ "coach-ai-latency-p95": 900, "coach-error-rate": 2, "coach-storage-failures": 0, "coach-storage-latency-p95": 500 });
    for (const r of rules) {
      expect(r.data.map((d: { refId: string }) => d.refId)).toContain(r.condition);
      expect(r.for).toMatch(/^\d+m$/);
      expect(r.labels.severity).toMatch(/^(warning|critical)$/);
      for (const d of r.data) expect([dsUid, "__expr__"]).toContain(d.datasourceUid);
    }
  });
});

describe("queries against the seeded database as coach_analyst", () => {
  it("the persona variable lists the seeded personas", async () => {
    const v = dashboards[0].json.templating.list.find((x: { name: string }) => x.name === "persona");
    const rows = await asAnalyst(expandMacros(v.query, { from, to, variables: {} }));
    expect(rows.map((r) => Object.values(r)[0])).toEqual(expect.arrayContaining(["carol", "challenger", "encourager", "planner"]));
  });

  for (const { file, json } of dashboards) {
    for (const p of json.panels) {
      it(`${file} panel ${p.id} "${p.title}" runs and shows data`, async () => {
        const personas = (await asAnalyst("select distinct jsonb_object_keys(coach_persona_mix) as p from analytics.coach_interaction_metrics"))
          .map((r) => r.p as string);
        const ctx: QueryContext = { from, to, variables: { persona: personas } };
        for (const t of p.targets) {
          const rows = await asAnalyst(expandMacros(t.rawSql, ctx));
          // The last-5-minutes panel has one row even with no recent traffic; the others need the seed's days.
          expect(rows.length, t.rawSql).toBeGreaterThan(0);
        }
      });
    }
  }

  it("the storage alerts fire on a failed or slow storage operation and not without one", async () => {
    const rules = alerting.groups.flatMap((g: { rules: { uid: string; data: { refId: string; model: { rawSql?: string } }[] }[] }) => g.rules);
    const queryOf = (uid: string) => rules.find((r: { uid: string }) => r.uid === uid)!.data.find((d: { refId: string }) => d.refId === "A")!.model.rawSql!;
    /** The alert query's value as coach_analyst, with the given operations recorded first (rolled back). */
    const valueWith = async (uid: string, ops: [boolean, number][]) => {
      let value: unknown;
      await sql.begin(async (tx) => {
        await tx`delete from private.storage_operations where at > now() - interval '10 minutes'`;
        for (const [ok, ms] of ops) await tx`insert into private.storage_operations (operation, ok, duration_ms) values ('download_urls', ${ok}, ${ms})`;
        await tx`set local role coach_analyst`;
        const [row] = await tx.unsafe(expandMacros(queryOf(uid), { from, to, variables: {} }));
        value = Object.entries(row).find(([k]) => k !== "time")![1];
        throw new Error("rollback");
      }).catch((err) => {
        if ((err as Error).message !== "rollback") throw err;
      });
      return value as number;
    };
    expect(await valueWith("coach-storage-failures", [[true, 20]])).toBe(0);
    expect(await valueWith("coach-storage-failures", [[true, 20], [false, 30]])).toBeGreaterThan(0);
    expect(await valueWith("coach-storage-latency-p95", [[true, 20], [true, 40]])).toBeLessThanOrEqual(500);
    expect(await valueWith("coach-storage-latency-p95", Array.from({ length: 20 }, (_, i) => [true, i < 18 ? 20 : 2000] as [boolean, number]))).toBeGreaterThan(500);
  });

  for (const group of alerting.groups) {
    for (const rule of group.rules) {
      it(`alert "${rule.title}" query returns one numeric value`, async () => {
        const query = rule.data.find((d: { refId: string }) => d.refId === "A").model.rawSql;
        const rows = await asAnalyst(expandMacros(query, { from, to, variables: {} }));
        expect(rows.length).toBe(1);
        const values = Object.entries(rows[0]).filter(([k]) => k !== "time").map(([, v]) => v);
        expect(values).toHaveLength(1);
        expect(typeof values[0]).toBe("number");
      });
    }
  }
});
