-- Deterministic demo data for local development and tests. Safe to apply twice.
-- Users: alice (client), bob (client), carol (coach, assigned to alice). Password: password123.

insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                        raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values
  ('00000000-0000-0000-0000-000000000000', 'a11ce000-0000-4000-8000-000000000001', 'authenticated',
   'authenticated', 'alice@example.com', extensions.crypt('password123', extensions.gen_salt('bf')),
   '2026-01-05 09:00:00+00', '{"provider": "email", "providers": ["email"]}',
   '{"full_name": "Alice Archer", "timezone": "America/New_York"}', '2026-01-05 09:00:00+00', '2026-01-05 09:00:00+00'),
  ('00000000-0000-0000-0000-000000000000', 'b0b00000-0000-4000-8000-000000000002', 'authenticated',
   'authenticated', 'bob@example.com', extensions.crypt('password123', extensions.gen_salt('bf')),
   '2026-01-05 09:05:00+00', '{"provider": "email", "providers": ["email"]}',
   '{"full_name": "Bob Baker", "timezone": "Europe/London"}', '2026-01-05 09:05:00+00', '2026-01-05 09:05:00+00'),
  ('00000000-0000-0000-0000-000000000000', 'ca401000-0000-4000-8000-000000000003', 'authenticated',
   'authenticated', 'carol@example.com', extensions.crypt('password123', extensions.gen_salt('bf')),
   '2026-01-04 08:00:00+00', '{"provider": "email", "providers": ["email"], "role": "coach"}',
   '{"full_name": "Carol Chen"}', '2026-01-04 08:00:00+00', '2026-01-04 08:00:00+00')
on conflict (id) do nothing;

insert into public.coach_assignments (id, coach_id, client_id, starts_at)
values ('c0ac4000-0000-4000-8000-000000000001', 'ca401000-0000-4000-8000-000000000003',
        'a11ce000-0000-4000-8000-000000000001', '2026-01-05 10:00:00+00')
on conflict (id) do nothing;
