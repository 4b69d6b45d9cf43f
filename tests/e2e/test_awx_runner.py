"""Every AWX job template (awx/job_templates.yml) run the way AWX runs it, with ansible-runner.

For each job, as AWX prepares it: a private data directory with project/ (the repository's files, as a
project sync checks them out), requirements_collections/ (collections/requirements.yml installed from
the project's root, as the project update does: this collection comes from there, not from the
checkout), inventory/hosts (the inventory as AWX serves it to a job: the output of `ansible-inventory
--list --export` on the inventory source, printed by a script), env/extravars (the template's extra
vars, the survey's answers and AWX's awx_* variables), env/passwords (the vault credential's password,
answered at --ask-vault-pass's prompt), env/envvars and env/cmdline (-u, --ask-vault-pass, --limit,
--diff or --check as the launch asked). The demo's OAuth2 client secret is one vault-encrypted value
in that inventory (as a site's inline-vaulted vault.yml reaches AWX), so a deploy passes only when the
vault password reached ansible-playbook.

Against the split scenario's deployment (inventories/local, containers mg-demo-*) by default; another
inventory with AWX_RUNNER_INVENTORY (a directory or a file), e.g. the all_in_one scenario's:
  molecule create -s all_in_one && molecule converge -s all_in_one
  AWX_RUNNER_INVENTORY=~/.ansible/tmp/molecule.*.all_in_one/inventory pytest tests/e2e/test_awx_runner.py
"""
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sysconfig
import uuid
from unittest import mock

import ansible_runner
import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

REPO = pathlib.Path(__file__).resolve().parents[2]
OUTPUT = REPO / 'tests' / 'output' / 'awx-runner'
TEMPLATES = {t['name']: t for t in yaml.safe_load((REPO / 'awx' / 'job_templates.yml').read_text())['awx_job_templates']}
VAULT_PASSWORD = 'awx-runner-vault-password-for-tests'
# The vault credential without a vault_id: AWX adds --ask-vault-pass and answers this prompt.
VAULT_PROMPT = r'Vault password:\s*?$'
# The machine credential: the test containers are reached as root (no sudo in them), as
# awx_become_enabled: false configures a site whose credential logs in as root.
MACHINE_USER = 'root'
NEW_ADDRESS = 'awx-runner@example.org'


def _inventory_source():
    source = os.environ.get('AWX_RUNNER_INVENTORY') or str(REPO / 'inventories' / 'local')
    path = pathlib.Path(os.path.expanduser(source))
    if not path.exists():
        pytest.fail('AWX_RUNNER_INVENTORY=%s does not exist' % source)
    return path


