# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: nginx_peers.yml, service_upstreams.yml, service_pool.yml, ip_access_list.yml and unresolved_names.yml beside this file.

"""Who may talk to the services on a VM: the nginx hosts of the inventory, as addresses.

``nginx_peers`` is the one derivation of "where nginx connects from" (oauth2-proxy's
``trusted_proxy_ips`` default, and the allow lists of both services' units and firewall tables).
``unresolved_names`` and ``ip_access_list`` turn a list of addresses, networks and host names into
the addresses systemd's ``IPAddressAllow=`` and nftables need, with the names resolved on the host
itself (``getent ahosts``), because that is where the connections arrive.
"""

from __future__ import annotations

import ipaddress
import typing as t
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.trust_inputs import every_address
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import (
    LOOPBACK, SERVICES, co_located_with_nginx, listen_address)

_LOOPBACK = [LOOPBACK, '::1']


def _as_network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The entry as a network (an address is a /32 or /128), or None for a host name."""
    text = entry.strip()
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _entries(value: t.Any, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError('%s must be a list of addresses, networks or host names, got %r' % (what, value))
    bad = [item for item in value if not isinstance(item, str) or not item.strip()]
    if bad:
        raise AnsibleFilterError('%s: entries must be non-empty strings, got %r' % (what, bad))
    return [item.strip() for item in value]


def _groups(groups: t.Any, what: str) -> Mapping[str, t.Any]:
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError('%s expects the inventory\'s groups (the variable groups), got %r' % (what, groups))
    return groups


def nginx_co_located(inventory_hostname: t.Any, groups: t.Any) -> bool:
    """Whether this host runs the public nginx too (the co-location rule: then its services listen on
    loopback and need no firewall table)."""
    return co_located_with_nginx(str(inventory_hostname), _groups(groups, 'nginx_co_located'))


def service_listen_address(inventory_hostname: t.Any, groups: t.Any, facts: t.Any) -> str:
    """Where a service on this host listens: loopback when nginx runs here too, else the host's
    default IPv4 address (from its facts)."""
    host = str(inventory_hostname)

    def own_address() -> str:
        address = (facts or {}).get('default_ipv4', {}).get('address') if isinstance(facts, Mapping) else None
        if not address:
            raise AnsibleFilterError(
                'host %s is not an nginx host, so its services listen on its own address, but its facts give no '
                'default IPv4 address (ansible_facts[\'default_ipv4\'] is empty: no default route?). Set the '
                'service\'s listen address in the inventory (oauth2_proxy_listen_address, mlflow_globus_listen_address)'
                % host)
        return str(address)

    return listen_address(host, _groups(groups, 'service_listen_address'), own_address)


def nginx_peers(nginx_hosts: t.Any, hostvars: t.Any, inventory_hostname: str) -> list[str]:
    """Where the nginx hosts connect from, as the inventory says: loopback for this host itself,
    else the host's ``ansible_host`` or its inventory name. No nginx host at all: loopback."""
    if nginx_hosts is None:
        nginx_hosts = []
    if isinstance(nginx_hosts, str) or not isinstance(nginx_hosts, (list, tuple)):
        raise AnsibleFilterError('nginx_peers expects the list of nginx hosts (groups[\'external_nginx\']), got %r'
                                 % (nginx_hosts,))
    peers: list[str] = []
    for host in nginx_hosts:
        if host == inventory_hostname:  # nginx beside the service: the co-location rule
            address = LOOPBACK
        else:
            variables = hostvars[host] if host in hostvars else {}
            address = variables.get('ansible_host') if isinstance(variables, Mapping) else None
            address = str(address).strip() if address else str(host)
        if address not in peers:
            peers.append(address)
    return peers or list(_LOOPBACK)


