# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import subprocess

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.host_inputs import (
    FilterModule, port_conflicts, systemd_quote, systemd_unquotable)


def test_filters_are_registered():
    assert FilterModule().filters() == {
        'port_conflicts': port_conflicts, 'systemd_quote': systemd_quote, 'systemd_unquotable': systemd_unquotable}


ALL = ['oauth2_proxy', 'mlflow', 'external_nginx']


@pytest.mark.parametrize('own, host_vars, groups', [
    ({'mlflow_globus_port': 8080}, {}, ALL),
    ({'mlflow_globus_port': '8080'}, {}, ALL),
    ({'mlflow_globus_port': 8081}, {}, ['mlflow', 'external_nginx']),
    ({'mlflow_globus_port': 443}, {}, ['mlflow', 'oauth2_proxy']),
    ({'mlflow_globus_port': 8081}, {'oauth2_proxy_port': 9000}, ALL),
    ({'external_nginx_http_port': 8080, 'external_nginx_https_port': 8443}, {}, ['external_nginx']),
    ({'mlflow_globus_port': 1}, {}, ['mlflow']),
    ({'mlflow_globus_port': 65535}, {}, ['mlflow']),
])
def test_ports_accepted(own, host_vars, groups):
    assert port_conflicts(own, host_vars, groups) == []


@pytest.mark.parametrize('own, host_vars, groups, expected', [
    ({'mlflow_globus_port': 0}, {}, ['mlflow'], ['mlflow_globus_port is 0, not a port number (1-65535)']),
    ({'mlflow_globus_port': 65536}, {}, ['mlflow'], ['mlflow_globus_port is 65536, not a port number (1-65535)']),
    ({'mlflow_globus_port': -1}, {}, ['mlflow'], ['mlflow_globus_port is -1, not a port number (1-65535)']),
    ({'mlflow_globus_port': 'http'}, {}, ['mlflow'], ["mlflow_globus_port is 'http', not a port number (1-65535)"]),
    ({'mlflow_globus_port': True}, {}, ['mlflow'], ['mlflow_globus_port is True, not a port number (1-65535)']),
    ({'mlflow_globus_port': 8081}, {}, ALL,
     ['oauth2_proxy_port and mlflow_globus_port are all 8081 on this host: give each its own port']),
    ({'mlflow_globus_port': 9000}, {'oauth2_proxy_port': 9000}, ['oauth2_proxy', 'mlflow'],
     ['oauth2_proxy_port and mlflow_globus_port are all 9000 on this host: give each its own port']),
    ({'mlflow_globus_port': 443}, {}, ALL,
     ['mlflow_globus_port and external_nginx_https_port are all 443 on this host: give each its own port']),
    ({'external_nginx_http_port': 443, 'external_nginx_https_port': 443}, {}, ['external_nginx'],
     ['external_nginx_http_port and external_nginx_https_port are all 443 on this host: give each its own port']),
    ({'external_nginx_http_port': 80, 'external_nginx_https_port': 8080}, {}, ALL,
     ['mlflow_globus_port and external_nginx_https_port are all 8080 on this host: give each its own port']),
    # a bad port of another role on the host is named too
    ({'mlflow_globus_port': 8080}, {'oauth2_proxy_port': 70000}, ALL,
     ['oauth2_proxy_port is 70000, not a port number (1-65535)']),
])
def test_ports_refused(own, host_vars, groups, expected):
    assert port_conflicts(own, host_vars, groups) == expected


@pytest.mark.parametrize('own, host_vars, groups', [
    ({}, {}, []),
    ('mlflow_globus_port', {}, []),
    ({'mlflow_globus_port': 1}, 'vm', []),
    ({'mlflow_globus_port': 1}, {}, 'mlflow'),
])
def test_ports_bad_arguments(own, host_vars, groups):
    with pytest.raises(AnsibleFilterError):
        port_conflicts(own, host_vars, groups)


@pytest.mark.parametrize('value, expected', [
    ('/opt/mlflow-globus/venv/bin/mlflow', '"/opt/mlflow-globus/venv/bin/mlflow"'),
    (['--host', '127.0.0.1'], '"--host" "127.0.0.1"'),
    ('a b', '"a b"'),
    ('50%', '"50%%"'),
    ('%i', '"%%i"'),
    ('$HOME', '"$$HOME"'),
    ('${HOME}', '"$${HOME}"'),
    ('say "hi"', '"say \\"hi\\""'),
    ('back\\slash', '"back\\\\slash"'),
    ("it's", '"it\'s"'),
    (';', '";"'),
    (8080, '"8080"'),
])
def test_systemd_quote(value, expected):
    assert systemd_quote(value) == expected


@pytest.mark.parametrize('value, expected', [
    (['ok', '', 'two\nlines', 'tab\there', 'bell\x07', 'del\x7f'], ['', 'two\nlines', 'tab\there', 'bell\x07', 'del\x7f']),
    ('fine value', []),
    (['a', 'b'], []),
])
def test_systemd_unquotable(value, expected):
    assert systemd_unquotable(value) == expected


def test_systemd_quote_refuses_a_line_break():
    with pytest.raises(AnsibleFilterError, match='two\\\\nlines'):
        systemd_quote(['ok', 'two\nlines'])


TRICKY = ['/usr/bin/printf', '%s|', 'a b', '50%', '$HOME', '${HOME}', 'say "hi"', 'back\\slash', "it's", ';', '\\;']


def test_systemd_analyze_accepts_the_quoted_line(tmp_path):
    """systemd's own parser takes the line without a warning (the scenario checks the argv it runs)."""
    unit = tmp_path / 'quote-check.service'
    unit.write_text('[Unit]\nDescription=quoting\n\n[Service]\nType=oneshot\nExecStart=%s\n' % systemd_quote(TRICKY),
                    encoding='utf-8')
    result = subprocess.run(['systemd-analyze', 'verify', '--man=no', str(unit)],
                            capture_output=True, text=True, check=False)
    assert 'quote-check.service' not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
