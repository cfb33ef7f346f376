/**
 * One interface for LLM calls that return structured JSON. With OPENAI_API_KEY set, calls
 * any OpenAI-compatible chat completions API through the `openai` package
 * (OPENAI_BASE_URL, OPENAI_MODEL, default gpt-4o-mini) with a JSON-schema response format,
 * validating the answer with zod; one retry on 429/5xx (with the package's backoff).
 * LLM_TIMEOUT_MS (default 30 s) is the deadline of the whole call, retries and backoff
 * included (the package's own `timeout` is per attempt, so on its own a 20 s timeout could
 * wait 40 s). The caller's AbortSignal (the HTTP request's) cancels the call: an abandoned
 * request stops the provider's work. Without a key, an offline provider returns the
 * caller's deterministic fallback and says so: model "offline". A request may name its own
 * model and sampling parameters (a prompt version's); llmHttpError maps a failure to the
 * HTTP answer every caller gives.
 */
import OpenAI from "openai";
import { z } from "zod";
import { optionalEnv } from "./env.ts";
import { HttpError } from "./http.ts";

/** Token usage of one call. */
export interface LlmUsage {
  promptTokens: number | null;
  completionTokens: number | null;
  cachedTokens: number | null;
}

/** A validated structured answer and how it was obtained. */
export interface LlmResult<T> {
  data: T;
  model: string;
  latencyMs: number;
  usage: LlmUsage;
}

/**
 * Why a call failed: the provider timed out (504), answered badly (502) or failed (502), or
 * the caller went away (aborted).
 */
export class LlmError extends Error {
  readonly kind: "timeout" | "malformed" | "upstream" | "aborted";
  readonly model: string;
  readonly latencyMs: number;
  /** The tokens of an answer that came but could not be used (malformed): paid for all the same. */
  readonly usage?: LlmUsage;
  constructor(kind: LlmError["kind"], message: string, model: string, latencyMs: number, usage?: LlmUsage) {
    super(message);
    this.kind = kind;
    this.model = model;
    this.latencyMs = latencyMs;
    this.usage = usage;
  }
}

/** Sampling parameters a prompt version may set (prompt_templates.parameters). */
export interface SamplingParameters {
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
}

/** A request for JSON matching schema; fallback is what the offline provider returns. */
export interface JsonRequest<T> {
  system: string;
  user: string;
  schemaName: string;
  schema: z.ZodType<T>;
  fallback: () => T;
  /** The model to ask instead of the provider's default (a prompt version's model). */
  model?: string | null;
  parameters?: SamplingParameters;
}

/** Per-call options: the caller's AbortSignal (e.g. the HTTP request's `req.signal`). */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Something that answers JSON requests. */
export interface LlmProvider {
  /** Who answers, for logs: "openai" (any OpenAI-compatible API) or "offline". */
  readonly name: string;
  readonly model: string;
  completeJson<T>(req: JsonRequest<T>, opts?: CallOptions): Promise<LlmResult<T>>;
}

/** The provider the environment configures: OpenAI-compatible with a key, else offline. */
export function createProvider(): LlmProvider {
  const apiKey = optionalEnv("OPENAI_API_KEY");
  if (!apiKey) return offlineProvider;
  const timeoutMs = Number(optionalEnv("LLM_TIMEOUT_MS") ?? 30_000);
  return new OpenAiProvider(
    new OpenAI({ apiKey, baseURL: optionalEnv("OPENAI_BASE_URL"), timeout: timeoutMs, maxRetries: 1 }),
    optionalEnv("OPENAI_MODEL") ?? "gpt-4o-mini",
    timeoutMs,
  );
}

