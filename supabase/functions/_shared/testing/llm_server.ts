/**
 * A local OpenAI-compatible chat completions server for tests: answers from a script of
 * replies (status, JSON content, delay, headers) and records every request it receives.
 */

/** One scripted answer. */
export interface ScriptedReply {
  status?: number;
  /** The assistant message content (for 200), e.g. JSON.stringify(summary). */
  content?: string;
  delayMs?: number;
  headers?: Record<string, string>;
  usage?: { prompt_tokens: number; completion_tokens: number; cached_tokens?: number };
}

/** A running test server. */
export interface LlmTestServer {
  baseURL: string;
  requests: Record<string, unknown>[];
  script: ScriptedReply[];
  close(): Promise<void>;
}

/** Starts the server on a free loopback port. */
export function startLlmTestServer(): LlmTestServer {
  const requests: Record<string, unknown>[] = [];
  const script: ScriptedReply[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    requests.push(body);
    const reply = script.shift() ?? { status: 500 };
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    const status = reply.status ?? 200;
    if (status !== 200) {
      return Response.json({ error: { message: `scripted ${status}`, type: "test" } }, { status, headers: reply.headers });
    }
    const usage = reply.usage ?? { prompt_tokens: 1200, completion_tokens: 300 };
    return Response.json({
      id: "chatcmpl-test", object: "chat.completion", created: Math.floor(Date.now() / 1000), model: body.model,
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: reply.content ?? "" } }],
      usage: {
        prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens,
        total_tokens: usage.prompt_tokens + usage.completion_tokens,
        prompt_tokens_details: { cached_tokens: usage.cached_tokens ?? 0 },
      },
    }, { headers: reply.headers });
  });
  const addr = server.addr as Deno.NetAddr;
  return { baseURL: `http://127.0.0.1:${addr.port}/v1`, requests, script, close: () => server.shutdown() };
}
