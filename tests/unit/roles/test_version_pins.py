# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The version pins' one home is the roles' defaults: what else names a version follows them."""

from __future__ import annotations

import os
import re
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _default(role, name):
    with open(os.path.join(REPO, 'roles', role, 'defaults', 'main.yml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)[name]


def test_the_tools_read_the_pins_from_the_roles_defaults():
    script = 'source tools/common.sh; printf "%s %s" "$OAUTH2_PROXY_VERSION" "$MLFLOW_VERSION"'
    env = {key: value for key, value in os.environ.items() if key not in ('OAUTH2_PROXY_VERSION', 'MLFLOW_VERSION')}
    env['MLFLOW_GLOBUS_CACHE'] = os.path.join(REPO, 'tests', 'output', 'tmp-cache')
    printed = subprocess.run(['bash', '-c', script], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    assert printed.stdout == '%s %s' % (_default('oauth2_proxy', 'oauth2_proxy_version'),
                                        _default('mlflow_globus', 'mlflow_globus_version'))


def test_the_controllers_mlflow_client_is_the_pinned_release():
    with open(os.path.join(REPO, 'requirements.txt'), encoding='utf-8') as handle:
        pins = dict(re.findall(r'^([A-Za-z0-9_.-]+)==(\S+)', handle.read(), re.MULTILINE))
    assert pins['mlflow-skinny'] == _default('mlflow_globus', 'mlflow_globus_version')


def test_no_molecule_file_names_a_pinned_version():
    pinned = [_default('oauth2_proxy', 'oauth2_proxy_version'), _default('mlflow_globus', 'mlflow_globus_version')]
    found = []
    for folder, _dirs, files in os.walk(os.path.join(REPO, 'molecule')):
        for name in files:
            with open(os.path.join(folder, name), encoding='utf-8', errors='replace') as handle:
                text = handle.read()
            found += ['%s: %s' % (os.path.relpath(os.path.join(folder, name), REPO), version)
                      for version in pinned if re.search(r'(?<![\d.])%s(?![\d.])' % re.escape(version), text)]
    assert not found


def test_the_wheelhouse_holds_and_is_keyed_by_every_requirement_the_role_installs():
    """A wheelhouse made before a driver was added (or its pin changed) must not be taken for a complete one."""
    with open(os.path.join(REPO, 'tools', 'mlflow-wheelhouse.sh'), encoding='utf-8') as handle:
        script = handle.read()
    download = re.search(r'pip download[^\n]*\\\n([^\n]*)', script).group(1)
    key = re.search(r'^dir=.*$', script, re.MULTILINE).group(0)
    for variable in ('mlflow_globus_postgres_driver', 'mlflow_globus_s3_driver', 'mlflow_globus_prometheus_exporter'):
        assert _default('mlflow_globus', variable)
        shell = re.search(r'^(\w+)=\$\{\1:-\$\(role_default mlflow_globus %s\)\}$' % variable, script, re.MULTILINE)
        assert shell, '%s is not read from the role in tools/mlflow-wheelhouse.sh' % variable
        assert '"$%s"' % shell.group(1) in download, '%s is not downloaded' % variable
        assert '"$%s"' % shell.group(1) in key, '%s is not in the cache key' % variable


def test_the_tools_pin_the_test_worlds_releases():
    script = 'source tools/common.sh; printf "%s %s" "$OAUTH2_PROXY_PREVIOUS_VERSION" "$VERSITYGW_VERSION"'
    env = {key: value for key, value in os.environ.items()
           if key not in ('OAUTH2_PROXY_PREVIOUS_VERSION', 'VERSITYGW_VERSION')}
    env['MLFLOW_GLOBUS_CACHE'] = os.path.join(REPO, 'tests', 'output', 'tmp-cache')
    printed = subprocess.run(['bash', '-c', script], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    previous, versitygw = printed.stdout.split()
    assert re.match(r'^\d+\.\d+\.\d+$', versitygw)
    # The upgrade test starts from an older oauth2-proxy than the role's pin.
    assert _release(previous) < _release(_default('oauth2_proxy', 'oauth2_proxy_version'))


def _release(version):
    return tuple(int(part) for part in version.split('.'))
