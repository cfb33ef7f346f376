-- Purpose: the model price lookup in PL/pgSQL (issue 15, the single-request path).
-- private.resolve_model_price and private.interaction_cost were SQL functions with their own
-- search_path, which PostgreSQL cannot inline: each call set up and planned its query again.
-- Profiled with plpgsql_check, interaction_cost took 0.24 ms of public.log_coach_interaction's
-- 0.97 ms (a quarter of the single path in SQL). As PL/pgSQL their plans are cached per
-- session. Same signatures, same answers (pgTAP 57 compares the batch's cost with
-- interaction_cost's, and the price tests in 02 and 03 still pass).
-- Objects: functions private.resolve_model_price(text, timestamptz) and
-- private.interaction_cost(text, timestamptz, integer, integer, integer) (bodies; language).
-- Destructive: none.

create or replace function private.resolve_model_price(model text, at timestamptz)
returns table (input_usd_per_mtok numeric, cached_input_usd_per_mtok numeric, output_usd_per_mtok numeric)
language plpgsql
stable
set search_path = ''
as $$
begin
  return query
  select p.input_usd_per_mtok, p.cached_input_usd_per_mtok, p.output_usd_per_mtok
  from (
    select o.model_pattern, o.effective_from, o.effective_to, o.input_usd_per_mtok, o.cached_input_usd_per_mtok,
           o.output_usd_per_mtok, 0 as rank
    from public.model_price_overrides o
    union all
    select m.model_pattern, m.effective_from, m.effective_to, m.input_usd_per_mtok, m.cached_input_usd_per_mtok,
           m.output_usd_per_mtok, 1 as rank
    from public.model_prices m
  ) p
  where resolve_model_price.model ~* p.model_pattern
    and p.effective_from <= resolve_model_price.at
    and (p.effective_to is null or resolve_model_price.at < p.effective_to)
  order by p.rank, char_length(p.model_pattern) desc, p.effective_from desc
  limit 1;
end;
$$;

create or replace function private.interaction_cost(
  model text, at timestamptz, prompt_tokens integer, completion_tokens integer, cached_tokens integer
)
returns numeric
language plpgsql
stable
set search_path = ''
as $$
declare
  price record;
begin
  select r.input_usd_per_mtok, r.cached_input_usd_per_mtok, r.output_usd_per_mtok into price
  from private.resolve_model_price(interaction_cost.model, interaction_cost.at) r;
  if not found then
    return null;
  end if;
  return round((
      (coalesce(interaction_cost.prompt_tokens, 0) - coalesce(interaction_cost.cached_tokens, 0)) * price.input_usd_per_mtok
    + coalesce(interaction_cost.cached_tokens, 0) * coalesce(price.cached_input_usd_per_mtok, price.input_usd_per_mtok)
    + coalesce(interaction_cost.completion_tokens, 0) * price.output_usd_per_mtok
  ) / 1000000.0, 8);
end;
$$;
