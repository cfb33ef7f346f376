-- Purpose: keep private.rate_limit_counters small. A counter whose window ended more than a
-- day ago (windows are at most a day long) says nothing any more; an hourly pg_cron job
-- deletes them. cron.schedule with an existing job name updates that job.
-- Objects: pg_cron job rate-limit-counters-purge. Destructive: deletes expired counter rows
-- (derived, unlogged data) every hour.

create extension if not exists pg_cron with schema pg_catalog;

select cron.schedule(
  'rate-limit-counters-purge',
  '41 * * * *',
  $$delete from private.rate_limit_counters where window_start < now() - interval '2 days'$$
);
