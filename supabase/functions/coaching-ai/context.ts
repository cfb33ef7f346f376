/**
 * The tenant context the AI coaching routes reason over (public.get_tenant_context, read as
 * the caller), and the small text helpers the offline answers share.
 */

/** The foundation's parts, as prompts and answers name them. */
export const FOUNDATION_ELEMENTS = ["purpose", "vision", "mission", "core_values", "niche", "ideal_client", "value_proposition"] as const;
export type FoundationElement = typeof FOUNDATION_ELEMENTS[number];

export const PRIORITIES = ["low", "medium", "high", "critical"] as const;
export type Priority = typeof PRIORITIES[number];

export interface Foundation {
  purpose: string | null;
  vision: string | null;
  mission: string | null;
  core_values: string[];
  niche: string | null;
  ideal_client: string | null;
  value_proposition: string | null;
}
export interface Goal {
  id: string;
  title: string;
  description: string | null;
  horizon: string;
  status: string;
  owner_id: string | null;
  due_date: string | null;
}
export interface Strategy {
  id: string;
  goal_id: string;
  title: string;
  description: string | null;
  status: string;
}
export interface Kpi {
  id: string;
  goal_id: string | null;
  name: string;
  unit: string;
  baseline: number | null;
  target: number | null;
  current_value: number | null;
  direction: string;
}
export interface Action {
  id: string;
  goal_id: string | null;
  title: string;
  due_date: string | null;
  priority: Priority;
  status: string;
  assignee_id: string | null;
  estimated_hours: number | null;
  dependencies: string[];
}
export interface Issue {
  id: string;
  title: string;
  description: string | null;
  impact: Priority;
  status: string;
}
export interface Figures {
  month: string;
  revenue_usd: number | null;
  customers: number | null;
  churned_customers: number | null;
  team_size: number | null;
}
/** What public.get_tenant_context returns. */
export interface TenantContext {
  tenant: { id: string; name: string; monthly_ai_budget_usd: number };
  role: "owner" | "admin" | "member" | "coach" | "service_role";
  owner_id: string | null;
  foundation: Foundation | null;
  goals: Goal[];
  strategies: Strategy[];
  kpis: Kpi[];
  actions: Action[];
  issues: Issue[];
  figures: Figures[];
  team: { user_id: string; role: string }[];
}

/** An action still to do. */
export function isOpen(a: Action): boolean {
  return a.status === "todo" || a.status === "in_progress" || a.status === "blocked";
}

const STOP = new Set([
  "about", "after", "again", "also", "before", "being", "between", "both", "could", "does", "each", "every", "from",
  "have", "into", "just", "least", "like", "made", "make", "many", "more", "most", "much", "once", "only", "other",
  "over", "same", "some", "such", "than", "that", "their", "them", "then", "there", "these", "they", "this", "those",
  "through", "time", "very", "what", "when", "where", "which", "while", "with", "without", "would", "your",
]);

/** The stems (first five letters of words of four letters or more, minus common words) of a text. */
export function stems(text: string | null | undefined): Set<string> {
  const out = new Set<string>();
  for (const w of (text ?? "").toLowerCase().match(/\p{L}[\p{L}\p{N}'-]*/gu) ?? []) {
    if (w.length >= 4 && !STOP.has(w)) out.add(w.slice(0, 5));
  }
  return out;
}

/** The stems two texts share, in the first text's order. */
export function shared(a: Set<string>, b: Set<string>): string[] {
  return [...a].filter((x) => b.has(x));
}

/** Text cut to max characters (an ellipsis marks the cut). */
export function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A foundation element's text (core values joined). */
export function elementText(f: Foundation | null, e: FoundationElement): string | null {
  if (!f) return null;
  const v = f[e];
  if (Array.isArray(v)) {
    const values = v.map((x) => x.trim()).filter(Boolean);
    return values.length ? values.join("; ") : null;
  }
  return v && v.trim() ? v : null;
}

/** The element's name in a sentence. */
export function elementLabel(e: FoundationElement): string {
  return e.replace("_", " ");
}

/** A date (YYYY-MM-DD) plus n days. */
export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Today in UTC (YYYY-MM-DD). */
export function today(): string {
  return new Date().toISOString().slice(0, 10);
}
