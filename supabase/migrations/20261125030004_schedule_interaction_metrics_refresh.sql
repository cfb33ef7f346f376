-- Purpose: run the incremental rollup every 2 minutes, and make the nightly job (00:15 UTC)
-- finalize the two previous days from their hourly rows instead of re-reading them.
-- cron.schedule with an existing job name updates that job.
-- Objects: pg_cron jobs coach-interactions-refresh (new), coach-interactions-daily-rollup
-- (command changed). Destructive: none.

select cron.schedule(
  'coach-interactions-refresh',
  '*/2 * * * *',
  $$select analytics.refresh_interaction_metrics()$$
);

select cron.schedule(
  'coach-interactions-daily-rollup',
  '15 0 * * *',
  $$select analytics.finalize_interaction_metrics(((now() at time zone 'UTC')::date - 2), ((now() at time zone 'UTC')::date - 1))$$
);
