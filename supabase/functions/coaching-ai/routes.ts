/**
 * The eleven routes of coaching-ai (seed 003 phases 2-4): for each, the strict request and
 * result schemas (zod; the result schema is also the model's structured-output format and
 * the OpenAPI document's), what of the tenant context goes into the prompt's placeholders,
 * the checks an answer must pass against that context (ids it may name), and the offline
 * provider's deterministic answer, built from the data alone.
 */
import { z } from "zod";
import { HttpError } from "../_shared/http.ts";
import {
  type Action, addDays, cut, elementLabel, elementText, FOUNDATION_ELEMENTS, type FoundationElement, type Goal,
  type Issue, isOpen, PRIORITIES, type Priority, shared, stems, type TenantContext, today,
} from "./context.ts";

const text = (max: number) => z.string().min(1).max(max);
const list = (max: number, item = text(500)) => z.array(item).max(max);
const element = z.enum(FOUNDATION_ELEMENTS);
const priority = z.enum(PRIORITIES);
const score = z.int().min(0).max(100);

const tenantOnly = { tenant_id: z.uuid() };
const goalRequest = z.strictObject({ ...tenantOnly, goal_id: z.uuid() });
const issueRequest = z.strictObject({ ...tenantOnly, issue_id: z.uuid() });
const actionsRequest = z.strictObject({
  ...tenantOnly,
  action_ids: z.array(z.uuid()).min(1).max(50).optional()
    .describe("The actions to consider; all open actions of the tenant (up to 50) when left out."),
});
const swot = (min: number) =>
  z.strictObject({
    strengths: list(5).min(min), weaknesses: list(5).min(min), opportunities: list(5).min(min), threats: list(5).min(min),
  });

/** What a route needs from the context for one request. */
export interface Prepared<R> {
  /** The prompt's placeholders. */
  vars: Record<string, string>;
  /** The offline provider's answer. */
  offline: () => R;
  /** Refuses an answer that names what the request did not (a malformed answer: 502). */
  check?: (result: R) => string | null;
}

/** One POST route. */
export interface Route<Q = unknown, R = unknown> {
  name: string;
  summary: string;
  request: z.ZodType<Q>;
  result: z.ZodType<R>;
  /** The request of the docs and the OpenAPI example (the seed tenant's ids). */
  example: Q;
  /** Present on a deprecated route: when it goes and what replaces it. */
  deprecated?: { since: string; sunset: string; successors: string[] };
  prepare(ctx: TenantContext, req: Q): Prepared<R>;
}

function route<Q, R>(r: Route<Q, R>): Route<Q, R> {
  return r;
}

/** The seed tenant (supabase/seed.sql), for examples. */
export const EXAMPLE_TENANT = "7e4a0000-0000-4000-8000-000000000001";
const EXAMPLE_GOAL = "7e4a0000-60a1-4000-8000-000000000001";
const EXAMPLE_ISSUE = "7e4a0000-155e-4000-8000-000000000001";

const pretty = (v: unknown) => JSON.stringify(v, null, 2);
const lower = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

function goalOf(ctx: TenantContext, id: string): Goal {
  const goal = ctx.goals.find((g) => g.id === id);
  if (!goal) throw new HttpError(404, "Not Found", "No goal with this goal_id is visible to you in this tenant.");
  return goal;
}

function issueOf(ctx: TenantContext, id: string): Issue {
  const issue = ctx.issues.find((i) => i.id === id);
  if (!issue) throw new HttpError(404, "Not Found", "No issue with this issue_id is visible to you in this tenant.");
  // A blank description says nothing: the answers treat it as none.
  return { ...issue, description: issue.description?.trim() ? issue.description : null };
}

/** The actions a request names (404 naming the unknown ones), or the open ones (at most 50). */
function actionsOf(ctx: TenantContext, ids: string[] | undefined): Action[] {
  if (!ids) {
    const open = ctx.actions.filter(isOpen).slice(0, 50);
    if (!open.length) throw new HttpError(409, "Conflict", "The tenant has no open actions; name action_ids to consider closed ones.");
    return open;
  }
  const unique = [...new Set(ids)];
  const found = unique.map((id) => ctx.actions.find((a) => a.id === id));
  const missing = unique.filter((_, i) => !found[i]);
  if (missing.length) {
    throw new HttpError(404, "Not Found", `No action with these ids is visible to you in this tenant: ${missing.join(", ")}.`);
  }
  return found as Action[];
}

