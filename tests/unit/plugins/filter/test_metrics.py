# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The stack's exporters (module_utils/service_facts.py, EXPORTERS), the filters that read them, and the
roles that run them: each role's defaults and argument specs carry the exporter's variables with the
facts' defaults, and the port checks count a port only when its exporter is on."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.host_inputs import port_conflicts
from ansible_collections.alcf.mlflow_globus.plugins.filter.metrics import (
    FilterModule, exporter_facts, metrics_listen_address, metrics_targets, switched_on)
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import (
    EXPORTERS, PROMETHEUS_SOURCES_VAR, exporters_in_groups)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def _yaml(*path):
    with open(os.path.join(REPO, *path), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def test_filters_are_registered():
    assert FilterModule().filters() == {
        'exporter_facts': exporter_facts, 'metrics_listen_address': metrics_listen_address,
        'metrics_targets': metrics_targets}


def test_the_contract_of_jobs_and_ports():
    assert {name: (facts['job'], facts['port']) for name, facts in EXPORTERS.items()} == {
        'oauth2_proxy': ('mlflow_globus_oauth2_proxy', 44180),
        'mlflow': ('mlflow_globus_mlflow', 8082),
        'external_nginx': ('mlflow_globus_nginx', 3903),
        'node': ('mlflow_globus_node', 9100),
    }


@pytest.mark.parametrize('name', sorted(EXPORTERS))
def test_each_roles_defaults_and_specs_carry_the_exporters_variables(name):
    """The port default is the fact's, the switch is off by default (the node exporter's follows the
    site's switch), the sources default to the site's Prometheus servers, and every variable is in the
    role's argument specs with the same default."""
    facts = EXPORTERS[name]
    defaults = _yaml('roles', facts['role'], 'defaults', 'main.yml')
    options = _yaml('roles', facts['role'], 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    assert defaults[facts['port_var']] == facts['port']
    switch = facts['switch'] if facts['switch'] in defaults else 'node_exporter_enabled'
    assert defaults[switch] in (False, '{{ %s | default(false) }}' % facts['switch'])
    assert defaults[facts['sources_var']] == '{{ %s | default([]) }}' % PROMETHEUS_SOURCES_VAR
    assert defaults[facts['address_var']] == (
        '{{ ansible_facts | alcf.mlflow_globus.metrics_listen_address }}')
    for variable in (switch, facts['port_var'], facts['sources_var'], facts['address_var']):
        assert options[variable]['default'] == defaults[variable], variable


@pytest.mark.parametrize('name', sorted(EXPORTERS))
def test_each_exporter_has_a_firewall_table_of_its_own(name):
    choices = _yaml('roles', 'service_access', 'meta', 'argument_specs.yml')['argument_specs']['main']['options'][
        'service_access_name']['choices']
    assert EXPORTERS[name]['table'] in choices
    tasks_dir = os.path.join(REPO, 'roles', EXPORTERS[name]['role'], 'tasks')
    text = ''.join(open(os.path.join(tasks_dir, file), encoding='utf-8').read() for file in sorted(os.listdir(tasks_dir)))
    assert 'service_access_name: %s\n' % EXPORTERS[name]['table'] in text


def test_exporter_facts_is_a_named_copy():
    facts = exporter_facts('mlflow')
    assert facts['exporter'] == 'mlflow' and facts['unit'] == 'mlflow-globus-metrics'
    facts['groups'].append('other')
    assert EXPORTERS['mlflow']['groups'] == ['mlflow']


@pytest.mark.parametrize('name', ['nginx', None, 3])
def test_exporter_facts_names_the_exporters(name):
    with pytest.raises(AnsibleFilterError, match='unknown exporter .*; the exporters are oauth2_proxy, mlflow, external_nginx, node'):
        exporter_facts(name)


def test_exporters_in_groups():
    assert exporters_in_groups(['external_nginx']) == ['external_nginx', 'node']
    assert exporters_in_groups(['oauth2_proxy', 'mlflow']) == ['oauth2_proxy', 'mlflow', 'node']
    assert exporters_in_groups(['prometheus']) == []


@pytest.mark.parametrize('value, expected', [
    (True, True), ('true', True), ('yes', True), ('on', True), ('1', True), ('True', True),
    (False, False), ('false', False), ('no', False), ('', False), (None, False), ('0', False),
])
def test_switched_on(value, expected):
    assert switched_on(value) is expected


def test_metrics_listen_address_is_the_default_ipv4_address():
    assert metrics_listen_address({'default_ipv4': {'address': '10.0.0.9'}}) == '10.0.0.9'


@pytest.mark.parametrize('facts', [{}, {'default_ipv4': {}}, {'default_ipv4': {'address': None}}, None, 'x'])
def test_metrics_listen_address_without_one_is_empty(facts):
    # Never an error: Ansible renders the roles' argument specs (this is a default there) also when the
    # exporter is off or the facts were not gathered; the preflight refuses an empty address.
    assert metrics_listen_address(facts) == ''


@pytest.mark.parametrize('role, preflight, variable', [
    ('oauth2_proxy', 'preflight.yml', 'oauth2_proxy_metrics_listen_address'),
    ('mlflow_globus', 'preflight.yml', 'mlflow_globus_metrics_listen_address'),
    ('external_nginx', 'preflight.yml', 'external_nginx_metrics_listen_address'),
    ('node_exporter', 'preflight.yml', 'node_exporter_listen_address'),
])
def test_each_preflight_refuses_an_exporter_without_an_address_or_sources(role, preflight, variable):
    tasks = _yaml('roles', role, 'tasks', preflight)
    checks = [task for task in tasks if variable + ' | length > 0' in task.get('ansible.builtin.assert', {}).get('that', [])]
    assert len(checks) == 1
    assert 'mlflow_site_prometheus_sources' in checks[0]['ansible.builtin.assert']['fail_msg']
    assert variable + ' is empty' in checks[0]['ansible.builtin.assert']['fail_msg']


GROUPS = {'all': ['nginx', 'vm1', 'vm2', 'prom'], 'external_nginx': ['nginx'], 'oauth2_proxy': ['vm1', 'vm2'],
          'mlflow': ['vm1', 'vm2'], 'prometheus': ['prom']}


def test_metrics_targets_lists_the_hosts_whose_exporter_is_on():
    hostvars = {
        'nginx': {'ansible_host': '10.0.0.5', 'external_nginx_metrics': True, 'mlflow_site_node_exporter': 'true',
                  'external_nginx_metrics_listen_address': '192.168.1.5'},
        'vm1': {'ansible_host': '10.0.0.9', 'oauth2_proxy_metrics': True, 'mlflow_globus_metrics': True,
                'mlflow_globus_metrics_port': 9001, 'mlflow_site_node_exporter': True},
        'vm2': {'oauth2_proxy_metrics': 'yes', 'mlflow_globus_metrics': False, 'mlflow_site_node_exporter': True,
                'oauth2_proxy_metrics_listen_address': '0.0.0.0', 'ansible_host': 'fd00::9'},
        'prom': {'mlflow_site_node_exporter': True},
    }
    assert metrics_targets(GROUPS, hostvars) == [
        {'targets': ['10.0.0.9:44180', '[fd00::9]:44180'], 'labels': {'job': 'mlflow_globus_oauth2_proxy'}},
        {'targets': ['10.0.0.9:9001'], 'labels': {'job': 'mlflow_globus_mlflow'}},
        {'targets': ['192.168.1.5:3903'], 'labels': {'job': 'mlflow_globus_nginx'}},
        # The Prometheus host is not a host of the stack; each host once though it is in several groups.
        {'targets': ['10.0.0.9:9100', '[fd00::9]:9100', '10.0.0.5:9100'], 'labels': {'job': 'mlflow_globus_node'}},
    ]


def test_metrics_targets_nothing_on_is_nothing_and_names_serve_as_addresses():
    assert metrics_targets(GROUPS, {}) == []
    assert metrics_targets({'external_nginx': ['web.example.org']}, {'web.example.org': {'external_nginx_metrics': True}}) == [
        {'targets': ['web.example.org:3903'], 'labels': {'job': 'mlflow_globus_nginx'}}]


def test_metrics_targets_wants_the_groups():
    with pytest.raises(AnsibleFilterError, match='expects the inventory'):
        metrics_targets(['vm1'], {})


def test_port_conflicts_counts_an_exporter_only_when_it_is_on():
    groups = ['oauth2_proxy', 'mlflow']
    assert port_conflicts({'mlflow_globus_port': 8080}, {'oauth2_proxy_metrics_port': 8080}, groups) == []
    assert port_conflicts({'mlflow_globus_port': 8080}, {'oauth2_proxy_metrics': True, 'oauth2_proxy_metrics_port': 8080},
                          groups) == ['mlflow_globus_port and oauth2_proxy_metrics_port are all 8080 on this host: '
                                      'give each its own port']
    # The node exporter's default port against MLflow's metrics port, both on.
    assert port_conflicts({'mlflow_globus_port': 8080, 'mlflow_globus_metrics_port': 9100},
                          {'mlflow_site_node_exporter': True, 'mlflow_globus_metrics': True}, groups) == [
        'mlflow_globus_metrics_port and node_exporter_port are all 9100 on this host: give each its own port']
    # An exporter of another group does not count here.
    assert port_conflicts({'mlflow_globus_port': 3903}, {'external_nginx_metrics': True}, groups) == []
