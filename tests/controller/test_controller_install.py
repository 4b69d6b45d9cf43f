# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A controller install that is only a controller install (README, "Using it on real hosts").

In a new virtualenv with nothing but pip: the pinned ansible-core from PyPI (pip's cache, outside the
repository, makes it quick), this collection from its built tarball and its collection dependencies;
then, from a folder outside the checkout with that virtualenv alone on the PATH, `ansible-playbook
--syntax-check` of every playbook as alcf.mlflow_globus.<name> and `ansible-doc` of every role, module
and filter, all from the installed collection. Galaxy cannot be reached here: the dependencies come
from the copies in the test virtualenv's `ansible` package, installed as Galaxy would install them
(a directory source); a controller elsewhere gets them from Galaxy or its Automation Hub.

The playbooks' real runs from an installed collection are tests/e2e/test_awx_runner.py's.
Run with `make controller` (`source .cache/env.sh && pytest tests/controller`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PINS = dict(re.findall(r'^([A-Za-z0-9_.-]+)==(\S+)', open(os.path.join(REPO, 'requirements.txt'), encoding='utf-8').read(),
                       re.MULTILINE))
with open(os.path.join(REPO, 'galaxy.yml'), encoding='utf-8') as _handle:
    GALAXY = yaml.safe_load(_handle)
CACHE = os.environ.get('MLFLOW_GLOBUS_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'alcf-mlflow-globus')
# What a controller installs with pip: ansible-core and what it depends on, nothing of the test harness.
ANSIBLE_CORE_DEPENDENCIES = {'ansible-core', 'jinja2', 'markupsafe', 'pyyaml', 'cryptography', 'cffi', 'pycparser',
                             'packaging', 'resolvelib', 'pip', 'setuptools'}


def _run(argv, env, cwd, timeout=600):
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout)
    assert out.returncode == 0, '%s\n%s\n%s' % (' '.join(argv), out.stdout[-4000:], out.stderr[-4000:])
    return out


class Controller:
    def __init__(self, root):
        self.root = root
        self.venv = os.path.join(root, 'venv')
        self.collections = os.path.join(root, 'collections')  # this collection
        self.dependencies = os.path.join(root, 'dependencies')  # its collection dependencies
        self.work = os.path.join(root, 'work')  # where ansible runs: not the checkout, no ansible.cfg
        self.installed = os.path.join(self.collections, 'ansible_collections', 'alcf', 'mlflow_globus')
        os.makedirs(self.work)
        os.makedirs(os.path.join(root, 'home'))
        self.env = {
            'PATH': os.path.join(self.venv, 'bin') + ':/usr/bin:/bin',
            'HOME': os.path.join(root, 'home'),
            'LANG': 'C.UTF-8',
            'ANSIBLE_COLLECTIONS_PATH': '%s:%s' % (self.collections, self.dependencies),
            'ANSIBLE_NOCOLOR': '1',
            'PIP_CACHE_DIR': os.path.join(CACHE, 'pip'),
            'PIP_DISABLE_PIP_VERSION_CHECK': '1',
        }
        for name in ('PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL', 'PIP_CERT', 'PIP_TRUSTED_HOST', 'REQUESTS_CA_BUNDLE',
                     'SSL_CERT_FILE', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'):
            if name in os.environ:
                self.env[name] = os.environ[name]

    def run(self, *argv, timeout=600):
        return _run(list(argv), self.env, self.work, timeout)

    def bin(self, name):
        return os.path.join(self.venv, 'bin', name)


@pytest.fixture(scope='module')
def controller(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('controller'))
    c = Controller(root)
    # 1. A virtualenv and the pinned ansible-core, with pip.
    _run([sys.executable, '-m', 'venv', c.venv], c.env, c.work)
    c.run(c.bin('pip'), 'install', '--quiet', 'ansible-core==%s' % PINS['ansible-core'])
    # 2. The collection's dependencies (galaxy.yml), as Galaxy would deliver them.
    sources = os.path.join(sysconfig.get_paths()['purelib'], 'ansible_collections')
    deps = [{'name': os.path.join(sources, *name.split('.')), 'type': 'dir'} for name in GALAXY['dependencies']]
    deps.append({'name': os.path.join(sources, 'awx', 'awx'), 'type': 'dir'})  # for playbooks/awx_configure.yml
    with open(os.path.join(root, 'dependencies.yml'), 'w', encoding='utf-8') as handle:
        yaml.safe_dump({'collections': deps}, handle)
    c.run(c.bin('ansible-galaxy'), 'collection', 'install', '-r', os.path.join(root, 'dependencies.yml'), '-p', c.dependencies)
    # 3. The collection from its tarball; --offline: its dependencies must already be there, in versions
    #    galaxy.yml accepts.
    c.run(c.bin('ansible-galaxy'), 'collection', 'build', '--output-path', os.path.join(root, 'build'), REPO)
    tarball = os.path.join(root, 'build', 'alcf-mlflow_globus-%s.tar.gz' % GALAXY['version'])
    c.run(c.bin('ansible-galaxy'), 'collection', 'install', '--offline', tarball, '-p', c.collections)
    return c


def test_the_virtualenv_holds_ansible_core_and_nothing_of_the_test_harness(controller):
    listed = json.loads(controller.run(controller.bin('pip'), 'list', '--format', 'json').stdout)
    names = {p['name'].lower() for p in listed}
    assert names <= ANSIBLE_CORE_DEPENDENCIES, names - ANSIBLE_CORE_DEPENDENCIES
    version = controller.run(controller.bin('ansible'), '--version').stdout
    assert 'ansible [core %s]' % PINS['ansible-core'] in version, version
    assert 'config file = None' in version, version


def test_the_collection_is_the_installed_tarball(controller):
    listed = json.loads(controller.run(controller.bin('ansible-galaxy'), 'collection', 'list', '--format', 'json').stdout)
    found = {path: cols for path, cols in listed.items() if 'alcf.mlflow_globus' in cols}
    assert list(found) == [os.path.join(controller.collections, 'ansible_collections')], found
    assert not os.path.islink(controller.installed)
    assert os.path.isfile(os.path.join(controller.installed, 'MANIFEST.json'))
    assert found[next(iter(found))]['alcf.mlflow_globus']['version'] == GALAXY['version']
    deps = listed.get(os.path.join(controller.dependencies, 'ansible_collections'), {})
    assert set(GALAXY['dependencies']) <= set(deps), deps


def test_collections_requirements_resolve_offline_from_the_checkout(controller, tmp_path):
    """collections/requirements.yml as AWX's project update runs it (in the project's root)."""
    env = dict(controller.env, ANSIBLE_COLLECTIONS_PATH='%s:%s' % (tmp_path, controller.dependencies))
    out = _run([controller.bin('ansible-galaxy'), 'collection', 'install', '--offline', '-r', 'collections/requirements.yml',
                '-p', str(tmp_path)], env, REPO)
    assert "alcf.mlflow_globus:%s was installed successfully" % GALAXY['version'] in out.stdout, out.stdout
    assert os.path.isfile(os.path.join(tmp_path, 'ansible_collections', 'alcf', 'mlflow_globus', 'MANIFEST.json'))


def test_every_playbook_passes_syntax_check_by_its_full_name(controller):
    playbooks = sorted(name[:-4] for name in os.listdir(os.path.join(controller.installed, 'playbooks'))
                       if name.endswith('.yml'))
    assert {'site', 'allowlist', 'healthcheck', 'logs', 'recover', 'permissions', 'awx_configure'} <= set(playbooks)
    for name in playbooks:
        out = controller.run(controller.bin('ansible-playbook'), '--syntax-check', '-i', 'localhost,',
                             'alcf.mlflow_globus.%s' % name)
        assert 'playbook: ' in out.stdout and controller.installed in out.stdout, (name, out.stdout)


def _documented(controller, kind, names):
    out = controller.run(controller.bin('ansible-doc'), '--json', '-t', kind, *['alcf.mlflow_globus.%s' % n for n in names])
    docs = json.loads(out.stdout)
    missing = [n for n in names if not (docs.get('alcf.mlflow_globus.%s' % n) or {}).get('doc')]
    assert not missing, 'ansible-doc -t %s has no documentation for %s: %s' % (kind, missing, out.stderr[-2000:])
    return docs


def test_ansible_doc_of_every_role(controller):
    roles = sorted(os.listdir(os.path.join(controller.installed, 'roles')))
    assert {'oauth2_proxy', 'mlflow_globus', 'external_nginx'} <= set(roles)
    out = controller.run(controller.bin('ansible-doc'), '--json', '-t', 'role', *['alcf.mlflow_globus.%s' % r for r in roles])
    docs = json.loads(out.stdout)
    missing = [r for r in roles if not (docs.get('alcf.mlflow_globus.%s' % r) or {}).get('entry_points', {}).get('main')]
    assert not missing, 'no argument specs (entry point main) for %s' % missing


def test_ansible_doc_of_every_module(controller):
    modules = sorted(n[:-3] for n in os.listdir(os.path.join(controller.installed, 'plugins', 'modules'))
                     if n.endswith('.py') and not n.startswith('_'))
    assert modules
    _documented(controller, 'module', modules)


def test_ansible_doc_of_every_filter(controller):
    # Every name that the filter plugins register, asked of the installed copy with its Python.
    script = ('import importlib, json, pathlib, sys\n'
              'root = pathlib.Path(sys.argv[1]) / "plugins" / "filter"\n'
              'names = set()\n'
              'for f in sorted(root.glob("*.py")):\n'
              '    m = importlib.import_module("ansible_collections.alcf.mlflow_globus.plugins.filter." + f.stem)\n'
              '    if hasattr(m, "FilterModule"):\n'
              '        names |= set(m.FilterModule().filters())\n'
              'print(json.dumps(sorted(names)))\n')
    env = dict(controller.env, PYTHONPATH=controller.collections)
    filters = json.loads(_run([controller.bin('python'), '-c', script, controller.installed], env, controller.work).stdout)
    assert 'email_allowlist' in filters
    _documented(controller, 'filter', filters)
