# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import importlib
import re

import pytest

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.email_allowlist import (
    AllowlistError,
    allowlist_diff,
    parse_allowlist,
    read_emails_file,
    render_emails_file,
)

SEED = 'huihuo.zheng@anl.gov,venkat@anl.gov,turam@anl.gov'
SEED_SORTED = ['huihuo.zheng@anl.gov', 'turam@anl.gov', 'venkat@anl.gov']
WILDCARD = 'wildcards are not allowed'
NOT_EMAIL = "not an email address (needs exactly one '@')"
QUOTES = 'quotes are not allowed'


def test_collection_path_is_importable():
    module = importlib.import_module('ansible_collections.alcf.mlflow_globus.plugins.module_utils.email_allowlist')
    assert module.parse_allowlist is parse_allowlist


@pytest.mark.parametrize('value, expected', [
    (SEED, SEED_SORTED),
    (' Venkat@ANL.gov ,, turam@anl.gov\nhuihuo.zheng@anl.gov ', SEED_SORTED),
    ('venkat@anl.gov\tturam@anl.gov huihuo.zheng@anl.gov', SEED_SORTED),
    ('# allowlist\nvenkat@anl.gov  # PI\nturam@anl.gov,# huihuo@anl.gov\n', ['turam@anl.gov', 'venkat@anl.gov']),
    (['venkat@anl.gov', ' Turam@Anl.Gov ', 'huihuo.zheng@anl.gov', 'VENKAT@anl.gov'], SEED_SORTED),
    (('b@x.org', 'a@x.org'), ['a@x.org', 'b@x.org']),
    (['first.last+tag@sub-domain.example.co.uk'], ['first.last+tag@sub-domain.example.co.uk']),
    (["o!$%&/=?^_{|}~-x@x.org"], ["o!$%&/=?^_{|}~-x@x.org"]),
    (['a' * 64 + '@x.org'], ['a' * 64 + '@x.org']),
    (['a@' + 'b' * 63 + '.org'], ['a@' + 'b' * 63 + '.org']),
    (['a@1.2.3.example'], ['a@1.2.3.example']),
])
def test_good(value, expected):
    assert parse_allowlist(value) == expected


def test_same_set_same_output():
    assert parse_allowlist(SEED) == parse_allowlist(list(reversed(SEED.split(',')))) == parse_allowlist(
        SEED.upper().replace(',', '\n'))


