-- Purpose: per-user and per-token rate limits for the write and paid endpoints
-- (log-interaction, summary; later the AI endpoints), kept in Postgres so that they hold
-- across every function instance. One rule, in SQL: private.take_rate_limit(endpoint,
-- claims, at) finds the caller's policy (per endpoint and role), takes one request from the
-- caller's counter atomically and returns the limit, what remains and when the window
-- resets; the edge functions only call it and turn the answer into HTTP headers.
-- Objects: tables private.rate_limit_policies (with default policies) and
-- private.rate_limit_counters (unlogged); function private.take_rate_limit.
-- Destructive: none. The counters are unlogged: after a crash they start empty, which only
-- gives every caller a fresh window.

-- Policies: a fixed window of window_seconds in which a caller may make quota requests to
-- an endpoint. The caller is the user (role authenticated: one counter per user, whatever
-- token they use) or, for role tokens (service_role, coach_ingest), the token itself. A role
-- with no row for an endpoint is not limited there (anon and coach_analyst never reach the
-- limited endpoints: the functions refuse them first).
create table private.rate_limit_policies (
  endpoint text not null,
  role text not null,
  quota integer not null,
  window_seconds integer not null,
  primary key (endpoint, role),
  constraint rate_limit_policies_endpoint_format check (endpoint ~ '^[a-z][a-z0-9-]{0,62}$'),
  constraint rate_limit_policies_role_known check (role in ('anon', 'authenticated', 'service_role', 'coach_ingest')),
  constraint rate_limit_policies_quota_range check (quota between 1 and 1000000000),
  constraint rate_limit_policies_window_range check (window_seconds between 1 and 86400)
);
-- Only the owner (migrations, an operator as postgres) changes policies; take_rate_limit, a
-- security definer function, reads them. No API role has any privilege, so no RLS is needed.
revoke all on private.rate_limit_policies from public, anon, authenticated, service_role;
comment on table private.rate_limit_policies is
  'Rate limit per endpoint and role: quota requests per fixed window of window_seconds, per user (authenticated) or per token (other roles).';

