# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.go_duration import FilterModule, go_duration_seconds


@pytest.mark.parametrize('text, seconds', [
    ('12h', 43200.0), ('1h', 3600.0), ('168h0m0s', 604800.0), ('1h30m', 5400.0), ('90m', 5400.0),
    ('1.5h', 5400.0), ('0', 0.0), ('0s', 0.0), ('500ms', 0.5), ('2\u00b5s', 2e-6), (' 5m ', 300.0),
])
def test_durations_as_go_reads_them(text, seconds):
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize('text', ['', '12', '1d', '-1h', '+1h', '1h 30m', 'h', '12H', 'forever', '1.h5'])
def test_anything_else_is_refused_by_name(text):
    with pytest.raises(AnsibleFilterError, match='is not a duration oauth2-proxy understands'):
        go_duration_seconds(text)


def test_the_filter_is_registered():
    assert FilterModule().filters()['go_duration_seconds'] is go_duration_seconds
