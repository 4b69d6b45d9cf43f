# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: port_conflicts.yml, systemd_quote.yml and systemd_unquotable.yml beside this file.

"""Inventory values that reach a host: the ports of the roles that share it, and systemd command lines.

``port_conflicts`` is the one rule for "the ports on one host": every port in 1-65535, no two of the
roles that run on the host (by its groups) on the same port. ``systemd_quote`` writes values as
arguments of an ``Exec*=`` line; ``systemd_unquotable`` names the values it cannot write, so that a
role's preflight refuses them before any host changes.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.metrics import switched_on
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import (
    EXPORTERS, SERVICES, exporters_in_groups)

# The port variables of each role, by the inventory group that runs it, with the role's default.
GROUP_PORTS: dict[str, dict[str, int]] = {facts['group']: facts['ports'] for facts in SERVICES.values()}


def _port(value: t.Any) -> int | None:
    """The value as a port number, or None when it is not one (bools are not ports)."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if 1 <= number <= 65535 else None


def port_conflicts(own: t.Any, host_vars: t.Any = None, host_groups: t.Any = None) -> list[str]:
    """Problems with the ports of one host, each naming the variables and values: a port out of
    1-65535, or two variables on one port. ``own`` maps the calling role's port variables to the
    values it uses; the other roles of the host (``host_groups``, its ``group_names``) are read from
    ``host_vars`` (``hostvars[inventory_hostname]``), or their defaults. An exporter of the host's
    groups that ``host_vars`` switches on (``oauth2_proxy_metrics``, ``mlflow_site_node_exporter``...)
    has its port checked too."""
    if not isinstance(own, Mapping) or not own:
        raise AnsibleFilterError('port_conflicts expects a dict of port variables and values, got %r' % (own,))
    if host_vars is None:
        host_vars = {}
    if not isinstance(host_vars, Mapping):
        raise AnsibleFilterError('port_conflicts: host_vars must be hostvars[inventory_hostname], got %r' % (host_vars,))
    if host_groups is None:
        host_groups = []
    if isinstance(host_groups, str) or not isinstance(host_groups, (list, tuple)):
        raise AnsibleFilterError('port_conflicts: host_groups must be a list (group_names), got %r' % (host_groups,))
    ports: dict[str, t.Any] = {}
    for group in GROUP_PORTS:
        if group in host_groups:
            for name, default in GROUP_PORTS[group].items():
                value = host_vars.get(name)
                ports[name] = default if value is None else value
    for exporter in exporters_in_groups(host_groups):
        facts = EXPORTERS[exporter]
        if switched_on(host_vars.get(facts['switch'], False)):
            value = host_vars.get(facts['port_var'])
            ports[facts['port_var']] = facts['port'] if value is None else value
    ports.update(own)
    problems = ['%s is %r, not a port number (1-65535)' % (name, value)
                for name, value in ports.items() if _port(value) is None]
    users: dict[int, list[str]] = {}
    for name, value in ports.items():
        number = _port(value)
        if number is not None:
            users.setdefault(number, []).append(name)
    problems += ['%s are all %d on this host: give each its own port' % (' and '.join(names), number)
                 for number, names in users.items() if len(names) > 1]
    return problems


def _words(value: t.Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


def systemd_unquotable(value: t.Any) -> list[str]:
    """The words that no quoting puts on a systemd command line as they are: control characters
    (a line break ends the directive) and the empty word."""
    return [word for word in _words(value)
            if word == '' or any(ord(char) < 32 or ord(char) == 127 for char in word)]


def systemd_quote(value: t.Any) -> str:
    """Each word in double quotes, with backslash and double quote escaped, ``%`` as ``%%``
    (specifiers are expanded inside quotes too) and ``$`` as ``$$`` (so is ``$VAR``); words
    joined by spaces."""
    bad = systemd_unquotable(value)
    if bad:
        raise AnsibleFilterError('systemd_quote: these values cannot be one argument of a systemd command line '
                                 '(empty, or with a line break or another control character): %r' % (bad,))
    quoted = []
    for word in _words(value):
        word = word.replace('\\', '\\\\').replace('"', '\\"').replace('%', '%%').replace('$', '$$')
        quoted.append('"%s"' % word)
    return ' '.join(quoted)


class FilterModule:
    """Inventory values that reach a host."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'port_conflicts': port_conflicts,
            'systemd_quote': systemd_quote,
            'systemd_unquotable': systemd_unquotable,
        }
