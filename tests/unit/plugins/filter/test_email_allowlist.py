# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.email_allowlist import (
    FilterModule,
    email_allowlist,
    email_allowlist_diff,
)


def test_filters_are_registered():
    assert FilterModule().filters() == {
        'email_allowlist': email_allowlist,
        'email_allowlist_diff': email_allowlist_diff,
    }


@pytest.mark.parametrize('value, kwargs, expected', [
    ('Venkat@anl.gov, turam@anl.gov venkat@anl.gov', {}, ['turam@anl.gov', 'venkat@anl.gov']),
    (['b@x.org', 'A@x.org'], {}, ['a@x.org', 'b@x.org']),
    (['a@anl.gov'], {'domains': ['anl.gov']}, ['a@anl.gov']),
    ([], {'allow_empty': True}, []),
    ('# nobody\n', {'allow_empty': True}, []),
])
def test_email_allowlist(value, kwargs, expected):
    assert email_allowlist(value, **kwargs) == expected


@pytest.mark.parametrize('value, kwargs, message', [
    ('a@anl.gov, *@anl.gov, bob', {},
     "invalid allowlist entries: #2 '*@anl.gov': wildcards are not allowed (oauth2-proxy compares whole "
     "addresses, so this would let nobody in; list each address); #3 'bob': not an email address "
     "(needs exactly one '@')"),
    (['a@gmail.com'], {'domains': ['anl.gov']},
     "invalid allowlist entry: #1 'a@gmail.com': not in allowed domains ['anl.gov']"),
    ([], {}, 'the allowlist is empty: an empty allowlist lets nobody in; pass allow_empty=True if that is what you want'),
    ({'a': 1}, {}, 'the allowlist must be a list of addresses or a comma separated string, not dict'),
])
def test_email_allowlist_errors(value, kwargs, message):
    with pytest.raises(AnsibleFilterError) as exc:
        email_allowlist(value, **kwargs)
    assert exc.value.message == message


@pytest.mark.parametrize('old, new, expected', [
    (['a@anl.gov', 'b@anl.gov'], 'b@anl.gov,C@anl.gov', {'added': ['c@anl.gov'], 'removed': ['a@anl.gov']}),
    ('a@anl.gov', ['A@anl.gov'], {'added': [], 'removed': []}),
    ([], [], {'added': [], 'removed': []}),
])
def test_email_allowlist_diff(old, new, expected):
    assert email_allowlist_diff(old, new) == expected


def test_email_allowlist_diff_error():
    with pytest.raises(AnsibleFilterError) as exc:
        email_allowlist_diff(['a@anl.gov'], 'a@anl.gov, "b@anl.gov"')
    assert exc.value.message.startswith("invalid allowlist entry: #2 '\"b@anl.gov\"': quotes are not allowed")
