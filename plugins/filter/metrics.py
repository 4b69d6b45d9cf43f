# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: exporter_facts.yml, metrics_listen_address.yml and metrics_targets.yml beside this file.

"""The stack's Prometheus exporters (module_utils/service_facts.py, EXPORTERS) for roles and playbooks.

``exporter_facts`` gives one exporter's job, role, groups, switch, port and address variables;
``metrics_listen_address`` is where an exporter listens on a host (its own address, never loopback or
every address: the site's Prometheus is elsewhere); ``metrics_targets`` lists, from the inventory
alone, the scrape targets of every exporter that is on, as Prometheus file_sd groups.
"""

from __future__ import annotations

import copy
import typing as t
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.trust_inputs import every_address
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import EXPORTERS


def _known(name: t.Any, what: str) -> str:
    if not isinstance(name, str) or name not in EXPORTERS:
        raise AnsibleFilterError('%s: unknown exporter %r; the exporters are %s' % (what, name, ', '.join(EXPORTERS)))
    return name


def switched_on(value: t.Any) -> bool:
    """An inventory switch as Ansible's bool filter reads it (true, yes, on, 1); anything else is off."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('true', 'yes', 'on', '1', 'y', 't')


def exporter_facts(name: t.Any) -> dict[str, t.Any]:
    """The facts of one exporter (``oauth2_proxy``, ``mlflow``, ``external_nginx``, ``node``)."""
    return dict(copy.deepcopy(EXPORTERS[_known(name, 'exporter_facts')]), exporter=name)


def metrics_listen_address(facts: t.Any) -> str:
    """The host's default IPv4 address from its facts: where an exporter listens, so that the site's
    Prometheus (on another host) reaches it. '' when the facts have none (not gathered, or no default
    route): the roles' preflight refuses an exporter that is on without an address, naming the variable
    to set. It never fails by itself, because Ansible renders a role's argument specs, defaults included,
    whether the exporter is on or not."""
    address = None
    if isinstance(facts, Mapping):
        default = facts.get('default_ipv4')
        address = default.get('address') if isinstance(default, Mapping) else None
    return str(address) if address else ''


def _address(variables: Mapping[str, t.Any], host: str, facts: Mapping[str, t.Any]) -> str:
    address = str(variables.get(facts['address_var']) or '').strip()
    if not address or every_address(address):
        address = str(variables.get('ansible_host') or host).strip()
    if ':' in address and not address.startswith('['):
        address = '[%s]' % address
    return address


def metrics_targets(groups: t.Any, hostvars: t.Any) -> list[dict[str, t.Any]]:
    """Prometheus file_sd target groups, one per exporter that is on somewhere: ``targets`` as
    "address:port" for each host of the exporter's groups whose switch is on (its
    <exporter>_listen_address if the inventory sets one, else ansible_host, else its name; its port
    variable, else the default) and ``labels`` with the ``job``. From the inventory alone, so that
    ``--limit`` writes the same files."""
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError('metrics_targets expects the inventory\'s groups (the variable groups), got %r' % (groups,))
    if not isinstance(hostvars, Mapping) and not hasattr(hostvars, '__getitem__'):
        raise AnsibleFilterError('metrics_targets expects hostvars, got %r' % (hostvars,))
    result = []
    for name, facts in EXPORTERS.items():
        hosts: list[str] = []
        for group in facts['groups']:
            for host in groups.get(group) or []:
                if host not in hosts:
                    hosts.append(host)
        targets = []
        for host in hosts:
            variables = hostvars[host] if host in hostvars else {}
            variables = variables if isinstance(variables, Mapping) else {}
            if not switched_on(variables.get(facts['switch'], False)):
                continue
            target = '%s:%s' % (_address(variables, host, facts), variables.get(facts['port_var']) or facts['port'])
            if target not in targets:
                targets.append(target)
        if targets:
            result.append({'targets': targets, 'labels': {'job': facts['job']}})
    return result


class FilterModule:
    """The stack's Prometheus exporters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'exporter_facts': exporter_facts,
            'metrics_listen_address': metrics_listen_address,
            'metrics_targets': metrics_targets,
        }
