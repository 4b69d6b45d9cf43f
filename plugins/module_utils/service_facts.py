# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The service's shared facts, in one place: per service its role, inventory group, systemd unit,
port variables with their defaults, log sources, what recovery does to it, and its health checks
with the codes they expect (the checklist's section 4).

Everything else reads these: the filters (``port_conflicts``, ``service_upstreams``, ``host_services``,
``health_checks``), and through them the roles' defaults and verify steps and the playbooks
``site.yml``, ``healthcheck.yml``, ``recover.yml``, ``logs.yml``. Changing a port default or adding
a health check is one edit here (the roles' ``defaults/main.yml`` are tested against it).
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote

__all__ = ['SERVICES', 'CHECKS', 'SANDBOX', 'LOOPBACK', 'NGINX_GROUP', 'EXPORTERS', 'PROMETHEUS_SOURCES_VAR',
           'TEXTFILE_DIR', 'services_in_groups', 'co_located_with_nginx', 'listen_address', 'exporters_in_groups']

# In the order site.yml deploys them: the VM services first, then the nginx in front of them.
SERVICES: dict[str, dict[str, t.Any]] = {
    'oauth2_proxy': {
        'role': 'oauth2_proxy',
        'group': 'oauth2_proxy',
        # The role's list of health checks (its verify.yml runs it; so does healthcheck.yml).
        'checks_var': '_oauth2_proxy_health_checks',
        'unit': 'oauth2-proxy',
        'name': 'oauth2-proxy',
        'prefix': 'oauth2_proxy',
        'ports': {'oauth2_proxy_port': 8081},
        'upstream_port': 'oauth2_proxy_port',
        # What nginx's host asks a pool member before putting it back (nginx_pool): 200 when it can serve.
        'ready_path': '/ready',
        'recover': 'restart',
        'logs': [{'file': 'oauth2-proxy.journal.txt', 'unit': 'oauth2-proxy'}],
    },
    'mlflow': {
        'role': 'mlflow_globus',
        'group': 'mlflow',
        'checks_var': '_mlflow_globus_health_checks',
        'unit': 'mlflow-globus',
        'name': 'MLflow',
        # The header nginx sets to the signed-in email (from oauth2-proxy's answer), and the only
        # identity MLflow's auth app believes: mlflow_globus_auth.py reads it.
        'identity_header': 'X-Forwarded-Email',
        'prefix': 'mlflow_globus',
        'ports': {'mlflow_globus_port': 8080},
        'upstream_port': 'mlflow_globus_port',
        'ready_path': '/health',
        'recover': 'restart',
        'logs': [{'file': 'mlflow-globus.journal.txt', 'unit': 'mlflow-globus'}],
    },
    'external_nginx': {
        'role': 'external_nginx',
        'group': 'external_nginx',
        'checks_var': '_external_nginx_health_checks',
        'unit': 'nginx',
        'name': 'nginx',
        'prefix': 'external_nginx',
        'ports': {'external_nginx_http_port': 80, 'external_nginx_https_port': 443},
        'upstream_port': None,
        'ready_path': None,
        # Never restarted by recovery: `nginx -t`, then a reload (the role's entry point `reload`).
        'recover': 'reload',
        'logs': [{'file': 'nginx-error.log.txt', 'path': '/var/log/nginx/error.log'}],
    },
}

# The Prometheus exporters of the stack, each off unless the inventory switches it on, in the order of
# SERVICES (then the host's own): the scrape job (its name is the contract with the alert rules of the
# role prometheus_rules), the role that runs it and the groups whose hosts it runs on, its switch, its
# port variable with the default, the variable of the address it listens on (the host's own address,
# where the site's Prometheus reaches it; never loopback, never every address) and the unit that
# serves it. Every exporter's port is dropped by an nftables table of its own (the role
# service_access, table alcf_<table>) for every source but PROMETHEUS_SOURCES_VAR and loopback.
EXPORTERS: dict[str, dict[str, t.Any]] = {
    'oauth2_proxy': {
        'job': 'mlflow_globus_oauth2_proxy',
        'role': 'oauth2_proxy',
        'groups': ['oauth2_proxy'],
        'switch': 'oauth2_proxy_metrics',
        'port_var': 'oauth2_proxy_metrics_port',
        'port': 44180,
        'address_var': 'oauth2_proxy_metrics_listen_address',
        'sources_var': 'oauth2_proxy_metrics_sources',
        'table': 'oauth2_proxy_metrics',
        # oauth2-proxy's own metrics listener (metrics_address), served by the service itself.
        'unit': 'oauth2-proxy',
        'path': '/metrics',
    },
    'mlflow': {
        'job': 'mlflow_globus_mlflow',
        'role': 'mlflow_globus',
        'groups': ['mlflow'],
        'switch': 'mlflow_globus_metrics',
        'port_var': 'mlflow_globus_metrics_port',
        'port': 8082,
        'address_var': 'mlflow_globus_metrics_listen_address',
        'sources_var': 'mlflow_globus_metrics_sources',
        'table': 'mlflow_globus_metrics',
        # A sidecar reads MLflow's multiprocess metrics files (--expose-prometheus): MLflow's own /metrics
        # is on its port, which only the nginx hosts may reach, behind an identity header they set.
        'unit': 'mlflow-globus-metrics',
        'path': '/metrics',
    },
    'external_nginx': {
        'job': 'mlflow_globus_nginx',
        'role': 'external_nginx',
        'groups': ['external_nginx'],
        'switch': 'external_nginx_metrics',
        'port_var': 'external_nginx_metrics_port',
        'port': 3903,
        'address_var': 'external_nginx_metrics_listen_address',
        'sources_var': 'external_nginx_metrics_sources',
        'table': 'external_nginx_metrics',
        # Debian's mtail, reading nginx's access log with the collection's program.
        'unit': 'mtail',
        'path': '/metrics',
    },
    'node': {
        'job': 'mlflow_globus_node',
        'role': 'node_exporter',
        'groups': ['oauth2_proxy', 'mlflow', 'external_nginx'],
        'switch': 'mlflow_site_node_exporter',
        'port_var': 'node_exporter_port',
        'port': 9100,
        'address_var': 'node_exporter_listen_address',
        'sources_var': 'node_exporter_sources',
        'table': 'node_exporter',
        # Debian's prometheus-node-exporter, with the textfile collector over TEXTFILE_DIR.
        'unit': 'prometheus-node-exporter',
        'path': '/metrics',
    },
}

# The inventory's list of the site's Prometheus servers (addresses, networks or names): the only
# sources, besides loopback, that reach an exporter.
PROMETHEUS_SOURCES_VAR = 'mlflow_site_prometheus_sources'

# node exporter's textfile collector (Debian's default): the certificate-expiry timer on the nginx
# hosts and the backup job on the MLflow hosts write their *.prom files here.
TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'

# The systemd sandbox of every service the collection runs (oauth2-proxy, MLflow), in unit-file order:
# no privileges, devices, kernel or foreign namespaces; a read-only file system (the unit names what it
# writes with ReadWritePaths). The filter systemd_sandbox renders it with the unit's own parts.
SANDBOX: list[tuple[str, str]] = [
    ('NoNewPrivileges', 'yes'),
    ('ProtectSystem', 'strict'),
    ('ProtectHome', 'yes'),
    ('PrivateTmp', 'yes'),
    ('PrivateDevices', 'yes'),
    ('DevicePolicy', 'closed'),
    ('PrivateIPC', 'yes'),
    ('ProtectHostname', 'yes'),
    ('ProtectClock', 'yes'),
    ('ProtectKernelTunables', 'yes'),
    ('ProtectKernelModules', 'yes'),
    ('ProtectKernelLogs', 'yes'),
    ('ProtectControlGroups', 'yes'),
    ('ProtectProc', 'invisible'),
    ('ProcSubset', 'pid'),
    ('RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6'),
    ('RestrictNamespaces', 'yes'),
    ('RestrictRealtime', 'yes'),
    ('RestrictSUIDSGID', 'yes'),
    ('RemoveIPC', 'yes'),
    ('LockPersonality', 'yes'),
    ('MemoryDenyWriteExecute', 'yes'),
    ('KeyringMode', 'private'),
    ('SystemCallArchitectures', 'native'),
    ('SystemCallFilter', '@system-service'),
    ('SystemCallFilter', '~@privileged @resources'),
    ('SystemCallErrorNumber', 'EPERM'),
]

# The health checks of each service: the settings each needs (the roles pass them) and a function of
# those settings giving the checks, in order. A check: name, url, expect (codes); optionally host (the
# Host header), location_prefix / location_contains / location_path (where a redirect goes), content
# (the whole body, stripped), header (a response header that must be there), issuer (marks the
# issuer's discovery document, for the failure pattern).


def _oauth2_proxy_checks(url: str, issuer: str, redirect_url: str) -> list[dict[str, t.Any]]:
    issuer = issuer.rstrip('/')
    return [
        {'name': 'oauth2-proxy %s/ping' % url, 'url': url + '/ping', 'expect': [200]},
        # /ready pings the session store too: a stopped Redis or a wrong password fails here.
        {'name': 'oauth2-proxy %s/ready (its session store answers)' % url, 'url': url + '/ready', 'expect': [200]},
        {'name': 'oauth2-proxy %s/oauth2/start goes to the issuer' % url, 'url': url + '/oauth2/start?rd=%2F',
         'expect': [302], 'location_prefix': issuer + '/',
         'location_contains': ['redirect_uri=' + quote(redirect_url, safe='')]},
        {'name': 'oauth2-proxy %s/oauth2/auth (no session)' % url, 'url': url + '/oauth2/auth', 'expect': [401]},
        # oauth2-proxy reads this at start and redeems sign-ins at the issuer: a running oauth2-proxy
        # still answers the checks above when the issuer is out of reach.
        {'name': 'issuer %s discovery, from this host' % issuer,
         'url': issuer + '/.well-known/openid-configuration', 'expect': [200], 'issuer': issuer},
    ]


def _mlflow_checks(url: str, public_host: str, version: str, identity: t.Any) -> list[dict[str, t.Any]]:
    return [
        {'name': 'MLflow %s/health' % url, 'url': url + '/health', 'expect': [200]},
        {'name': 'MLflow %s/version is %s' % (url, version), 'url': url + '/version', 'expect': [200],
         'content': version},
        # MLflow answers a Host its --allowed-hosts does not list with 403; with identity on, a request
        # without nginx's identity header (this one) gets 401 from the auth app.
        {'name': 'MLflow %s/ (Host: %s%s)' % (url, public_host, ', no signed-in user' if identity else ''),
         'url': url + '/', 'host': public_host, 'expect': [401] if identity else [200]},
    ]


def _external_nginx_checks(https_port: t.Any, http_port: t.Any, public_host: str, issuer: str,
                           callback_codes: t.Any) -> list[dict[str, t.Any]]:
    # From the nginx host itself, to 127.0.0.1 with the public Host header (what curl -k --resolve
    # does): they test this nginx whatever DNS says.
    public = 'https://127.0.0.1:%s' % https_port
    return [
        {'name': 'https://%s/oauth2/start goes to the issuer' % public_host, 'url': public + '/oauth2/start',
         'host': public_host, 'expect': [302], 'location_prefix': issuer},
        {'name': 'https://%s/oauth2/callback?code=test&state=test (an error is normal)' % public_host,
         'url': public + '/oauth2/callback?code=test&state=test', 'host': public_host,
         'expect': [int(code) for code in callback_codes]},
        {'name': 'https://%s/ without a session goes to sign-in' % public_host, 'url': public + '/',
         'host': public_host, 'expect': [302], 'location_path': '/oauth2/start', 'location_contains': ['rd=/'],
         'header': 'strict_transport_security'},
        {'name': 'https://%s/api/2.0/mlflow/experiments/search without a session' % public_host,
         'url': public + '/api/2.0/mlflow/experiments/search?max_results=1', 'host': public_host,
         'expect': [401]},
        {'name': 'http://%s/ redirects to https' % public_host, 'url': 'http://127.0.0.1:%s/' % http_port,
         'host': public_host, 'expect': [301], 'location_prefix': 'https://' + public_host},
    ]


CHECKS: dict[str, t.Callable[..., list[dict[str, t.Any]]]] = {
    'oauth2_proxy': _oauth2_proxy_checks,
    'mlflow': _mlflow_checks,
    'external_nginx': _external_nginx_checks,
}


# The co-location rule, written once: a service on a host that also runs the public nginx listens on
# loopback only (nginx reaches it there, nothing outside the host can), so it needs no firewall table
# of its own; a service on a host of its own listens on the host's address, where the nginx hosts
# reach it. The roles' listen-address and firewall defaults and the filters nginx_peers and
# service_upstreams all ask these two functions.
LOOPBACK = '127.0.0.1'
NGINX_GROUP = SERVICES['external_nginx']['group']


def co_located_with_nginx(host: str, groups: t.Mapping[str, t.Any]) -> bool:
    """Whether ``host`` is one of the inventory's nginx hosts (``groups`` is Ansible's ``groups``)."""
    return host in (groups.get(NGINX_GROUP) or [])


def listen_address(host: str, groups: t.Mapping[str, t.Any], own_address: t.Callable[[], str]) -> str:
    """Where a service on ``host`` listens: loopback beside nginx, else ``own_address()`` (called only
    then, so a co-located host needs no address facts)."""
    return LOOPBACK if co_located_with_nginx(host, groups) else own_address()


def services_in_groups(group_names: t.Iterable[str]) -> list[str]:
    """The services whose groups are among ``group_names``, in deploy order."""
    groups = set(group_names)
    return [name for name, facts in SERVICES.items() if facts['group'] in groups]


def exporters_in_groups(group_names: t.Iterable[str]) -> list[str]:
    """The exporters that may run on a host with these groups (on or off), in the order of EXPORTERS."""
    groups = set(group_names)
    return [name for name, facts in EXPORTERS.items() if groups.intersection(facts['groups'])]
