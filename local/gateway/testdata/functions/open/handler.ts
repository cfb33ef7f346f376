/** Test fixture: like echo, but verify_jwt = false. */
export async function handler(req: Request): Promise<Response> {
  const url = new URL(req.url);
  return Response.json({
    method: req.method,
    path: url.pathname,
    search: url.search,
    authorization: req.headers.get("authorization"),
    body: req.method === "GET" ? null : await req.text(),
  });
}
