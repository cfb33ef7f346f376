/** Test fixture: a function whose module throws while loading. */
throw new Error("broken: the fixture module fails to load on purpose");

export function handler(_req: Request): Response {
  return new Response("unreachable");
}
