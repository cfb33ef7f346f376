-- Purpose: run the daily rollup with pg_cron at 00:15 UTC, re-aggregating the last two
-- full days so that interactions arriving late are picked up. cron.schedule with an
-- existing job name updates that job, so re-running this migration is harmless.
-- Objects: pg_cron job coach-interactions-daily-rollup. Destructive: none.

create extension if not exists pg_cron with schema pg_catalog;

select cron.schedule(
  'coach-interactions-daily-rollup',
  '15 0 * * *',
  $$select analytics.aggregate_interaction_metrics(((now() at time zone 'UTC')::date - 2), ((now() at time zone 'UTC')::date - 1))$$
);