/** Refuses action ids the answer invents (not among those sent). */
function knownActions(sent: Action[], ids: string[]): string | null {
  const known = new Set(sent.map((a) => a.id));
  const unknown = ids.filter((id) => !known.has(id));
  return unknown.length ? `names actions it was not given (${unknown.length})` : null;
}

function goalText(ctx: TenantContext, goal: Goal): string {
  const strategies = ctx.strategies.filter((s) => s.goal_id === goal.id).map((s) => `${s.title} ${s.description ?? ""}`);
  return [goal.title, goal.description ?? "", ...strategies].join(" ");
}

/** The offline alignment: the foundation elements whose words the goal (and its strategies) share. */
function alignment(ctx: TenantContext, goal: Goal) {
  const goalStems = stems(goalText(ctx, goal));
  const present = FOUNDATION_ELEMENTS.filter((e) => elementText(ctx.foundation, e));
  const overlaps = present.map((e) => ({ element: e, words: shared(stems(elementText(ctx.foundation, e)), goalStems) }));
  const aligned = overlaps.filter((o) => o.words.length > 0);
  const scoreValue = present.length ? Math.round((100 * aligned.length) / present.length) : 0;
  return { present, overlaps, aligned, score: scoreValue };
}

const levelOf = (s: number) => s >= 60 ? "strong" : s >= 30 ? "partial" : "weak";

function goalVars(ctx: TenantContext, goal: Goal): Record<string, string> {
  return {
    foundation: pretty(ctx.foundation ?? "No foundation written yet."),
    goal: pretty(goal),
    strategies: pretty(ctx.strategies.filter((s) => s.goal_id === goal.id)),
    kpis: pretty(ctx.kpis.filter((k) => k.goal_id === goal.id || k.goal_id === null)),
    figures: pretty(ctx.figures),
  };
}

function teamVars(ctx: TenantContext): string {
  return pretty(ctx.team.map((m) => ({
    ...m,
    open_hours: ctx.actions.filter((a) => a.assignee_id === m.user_id && isOpen(a)).reduce((h, a) => h + (a.estimated_hours ?? 0), 0),
  })));
}

const AlignmentCheck = z.strictObject({
  alignment_score: score.describe("0 (serves no part of the foundation) to 100."),
  level: z.enum(["weak", "partial", "strong"]),
  aligned_with: z.array(element).max(7),
  gaps: list(7),
  summary: text(1000),
});

const AlignmentExplanation = z.strictObject({
  alignment_score: score,
  explanation: text(4000),
  references: z.array(z.strictObject({ element, quote: text(500), relevance: text(500) })).max(10),
});

const AlignmentSuggestions = z.strictObject({
  suggestions: z.array(z.strictObject({ change: text(500), rationale: text(1000), element: element.nullable() })).min(1).max(5),
});

const StrategySuggestions = z.strictObject({
  strategies: z.array(z.strictObject({ title: text(200), description: text(2000), rationale: text(1000) })).min(1).max(5),
});

const KpiRecommendations = z.strictObject({
  kpis: z.array(z.strictObject({
    name: text(200), unit: text(40), target: z.number().min(-1e15).max(1e15),
    direction: z.enum(["increase", "decrease", "maintain"]), rationale: text(1000),
  })).min(1).max(5),
});

const StrategicAlignment = z.strictObject({
  actions: z.array(z.strictObject({
    action_id: z.uuid(), goal_id: z.uuid().nullable(), alignment_score: score, rationale: text(1000),
  })).min(1).max(50),
  unaligned_action_ids: z.array(z.uuid()).max(50),
  summary: text(1000),
});

const PrioritizationSuggestions = z.strictObject({
  suggestions: z.array(z.strictObject({
    action_id: z.uuid(), current_priority: priority, suggested_priority: priority, reason: text(1000),
  })).min(1).max(50),
});

