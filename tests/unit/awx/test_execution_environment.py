# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""execution-environment.yml and collections/requirements.yml, checked through ansible-builder.

`ansible-builder create` writes the build context (there is no registry here, so no image is built),
and the context is checked for what the image needs: the collection's tarball and its collection
dependencies, the pinned ansible-core and ansible-runner, and the Containerfile's steps. The builder
stage's own introspection script is then run on the collections installed from that context, which
is what decides the image's Python and system packages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _yaml(path):
    with open(os.path.join(REPO, path), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def _run(argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300, **kwargs)
    assert result.returncode == 0, '%s failed:\n%s\n%s' % (' '.join(argv), result.stdout[-3000:], result.stderr[-3000:])
    return result


def _tool(name):
    path = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        pytest.fail('%s is not installed: run `make setup` (requirements.txt pins it), then `source .cache/env.sh`' % name)
    return path


GALAXY = _yaml('galaxy.yml')
EE = _yaml('execution-environment.yml')
PINS = dict(re.findall(r'^([A-Za-z0-9_.-]+)==(\S+)', open(os.path.join(REPO, 'requirements.txt'), encoding='utf-8').read(),
                       re.MULTILINE))
TARBALL = 'alcf-mlflow_globus-%s.tar.gz' % GALAXY['version']


def _environment():
    """ansible-galaxy and the builder's scripts as a user runs them: no checkout on the collections path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    env.update(ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    return env


@pytest.fixture(scope='module')
def context(tmp_path_factory):
    """The build context of execution-environment.yml, next to a freshly built tarball."""
    work = tmp_path_factory.mktemp('ee')
    _run([_tool('ansible-galaxy'), 'collection', 'build', '--force', '--output-path', str(work / 'build'), REPO],
         env=_environment())
    shutil.copy(os.path.join(REPO, 'execution-environment.yml'), work)
    _run([_tool('ansible-builder'), 'create', '-f', str(work / 'execution-environment.yml'), '-c', str(work / 'context'),
          '--output-filename', 'Containerfile'], cwd=work, env=_environment())
    return work / 'context'


def test_the_versions_are_the_ones_the_tests_pin():
    deps = EE['dependencies']
    assert EE['version'] == 3
    assert deps['ansible_core']['package_pip'] == 'ansible-core==%s' % PINS['ansible-core']
    assert deps['ansible_runner']['package_pip'] == 'ansible-runner==%s' % PINS['ansible-runner']
    assert EE['additional_build_files'][0]['src'] == 'build/%s' % TARBALL


def test_the_requirements_name_this_collection_and_its_dependencies_alike():
    project = _yaml('collections/requirements.yml')['collections']
    image = EE['dependencies']['galaxy']['collections']
    # AWX installs the collection from the project's own checkout, the image from the built tarball.
    assert project[0] == {'name': '.', 'type': 'dir'}
    assert image[0] == {'name': '/build/collections/%s' % TARBALL, 'type': 'file'}
    assert project[1:] == image[1:]
    named = {entry['name']: entry['version'] for entry in project[1:]}
    assert GALAXY['dependencies'] == {name: named[name] for name in GALAXY['dependencies']}
    # awx.awx serves playbooks/awx_configure.yml only; it is not a dependency of the collection.
    assert set(named) - set(GALAXY['dependencies']) == {'awx.awx'}


def test_the_context_holds_the_collection_and_its_requirements(context):
    build = context / '_build'
    with tarfile.open(build / 'collections' / TARBALL) as tarball:
        manifest = json.load(tarball.extractfile('MANIFEST.json'))['collection_info']
        names = tarball.getnames()
    assert (manifest['namespace'], manifest['name'], manifest['version']) == ('alcf', 'mlflow_globus', GALAXY['version'])
    assert 'playbooks/awx_configure.yml' in names and 'awx/job_templates.yml' in names
    assert 'meta/execution-environment.yml' in names and 'meta/ee-bindep.txt' in names
    assert not [n for n in names if n.startswith(('collections/', 'tests/unit', 'molecule/', 'inventories/'))]
    with open(build / 'requirements.yml', encoding='utf-8') as handle:
        assert yaml.safe_load(handle) == EE['dependencies']['galaxy']
    assert (build / 'exclude-requirements.txt').read_text().split() == ['pytest', 'pytest-mock']
    scripts = {'assemble', 'check_ansible', 'check_galaxy', 'entrypoint', 'install-from-bindep', 'introspect.py', 'pip_install'}
    assert {p.name for p in (build / 'scripts').iterdir()} >= scripts


def test_the_containerfile_installs_in_order(context):
    text = (context / 'Containerfile').read_text()
    wanted = [
        'ARG EE_BASE_IMAGE="%s"' % EE['images']['base_image']['name'],
        'ARG PYCMD="/usr/bin/python3.11"',
        'ARG ANSIBLE_INSTALL_REFS="ansible-core==%s ansible-runner==%s"' % (PINS['ansible-core'], PINS['ansible-runner']),
        'RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS',
        'FROM base AS galaxy',
        'COPY _build/collections/ /build/collections/',
        'RUN /output/scripts/check_galaxy',
        'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml '
        '--collections-path "/usr/share/ansible/collections"',
        'FROM base AS builder',
        'RUN $PYCMD /output/scripts/introspect.py introspect --exclude-pip-reqs=exclude-requirements.txt',
        'RUN /output/scripts/assemble',
        'FROM base AS final',
        'RUN /output/scripts/check_ansible $PYCMD',
        'COPY --from=galaxy /usr/share/ansible /usr/share/ansible',
        'RUN /output/scripts/install-from-bindep',
        'LABEL ansible-execution-environment=true',
    ]
    at = 0
    for line in wanted:
        found = text.find(line, at)
        assert found >= 0, 'not found after the previous step: %s\n%s' % (line, text)
        at = found + len(line)


def test_introspection_finds_what_the_image_installs(context, tmp_path):
    """The builder stage's introspect.py, on the collections as the galaxy stage installs them."""
    build = context / '_build'
    sources = os.path.join(sysconfig.get_paths()['purelib'], 'ansible_collections')  # the ansible package's
    requirements = [{'name': str(build / 'collections' / TARBALL), 'type': 'file'}]
    for entry in EE['dependencies']['galaxy']['collections'][1:]:
        path = os.path.join(sources, *entry['name'].split('.'))
        assert os.path.isdir(path), '%s is not in the ansible package of this venv (%s)' % (entry['name'], sources)
        # Galaxy cannot be reached here: the dependencies come from the ansible package's copies.
        requirements.append({'name': path, 'type': 'dir'})
    (tmp_path / 'requirements.yml').write_text(yaml.safe_dump({'collections': requirements}))
    installed = tmp_path / 'collections'
    # --force: the ansible package's copies on sys.path would count as installed already.
    _run([_tool('ansible-galaxy'), 'collection', 'install', '--force', '-r', str(tmp_path / 'requirements.yml'),
          '-p', str(installed)],
         env=dict(_environment(), ANSIBLE_COLLECTIONS_PATH=str(installed)))
    _run([sys.executable, str(build / 'scripts' / 'introspect.py'), 'introspect', str(installed),
          '--exclude-pip-reqs=%s' % (build / 'exclude-requirements.txt'),
          '--write-pip=%s' % (tmp_path / 'requirements.txt'), '--write-bindep=%s' % (tmp_path / 'bindep.txt')],
         env=_environment())
    pip = (tmp_path / 'requirements.txt').read_text()
    bindep = (tmp_path / 'bindep.txt').read_text()
    # The dependencies' run-time needs, each from its collection; the test-only ones left out.
    assert re.search(r'^psycopg2-binary\b.*# from collection community\.postgresql', pip, re.M), pip
    assert re.search(r'^awxkit\b.*# from collection awx\.awx', pip, re.M), pip
    assert not re.search(r'^pytest', pip, re.M), pip
    # This collection adds system packages (tar, gzip, ssh on the controller) and no Python package.
    assert 'alcf.mlflow_globus' not in pip, pip
    for package in ('tar', 'gzip', 'openssh-clients'):
        assert re.search(r'^%s \[platform:rpm.*# from collection alcf\.mlflow_globus' % package, bindep, re.M), bindep