@pytest.mark.parametrize('value, errors', [
    ('venkat@anl.gov, *@anl.gov', ["#2 '*@anl.gov': " + WILDCARD]),
    (['@anl.gov'], ["#1 '@anl.gov': " + WILDCARD]),
    (['ven*kat@anl.gov'], ["#1 'ven*kat@anl.gov': " + WILDCARD]),
    (['a@*.anl.gov'], ["#1 'a@*.anl.gov': " + WILDCARD]),
    (['bob'], ["#1 'bob': " + NOT_EMAIL]),
    ('a@b@anl.gov', ["#1 'a@b@anl.gov': " + NOT_EMAIL]),
    (['"venkat@anl.gov"'], ["#1 '\"venkat@anl.gov\"': " + QUOTES]),
    ('"venkat@anl.gov,turam@anl.gov"', ["#1 '\"venkat@anl.gov': " + QUOTES, "#2 'turam@anl.gov\"': " + QUOTES]),
    (["o'brien@anl.gov"], ["#1 \"o'brien@anl.gov\": " + QUOTES]),
    (['a`b@anl.gov'], ["#1 'a`b@anl.gov': " + QUOTES]),
    (['a@anl.gov,b@anl.gov'], ["#1 'a@anl.gov,b@anl.gov': contains a comma (give one address per list item)"]),
    (['a@anl.gov b@anl.gov'], ["#1 'a@anl.gov b@anl.gov': contains whitespace (give one address per list item)"]),
    (['a\x00b@anl.gov'], ["#1 'a\\x00b@anl.gov': contains a control character"]),
    (['a@anl.gov\x7f'], ["#1 'a@anl.gov\\x7f': contains a control character"]),
    (['#a@anl.gov'], ["#1 '#a@anl.gov': contains '#', which starts a comment in the emails file"]),
    (['', 'a@anl.gov'], ["#1 '': empty entry"]),
    (['bob@'], ["#1 'bob@': empty domain"]),
    (['bob@localhost'], ["#1 'bob@localhost': domain 'localhost' has no dot"]),
    (['bob@anl..gov'], ["#1 'bob@anl..gov': domain 'anl..gov' has an empty label"]),
    (['bob@anl.gov.'], ["#1 'bob@anl.gov.': domain 'anl.gov.' has an empty label"]),
    (['bob@-anl.gov'], ["#1 'bob@-anl.gov': domain label '-anl' starts or ends with a hyphen"]),
    (['bob@anl-.gov'], ["#1 'bob@anl-.gov': domain label 'anl-' starts or ends with a hyphen"]),
    (['bob@an_l.gov'], ["#1 'bob@an_l.gov': invalid character in domain 'an_l.gov'"]),
    (['bob@ánl.gov'], ["#1 'bob@ánl.gov': domain 'ánl.gov' is not ASCII: give it in punycode"]),
    # The Kelvin sign (U+212A) lowercases to an ASCII 'k': refused, not folded into 'anl.gok'.
    (['bob@anl.go\u212a'], ["#1 'bob@anl.go\u212a': domain 'anl.go\u212a' is not ASCII: give it in punycode"]),
    (['bob@ANL.GO\u212a'], ["is not ASCII"]),
    (['a<b>@anl.gov'], ["#1 'a<b>@anl.gov': invalid character in local part 'a<b>'"]),
    (['.bob@anl.gov'], ["#1 '.bob@anl.gov': local part has an empty dot-separated part"]),
    (['b..ob@anl.gov'], ["#1 'b..ob@anl.gov': local part has an empty dot-separated part"]),
    (['a' * 65 + '@x.org'], ["#1 '%s@x.org': local part longer than 64 characters" % ('a' * 65)]),
    (['a@' + 'b' * 64 + '.org'], ["domain label '%s' longer than 63 characters" % ('b' * 64)]),
    (['a@' + 'b.' * 127 + 'org'], ['domain longer than 253 characters']),
    (['a' * 64 + '@' + 'b' * 63 + '.' + 'c' * 63 + '.' + 'd' * 61 + '.org'], ['address longer than 254 characters']),
    ([42], ['#1 42: not a string (int)']),
    (['a@anl.gov', None], ['#2 None: not a string (NoneType)']),
    ([{'email': 'a@anl.gov'}], ["#1 {'email': 'a@anl.gov'}: not a string (dict)"]),
    (['a@anl.gov', ['b@anl.gov']], ["#2 ['b@anl.gov']: not a string (list)"]),
])
def test_bad(value, errors):
    with pytest.raises(AllowlistError) as exc:
        parse_allowlist(value)
    message = str(exc.value)
    assert message.startswith('invalid allowlist entr')
    for error in errors:
        assert error in message
    assert len(re.findall(r'(?:: |; )#\d+ ', message)) == len(errors)


def test_every_bad_entry_is_named_once_with_its_position():
    with pytest.raises(AllowlistError) as exc:
        parse_allowlist('venkat@anl.gov, *@anl.gov\nturam@anl.gov  # ok\n"x@anl.gov" bob')
    assert str(exc.value) == (
        "invalid allowlist entries: "
        "#2 '*@anl.gov': wildcards are not allowed (oauth2-proxy compares whole addresses, "
        "so this would let nobody in; list each address); "
        "#4 '\"x@anl.gov\"': quotes are not allowed (oauth2-proxy would fail to parse the file "
        "and silently keep its old list); "
        "#5 'bob': not an email address (needs exactly one '@')")


@pytest.mark.parametrize('value, kind', [
    ({'a@anl.gov': 1}, 'dict'),
    (None, 'NoneType'),
    (3, 'int'),
])
def test_bad_container(value, kind):
    with pytest.raises(AllowlistError, match='must be a list of addresses or a comma separated string, not %s$' % kind):
        parse_allowlist(value)


@pytest.mark.parametrize('value', [[], (), '', '  \n, ,\n', '# nobody yet\n'])
def test_empty(value):
    with pytest.raises(AllowlistError) as exc:
        parse_allowlist(value)
    assert str(exc.value) == ('the allowlist is empty: an empty allowlist lets nobody in; '
                              'pass allow_empty=True if that is what you want')
    assert parse_allowlist(value, allow_empty=True) == []


