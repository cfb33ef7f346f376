/**
 * `npm run docs:erd`: the database's entity-relationship diagram, drawn from the live schema
 * of a throwaway stack built from the migrations (seed 000, T2.3.1.5; issue 16), in two forms:
 * docs/architecture/db_schema.puml (PlantUML) and docs/architecture/db_schema.md (Mermaid,
 * with a table of PHI and retention per table).
 *
 * It draws the tables (not views) of public, private, audit and analytics, skipping
 * partitions and extension-owned tables; auth.users appears, as a stub, because our tables
 * reference it. Every drawn table must be classified in CLASSIFICATION below (PHI or not,
 * and why): an unclassified table fails the generation, so a new table cannot reach the
 * diagram, or pass `npm test`, without someone deciding whether it holds PHI. Retention
 * comes from public.retention_policies when that table exists ("none" otherwise); session
 * media have their rows there too (before, their windows were in
 * public.media_retention_settings, which is read when retention_policies has none for them).
 *
 * The output is sorted and carries no timestamp, so the files change only when the schema
 * (or the classification) does. `npm test` regenerates both from its throwaway stack and
 * fails when a committed copy differs (local/test.ts, suite "types").
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import postgres from "postgres";
import { dbUrl, ensureSystemPackages, root, startThrowawayStack } from "./stack.ts";

/** Where the generated diagrams live. */
export const ERD_FILES = {
  puml: join(root, "docs", "architecture", "db_schema.puml"),
  markdown: join(root, "docs", "architecture", "db_schema.md"),
};

/** The schemas we own and draw; the platform's (auth, storage, realtime, ...) are left out. */
const SCHEMAS = ["public", "private", "audit", "analytics"];

/**
 * Every drawn table, schema-qualified: does it hold a person's health or personal information
 * (PHI: message content, session responses, free text about a person, profile data, media
 * metadata, who read whose data), and why. Pure configuration, counters, ids and hashes,
 * and an organisation's business data are not PHI.
 */
