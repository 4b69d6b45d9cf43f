# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: service_facts.yml, host_services.yml, health_checks.yml, health_rows.yml and systemd_sandbox.yml
# beside this file.

"""The service's shared facts (module_utils/service_facts.py) for roles and playbooks.

``service_facts`` and ``host_services`` give a service's role, group, unit, ports, logs and recovery;
``health_checks`` gives its health checks for one host's settings; ``health_rows`` judges what the
checks got and names the checklist's known failure pattern (section 6) for each failure. A role's
verify step and ``playbooks/healthcheck.yml`` run the same list through the same judge.
"""

from __future__ import annotations

import copy
import inspect
import typing as t
from collections.abc import Mapping
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import (
    CHECKS,
    SANDBOX,
    SERVICES,
    services_in_groups,
)


def _known(name: t.Any, what: str) -> str:
    if not isinstance(name, str) or name not in SERVICES:
        raise AnsibleFilterError('%s: unknown service %r; the services are %s' % (what, name, ', '.join(SERVICES)))
    return name


def service_facts(name: t.Any) -> dict[str, t.Any]:
    """The facts of one service (``oauth2_proxy``, ``mlflow``, ``external_nginx``)."""
    return dict(copy.deepcopy(SERVICES[_known(name, 'service_facts')]), service=name)


def host_services(group_names: t.Any) -> list[dict[str, t.Any]]:
    """The facts of each service a host runs, by its groups, in deploy order."""
    if isinstance(group_names, str) or not isinstance(group_names, (list, tuple)):
        raise AnsibleFilterError('host_services expects a list of groups (group_names), got %r' % (group_names,))
    return [service_facts(name) for name in services_in_groups(group_names)]


def health_checks(name: t.Any, **settings: t.Any) -> list[dict[str, t.Any]]:
    """The health checks of one service, for the settings its role passes (each named, none empty)."""
    make = CHECKS[_known(name, 'health_checks')]
    wanted = list(inspect.signature(make).parameters)
    missing = [key for key in wanted if key not in settings or settings[key] in (None, '', [])]
    unknown = [key for key in settings if key not in wanted]
    if missing or unknown:
        raise AnsibleFilterError('health_checks(%r) takes the settings %s; missing or empty: %s; unknown: %s'
                                 % (name, ', '.join(wanted), ', '.join(missing) or 'none', ', '.join(unknown) or 'none'))
    try:
        return make(**{key: settings[key] for key in wanted})
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError('health_checks(%r): a setting has the wrong type: %s (got %r)' % (name, exc, settings))


def systemd_sandbox(name: t.Any, read_write_paths: t.Any = (), bind_privileged_port: t.Any = False) -> str:
    """The [Service] lines of the shared systemd sandbox for one service's unit: the paths it may
    write, and the one capability a port below 1024 needs (which rules out a user namespace)."""
    _known(name, 'systemd_sandbox')
    if isinstance(read_write_paths, str) or not isinstance(read_write_paths, (list, tuple)):
        raise AnsibleFilterError('systemd_sandbox(%r): read_write_paths must be a list of paths, got %r' % (name, read_write_paths))
    for path in read_write_paths:
        if not isinstance(path, str) or not path.startswith('/') or any(c.isspace() for c in path):
            raise AnsibleFilterError('systemd_sandbox(%r): %r is not an absolute path without spaces, so it cannot go on '
                                     "the unit's ReadWritePaths line" % (name, path))
    if not isinstance(bind_privileged_port, bool):
        raise AnsibleFilterError('systemd_sandbox(%r): bind_privileged_port must be true or false, got %r' % (name, bind_privileged_port))
    lines = []
    for key, value in SANDBOX:
        lines.append('%s=%s' % (key, value))
        if key == 'ProtectSystem' and read_write_paths:
            lines.append('ReadWritePaths=%s' % ' '.join(read_write_paths))
        if key == 'DevicePolicy' and not bind_privileged_port:
            lines.append('PrivateUsers=yes')
        if key == 'KeyringMode':
            capabilities = 'CAP_NET_BIND_SERVICE' if bind_privileged_port else ''
            lines += ['CapabilityBoundingSet=' + capabilities, 'AmbientCapabilities=' + capabilities]
    return '\n'.join(lines)


def _location_problem(check: Mapping[str, t.Any], location: str) -> str:
    """Why the redirect's Location does not match the check, or ''."""
    if 'location_prefix' in check and not location.startswith(check['location_prefix']):
        return 'expected a redirect to %s...' % check['location_prefix']
    if 'location_path' in check and urlsplit(location).path != check['location_path']:
        return 'expected a redirect to the path %s' % check['location_path']
    for part in check.get('location_contains', []):
        if part not in location:
            return 'expected %s in the redirect' % part
    return ''


def _expected(check: Mapping[str, t.Any]) -> str:
    text = '/'.join(str(code) for code in check['expect'])
    where = check.get('location_prefix') or check.get('location_path')
    if where:
        text += ' -> %s' % where
    if 'content' in check:
        text += ' "%s"' % check['content']
    if 'header' in check:
        text += ' with %s' % check['header'].replace('_', '-')
    return text


