/**
 * observeOpenAI: wraps an `openai` client so that every chat completion it makes is logged to
 * the ledger as one `ai_coach` interaction, with model, latency, prompt/completion/cached
 * tokens and status, streaming included, without changing what the caller gets back.
 *
 * How it wraps: a Proxy over the client, its `chat` and `chat.completions`; only
 * `chat.completions.create` is replaced. The caller's client object is not modified (calls
 * made through it directly are not logged), and the proxy is cheap, so wrap once per user or
 * per request with that request's ids. The helpers `chat.completions.parse()`, `stream()` and
 * `runTools()` make their model calls through `create` and are logged too (one interaction
 * per model call).
 *
 * What create returns: a Promise that, like openai's APIPromise, reads the answer when first
 * awaited and has `withResponse()` and `asResponse()` (it is not an `instanceof APIPromise`).
 * It resolves to the library's own completion, or for `stream: true` to the library's own
 * Stream object whose source iterator is wrapped, so `for await`, `tee()`,
 * `toReadableStream()` and `controller` all keep working and every way of reading is
 * observed. `asResponse()` hands over the raw Response unread; such a call is logged with
 * its latency and status but no content or tokens (the body is the caller's to read).
 *
 * When it logs: a plain call when its answer arrives, before create's promise resolves; a
 * failed call (status "error", `error_code` from the error) before the original error is
 * rethrown unchanged; a stream once, when it ends, fails, or is abandoned (`break`, `return()`,
 * `controller.abort()`). A stream that is never iterated is never logged.
 *
 * Token usage of streams: OpenAI sends usage only when asked with
 * `stream_options: {include_usage: true}`, in an extra last chunk with empty `choices`. When the
 * caller did not set `include_usage` themselves, this wrapper asks for it and hides that extra
 * chunk (and the `usage: null` it adds to the others), so the caller sees the stream they would
 * have seen without it. `includeUsage: false` turns this off for servers that refuse the option.
 *
 * The tracked skill id is hashed with the ledger's trackedSkillHashKey when the client is
 * wrapped; only the hash is ever logged.
 */
import type { OpenAI } from "openai";
import type { CoachLedger } from "./client.ts";
import type { Channel, InteractionInput, JsonObject } from "./types.ts";

/** Options of observeOpenAI: who and what the logged interactions are about. */
export interface ObserveOpenAIOptions {
  /** The ledger the interactions go to. */
  ledger: CoachLedger;
  /** The user the conversation is with (`user_id`; required by service and ingest keys). */
  userId: string;
  sessionId?: string;
  conversationId?: string;
  /** `coach_persona` (1 to 100 characters). */
  persona?: string;
  /** The raw tracked skill id; hashed here with the ledger's trackedSkillHashKey, never sent. */
  trackedSkillId?: string;
  channel?: Channel;
  /** Merged into every interaction's metadata (the wrapper's own keys win). */
  metadata?: JsonObject;
  /** Ask streams for token usage when the caller did not (default true). */
  includeUsage?: boolean;
}

/** A client with chat.completions.create: the `openai` package's, or one shaped like it. */
export interface ChatCompletionsClient {
  chat: { completions: { create: (...args: never[]) => unknown } };
}

type ChatCompletion = OpenAI.ChatCompletion;
type ChatCompletionChunk = OpenAI.ChatCompletionChunk;
type CompletionUsage = OpenAI.CompletionUsage;
type CreateParams = OpenAI.ChatCompletionCreateParams;
type AnyFunction = (...args: unknown[]) => unknown;

/** Longest text kept (the server's bound on a content string); longer text is cut and marked. */
const MAX_TEXT = 32_768;

/**
 * Returns a view of client whose chat.completions.create logs every call to options.ledger.
 * Throws TypeError for missing options, and when trackedSkillId is given but the ledger has
 * no trackedSkillHashKey (a raw id is never sent instead).
 */