export const CLASSIFICATION: Record<string, { phi: boolean; note: string }> = {
  "analytics.coach_interaction_metrics": { phi: false, note: "Per-user daily counts, tokens, cost and averages; no content; erased users' under a random pseudonym" },
  "analytics.coach_interaction_metrics_hourly": { phi: false, note: "Per-user hourly sums behind the daily rollup; no content; erased users' under a random pseudonym" },
  "analytics.coach_model_usage_hourly": { phi: false, note: "Calls, tokens and cost per model and hour; no user dimension" },
  "audit.phi_access_chain_head": { phi: false, note: "Position and hash of the access log's last row" },
  "audit.phi_access_checkpoints": { phi: false, note: "Signed hashes of the access log's chain head" },
  "audit.phi_access_log": { phi: true, note: "Who read whose data, when and why" },
  "audit.phi_access_log_anchor": { phi: false, note: "Where the access log starts after retention: a checkpoint's position and hash" },
  "audit.privacy_log": { phi: true, note: "Privacy operations on a person's data (holds, retention, exports, erasure tombstones), with free-text reasons" },
  "auth.users": { phi: true, note: "Supabase Auth's accounts (email, phone, metadata); drawn as a stub" },
  "private.business_data_cache": { phi: false, note: "A tenant's cached business summary (figures and counts)" },
  "private.email_outbox": { phi: true, note: "Nudge emails: recipient address, subject and body" },
  "private.erased_sessions": { phi: false, note: "Ids of sessions being erased and the erasing transaction" },
  "private.erased_model_usage": { phi: false, note: "Erased users' LLM calls, tokens and cost per model and hour, summed; no user dimension" },
  "private.event_requests": { phi: false, note: "Idempotency keys: ids and a hash of the payload" },
  "private.external_identities": { phi: true, note: "A person's identity at a third-party provider (issuer, subject)" },
  "private.interaction_metrics_changes": { phi: false, note: "Which (user, hour) the rollup must recompute" },
  "private.interaction_metrics_state": { phi: false, note: "When the rollup last ran" },
  "private.interaction_requests": { phi: false, note: "Idempotency keys: ids and a hash of the payload" },
  "private.nudge_marks": { phi: false, note: "Which deadline or check-in a nudge was about (ids and times)" },
  "private.nudge_throttle": { phi: false, note: "When a user's last nudge went, per channel" },
  "private.rate_limit_counters": { phi: false, note: "Requests per endpoint and caller in the current window" },
  "private.rate_limit_policies": { phi: false, note: "Configuration: quota per endpoint and role" },
  "private.retention_progress": { phi: false, note: "Per kind and user, up to when retention has run" },
  "private.retention_xacts": { phi: false, note: "Retention batches: transaction, table, cutoff" },
  "private.storage_operations": { phi: false, note: "Outcome, duration and size of storage operations" },
  "private.user_erasures": { phi: false, note: "Ids of erased users and the erasing transaction" },
  "public.action_plans": { phi: true, note: "A person's plans: goals, SMART criteria, free text" },
  "public.actions": { phi: false, note: "An organisation's actions (business data)" },
  "public.application_state_proposals": { phi: true, note: "Proposed changes to a person's applications" },
  "public.applications": { phi: true, note: "A person's applications, progress and metadata" },
  "public.assessments": { phi: true, note: "A person's assessment scores, strengths and improvements" },
  "public.business_figures": { phi: false, note: "An organisation's monthly figures (business data)" },
  "public.business_foundations": { phi: false, note: "An organisation's purpose, vision, values (business data)" },
  "public.business_issues": { phi: false, note: "An organisation's open problems (business data)" },
  "public.check_in_tasks": { phi: true, note: "Check-ins on a person's submitted applications" },
  "public.coach_assignments": { phi: true, note: "Who coaches whom (that a person is a client)" },
  "public.coach_interactions": { phi: true, note: "Message content and metadata of coaching conversations" },
  "public.coaching_sessions": { phi: true, note: "A person's sessions: theme, AI summary" },
  "public.goals": { phi: false, note: "An organisation's goals (business data)" },
  "public.interaction_events": { phi: true, note: "A person's ratings, feedback and event payloads" },
  "public.kpis": { phi: false, note: "An organisation's indicators (business data)" },
  "public.legal_holds": { phi: true, note: "Legal holds on a person or session, with free-text reasons" },
  "public.media_retention_settings": { phi: false, note: "Configuration: retention window per media kind" },
  "public.milestones": { phi: true, note: "Milestones of a person's action plans (free text)" },
  "public.model_price_overrides": { phi: false, note: "Configuration: negotiated model prices" },
  "public.model_prices": { phi: false, note: "Configuration: list prices of models" },
  "public.notification_log": { phi: true, note: "Which nudges a person received, about which applications" },
  "public.opportunities": { phi: true, note: "The catalogue, and opportunities a person adds for themselves" },
  "public.profiles": { phi: true, note: "A person's profile: name, time zone, preferences" },
  "public.prompt_templates": { phi: false, note: "Configuration: versioned prompts, no user data" },
  "public.retention_policies": { phi: false, note: "Configuration: retention window and action per data kind" },
  "public.session_media": { phi: true, note: "Metadata of a person's recordings and transcripts" },
  "public.skills": { phi: false, note: "The skills catalogue" },
  "public.stage_responses": { phi: true, note: "A person's answers in each session stage" },
  "public.strategies": { phi: false, note: "An organisation's strategies (business data)" },
  "public.tenant_ai_calls": { phi: false, note: "Route, model, status and cost of a tenant's LLM calls" },
  "public.tenant_members": { phi: false, note: "Membership and role of users in an organisation" },
  "public.tenants": { phi: false, note: "Organisations: name and AI budget" },
};

interface Column { name: string; type: string; notNull: boolean; pk: boolean; fk: boolean }
interface Table { name: string; columns: Column[] }
/** A foreign key, drawn from the referencing table (from) to the referenced one (to). */
interface ForeignKey {
  from: string;
  to: string;
  columns: string[];
  /** A referencing column may be null: the reference is optional. */
  optional: boolean;
  /** The referencing columns are unique on their own: at most one row per referenced row. */
  oneToOne: boolean;
  /** The referencing columns are part of the primary key (drawn as a solid line). */
  identifying: boolean;
}
interface Policy { dataKind: string; tableName: string; retainFor: string; action: string }
interface Schema { tables: Table[]; fks: ForeignKey[]; policies: Policy[] | null }

/** Byte-order comparison: the same order on every machine, whatever its locale. */
const byText = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/** Shorter spellings of the long SQL type names that format_type() prints. */
function shortType(type: string): string {
  return type
    .replace("timestamp with time zone", "timestamptz")
    .replace("timestamp without time zone", "timestamp")
    .replace("time with time zone", "timetz")
    .replace("time without time zone", "time")
    .replace("character varying", "varchar")
    .replace("double precision", "float8");
}

