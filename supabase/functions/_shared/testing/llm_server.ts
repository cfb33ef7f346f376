/**
 * A local OpenAI-compatible chat completions server for tests: answers from a script of
 * replies (status, JSON content, delays, headers), records every request it receives, and
 * counts the requests whose client went away while the body was still being delayed.
 */

/** One scripted answer. */
export interface ScriptedReply {
  status?: number;
  /** The assistant message content (for 200), e.g. JSON.stringify(summary). */
  content?: string;
  /** Wait before answering at all (status and headers): a slow model or a slow network. */
  delayMs?: number;
  /** Send status and headers at once and the body after this wait, as a model streams its answer. */
  bodyDelayMs?: number;
  headers?: Record<string, string>;
  usage?: { prompt_tokens: number; completion_tokens: number; cached_tokens?: number };
}

/** A running test server. */
export interface LlmTestServer {
  baseURL: string;
  requests: Record<string, unknown>[];
  script: ScriptedReply[];
  /** Requests whose client disconnected before the scripted body delay was over. */
  readonly aborted: number;
  /** Resolves when the server next receives a request. */
  nextRequest(): Promise<void>;
  /** Resolves when the server next sees a client go away during a body delay. */
  nextAbort(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the server on a free loopback port. */
export function startLlmTestServer(): LlmTestServer {
  const requests: Record<string, unknown>[] = [];
  const script: ScriptedReply[] = [];
  let aborted = 0;
  const onRequest: (() => void)[] = [];
  const onAbort: (() => void)[] = [];
  const fire = (list: (() => void)[]) => list.splice(0).forEach((f) => f());

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    requests.push(body);
    const reply = script.shift() ?? { status: 500 };
    fire(onRequest);
    const status = reply.status ?? 200;
    const usage = reply.usage ?? { prompt_tokens: 1200, completion_tokens: 300 };
    const payload = status !== 200
      ? { error: { message: `scripted ${status}`, type: "test" } }
      : {
        id: "chatcmpl-test", object: "chat.completion", created: Math.floor(Date.now() / 1000), model: body.model,
        choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: reply.content ?? "" } }],
        usage: {
          prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens,
          total_tokens: usage.prompt_tokens + usage.completion_tokens,
          prompt_tokens_details: { cached_tokens: usage.cached_tokens ?? 0 },
        },
      };
    const bytes = new TextEncoder().encode(JSON.stringify(payload));
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    // With bodyDelayMs, the status and headers go out at once and the body after the wait.
    // The server notices a client that goes away while it writes a body (the stream is
    // cancelled), not while a handler merely waits before answering, so only body delays
    // can count aborts.
    let timer: ReturnType<typeof setTimeout> | undefined;
    let sent = false;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        timer = setTimeout(() => {
          sent = true;
          try {
            controller.enqueue(bytes);
            controller.close();
          } catch {
            // The client went away and the server already closed the stream.
          }
        }, reply.bodyDelayMs ?? 0);
      },
      cancel() {
        clearTimeout(timer);
        if (sent) return;
        aborted++;
        fire(onAbort);
      },
    });
    return new Response(stream, { status, headers: { "content-type": "application/json", ...reply.headers } });
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    baseURL: `http://127.0.0.1:${addr.port}/v1`, requests, script,
    get aborted() {
      return aborted;
    },
    nextRequest: () => new Promise<void>((r) => onRequest.push(r)),
    nextAbort: () => new Promise<void>((r) => onAbort.push(r)),
    close: () => server.shutdown(),
  };
}

/** Points the functions' LLM provider (_shared/llm.ts) at the test server, with a deadline for the whole call. */
export function useLlm(server: LlmTestServer, timeoutMs = 30_000): void {
  Deno.env.set("OPENAI_API_KEY", "test-key");
  Deno.env.set("OPENAI_BASE_URL", server.baseURL);
  Deno.env.set("OPENAI_MODEL", "gpt-4o-mini");
  Deno.env.set("LLM_TIMEOUT_MS", String(timeoutMs));
}

/** Back to the offline provider (no key). */
export function useOffline(): void {
  for (const k of ["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "LLM_TIMEOUT_MS"]) Deno.env.delete(k);
}