export function observeOpenAI<C extends ChatCompletionsClient>(client: C, options: ObserveOpenAIOptions): C {
  if (client === null || typeof client !== "object" || typeof client.chat?.completions?.create !== "function") {
    throw new TypeError("observeOpenAI needs an OpenAI client (with chat.completions.create)");
  }
  if (!options || typeof options.ledger?.log !== "function") throw new TypeError("observeOpenAI needs { ledger }");
  if (typeof options.userId !== "string" || options.userId.length === 0) throw new TypeError("observeOpenAI needs { userId }");
  if (options.metadata !== undefined) JSON.stringify(options.metadata); // TypeError now for a cycle or a BigInt, not at log time.
  // Hash once, now: a missing key or a malformed id throws here, at wrap time.
  const hash = options.trackedSkillId === undefined ? undefined : options.ledger.hashTrackedSkillId(options.trackedSkillId);
  const observer = new Observer(options, hash);

  const completionsProxies = new WeakMap<object, object>();
  const chatProxies = new WeakMap<object, object>();
  const completionsOf = (completions: object): object => {
    let proxy = completionsProxies.get(completions);
    if (!proxy) {
      const original = (completions as { create: AnyFunction }).create;
      const create = function (body: CreateParams, requestOptions?: unknown): unknown {
        return observer.create(original.bind(completions), body, requestOptions);
      };
      proxy = new Proxy(completions, {
        // Resources keep no private fields, so their other methods may run on the proxy. The
        // helpers parse(), stream() and runTools() call `this._client.chat.completions.create`:
        // handing them the wrapped client logs each model call they make.
        get: (target, prop, receiver) => {
          if (prop === "create") return create;
          const value = Reflect.get(target, prop, receiver);
          return prop === "_client" && value === client ? wrapped : value;
        },
      });
      completionsProxies.set(completions, proxy);
    }
    return proxy;
  };
  const chatOf = (chat: object): object => {
    let proxy = chatProxies.get(chat);
    if (!proxy) {
      proxy = new Proxy(chat, {
        get: (target, prop, receiver) => {
          const value = Reflect.get(target, prop, receiver);
          return prop === "completions" && value !== null && typeof value === "object" ? completionsOf(value) : value;
        },
      });
      chatProxies.set(chat, proxy);
    }
    return proxy;
  };
  // The client class has #private fields: its methods must run on the client itself.
  const bound = new WeakMap<AnyFunction, AnyFunction>();
  const wrapped: C = new Proxy(client, {
    get: (target, prop) => {
      const value: unknown = Reflect.get(target, prop, target);
      if (prop === "chat" && value !== null && typeof value === "object") return chatOf(value);
      if (typeof value !== "function" || prop === "constructor") return value;
      const method = value as AnyFunction;
      let fn = bound.get(method);
      if (!fn) {
        fn = method.bind(target);
        bound.set(method, fn);
      }
      return fn;
    },
  });
  return wrapped;
}

/** Turns calls, answers, chunks and errors into interactions. */
class Observer {
  private readonly options: ObserveOpenAIOptions;
  /** Settles when the tracked skill id's hash is known; every log waits for it once. */
  private readonly ready: Promise<void>;
  private hash: string | undefined;

  constructor(options: ObserveOpenAIOptions, hash: Promise<string> | undefined) {
    this.options = options;
    // If Web Crypto failed, interactions are logged without the hash: never with the raw id.
    this.ready = hash ? hash.then((value) => void (this.hash = value), () => undefined) : Promise.resolve();
  }

  /** The wrapped create: the original call, observed. */
  create(original: AnyFunction, body: CreateParams, requestOptions: unknown): unknown {
    const started = now();
    const streaming = body?.stream === true;
    let sent = body;
    let hideUsage = false;
    if (streaming && this.options.includeUsage !== false && body.stream_options?.include_usage == null) {
      sent = { ...body, stream_options: { ...body.stream_options, include_usage: true } };
      hideUsage = true;
    }
    let api: ApiPromiseLike;
    try {
      api = original(sent, requestOptions) as ApiPromiseLike;
    } catch (error) {
      void this.ready.then(() => this.failed(body, now() - started, error));
      throw error;
    }
    // When the answer (or the error) arrived, however late the caller reads it: asResponse()
    // waits for the response's headers without reading its body.
    let answeredAt: number | undefined;
    if (typeof api?.asResponse === "function") {
      const answered = () => void (answeredAt ??= now());
      Promise.resolve(api.asResponse()).then(answered, answered);
    }
    const latency = () => (answeredAt ?? now()) - started;
    // One interaction per call, however the caller reads the answer.
    let logged = false;
    const once = () => !logged && (logged = true);
    // Parsed on first use, as openai's APIPromise does, so asResponse() gets an unread body.
    let observed: Promise<unknown> | undefined;
    // Each handler waits for the hash first, so that the interaction is queued before the
    // caller gets the answer (or, for a stream, as soon as it ends).
    const run = () =>
      observed ??= Promise.resolve(api).then(
        async (result) => {
          await this.ready;
          if (streaming) return once() ? this.stream(result, body, started, hideUsage) : result;
          if (once()) this.completed(result as ChatCompletion, body, latency());
          return result;
        },
        async (error) => {
          await this.ready;
          if (once()) this.failed(body, latency(), error);
          throw error;
        },
      );
    // The raw Response is the caller's to read: log the call without content or tokens.
    const raw = () =>
      Promise.resolve((api.asResponse as () => Promise<Response>)()).then(
        async (response) => {
          await this.ready;
          if (once()) {
            this.emit({ content: { text: "" }, model: body?.model, latency: latency(), metadata: { raw_response: true, stream: streaming || undefined } });
          }
          return response;
        },
        async (error) => {
          await this.ready;
          if (once()) this.failed(body, latency(), error);
          throw error;
        },
      );
    return new ObservedPromise(run, api, raw);
  }

