/**
 * Test fixture: waits for the client to go away (at most 10 s) and records whether the
 * request's signal told it so, in `seen` and as a log line.
 */
export const seen = { aborted: 0 };

export async function handler(req: Request): Promise<Response> {
  const aborted = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    req.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (aborted) {
    seen.aborted++;
    console.log(JSON.stringify({ fixture: "wait", aborted: true, trace_id: req.headers.get("x-request-id") }));
  }
  return Response.json({ aborted });
}
