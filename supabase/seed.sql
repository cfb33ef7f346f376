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

-- Interactions: a short conversation for Alice (with an AI coach and Carol) and one for Bob,
-- through the same write path apps use. Fixed request ids make a second run a replay.
select public.log_coach_interaction(
  sender => m.sender, user_id => m.user_id::uuid, content => jsonb_build_object('text', m.text),
  request_id => m.request_id, conversation_id => m.conversation_id::uuid, channel => m.channel,
  coach_persona => m.persona, model => m.model, latency_ms => m.latency_ms, prompt_tokens => m.prompt_tokens,
  completion_tokens => m.completion_tokens, sentiment => m.sentiment, momentum_state => m.momentum,
  created_at => m.created_at::timestamptz)
from (values
  ('user', 'a11ce000-0000-4000-8000-000000000001', 'I keep skipping my morning walk. Text me at 555-201-7788 if I forget again.',
   'seed-alice-1', 'c0000000-0000-4000-8000-00000000a001', 'chat', null, null, null, null, null, -0.3::real, 'stalled', '2026-03-02 08:00:00+00'),
  ('ai_coach', 'a11ce000-0000-4000-8000-000000000001', 'Mornings are hard. What would make the walk the easy choice tomorrow?',
   'seed-alice-2', 'c0000000-0000-4000-8000-00000000a001', 'chat', 'encourager', 'gpt-4o-mini', 820, 412, 58, 0.2::real, 'stalled', '2026-03-02 08:00:02+00'),
  ('user', 'a11ce000-0000-4000-8000-000000000001', 'Laying out my shoes the night before, I think.',
   'seed-alice-3', 'c0000000-0000-4000-8000-00000000a001', 'chat', null, null, null, null, null, 0.4::real, 'rising', '2026-03-02 08:01:10+00'),
  ('human_coach', 'a11ce000-0000-4000-8000-000000000001', 'Great plan, Alice. Let us review it on Friday.',
   'seed-alice-4', 'c0000000-0000-4000-8000-00000000a001', 'chat', 'carol', null, null, null, null, 0.6::real, 'rising', '2026-03-02 09:30:00+00'),
  ('user', 'b0b00000-0000-4000-8000-000000000002', 'Can we move my session? I am at 12 Oak Lane all week.',
   'seed-bob-1', 'c0000000-0000-4000-8000-00000000b001', 'chat', null, null, null, null, null, 0.0::real, null, '2026-03-03 18:00:00+00'),
  ('ai_coach', 'b0b00000-0000-4000-8000-000000000002', 'Sure. Which evening works best for you?',
   'seed-bob-2', 'c0000000-0000-4000-8000-00000000b001', 'chat', 'planner', 'claude-haiku-4-5', 1240, 380, 40, 0.1::real, null, '2026-03-03 18:00:03+00')
) as m(sender, user_id, text, request_id, conversation_id, channel, persona, model, latency_ms, prompt_tokens,
       completion_tokens, sentiment, momentum, created_at);