  /** A completed non-streaming call, answered after latency ms. */
  private completed(completion: ChatCompletion, body: CreateParams, latency: number): void {
    // Observing never changes what the caller gets: an answer of an unexpected shape (from an
    // OpenAI-compatible server) is logged without what could not be read.
    let tools: string[] = [];
    let text = "";
    try {
      const message = completion?.choices?.[0]?.message;
      tools = Array.isArray(message?.tool_calls) ? message.tool_calls.map(toolName).filter((n): n is string => n !== undefined) : [];
      text = typeof message?.content === "string" ? message.content : "";
    } catch {
      // logged with what was read
    }
    this.emit({
      content: content(text, tools),
      model: (typeof completion?.model === "string" && completion.model) || body.model,
      usage: completion?.usage ?? undefined,
      latency,
      metadata: { finish_reason: completion?.choices?.[0]?.finish_reason ?? undefined, completion_id: completion?.id },
    });
  }

  /** A call that failed after latency ms (before any answer, or a stream before it started). */
  private failed(body: CreateParams, latency: number, error: unknown): void {
    this.emit({
      content: { text: "" },
      model: body?.model,
      latency,
      error,
      metadata: body?.stream === true ? { stream: true } : {},
    });
  }

  /** Wraps a stream's source iterator, so that every way of reading it is observed; returns the same stream. */
  private stream(result: unknown, body: CreateParams, started: number, hideUsage: boolean): unknown {
    if (result === null || typeof result !== "object") return result;
    const stream = result as Record<PropertyKey, unknown> & { controller?: AbortController };
    const acc = new StreamAccumulator();
    let logged = false;
    const finish = (error?: unknown) => {
      if (logged) return;
      logged = true;
      const abandoned = error === undefined && (acc.ended !== true || stream.controller?.signal?.aborted === true) && !acc.finishReason;
      this.emit({
        content: content(acc.text, acc.toolNames()),
        model: acc.model || body.model,
        usage: acc.usage,
        latency: now() - started,
        error,
        metadata: {
          stream: true,
          ttft_ms: acc.firstTokenAt === undefined ? undefined : Math.round(acc.firstTokenAt - started),
          finish_reason: acc.finishReason,
          completion_id: acc.id,
          ...(abandoned ? { abandoned: true } : {}),
        },
      });
    };
    const tap = (inner: AsyncIterator<unknown>): AsyncIterator<unknown> => ({
      next: async (...args: [] | [unknown]) => {
        for (;;) {
          let step: IteratorResult<unknown>;
          try {
            step = await inner.next(...args);
          } catch (error) {
            finish(error);
            throw error;
          }
          if (step.done) {
            acc.ended = true;
            finish();
            return step;
          }
          const chunk = step.value as ChatCompletionChunk;
          try {
            acc.add(chunk, now());
          } catch {
            // A chunk of an unexpected shape is passed on as it came; only its content is not logged.
          }
          if (hideUsage && chunk && typeof chunk === "object") {
            if (Array.isArray(chunk.choices) && chunk.choices.length === 0 && chunk.usage) continue;
            if (chunk.usage === null) delete (chunk as { usage?: unknown }).usage;
          }
          return step;
        }
      },
      return: async (value?: unknown) => {
        finish();
        return inner.return ? await inner.return(value) : { done: true, value };
      },
      throw: async (error?: unknown) => {
        finish(error);
        if (inner.throw) return await inner.throw(error);
        throw error;
      },
    });
    // openai's Stream reads its source through `iterator` (async iteration, tee() and
    // toReadableStream() alike): wrap that when present, else the async iterator itself.
    if (typeof stream.iterator === "function") {
      const source = (stream.iterator as () => AsyncIterator<unknown>).bind(stream);
      stream.iterator = () => tap(source());
    } else if (typeof stream[Symbol.asyncIterator] === "function") {
      const source = (stream[Symbol.asyncIterator] as () => AsyncIterator<unknown>).bind(stream);
      stream[Symbol.asyncIterator] = () => tap(source());
    }
    return stream;
  }

