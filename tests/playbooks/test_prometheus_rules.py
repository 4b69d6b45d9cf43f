# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""site.yml's last play, the role prometheus_rules, run for real with ansible-playbook on this machine
(a local connection, its paths under a temporary directory) against a real Prometheus: Debian's binary,
unpacked by tools/promtool.sh, started here on a free port with the role's scrape config snippet.

Check mode writes nothing; a run writes the rules and one file_sd file per job from the inventory; a
second run changes nothing; promtool's refusal keeps the installed rules; Prometheus evaluates every
rule and finds every target; the verify step names what a Prometheus without the snippet lacks.

Run with `source .cache/env.sh && pytest tests/playbooks` (ansible-playbook on PATH; MLFLOW_GLOBUS_PROMTOOL
and MLFLOW_GLOBUS_PROMETHEUS from tools/setup.sh). Writes files as root, as the role does.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITE = os.path.join(REPO, 'site.yml')
FILES = os.path.join(REPO, 'roles', 'prometheus_rules', 'files')
RULES = os.path.join(FILES, 'mlflow-globus.rules.yml')
JOBS = ['mlflow_globus_oauth2_proxy', 'mlflow_globus_mlflow', 'mlflow_globus_nginx', 'mlflow_globus_node']


def _tool(variable, name):
    path = os.environ.get(variable) or shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        pytest.fail('%s is missing (%s=%r): run tools/setup.sh (tools/promtool.sh unpacks Debian\'s prometheus '
                    'package into the cache), then `source .cache/env.sh`' % (name, variable, os.environ.get(variable)))
    return path


@pytest.fixture(scope='module')
def promtool():
    return _tool('MLFLOW_GLOBUS_PROMTOOL', 'promtool')


@pytest.fixture(scope='module')
def site(tmp_path_factory, promtool):
    """An inventory: this machine as the Prometheus server, and a stack whose exporters are partly on."""
    root = tmp_path_factory.mktemp('prometheus')
    inventory = {'all': {'children': {
        'prometheus': {'hosts': {'prom1': {
            'ansible_connection': 'local',
            'ansible_python_interpreter': sys.executable,
            'prometheus_rules_dir': str(root / 'etc' / 'rules'),
            'prometheus_rules_file_sd_dir': str(root / 'etc' / 'file_sd'),
            'prometheus_rules_promtool': promtool,
            'prometheus_rules_reload': False,  # no systemd here: the test's Prometheus is reloaded by hand
            'prometheus_rules_verify': False,
        }}},
        'oauth2_proxy': {'hosts': {
            'vm1': {'ansible_host': '10.0.0.5', 'oauth2_proxy_metrics': True, 'mlflow_site_node_exporter': True},
            'vm2': {'ansible_host': '10.0.0.6'},  # every exporter off
        }},
        'mlflow': {'hosts': {'vm1': {'mlflow_globus_metrics': True}, 'vm2': {}}},
        'external_nginx': {'hosts': {'nginx1': {'ansible_host': '10.0.0.9', 'external_nginx_metrics': True,
                                                'external_nginx_metrics_port': 3904,
                                                'mlflow_site_node_exporter': True}}},
    }}}
    (root / 'hosts.yml').write_text(yaml.safe_dump(inventory), encoding='utf-8')
    return root


