/** Path helpers from node:path and node:url (Deno's built-in Node compatibility). */
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export { join };

/** A file URL for an absolute path. */
export function toFileUrl(path: string): URL {
  return pathToFileURL(path);
}
