-- Purpose: LLM prices, so the cost of an interaction is computed in SQL from its model and
-- token counts at the interaction's time. model_prices holds seeded list prices;
-- model_price_overrides holds negotiated or corrected prices, which win over seeded ones.
-- Objects: tables public.model_prices, public.model_price_overrides; function
-- private.resolve_model_price; seed rows. Destructive: none.

create table public.model_prices (
  id uuid primary key default gen_random_uuid(),
  model_pattern text not null,
  provider text not null,
  input_usd_per_mtok numeric(12, 6) not null,
  cached_input_usd_per_mtok numeric(12, 6),
  output_usd_per_mtok numeric(12, 6) not null,
  effective_from timestamptz not null,
  effective_to timestamptz,
  created_at timestamptz not null default now(),
  constraint model_prices_pattern_valid check (model_pattern <> '' and char_length(model_pattern) <= 200),
  constraint model_prices_provider_known check (provider in ('openai', 'anthropic', 'google', 'other')),
  constraint model_prices_nonnegative check (
    input_usd_per_mtok >= 0 and output_usd_per_mtok >= 0 and coalesce(cached_input_usd_per_mtok, 0) >= 0),
  constraint model_prices_window_valid check (effective_to is null or effective_to > effective_from),
  constraint model_prices_pattern_from_key unique (model_pattern, effective_from)
);
alter table public.model_prices enable row level security;
comment on table public.model_prices is
  'List prices of LLMs in USD per million tokens, by model name pattern (a POSIX regex, matched case-insensitively) and effective window [effective_from, effective_to).';

create table public.model_price_overrides (like public.model_prices including defaults including constraints);
alter table public.model_price_overrides add primary key (id);
alter table public.model_price_overrides
  add constraint model_price_overrides_pattern_from_key unique (model_pattern, effective_from);
alter table public.model_price_overrides enable row level security;
comment on table public.model_price_overrides is
  'Prices that win over model_prices for the models they match (negotiated rates, corrections). Same shape as model_prices.';

-- A regex pattern must compile: checked on write, so cost resolution never fails on it.
create or replace function private.trigger_check_model_pattern()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform '' ~* new.model_pattern;
  return new;
exception when invalid_regular_expression then
  raise exception 'model_pattern is not a valid regular expression: %', new.model_pattern
    using errcode = '23514';
end;
$$;
comment on function private.trigger_check_model_pattern() is
  'Trigger on model_prices and model_price_overrides: refuses a model_pattern that is not a valid regex.';
revoke execute on function private.trigger_check_model_pattern() from public, anon, authenticated;

create trigger model_prices_check_pattern
  before insert or update of model_pattern on public.model_prices
  for each row execute function private.trigger_check_model_pattern();
create trigger model_price_overrides_check_pattern
  before insert or update of model_pattern on public.model_price_overrides
  for each row execute function private.trigger_check_model_pattern();

-- Prices are public facts: anyone signed in may read them; the service role manages them.
grant select on public.model_prices, public.model_price_overrides to authenticated;
grant select, insert, update, delete on public.model_prices, public.model_price_overrides to service_role;

create policy "Model prices are viewable by signed-in users"
  on public.model_prices for select to authenticated using (true);
create policy "Model price overrides are viewable by signed-in users"
  on public.model_price_overrides for select to authenticated using (true);

-- The price for a model at a time: an override if one matches, else a seeded price; among
-- several matches the longest (most specific) pattern, then the latest start.
create or replace function private.resolve_model_price(model text, at timestamptz)
returns table (input_usd_per_mtok numeric, cached_input_usd_per_mtok numeric, output_usd_per_mtok numeric)
language sql
stable
set search_path = ''
as $$
  select p.input_usd_per_mtok, p.cached_input_usd_per_mtok, p.output_usd_per_mtok
  from (
    select o.*, 0 as rank from public.model_price_overrides o
    union all
    select m.*, 1 as rank from public.model_prices m
  ) p
  where resolve_model_price.model ~* p.model_pattern
    and p.effective_from <= resolve_model_price.at
    and (p.effective_to is null or resolve_model_price.at < p.effective_to)
  order by p.rank, char_length(p.model_pattern) desc, p.effective_from desc
  limit 1
$$;
comment on function private.resolve_model_price(text, timestamptz) is
  'The price row for a model name at a time: overrides first, then the most specific seeded pattern.';
revoke execute on function private.resolve_model_price(text, timestamptz) from public, anon;

-- List prices, USD per million tokens, from the providers' public price pages (2025).
-- gpt-4o shows a price change: its list price fell on 2024-10-02.
insert into public.model_prices
  (model_pattern, provider, input_usd_per_mtok, cached_input_usd_per_mtok, output_usd_per_mtok, effective_from, effective_to)
values
  ('^gpt-4o', 'openai', 5.00, null, 15.00, '2024-05-13 00:00:00+00', '2024-10-02 00:00:00+00'),
  ('^gpt-4o', 'openai', 2.50, 1.25, 10.00, '2024-10-02 00:00:00+00', null),
  ('^gpt-4o-mini', 'openai', 0.15, 0.075, 0.60, '2024-07-18 00:00:00+00', null),
  ('^gpt-4\.1', 'openai', 2.00, 0.50, 8.00, '2025-04-14 00:00:00+00', null),
  ('^gpt-4\.1-mini', 'openai', 0.40, 0.10, 1.60, '2025-04-14 00:00:00+00', null),
  ('^gpt-4\.1-nano', 'openai', 0.10, 0.025, 0.40, '2025-04-14 00:00:00+00', null),
  ('^o3', 'openai', 2.00, 0.50, 8.00, '2025-06-10 00:00:00+00', null),
  ('^o4-mini', 'openai', 1.10, 0.275, 4.40, '2025-04-16 00:00:00+00', null),
  ('^gpt-5', 'openai', 1.25, 0.125, 10.00, '2025-08-07 00:00:00+00', null),
  ('^gpt-5-mini', 'openai', 0.25, 0.025, 2.00, '2025-08-07 00:00:00+00', null),
  ('^gpt-5-nano', 'openai', 0.05, 0.005, 0.40, '2025-08-07 00:00:00+00', null),
  ('^claude-(3-7-sonnet|sonnet-4)', 'anthropic', 3.00, 0.30, 15.00, '2025-02-24 00:00:00+00', null),
  ('^claude-opus-4(-1)?(-2025|$)', 'anthropic', 15.00, 1.50, 75.00, '2025-05-22 00:00:00+00', null),
  ('^claude-opus-4-5', 'anthropic', 5.00, 0.50, 25.00, '2025-11-24 00:00:00+00', null),
  ('^claude-haiku-4-5', 'anthropic', 1.00, 0.10, 5.00, '2025-10-15 00:00:00+00', null),
  ('^claude-3-5-haiku', 'anthropic', 0.80, 0.08, 4.00, '2024-10-22 00:00:00+00', null)
on conflict (model_pattern, effective_from) do nothing;
