# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter import prometheus_targets
from ansible_collections.alcf.mlflow_globus.plugins.filter.prometheus_targets import FilterModule, prometheus_file_sd
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import EXPORTERS

JOBS = ['mlflow_globus_oauth2_proxy', 'mlflow_globus_mlflow', 'mlflow_globus_nginx', 'mlflow_globus_node']

GROUPS = {
    'all': ['vm1', 'vm2', 'nginx1', 'prom1'],
    'oauth2_proxy': ['vm1', 'vm2'],
    'mlflow': ['vm1', 'vm2'],
    'external_nginx': ['nginx1'],
    'prometheus': ['prom1'],
}


def test_filters_are_registered():
    assert FilterModule().filters() == {'prometheus_file_sd': prometheus_file_sd}


def test_every_job_of_the_exporters_in_their_order():
    assert [facts['job'] for facts in EXPORTERS.values()] == JOBS


def test_nothing_switched_on_gives_every_job_an_empty_list():
    result = prometheus_file_sd(GROUPS, {'vm1': {}, 'vm2': {}, 'nginx1': {}, 'prom1': {}})
    assert result == {job: [] for job in JOBS}
    assert list(result) == JOBS


def test_each_job_gets_its_hosts_with_their_ports():
    hostvars = {
        'vm1': {'ansible_host': '10.0.0.5', 'oauth2_proxy_metrics': True, 'mlflow_globus_metrics': 'yes',
                'mlflow_site_node_exporter': True},
        'vm2': {'ansible_host': '10.0.0.6', 'oauth2_proxy_metrics': True, 'oauth2_proxy_metrics_port': 44181},
        'nginx1': {'ansible_host': '10.0.0.9', 'external_nginx_metrics': True, 'mlflow_site_node_exporter': True},
        'prom1': {'mlflow_site_node_exporter': True},  # not a host of the stack: not a target
    }
    result = prometheus_file_sd(GROUPS, hostvars)
    targets = {job: [target for group in groups for target in group['targets']] for job, groups in result.items()}
    assert targets == {
        'mlflow_globus_oauth2_proxy': ['10.0.0.5:44180', '10.0.0.6:44181'],
        'mlflow_globus_mlflow': ['10.0.0.5:8082'],
        'mlflow_globus_nginx': ['10.0.0.9:3903'],
        'mlflow_globus_node': ['10.0.0.5:9100', '10.0.0.9:9100'],
    }
    for job, groups in result.items():
        assert all(group['labels']['job'] == job for group in groups)


def test_a_group_that_names_no_job_of_the_collection_is_a_bug(monkeypatch):
    monkeypatch.setattr(prometheus_targets, 'metrics_targets',
                        lambda groups, hostvars: [{'targets': ['10.0.0.5:1'], 'labels': {'job': 'elsewhere'}}])
    with pytest.raises(AnsibleFilterError, match="names no scrape job of mlflow_globus_oauth2_proxy"):
        prometheus_file_sd(GROUPS, {})


def test_bad_input_is_named():
    with pytest.raises(AnsibleFilterError, match='groups'):
        prometheus_file_sd(['vm1'], {})
