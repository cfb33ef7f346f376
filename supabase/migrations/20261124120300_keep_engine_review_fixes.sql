-- Purpose: the review fixes of the coach execution engine (issue 9), as a migration of
-- their own. They were first written into 20261124085000, 20261124090000 and 20261124090100
-- after those had landed; those files are back as they landed, and this migration brings
-- a database from the landed versions to the fixed ones (and leaves one that ran the edited
-- files as it is: every statement is create or replace, or drop ... if exists).
--  * private.micro_task_snoozed_until: any data exception of the cast (22009, a time zone
--    displacement out of range, among them) reads as no snooze.
--  * private.run_nudge_scheduler: at most 100 applications per deadline email (the rest wait
--    for a later one), and only to a confirmed address of a live, unbanned, non-anonymous
--    user.
--  * public.claim_email_outbox: a message whose lease ran out five times is failed instead
--    of claimed a sixth time.
--  * public.record_email_delivery gains `attempt`: a report of an earlier claim changes
--    nothing (the six-argument version is dropped).
-- Objects: functions private.micro_task_snoozed_until, private.run_nudge_scheduler,
-- public.claim_email_outbox (bodies); public.record_email_delivery (dropped with six
-- arguments, created with seven). Destructive: the six-argument record_email_delivery.

create or replace function private.micro_task_snoozed_until(preferences jsonb)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
  return (micro_task_snoozed_until.preferences ->> 'micro_task_snoozed_until')::timestamptz;
exception
  -- Any data exception of the cast: not a time, a field out of range, a time zone
  -- displacement out of range (22009, e.g. "2026-12-01 12:00 +99:00"), ...
  when data_exception then
    return null;
end;
$$;
comment on function private.micro_task_snoozed_until(jsonb) is
  'preferences.micro_task_snoozed_until as a time; null when absent or not a time (a value a user stored by hand cannot break a read).';