def service_upstreams(service_hosts: t.Any, hostvars: t.Any, inventory_hostname: str, service: str) -> list[str]:
    """Where nginx reaches a service (``oauth2_proxy`` or ``mlflow``), as "address:port" for each of its
    hosts: 127.0.0.1 for this host (the service listens there when co-located with nginx), else the
    host's <prefix>_listen_address if the inventory gives one that is not every address, else its
    ansible_host, else its name; the port is its <prefix>_port, else the service's default port.
    IPv6 addresses go in brackets."""
    facts = SERVICES.get(service) if isinstance(service, str) else None
    if not facts or not facts['upstream_port']:
        raise AnsibleFilterError('service_upstreams: %r is not a service behind nginx; those are %s'
                                 % (service, ', '.join(name for name, item in SERVICES.items() if item['upstream_port'])))
    prefix, port_var = facts['prefix'], facts['upstream_port']
    default_port = facts['ports'][port_var]
    if service_hosts is None:
        service_hosts = []
    if isinstance(service_hosts, str) or not isinstance(service_hosts, (list, tuple)):
        raise AnsibleFilterError('service_upstreams expects the list of a service\'s hosts (groups[\'mlflow\']), got %r'
                                 % (service_hosts,))
    upstreams = []
    for host in service_hosts:
        variables = hostvars[host] if host in hostvars else {}
        variables = variables if isinstance(variables, Mapping) else {}
        if host == inventory_hostname:  # the service beside nginx: the co-location rule
            address = LOOPBACK
        else:
            address = str(variables.get(prefix + '_listen_address') or '').strip()
            if every_address(address):
                address = str(variables.get('ansible_host') or host).strip()
        if ':' in address and not address.startswith('['):
            address = '[%s]' % address
        upstreams.append('%s:%s' % (address, variables.get(port_var, default_port)))
    return upstreams


def service_pool(service_hosts: t.Any, hostvars: t.Any, inventory_hostname: str, service: str,
                 upstreams: t.Any = None) -> dict[str, t.Any]:
    """A service's pool for nginx_pool: its readiness path and one member per host, each its inventory
    name and ``service_upstreams``' address. Given ``upstreams`` (a site's own list) name themselves."""
    if upstreams:
        if isinstance(upstreams, str) or not isinstance(upstreams, (list, tuple)):
            raise AnsibleFilterError('service_pool: upstreams must be a list of "address:port", got %r' % (upstreams,))
        pairs = [(str(u), str(u)) for u in upstreams]
    else:
        pairs = list(zip(service_hosts or [], service_upstreams(service_hosts, hostvars, inventory_hostname, service)))
    return {'ready_path': SERVICES[service]['ready_path'], 'members': [{'host': h, 'server': s} for h, s in pairs]}


def unresolved_names(entries: t.Any) -> list[str]:
    """The entries that are host names (not addresses or networks), each once, in order."""
    names: list[str] = []
    for entry in _entries(entries, 'unresolved_names'):
        if _as_network(entry) is None and entry not in names:
            names.append(entry)
    return names


def _addresses_of(answer: t.Any) -> list[str]:
    """Addresses from ``getent ahosts`` output (first word of each line) or from a list."""
    if isinstance(answer, str):
        words = [line.split()[0] for line in answer.splitlines() if line.strip()]
    elif isinstance(answer, (list, tuple)):
        words = [str(item).strip() for item in answer]
    else:
        words = []
    return [word for word in words if _as_network(word) is not None]


def ip_access_list(entries: t.Any, resolved: t.Any = None, version: t.Any = None) -> list[str]:
    """Addresses and networks for ``IPAddressAllow=`` / nftables sets, host names replaced by
    their addresses from ``resolved`` (name -> ``getent ahosts`` output or list); each once,
    IPv4 first. ``version`` 4 or 6 keeps one family only."""
    items = _entries(entries, 'ip_access_list')
    if resolved is None:
        resolved = {}
    if not isinstance(resolved, Mapping):
        raise AnsibleFilterError('ip_access_list: resolved must map host names to addresses, got %r' % (resolved,))
    if version not in (None, 4, 6, '4', '6'):
        raise AnsibleFilterError('ip_access_list: version must be 4 or 6, got %r' % (version,))
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    missing: list[str] = []
    for entry in items:
        network = _as_network(entry)
        if network is not None:
            found = [network]
        else:
            found = [t.cast(t.Any, _as_network(address)) for address in _addresses_of(resolved.get(entry))]
            if not found:
                missing.append(entry)
        for net in found:
            if net not in networks:
                networks.append(net)
    if missing:
        raise AnsibleFilterError(
            'these host names did not resolve to any address on the host: %s. Give their addresses instead '
            '(ansible_host in the inventory, or the address in the variable that lists them), or make the names '
            'resolve there (DNS or /etc/hosts)' % ', '.join(missing))
    if version is not None:
        networks = [net for net in networks if net.version == int(version)]
    networks.sort(key=lambda net: net.version)
    return [str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net) for net in networks]


class FilterModule:
    """The services' access lists."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'nginx_co_located': nginx_co_located,
            'service_listen_address': service_listen_address,
            'nginx_peers': nginx_peers,
            'service_upstreams': service_upstreams,
            'service_pool': service_pool,
            'unresolved_names': unresolved_names,
            'ip_access_list': ip_access_list,
        }