@pytest.mark.parametrize('domains', [['anl.gov'], ['ANL.gov ', 'uchicago.edu'], ('anl.gov',)])
def test_domains_good(domains):
    assert parse_allowlist(SEED, domains=domains) == SEED_SORTED


@pytest.mark.parametrize('value, domains, error', [
    ('a@anl.gov, b@gmail.com', ['anl.gov'], "#2 'b@gmail.com': not in allowed domains ['anl.gov']"),
    ('a@sub.anl.gov', ['anl.gov'], "#1 'a@sub.anl.gov': not in allowed domains ['anl.gov']"),
    ('a@anl.gov.evil.com', ['anl.gov', 'uchicago.edu'],
     "#1 'a@anl.gov.evil.com': not in allowed domains ['anl.gov', 'uchicago.edu']"),
])
def test_domains_bad(value, domains, error):
    with pytest.raises(AllowlistError) as exc:
        parse_allowlist(value, domains=domains)
    assert str(exc.value) == 'invalid allowlist entry: ' + error


@pytest.mark.parametrize('domains, error', [
    ('anl.gov', 'domains must be a list of domain names, not str'),
    ([None], 'domains must be a list of domain names, found None (NoneType)'),
    (['*.anl.gov'], "invalid entry in domains: invalid character in domain '*.anl.gov'"),
    (['anl'], "invalid entry in domains: domain 'anl' has no dot"),
])
def test_domains_invalid(domains, error):
    with pytest.raises(AllowlistError) as exc:
        parse_allowlist(SEED, domains=domains)
    assert str(exc.value) == error


@pytest.mark.parametrize('old, new, added, removed', [
    (SEED, SEED_SORTED, [], []),
    (['a@anl.gov', 'b@anl.gov'], 'B@anl.gov, c@anl.gov', ['c@anl.gov'], ['a@anl.gov']),
    ([], 'a@anl.gov', ['a@anl.gov'], []),
    ('a@anl.gov', '', [], ['a@anl.gov']),
])
def test_diff(old, new, added, removed):
    assert allowlist_diff(old, new) == {'added': added, 'removed': removed}


def test_diff_bad():
    with pytest.raises(AllowlistError, match=r"#1 '\*@anl.gov': wildcards"):
        allowlist_diff(['a@anl.gov'], ['*@anl.gov'])


@pytest.mark.parametrize('text, expected', [
    ('', []),
    ('# header\n\nB@anl.gov\na@anl.gov\n', ['a@anl.gov', 'b@anl.gov']),
    ('a@anl.gov,extra field\r\n  c@anl.gov  \na@anl.gov\n', ['a@anl.gov', 'c@anl.gov']),
    ('#a@anl.gov\nb@anl.gov', ['b@anl.gov']),
])
def test_read_emails_file(text, expected):
    assert read_emails_file(text) == expected


@pytest.mark.parametrize('emails, header, expected', [
    (['a@anl.gov', 'b@anl.gov'], None, 'a@anl.gov\nb@anl.gov\n'),
    (['a@anl.gov'], 'Managed by Ansible.\n\nOne per line.', '# Managed by Ansible.\n#\n# One per line.\na@anl.gov\n'),
    ([], 'Nobody.', '# Nobody.\n'),
    ([], None, ''),
])
def test_render_emails_file(emails, header, expected):
    assert render_emails_file(emails, header) == expected


@pytest.mark.parametrize('value', [SEED, ['Z@x.org', 'a@x.org', 'a@X.org']])
def test_render_read_round_trip(value):
    emails = parse_allowlist(value)
    assert read_emails_file(render_emails_file(emails, 'header, with "quotes"')) == emails


@pytest.mark.parametrize('domain', ['anl.go\u212a', 'b\u00fccher.de', 'xn--bcher-kva.\u212a'])
def test_non_ascii_allowed_domains_are_refused_before_lowercasing(domain):
    with pytest.raises(AllowlistError, match='is not ASCII: give it in punycode'):
        parse_allowlist(['a@anl.gov'], domains=[domain])


def test_punycode_domains_are_accepted():
    assert parse_allowlist(['a@XN--BCHER-KVA.de'], domains=['xn--bcher-kva.DE']) == ['a@xn--bcher-kva.de']
