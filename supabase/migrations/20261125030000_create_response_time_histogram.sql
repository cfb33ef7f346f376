-- Purpose: the fixed-bucket response-time histogram that hourly and daily interaction metrics
-- store instead of an exact percentile, so that partial rollups merge exactly (counts add) and
-- a percentile is read from the merged histogram. Buckets: 0 = [0, 1) ms; k = 1..447 =
-- [2^((k-1)/16), 2^(k/16)) ms (16 per doubling, each 4.4 % wide); 448 = [2^(447/16) ms ≈ 69.6 h, ∞).
-- Objects: functions analytics.response_time_bucket_bounds, analytics.response_time_bucket,
-- analytics.response_time_percentile. Destructive: none.

create or replace function analytics.response_time_bucket_bounds()
returns double precision[]
language sql
immutable
parallel safe
set search_path = ''
as $$
  select array_agg(power(2::double precision, k::double precision / 16) order by k) from generate_series(0, 447) k
$$;
comment on function analytics.response_time_bucket_bounds() is $$
The 448 lower bounds (ms) of the response-time histogram buckets 1..448: bound[k] = 2^((k-1)/16). A value v falls in
bucket width_bucket(v, bounds): 0 below 1 ms, k when bound[k] <= v < bound[k+1], 448 from bound[448] (about 69.6 h) up.
Example: select (analytics.response_time_bucket_bounds())[164:165];  -- {1166.1, 1217.7}: bucket 164
$$;

create or replace function analytics.response_time_bucket(ms numeric)
returns smallint
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select width_bucket(response_time_bucket.ms::double precision, analytics.response_time_bucket_bounds())::smallint
$$;
comment on function analytics.response_time_bucket(numeric) is $$
The histogram bucket (0..448) of a response time in ms; see analytics.response_time_bucket_bounds.
Example: select analytics.response_time_bucket(1200);  -- 164
$$;

create or replace function analytics.response_time_percentile(
  buckets smallint[], counts integer[], fraction double precision, min_ms numeric, max_ms numeric)
returns numeric
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  n bigint := 0;
  rank double precision;
  lo bigint;
  frac double precision;
  through bigint := 0;
  x_lo double precision;
  x_hi double precision;
  estimate double precision;
begin
  for i in 1 .. coalesce(cardinality(buckets), 0) loop
    n := n + counts[i];
  end loop;
  if n = 0 then
    return null;
  end if;
  -- percentile_cont's rule (float8, as in PostgreSQL): rank r = fraction * (n - 1), 0-based.
  rank := fraction * (n - 1);
  lo := floor(rank)::bigint;
  frac := rank - lo;
  -- The order statistics at ranks lo and lo + 1: min and max are exact, any other is the
  -- geometric middle of its bucket clamped to [min, max]. Buckets are visited in ascending order.
  for i in 1 .. cardinality(buckets) loop
    through := through + counts[i];
    estimate := case when buckets[i] = 0 then 0.5 when buckets[i] >= 448 then max_ms::double precision
                     else power(2::double precision, (buckets[i] - 0.5) / 16) end;
    estimate := greatest(min_ms::double precision, least(max_ms::double precision, estimate));
    if x_lo is null and through > lo then
      x_lo := case when lo = 0 then min_ms::double precision when lo = n - 1 then max_ms::double precision else estimate end;
    end if;
    if through > least(lo + 1, n - 1) then
      x_hi := case when least(lo + 1, n - 1) = n - 1 then max_ms::double precision else estimate end;
      exit;
    end if;
  end loop;
  return (x_lo + frac * (x_hi - x_lo))::numeric;
end;
$$;
comment on function analytics.response_time_percentile(smallint[], integer[], double precision, numeric, numeric) is $$
A percentile (fraction 0..1) of response times from a histogram (parallel arrays of bucket numbers and counts, any order)
and the exact min and max: percentile_cont's interpolation between estimated order statistics. Each estimate is within
2.2 % (or 0.5 ms below 1 ms) of the true order statistic, so the result is within 2.2 % of percentile_cont's.
Null for an empty histogram. Example:
  select round(analytics.response_time_percentile('{18,155,164}', '{1,2,1}', 0.95, 3, 1200), 1);
$$;

revoke execute on function analytics.response_time_bucket_bounds(), analytics.response_time_bucket(numeric),
  analytics.response_time_percentile(smallint[], integer[], double precision, numeric, numeric) from public, anon, authenticated;
grant execute on function analytics.response_time_bucket_bounds(), analytics.response_time_bucket(numeric),
  analytics.response_time_percentile(smallint[], integer[], double precision, numeric, numeric) to coach_analyst, service_role;
