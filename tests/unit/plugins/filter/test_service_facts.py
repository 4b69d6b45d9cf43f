# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.service_facts import (
    FilterModule, health_checks, health_rows, host_services, service_facts, systemd_sandbox)
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import SERVICES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

SETTINGS = {
    'oauth2_proxy': {'url': 'http://10.0.0.5:8081', 'issuer': 'https://auth.globus.org/',
                     'redirect_url': 'https://mlflow.example.org/oauth2/callback'},
    'mlflow': {'url': 'http://10.0.0.5:8080', 'public_host': 'mlflow.example.org', 'version': '3.17.2', 'identity': True},
    'external_nginx': {'https_port': 443, 'http_port': 80, 'public_host': 'mlflow.example.org',
                       'issuer': 'https://auth.globus.org', 'callback_codes': [403, 500]},
}


def _yaml(*path):
    with open(os.path.join(REPO, *path), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def test_filters_are_registered():
    assert FilterModule().filters() == {
        'health_checks': health_checks, 'health_rows': health_rows, 'host_services': host_services,
        'service_facts': service_facts, 'systemd_sandbox': systemd_sandbox}


@pytest.mark.parametrize('service', sorted(SERVICES))
def test_default_ports_are_the_roles_defaults(service):
    facts = SERVICES[service]
    defaults = _yaml('roles', facts['role'], 'defaults', 'main.yml')
    assert {name: defaults[name] for name in facts['ports']} == facts['ports']


@pytest.mark.parametrize('service', sorted(SERVICES))
def test_each_role_names_its_unit_and_its_checks_from_the_facts(service):
    facts = SERVICES[service]
    role_vars = _yaml('roles', facts['role'], 'vars', 'main.yml')
    assert ("alcf.mlflow_globus.health_checks(" in role_vars[facts['checks_var']]
            and role_vars[facts['checks_var']].strip().startswith("{{ '%s' |" % service))
    if service == 'external_nginx':  # a site may run another nginx unit: a default, not a fact
        assert _yaml('roles', facts['role'], 'defaults', 'main.yml')['external_nginx_service'] == facts['unit']
    else:
        assert role_vars['_%s_service' % facts['prefix']] == "{{ ('%s' | alcf.mlflow_globus.service_facts).unit }}" % service


@pytest.mark.parametrize('service', sorted(SERVICES))
def test_role_verify_and_healthcheck_run_the_same_list(service):
    """The role's verify step runs its checks_var through the health_checks role, and so does
    healthcheck.yml for every service of a host: one list, one runner, no second set of probes."""
    facts = SERVICES[service]
    verify = _yaml('roles', facts['role'], 'tasks', 'verify.yml')
    assert [task['ansible.builtin.include_role']['name'] for task in verify] == ['alcf.mlflow_globus.health_checks']
    assert verify[0]['vars']['health_checks_list'] == '{{ %s }}' % facts['checks_var']
    assert verify[0]['vars']['health_checks_strict'] is True

    plays = _yaml('playbooks', 'healthcheck.yml')
    runs = [task for play in plays for task in play.get('tasks', [])
            if task.get('ansible.builtin.include_role', {}).get('name') == 'alcf.mlflow_globus.health_checks']
    assert len(runs) == 1
    assert runs[0]['vars']['health_checks_list'] == (
        "{{ query('ansible.builtin.vars', *__health_services | map(attribute='checks_var')) | flatten }}")
    assert any(play.get('vars', {}).get('__health_services') == '{{ group_names | alcf.mlflow_globus.host_services }}'
               for play in plays)
    for path in (('roles', facts['role'], 'tasks', 'verify.yml'), ('playbooks', 'healthcheck.yml')):
        with open(os.path.join(REPO, *path), encoding='utf-8') as handle:
            text = handle.read()
        assert 'ansible.builtin.uri' not in text and 'http_checks' not in text, path
    probes = [task for task in _yaml('roles', 'health_checks', 'tasks', 'main.yml') if 'alcf.mlflow_globus.http_checks' in task]
    assert len(probes) == 1 and probes[0]['alcf.mlflow_globus.http_checks']['checks'] == '{{ health_checks_list }}'


def test_host_services_are_in_deploy_order():
    assert [item['role'] for item in host_services(['external_nginx', 'mlflow', 'oauth2_proxy'])] == [
        'oauth2_proxy', 'mlflow_globus', 'external_nginx']
    assert [item['service'] for item in host_services(['mlflow', 'other'])] == ['mlflow']
    assert host_services([]) == []


def test_host_services_wants_a_list():
    with pytest.raises(AnsibleFilterError, match='expects a list of groups'):
        host_services('mlflow')


def test_service_facts_is_a_copy():
    facts = service_facts('mlflow')
    facts['ports']['mlflow_globus_port'] = 1
    assert SERVICES['mlflow']['ports']['mlflow_globus_port'] == 8080


def test_unknown_service_is_named():
    with pytest.raises(AnsibleFilterError, match="unknown service 'nginx'; the services are oauth2_proxy, mlflow, external_nginx"):
        service_facts('nginx')


@pytest.mark.parametrize('service', sorted(SERVICES))
def test_checks_have_names_urls_and_codes(service):
    checks = health_checks(service, **SETTINGS[service])
    assert checks and all(set(check) >= {'name', 'url', 'expect'} for check in checks)
    assert all(check['expect'] and all(isinstance(code, int) for code in check['expect']) for check in checks)
    assert len({check['name'] for check in checks}) == len(checks)


def test_oauth2_proxy_checks():
    checks = health_checks('oauth2_proxy', **SETTINGS['oauth2_proxy'])
    assert [check['url'] for check in checks] == [
        'http://10.0.0.5:8081/ping', 'http://10.0.0.5:8081/ready', 'http://10.0.0.5:8081/oauth2/start?rd=%2F',
        'http://10.0.0.5:8081/oauth2/auth', 'https://auth.globus.org/.well-known/openid-configuration']
    assert checks[2]['location_prefix'] == 'https://auth.globus.org/'
    assert checks[2]['location_contains'] == ['redirect_uri=https%3A%2F%2Fmlflow.example.org%2Foauth2%2Fcallback']


def test_external_nginx_checks_use_the_ports_and_callback_codes():
    settings = {**SETTINGS['external_nginx'], 'https_port': 8443, 'http_port': 8088, 'callback_codes': ['400', 403]}
    checks = health_checks('external_nginx', **settings)
    assert checks[0]['url'] == 'https://127.0.0.1:8443/oauth2/start'
    assert checks[1]['expect'] == [400, 403]
    assert checks[-1]['url'] == 'http://127.0.0.1:8088/'
    assert all(check['host'] == 'mlflow.example.org' for check in checks)


def test_missing_and_unknown_settings_are_named():
    with pytest.raises(AnsibleFilterError, match=r"takes the settings url, public_host, version, identity; missing or "
                                                 r"empty: version, identity; unknown: port"):
        health_checks('mlflow', url='http://x:8080', public_host='x', version='', port=8080)


@pytest.mark.parametrize('identity, expect', [(True, [401]), (False, [200])])
def test_mlflow_root_without_a_user_is_401_with_identity_on(identity, expect):
    settings = {**SETTINGS['mlflow'], 'identity': identity}
    root = [check for check in health_checks('mlflow', **settings) if check['url'].endswith(':8080/')]
    assert [check['expect'] for check in root] == [expect]


def _result(check, **answer):
    return dict({'item': check}, **answer)


def test_rows_of_passing_checks():
    checks = health_checks('external_nginx', **SETTINGS['external_nginx'])
    answers = [
        {'status': 302, 'location': 'https://auth.globus.org/v2/oauth2/authorize?client_id=x'},
        {'status': 403},
        {'status': 302, 'location': 'https://mlflow.example.org/oauth2/start?rd=/', 'strict_transport_security': 'x'},
        {'status': 401},
        {'status': 301, 'location': 'https://mlflow.example.org/'},
    ]
    rows = health_rows({'results': [_result(check, **answer) for check, answer in zip(checks, answers)]}, 'nginx1')
    assert [row['ok'] for row in rows] == [True] * 5
    assert rows[2]['expected'] == '302 -> /oauth2/start with strict-transport-security'
    assert rows[0]['got'] == '302 -> https://auth.globus.org/v2/oauth2/authorize?client_id=x'
    assert all(row['pattern'] == '' for row in rows)


@pytest.mark.parametrize('service, index, answer, got, pattern', [
    ('external_nginx', 1, {'status': 502}, '502', '§6 "502 Bad Gateway": nginx cannot reach oauth2-proxy (:8081), MLflow (:8080)'),
    ('external_nginx', 1, {'status': 404}, '404', '§6 "404 on /oauth2/*"'),
    ('external_nginx', 3, {'status': 200}, '200', 'Answered without asking for a session'),
    ('external_nginx', 2, {'status': 302, 'location': 'https://mlflow.example.org/oauth2/start?rd=/'},
     '302 -> https://mlflow.example.org/oauth2/start?rd=/ (no strict-transport-security header)', 'lacks its strict-transport-security'),
    ('external_nginx', 0, {'status': 302, 'location': 'https://evil.example.org/authorize'},
     '302 -> https://evil.example.org/authorize (expected a redirect to https://auth.globus.org...)', 'The redirect goes elsewhere'),
    ('oauth2_proxy', 0, {'status': -1, 'msg': 'Status code was -1: Connection refused'}, 'no answer', 'Nothing answers at http://10.0.0.5:8081/ping'),
    ('oauth2_proxy', 1, {'status': 500}, '500', 'cannot reach its Redis session store'),
    ('oauth2_proxy', 4, {'status': -1, 'msg': 'Request failed: <urlopen error timed out>'}, 'no answer',
     'oauth2-proxy cannot reach its issuer https://auth.globus.org from vm1 (<urlopen error timed out>)'),
    ('mlflow', 1, {'status': 200, 'content': '3.16.1\n'}, "200 (answered '3.16.1')", "answered '3.16.1' where '3.17.2' was expected"),
    ('mlflow', 2, {'status': 403}, '403', 'its --allowed-hosts does not list it'),
])
def test_a_failed_check_names_its_pattern(service, index, answer, got, pattern):
    check = health_checks(service, **SETTINGS[service])[index]
    row = health_rows([_result(check, **answer)], 'vm1')[0]
    assert row['ok'] is False
    assert row['got'] == got
    assert pattern in row['pattern']


def test_a_result_without_status_is_no_answer():
    check = health_checks('mlflow', **SETTINGS['mlflow'])[0]
    row = health_rows([{'item': check, 'failed': True, 'msg': 'bad url'}], 'vm1')[0]
    assert (row['ok'], row['got']) == (False, 'no answer')


def test_health_rows_wants_results():
    with pytest.raises(AnsibleFilterError, match='results of http_checks'):
        health_rows('x', 'vm1')


def _directives(text):
    return [line.split('=', 1) for line in text.splitlines()]


def test_systemd_sandbox_confines_every_unit_alike():
    lines = _directives(systemd_sandbox('oauth2_proxy'))
    assert ['NoNewPrivileges', 'yes'] == lines[0] and ['SystemCallErrorNumber', 'EPERM'] == lines[-1]
    assert ['PrivateUsers', 'yes'] in lines and ['CapabilityBoundingSet', ''] in lines and ['AmbientCapabilities', ''] in lines
    assert not any(key == 'ReadWritePaths' for key, _value in lines)
    assert systemd_sandbox('mlflow') == systemd_sandbox('oauth2_proxy')


def test_systemd_sandbox_adds_the_paths_after_protect_system():
    lines = _directives(systemd_sandbox('mlflow', read_write_paths=['/var/lib/mlflow', '/srv/artifacts']))
    at = lines.index(['ProtectSystem', 'strict'])
    assert lines[at + 1] == ['ReadWritePaths', '/var/lib/mlflow /srv/artifacts']


def test_systemd_sandbox_for_a_privileged_port_keeps_one_capability_and_no_user_namespace():
    lines = _directives(systemd_sandbox('oauth2_proxy', bind_privileged_port=True))
    assert ['CapabilityBoundingSet', 'CAP_NET_BIND_SERVICE'] in lines and ['AmbientCapabilities', 'CAP_NET_BIND_SERVICE'] in lines
    assert not any(key == 'PrivateUsers' for key, _value in lines)


@pytest.mark.parametrize('paths, message', [
    (['relative/dir'], "'relative/dir' is not an absolute path without spaces"),
    (['/var/lib/my data'], "'/var/lib/my data' is not an absolute path without spaces"),
    ('/var/lib/mlflow', "read_write_paths must be a list of paths, got '/var/lib/mlflow'"),
])
def test_systemd_sandbox_refuses_paths_a_unit_cannot_hold(paths, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        systemd_sandbox('mlflow', read_write_paths=paths)


def test_systemd_sandbox_refuses_an_unknown_service_and_a_non_boolean():
    with pytest.raises(AnsibleFilterError, match="unknown service 'redis'"):
        systemd_sandbox('redis')
    with pytest.raises(AnsibleFilterError, match="bind_privileged_port must be true or false, got 'yes'"):
        systemd_sandbox('oauth2_proxy', bind_privileged_port='yes')