  /** Builds the interaction and queues it (after `ready`). Never throws: logging must not break the call. */
  private emit(call: {
    content: InteractionInput["content"];
    model?: string;
    usage?: CompletionUsage;
    latency: number;
    error?: unknown;
    metadata: Record<string, unknown>;
  }): void {
    try {
      const o = this.options;
      const prompt = count(call.usage?.prompt_tokens);
      const cached = count(call.usage?.prompt_tokens_details?.cached_tokens);
      const metadata: JsonObject = { ...o.metadata };
      for (const [k, v] of Object.entries(call.metadata)) if (v !== undefined) metadata[k] = v as JsonObject[string];
      o.ledger.log({
        sender: "ai_coach",
        user_id: o.userId,
        session_id: o.sessionId,
        conversation_id: o.conversationId,
        coach_persona: o.persona,
        channel: o.channel,
        content: call.content,
        model: typeof call.model === "string" && call.model.length > 0 ? call.model.slice(0, 200) : undefined,
        latency_ms: Math.max(0, Math.round(call.latency)),
        prompt_tokens: prompt,
        completion_tokens: count(call.usage?.completion_tokens),
        cached_tokens: prompt !== undefined && cached !== undefined && cached <= prompt ? cached : undefined,
        status: call.error === undefined ? "ok" : "error",
        error_code: call.error === undefined ? undefined : errorCode(call.error),
        tracked_skill_id_hash: this.hash,
        metadata,
      });
    } catch {
      // ledger.log() throws only for a malformed item, which this code does not build.
    }
  }
}

/** Collects what a stream said, chunk by chunk (first choice only, as for plain calls). */
class StreamAccumulator {
  text = "";
  model: string | undefined;
  id: string | undefined;
  usage: CompletionUsage | undefined;
  finishReason: string | undefined;
  firstTokenAt: number | undefined;
  ended = false;
  private readonly tools = new Map<number, string>();

  add(chunk: ChatCompletionChunk, at: number): void {
    if (!chunk || typeof chunk !== "object") return;
    if (typeof chunk.model === "string" && chunk.model) this.model = chunk.model;
    if (typeof chunk.id === "string" && chunk.id) this.id = chunk.id;
    if (chunk.usage) this.usage = chunk.usage;
    for (const choice of Array.isArray(chunk.choices) ? chunk.choices : []) {
      if (choice.index !== 0) continue;
      const delta = choice.delta ?? {};
      if (typeof delta.content === "string" && delta.content.length > 0) {
        this.firstTokenAt ??= at;
        if (this.text.length <= MAX_TEXT) this.text += delta.content;
      }
      for (const call of delta.tool_calls ?? []) {
        this.firstTokenAt ??= at;
        const name = call.function?.name;
        if (typeof name === "string" && name && !this.tools.has(call.index)) this.tools.set(call.index, name);
      }
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
    }
  }

  toolNames(): string[] {
    return [...this.tools.entries()].sort((a, b) => a[0] - b[0]).map(([, name]) => name);
  }
}

/** What this module uses of openai's APIPromise. */
interface ApiPromiseLike extends PromiseLike<unknown> {
  asResponse?: () => Promise<Response>;
  withResponse?: () => Promise<Record<string, unknown>>;
  _thenUnwrap?: unknown;
}

/**
 * What the wrapped create returns for a plain call: a Promise, lazy like openai's APIPromise
 * (the answer is read when first awaited), with its public helpers `asResponse()` and
 * `withResponse()`, and `_thenUnwrap()`, which chat.completions.parse() uses (applied here to
 * the observed answer: the original's would read the response body a second time).
 */
