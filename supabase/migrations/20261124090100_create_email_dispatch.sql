-- Purpose: deliver the nudge emails (private.email_outbox) through the dispatch-notifications
-- edge function, invoked as Supabase's guide to scheduling edge functions does: pg_cron
-- calls net.http_post (pg_net) with the project URL and the service key read from Vault.
--  * public.claim_email_outbox(batch_size, lease_seconds): the service role takes up to
--    batch_size due messages (skip locked, so racing dispatchers take different ones),
--    marking them sending with a lease; a message whose dispatcher died is due again when
--    its lease ends.
--  * public.record_email_delivery(outbox_id, outcome, ...): sent (with the provider and
--    its message id), retry (queued again after a backoff, or failed after 5 attempts) or
--    failed.
--  * private.invoke_edge_function(name, body): net.http_post to <project_url>/functions/v1/<name>
--    with Authorization: Bearer <service_role_key>, both from vault.decrypted_secrets; a
--    notice and null when they are not stored (docs/execution-engine.md says how).
--  * private.dispatch_due_emails(): invokes dispatch-notifications when a message is due;
--    pg_cron job dispatch-notifications every 5 minutes.
-- Objects: functions public.claim_email_outbox, public.record_email_delivery,
-- private.invoke_edge_function, private.dispatch_due_emails; pg_cron job
-- dispatch-notifications; extension pg_net where the platform offers it.
-- Destructive: none.

-- On Supabase pg_net is an extension the project enables (its objects are in schema net);
-- the local platform provides the same surface without the extension (local/platform.sql).
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_net with schema extensions;
  end if;
end
$$;

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

create or replace function public.record_email_delivery(
  outbox_id uuid,
  outcome text,
  provider text default null,
  provider_message_id text default null,
  error text default null,
  retry_after_seconds integer default null
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
comment on function public.record_email_delivery(uuid, text, text, text, text, integer) is
  'Service role: records an email''s delivery: sent (provider, provider_message_id), retry (queued again after 1, 2, 4, 8 minutes or Retry-After; failed after 5 attempts) or failed (error). Returns the status afterwards; a settled message is unchanged.';
revoke execute on function public.record_email_delivery(uuid, text, text, text, text, integer) from public, anon, authenticated;
grant execute on function public.record_email_delivery(uuid, text, text, text, text, integer) to service_role;

create or replace function private.invoke_edge_function(name text, body jsonb default '{}'::jsonb)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: reads Vault, which only postgres may.
declare
  project_url text;
  service_key text;
begin
  if invoke_edge_function.name is null or invoke_edge_function.name !~ '^[a-z0-9][a-z0-9_-]{0,62}$' then
    raise exception 'Not a function name: %', invoke_edge_function.name using errcode = '22023';
  end if;
  select s.decrypted_secret into project_url from vault.decrypted_secrets s where s.name = 'project_url';
  select s.decrypted_secret into service_key from vault.decrypted_secrets s where s.name = 'service_role_key';
  if project_url is null or service_key is null then
    raise notice 'Vault holds no project_url or service_role_key: % was not invoked', invoke_edge_function.name;
    return null;
  end if;
  return net.http_post(
    url := rtrim(project_url, '/') || '/functions/v1/' || invoke_edge_function.name,
    body := coalesce(invoke_edge_function.body, '{}'::jsonb),
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || service_key),
    timeout_milliseconds := 30000);
end;
$$;
comment on function private.invoke_edge_function(text, jsonb) is
  'POSTs body to <project_url>/functions/v1/<name> through pg_net with the service key, both read from Vault; returns the pg_net request id (null, with a notice, when the secrets are not stored).';
revoke execute on function private.invoke_edge_function(text, jsonb) from public, anon, authenticated;

create or replace function private.dispatch_due_emails()
returns bigint
language sql
volatile
set search_path = ''
as $$
  select private.invoke_edge_function('dispatch-notifications', jsonb_build_object('source', 'pg_cron'))
  where exists (select 1 from private.email_outbox o where o.status in ('queued', 'sending') and o.next_attempt_at <= now())
$$;
comment on function private.dispatch_due_emails() is
  'Invokes dispatch-notifications when an email is due; returns the pg_net request id, or null when nothing is due. Run every 5 minutes by pg_cron.';
revoke execute on function private.dispatch_due_emails() from public, anon, authenticated;

create extension if not exists pg_cron with schema pg_catalog;
select cron.schedule('dispatch-notifications', '*/5 * * * *', $$select private.dispatch_due_emails()$$);
