-- Purpose: the audited read path of the interaction log. A user reads their own history,
-- an assigned coach their client's, the service role anyone's; every call appends an
-- audit.phi_access_log row in the same transaction. Keyset pagination on (created_at, id),
-- newest first; optionally redacted.
-- Objects: function public.get_interaction_history. Destructive: none.

create or replace function public.get_interaction_history(
  user_id uuid default null,
  page_size integer default 100,
  before uuid default null,
  redacted boolean default false,
  purpose text default 'coaching'
)
returns setof public.coach_interactions
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: coaches and services read other users' rows, which RLS does not show
-- them directly; this function checks the caller first and records every read.
declare
  caller_role text := private.caller_role();
  caller uuid := auth.uid();
  target uuid := coalesce(get_interaction_history.user_id, caller);
  cursor_at timestamptz;
  cursor_id uuid;
  names text[];
  n integer;
begin
  if target is null then
    raise exception 'user_id is required for service callers' using errcode = '22023';
  end if;
  if caller_role = 'authenticated' then
    if caller is null or (target <> caller and not private.is_assigned_coach(target)) then
      raise exception 'Only the user, their assigned coach or the service role can read these interactions'
        using errcode = '42501';
    end if;
  elsif caller_role not in ('service_role', 'postgres') then
    raise exception 'Role % cannot read interactions', caller_role using errcode = '42501';
  end if;
  if get_interaction_history.page_size is null or get_interaction_history.page_size not between 1 and 100 then
    raise exception 'page_size must be between 1 and 100' using errcode = '22023';
  end if;
  if get_interaction_history.purpose is null or char_length(get_interaction_history.purpose) not between 1 and 200 then
    raise exception 'purpose must be 1 to 200 characters' using errcode = '22023';
  end if;
  if get_interaction_history.before is not null then
    select i.created_at, i.id into cursor_at, cursor_id
    from public.coach_interactions i
    where i.id = get_interaction_history.before and i.user_id = target;
    if not found then
      raise exception 'before does not name an interaction of this user' using errcode = '22023';
    end if;
  end if;
  if get_interaction_history.redacted then
    names := private.profile_name_parts(target);
  end if;

  return query
  select i.id, i.user_id, i.session_id, i.conversation_id, i.request_id, i.sender, i.channel, i.coach_persona,
         case when get_interaction_history.redacted then private.redact_content(i.content, names) else i.content end,
         case when get_interaction_history.redacted then private.redact_content(i.metadata, names) else i.metadata end,
         i.model, i.latency_ms, i.prompt_tokens, i.completion_tokens, i.cached_tokens, i.cost_usd, i.sentiment,
         i.momentum_state, i.status, i.error_code, i.tracked_skill_id_hash, i.created_at, i.actor_id, i.actor_role
  from public.coach_interactions i
  where i.user_id = target
    and (cursor_at is null or (i.created_at, i.id) < (cursor_at, cursor_id))
  order by i.created_at desc, i.id desc
  limit get_interaction_history.page_size;
  get diagnostics n = row_count;

  perform audit.record_phi_access(
    target,
    case when get_interaction_history.redacted then 'coach_interactions:redacted' else 'coach_interactions' end,
    n, get_interaction_history.purpose);
  return;
end;
$$;
comment on function public.get_interaction_history(uuid, integer, uuid, boolean, text) is $$
A user's interactions, newest first, and an audit.phi_access_log row for the read.
Parameters: user_id (default: the caller; required for the service role), page_size 1..100 (default 100),
before (an interaction id: return only older rows, for the next page), redacted (PHI replaced by
placeholders), purpose (recorded in the audit log, default 'coaching').
Callers: the user, their assigned coach, the service role. Others: 42501.
Example: select * from public.get_interaction_history(page_size => 20);
  -- supabase.rpc('get_interaction_history', { page_size: 20, before: lastId })
$$;
grant execute on function public.get_interaction_history(uuid, integer, uuid, boolean, text) to authenticated, service_role;
