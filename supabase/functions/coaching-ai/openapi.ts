/**
 * The OpenAPI 3.1 document of coaching-ai, generated from the same zod schemas the handler
 * validates with (zod v4's JSON Schema, draft 2020-12, which OpenAPI 3.1 uses). Each route
 * has a request example (the seed tenant's ids) and a response example that is the offline
 * provider's real answer for a sample tenant shaped like the seed's.
 */
import { z } from "zod";
import { type TenantContext, today } from "./context.ts";
import { type Route, ROUTES } from "./routes.ts";
import { responseSchema } from "./handler.ts";

/** A tenant like the seed's Archer Wellness Studio, for the response examples. */
export const SAMPLE_CONTEXT: TenantContext = {
  tenant: { id: "7e4a0000-0000-4000-8000-000000000001", name: "Archer Wellness Studio", monthly_ai_budget_usd: 25 },
  role: "owner",
  owner_id: "a11ce000-0000-4000-8000-000000000001",
  foundation: {
    purpose: "Help busy professionals build habits that keep them well.",
    vision: "A neighbourhood studio every desk worker in town can reach in ten minutes.",
    mission: "Small-group movement and sleep coaching that fits around a working day.",
    core_values: ["Consistency over intensity", "Every body belongs", "Measure what matters"],
    niche: "Office workers aged 30-55 with little time and back or sleep trouble",
    ideal_client: "A manager who sits eight hours a day and has tried and dropped two gym memberships",
    value_proposition: "Forty-minute sessions before or after work, with a coach who checks in between them",
  },
  goals: [
    { id: "7e4a0000-60a1-4000-8000-000000000001", title: "Reach 120 active members", description: "Grow from 84 to 120 members who come at least twice a month.",
      horizon: "year", status: "active", owner_id: "a11ce000-0000-4000-8000-000000000001", due_date: "2026-12-31" },
    { id: "7e4a0000-60a1-4000-8000-000000000002", title: "Cut monthly churn below 4%", description: "Keep members past their third month.",
      horizon: "quarter", status: "active", owner_id: "a11ce000-0000-4000-8000-000000000001", due_date: "2026-12-31" },
  ],
  strategies: [
    { id: "7e4a0000-57a7-4000-8000-000000000001", goal_id: "7e4a0000-60a1-4000-8000-000000000001", title: "Corporate wellness partnerships",
      description: "Sell ten-session packs to two local employers.", status: "active" },
  ],
  kpis: [
    { id: "7e4a0000-6b15-4000-8000-000000000001", goal_id: "7e4a0000-60a1-4000-8000-000000000001", name: "Active members", unit: "members",
      baseline: 84, target: 120, current_value: 97, direction: "increase" },
  ],
  actions: [
    { id: "7e4a0000-ac71-4000-8000-000000000001", goal_id: "7e4a0000-60a1-4000-8000-000000000001", title: "Draft the corporate pack offer",
      due_date: "2099-12-01", priority: "high", status: "in_progress", assignee_id: "a11ce000-0000-4000-8000-000000000001", estimated_hours: 6, dependencies: [] },
    { id: "7e4a0000-ac71-4000-8000-000000000002", goal_id: "7e4a0000-60a1-4000-8000-000000000001", title: "Pitch the pack to the council offices",
      due_date: "2099-12-10", priority: "high", status: "todo", assignee_id: "a11ce000-0000-4000-8000-000000000001", estimated_hours: 4,
      dependencies: ["7e4a0000-ac71-4000-8000-000000000001"] },
    { id: "7e4a0000-ac71-4000-8000-000000000004", goal_id: null, title: "Fix the booking page on phones",
      due_date: "2099-12-03", priority: "critical", status: "blocked", assignee_id: null, estimated_hours: 8, dependencies: [] },
  ],
  issues: [
    { id: "7e4a0000-155e-4000-8000-000000000001", title: "Evening classes half empty",
      description: "The 19:00 sessions average 4 of 10 places since the autumn.", impact: "high", status: "open" },
  ],
  figures: [
    { month: "2026-09-01", revenue_usd: 11600, customers: 93, churned_customers: 6, team_size: 4 },
    { month: "2026-10-01", revenue_usd: 12050, customers: 95, churned_customers: 5, team_size: 5 },
  ],
  team: [{ user_id: "a11ce000-0000-4000-8000-000000000001", role: "owner" }, { user_id: "ca401000-0000-4000-8000-000000000003", role: "coach" }],
};