/** Reads the drawn tables, their columns and foreign keys, and the retention policies. */
async function readSchema(url: string): Promise<Schema> {
  // search_path public: format_type() prints our own enums unqualified, everyone else's qualified.
  const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { search_path: "public", IntervalStyle: "postgres" } });
  try {
    const drawn = await sql<{ oid: number }[]>`
      select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = any(${SCHEMAS}) and c.relkind in ('r', 'p') and not c.relispartition
         and not exists (select from pg_depend d
                          where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')`;
    const oids = drawn.map((t) => t.oid);
    // Foreign keys out of the drawn tables. One-to-one: a unique index (not partial) on exactly
    // the referencing columns; identifying: they are all in the table's primary key.
    const fks = await sql<{
      from: string; to: string; to_oid: number; columns: string[]; to_columns: string[];
      optional: boolean; one_to_one: boolean; identifying: boolean;
    }[]>`
      select fn.nspname || '.' || fc.relname as from, tn.nspname || '.' || tc.relname as to, f.confrelid as to_oid,
             array(select a.attname::text from unnest(f.conkey) with ordinality k(attnum, i)
                     join pg_attribute a on a.attrelid = f.conrelid and a.attnum = k.attnum order by k.i) as columns,
             array(select a.attname::text from unnest(f.confkey) k(attnum)
                     join pg_attribute a on a.attrelid = f.confrelid and a.attnum = k.attnum) as to_columns,
             exists (select from pg_attribute a
                      where a.attrelid = f.conrelid and a.attnum = any(f.conkey) and not a.attnotnull) as optional,
             exists (select from pg_index i
                      where i.indrelid = f.conrelid and i.indisunique and i.indpred is null
                        and i.indkey::int2[] @> f.conkey and i.indkey::int2[] <@ f.conkey) as one_to_one,
             exists (select from pg_constraint p
                      where p.conrelid = f.conrelid and p.contype = 'p' and p.conkey @> f.conkey) as identifying
        from pg_constraint f
        join pg_class fc on fc.oid = f.conrelid join pg_namespace fn on fn.oid = fc.relnamespace
        join pg_class tc on tc.oid = f.confrelid join pg_namespace tn on tn.oid = tc.relnamespace
       where f.contype = 'f' and f.conrelid = any(${oids})`;
    // Tables outside our schemas that we reference (auth.users) are drawn as stubs: only the
    // referenced columns, since the rest is not ours.
    const stubs = new Map<number, Set<string>>();
    for (const f of fks.filter((f) => !oids.includes(f.to_oid))) {
      stubs.set(f.to_oid, new Set([...(stubs.get(f.to_oid) ?? []), ...f.to_columns]));
    }
    const columns = await sql<{ oid: number; table: string; name: string; type: string; not_null: boolean; pk: boolean }[]>`
      select c.oid, n.nspname || '.' || c.relname as table, a.attname as name,
             format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
             exists (select from pg_constraint p
                      where p.conrelid = c.oid and p.contype = 'p' and a.attnum = any(p.conkey)) as pk
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       where c.oid = any(${[...oids, ...stubs.keys()]})
       order by c.oid, a.attnum`;
    const fkColumns = new Set(fks.flatMap((f) => f.columns.map((c) => `${f.from}.${c}`)));
    const tables = new Map<string, Table>();
    for (const c of columns) {
      if (stubs.has(c.oid) && !stubs.get(c.oid)?.has(c.name)) continue;
      const table = tables.get(c.table) ?? { name: c.table, columns: [] };
      table.columns.push({ name: c.name, type: shortType(c.type), notNull: c.not_null, pk: c.pk, fk: fkColumns.has(`${c.table}.${c.name}`) });
      tables.set(c.table, table);
    }

    const exists = (await sql<{ yes: boolean }[]>`select to_regclass('public.retention_policies') is not null as yes`)[0].yes;
    const policies = exists
      ? (await sql<{ data_kind: string; table_name: string; retain_for: string | null; action: string }[]>`
          select data_kind, table_name, retain_for::text as retain_for, action from public.retention_policies`)
        .map((p) => ({
          dataKind: p.data_kind, tableName: p.table_name, retainFor: p.retain_for ?? "no window", action: p.retain_for === null ? "kept" : p.action,
        }))
      : null;
    // Before session media had rows in retention_policies (migration 20261125080000), their
    // windows were only in public.media_retention_settings: one policy per kind, "kept" when
    // the kind has no window.
    const mediaInPolicies = (policies ?? []).some((p) => p.tableName === "public.session_media");
    const media = !mediaInPolicies && (await sql<{ yes: boolean }[]>`select to_regclass('public.media_retention_settings') is not null as yes`)[0].yes
      ? (await sql<{ kind: string; retain_days: number | null }[]>`select kind, retain_days from public.media_retention_settings`)
        .map((m) => ({
          dataKind: `media ${m.kind}`, tableName: "public.session_media",
          retainFor: m.retain_days === null ? "no window" : `${m.retain_days} days`, action: m.retain_days === null ? "kept" : "delete",
        }))
      : [];
    const allPolicies = policies === null && media.length === 0 ? null
      : [...(policies ?? []), ...media].sort(byText((p) => `${p.tableName} ${p.dataKind} ${p.action}`));

    return {
      tables: [...tables.values()].sort(byText((t) => t.name)),
      fks: fks.map((f) => ({ from: f.from, to: f.to, columns: f.columns, optional: f.optional, oneToOne: f.one_to_one, identifying: f.identifying }))
        .sort(byText((f) => `${f.from} ${f.columns.join(",")} ${f.to}`)),
      policies: allPolicies,
    };
  } finally {
    await sql.end();
  }
}

