# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""playbooks/import_env.yml, run for real with ansible-playbook on sample .env files.

Run with `source .cache/env.sh && pytest tests/playbooks` (ansible-playbook on PATH, this checkout
importable as alcf.mlflow_globus through ANSIBLE_COLLECTIONS_PATH or ansible.cfg).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import textwrap

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(REPO, 'playbooks', 'import_env.yml')
FIXTURE = os.path.join(REPO, 'tests', 'playbooks', 'fixtures', 'server.env')

# Every value in the fixture that must never reach the output: the three secrets, and the value
# of the unknown variable (it could be a secret too).
SECRETS = [
    'fake-client-secret-DoNotPrint-1',
    'fake-cookie-secret-DoNotPrint-22',
    'fake-db-password-DoNotPrint-3',
    'fake-unknown-value-DoNotPrint-4',
]


class _Loader(yaml.SafeLoader):
    """YAML as Ansible reads it: `!unsafe` marks a string that is never templated."""


_Loader.add_constructor('!unsafe', lambda loader, node: loader.construct_scalar(node))


def load_yaml(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.load(handle, Loader=_Loader)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def run_ansible(args, json_output=True, cwd=REPO, extra_env=None):
    if shutil.which('ansible-playbook') is None:
        pytest.fail('ansible-playbook is not on PATH: run `source .cache/env.sh` first')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', NO_COLOR='1', ANSIBLE_FORCE_COLOR='0', **(extra_env or {}))
    if json_output:
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.json'
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def adhoc_msg(inventory, host, expression):
    """Evaluate a Jinja ``expression`` for ``host`` of ``inventory``; return the value, not its text."""
    env = {'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1'}
    proc = run_ansible(['ansible', host, '-i', str(inventory), '-m', 'ansible.builtin.debug',
                        '-a', 'msg={{ %s }}' % expression], extra_env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts'][host]['msg']


class Run:
    """One ansible-playbook run of import_env.yml."""

    def __init__(self, env_file, import_env_inventory_dir, *extra, json_output=True, cwd=REPO):
        args = ['ansible-playbook', PLAYBOOK, '-e', 'env_file=%s' % env_file, '-e', 'import_env_inventory_dir=%s' % import_env_inventory_dir]
        self.proc = run_ansible(args + list(extra), json_output=json_output, cwd=cwd)
        self.output = self.proc.stdout + self.proc.stderr
        self.tasks = {}
        if json_output:
            for task in json.loads(self.proc.stdout)['plays'][0]['tasks']:
                self.tasks[task['task']['name']] = task['hosts']['localhost']

    @property
    def rc(self):
        return self.proc.returncode

    @property
    def report(self):
        return next(result['msg'] for name, result in self.tasks.items() if name.startswith('Report what was imported'))

    def failure(self):
        failed = [result['msg'] for result in self.tasks.values() if result.get('failed')]
        assert len(failed) == 1, self.output
        return failed[0]

    def assert_no_secret_in_output(self, secrets=None):
        for secret in SECRETS if secrets is None else secrets:
            assert secret not in self.output
        assert 'DoNotPrint' not in self.output


def write_env(tmp_path, text):
    path = tmp_path / 'server.env'
    path.write_text(textwrap.dedent(text), encoding='utf-8')
    return str(path)


def snapshot(folder):
    """Every file under ``folder``, with its content, mode and modification time."""
    result = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, 'rb') as handle:
                result[os.path.relpath(path, folder)] = (handle.read(), mode(path), os.stat(path).st_mtime_ns)
    return result


@pytest.fixture(scope='module')
def imported(tmp_path_factory):
    """The fixture .env imported once into a new inventory (run from another folder, with a relative path)."""
    base = tmp_path_factory.mktemp('import')
    inventory = base / 'inventories' / 'mysite'
    run = Run(os.path.relpath(FIXTURE, str(base)), 'inventories/mysite', cwd=str(base))
    assert run.rc == 0, run.output
    return run, inventory


def test_main_yml_holds_the_settings(imported):
    _run, inventory = imported
    assert load_yaml(inventory / 'group_vars' / 'all' / 'main.yml') == {
        'mlflow_site_public_host': 'mlflow.example.org',
        'oauth2_proxy_client_id': '0a1b2c3d-test-client-id',
        'oauth2_proxy_client_secret': '{{ vault_oauth2_proxy_client_secret }}',
        'oauth2_proxy_cookie_secret': '{{ vault_oauth2_proxy_cookie_secret }}',
        # Normalized by alcf.mlflow_globus.email_allowlist: lowercased and sorted.
        'oauth2_proxy_allowed_emails': ['huihuo.zheng@example.org', 'turam@example.org', 'venkat@example.org'],
        # The password makes the whole URI a secret.
        'mlflow_globus_backend_store_uri': '{{ vault_mlflow_globus_backend_store_uri }}',
        'mlflow_globus_artifacts_destination': '/srv/mlflow/artifacts',
        'oauth2_proxy_cookie_expire': '168h',
    }


def test_vault_yml_holds_the_secrets_and_only_its_owner_reads_it(imported):
    _run, inventory = imported
    vault = inventory / 'group_vars' / 'all' / 'vault.yml'
    assert load_yaml(vault) == {
        'vault_oauth2_proxy_client_secret': 'fake-client-secret-DoNotPrint-1',
        'vault_oauth2_proxy_cookie_secret': 'fake-cookie-secret-DoNotPrint-22',
        'vault_mlflow_globus_backend_store_uri':
            'postgresql://mlflow:fake-db-password-DoNotPrint-3@db.example.org:5432/mlflow',
    }
    assert mode(vault) == 0o600
    assert 'ansible-vault encrypt %s' % vault in vault.read_text(encoding='utf-8')


def test_hosts_yml_puts_the_vm_and_nginx_in_their_groups(imported):
    _run, inventory = imported
    assert load_yaml(inventory / 'hosts.yml') == {'all': {'children': {
        'external_nginx': {'hosts': {'mlflow.example.org': None}},
        'oauth2_proxy': {'hosts': {'amsc-mlflow.example.org': None}},
        'mlflow': {'hosts': {'amsc-mlflow.example.org': None}},
    }}}


def test_file_modes(imported):
    _run, inventory = imported
    assert mode(inventory / 'group_vars' / 'all' / 'main.yml') == 0o644
    assert mode(inventory / 'group_vars' / 'all' / 'vault.yml') == 0o600
    assert mode(inventory / 'hosts.yml') == 0o644


def test_every_variable_is_accounted_for(imported):
    run, _inventory = imported
    report = run.report
    assert report['not_understood'] == ['OAUTH2_PROXY_BANNER', 'GRAFANA_DASHBOARD_TOKEN']
    assert report['carried_over'] == [
        'PUBLIC_HOST -> mlflow_site_public_host',
        'VM_HOST -> hosts.yml (groups oauth2_proxy and mlflow)',
        'OAUTH2_PROXY_CLIENT_ID -> oauth2_proxy_client_id',
        'OAUTH2_PROXY_CLIENT_SECRET -> oauth2_proxy_client_secret (secret: in vault.yml)',
        'OAUTH2_PROXY_COOKIE_SECRET -> oauth2_proxy_cookie_secret (secret: in vault.yml)',
        'OAUTH2_PROXY_ALLOWED_EMAILS -> oauth2_proxy_allowed_emails',
        'OAUTH2_PROXY_COOKIE_EXPIRE -> oauth2_proxy_cookie_expire',
        'MLFLOW_BACKEND_STORE_URI -> mlflow_globus_backend_store_uri (secret: in vault.yml)',
        'MLFLOW_ARTIFACTS_DESTINATION -> mlflow_globus_artifacts_destination',
    ]
    assert report['same_as_default_not_written'] == [
        'OAUTH2_PROXY_HTTP_ADDRESS', 'OAUTH2_PROXY_OIDC_ISSUER_URL', 'MLFLOW_PORT']
    assert report['derived_not_carried_over'] == [
        'OAUTH2_PROXY_PROVIDER', 'OAUTH2_PROXY_HTTP_ADDRESS', 'OAUTH2_PROXY_REDIRECT_URL']
    assert report['to_review'] == []
    assert report['still_to_set'] == []
    # Every variable of the fixture lands in one of the lists: none is dropped silently.
    named = set(report['not_understood']) | set(report['same_as_default_not_written']) \
        | set(report['derived_not_carried_over']) | {line.split(' ')[0] for line in report['carried_over']}
    assert report['read'].endswith(': 16 variables')
    assert len(named) == 16


def test_unknown_variables_are_listed_in_main_yml_by_name_only(imported):
    _run, inventory = imported
    text = (inventory / 'group_vars' / 'all' / 'main.yml').read_text(encoding='utf-8')
    block = text[text.index('# NOT UNDERSTOOD'):]
    assert '#   OAUTH2_PROXY_BANNER: an oauth2-proxy option (banner)' in block
    assert '#   GRAFANA_DASHBOARD_TOKEN: unknown to this playbook' in block
    assert all(line.startswith('#') for line in block.splitlines())
    assert 'fake-unknown-value' not in text
    assert 'Sign in to MLflow' not in text


def test_no_secret_in_the_output(imported):
    run, _inventory = imported
    run.assert_no_secret_in_output()
    assert run.tasks['Write the secrets (group_vars/all/vault.yml, to be encrypted)'].get('censored')


def test_the_inventory_works_with_ansible(imported):
    """The vault references resolve, and the allowlist passes the collection's own filter."""
    _run, inventory = imported
    assert adhoc_msg(inventory, 'amsc-mlflow.example.org', (
        "oauth2_proxy_client_secret == 'fake-client-secret-DoNotPrint-1'"
        " and oauth2_proxy_cookie_secret == 'fake-cookie-secret-DoNotPrint-22'"
        " and mlflow_globus_backend_store_uri is search('^postgresql://mlflow:fake-db-password-DoNotPrint-3@')"
        " and oauth2_proxy_allowed_emails | alcf.mlflow_globus.email_allowlist | length == 3"
        " and groups['external_nginx'] == ['mlflow.example.org']")) is True


def test_refuses_to_overwrite_and_writes_nothing(imported, tmp_path):
    _run, inventory = imported
    target = tmp_path / 'mysite'
    shutil.copytree(str(inventory), str(target))
    before = snapshot(str(target))
    run = Run(FIXTURE, str(target), json_output=False)
    assert run.rc != 0
    assert 'Nothing was written, because' in run.output
    for name in ('group_vars/all/main.yml', 'group_vars/all/vault.yml', 'hosts.yml'):
        assert str(target / name) in run.output
    assert '-e force=true' in run.output
    assert snapshot(str(target)) == before
    run.assert_no_secret_in_output()


def test_refuses_when_only_one_file_exists(tmp_path):
    target = tmp_path / 'mysite'
    target.mkdir()
    (target / 'hosts.yml').write_text('---\nall: {}\n', encoding='utf-8')
    run = Run(FIXTURE, str(target))
    assert run.rc != 0
    assert run.failure().startswith('Nothing was written, because %s already exists.' % (target / 'hosts.yml'))
    assert sorted(os.listdir(str(target))) == ['hosts.yml']


def test_force_replaces_and_keeps_the_old_files(imported, tmp_path):
    _run, inventory = imported
    target = tmp_path / 'mysite'
    shutil.copytree(str(inventory), str(target))
    main = target / 'group_vars' / 'all' / 'main.yml'
    main.write_text('---\nedited_by_hand: true\n', encoding='utf-8')
    run = Run(FIXTURE, str(target), '-e', 'force=true')
    assert run.rc == 0, run.output
    assert load_yaml(main) == load_yaml(inventory / 'group_vars' / 'all' / 'main.yml')
    backups = [name for name in os.listdir(str(main.parent)) if name.startswith('main.yml.') and name.endswith('~')]
    assert len(backups) == 1
    assert load_yaml(main.parent / backups[0]) == {'edited_by_hand': True}
    # vault.yml changed too (its header names its own path): it and its backup stay private.
    vault_backups = [name for name in os.listdir(str(main.parent)) if name.startswith('vault.yml.')]
    assert len(vault_backups) == 1
    assert mode(main.parent / vault_backups[0]) == 0o600
    assert mode(target / 'group_vars' / 'all' / 'vault.yml') == 0o600
    # hosts.yml was the same, so it was left alone.
    assert sorted(os.listdir(str(target))) == ['group_vars', 'hosts.yml']
    run.assert_no_secret_in_output()


def test_check_mode_writes_nothing(tmp_path):
    run = Run(FIXTURE, str(tmp_path / 'mysite'), '--check')
    assert run.rc == 0, run.output
    assert not (tmp_path / 'mysite').exists()
    assert run.report['written'][0] == 'would write %s' % (tmp_path / 'mysite' / 'group_vars' / 'all' / 'main.yml')
    run.assert_no_secret_in_output()


def test_lines_that_cannot_be_read_are_named_not_quoted(tmp_path):
    env = write_env(tmp_path, """\
        OAUTH2_PROXY_CLIENT_ID=abc
        OAUTH2_PROXY_CLIENT_SECRET="fake-secret-DoNotPrint-5
        fake-secret-DoNotPrint-6
        OAUTH2_PROXY_COOKIE_SECRET=fake-$PART-DoNotPrint-7
        """)
    run = Run(env, str(tmp_path / 'mysite'))
    assert run.rc != 0
    message = run.failure()
    assert 'cannot read 3 lines: line 2: OAUTH2_PROXY_CLIENT_SECRET: the double quote opened here is never closed' in message
    assert 'line 3: not a KEY=VALUE assignment' in message
    assert 'line 4: OAUTH2_PROXY_COOKIE_SECRET: refers to a variable that is not set earlier in this file' in message
    assert not (tmp_path / 'mysite').exists()
    run.assert_no_secret_in_output(['DoNotPrint', 'PART'])


def test_values_that_cannot_be_used_stop_the_import(tmp_path):
    env = write_env(tmp_path, """\
        OAUTH2_PROXY_PORT = abc
        OAUTH2_PROXY_SKIP_JWT_BEARER_TOKENS=maybe
        OAUTH2_PROXY_CLIENT_SECRET=fake-secret-DoNotPrint-8
        """)
    run = Run(env, str(tmp_path / 'mysite'))
    assert run.rc != 0
    assert run.failure().endswith('has values this playbook cannot take: OAUTH2_PROXY_PORT is "abc", not a port, or an '
                                  'address or URL ending in one; OAUTH2_PROXY_SKIP_JWT_BEARER_TOKENS is "maybe", '
                                  'not true or false')
    assert not (tmp_path / 'mysite').exists()
    run.assert_no_secret_in_output(['DoNotPrint'])


def test_a_bad_allowlist_is_named_entry_by_entry(tmp_path):
    env = write_env(tmp_path, "OAUTH2_PROXY_ALLOWED_EMAILS='a@anl.gov, *@anl.gov'\n")
    run = Run(env, str(tmp_path / 'mysite'))
    assert run.rc != 0
    assert "invalid allowlist entry: #2 '*@anl.gov': wildcards are not allowed" in run.failure()
    assert not (tmp_path / 'mysite').exists()


def test_a_sparse_env_gets_placeholders_and_a_list_of_what_is_missing(tmp_path):
    env = write_env(tmp_path, """\
        # Only the allowlist, under the name the seed uses, and a site name under a name of our own.
        OAUTH2_PROXY_ALLOWED_EMAILS=a@example.org
        MY_SITE=https://mlflow.example.org/
        OAUTH2_PROXY_REDIRECT_URL=https://other.example.org/oauth2/callback
        OAUTH2_PROXY_EMAIL_DOMAINS=*
        OAUTH2_PROXY_COOKIE_SECRET='fake{{DoNotPrint}}9'
        OAUTH2_PROXY_COOKIE_NAME=_mlflow
        """)
    inventory = tmp_path / 'mysite'
    run = Run(env, str(inventory), '-e', '{"import_env_aliases": {"MY_SITE": "PUBLIC_HOST"}}')
    assert run.rc == 0, run.output
    report = run.report
    assert report['carried_over'] == [
        'MY_SITE (as PUBLIC_HOST) -> mlflow_site_public_host',
        'OAUTH2_PROXY_COOKIE_SECRET -> oauth2_proxy_cookie_secret (secret: in vault.yml)',
        'OAUTH2_PROXY_ALLOWED_EMAILS -> oauth2_proxy_allowed_emails',
        'OAUTH2_PROXY_COOKIE_NAME -> oauth2_proxy_extra_config.cookie_name',
    ]
    assert report['still_to_set'] == [
        'hosts.yml (groups oauth2_proxy and mlflow) (from VM_HOST or VM_HOSTNAME or MLFLOW_VM_HOST)',
        'oauth2_proxy_client_id (from OAUTH2_PROXY_CLIENT_ID or GLOBUS_CLIENT_ID)',
        'oauth2_proxy_client_secret (from OAUTH2_PROXY_CLIENT_SECRET or GLOBUS_CLIENT_SECRET)',
    ]
    review = '\n'.join(report['to_review'])
    assert 'OAUTH2_PROXY_REDIRECT_URL disagrees with PUBLIC_HOST' in review
    assert 'OAUTH2_PROXY_EMAIL_DOMAINS contains "*", which lets every Globus user in' in review
    main = load_yaml(inventory / 'group_vars' / 'all' / 'main.yml')
    assert 'oauth2_proxy_email_domains' not in main
    assert main['mlflow_site_public_host'] == 'mlflow.example.org'
    assert 'external_nginx_auth_cookie_name' not in main
    assert main['oauth2_proxy_extra_config'] == {'cookie_name': '_mlflow'}
    # A missing client secret becomes the placeholder that site.yml refuses.
    assert load_yaml(inventory / 'group_vars' / 'all' / 'vault.yml') == {
        'vault_oauth2_proxy_cookie_secret': 'fake{{DoNotPrint}}9',
        'vault_oauth2_proxy_client_secret': 'VAULT_PLACEHOLDER',
    }
    # No VM named, so no hosts.yml.
    assert sorted(os.listdir(str(inventory))) == ['group_vars']
    run.assert_no_secret_in_output(['fake{{'])
    # A secret that looks like a template is kept as it is (!unsafe), not templated by Ansible.
    (inventory / 'hosts.yml').write_text('---\nall:\n  hosts:\n    vm.example.org:\n', encoding='utf-8')
    assert adhoc_msg(inventory, 'vm.example.org',
                     "oauth2_proxy_cookie_secret == 'fake' ~ '{{' ~ 'DoNotPrint}}9'") is True


def test_settings_that_weaken_sign_in_are_reported_not_copied(tmp_path):
    env = write_env(tmp_path, """\
        PUBLIC_HOST=mlflow.example.org
        OAUTH2_PROXY_SKIP_AUTH_ROUTES=GET=^/api/
        OAUTH2_PROXY_EXTRA_JWT_ISSUERS=https://other.example.org=mlflow
        OAUTH2_PROXY_PASS_ACCESS_TOKEN=true
        OAUTH2_PROXY_SSL_INSECURE_SKIP_VERIFY=true
        OAUTH2_PROXY_COOKIE_EXPIRE=24h
        OAUTH2_PROXY_COOKIE_REFRESH=1h
        """)
    inventory = tmp_path / 'mysite'
    run = Run(env, str(inventory))
    assert run.rc == 0, run.output
    review = '\n'.join(run.report['to_review'])
    for name in ['OAUTH2_PROXY_SKIP_AUTH_ROUTES', 'OAUTH2_PROXY_EXTRA_JWT_ISSUERS', 'OAUTH2_PROXY_PASS_ACCESS_TOKEN',
                 'OAUTH2_PROXY_SSL_INSECURE_SKIP_VERIFY']:
        assert name + ' is not carried over, the oauth2_proxy role refuses it: ' in review, review
    # The role's own reasons, by option name.
    assert 'skip_auth_routes: lets matching requests through without sign-in' in review, review
    assert 'extra_jwt_issuers: accepts bearer tokens from other issuers' in review, review
    assert 'ssl_insecure_skip_verify: skips TLS certificate checks' in review, review
    assert 'https://other.example.org' not in review, review
    main = load_yaml(inventory / 'group_vars' / 'all' / 'main.yml')
    assert 'oauth2_proxy_extra_config' not in main, main
    # The session lifetimes have variables of their own; 1h is the role's default.
    assert main['oauth2_proxy_cookie_expire'] == '24h'
    assert 'oauth2_proxy_cookie_refresh' not in main


def test_the_inputs_are_required(tmp_path):
    proc = run_ansible(['ansible-playbook', PLAYBOOK, '-e', 'env_file=%s' % FIXTURE])
    assert proc.returncode != 0
    assert 'Give the .env file and the inventory folder to write' in proc.stdout
    run = Run(str(tmp_path / 'missing.env'), str(tmp_path / 'mysite'))
    assert run.rc != 0
    assert 'is not a file' in run.failure()
