/**
 * The `Prefer` header as PostgREST v14 reads it (src/PostgREST/ApiRequest/Preferences.hs):
 * comma-separated, the first value of each kind wins; under `handling=strict` anything it
 * does not know is PGRST122. `Preference-Applied` lists what was applied, in PostgREST's
 * order, for the kinds that apply to the action.
 */
import { restError } from "../errors.ts";
import { QueryError } from "./query.ts";

export interface Preferences {
  return?: "minimal" | "headers-only" | "representation";
  count?: "exact" | "planned" | "estimated";
  resolution?: "merge-duplicates" | "ignore-duplicates";
  missing?: "default" | "null";
  handling?: "strict" | "lenient";
  maxAffected?: number;
  /** `timezone=<tz>`: set for the transaction (PreQuery); PostgreSQL refuses an unknown one (22023). */
  timezone?: string;
}

const KNOWN: Record<string, string[]> = {
  return: ["minimal", "headers-only", "representation"],
  count: ["exact", "planned", "estimated"],
  resolution: ["merge-duplicates", "ignore-duplicates"],
  missing: ["default", "null"],
  handling: ["strict", "lenient"],
};

/** Reads the Prefer header(s); throws PGRST122 under handling=strict for what it does not know. */
export function parsePreferences(header: string | null): Preferences {
  const out: Preferences = {};
  const invalid: string[] = [];
  const set = out as Record<string, unknown>;
  for (const raw of (header ?? "").split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const [k, v = ""] = item.split("=", 2).map((s) => s.trim());
    if (k in KNOWN && KNOWN[k].includes(v)) {
      if (set[k] === undefined) set[k] = v;
    } else if (item.startsWith("timezone=")) {
      out.timezone ??= item.slice("timezone=".length);
    } else if (k === "max-affected" && /^\d{1,15}$/.test(v)) {
      out.maxAffected ??= Number(v);
    } else if (k === "tx" && (v === "commit" || v === "rollback")) {
      // db-tx-end is Supabase's default (commit): tx is accepted and not applied.
    } else invalid.push(item);
  }
  if (out.handling === "strict" && invalid.length > 0) {
    throw new QueryError({ status: 400, body: restError("PGRST122", "Invalid preferences given with handling=strict", `Invalid preferences: ${invalid.join(", ")}`) });
  }
  return out;
}

/** The Preference-Applied header for an action, or undefined. */
export function preferenceApplied(p: Preferences, action: { method: string; resolutionApplies: boolean }): string | undefined {
  const mutation = ["POST", "PATCH", "DELETE", "PUT"].includes(action.method);
  const parts: string[] = [];
  if (p.resolution && action.method === "POST" && action.resolutionApplies) parts.push(`resolution=${p.resolution}`);
  if (p.missing && (action.method === "POST" || action.method === "PATCH")) parts.push(`missing=${p.missing}`);
  if (p.return && mutation) parts.push(`return=${p.return}`);
  if (p.count) parts.push(`count=${p.count}`);
  if (p.handling) parts.push(`handling=${p.handling}`);
  if (p.timezone !== undefined) parts.push(`timezone=${p.timezone}`);
  if (p.maxAffected !== undefined && p.handling === "strict" && ["PATCH", "DELETE", "RPC"].includes(action.method)) parts.push(`max-affected=${p.maxAffected}`);
  return parts.length ? parts.join(", ") : undefined;
}

/** The `timezone=` preference of a Prefer header (the first one), as PostgREST reads it. */
export function preferredTimezone(header: string | null): string | null {
  for (const raw of (header ?? "").split(",")) {
    const item = raw.trim();
    if (item.startsWith("timezone=")) return item.slice("timezone=".length);
  }
  return null;
}
