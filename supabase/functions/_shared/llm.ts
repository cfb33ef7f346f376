/**
 * One interface for LLM calls that return structured JSON. With OPENAI_API_KEY set, calls
 * any OpenAI-compatible chat completions API through the `openai` package
 * (OPENAI_BASE_URL, OPENAI_MODEL, default gpt-4o-mini) with a JSON-schema response format,
 * validating the answer with zod; one retry on 429/5xx (with the package's backoff);
 * LLM_TIMEOUT_MS per attempt (default 30 s). Without a key, an offline provider returns the
 * caller's deterministic fallback and says so: model "offline".
 */
import OpenAI from "openai";
import { z } from "zod";
import { optionalEnv } from "./env.ts";

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

/** Why a call failed: the provider timed out (504), answered badly (502) or failed (502). */
export class LlmError extends Error {
  readonly kind: "timeout" | "malformed" | "upstream";
  readonly model: string;
  readonly latencyMs: number;
  constructor(kind: LlmError["kind"], message: string, model: string, latencyMs: number) {
    super(message);
    this.kind = kind;
    this.model = model;
    this.latencyMs = latencyMs;
  }
}

/** A request for JSON matching schema; fallback is what the offline provider returns. */
export interface JsonRequest<T> {
  system: string;
  user: string;
  schemaName: string;
  schema: z.ZodType<T>;
  fallback: () => T;
}

/** Something that answers JSON requests. */
export interface LlmProvider {
  readonly model: string;
  completeJson<T>(req: JsonRequest<T>): Promise<LlmResult<T>>;
}

/** The provider the environment configures: OpenAI-compatible with a key, else offline. */
export function createProvider(): LlmProvider {
  const apiKey = optionalEnv("OPENAI_API_KEY");
  if (!apiKey) return offlineProvider;
  return new OpenAiProvider(
    new OpenAI({
      apiKey,
      baseURL: optionalEnv("OPENAI_BASE_URL"),
      timeout: Number(optionalEnv("LLM_TIMEOUT_MS") ?? 30_000),
      maxRetries: 1,
    }),
    optionalEnv("OPENAI_MODEL") ?? "gpt-4o-mini",
  );
}

/** Deterministic, no network: returns the request's fallback. */
export const offlineProvider: LlmProvider = {
  model: "offline",
  completeJson<T>(req: JsonRequest<T>): Promise<LlmResult<T>> {
    const t0 = performance.now();
    const data = req.schema.parse(req.fallback());
    return Promise.resolve({
      data, model: "offline", latencyMs: Math.round(performance.now() - t0),
      usage: { promptTokens: null, completionTokens: null, cachedTokens: null },
    });
  },
};

class OpenAiProvider implements LlmProvider {
  readonly model: string;
  #client: OpenAI;
  constructor(client: OpenAI, model: string) {
    this.#client = client;
    this.model = model;
  }

  async completeJson<T>(req: JsonRequest<T>): Promise<LlmResult<T>> {
    const t0 = performance.now();
    const elapsed = () => Math.round(performance.now() - t0);
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    try {
      completion = await this.#client.chat.completions.create({
        model: this.model,
        messages: [{ role: "system", content: req.system }, { role: "user", content: req.user }],
        response_format: {
          type: "json_schema",
          json_schema: { name: req.schemaName, strict: true, schema: z.toJSONSchema(req.schema) as Record<string, unknown> },
        },
      });
    } catch (err) {
      if (err instanceof OpenAI.APIConnectionTimeoutError) {
        throw new LlmError("timeout", "The language model did not answer in time.", this.model, elapsed());
      }
      const status = err instanceof OpenAI.APIError ? ` (${err.status ?? "no status"})` : "";
      throw new LlmError("upstream", `The language model request failed${status}.`, this.model, elapsed());
    }
    const model = completion.model || this.model;
    const content = completion.choices[0]?.message?.content ?? "";
    let parsed: unknown;
    try {
      parsed = JSON.parse(content);
    } catch {
      throw new LlmError("malformed", "The language model's answer is not JSON.", model, elapsed());
    }
    const checked = req.schema.safeParse(parsed);
    if (!checked.success) {
      const fields = checked.error.issues.map((i) => i.path.join(".") || "(root)").join(", ");
      throw new LlmError("malformed", `The language model's answer does not match the schema: ${fields}.`, model, elapsed());
    }
    return {
      data: checked.data,
      model,
      latencyMs: elapsed(),
      usage: {
        promptTokens: completion.usage?.prompt_tokens ?? null,
        completionTokens: completion.usage?.completion_tokens ?? null,
        cachedTokens: completion.usage?.prompt_tokens_details?.cached_tokens ?? null,
      },
    };
  }
}