def _clean_env():
    """The test process's environment without Ansible's and Molecule's settings (this checkout's collections
    path, Molecule's ansible.cfg when the split scenario runs these tests): a job has its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'MOLECULE_'))}


def _run(argv, **kwargs):
    out = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    assert out.returncode == 0, '%s: %s %s' % (' '.join(map(str, argv)), out.stdout[-2000:], out.stderr[-2000:])
    return out


class Site:
    """The inventory as AWX would hold it, and what the tests need to know about its hosts."""

    def __init__(self, source, export):
        self.source, self.export = source, export
        hostvars = export.get('_meta', {}).get('hostvars', {})

        def members(group, seen=()):
            node = export.get(group, {})
            hosts = list(node.get('hosts', []))
            for child in node.get('children', []):
                if child not in seen:
                    hosts += members(child, seen + (group,))
            return sorted(set(hosts))

        self.groups = {name: members(name) for name in export if name != '_meta'}
        self.hosts = sorted(hostvars) or self.groups.get('all', [])
        self.vm = self.groups['oauth2_proxy'][0]
        self.nginx = self.groups['external_nginx'][0]
        self.mlflow = self.groups['mlflow'][0]
        self.allowed = self._var('oauth2_proxy_allowed_emails')

    def _var(self, name):
        """A list of addresses as the inventory sets it for the VM (host, its groups, all): a list or a comma string."""
        for where in [self.export['_meta']['hostvars'].get(self.vm, {})] + [
                self.export.get(g, {}).get('vars', {}) for g in ('oauth2_proxy', 'mlflow', 'all')]:
            if name in where:
                value = where[name]
                return sorted({a.strip().lower() for a in (value.split(',') if isinstance(value, str) else value) if a.strip()})
        pytest.fail('%s sets no %s for %s' % (self.source, name, self.vm))

    def resolve(self, limit):
        """The inventory hosts a --limit of group names and host names (joined by ':') selects."""
        found = set()
        for part in limit.split(':'):
            found.update(self.groups.get(part, [part] if part in self.hosts else []))
        return found


def _encrypt(value):
    vault = VaultLib([('default', VaultSecret(VAULT_PASSWORD.encode()))])
    return {'__ansible_vault': vault.encrypt(value).decode()}


def _vault_the_client_secret(export):
    """Make oauth2_proxy_client_secret an inline-vaulted value wherever the inventory sets it."""
    places = [node.get('vars', {}) for name, node in export.items() if name != '_meta']
    places += list(export.get('_meta', {}).get('hostvars', {}).values())
    vaulted = 0
    for place in places:
        if isinstance(place.get('oauth2_proxy_client_secret'), str):
            place['oauth2_proxy_client_secret'] = _encrypt(place['oauth2_proxy_client_secret'])
            vaulted += 1
    assert vaulted, 'the inventory sets no oauth2_proxy_client_secret to vault'
    return export


@pytest.fixture(scope='session')
def awx_site(awx):
    return awx['site']


@pytest.fixture(scope='session')
def awx(tmp_path_factory):
    """What AWX has before a job: the project synced, its collections installed, the inventory imported."""
    shutil.rmtree(OUTPUT, ignore_errors=True)  # each job's private data directory is kept, of the last run only
    OUTPUT.mkdir(parents=True)
    base = tmp_path_factory.mktemp('awx')
    # The project: the repository's files (tracked and new, not ignored), as a checkout has them.
    project = base / 'project'
    listed = _run(['git', 'ls-files', '--cached', '--others', '--exclude-standard', '-z'], cwd=REPO).stdout.split('\0')
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file() or src.is_symlink():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, project / name, follow_symlinks=False)
    # The execution environment's collections: the dependencies, from the ansible package's copies
    # (no Galaxy here). Then the project update: collections/requirements.yml, from the project root.
    ee_collections = base / 'ee_collections'
    sources = pathlib.Path(sysconfig.get_paths()['purelib']) / 'ansible_collections'
    requirements = yaml.safe_load((project / 'collections' / 'requirements.yml').read_text())['collections']
    seed = [{'name': str(sources.joinpath(*entry['name'].split('.'))), 'type': 'dir'}
            for entry in requirements if entry['name'] != '.']
    (base / 'ee.yml').write_text(yaml.safe_dump({'collections': seed}))
    env = dict(_clean_env(), ANSIBLE_COLLECTIONS_PATH=str(ee_collections))
    _run(['ansible-galaxy', 'collection', 'install', '--force', '-r', str(base / 'ee.yml'), '-p', str(ee_collections)], env=env)
    collections = base / 'requirements_collections'
    env['ANSIBLE_COLLECTIONS_PATH'] = '%s:%s' % (collections, ee_collections)
    _run(['ansible-galaxy', 'collection', 'install', '--offline', '-r', 'collections/requirements.yml', '-p', str(collections)],
         cwd=project, env=env)
    assert (collections / 'ansible_collections' / 'alcf' / 'mlflow_globus' / 'MANIFEST.json').is_file()
    # The inventory update: ansible-inventory --list --export on the source, without a vault password.
    source = _inventory_source()
    export = json.loads(_run(['ansible-inventory', '-i', str(source), '--list', '--export'], cwd=project, env=env).stdout)
    return {'base': base, 'project': project, 'collections': collections, 'ee_collections': ee_collections,
            'site': Site(source, _vault_the_client_secret(export))}


class Job:
    def __init__(self, runner, pdd, template):
        self.runner, self.pdd, self.template = runner, pdd, template
        self.stdout = (pathlib.Path(runner.config.artifact_dir) / 'stdout').read_text()
        self.events = list(runner.events)

    @property
    def stats(self):
        return self.runner.stats or {}

    def hosts(self):
        return set().union(*(set(self.stats.get(k) or {}) for k in ('ok', 'changed', 'failures', 'dark', 'skipped')))

    def changed(self):
        return {h: n for h, n in (self.stats.get('changed') or {}).items() if n}

    def results(self, task):
        return [e['event_data'] for e in self.events
                if e.get('event') in ('runner_on_ok', 'runner_on_failed') and e.get('event_data', {}).get('task') == task]

    def changed_tasks(self):
        return {e['event_data']['task'] for e in self.events
                if e.get('event') in ('runner_on_ok', 'runner_item_on_ok') and e['event_data'].get('res', {}).get('changed')}

    def plays(self):
        return [e['event_data']['play'] for e in self.events if e.get('event') == 'playbook_on_play_start']

    def task_paths(self):
        return {e['event_data'].get('task_path', '').rsplit(':', 1)[0] for e in self.events
                if e.get('event') == 'playbook_on_task_start' and e['event_data'].get('role')}

    def __repr__(self):
        return '%s: %s rc=%s\n%s' % (self.template['name'], self.runner.status, self.runner.rc, self.stdout[-4000:])


def launch(awx, name, survey=None, limit=None, check=False, diff=False, vault_password=VAULT_PASSWORD):
    """Launch the job template `name` as AWX does: one private data directory per job."""
    template = TEMPLATES[name]
    site = awx['site']
    answers = survey or {}
    known = {q['variable'] for q in template.get('survey', [])}
    assert set(answers) <= known, 'not survey variables of %r: %s' % (name, set(answers) - known)
    for question in template.get('survey', []):
        if question['required'] and question['variable'] not in answers:
            assert 'default' in question, 'the survey of %r needs %s' % (name, question['variable'])
            answers[question['variable']] = question['default']
    ident = '%s-%s' % (name.lower().replace(' ', '-').replace('(', '').replace(')', ''), uuid.uuid4().hex[:6])
    pdd = OUTPUT / ident
    shutil.copytree(awx['project'], pdd / 'project', symlinks=True)
    (pdd / 'inventory').mkdir()
    hosts = pdd / 'inventory' / 'hosts'
    hosts.write_text('#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n' % json.dumps(site.export))
    hosts.chmod(0o700)
    (pdd / 'env').mkdir()
    awx_vars = {'awx_job_id': 4242, 'awx_job_launch_type': 'manual', 'awx_job_template_name': name,
                'awx_user_name': 'operator', 'awx_project_revision': 'test', 'awx_inventory_name': 'MLflow Globus production'}
    extravars = dict(awx_vars, **template.get('extra_vars', {}), **answers)
    (pdd / 'env' / 'extravars').write_text(json.dumps(extravars))
    (pdd / 'env' / 'passwords').write_text(json.dumps({VAULT_PROMPT: vault_password}))
    (pdd / 'env' / 'envvars').write_text(json.dumps({
        'ANSIBLE_COLLECTIONS_PATH': '%s:%s' % (awx['collections'], awx['ee_collections']),
        'ANSIBLE_INVENTORY_UNPARSED_FAILED': 'True', 'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False', 'ANSIBLE_NOCOLOR': 'True', 'ANSIBLE_FORCE_COLOR': 'False',
        'JOB_ID': '4242', 'PWD': str(pdd / 'project')}))  # a job's working directory is its project
    (pdd / 'env' / 'settings').write_text(json.dumps({'job_timeout': 900, 'pexpect_timeout': 5, 'suppress_ansible_output': True}))
    cmdline = ['-u', MACHINE_USER, '--ask-vault-pass'] + (['--check'] if check else []) + (['--diff'] if diff else [])
    (pdd / 'env' / 'cmdline').write_text(' '.join(cmdline))
    # ansible-runner starts the job with the test's environment plus env/envvars: that environment, clean.
    with mock.patch.dict(os.environ, _clean_env(), clear=True):
        runner = ansible_runner.run(private_data_dir=str(pdd), playbook=template['playbook'], limit=limit, ident=ident,
                                    quiet=True)
    job = Job(runner, pdd, template)
    # The limit held: no inventory host outside it took part.
    if limit:
        outside = job.hosts() - site.resolve(limit) - {'localhost'}
        assert not outside, 'hosts outside the limit %s ran: %s' % (limit, outside)
    return job


def checksum(host, path):
    out = _run(['podman', 'exec', host, 'sha256sum', path])
    return out.stdout.split()[0]


def allowlist_file(host):
    return _run(['podman', 'exec', host, 'cat', '/etc/oauth2-proxy/authenticated-emails.txt']).stdout


def test_deploy_runs_from_the_installed_collection_with_the_vault_password(awx, awx_site):
    limit = 'external_nginx:oauth2_proxy:mlflow'
    job = launch(awx, 'Deploy MLflow (site)', limit=limit, diff=True)
    assert job.runner.status == 'successful', job
    assert job.hosts() == awx_site.resolve(limit), job.hosts()
    assert not job.changed(), 'a deploy of a deployed site changed %s: %s' % (job.changed(), sorted(job.changed_tasks()))
    # The roles ran from requirements_collections (the project update's install), not from the checkout.
    # (A role's argument check reports the task that includes the role, in the playbook.)
    paths = {p for p in job.task_paths() if '/roles/' in p}
    assert paths and all(p.startswith(str(awx['collections'])) for p in paths), sorted(paths)[:5]


def test_deploy_without_the_vault_password_fails(awx, awx_site):
    job = launch(awx, 'Deploy MLflow (site)', limit=awx_site.vm, check=True, vault_password='not-the-password')
    assert job.runner.status == 'failed', job
    assert 'Decryption failed (no vault secrets were found that could decrypt)' in job.stdout, job


def test_back_up_then_restore_that_backup(awx, awx_site):
    job = launch(awx, 'Back up', survey={'backup_label': 'awx'}, limit=awx_site.mlflow)
    assert job.runner.status == 'successful', job
    where = [r['res']['msg'] for r in job.results('Backup | Where it is')]
    assert len(where) == 1 and where[0].startswith(awx_site.mlflow + ':'), job
    path = where[0].split(':', 1)[1].split()[0]
    assert 'awx' in os.path.basename(path), path
    restore = launch(awx, 'Restore', survey={'restore_path': path}, limit=awx_site.mlflow)
    assert restore.runner.status == 'successful', restore
    assert restore.hosts() == {awx_site.mlflow}


def test_update_allowlist_from_the_survey_and_back_to_the_inventory(awx, awx_site):
    before = allowlist_file(awx_site.vm)
    # One address per line, as an operator types them: case, blank lines and spaces do not matter.
    answer = '\n'.join([a.upper() if i == 0 else '  %s ' % a for i, a in enumerate(awx_site.allowed)] + ['', NEW_ADDRESS, ''])
    job = launch(awx, 'Update allowlist', survey={'allowlist_emails_text': answer}, limit='oauth2_proxy')
    try:
        assert job.runner.status == 'successful', job
        assert 'added:   %s' % NEW_ADDRESS in job.stdout and 'removed: nobody' in job.stdout, job
        assert NEW_ADDRESS in allowlist_file(awx_site.vm).splitlines()
    finally:
        # An empty answer applies the inventory's list again.
        back = launch(awx, 'Update allowlist', survey={'allowlist_emails_text': ''}, limit='oauth2_proxy')
    assert back.runner.status == 'successful', back
    assert 'removed: %s' % NEW_ADDRESS in back.stdout, back
    assert allowlist_file(awx_site.vm) == before


def test_a_bad_address_in_the_survey_fails_with_the_filter_s_message_and_changes_nothing(awx, awx_site):
    before = checksum(awx_site.vm, '/etc/oauth2-proxy/authenticated-emails.txt')
    answer = '\n'.join(awx_site.allowed + ['not-an-email', NEW_ADDRESS])
    job = launch(awx, 'Update allowlist', survey={'allowlist_emails_text': answer}, limit='oauth2_proxy')
    assert job.runner.status == 'failed', job
    bad = len(awx_site.allowed) + 1
    assert "invalid allowlist entry: #%d 'not-an-email': not an email address (needs exactly one '@')" % bad in job.stdout, job
    # It failed in the first play, before the play that writes; the file is byte for byte the same.
    assert job.plays() == ["Check the survey's allowlist before any host changes"], job.plays()
    assert not job.changed()
    assert checksum(awx_site.vm, '/etc/oauth2-proxy/authenticated-emails.txt') == before


def test_health_check(awx, awx_site):
    job = launch(awx, 'Health check', survey={'healthcheck_min_free_percent': 1}, limit=awx_site.vm)
    assert job.runner.status == 'successful', job
    assert job.hosts() == {awx_site.vm}
    assert '>= 1% free' in job.stdout, job
    assert not job.changed()


def test_collect_logs_shows_them_in_the_job_output(awx, awx_site):
    limit = 'oauth2_proxy:mlflow:external_nginx'
    job = launch(awx, 'Collect logs', survey={'logs_lines': 20}, limit=limit)
    assert job.runner.status == 'successful', job
    shown = job.results('Show each log')
    assert {r['host'] for r in shown} == awx_site.resolve(limit), shown
    for result in shown:
        for item in result['res']['results']:
            assert item['msg'][0].startswith(item['item']['item']['file'] + ' ('), item['msg'][:2]
    # Only the controller's triage folder changed, nothing on the hosts.
    assert job.changed_tasks() <= {'Create the triage folder', 'Save each log'}, job.changed_tasks()
    # The files are in the job's project directory too (in AWX: inside the execution environment).
    assert list((job.pdd / 'project' / 'triage').glob('*/%s/*.txt' % awx_site.vm)), job


def test_permissions_in_check_mode_with_diff_change_nothing(awx, awx_site):
    survey = {'grant_user': awx_site.allowed[-1], 'grant_experiment': 'Default', 'grant_permission': 'EDIT',
              'grant_state': 'present'}
    job = launch(awx, 'Permissions', survey=survey, limit='mlflow', check=True, diff=True)
    assert job.runner.status == 'successful', job
    assert '(default) -> EDIT (create)' in job.stdout or 'EDIT -> EDIT (none)' in job.stdout, job


def test_recover_limited_to_the_nginx_host(awx, awx_site):
    job = launch(awx, 'Recover', limit=awx_site.nginx)
    assert job.runner.status == 'successful', job
    assert job.hosts() == {awx_site.nginx}
    assert job.results('Run nginx -t, and reload only if it passes (the role\'s binary, configuration, pid file and unit)')