revoke execute on function private.micro_task_snoozed_until(jsonb) from public, anon, authenticated;

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
    -- At most 100 per user (the bound of application_ids): the rest wait for a later email.
    select x.* from (
      select d.*, row_number() over (partition by d.user_id order by d.deadline, d.application_id) as rn
      from due d
      where not exists (select 1 from private.nudge_marks m
                         where m.application_id = d.application_id and m.kind = d.kind and m.marker = d.deadline)
    ) x
    where x.rn <= 100
  ), recipients as (
    select u.user_id, au.email,
           array_agg(u.application_id order by u.deadline, u.application_id) as application_ids,
           bool_or(u.kind = 'deadline_24h') as urgent,
           count(*) as n,
           (array_agg(u.title order by u.deadline, u.application_id))[1] as first_title,
           string_agg(format('- %s: due %s UTC', u.title, to_char(u.deadline at time zone 'UTC', 'YYYY-MM-DD HH24:MI')),
                      E'\n' order by u.deadline, u.application_id) as lines
    from unsent u
    join auth.users au on au.id = u.user_id
    -- Only a confirmed address of a live, unbanned, non-anonymous user: the email carries
    -- titles the user typed, so it must never go to an address nobody proved they own.
    where au.email_confirmed_at is not null and char_length(au.email) between 3 and 320
      and au.deleted_at is null and not au.is_anonymous
      and (au.banned_until is null or au.banned_until <= run_nudge_scheduler.at)
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

create or replace function public.claim_email_outbox(batch_size integer default 20, lease_seconds integer default 120)
returns table (id uuid, to_email text, subject text, text_body text, attempts integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: the outbox is in the private schema, out of every API role's reach.
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can claim outgoing email' using errcode = '42501';
  end if;
  if claim_email_outbox.batch_size is null or claim_email_outbox.batch_size not between 1 and 100 then
    raise exception 'batch_size must be between 1 and 100' using errcode = '22023';
  end if;
  if claim_email_outbox.lease_seconds is null or claim_email_outbox.lease_seconds not between 10 and 3600 then
    raise exception 'lease_seconds must be between 10 and 3600' using errcode = '22023';
  end if;
  -- A message whose dispatchers died holding it five times is not tried a sixth time.
  update private.email_outbox o
     set status = 'failed', last_error = left('Not settled by the dispatcher after 5 attempts. ' || coalesce(o.last_error, ''), 1000)
   where o.status = 'sending' and o.next_attempt_at <= now() and o.attempts >= 5;
  return query
  with picked as (
    select o.id from private.email_outbox o
    where o.status in ('queued', 'sending') and o.next_attempt_at <= now()
    order by o.next_attempt_at
    limit claim_email_outbox.batch_size
    for update skip locked
  )
  update private.email_outbox o
     set status = 'sending', attempts = o.attempts + 1,
         next_attempt_at = now() + make_interval(secs => claim_email_outbox.lease_seconds)
    from picked
   where o.id = picked.id
  returning o.id, o.to_email, o.subject, o.text_body, o.attempts;
end;
$$;
comment on function public.claim_email_outbox(integer, integer) is
  'Service role: takes up to batch_size (1..100) due emails, marking them sending with a lease of lease_seconds (10..3600); returns id, to_email, subject, text_body, attempts.';
revoke execute on function public.claim_email_outbox(integer, integer) from public, anon, authenticated;
grant execute on function public.claim_email_outbox(integer, integer) to service_role;

drop function if exists public.record_email_delivery(uuid, text, text, text, text, integer);

create or replace function public.record_email_delivery(
  outbox_id uuid,
  outcome text,
  provider text default null,
  provider_message_id text default null,
  error text default null,
  retry_after_seconds integer default null,
  attempt integer default null
)
returns text
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: as claim_email_outbox. Returns the message's status afterwards.
declare
  max_attempts constant integer := 5;
  msg private.email_outbox;
begin
  if private.caller_role() not in ('service_role', 'postgres') then
    raise exception 'Only the service role can record email delivery' using errcode = '42501';
  end if;
  if record_email_delivery.outcome is null or record_email_delivery.outcome not in ('sent', 'retry', 'failed') then
    raise exception 'outcome must be sent, retry or failed' using errcode = '22023';
  end if;
  if record_email_delivery.retry_after_seconds is not null and record_email_delivery.retry_after_seconds not between 0 and 86400 then
    raise exception 'retry_after_seconds must be between 0 and 86400' using errcode = '22023';
  end if;
  select * into msg from private.email_outbox o where o.id = record_email_delivery.outbox_id for update;
  if msg.id is null then
    raise exception 'No such outgoing email' using errcode = 'PT404';
  end if;
  if msg.status in ('sent', 'failed') then
    -- Already settled (a late or repeated report): nothing changes.
    return msg.status;
  end if;
  if record_email_delivery.attempt is not null
     and (msg.status <> 'sending' or msg.attempts <> record_email_delivery.attempt) then
    -- A report of an earlier claim: another dispatcher holds the message now.
    return msg.status;
  end if;
  if record_email_delivery.outcome = 'sent' then
    update private.email_outbox o
       set status = 'sent', sent_at = now(), provider = left(record_email_delivery.provider, 100),
           provider_message_id = left(record_email_delivery.provider_message_id, 200), last_error = null
     where o.id = msg.id;
    return 'sent';
  end if;
  if record_email_delivery.outcome = 'retry' and msg.attempts < max_attempts then
    -- Backoff: 1, 2, 4, 8 minutes after attempts 1..4, or the provider's Retry-After when longer.
    update private.email_outbox o
       set status = 'queued', provider = left(record_email_delivery.provider, 100),
           last_error = left(record_email_delivery.error, 1000),
           next_attempt_at = now() + make_interval(secs => greatest(60 * power(2, msg.attempts - 1)::integer,
                                                                    coalesce(record_email_delivery.retry_after_seconds, 0)))
     where o.id = msg.id;
    return 'queued';
  end if;
  update private.email_outbox o
     set status = 'failed', provider = left(record_email_delivery.provider, 100),
         last_error = left(coalesce(record_email_delivery.error, 'failed'), 1000)
   where o.id = msg.id;
  return 'failed';
end;
$$;
comment on function public.record_email_delivery(uuid, text, text, text, text, integer, integer) is
  'Service role: records an email''s delivery: sent (provider, provider_message_id), retry (queued again after 1, 2, 4, 8 minutes or Retry-After; failed after 5 attempts) or failed (error). With attempt (the attempts its claim returned), a report of an earlier claim is ignored. Returns the status afterwards; a settled message is unchanged.';
revoke execute on function public.record_email_delivery(uuid, text, text, text, text, integer, integer) from public, anon, authenticated;
grant execute on function public.record_email_delivery(uuid, text, text, text, text, integer, integer) to service_role;
