-- Purpose: tenants, the organisations being coached (issue 11; seed 003: the coaching
-- service is multi-tenant, "business_data:{tenant_id}"). The tenant-scoped strategy and
-- operations tables of later migrations are readable and writable only by a tenant's
-- members, through one helper, private.tenant_role.
--  * public.tenants: id, name.
--  * public.tenant_members: (tenant, user, role owner | admin | member | coach). Members
--    read their tenants and co-members; writes go through the RPCs below, so that a tenant
--    always has an owner and nobody grants more than they hold.
--  * private.tenant_role(tenant_id): the caller's role in the tenant, or null.
--  * public.create_tenant(name), public.add_tenant_member(tenant_id, user_id, role),
--    public.remove_tenant_member(tenant_id, user_id), public.list_my_tenants(). A tenant the
--    caller is not a member of answers PT404, the same as one that does not exist, so ids do
--    not leak.
-- Objects: tables public.tenants, public.tenant_members, their triggers, grants and
-- policies; functions private.tenant_role, public.create_tenant, public.add_tenant_member,
-- public.remove_tenant_member, public.list_my_tenants. Destructive: none.

create table public.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint tenants_name_length check (char_length(btrim(name)) between 1 and 200 and name !~ '[[:cntrl:]]')
);
alter table public.tenants enable row level security;
comment on table public.tenants is
  'Organisations being coached. Members (public.tenant_members) read their tenant; owners and admins rename it; created by public.create_tenant.';
comment on column public.tenants.created_by is 'The user who created the tenant (kept when that user is erased: no foreign key).';

create trigger tenants_set_updated_at
  before update on public.tenants
  for each row execute function private.trigger_set_updated_at();

create table public.tenant_members (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references public.profiles (id) on delete cascade,
  role text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, user_id),
  constraint tenant_members_role_known check (role in ('owner', 'admin', 'member', 'coach'))
);
alter table public.tenant_members enable row level security;
comment on table public.tenant_members is
  'Who belongs to a tenant, as owner | admin | member (read and write the tenant''s data) or coach (reads it). Written through add_tenant_member and remove_tenant_member.';

-- A user's tenants (the foreign key to profiles, and "which tenants am I in").
create index tenant_members_user_id_idx on public.tenant_members (user_id);

create trigger tenant_members_set_updated_at
  before update on public.tenant_members
  for each row execute function private.trigger_set_updated_at();

-- The one membership helper every tenant table's policies use. Security definer: it reads
-- tenant_members, whose own policy calls it (no recursion through RLS).
create or replace function private.tenant_role(tenant_id uuid)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select m.role from public.tenant_members m
  where m.tenant_id = tenant_role.tenant_id and m.user_id = (select auth.uid())
$$;
comment on function private.tenant_role(uuid) is
  'The caller''s (auth.uid()) role in the tenant: owner, admin, member or coach; null when not a member. Used by every tenant-scoped policy.';
revoke execute on function private.tenant_role(uuid) from public, anon;
grant execute on function private.tenant_role(uuid) to authenticated, service_role;

grant select on public.tenants, public.tenant_members to authenticated;
grant update (name) on public.tenants to authenticated;
grant select, insert, update, delete on public.tenants, public.tenant_members to service_role;

create policy "Tenants are viewable by their members"
  on public.tenants for select to authenticated
  using (private.tenant_role(id) is not null);
create policy "Tenants are renamed by their owners and admins"
  on public.tenants for update to authenticated
  using (private.tenant_role(id) in ('owner', 'admin'))
  with check (private.tenant_role(id) in ('owner', 'admin'));
create policy "Tenant members are viewable by their co-members"
  on public.tenant_members for select to authenticated
  using (private.tenant_role(tenant_id) is not null);

create or replace function public.create_tenant(name text)
returns public.tenants
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: users cannot insert tenants or memberships directly; this makes the
-- tenant and its first owner together.
declare
  caller uuid := auth.uid();
  created public.tenants;
begin
  if private.caller_role() <> 'authenticated' or caller is null then
    raise exception 'Only a signed-in user can create a tenant' using errcode = '42501';
  end if;
  if create_tenant.name is null or char_length(btrim(create_tenant.name)) not between 1 and 200 or create_tenant.name ~ '[[:cntrl:]]' then
    raise exception 'name must be 1 to 200 characters without control characters' using errcode = '22023',
      constraint = 'tenants_name_length';
  end if;
  insert into public.tenants (name, created_by) values (btrim(create_tenant.name), caller) returning * into created;
  insert into public.tenant_members (tenant_id, user_id, role) values (created.id, caller, 'owner');
  return created;
end;
$$;
comment on function public.create_tenant(text) is $$
Creates a tenant named `name` (1 to 200 characters) with the caller as its owner, and returns it.
Example: supabase.rpc('create_tenant', { name: 'Archer Wellness Studio' })
$$;
revoke execute on function public.create_tenant(text) from public, anon;
grant execute on function public.create_tenant(text) to authenticated;

-- Who may change whose membership: the service role anyone's; an owner anyone's; an admin
-- members' and coaches' (never an owner's or another admin's, and never to owner or admin).
-- The caller's own role decides; a non-member gets PT404 like an unknown tenant.
create or replace function public.add_tenant_member(tenant_id uuid, user_id uuid, role text)
returns public.tenant_members
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: memberships are written only here and in remove_tenant_member.
declare
  service boolean := private.caller_role() in ('service_role', 'postgres');
  mine text := private.tenant_role(add_tenant_member.tenant_id);
  current_role_of_target text;
  stored public.tenant_members;
