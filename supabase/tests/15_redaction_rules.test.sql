-- Every redaction rule with several matches in one text (a rule must replace them all) and
-- every documented format of each rule (private.redact_phi's comment and docs/compliance.md).
begin;
select plan(9);

select is(private.redact_phi('a 555-123-4567 b (555) 123-4567 c 555.123.4567 d +1 555.123.4567 e +1 (555) 123-4567 f +44 20 7946 0958 g 555 123 4567 h +1-555-123-4567'),
  'a [PHONE] b [PHONE] c [PHONE] d [PHONE] e [PHONE] f [PHONE] g [PHONE] h [PHONE]',
  'Phone numbers: dashed, parenthesised, dotted (with and without a country code), spaced, international; all of them');
select is(private.redact_phi('call 555.123.4567 then 555.987.6543'), 'call [PHONE] then [PHONE]',
  'Two dotted numbers without a country code are both redacted');
select is(private.redact_phi('x a@b.co, y c.d+e@f-g.example.org; z UPPER@EXAMPLE.COM'), 'x [EMAIL], y [EMAIL]; z [EMAIL]',
  'Email addresses: short, plus-tagged with dashes and subdomains, upper case; all of them');
select is(private.redact_phi('123-45-6789 and 987-65-4321'), '[SSN] and [SSN]', 'Two SSNs are both redacted');
select is(private.redact_phi('1990-04-23, 2001-1-2, 04/23/1990, 4/3/90, 23.04.1990, April 23, 1990, Apr 23 1990, Sept. 3rd, 2001, 23 April 1990, 1st Jan 2000'),
  '[DATE], [DATE], [DATE], [DATE], [DATE], [DATE], [DATE], [DATE], [DATE], [DATE]',
  'Dates: ISO, US and European numeric, written month first and day first, abbreviated, ordinals; all of them');
select is(private.redact_phi('12 Oak St and 3400 North Lake Shore Drive, 7 Elm Ave., 55 Main Road'),
  '[ADDRESS] and [ADDRESS], [ADDRESS], [ADDRESS]',
  'Street addresses: abbreviated and written street types, several words; all of them');
select is(private.redact_phi('https://a.com/x and http://b.org/y/z?q=1 and www.c.net/p.'), '[URL] and [URL] and [URL].',
  'URLs with a path, over https, http and www; all of them');
select is(private.redact_phi('Ann ann ANN anne Archer, archer', array['Ann', 'Archer']), '[NAME] [NAME] [NAME] anne [NAME], [NAME]',
  'Every occurrence of every name, whole words only');
select is(private.redact_content('{"a": "555.123.4567 and 555.123.4568", "b": ["x@y.org", {"c": "x@y.org, z@y.org"}]}'),
  '{"a": "[PHONE] and [PHONE]", "b": ["[EMAIL]", {"c": "[EMAIL], [EMAIL]"}]}'::jsonb,
  'redact_content applies every rule to every string at every level');

select * from finish();
rollback;