const SchedulingSuggestions = z.strictObject({
  schedule: z.array(z.strictObject({
    action_id: z.uuid(), assignee_id: z.uuid().nullable(), start_date: z.iso.date(), due_date: z.iso.date(),
    hours: z.number().min(0).max(10000),
  })).max(50),
  conflicts: list(20, text(1000)),
});

const RootCauseSuggestions = z.strictObject({
  recommended_method: z.enum(["five_whys", "fishbone", "swot"]),
  five_whys: z.array(z.strictObject({ why: text(500), likely_answer: text(1000) })).length(5),
  fishbone: z.strictObject({
    people: list(5), process: list(5), tools: list(5), environment: list(5), materials: list(5), measurement: list(5),
  }),
  swot: swot(0),
  assumptions: list(10),
});

const ActionSuggestions = z.strictObject({
  actions: z.array(z.strictObject({
    title: text(200), priority, estimated_hours: z.number().min(0).max(1000),
    depends_on: z.array(z.int().min(0).max(6)).max(6).describe("Indexes of earlier actions in this list."),
    addresses: text(500),
  })).min(1).max(7),
}).superRefine((v, ctx) => {
  v.actions.forEach((a, i) => {
    if (a.depends_on.some((d) => d >= i)) {
      ctx.addIssue({ code: "custom", path: ["actions", i, "depends_on"], message: "An action depends only on earlier ones." });
    }
  });
});

const OperationsAnalysis = z.strictObject({ swot: swot(1) });

const SWOT_ONLY = "Only swot remains here: root_cause moved to operations/root-cause-suggestions, action_plan to operations/action-suggestions.";

