/** Test fixture: always throws. */
export function handler(_req: Request): Promise<Response> {
  throw new Error("boom: the fixture function failed on purpose");
}
