/** Environment of the edge functions: read in one place, failing loudly when missing. */

/** Returns the variable's value, or throws "Missing environment variable NAME". */
export function requireEnv(name: string): string {
  const value = Deno.env.get(name);
  if (value === undefined || value === "") {
    throw new Error(`Missing environment variable ${name}`);
  }
  return value;
}

/** Returns the variable's value, or undefined when it is not set (for optional settings). */
export function optionalEnv(name: string): string | undefined {
  const value = Deno.env.get(name);
  return value === undefined || value === "" ? undefined : value;
}