begin
  if not service and private.caller_role() <> 'authenticated' then
    raise exception 'Only a signed-in user or the service role can manage members' using errcode = '42501';
  end if;
  if add_tenant_member.role is null or add_tenant_member.role not in ('owner', 'admin', 'member', 'coach') then
    raise exception 'role must be one of owner, admin, member, coach' using errcode = '22023', constraint = 'tenant_members_role_known';
  end if;
  if (service and not exists (select 1 from public.tenants t where t.id = add_tenant_member.tenant_id))
     or (not service and mine is null) then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  if not exists (select 1 from public.profiles p where p.id = add_tenant_member.user_id) then
    raise exception 'user_id does not name a user' using errcode = '23503', constraint = 'tenant_members_user_id_fkey';
  end if;
  -- One change at a time per tenant, so that two demotions cannot both see another owner.
  perform 1 from public.tenants t where t.id = add_tenant_member.tenant_id for update;
  select m.role into current_role_of_target from public.tenant_members m
  where m.tenant_id = add_tenant_member.tenant_id and m.user_id = add_tenant_member.user_id;

  if not service and not (
    mine = 'owner'
    or (mine = 'admin' and add_tenant_member.role in ('member', 'coach')
        and coalesce(current_role_of_target, 'member') in ('member', 'coach'))
  ) then
    raise exception 'Only an owner, or an admin for members and coaches, can change this membership' using errcode = '42501';
  end if;
  if current_role_of_target = 'owner' and add_tenant_member.role <> 'owner' and not exists (
    select 1 from public.tenant_members m
    where m.tenant_id = add_tenant_member.tenant_id and m.role = 'owner' and m.user_id <> add_tenant_member.user_id
  ) then
    raise exception 'A tenant keeps at least one owner' using errcode = 'PT409', hint = 'Make another member owner first.';
  end if;

  insert into public.tenant_members as m (tenant_id, user_id, role)
  values (add_tenant_member.tenant_id, add_tenant_member.user_id, add_tenant_member.role)
  on conflict on constraint tenant_members_pkey do update set role = excluded.role
  returning * into stored;
  return stored;
end;
$$;
comment on function public.add_tenant_member(uuid, uuid, text) is $$
Adds a user to a tenant with a role (owner | admin | member | coach), or changes their role. An owner may set any role;
an admin may add or change members and coaches only; the service role anything. A tenant keeps at least one owner
(PT409). A tenant the caller is not a member of answers PT404, as an unknown one does.
Example: supabase.rpc('add_tenant_member', { tenant_id, user_id, role: 'coach' })
$$;
revoke execute on function public.add_tenant_member(uuid, uuid, text) from public, anon;
grant execute on function public.add_tenant_member(uuid, uuid, text) to authenticated, service_role;

create or replace function public.remove_tenant_member(tenant_id uuid, user_id uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
-- Security definer: memberships are written only here and in add_tenant_member.
declare
  service boolean := private.caller_role() in ('service_role', 'postgres');
  mine text := private.tenant_role(remove_tenant_member.tenant_id);
  theirs text;
begin
  if not service and private.caller_role() <> 'authenticated' then
    raise exception 'Only a signed-in user or the service role can manage members' using errcode = '42501';
  end if;
  if (service and not exists (select 1 from public.tenants t where t.id = remove_tenant_member.tenant_id))
     or (not service and mine is null) then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  perform 1 from public.tenants t where t.id = remove_tenant_member.tenant_id for update;
  select m.role into theirs from public.tenant_members m
  where m.tenant_id = remove_tenant_member.tenant_id and m.user_id = remove_tenant_member.user_id;
  if theirs is null then
    return false;
  end if;
  if not service and remove_tenant_member.user_id <> auth.uid() and not (
    mine = 'owner' or (mine = 'admin' and theirs in ('member', 'coach'))
  ) then
    raise exception 'Only an owner, or an admin for members and coaches, can remove this member' using errcode = '42501';
  end if;
  if theirs = 'owner' and not exists (
    select 1 from public.tenant_members m
    where m.tenant_id = remove_tenant_member.tenant_id and m.role = 'owner' and m.user_id <> remove_tenant_member.user_id
  ) then
    raise exception 'A tenant keeps at least one owner' using errcode = 'PT409', hint = 'Make another member owner first.';
  end if;
  delete from public.tenant_members m
  where m.tenant_id = remove_tenant_member.tenant_id and m.user_id = remove_tenant_member.user_id;
  return true;
end;
$$;
comment on function public.remove_tenant_member(uuid, uuid) is $$
Removes a user from a tenant; true when they were a member. Anyone may leave; an owner may remove anyone, an admin members
and coaches; the service role anyone. The last owner cannot leave or be removed (PT409). A tenant the caller is not a
member of answers PT404.
Example: supabase.rpc('remove_tenant_member', { tenant_id, user_id })
$$;
revoke execute on function public.remove_tenant_member(uuid, uuid) from public, anon;
grant execute on function public.remove_tenant_member(uuid, uuid) to authenticated, service_role;

create or replace function public.list_my_tenants()
returns table (id uuid, name text, role text, created_at timestamptz)
language sql
stable
security invoker
set search_path = ''
as $$
  select t.id, t.name, m.role, t.created_at
  from public.tenant_members m
  join public.tenants t on t.id = m.tenant_id
  where m.user_id = (select auth.uid())
  order by t.name, t.id
$$;
comment on function public.list_my_tenants() is $$
The caller's tenants with their role in each, by name. Security invoker: the policies decide.
Example: supabase.rpc('list_my_tenants')
$$;
revoke execute on function public.list_my_tenants() from public, anon;
grant execute on function public.list_my_tenants() to authenticated;