-- A user's chat client logs a message every few seconds at most; an AI backend's ingest
-- token logs for every user at once (about 500 requests/s is this machine's ceiling), so its
-- quota is a thousand times a user's. Summaries cost money: a few per user per hour.
insert into private.rate_limit_policies (endpoint, role, quota, window_seconds) values
  ('log-interaction', 'authenticated', 120, 60),
  ('log-interaction', 'coach_ingest', 120000, 60),
  ('log-interaction', 'service_role', 120000, 60),
  ('summary', 'authenticated', 20, 3600),
  ('summary', 'service_role', 1000, 3600);

-- One row per endpoint and caller, updated in place: the window it counts and the requests
-- taken in it. Unlogged (no WAL, so a take commits without waiting for a disk flush) and with
-- room on each page for HOT updates (no indexed column changes).
create unlogged table private.rate_limit_counters (
  endpoint text not null,
  subject text not null,
  window_start timestamptz not null,
  used integer not null,
  primary key (endpoint, subject),
  constraint rate_limit_counters_used_nonnegative check (used >= 0)
) with (fillfactor = 70);
revoke all on private.rate_limit_counters from public, anon, authenticated, service_role;
comment on table private.rate_limit_counters is
  'Requests taken per endpoint and caller (user:<uuid> or <role>:<md5 of the token''s claims>) in the current window. Unlogged.';

-- private.take_rate_limit(endpoint, claims, at): takes one request for the caller the claims
-- name, if the policy allows it.
--   endpoint  the policy's endpoint, e.g. 'log-interaction'
--   claims    the caller's verified JWT claims (role; sub for a user)
--   at        the clock (tests pass a fixed time)
-- Returns one row: allowed; policy (the endpoint); quota and window_seconds of the policy;
-- remaining (requests left in the window after this one); reset_seconds (until the window
-- ends). A refused request takes nothing. With no policy for the role: allowed, the rest null.
-- Each caller's windows are offset by a hash of the caller, so that windows do not all end
-- at the same second (draft-ietf-httpapi-ratelimit-headers, "Resource exhaustion").
-- Example:
--   select * from private.take_rate_limit('summary', '{"role": "authenticated", "sub": "a11ce000-0000-4000-8000-000000000001"}');
--    allowed | policy  | quota | window_seconds | remaining | reset_seconds
--   ---------+---------+-------+----------------+-----------+---------------
--    t       | summary |    20 |           3600 |        19 |          2741
create or replace function private.take_rate_limit(endpoint text, claims jsonb, at timestamptz default now())
returns table (allowed boolean, policy text, quota integer, window_seconds integer, remaining integer, reset_seconds integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: callers have no privilege on the counters. The functions call it once
-- per request, in its own statement (not in the request's transaction), so the counter row
-- is locked only for this upsert and never for a whole write.
declare
  caller text := take_rate_limit.claims ->> 'role';
  found_policy private.rate_limit_policies;
  caller_key text;
  window_offset bigint;
  current_window timestamptz;
  taken integer;
  counted_window timestamptz;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can take from a rate limit' using errcode = '42501';
  end if;
  if take_rate_limit.endpoint is null or caller is null or take_rate_limit.at is null then
    raise exception 'endpoint, claims with a role, and at are required' using errcode = '22023';
  end if;

  select p.* into found_policy
  from private.rate_limit_policies p
  where p.endpoint = take_rate_limit.endpoint and p.role = caller;
  if not found then
    return query select true, take_rate_limit.endpoint, null::integer, null::integer, null::integer, null::integer;
    return;
  end if;

  if caller = 'authenticated' then
    if coalesce(take_rate_limit.claims ->> 'sub', '') !~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' then
      raise exception 'A user''s claims need a UUID sub' using errcode = '22023';
    end if;
    caller_key := 'user:' || lower(take_rate_limit.claims ->> 'sub');
  else
    -- A role token has no subject: the token is the caller (jsonb text is canonical).
    caller_key := caller || ':' || md5(take_rate_limit.claims::text);
  end if;

  window_offset := mod(mod(hashtextextended(caller_key, 0), found_policy.window_seconds) + found_policy.window_seconds,
                       found_policy.window_seconds);
  current_window := to_timestamp(
    floor((extract(epoch from take_rate_limit.at) - window_offset) / found_policy.window_seconds)
      * found_policy.window_seconds + window_offset);

  -- A newer window starts the count again; a request stamped in an older window than the one
  -- stored (a late transaction) counts in the stored one, so the window only moves forward.
  insert into private.rate_limit_counters as c (endpoint, subject, window_start, used)
  values (take_rate_limit.endpoint, caller_key, current_window, 1)
  on conflict on constraint rate_limit_counters_pkey do update
    set window_start = greatest(c.window_start, excluded.window_start),
        used = case when excluded.window_start > c.window_start then 1 else c.used + 1 end
    where excluded.window_start > c.window_start or c.used < found_policy.quota
  returning c.used, c.window_start into taken, counted_window;

  allowed := found;
  if not allowed then
    select c.used, c.window_start into taken, counted_window
    from private.rate_limit_counters c
    where c.endpoint = take_rate_limit.endpoint and c.subject = caller_key;
  end if;

  policy := take_rate_limit.endpoint;
  quota := found_policy.quota;
  window_seconds := found_policy.window_seconds;
  remaining := greatest(found_policy.quota - taken, 0);
  reset_seconds := greatest(1, ceil(extract(epoch from
    counted_window + make_interval(secs => found_policy.window_seconds) - take_rate_limit.at))::integer);
  return next;
end;
$$;
comment on function private.take_rate_limit(text, jsonb, timestamptz) is
  'Takes one request from the caller''s rate limit for an endpoint (policy per role; per user or per token); returns allowed, policy, quota, window_seconds, remaining, reset_seconds. Service role only.';
revoke execute on function private.take_rate_limit(text, jsonb, timestamptz) from public, anon, authenticated;
grant execute on function private.take_rate_limit(text, jsonb, timestamptz) to service_role;