/** Fails, naming them, when drawn tables are missing from CLASSIFICATION. */
function checkClassified(tables: Table[]): void {
  const missing = tables.map((t) => t.name).filter((name) => !(name in CLASSIFICATION));
  if (missing.length === 0) return;
  throw new Error(
    `Unclassified tables: ${missing.join(", ")}. Classify each in CLASSIFICATION in local/gen_erd.ts ` +
      "(phi: does it hold a person's health or personal information; note: why), then run `npm run docs:erd`.",
  );
}

const alias = (table: string) => table.replace(".", "_");
const policiesOf = (schema: Schema, table: string) => (schema.policies ?? []).filter((p) => p.tableName === table);
const policyText = (p: Policy) => `${p.dataKind}: ${p.retainFor}, ${p.action}`;

/** Crow's foot: many (or, when unique, one) referencing rows to one (or, when nullable, zero or one) row. */
function arrow(fk: ForeignKey): string {
  return `${fk.oneToOne ? "|o" : "}o"}${fk.identifying ? "--" : ".."}${fk.optional ? "o|" : "||"}`;
}

const HEADER = "Generated by `npm run docs:erd` (local/gen_erd.ts) from the migrations: do not edit. " +
  "`npm test` fails when this file differs from what they generate.";

function plantUml(schema: Schema): string {
  const out = [
    "@startuml db_schema",
    `' ${HEADER}`,
    "hide circle",
    "hide empty members",
    "legend top left",
    "  * column: NOT NULL; <<PK>> primary key; <<FK>> foreign key",
    "  <<PHI>> (shaded): holds a person's health or personal information",
    "  }o--|| many rows to one; |o--|| at most one row to one; o| the reference may be null",
    "  solid line: the foreign key is part of the primary key; dotted: it is not",
    "  a note lists the table's retention policies (data kind: window, action)",
    "endlegend",
    "",
  ];
  for (const t of schema.tables) {
    const phi = CLASSIFICATION[t.name].phi ? " <<PHI>> #MistyRose" : "";
    const line = (c: Column) => `  ${c.notNull ? "* " : ""}${c.name} : ${c.type}${c.pk ? " <<PK>>" : ""}${c.fk ? " <<FK>>" : ""}`;
    const keys = t.columns.filter((c) => c.pk);
    const rest = t.columns.filter((c) => !c.pk);
    // Keys above the line, as PlantUML's ERDs draw them.
    out.push(`entity "${t.name}" as ${alias(t.name)}${phi} {`, ...keys.map(line));
    if (keys.length > 0 && rest.length > 0) out.push("  --");
    out.push(...rest.map(line), "}");
    const policies = policiesOf(schema, t.name);
    if (policies.length > 0) out.push(`note bottom of ${alias(t.name)}`, ...policies.map((p) => `  retention ${policyText(p)}`), "end note");
    out.push("");
  }
  for (const fk of schema.fks) out.push(`${alias(fk.from)} ${arrow(fk)} ${alias(fk.to)} : ${fk.columns.join(", ")}`);
  out.push("@enduml", "");
  return out.join("\n");
}

/**
 * Mermaid's erDiagram has no notes and no stereotypes: PHI and retention go into the name
 * shown for the entity. Its attribute types take no spaces or commas, so numeric(12,6) is
 * shown as numeric (the PlantUML file has the full types).
 */
