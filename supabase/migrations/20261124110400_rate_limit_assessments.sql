-- Purpose: the assessments function's POST takes from a rate limit of its own (issue 10; seed
-- SPR-003 "Rate limiting and idempotency considered for new/changed endpoints"). Only the
-- service role and ingest tokens write assessments, so only they have a policy, sized like
-- their log-interaction quota: a scoring callback per finished session, for every user.
-- Objects: rows of private.rate_limit_policies. Destructive: none.

insert into private.rate_limit_policies (endpoint, role, quota, window_seconds) values
  ('assessments', 'coach_ingest', 120000, 60),
  ('assessments', 'service_role', 120000, 60)
on conflict (endpoint, role) do nothing;
