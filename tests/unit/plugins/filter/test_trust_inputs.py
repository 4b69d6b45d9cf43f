# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.alcf.mlflow_globus.plugins.filter.trust_inputs import (
    FilterModule, every_address, not_whole_domains, too_wide_networks)


@pytest.mark.parametrize('value', ['0.0.0.0', '::', '[::]', '0', '*', '', ' 0.0.0.0 ', '0:0:0:0:0:0:0:0'])
def test_wildcards_mean_every_address(value):
    assert every_address(value) is True


@pytest.mark.parametrize('value', ['127.0.0.1', '::1', '10.1.2.3', 'fe80::1', 'vm.example.org', '[::1]'])
def test_one_address_or_name_is_not_every_address(value):
    assert every_address(value) is False


def test_addresses_and_narrow_networks_pass():
    assert too_wide_networks(['127.0.0.1', '::1', '10.1.2.0/24', '10.1.2.3/32', '2001:db8::/64']) == []


@pytest.mark.parametrize('value, sentence', [
    ('10.0.0.0/8', "'10.0.0.0/8' is wider than a /24 (16777216 addresses)"),
    ('0.0.0.0/0', "'0.0.0.0/0' is wider than a /24"),
    ('2001:db8::/48', "'2001:db8::/48' is wider than a /64"),
    ('::/0', "'::/0' is wider than a /64"),
    ('nginx.example.org', "'nginx.example.org' is not an IP address or network"),
    ('10.0.0.300', "'10.0.0.300' is not an IP address or network"),
])
def test_wide_or_bad_entries_are_named(value, sentence):
    problems = too_wide_networks(['127.0.0.1', value])
    assert len(problems) == 1 and problems[0].startswith(sentence), problems


def test_the_limits_can_be_changed():
    assert too_wide_networks(['10.1.0.0/16'], v4_prefix=16) == []
    assert too_wide_networks(['10.1.2.0/25'], v4_prefix=26) != []


def test_whole_domains_pass():
    assert not_whole_domains(['anl.gov', 'alcf.anl.gov', 'Example.ORG', 'xn--bcher-kva.example']) == []


@pytest.mark.parametrize('value', ['*', '*.gov', '.gov', 'gov', 'anl.gov.', 'user@anl.gov', 'https://anl.gov',
                                   'anl.gov:443', '10.0.0.1', 'bücher.example', '-anl.gov', 'anl..gov', ''])
def test_anything_else_is_named(value):
    assert not_whole_domains(['anl.gov', value]) == [value.strip()]


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {'every_address', 'too_wide_networks', 'not_whole_domains'}
