-- Purpose: analysts' view of assessments (issue 10): pseudonymous rollups only, like the
-- interaction metrics. coach_analyst has no access to public.assessments; these security
-- definer functions return aggregates, or one user's scores under their pseudonymous key
-- (private.user_key), never a user id, session id, group id, free text or skill hash.
-- Objects: functions analytics.assessment_scores, analytics.user_assessment_scores.
-- Destructive: none.

create or replace function analytics.assessment_scores(from_day date, to_day date)
returns table (
  day date, rubric_version integer, assessments integer, users integer,
  overall_avg numeric, overall_p50 numeric, criteria_avg jsonb
)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads assessments, which analysts cannot; returns aggregates only.
  with a as (
    select (x.created_at at time zone 'UTC')::date as day, x.* from public.assessments x
    where x.created_at >= assessment_scores.from_day::timestamp at time zone 'UTC'
      and x.created_at < (assessment_scores.to_day + 1)::timestamp at time zone 'UTC'
  ),
  c as (
    select a.day, a.rubric_version, e.key, round(avg(e.value::numeric), 2) as mean
    from a cross join lateral jsonb_each_text(a.criteria) e
    group by a.day, a.rubric_version, e.key
  ),
  cc as (
    select c.day, c.rubric_version, jsonb_object_agg(c.key, c.mean order by c.key) as criteria_avg
    from c group by c.day, c.rubric_version
  )
  select a.day, a.rubric_version, count(*)::integer, count(distinct a.user_id)::integer,
         round(avg(a.overall_score), 2),
         round((percentile_cont(0.5) within group (order by a.overall_score))::numeric, 2),
         coalesce((select cc.criteria_avg from cc where cc.day = a.day and cc.rubric_version = a.rubric_version), '{}')
  from a
  group by a.day, a.rubric_version
  order by a.day, a.rubric_version
$$;
comment on function analytics.assessment_scores(date, date) is $$
Assessments per UTC day and rubric version between two days: how many, by how many users, the mean and median overall
score and the mean of each criterion (0..5). Aggregates only.
Example: select * from analytics.assessment_scores('2026-11-01', '2026-11-30');
$$;
revoke execute on function analytics.assessment_scores(date, date) from public, anon, authenticated;
grant execute on function analytics.assessment_scores(date, date) to coach_analyst, service_role;

create or replace function analytics.user_assessment_scores(user_key text, from_day date, to_day date)
returns table (assessed_on date, rubric_version integer, overall_score numeric, criteria jsonb)
language sql
stable
security definer
set search_path = ''
as $$
  -- Security definer: reads assessments, which analysts cannot; returns scores only, under
  -- the pseudonymous key (no ids, no free text, no skill hash).
  select (a.created_at at time zone 'UTC')::date, a.rubric_version, a.overall_score, a.criteria
  from public.assessments a
  where private.user_key(a.user_id) = user_assessment_scores.user_key
    and a.created_at >= user_assessment_scores.from_day::timestamp at time zone 'UTC'
    and a.created_at < (user_assessment_scores.to_day + 1)::timestamp at time zone 'UTC'
  order by a.created_at, a.id
$$;
comment on function analytics.user_assessment_scores(text, date, date) is $$
One user's assessment scores between two UTC days, by pseudonymous user_key (as analytics.user_metrics): day, rubric
version, overall score and criteria. No session, group or user ids, no strengths or improvements.
Example: select * from analytics.user_assessment_scores('9f2c…', '2026-11-01', '2026-11-30');
$$;
revoke execute on function analytics.user_assessment_scores(text, date, date) from public, anon, authenticated;
grant execute on function analytics.user_assessment_scores(text, date, date) to coach_analyst, service_role;
