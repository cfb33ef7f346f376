-- PHI redaction at read time: private.redact_phi rule by rule, redact_content over JSON,
-- the owners' redacted view and the analysts' view.
begin;
select plan(26);

-- One rule at a time
select is(private.redact_phi('write to alice.archer+coach@example.co.uk today'), 'write to [EMAIL] today', 'An email address is redacted');
select is(private.redact_phi('call 555-123-4567'), 'call [PHONE]', 'A dashed US phone number is redacted');
select is(private.redact_phi('call (555) 123-4567 or +1 555.123.4567'), 'call [PHONE] or [PHONE]', 'Parenthesised and dotted phone numbers are redacted');
select is(private.redact_phi('ring +44 20 7946 0958'), 'ring [PHONE]', 'An international phone number is redacted');
select is(private.redact_phi('SSN 123-45-6789.'), 'SSN [SSN].', 'A US SSN is redacted');
select is(private.redact_phi('born 1990-04-23'), 'born [DATE]', 'An ISO date is redacted');
select is(private.redact_phi('DOB: 04/23/1990 or 23.04.90'), 'DOB: [DATE] or [DATE]', 'Numeric dates are redacted');
select is(private.redact_phi('born April 23rd, 1990 and 23 Apr 1990'), 'born [DATE] and [DATE]', 'Written dates are redacted');
select is(private.redact_phi('I live at 221B Baker Street, London'), 'I live at 221B Baker Street, London',
  'A house number that is not digits only is not taken for an address');
select is(private.redact_phi('I live at 742 Evergreen Terrace now'), 'I live at [ADDRESS] now', 'A street address is redacted');
select is(private.redact_phi('meet at 1600 Pennsylvania Ave. NW'), 'meet at [ADDRESS] NW', 'An abbreviated street type is redacted');
select is(private.redact_phi('see https://example.com/users/alice-archer/profile.'), 'see [URL].', 'A URL with a personal path is redacted');
select is(private.redact_phi('our site is https://example.com'), 'our site is https://example.com', 'A bare domain is kept');
select is(private.redact_phi('Alice said alice and ALICE, not Alicent', array['Alice']), '[NAME] said [NAME] and [NAME], not Alicent',
  'Names are redacted whole-word in any case');
select is(private.redact_phi('I walked 3 miles in 40 minutes'), 'I walked 3 miles in 40 minutes', 'Text without PHI is unchanged');
select is(private.redact_phi(null), null, 'null stays null');
select is(private.redact_content('{"text": "mail bob@example.com", "tags": ["555-123-4567", 3], "n": 1, "nested": {"who": "Bob"}}', array['Bob']),
  '{"text": "mail [EMAIL]", "tags": ["[PHONE]", 3], "n": 1, "nested": {"who": "[NAME]"}}'::jsonb,
  'redact_content redacts every string and keeps the structure');

select tests.authenticate_as_service_role();
create temporary table fixture as select public.log_coach_interaction(sender => 'user',
  user_id => 'a11ce000-0000-4000-8000-000000000001', request_id => 'phi-1',
  content => '{"text": "Hi, Alice Archer here, reach me at alice@example.com or 555-123-4567"}',
  metadata => '{"device": "iPhone of Alice"}');
grant select on fixture to authenticated;

-- Owner: the public view
select tests.authenticate_as('alice@example.com');
select is((select content ->> 'text' from public.coach_interactions_public where request_id = 'phi-1'),
  'Hi, [NAME] [NAME] here, reach me at [EMAIL] or [PHONE]', 'The public view redacts Alice''s names, email and phone');
select is((select metadata ->> 'device' from public.coach_interactions_public where request_id = 'phi-1'),
  'iPhone of [NAME]', 'The public view redacts metadata too');
select is((select content ->> 'text' from public.coach_interactions where request_id = 'phi-1'),
  'Hi, Alice Archer here, reach me at alice@example.com or 555-123-4567', 'The stored copy is unchanged');
select tests.authenticate_as('bob@example.com');
select is_empty($$ select 1 from public.coach_interactions_public where request_id = 'phi-1' $$, 'Bob sees nothing of Alice in the public view');
select is(private.profile_name_parts('a11ce000-0000-4000-8000-000000000001'), '{}'::text[], 'Bob cannot learn Alice''s names');

-- Analyst
select tests.authenticate_as_role('coach_analyst');
select is((select content ->> 'text' from analytics.coach_interactions_redacted where user_key = encode(extensions.digest('coach-ledger-user:a11ce000-0000-4000-8000-000000000001', 'sha256'), 'hex') and content ->> 'text' like 'Hi,%'),
  'Hi, [NAME] [NAME] here, reach me at [EMAIL] or [PHONE]', 'The analyst view shows redacted content under a pseudonymous user key');
select hasnt_column('analytics', 'coach_interactions_redacted', 'user_id', 'The analyst view has no user_id');
select throws_ok($$ select 1 from public.coach_interactions $$, '42501', 'permission denied for table coach_interactions',
  'An analyst cannot read the raw table');
select throws_ok($$ select 1 from public.coach_interactions_public $$, '42501', 'permission denied for view coach_interactions_public',
  'An analyst cannot read the owners'' view');

select * from finish();
rollback;
