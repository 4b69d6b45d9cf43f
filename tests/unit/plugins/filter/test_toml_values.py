# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The toml_unsupported_keys filter (the oauth2_proxy role's preflight check of oauth2_proxy_extra_config)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.toml_values import FilterModule, toml_unsupported_keys


def test_registered():
    assert FilterModule().filters()['toml_unsupported_keys'] is toml_unsupported_keys


@pytest.mark.parametrize('value', ['x', '', 0, 8081, 1.5, True, False, [], ['a', 1, 2.5, True], ('a', 'b')])
def test_strings_numbers_booleans_and_lists_of_those_are_writable(value):
    assert toml_unsupported_keys({'key': value}) == []


@pytest.mark.parametrize('value', [None, {}, {'a': 1}, [['nested']], [None], [{'a': 1}], {'a', 'b'}, object()])
def test_anything_else_is_named(value):
    assert toml_unsupported_keys({'good': 'x', 'bad': value}) == ['bad']


def test_every_bad_key_in_the_mappings_order():
    assert toml_unsupported_keys({'z': None, 'a': 'fine', 'm': {}, 'b': [[1]]}) == ['z', 'm', 'b']


@pytest.mark.parametrize('options', ['cookie_name=x', ['cookie_name'], None])
def test_an_input_that_is_not_a_mapping_is_refused(options):
    with pytest.raises(AnsibleFilterError, match='^toml_unsupported_keys: the input must be a mapping'):
        toml_unsupported_keys(options)
