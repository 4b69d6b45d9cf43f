# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.service_access import (
    FilterModule, ip_access_list, nginx_co_located, nginx_peers, service_listen_address, service_pool,
    service_upstreams, unresolved_names)


def test_filters_are_registered():
    assert FilterModule().filters() == {
        'nginx_co_located': nginx_co_located, 'service_listen_address': service_listen_address,
        'nginx_peers': nginx_peers, 'service_upstreams': service_upstreams, 'service_pool': service_pool,
        'unresolved_names': unresolved_names,
        'ip_access_list': ip_access_list}


HOSTVARS = {
    'nginx1': {'ansible_host': '10.0.0.5'},
    'nginx2': {},
    'nginx3': {'ansible_host': '10.0.0.5'},
    'vm': {'ansible_host': '10.0.0.9'},
}


@pytest.mark.parametrize('nginx, host, expected', [
    (['nginx1'], 'vm', ['10.0.0.5']),
    (['nginx2'], 'vm', ['nginx2']),
    (['nginx1', 'nginx2', 'nginx3'], 'vm', ['10.0.0.5', 'nginx2']),
    (['vm'], 'vm', ['127.0.0.1']),
    (['vm', 'nginx1'], 'vm', ['127.0.0.1', '10.0.0.5']),
    (['unknown'], 'vm', ['unknown']),
    ([], 'vm', ['127.0.0.1', '::1']),
    (None, 'vm', ['127.0.0.1', '::1']),
])
def test_nginx_peers(nginx, host, expected):
    assert nginx_peers(nginx, HOSTVARS, host) == expected


def test_nginx_peers_wants_a_list():
    with pytest.raises(AnsibleFilterError, match="groups\\['external_nginx'\\]"):
        nginx_peers('nginx1', HOSTVARS, 'vm')


@pytest.mark.parametrize('entries, expected', [
    ([], []),
    (['10.0.0.5', '10.0.0.0/24', '::1', 'fd00::/64', '[fd00::1]'], []),
    (['db.example.org', '10.0.0.5', 'db.example.org', 'mg-demo-nginx'], ['db.example.org', 'mg-demo-nginx']),
])
def test_unresolved_names(entries, expected):
    assert unresolved_names(entries) == expected


GETENT = ('10.89.77.20     STREAM mg-demo-nginx\n10.89.77.20     DGRAM  \n10.89.77.20     RAW    \n'
          'fd00::20        STREAM \n')


@pytest.mark.parametrize('entries, resolved, version, expected', [
    (['10.0.0.5'], None, None, ['10.0.0.5']),
    (['10.0.0.5/32', '10.0.0.5'], None, None, ['10.0.0.5']),
    (['10.0.0.7/24'], None, None, ['10.0.0.0/24']),
    (['::1', '127.0.0.1'], None, None, ['127.0.0.1', '::1']),
    (['[fd00::1]'], None, None, ['fd00::1']),
    (['mg-demo-nginx'], {'mg-demo-nginx': GETENT}, None, ['10.89.77.20', 'fd00::20']),
    (['mg-demo-nginx', '10.89.77.20'], {'mg-demo-nginx': GETENT}, 4, ['10.89.77.20']),
    (['mg-demo-nginx'], {'mg-demo-nginx': GETENT}, 6, ['fd00::20']),
    (['db'], {'db': ['10.0.0.8', 'not-an-address']}, None, ['10.0.0.8']),
    ([], {}, None, []),
])
def test_ip_access_list(entries, resolved, version, expected):
    assert ip_access_list(entries, resolved, version) == expected


