/**
 * The `[auth]` settings of supabase/config.toml that the local /auth/v1 honours, as the
 * stack passes them (GATEWAY_AUTH, JSON with config.toml's names). Defaults are the CLI's.
 */

/** config.toml `[auth]` (and `[auth.hook.custom_access_token]`), as far as the stand-in uses it. */
export interface AuthSettings {
  site_url: string;
  /** Seconds an access token is valid. */
  jwt_expiry: number;
  enable_signup: boolean;
  enable_anonymous_sign_ins: boolean;
  enable_refresh_token_rotation: boolean;
  /** Seconds after its rotation that a refresh token may still be used once more. */
  refresh_token_reuse_interval: number;
  minimum_password_length: number;
  /** "", letters_digits, lower_upper_letters_digits or lower_upper_letters_digits_symbols. */
  password_requirements: string;
  /** `[auth.hook.custom_access_token]` when enabled: its `pg-functions://<db>/<schema>/<name>` URI. */
  custom_access_token_hook?: string;
}

/** The CLI's defaults. */
export const DEFAULT_AUTH_SETTINGS: AuthSettings = {
  site_url: "http://127.0.0.1:3000",
  jwt_expiry: 3600,
  enable_signup: true,
  enable_anonymous_sign_ins: false,
  enable_refresh_token_rotation: true,
  refresh_token_reuse_interval: 10,
  minimum_password_length: 6,
  password_requirements: "",
};

/** Settings from GATEWAY_AUTH's JSON over the defaults. */
export function parseAuthSettings(json: string | undefined): AuthSettings {
  return { ...DEFAULT_AUTH_SETTINGS, ...(json ? JSON.parse(json) as Partial<AuthSettings> : {}) };
}

/** The hook's function as `"schema"."name"`, from `pg-functions://<database>/<schema>/<name>`. */
export function hookFunction(uri: string): string {
  const m = /^pg-functions:\/\/[^/]+\/([A-Za-z_][A-Za-z0-9_]*)\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(uri);
  if (!m) throw new Error(`custom access token hook: unsupported uri ${uri} (expected pg-functions://<database>/<schema>/<function>)`);
  return `"${m[1]}"."${m[2]}"`;
}