/** Every route, by its path under /functions/v1/coaching-ai/. */
export const ROUTES: Route[] = [
  route({
    name: "coaching/alignment-check",
    summary: "How well a goal serves the tenant's foundation: a score, the elements it serves and the gaps.",
    request: goalRequest, result: AlignmentCheck,
    example: { tenant_id: EXAMPLE_TENANT, goal_id: EXAMPLE_GOAL },
    prepare(ctx, req) {
      const goal = goalOf(ctx, req.goal_id);
      return {
        vars: goalVars(ctx, goal),
        offline() {
          const a = alignment(ctx, goal);
          const gaps = a.overlaps.filter((o) => !o.words.length)
            .map((o) => cut(`Says nothing of the ${elementLabel(o.element)}: ${elementText(ctx.foundation, o.element)}`, 500));
          return {
            alignment_score: a.score, level: levelOf(a.score), aligned_with: a.aligned.map((o) => o.element), gaps,
            summary: cut(a.present.length
              ? `"${goal.title}" shares words with ${a.aligned.length} of the ${a.present.length} parts of the foundation${a.aligned.length ? ` (${a.aligned.map((o) => elementLabel(o.element)).join(", ")})` : ""}.`
              : "The tenant has no foundation written yet, so nothing can be aligned with it.", 1000),
          };
        },
      };
    },
  }),
  route({
    name: "coaching/alignment-explanation",
    summary: "Why a goal is or is not aligned with the foundation, in plain language, citing the foundation's words.",
    request: goalRequest, result: AlignmentExplanation,
    example: { tenant_id: EXAMPLE_TENANT, goal_id: EXAMPLE_GOAL },
    prepare(ctx, req) {
      const goal = goalOf(ctx, req.goal_id);
      const a = alignment(ctx, goal);
      return {
        vars: { ...goalVars(ctx, goal), score: String(a.score) },
        offline: () => ({
          alignment_score: a.score,
          explanation: cut([
            `"${goal.title}" scores ${a.score} of 100 (${levelOf(a.score)}).`,
            a.aligned.length
              ? `It speaks to the ${a.aligned.map((o) => elementLabel(o.element)).join(", ")} through the words ${[...new Set(a.aligned.flatMap((o) => o.words))].map((w) => `"${w}…"`).join(", ")}.`
              : "It uses none of the foundation's words.",
            a.present.length > a.aligned.length
              ? `It does not say how it serves the ${a.overlaps.filter((o) => !o.words.length).map((o) => elementLabel(o.element)).join(", ")}.`
              : "",
          ].filter(Boolean).join(" "), 4000),
          references: a.aligned.map((o) => ({
            element: o.element, quote: cut(elementText(ctx.foundation, o.element)!, 500),
            relevance: cut(`Shares the words ${o.words.map((w) => `"${w}…"`).join(", ")} with the goal.`, 500),
          })),
        }),
      };
    },
  }),
  route({
    name: "coaching/alignment-suggestions",
    summary: "Up to five concrete changes that would bring a goal closer to the foundation.",
    request: goalRequest, result: AlignmentSuggestions,
    example: { tenant_id: EXAMPLE_TENANT, goal_id: EXAMPLE_GOAL },
    prepare(ctx, req) {
      const goal = goalOf(ctx, req.goal_id);
      return {
        vars: goalVars(ctx, goal),
        offline() {
          const a = alignment(ctx, goal);
          const suggestions = a.overlaps.filter((o) => !o.words.length).slice(0, 4).map((o) => ({
            change: cut(`Say how "${goal.title}" serves the ${elementLabel(o.element)}: "${elementText(ctx.foundation, o.element)}".`, 500),
            rationale: cut(`The goal shares no words with the ${elementLabel(o.element)}, so the team cannot see the link.`, 1000),
            element: o.element as FoundationElement | null,
          }));
          if (!ctx.kpis.some((k) => k.goal_id === goal.id)) {
            suggestions.push({ change: cut(`Give "${goal.title}" a KPI with a baseline and a target.`, 500),
              rationale: "A goal without a measure cannot show progress.", element: null });
          }
          if (!goal.owner_id) {
            suggestions.push({ change: cut(`Name an owner for "${goal.title}".`, 500), rationale: "Nobody is accountable for it yet.", element: null });
          }
          if (!suggestions.length) {
            suggestions.push({ change: cut(`Review "${goal.title}" against the foundation each quarter.`, 500),
              rationale: "It is aligned today; a regular review keeps it so.", element: null });
          }
          return { suggestions: suggestions.slice(0, 5) };
        },
      };
    },
  }),
  route({
    name: "coaching/strategy-suggestions",
    summary: "Up to five strategies for a goal that fit the niche, ideal client and value proposition and differ from existing ones.",
    request: goalRequest, result: StrategySuggestions,
    example: { tenant_id: EXAMPLE_TENANT, goal_id: EXAMPLE_GOAL },
    prepare(ctx, req) {
      const goal = goalOf(ctx, req.goal_id);
      return {
        vars: goalVars(ctx, goal),
        offline() {
          const f = (e: FoundationElement) => elementText(ctx.foundation, e);
          const existing = new Set(ctx.strategies.filter((s) => s.goal_id === goal.id).map((s) => s.title.toLowerCase()));
          const candidates = [
            f("ideal_client") && { title: "Aim at the ideal client", description: `Pursue "${goal.title}" with ${lower(f("ideal_client")!)} in mind first.`,
              rationale: "The foundation names who the business serves best." },
            f("value_proposition") && { title: "Lead with the value proposition", description: `Make "${f("value_proposition")}" the message of every step towards "${goal.title}".`,
              rationale: "It is what sets the business apart." },
            f("niche") && { title: "Go deeper in the niche", description: `Reach more of the niche (${lower(f("niche")!)}) before widening the market.`,
              rationale: "A narrow market is cheaper to reach and to serve well." },
            { title: "Quarterly milestones", description: `Break "${goal.title}" into one measurable milestone per quarter.`,
              rationale: "Progress becomes visible early, and a plan can change before it fails." },
          ].filter((c): c is { title: string; description: string; rationale: string } => !!c && !existing.has(c.title.toLowerCase()));
          if (!candidates.length) {
            candidates.push({ title: "Review the strategies in place", description: `Check each strategy of "${goal.title}" against its KPIs and retire the ones that do not move them.`,
              rationale: "Every strategy this answer would suggest is already in place." });
          }
          return { strategies: candidates.slice(0, 5).map((c) => ({ title: cut(c.title, 200), description: cut(c.description, 2000), rationale: cut(c.rationale, 1000) })) };
        },
      };
    },
  }),
  route({
    name: "coaching/kpi-recommendations",
    summary: "Up to five KPIs that show progress on a goal, with unit, target and direction.",
    request: goalRequest, result: KpiRecommendations,
    example: { tenant_id: EXAMPLE_TENANT, goal_id: EXAMPLE_GOAL },
    prepare(ctx, req) {
      const goal = goalOf(ctx, req.goal_id);
      return {
        vars: goalVars(ctx, goal),
        offline() {
          const have = new Set(ctx.kpis.map((k) => k.name.toLowerCase()));
          const kpis: z.infer<typeof KpiRecommendations>["kpis"] = [];
          const number = /(\d+(?:\.\d+)?)\s*(%|[\p{L}]+)?/u.exec(goal.title);
          if (number) {
            const decrease = /\b(cut|reduce|lower|below|less)\b/i.test(goal.title);
            const unit = number[2] === "%" ? "%" : goal.title.match(/\p{L}+$/u)?.[0] ?? "count";
            kpis.push({ name: cut(goal.title, 200), unit: cut(unit, 40), target: Number(number[1]),
              direction: decrease ? "decrease" : "increase", rationale: "The goal's own number, measured monthly." });
          }
          const latest = ctx.figures.at(-1);
          if (latest?.revenue_usd != null) {
            kpis.push({ name: "Monthly revenue", unit: "USD", target: Math.round(latest.revenue_usd * 1.1),
              direction: "increase", rationale: `Ten percent above the latest month (${latest.month.slice(0, 7)}).` });
          }
          if (latest?.customers && latest.churned_customers != null) {
            const churn = Math.round((1000 * latest.churned_customers) / latest.customers) / 10;
            kpis.push({ name: "Monthly churn rate", unit: "%", target: Math.round(churn * 8) / 10,
              direction: "decrease", rationale: `A fifth below the latest month's ${churn}%.` });
          }
          kpis.push({ name: `Actions done for "${cut(goal.title, 150)}"`, unit: "actions",
            target: Math.max(1, ctx.actions.filter((a) => a.goal_id === goal.id).length), direction: "increase",
            rationale: "Progress on the work the goal needs, visible before the outcome moves." });
          const fresh = kpis.filter((k) => !have.has(k.name.toLowerCase())).slice(0, 5);
          // Every KPI suggested is tracked already: the last one stands as the measure to keep.
          return { kpis: fresh.length ? fresh : [{ ...kpis.at(-1)!, rationale: "Already tracked: keep measuring it monthly." }] };
        },
      };
    },
  }),
  route({
    name: "operations/strategic-alignment",
    summary: "How directly each action advances the tenant's goals, and the actions that serve none.",
    request: actionsRequest, result: StrategicAlignment,
    example: { tenant_id: EXAMPLE_TENANT },
    prepare(ctx, req) {
      const actions = actionsOf(ctx, req.action_ids);
      return {
        vars: { goals: pretty(ctx.goals), actions: pretty(actions) },
        check: (r) => knownActions(actions, [...r.actions.map((a) => a.action_id), ...r.unaligned_action_ids]),
        offline() {
          const rows = actions.map((a) => {
            const goal = ctx.goals.find((g) => g.id === a.goal_id);
            const s = !goal ? 10 : goal.status === "active" ? 85 : goal.status === "achieved" ? 40 : 55;
            return {
              action_id: a.id, goal_id: goal?.id ?? null, alignment_score: s,
              rationale: cut(goal ? `Serves "${goal.title}" (${goal.status}).` : "Serves no goal.", 1000),
            };
          });
          const unaligned = rows.filter((r) => !r.goal_id).map((r) => r.action_id);
          return {
            actions: rows, unaligned_action_ids: unaligned,
            summary: `${rows.length - unaligned.length} of ${rows.length} actions serve a goal.`,
          };
        },
      };
    },
  }),
  route({
    name: "operations/prioritization-suggestions",
    summary: "A priority for each action from its goal, due date, dependants and status, with the reason for a change.",
    request: actionsRequest, result: PrioritizationSuggestions,
    example: { tenant_id: EXAMPLE_TENANT },
    prepare(ctx, req) {
      const actions = actionsOf(ctx, req.action_ids);
      const day = today();
      return {
        vars: { goals: pretty(ctx.goals), actions: pretty(actions), today: day },
        check: (r) => knownActions(actions, r.suggestions.map((s) => s.action_id)),
        offline: () => ({
          suggestions: actions.map((a) => {
            let level = PRIORITIES.indexOf(a.priority);
            const reasons: string[] = [];
            const dependants = ctx.actions.filter((o) => isOpen(o) && o.dependencies.includes(a.id));
            if (isOpen(a) && a.due_date && a.due_date < day) {
              level = Math.min(level + 1, 3);
              reasons.push(`overdue since ${a.due_date}`);
            }
            if (isOpen(a) && dependants.length && level < 2) {
              level = 2;
              reasons.push(`${dependants.length} open action${dependants.length > 1 ? "s wait" : " waits"} for it`);
            }
            if (isOpen(a) && !a.goal_id && a.priority !== "critical" && !reasons.length) {
              level = Math.max(level - 1, 0);
              reasons.push("it serves no goal");
            }
            const suggested: Priority = PRIORITIES[level];
            return {
              action_id: a.id, current_priority: a.priority, suggested_priority: suggested,
              reason: suggested === a.priority ? (isOpen(a) ? "Keep: nothing argues for a change." : `Keep: it is ${a.status}.`) : `Change: ${reasons.join("; ")}.`,
            };
          }),
        }),
      };
    },
  }),
  route({
    name: "operations/scheduling-suggestions",
    summary: "Start and due dates for open actions: dependencies first, no assignee over their weekly hours.",
    request: z.strictObject({
      ...actionsRequest.shape,
      hours_per_week: z.number().min(1).max(80).optional().describe("Hours each assignee gives these actions per week (default 20)."),
    }),
    result: SchedulingSuggestions,
    example: { tenant_id: EXAMPLE_TENANT, hours_per_week: 20 },
    prepare(ctx, req) {
      const actions = actionsOf(ctx, req.action_ids).filter(isOpen);
      const perWeek = req.hours_per_week ?? 20;
      const day = today();
      return {
        vars: { actions: pretty(actions), team: teamVars(ctx), today: day, hours_per_week: String(perWeek) },
        check: (r) => knownActions(actions, r.schedule.map((s) => s.action_id)),
        offline() {
          // Dependencies first (a topological order), then by due date and priority.
          const byId = new Map(actions.map((a) => [a.id, a]));
          const ordered: Action[] = [];
          const seen = new Set<string>();
          const visit = (a: Action, path: Set<string>) => {
            if (seen.has(a.id) || path.has(a.id)) return;
            path.add(a.id);
            for (const d of a.dependencies) if (byId.has(d)) visit(byId.get(d)!, path);
            seen.add(a.id);
            ordered.push(a);
          };
          const urgency = (a: Action) => `${a.due_date ?? "9999-12-31"}${3 - PRIORITIES.indexOf(a.priority)}`;
          for (const a of [...actions].sort((x, y) => urgency(x).localeCompare(urgency(y)))) visit(a, new Set());
          const free = new Map<string, string>();
          const due = new Map<string, string>();
          const schedule = [];
          const conflicts: string[] = [];
          for (const a of ordered) {
            const hours = a.estimated_hours ?? 4;
            const lane = a.assignee_id ?? "unassigned";
            const after = a.dependencies.map((d) => due.get(d)).filter((d): d is string => !!d).map((d) => addDays(d, 1));
            const start = [day, free.get(lane) ?? day, ...after].sort().at(-1)!;
            // At most ten years per action, so that dates stay four-digit years whatever the estimates.
            const end = addDays(start, Math.min(3650, Math.max(1, Math.ceil((7 * hours) / perWeek))) - 1);
            free.set(lane, addDays(end, 1));
            due.set(a.id, end);
            schedule.push({ action_id: a.id, assignee_id: a.assignee_id, start_date: start, due_date: end, hours });
            if (a.due_date && end > a.due_date) conflicts.push(cut(`"${a.title}" cannot be done by ${a.due_date}; the earliest is ${end}.`, 1000));
          }
          return { schedule, conflicts: conflicts.slice(0, 20) };
        },
      };
    },
  }),
  route({
    name: "operations/root-cause-suggestions",
    summary: "For one issue: a pre-filled Five Whys chain, a fishbone of likely causes and the SWOT elements specific to it.",
    request: issueRequest, result: RootCauseSuggestions,
    example: { tenant_id: EXAMPLE_TENANT, issue_id: EXAMPLE_ISSUE },
    prepare(ctx, req) {
      const issue = issueOf(ctx, req.issue_id);
      const issueStems = stems(`${issue.title} ${issue.description ?? ""}`);
      const related = ctx.actions.filter((a) => shared(stems(a.title), issueStems).length > 0);
      return {
        vars: { foundation: pretty(ctx.foundation ?? "No foundation written yet."), issue: pretty(issue), actions: pretty(related) },
        offline() {
          const open = related.filter(isOpen);
          const blocked = related.filter((a) => a.status === "blocked");
          const goals = ctx.goals.filter((g) => g.status === "active");
          const people = ctx.team.length;
          const assignees = new Set(open.map((a) => a.assignee_id).filter(Boolean)).size;
          const numeric = /\d/.test(issue.description ?? "");
          const guess = (s: string) => cut(`(a guess) ${s}`, 500);
          return {
            recommended_method: numeric && (issue.impact === "high" || issue.impact === "critical") ? "five_whys" : "fishbone",
            five_whys: [
              { why: cut(`Why is "${issue.title}" a problem?`, 500), likely_answer: cut(issue.description ?? "It is not described yet: write down what is observed.", 1000) },
              { why: "Why has it not been fixed yet?", likely_answer: cut(open.length ? `${open.length} related action${open.length > 1 ? "s are" : " is"} open, ${blocked.length} blocked: ${open.map((a) => `"${a.title}" (${a.status})`).join(", ")}.` : "No action addresses it yet.", 1000) },
              { why: "Why is no one driving it?", likely_answer: cut(assignees ? `${assignees} of ${people} team members have related work.` : `None of the ${people} team members is assigned related work.`, 1000) },
              { why: "Why does it matter now?", likely_answer: cut(`Its impact is ${issue.impact}${goals.length ? `, and it stands in the way of ${goals.map((g) => `"${g.title}"`).join(", ")}` : ""}.`, 1000) },
              { why: "What would stop it coming back?", likely_answer: guess("an owner, a measure of it and a weekly look at that measure.") },
            ],
            fishbone: {
              people: [cut(`Who owns "${issue.title}"? ${assignees ? `${assignees} people have related work.` : "Nobody yet."}`, 500)],
              process: [cut(`Which step lets "${issue.title}" happen unnoticed?`, 500)],
              tools: related.length ? related.map((a) => cut(`"${a.title}" (${a.status})`, 500)).slice(0, 5) : [guess("a tool or system in the path of the problem.")],
              environment: [guess("timing or place: when and where does it happen most?")],
              materials: [guess("what the team or clients are given to work with.")],
              measurement: [numeric ? cut(`The description measures it: "${issue.description}".`, 500) : "It is not measured yet."],
            },
            swot: {
              strengths: (ctx.foundation?.core_values ?? []).filter((v) => v.trim()).slice(0, 2).map((v) => cut(`Core value to draw on: ${v}`, 500)),
              weaknesses: [cut(`${issue.title} (${issue.impact} impact, ${issue.status}).`, 500), ...blocked.map((a) => cut(`Blocked: ${a.title}`, 500))].slice(0, 5),
              opportunities: goals.slice(0, 3).map((g) => cut(`Fixing it helps "${g.title}".`, 500)),
              threats: issue.impact === "critical" || issue.impact === "high" ? [cut(`Left open, a ${issue.impact}-impact issue costs clients and revenue.`, 500)] : [],
            },
            assumptions: ["Offline answer: built from the issue's words and the tenant's data, not from a model."],
          };
        },
      };
    },
  }),
  route({
    name: "operations/action-suggestions",
    summary: "A rich action plan for one issue: up to seven actions with priority, hours and dependencies.",
    request: issueRequest, result: ActionSuggestions,
    example: { tenant_id: EXAMPLE_TENANT, issue_id: EXAMPLE_ISSUE },
    prepare(ctx, req) {
      const issue = issueOf(ctx, req.issue_id);
      return {
        vars: { issue: pretty(issue), goals: pretty(ctx.goals), team: teamVars(ctx) },
        offline: () => ({
          actions: [
            { title: cut(`Confirm the cause of "${issue.title}"`, 200), priority: issue.impact, estimated_hours: 2, depends_on: [],
              addresses: "What is actually happening, measured before anything changes." },
            { title: cut(`Fix the cause of "${issue.title}"`, 200), priority: issue.impact, estimated_hours: issue.impact === "critical" ? 8 : 4,
              depends_on: [0], addresses: cut(issue.description ?? issue.title, 500) },
            { title: cut(`Watch "${issue.title}" for four weeks`, 200), priority: "medium" as Priority, estimated_hours: 1, depends_on: [1],
              addresses: "Whether the fix holds." },
          ],
        }),
      };
    },
  }),
  route({
    name: "analysis/operations",
    summary: "Deprecated: a SWOT analysis of the tenant's operations. Use operations/root-cause-suggestions and operations/action-suggestions.",
    request: z.strictObject({
      ...tenantOnly,
      analysis_type: z.literal("swot", { error: SWOT_ONLY }).optional().describe("Only swot; the other types have moved (see Link)."),
    }),
    result: OperationsAnalysis,
    example: { tenant_id: EXAMPLE_TENANT },
    deprecated: {
      since: "2026-11-24T00:00:00Z", sunset: "2027-05-31T00:00:00Z",
      successors: ["operations/root-cause-suggestions", "operations/action-suggestions"],
    },
    prepare(ctx) {
      return {
        vars: {
          foundation: pretty(ctx.foundation ?? "No foundation written yet."), goals: pretty(ctx.goals), actions: pretty(ctx.actions),
          issues: pretty(ctx.issues), figures: pretty(ctx.figures),
        },
        offline() {
          const day = today();
          const open = ctx.issues.filter((i) => i.status === "open" || i.status === "investigating");
          const overdue = ctx.actions.filter((a) => isOpen(a) && a.due_date && a.due_date < day);
          const [prev, last] = ctx.figures.slice(-2);
          const or = (xs: string[], fallback: string) => (xs.length ? xs : [fallback]).slice(0, 5).map((x) => cut(x, 500));
          return {
            swot: {
              strengths: or([
                ...ctx.strategies.filter((s) => s.status === "active").map((s) => `Active strategy: ${s.title}`),
                ...ctx.kpis.filter((k) => k.current_value != null && k.baseline != null &&
                  (k.direction === "decrease" ? k.current_value < k.baseline : k.current_value > k.baseline))
                  .map((k) => `${k.name} moved from ${k.baseline} to ${k.current_value} ${k.unit}`),
              ], "No active strategy or improving KPI recorded yet."),
              weaknesses: or([...open.map((i) => `${i.title} (${i.impact})`), ...overdue.map((a) => `Overdue: ${a.title}`)],
                "No open issue or overdue action recorded."),
              opportunities: or([
                ...ctx.strategies.filter((s) => s.status === "proposed").map((s) => `Proposed strategy: ${s.title}`),
                ...ctx.goals.filter((g) => g.status === "draft").map((g) => `Draft goal: ${g.title}`),
              ], "No proposed strategy or draft goal recorded."),
              threats: or([
                ...open.filter((i) => i.impact === "critical").map((i) => `Critical: ${i.title}`),
                ...(prev && last && prev.revenue_usd != null && last.revenue_usd != null && last.revenue_usd < prev.revenue_usd
                  ? [`Revenue fell from ${prev.revenue_usd} to ${last.revenue_usd} USD in ${last.month.slice(0, 7)}`] : []),
                ...(last?.customers && last.churned_customers ? [`${last.churned_customers} of ${last.customers} customers left in ${last.month.slice(0, 7)}`] : []),
              ], "No critical issue or falling figure recorded."),
            },
          };
        },
      };
    },
  }) as Route,
] as Route[];

/** The route at a path, or undefined. */
export function routeOf(path: string): Route | undefined {
  return ROUTES.find((r) => r.name === path);
}