function mermaid(schema: Schema): string {
  const out = ["erDiagram"];
  for (const t of schema.tables) {
    const tags = [
      ...(CLASSIFICATION[t.name].phi ? ["PHI"] : []),
      ...policiesOf(schema, t.name).map((p) => `retention ${policyText(p)}`),
    ];
    const label = `${t.name}${tags.length ? ` (${tags.join("; ")})` : ""}`.replace(/["%\\]/g, "");
    out.push(`    ${alias(t.name)}["${label}"] {`);
    for (const c of t.columns) {
      const type = c.type.replace(/\([^)]*\)/g, "").replace(/[^A-Za-z0-9_\-[\]]/g, "_");
      const keys = [...(c.pk ? ["PK"] : []), ...(c.fk ? ["FK"] : [])].join(", ");
      out.push(`        ${type} ${c.name}${keys ? ` ${keys}` : ""}${c.notNull ? ' "not null"' : ""}`);
    }
    out.push("    }");
  }
  for (const fk of schema.fks) out.push(`    ${alias(fk.from)} ${arrow(fk)} ${alias(fk.to)} : "${fk.columns.join(", ")}"`);
  return out.join("\n");
}

function markdown(schema: Schema): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const rows = schema.tables.map((t) => {
    const { phi, note } = CLASSIFICATION[t.name];
    const retention = policiesOf(schema, t.name).map(policyText).join("; ") || "none";
    return `| \`${t.name}\` | ${phi ? "**yes**" : "no"} | ${cell(retention)} | ${cell(note)} |`;
  });
  const drawn = new Set(schema.tables.map((t) => t.name));
  const elsewhere = (schema.policies ?? []).filter((p) => !drawn.has(p.tableName));
  return [
    "# Database schema",
    "",
    `<!-- ${HEADER} -->`,
    "",
    "The entity-relationship diagram of the tables in `public`, `private`, `audit` and",
    "`analytics` (not views, partitions or extensions' tables), with `auth.users` where our",
    "tables reference it. `npm run docs:erd` draws it from a throwaway database built from",
    "`supabase/migrations/`, here and in PlantUML ([db_schema.puml](db_schema.puml)); `npm test`",
    "fails when either file differs from what the migrations produce. Which tables hold PHI is",
    "decided in `CLASSIFICATION` in `local/gen_erd.ts`: a new table fails the generation until",
    "it is classified there.",
    "",
    "Legend:",
    "",
    "- `PK` primary key, `FK` foreign key; \"not null\": the column is NOT NULL.",
    "- `}o--||` many rows to one, `|o--||` at most one row to one (the reference is unique);",
    "  `o|` at the referenced end: the reference may be null.",
    "- A solid line: the foreign key is part of the primary key; dotted: it is not.",
    "- `(PHI)` after a table's name: it holds a person's health or personal information; the",
    "  table's retention policies (data kind: window, action) follow it.",
    "- Types are shown without precision (`numeric`); the PlantUML file has them in full.",
    "",
    "```mermaid",
    mermaid(schema),
    "```",
    "",
    "## PHI and retention per table",
    "",
    schema.policies === null
      ? "`public.retention_policies` does not exist yet: no table has a retention policy."
      : "Retention policies are the rows of `public.retention_policies` naming the table (for `public.session_media`, the `media-retention` function deletes a kind's files when its window ends; \"kept\" when it has none).",
    "",
    "| Table | PHI | Retention (data kind: window, action) | What it holds |",
    "| --- | --- | --- | --- |",
    ...rows,
    ...(elsewhere.length
      ? ["", "Policies on tables not drawn here:", "", ...elsewhere.map((p) => `- \`${p.tableName}\`: ${policyText(p)}`)]
      : []),
    "",
  ].join("\n");
}

/** The two diagrams of the database at url, as ERD_FILES names them. */
export async function generateErd(url: string): Promise<Record<keyof typeof ERD_FILES, string>> {
  const schema = await readSchema(url);
  checkClassified(schema.tables);
  return { puml: plantUml(schema), markdown: markdown(schema) };
}

/** Builds a throwaway database from the migrations (no gateway), draws it, writes both files. */
async function main(): Promise<void> {
  ensureSystemPackages();
  const stack = await startThrowawayStack({ prefix: "coach-ledger-erd", fast: true, gateway: false });
  try {
    const erd = await generateErd(dbUrl(stack.cfg));
    for (const [key, file] of Object.entries(ERD_FILES)) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, erd[key as keyof typeof ERD_FILES]);
      console.log(`wrote ${file.slice(root.length + 1)}`);
    }
  } finally {
    await stack.dispose();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
