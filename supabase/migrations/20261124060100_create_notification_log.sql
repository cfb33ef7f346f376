-- Purpose: every nudge sent (seed: Coach Execution Engine, section 2), which enforces at
-- most one email and one dashboard toast per user per rolling 24 hours: the sender looks
-- for a row of the user and channel within 24 hours before sending. Service role only:
-- users cannot read or write it (RLS on, no policy for them).
-- Objects: type public.notification_channel; table public.notification_log, its index and
-- its policy.
-- Destructive: none.

create type public.notification_channel as enum ('email', 'dashboard_toast');
comment on type public.notification_channel is 'Where a nudge went: email or dashboard_toast.';

create table public.notification_log (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  channel public.notification_channel not null,
  sent_at timestamptz not null default now(),
  notification_type text,
  template_name text,
  application_ids uuid[],
  constraint notification_log_notification_type_format check (notification_type is null or notification_type ~ '^[a-z0-9_]{1,64}$'),
  constraint notification_log_template_name_length check (template_name is null or char_length(template_name) between 1 and 200),
  constraint notification_log_application_ids_bounded check (application_ids is null or cardinality(application_ids) <= 100)
);
alter table public.notification_log enable row level security;
comment on table public.notification_log is
  'Nudges sent: user, channel (email | dashboard_toast), sent_at, notification_type (deadline_72h, deadline_24h, micro_task, check_in, ...), template_name (the content is reconstructable from it), application_ids (the applications a consolidated email lists). At most one per user and channel per rolling 24 hours. Service role only.';

-- The 24-hour window check: select 1 ... where user_id = $1 and channel = $2 and sent_at > $3.
create index notification_log_user_id_channel_sent_at_idx on public.notification_log (user_id, channel, sent_at desc);

grant select, insert, update, delete on public.notification_log to service_role;
-- The service role bypasses RLS anyway; the policy says so where the linter can see it.
-- No policy grants users anything.
create policy "The notification log is readable by the service role"
  on public.notification_log for select to service_role
  using (true);