class ObservedPromise<T> extends Promise<T> {
  // Derived promises (then, catch, finally) are plain Promises.
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }

  private readonly run: () => Promise<T>;
  private readonly api: ApiPromiseLike;
  private readonly raw: () => Promise<Response>;

  constructor(run: () => Promise<T>, api: ApiPromiseLike, raw: () => Promise<Response>) {
    // Settled at once with nothing, and never read: then, catch and finally go to run().
    super((resolve) => resolve(undefined as T));
    this.run = run;
    this.api = api;
    this.raw = raw;
  }

  override then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.run().then(onfulfilled, onrejected);
  }

  override catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.run().catch(onrejected);
  }

  override finally(onfinally?: (() => void) | null): Promise<T> {
    return this.run().finally(onfinally);
  }

  /** The raw Response, body unread (openai's asResponse()). */
  asResponse(): Promise<Response> {
    if (typeof this.api.asResponse !== "function") return Promise.reject(new TypeError("asResponse() is not available on this client"));
    return this.raw();
  }

  /** The answer with the raw Response and the request id (openai's withResponse()). */
  async withResponse(): Promise<Record<string, unknown>> {
    if (typeof this.api.withResponse !== "function") throw new TypeError("withResponse() is not available on this client");
    const [data, response] = await Promise.all([this.run(), this.api.withResponse()]);
    return { ...response, data };
  }

  /** The answer, transformed (openai's internal helper, used by chat.completions.parse()). */
  _thenUnwrap<U>(transform: (data: T, props: unknown) => U): ObservedPromise<U> {
    return new ObservedPromise(() => this.run().then((data) => transform(data, undefined)), this.api, this.raw);
  }
}

/** `{text}` cut to the server's bound, with the names of the tools the model called. */
function content(text: string, tools: string[]): InteractionInput["content"] {
  const out: InteractionInput["content"] = { text: typeof text === "string" ? text : "" };
  if (out.text.length > MAX_TEXT) {
    let cut = MAX_TEXT;
    // Never end on half a surrogate pair: Postgres cannot store an unpaired surrogate.
    const last = out.text.charCodeAt(cut - 1);
    if (last >= 0xd800 && last <= 0xdbff) cut--;
    out.text = out.text.slice(0, cut);
    out.truncated = true;
  }
  if (tools.length > 0) out.tool_calls = tools;
  return out;
}

/** A tool call's name, for function and custom tools alike. */
function toolName(call: unknown): string | undefined {
  const c = call as { function?: { name?: unknown }; custom?: { name?: unknown } };
  const name = c?.function?.name ?? c?.custom?.name;
  return typeof name === "string" && name.length > 0 ? name : undefined;
}

/**
 * An error as `error_code` (`^[A-Za-z0-9_.:-]{1,64}$`): `openai.<status>[.<code>]` for an API
 * error (`openai.429.rate_limit_exceeded`), `openai.<code>` (or `openai.stream_error`) for an
 * error event in a stream,
 * `openai.timeout` / `openai.connection` / `openai.aborted` for the client's own errors,
 * else `error.<name>`.
 */
export function errorCode(error: unknown): string {
  const e = (error ?? {}) as { status?: unknown; code?: unknown; name?: unknown; constructor?: { name?: unknown } };
  const code = typeof e.code === "string" && e.code.length > 0 ? e.code : undefined;
  const type = typeof e.constructor?.name === "string" ? e.constructor.name : "";
  let raw: string;
  if (typeof e.status === "number") raw = `openai.${e.status}${code ? `.${code}` : ""}`;
  else if (type === "APIConnectionTimeoutError") raw = "openai.timeout";
  else if (type === "APIUserAbortError" || e.name === "AbortError") raw = "openai.aborted";
  else if (type === "APIConnectionError") raw = "openai.connection";
  else if (type === "APIError") raw = `openai.${code ?? "stream_error"}`;
  else raw = `error.${typeof e.name === "string" && e.name !== "Error" ? e.name : type || "Error"}`;
  return raw.replace(/[^A-Za-z0-9_.:-]/g, "_").slice(0, 64);
}

/** A token count the server takes (a non-negative integer), or undefined. */
function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : undefined;
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}