/** Deterministic, no network: returns the request's fallback. */
export const offlineProvider: LlmProvider = {
  name: "offline",
  model: "offline",
  completeJson<T>(req: JsonRequest<T>): Promise<LlmResult<T>> {
    const t0 = performance.now();
    const usage = { promptTokens: null, completionTokens: null, cachedTokens: null };
    const checked = req.schema.safeParse(req.fallback());
    // A fallback that breaks its own schema is our bug, but the answer is still the
    // provider's: a 502 like any malformed answer, never a 500.
    if (!checked.success) {
      return Promise.reject(new LlmError("malformed", `The offline answer does not match the schema: ${schemaFields(checked.error)}.`, "offline", 0, usage));
    }
    return Promise.resolve({ data: checked.data, model: "offline", latencyMs: Math.round(performance.now() - t0), usage });
  },
};

/** The paths of a schema's failed checks, for the 502's detail. */
function schemaFields(error: z.ZodError): string {
  return error.issues.map((i) => i.path.join(".") || "(root)").join(", ");
}

/**
 * The HTTP answer to a failed call: a timeout 504, the client gone 499 (nginx's "client
 * closed request": nobody reads it, it names what happened in logs), anything else from the
 * provider 502.
 */
export function llmHttpError(err: LlmError): HttpError {
  return err.kind === "timeout"
    ? new HttpError(504, "Gateway Timeout", err.message)
    : err.kind === "aborted"
    ? new HttpError(499, "Client Closed Request", err.message)
    : new HttpError(502, "Bad Gateway", err.message);
}

class OpenAiProvider implements LlmProvider {
  readonly name = "openai";
  readonly model: string;
  #client: OpenAI;
  #timeoutMs: number;
  constructor(client: OpenAI, model: string, timeoutMs: number) {
    this.#client = client;
    this.model = model;
    this.#timeoutMs = timeoutMs;
  }

  async completeJson<T>(req: JsonRequest<T>, opts: CallOptions = {}): Promise<LlmResult<T>> {
    const t0 = performance.now();
    const elapsed = () => Math.round(performance.now() - t0);
    // One deadline for the whole call: attempts, the backoff between them and reading the
    // answer. The package stops (sleep included) as soon as the signal aborts.
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    const asked = req.model ?? this.model;
    // Only the sampling parameters a prompt version may set, whatever else it stores.
    const { temperature, top_p, max_tokens } = req.parameters ?? {};
    const sampling = Object.fromEntries(Object.entries({ temperature, top_p, max_tokens }).filter(([, v]) => typeof v === "number"));
    try {
      completion = await this.#client.chat.completions.create({
        ...sampling,
        model: asked,
        messages: [{ role: "system", content: req.system }, { role: "user", content: req.user }],
        response_format: {
          type: "json_schema",
          json_schema: { name: req.schemaName, strict: true, schema: z.toJSONSchema(req.schema) as Record<string, unknown> },
        },
      }, { signal });
    } catch (err) {
      if (opts.signal?.aborted) {
        throw new LlmError("aborted", "The request was abandoned by the client, so the language model call was cancelled.", asked, elapsed());
      }
      if (deadline.aborted || err instanceof OpenAI.APIConnectionTimeoutError) {
        throw new LlmError("timeout", "The language model did not answer in time.", asked, elapsed());
      }
      const status = err instanceof OpenAI.APIError ? ` (${err.status ?? "no status"})` : "";
      throw new LlmError("upstream", `The language model request failed${status}.`, asked, elapsed());
    }
    const model = completion.model || asked;
    const usage: LlmUsage = {
      promptTokens: completion.usage?.prompt_tokens ?? null,
      completionTokens: completion.usage?.completion_tokens ?? null,
      cachedTokens: completion.usage?.prompt_tokens_details?.cached_tokens ?? null,
    };
    const content = completion.choices[0]?.message?.content ?? "";
    let parsed: unknown;
    try {
      parsed = JSON.parse(content);
    } catch {
      throw new LlmError("malformed", "The language model's answer is not JSON.", model, elapsed(), usage);
    }
    const checked = req.schema.safeParse(parsed);
    if (!checked.success) {
      throw new LlmError("malformed", `The language model's answer does not match the schema: ${schemaFields(checked.error)}.`, model, elapsed(), usage);
    }
    return { data: checked.data, model, latencyMs: elapsed(), usage };
  }
}