def run_site(site, *extra):
    """site.yml limited to the Prometheus host: the first play's preflight, then the last play."""
    if shutil.which('ansible-playbook') is None:
        pytest.fail('ansible-playbook is not on PATH: run `source .cache/env.sh` first')
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', NO_COLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json')
    proc = subprocess.run(['ansible-playbook', SITE, '-i', str(site / 'hosts.yml'), '--limit', 'prom1', *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {}
    result['rc'], result['output'] = proc.returncode, proc.stdout + proc.stderr
    # The tasks that ran or were skipped (a handler appears only when notified), without the role's prefix.
    result['tasks'] = [task['task']['name'].split(' : ', 1)[-1] for play in result.get('plays', []) for task in play['tasks']]
    return result


def changed(result):
    return result['stats']['prom1']['changed']


def failure(result):
    """What the failed tasks said: their messages and their commands' output."""
    messages = [str(host.get(key, '')) for play in result.get('plays', []) for task in play['tasks']
                for host in task['hosts'].values() if host.get('failed') for key in ('msg', 'stderr', 'stdout')]
    return ' '.join(message for message in messages if message) or result['output']


def test_check_mode_writes_nothing(site):
    result = run_site(site, '--check', '--diff')
    assert result['rc'] == 0, result['output']
    assert changed(result) > 0
    assert not (site / 'etc').exists()


def test_a_run_installs_the_rules_and_one_target_file_per_job(site):
    result = run_site(site)
    assert result['rc'] == 0, result['output']
    assert 'Reload Prometheus' in result['tasks']  # notified (and off here)
    installed = site / 'etc' / 'rules' / 'mlflow-globus.rules.yml'
    with open(RULES, encoding='utf-8') as handle:
        assert installed.read_text(encoding='utf-8') == handle.read()
    assert oct(installed.stat().st_mode & 0o777) == '0o644'
    files = {path.name: json.loads(path.read_text(encoding='utf-8')) for path in (site / 'etc' / 'file_sd').iterdir()}
    assert files == {
        'mlflow_globus_oauth2_proxy.json': [{'targets': ['10.0.0.5:44180'], 'labels': {'job': 'mlflow_globus_oauth2_proxy'}}],
        'mlflow_globus_mlflow.json': [{'targets': ['10.0.0.5:8082'], 'labels': {'job': 'mlflow_globus_mlflow'}}],
        'mlflow_globus_nginx.json': [{'targets': ['10.0.0.9:3904'], 'labels': {'job': 'mlflow_globus_nginx'}}],
        'mlflow_globus_node.json': [{'targets': ['10.0.0.5:9100', '10.0.0.9:9100'], 'labels': {'job': 'mlflow_globus_node'}}],
    }


def test_a_second_run_changes_nothing_and_reloads_nothing(site):
    result = run_site(site)
    assert result['rc'] == 0, result['output']
    assert changed(result) == 0
    assert 'Reload Prometheus' not in result['tasks']


def test_rules_that_promtool_refuses_are_never_installed(site):
    installed = site / 'etc' / 'rules' / 'mlflow-globus.rules.yml'
    edited = installed.read_text(encoding='utf-8') + '# a local edit the next run replaces\n'
    installed.write_text(edited, encoding='utf-8')
    refusing = site / 'promtool-refusing'
    refusing.write_text('#!/bin/sh\necho "  FAILED: $3: a rule that promtool refuses" >&2\nexit 1\n', encoding='utf-8')
    refusing.chmod(0o755)

    result = run_site(site, '-e', 'prometheus_rules_promtool=%s' % refusing)
    assert result['rc'] != 0
    assert 'a rule that promtool refuses' in failure(result)
    assert 'Reload Prometheus' not in result['tasks']
    assert installed.read_text(encoding='utf-8') == edited

    result = run_site(site)  # the real promtool: the shipped rules go back, and Prometheus would reload
    assert result['rc'] == 0, result['output']
    assert 'Reload Prometheus' in result['tasks']
    with open(RULES, encoding='utf-8') as handle:
        assert installed.read_text(encoding='utf-8') == handle.read()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _api(url, path):
    with urllib.request.urlopen(url + path, timeout=5) as answer:  # nosec - a local test server
        return json.load(answer)


@pytest.fixture
def prometheus(site, tmp_path):
    """Start Debian's prometheus with the role's snippet (its paths moved under the test's directory),
    without some of its keys if asked; yields its URL."""
    binary = _tool('MLFLOW_GLOBUS_PROMETHEUS', 'prometheus')
    processes = []

    def start(without=()):
        with open(os.path.join(FILES, 'scrape_configs.example.yml'), encoding='utf-8') as handle:
            text = handle.read()
        text = text.replace('/etc/prometheus/rules', str(site / 'etc' / 'rules'))
        text = text.replace('/etc/prometheus/file_sd', str(site / 'etc' / 'file_sd'))
        config = yaml.safe_load(text)
        for key in without:
            del config[key]
        config['global'] = {'scrape_interval': '1m', 'evaluation_interval': '1s'}
        (tmp_path / 'prometheus.yml').write_text(yaml.safe_dump(config), encoding='utf-8')
        port = _free_port()
        log = open(tmp_path / 'prometheus.log', 'w', encoding='utf-8')  # pylint: disable=consider-using-with
        processes.append(subprocess.Popen(  # pylint: disable=consider-using-with
            [binary, '--config.file=%s' % (tmp_path / 'prometheus.yml'), '--storage.tsdb.path=%s' % (tmp_path / 'data'),
             '--web.listen-address=127.0.0.1:%d' % port], stdout=log, stderr=subprocess.STDOUT))
        url = 'http://127.0.0.1:%d' % port
        for _attempt in range(60):
            try:
                if urllib.request.urlopen(url + '/-/ready', timeout=2).status == 200:  # nosec - a local test server
                    return url
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail('the test\'s Prometheus did not start: %s' % (tmp_path / 'prometheus.log').read_text(encoding='utf-8'))
        return None

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def test_prometheus_evaluates_every_rule_and_finds_every_target(site, prometheus):
    url = prometheus()
    result = run_site(site, '-e', 'prometheus_rules_verify=true', '-e', 'prometheus_rules_url=%s' % url)
    assert result['rc'] == 0, failure(result)
    assert changed(result) == 0

    with open(RULES, encoding='utf-8') as handle:
        shipped = yaml.safe_load(handle)
    groups = _api(url, '/api/v1/rules?type=alert')['data']['groups']
    assert {(group['name'], rule['name']) for group in groups for rule in group['rules']} == {
        (group['name'], rule['alert']) for group in shipped['groups'] for rule in group['rules']}
    assert all(rule['health'] != 'err' for group in groups for rule in group['rules'])
    targets = _api(url, '/api/v1/targets?state=active')['data']['activeTargets']
    assert sorted((target['labels']['job'], target['labels']['instance']) for target in targets) == [
        ('mlflow_globus_mlflow', '10.0.0.5:8082'), ('mlflow_globus_nginx', '10.0.0.9:3904'),
        ('mlflow_globus_node', '10.0.0.5:9100'), ('mlflow_globus_node', '10.0.0.9:9100'),
        ('mlflow_globus_oauth2_proxy', '10.0.0.5:44180')]


@pytest.mark.parametrize('without, named', [
    (['rule_files'], 'does not evaluate the rule groups mlflow_globus_services, mlflow_globus_nginx, mlflow_globus_hosts'),
    (['scrape_configs'], 'has no targets of the jobs %s' % ', '.join(JOBS)),
])
def test_verify_names_what_a_prometheus_without_the_snippet_lacks(site, prometheus, without, named):
    url = prometheus(without)
    result = run_site(site, '-e', 'prometheus_rules_verify=true', '-e', 'prometheus_rules_url=%s' % url,
                      '-e', '_prometheus_rules_verify_retries=2', '-e', '_prometheus_rules_verify_delay=1')
    assert result['rc'] != 0
    assert named in failure(result)
    assert 'scrape_configs.example.yml' in failure(result)
