-- Purpose: nudges (seed: Coach Execution Engine, section 2 and FR-010): a scheduler that
-- finds what is due and sends at most one email and one dashboard toast per user per
-- rolling 24 hours, also when schedulers or requests race.
--  * Email: deadline reminders, 72 hours and 24 hours before the deadline of an open (draft)
--    application, consolidated into one email per user listing application_ids. It goes to
--    private.email_outbox; the dispatch-notifications function delivers it.
--  * Dashboard toast: a due check-in ("Have you heard back?") or else the 48-hour micro-task
--    of the game plan, broadcast on the private Realtime topic nudges:<user_id>, which only
--    that user may receive.
--  * Each nudge is logged in public.notification_log. private.nudge_marks records what each
--    was about (an application's deadline, a stall, a check-in), so the same thing is not
--    nudged twice.
--  * The throttle: private.nudge_throttle holds one row per user and channel; a run claims
--    it with insert ... on conflict do update ... where last_sent_at <= at - 24 hours, which
--    Postgres evaluates on the latest committed row after waiting for a racing claim. Of
--    two racing runs for a user, exactly one sends. Claims are taken in user_id order, so
--    racing runs cannot deadlock.
-- Objects: tables private.nudge_throttle, private.nudge_marks, private.email_outbox;
-- functions private.can_read_nudge_topic,
-- private.run_nudge_scheduler; policy on realtime.messages; pg_cron job nudge-scheduler.
-- Destructive: none.

create table private.nudge_throttle (
  user_id uuid not null references auth.users (id) on delete cascade,
  channel public.notification_channel not null,
  last_sent_at timestamptz not null,
  primary key (user_id, channel)
);
comment on table private.nudge_throttle is
  'One row per user and channel: when the last nudge went. Claimed atomically by private.run_nudge_scheduler, so at most one nudge per user and channel per rolling 24 hours.';

create table private.nudge_marks (
  application_id uuid not null references public.applications (id) on delete cascade,
  kind text not null,
  marker timestamptz not null,
  notification_id uuid not null,
  primary key (application_id, kind, marker),
  constraint nudge_marks_kind check (kind in ('deadline_72h', 'deadline_24h', 'micro_task', 'check_in'))
);
comment on table private.nudge_marks is
  'What a nudge was about: deadline_72h / deadline_24h (marker: the deadline), micro_task (marker: the last_progress_at of the stall), check_in (marker: due_at). Nothing is nudged twice.';

create table private.email_outbox (
  id uuid primary key default gen_random_uuid(),
  notification_id uuid not null unique references public.notification_log (id) on delete cascade,
  to_email text not null,
  subject text not null,
  text_body text not null,
  status text not null default 'queued',
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  provider text,
  provider_message_id text,
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  constraint email_outbox_status check (status in ('queued', 'sending', 'sent', 'failed')),
  constraint email_outbox_to_email_length check (char_length(to_email) between 3 and 320),
  constraint email_outbox_subject_length check (char_length(subject) between 1 and 200),
  constraint email_outbox_text_body_length check (char_length(text_body) between 1 and 20000),
  constraint email_outbox_last_error_length check (last_error is null or char_length(last_error) <= 1000),
  constraint email_outbox_sent_at check ((status = 'sent') = (sent_at is not null))
);
comment on table private.email_outbox is
  'Emails waiting for dispatch-notifications: queued -> sending (claimed, with a lease until next_attempt_at) -> sent | failed, or back to queued for a retry.';
-- The dispatcher's claim: due messages in order of next_attempt_at.
create index email_outbox_due_idx on private.email_outbox (next_attempt_at) where status in ('queued', 'sending');

-- Whether the caller may receive a nudges topic: only the user it names.
create or replace function private.can_read_nudge_topic(topic text)
returns boolean
language sql
stable
set search_path = ''
as $$
  select coalesce(
    topic ~ '^nudges:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    and substr(topic, char_length('nudges:') + 1)::uuid = (select auth.uid()),
    false)
$$;
comment on function private.can_read_nudge_topic(text) is
  'True when topic is nudges:<id> and the caller is that user.';
revoke execute on function private.can_read_nudge_topic(text) from public, anon;
grant execute on function private.can_read_nudge_topic(text) to authenticated;

create policy "Nudges are receivable by their user"
  on realtime.messages for select to authenticated
  using (extension = 'broadcast' and private.can_read_nudge_topic((select realtime.topic())));

create or replace function private.run_nudge_scheduler(at timestamptz default now())
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
-- Runs as its caller (pg_cron's job owner, postgres). Each statement claims the throttle
-- before it logs: a user another run has just claimed gets nothing from this one. The
-- data-modifying CTEs (marks, outbox) run whether or not the final select reads them.
declare
  emails integer;
  toasts integer;
begin
  with due as (
    select a.user_id, a.id as application_id, o.title, o.deadline,
           case when o.deadline <= run_nudge_scheduler.at + interval '24 hours' then 'deadline_24h' else 'deadline_72h' end as kind
    from public.applications a
    join public.opportunities o on o.id = a.opportunity_id
    where a.status = 'draft'
      and o.deadline > run_nudge_scheduler.at
      and o.deadline <= run_nudge_scheduler.at + interval '72 hours'
  ), unsent as (
    select d.* from due d
    where not exists (select 1 from private.nudge_marks m
                       where m.application_id = d.application_id and m.kind = d.kind and m.marker = d.deadline)
  ), recipients as (
    select u.user_id, au.email,
           (array_agg(u.application_id order by u.deadline, u.application_id))[1:100] as application_ids,
           bool_or(u.kind = 'deadline_24h') as urgent,
           count(*) as n,
           (array_agg(u.title order by u.deadline, u.application_id))[1] as first_title,
           string_agg(format('- %s: due %s UTC', u.title, to_char(u.deadline at time zone 'UTC', 'YYYY-MM-DD HH24:MI')),
                      E'\n' order by u.deadline, u.application_id) as lines
    from unsent u
    join auth.users au on au.id = u.user_id
    where au.email is not null and au.email <> ''
      and not exists (select 1 from public.notification_log n
                       where n.user_id = u.user_id and n.channel = 'email' and n.sent_at > run_nudge_scheduler.at - interval '24 hours')
    group by u.user_id, au.email
  ), claimed as (
    insert into private.nudge_throttle as t (user_id, channel, last_sent_at)
    select r.user_id, 'email', run_nudge_scheduler.at from recipients r order by r.user_id
    on conflict (user_id, channel) do update set last_sent_at = excluded.last_sent_at
      where t.last_sent_at <= excluded.last_sent_at - interval '24 hours'
    returning t.user_id
  ), logged as (
    insert into public.notification_log (user_id, channel, sent_at, notification_type, template_name, application_ids)
    select r.user_id, 'email', run_nudge_scheduler.at,
           case when r.urgent then 'deadline_24h' else 'deadline_72h' end, 'deadline_reminder_v1', r.application_ids
    from recipients r join claimed c on c.user_id = r.user_id
    returning id, user_id, application_ids
  ), marked as (
    insert into private.nudge_marks (application_id, kind, marker, notification_id)
    select u.application_id, u.kind, u.deadline, l.id
    from logged l join unsent u on u.user_id = l.user_id and u.application_id = any (l.application_ids)
    on conflict do nothing
    returning 1
  ), queued as (
    insert into private.email_outbox (notification_id, to_email, subject, text_body)
    select l.id, r.email,
           left(case when r.n = 1 then format('%s is due within %s', r.first_title, case when r.urgent then '24 hours' else '3 days' end)
                else format('%s deadlines coming up, the first within %s', r.n, case when r.urgent then '24 hours' else '3 days' end) end, 200),
           left(format(E'These deadlines are coming up:\n\n%s\n\nOpen your game plan to see what to do next.', r.lines), 20000)
    from logged l join recipients r on r.user_id = l.user_id
    returning 1
  )
  select count(*) into emails from logged;

  with top as (
    select distinct on (a.user_id) a.user_id, a.id as application_id, o.title, o.application_type, a.last_progress_at
    from public.applications a
    join public.opportunities o on o.id = a.opportunity_id
    cross join lateral private.momentum_parts(o.deadline, o.trust_score, run_nudge_scheduler.at) m
    where a.status = 'draft' and m.momentum is not null
    order by a.user_id, m.momentum desc, o.deadline nulls last, o.amount desc nulls last, a.id
  ), candidates as (
    select c.user_id, 'check_in'::text as kind, c.application_id, c.due_at as marker, 1 as priority,
           format('Have you heard back from %s?', o.title) as text
    from public.check_in_tasks c
    join public.applications a on a.id = c.application_id
    join public.opportunities o on o.id = a.opportunity_id
    where c.status = 'pending' and c.due_at <= run_nudge_scheduler.at
    union all
    select t.user_id, 'micro_task', t.application_id, t.last_progress_at, 2, private.micro_task_text(t.application_type, t.title)
    from top t
    left join public.profiles p on p.id = t.user_id
    where t.last_progress_at <= run_nudge_scheduler.at - interval '48 hours'
      and coalesce(private.micro_task_snoozed_until(p.preferences) <= run_nudge_scheduler.at, true)
  ), chosen as (
    select distinct on (c.user_id) c.*
    from candidates c
    where not exists (select 1 from private.nudge_marks m
                       where m.application_id = c.application_id and m.kind = c.kind and m.marker = c.marker)
      and not exists (select 1 from public.notification_log n
                       where n.user_id = c.user_id and n.channel = 'dashboard_toast' and n.sent_at > run_nudge_scheduler.at - interval '24 hours')
    order by c.user_id, c.priority, c.marker, c.application_id
  ), claimed as (
    insert into private.nudge_throttle as t (user_id, channel, last_sent_at)
    select c.user_id, 'dashboard_toast', run_nudge_scheduler.at from chosen c order by c.user_id
    on conflict (user_id, channel) do update set last_sent_at = excluded.last_sent_at
      where t.last_sent_at <= excluded.last_sent_at - interval '24 hours'
    returning t.user_id
  ), logged as (
    insert into public.notification_log (user_id, channel, sent_at, notification_type, template_name, application_ids)
    select c.user_id, 'dashboard_toast', run_nudge_scheduler.at, c.kind, c.kind || '_v1', array[c.application_id]
    from chosen c join claimed k on k.user_id = c.user_id
    returning id, user_id, notification_type, application_ids, sent_at
  ), marked as (
    insert into private.nudge_marks (application_id, kind, marker, notification_id)
    select c.application_id, c.kind, c.marker, l.id
    from logged l join chosen c on c.user_id = l.user_id
    on conflict do nothing
    returning 1
  ), sent as (
    select realtime.send(
             jsonb_build_object('notification_id', l.id, 'notification_type', l.notification_type,
                                'application_ids', l.application_ids, 'text', c.text, 'sent_at', l.sent_at),
             'nudge', 'nudges:' || l.user_id::text, true) as done
    from logged l join chosen c on c.user_id = l.user_id
  )
  select count(*) into toasts from sent;

  return jsonb_build_object('at', run_nudge_scheduler.at, 'emails', emails, 'toasts', toasts);
end;
$$;
comment on function private.run_nudge_scheduler(timestamptz) is
  'Finds due nudges at a time (default now()): deadline reminders (72 h and 24 h before, one email per user listing application_ids, to private.email_outbox), a due check-in or else the 48-hour micro-task (a toast on nudges:<user_id>). At most one email and one toast per user per rolling 24 hours, also under concurrency. Returns {at, emails, toasts}. Run every 15 minutes by pg_cron.';
revoke execute on function private.run_nudge_scheduler(timestamptz) from public, anon, authenticated;

create extension if not exists pg_cron with schema pg_catalog;
select cron.schedule('nudge-scheduler', '*/15 * * * *', $$select private.run_nudge_scheduler()$$);
