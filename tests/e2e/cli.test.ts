/** The stack CLI (npm run local -- …) against the running stack. */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { stack } from "../helpers.ts";

function cli(...args: string[]): string {
  const { cfg } = stack();
  return execFileSync(process.execPath, ["local/cli.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, LOCAL_STATE_DIR: cfg.stateDir, LOCAL_API_PORT: String(cfg.apiPort), LOCAL_DB_PORT: String(cfg.dbPort) },
  });
}

describe("npm run local", () => {
  it("status -o env prints the variables supabase status -o env prints", () => {
    const lines = Object.fromEntries(cli("status", "-o", "env").trim().split("\n").map((l) => {
      const m = /^([A-Z_]+)="(.*)"$/.exec(l);
      expect(m, l).not.toBeNull();
      return [m![1], m![2]];
    }));
    const { env } = stack();
    for (const key of ["API_URL", "DB_URL", "ANON_KEY", "SERVICE_ROLE_KEY", "JWT_SECRET"]) expect(lines[key]).toBe(env[key]);
    expect(lines.JWT_SECRET).toBe("super-secret-jwt-token-with-at-least-32-characters-long");
  });

  it("token <email> prints a token whose rpc() sees that user", async () => {
    const token = cli("token", "bob@example.com").trim();
    const res = await fetch(`${stack().env.REST_URL}/rpc/get_my_profile`, {
      method: "POST",
      headers: { apikey: stack().env.ANON_KEY, authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect((await res.json()).display_name).toMatch(/^Bob/);
  });

  it("token --role prints a role token with no user", () => {
    const token = cli("token", "--role", "service_role", "--expires-in", "60").trim();
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    expect(claims.role).toBe("service_role");
    expect(claims.sub).toBeUndefined();
    expect(claims.exp - claims.iat).toBe(60);
  });

  it("an unknown command prints usage and exits 2", () => {
    expect(() => cli("frobnicate")).toThrow(/Usage: npm run local/);
  });
});