def _pattern(check: Mapping[str, t.Any], status: int, result: Mapping[str, t.Any], host: str) -> str:
    """The checklist's section 6 pattern that matches a failed check."""
    url = check['url']
    if 'issuer' in check:
        reason = str(result.get('msg') or 'status %d' % status).rsplit('Request failed: ', maxsplit=1)[-1]
        return ('oauth2-proxy cannot reach its issuer %s from %s (%s): sign-ins cannot be redeemed, and oauth2-proxy '
                'does not start without it ("failed to discover OIDC configuration" in its journal). Check DNS, '
                'routes, firewalls and proxies from this host to the issuer, then see `playbooks/logs.yml`.'
                % (check['issuer'], host, reason))
    if status == -1:
        return ('Nothing answers at %s: the service is down or listens elsewhere. See `playbooks/logs.yml`, '
                'then `playbooks/recover.yml`.' % url)
    if status == 500 and url.endswith('/ready'):
        return ('oauth2-proxy cannot reach its Redis session store, so no sign-in can complete: check that Redis '
                'runs and that oauth2_proxy_redis_password is its requirepass, then see `playbooks/logs.yml`.')
    if status == 404 and '/oauth2/' in url:
        return ('§6 "404 on /oauth2/*": nginx routes /oauth2/* to MLflow instead of oauth2-proxy. '
                'Re-render the site: `ansible-playbook site.yml --limit %s`.' % host)
    if status == 502:
        upstreams = ', '.join('%s (:%d)' % (facts['name'], next(iter(facts['ports'].values())))
                              for facts in SERVICES.values() if facts['upstream_port'])
        return ('§6 "502 Bad Gateway": nginx cannot reach %s, or an upstream sent too big a header. Run the '
                'VM checks (`playbooks/healthcheck.yml`), then `playbooks/logs.yml` and look for "connect() failed" '
                'or "upstream sent too big header" in nginx\'s error log.' % upstreams)
    if status == 403 and check['name'].startswith('MLflow'):
        return ('MLflow refused the public Host header: its --allowed-hosts does not list it. Re-run site.yml '
                'for %s.' % host)
    if status == 403:
        return ('Refused (403): a sign-in problem (§6 "CSRF cookie not found" / callback failures): retry in '
                'a fresh private window; check the allowlist.')
    if status == 200 and check['expect'][0] in (302, 401):
        return ('Answered without asking for a session: the auth_request check is not in front of this path. '
                'Re-render the nginx site: `ansible-playbook site.yml --limit %s`.' % host)
    if 'content' in check and status in check['expect']:
        return ('%s answered %r where %r was expected: the service runs another release than the inventory pins '
                '(an upgrade not finished, or an old process): run site.yml for %s.'
                % (url, str(result.get('content', '')).strip()[:80], check['content'], host))
    if 'header' in check and status in check['expect'] and check['header'] not in result:
        return ('The answer lacks its %s header: the nginx site is not the one this collection writes. Re-render it: '
                '`ansible-playbook site.yml --limit %s`.' % (check['header'].replace('_', '-'), host))
    if status in check['expect']:
        return ('The redirect goes elsewhere (%s): check the issuer (oauth2_proxy_oidc_issuer_url), the public host '
                'and the redirect URL in the inventory, then run site.yml for %s.'
                % (str(result.get('location') or 'no Location'), host))
    return ('Unexpected answer; see `playbooks/logs.yml` for oauth2-proxy, mlflow-globus and nginx\'s error log.')


def health_rows(results: t.Any, inventory_hostname: str) -> list[dict[str, t.Any]]:
    """One row per check from the results of ``http_checks`` (or a ``uri`` loop) (each with its check as ``item``): check,
    expected, got, ok, and the failure pattern when not ok."""
    if isinstance(results, Mapping):
        results = results.get('results', [])
    if isinstance(results, str) or not isinstance(results, (list, tuple)):
        raise AnsibleFilterError('health_rows expects the results of http_checks (or a uri loop) over the checks, got %r' % (results,))
    rows = []
    for result in results:
        check = result['item']
        status = int(result.get('status', -1) if result.get('status') is not None else -1)
        location = str(result.get('location') or '')
        problems = []
        if status in check['expect']:
            if any(key in check for key in ('location_prefix', 'location_path', 'location_contains')):
                problems.append(_location_problem(check, location))
            if 'content' in check and str(result.get('content', '')).strip() != check['content']:
                problems.append('answered %r' % str(result.get('content', '')).strip()[:80])
            if 'header' in check and check['header'] not in result:
                problems.append('no %s header' % check['header'].replace('_', '-'))
        else:
            problems.append('not an expected code')
        problems = [problem for problem in problems if problem]
        got = 'no answer' if status == -1 else str(status)
        if location:
            got += ' -> %s' % location
        if problems and status in check['expect']:
            got += ' (%s)' % '; '.join(problems)
        ok = not problems
        rows.append({
            'check': check['name'],
            'expected': _expected(check),
            'got': got,
            'ok': ok,
            'pattern': '' if ok else _pattern(check, status, result, inventory_hostname),
        })
    return rows


class FilterModule:
    """The service's shared facts."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'health_checks': health_checks,
            'health_rows': health_rows,
            'host_services': host_services,
            'service_facts': service_facts,
            'systemd_sandbox': systemd_sandbox,
        }