@pytest.mark.parametrize('entries, resolved, version, message', [
    (['db.example.org', 'mg-demo-nginx', '10.0.0.5'], {'mg-demo-nginx': ''}, None,
     'did not resolve to any address on the host: db.example.org, mg-demo-nginx'),
    ('10.0.0.5', None, None, 'must be a list'),
    ([''], None, None, 'non-empty strings'),
    ([5], None, None, 'non-empty strings'),
    (['10.0.0.5'], ['10.0.0.5'], None, 'resolved must map'),
    (['10.0.0.5'], None, 5, 'version must be 4 or 6'),
])
def test_ip_access_list_refuses(entries, resolved, version, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ip_access_list(entries, resolved, version)


UPSTREAM_HOSTVARS = {
    'vm1': {'ansible_host': '10.0.0.9'},
    'vm2': {'ansible_host': '10.0.0.10', 'mlflow_globus_port': 9080},
    'vm3': {'mlflow_globus_listen_address': '10.1.0.3', 'ansible_host': '10.0.0.11'},
    'vm4': {'mlflow_globus_listen_address': '0.0.0.0', 'ansible_host': '10.0.0.12'},
    'vm5': {'mlflow_globus_listen_address': '[::]'},
    'vm6': {'ansible_host': '2001:db8::6'},
    'vm7': {'mlflow_globus_listen_address': '[2001:db8::7]'},
    'vm8': {'mlflow_globus_listen_address': '', 'ansible_host': ''},
    'aio': {'mlflow_globus_listen_address': '10.0.0.20'},
}


@pytest.mark.parametrize('hosts, nginx, expected', [
    (['vm1'], 'nginx1', ['10.0.0.9:8080']),
    (['vm1', 'vm2'], 'nginx1', ['10.0.0.9:8080', '10.0.0.10:9080']),
    (['vm3'], 'nginx1', ['10.1.0.3:8080']),  # the inventory's listen address wins over ansible_host
    (['vm4', 'vm5'], 'nginx1', ['10.0.0.12:8080', 'vm5:8080']),  # every address: ansible_host, else the name
    (['vm6', 'vm7'], 'nginx1', ['[2001:db8::6]:8080', '[2001:db8::7]:8080']),
    (['vm8'], 'nginx1', ['vm8:8080']),
    (['aio'], 'aio', ['127.0.0.1:8080']),  # co-located with nginx: loopback, whatever the inventory says
    (['unknown'], 'nginx1', ['unknown:8080']),
    ([], 'nginx1', []),
    (None, 'nginx1', []),
])
def test_service_upstreams(hosts, nginx, expected):
    assert service_upstreams(hosts, UPSTREAM_HOSTVARS, nginx, 'mlflow') == expected


def test_service_upstreams_reads_the_variables_of_the_service_it_is_given():
    assert service_upstreams(['vm2'], UPSTREAM_HOSTVARS, 'nginx1', 'oauth2_proxy') == ['10.0.0.10:8081']


def test_service_pool_names_each_member_by_its_host():
    assert service_pool(['vm1', 'vm2'], UPSTREAM_HOSTVARS, 'nginx1', 'mlflow') == {'ready_path': '/health', 'members': [
        {'host': 'vm1', 'server': '10.0.0.9:8080'}, {'host': 'vm2', 'server': '10.0.0.10:9080'}]}
    assert service_pool(['vm2'], UPSTREAM_HOSTVARS, 'nginx1', 'oauth2_proxy') == {
        'ready_path': '/ready', 'members': [{'host': 'vm2', 'server': '10.0.0.10:8081'}]}


def test_service_pool_of_given_upstreams_names_them_by_address():
    assert service_pool(['vm1'], UPSTREAM_HOSTVARS, 'nginx1', 'mlflow', ['10.9.9.9:80']) == {
        'ready_path': '/health', 'members': [{'host': '10.9.9.9:80', 'server': '10.9.9.9:80'}]}
    with pytest.raises(AnsibleFilterError, match='upstreams must be a list'):
        service_pool(['vm1'], UPSTREAM_HOSTVARS, 'nginx1', 'mlflow', '10.9.9.9:80')


def test_service_upstreams_wants_a_list():
    with pytest.raises(AnsibleFilterError, match="groups\\['mlflow'\\]"):
        service_upstreams('vm1', UPSTREAM_HOSTVARS, 'nginx1', 'mlflow')


def test_service_upstreams_names_the_services_behind_nginx():
    with pytest.raises(AnsibleFilterError, match="'external_nginx' is not a service behind nginx; those are oauth2_proxy, mlflow"):
        service_upstreams(['vm1'], UPSTREAM_HOSTVARS, 'nginx1', 'external_nginx')


GROUPS = {'external_nginx': ['nginx1', 'both'], 'mlflow': ['vm', 'both'], 'oauth2_proxy': ['vm', 'both']}
FACTS = {'default_ipv4': {'address': '10.0.0.9'}}


@pytest.mark.parametrize('host, co_located, address', [
    ('both', True, '127.0.0.1'),
    ('vm', False, '10.0.0.9'),
])
def test_the_co_location_rule(host, co_located, address):
    assert nginx_co_located(host, GROUPS) is co_located
    assert service_listen_address(host, GROUPS, FACTS) == address


def test_co_located_needs_no_address_facts():
    assert service_listen_address('both', GROUPS, {}) == '127.0.0.1'


def test_no_nginx_group_is_never_co_located():
    assert nginx_co_located('vm', {'mlflow': ['vm']}) is False


@pytest.mark.parametrize('facts', [{}, {'default_ipv4': {}}, None])
def test_a_host_without_an_address_is_told_what_to_set(facts):
    with pytest.raises(AnsibleFilterError, match=r'host vm .*no\s+default IPv4 address.*mlflow_globus_listen_address'):
        service_listen_address('vm', GROUPS, facts)


def test_groups_must_be_the_groups():
    with pytest.raises(AnsibleFilterError, match='groups'):
        nginx_co_located('vm', ['vm'])


def test_every_side_of_the_rule_agrees():
    """The listen address, nginx's upstream for the service and the service's view of its peers say
    loopback for the same host, and the host's address otherwise."""
    hostvars = {'both': {}, 'vm': {'ansible_host': '10.0.0.9'}, 'nginx1': {'ansible_host': '10.0.0.5'}}
    for host in ('both', 'vm'):
        listen = service_listen_address(host, GROUPS, FACTS)
        upstream = service_upstreams([host], hostvars, 'both', 'mlflow')[0].rsplit(':', 1)[0]
        assert upstream == listen
        assert ('127.0.0.1' in nginx_peers(GROUPS['external_nginx'], hostvars, host)) is nginx_co_located(host, GROUPS)