function schema(s: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(s, { target: "draft-2020-12", io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

/** A route's response example: the offline answer for the sample tenant. */
export function responseExample(route: Route): unknown {
  const request = { ...(route.example as Record<string, unknown>), tenant_id: SAMPLE_CONTEXT.tenant.id };
  return {
    route: route.name, tenant_id: SAMPLE_CONTEXT.tenant.id, result: route.prepare(SAMPLE_CONTEXT, request).offline(),
    model: "offline", prompt: { name: route.name, version: 1 },
    usage: { prompt_tokens: null, completion_tokens: null, cached_tokens: null }, cost_usd: null,
    interaction_id: "c0a1c4e0-0000-4000-8000-000000000001",
  };
}

const PROBLEM = {
  type: "object",
  required: ["type", "title", "status", "detail"],
  properties: {
    type: { type: "string" }, title: { type: "string" }, status: { type: "integer" }, detail: { type: "string" },
    trace_id: { type: "string" },
    errors: { type: "array", items: { type: "object", required: ["field", "message"], properties: { field: { type: "string" }, message: { type: "string" } } } },
  },
};
const problem = (description: string) => ({
  description, content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});

let cached: Record<string, unknown> | undefined;

/** The document (built once per process; the examples' dates are the day it was built). */
export function openApiDocument(): Record<string, unknown> {
  if (cached && (cached as { "x-built-on": string })["x-built-on"] === today()) return cached;
  const paths: Record<string, unknown> = {};
  for (const route of ROUTES) {
    paths[`/${route.name}`] = {
      post: {
        operationId: route.name.replace(/[/-](\w)/g, (_, c: string) => c.toUpperCase()),
        summary: route.summary,
        tags: [route.name.split("/")[0]],
        ...(route.deprecated ? { deprecated: true } : {}),
        security: [{ bearer: [] }],
        requestBody: {
          required: true,
          content: { "application/json": { schema: schema(route.request, "input"), example: route.example } },
        },
        responses: {
          "200": {
            description: "The model's answer, validated against the result schema, and how it was obtained.",
            ...(route.deprecated
              ? { headers: { Deprecation: { schema: { type: "string" } }, Sunset: { schema: { type: "string" } }, Link: { schema: { type: "string" } } } }
              : {}),
            content: { "application/json": { schema: schema(responseSchema(route), "output"), example: responseExample(route) } },
          },
          "401": problem("No valid token."),
          "402": problem("The tenant's monthly AI budget is spent; no model was called."),
          "403": problem("A coach of the tenant, an ingest token or anon: they do not make AI coaching calls."),
          "404": problem("The tenant, goal, action or issue is not visible to the caller."),
          "409": problem("Nothing to work on: no open actions (name action_ids), or the tenant has no owner to log a service-role call for."),
          "422": problem("The body breaks the request schema; errors name each field."),
          "429": problem("Over the caller's coaching-ai rate limit (Retry-After)."),
          "502": problem("The model failed or answered with something other than the schema."),
          "503": problem("The database is unavailable, or no prompt version of the route is labelled production."),
          "504": problem("The model did not answer in time."),
        },
      },
    };
  }
  cached = {
    openapi: "3.1.0",
    info: {
      title: "Coach Ledger coaching-ai",
      version: "1.0.0",
      description: "AI coaching endpoints for organisations (docs/ai-coaching.md). Every route is POST with a JSON body naming ids; the function reads the data as the caller.",
    },
    servers: [{ url: "/functions/v1/coaching-ai" }],
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
      schemas: { Problem: PROBLEM },
    },
    "x-built-on": today(),
  };
  return cached;
}
