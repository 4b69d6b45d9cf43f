# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The alert rules the prometheus_rules role installs: `promtool check rules`, `promtool test rules` on
tests/prometheus/mlflow-globus.rules.test.yml, and proof that those tests can fail - each alert, made
never to fire or loosened so that a series that must stay silent matches, fails them. Also the scrape
config snippet: valid for `promtool check config`, the role's paths, the jobs the rules read.

promtool is Debian's (tools/promtool.sh unpacks it into the cache; .cache/env.sh names it in
MLFLOW_GLOBUS_PROMTOOL). Without it these tests fail, saying so: they never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import EXPORTERS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, 'roles', 'prometheus_rules')
RULES = os.path.join(ROLE, 'files', 'mlflow-globus.rules.yml')
SNIPPET = os.path.join(ROLE, 'files', 'scrape_configs.example.yml')
RULE_TESTS = os.path.join(REPO, 'tests', 'prometheus', 'mlflow-globus.rules.test.yml')
RUNBOOK = os.path.join(REPO, 'docs', 'runbook.md')
RUNBOOK_URL = 'https://github.com/alcf/mlflow_globus/blob/main/docs/runbook.md'


def _yaml(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def _alerts():
    return {rule['alert']: rule for group in _yaml(RULES)['groups'] for rule in group['rules'] if 'alert' in rule}


@pytest.fixture(scope='module')
def promtool():
    path = os.environ.get('MLFLOW_GLOBUS_PROMTOOL') or shutil.which('promtool')
    if not path or not os.access(path, os.X_OK):
        pytest.fail('promtool is missing (MLFLOW_GLOBUS_PROMTOOL=%r, none on PATH): run tools/setup.sh (it unpacks '
                    'Debian\'s prometheus package into the cache with tools/promtool.sh), then `source .cache/env.sh`'
                    % os.environ.get('MLFLOW_GLOBUS_PROMTOOL'))
    return path


def run(promtool, *args, cwd=REPO):
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_checks_the_rules(promtool):
    proc = run(promtool, 'check', 'rules', RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'SUCCESS: %d rules found' % len(_alerts()) in proc.stdout


def test_the_rule_unit_tests_pass(promtool):
    proc = run(promtool, 'test', 'rules', RULE_TESTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'SUCCESS' in proc.stdout


def test_promtool_refuses_a_broken_rule(promtool, tmp_path):
    """The role's validate step relies on this: a rule that does not parse fails `check rules`."""
    broken = tmp_path / 'broken.rules.yml'
    broken.write_text(open(RULES, encoding='utf-8').read().replace('> 0.05', '> > 0.05', 1), encoding='utf-8')
    proc = run(promtool, 'check', 'rules', str(broken))
    assert proc.returncode != 0 and 'FAILED' in proc.stdout + proc.stderr


def _tested():
    """Per alert: whether some test expects it firing, and whether some test expects it silent."""
    found = {}
    for case in _yaml(RULE_TESTS)['tests']:
        for check in case.get('alert_rule_test', []):
            fires, silent = found.get(check['alertname'], (False, False))
            found[check['alertname']] = (fires or bool(check.get('exp_alerts')), silent or not check.get('exp_alerts'))
    return found


def test_every_alert_is_tested_firing_and_silent():
    tested = _tested()
    assert sorted(tested) == sorted(_alerts())
    assert {name for name, both in tested.items() if both != (True, True)} == set()


# Each alert, changed so that a series of its test that must not fire it does: the test must then fail.
LOOSENED = {
    'MlflowGlobusOauth2ProxyDown': ('up{job="mlflow_globus_oauth2_proxy"} == 0', 'up == 0'),
    'MlflowGlobusMLflowDown': ('mlflow_globus_mlflow_up{job="mlflow_globus_mlflow"} == 0',
                               'mlflow_globus_mlflow_up{job="mlflow_globus_mlflow"} >= 0'),
    'MlflowGlobusNginxBadGateway': ('for: 5m', 'for: 0m'),
    'MlflowGlobusNginxServerErrors': (', status!="502"', ''),
    'MlflowGlobusSignInFailures': ('>= 5', '>= 0'),
    'MlflowGlobusTLSCertificateExpiresSoon': ('< 21 * 86400', '< 31 * 86400'),
    'MlflowGlobusBackupTooOld': ('group_left mlflow_globus_backup_max_age_seconds',
                                 'group_left() 0.1 * mlflow_globus_backup_max_age_seconds'),
    'MlflowGlobusDiskNearlyFull': ('fstype!~"tmpfs|devtmpfs|ramfs|overlay|squashfs|iso9660|fuse\\\\.lxcfs"', 'fstype!=""'),
    'MlflowGlobusExporterDown': ('up{job=~"mlflow_globus_nginx|mlflow_globus_node"} == 0', 'up == 0'),
}


def test_every_alert_has_a_loosening():
    assert sorted(LOOSENED) == sorted(_alerts())


def _mutated_run(promtool, tmp_path, alert, change):
    """`promtool test rules` with one alert's rule changed by ``change`` (rule dict -> None)."""
    rules = _yaml(RULES)
    for group in rules['groups']:
        for rule in group['rules']:
            if rule.get('alert') == alert:
                change(rule)
    (tmp_path / 'rules.yml').write_text(yaml.safe_dump(rules, sort_keys=False), encoding='utf-8')
    checked = run(promtool, 'check', 'rules', 'rules.yml', cwd=str(tmp_path))
    assert checked.returncode == 0, 'the changed rule must still be valid: ' + checked.stdout + checked.stderr
    tests = _yaml(RULE_TESTS)
    tests['rule_files'] = ['rules.yml']
    (tmp_path / 'tests.yml').write_text(yaml.safe_dump(tests, sort_keys=False), encoding='utf-8')
    return run(promtool, 'test', 'rules', 'tests.yml', cwd=str(tmp_path))


@pytest.mark.parametrize('alert', sorted(LOOSENED))
def test_the_tests_fail_when_an_alert_never_fires(promtool, tmp_path, alert):
    def never(rule):
        rule['expr'] = 'vector(1) == 0'
    proc = _mutated_run(promtool, tmp_path, alert, never)
    assert proc.returncode != 0 and 'alertname: %s' % alert in proc.stdout + proc.stderr


@pytest.mark.parametrize('alert', sorted(LOOSENED))
def test_the_tests_fail_when_an_alert_fires_on_a_series_that_must_not_fire_it(promtool, tmp_path, alert):
    before, after = LOOSENED[alert]

    def loosen(rule):
        text = rule['expr'] if before in rule['expr'] else 'for: %s' % rule['for']
        assert before in text, 'the loosening of %s no longer matches its rule' % alert
        if text == rule['expr']:
            rule['expr'] = rule['expr'].replace(before, after)
        else:
            rule['for'] = after.split(': ')[1]
    proc = _mutated_run(promtool, tmp_path, alert, loosen)
    assert proc.returncode != 0 and 'alertname: %s' % alert in proc.stdout + proc.stderr


def _anchor(heading):
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_each_alert_has_severity_summary_description_and_its_runbook_section():
    with open(RUNBOOK, encoding='utf-8') as handle:
        anchors = {_anchor(line.lstrip('#')) for line in handle if line.startswith('#')}
    for name, rule in _alerts().items():
        assert rule['labels'] == {'severity': rule['labels']['severity']} and rule['labels']['severity'] in (
            'critical', 'warning'), name
        annotations = rule['annotations']
        assert sorted(annotations) == ['description', 'runbook', 'runbook_url', 'summary'], name
        assert annotations['runbook'] == 'docs/runbook.md#%s' % name.lower(), name
        assert annotations['runbook_url'] == '%s#%s' % (RUNBOOK_URL, name.lower()), name
        assert name.lower() in anchors, 'docs/runbook.md has no section "%s"' % name


def test_the_runbook_url_is_the_collections_repository():
    assert _yaml(os.path.join(REPO, 'galaxy.yml'))['repository'] + '/blob/main/docs/runbook.md' == RUNBOOK_URL


def test_the_rules_read_only_the_collections_jobs():
    with open(RULES, encoding='utf-8') as handle:
        text = handle.read()
    jobs = {facts['job'] for facts in EXPORTERS.values()}
    named = set(re.findall(r'job="([^"]+)"', text))
    for pattern in re.findall(r'job=~"([^"]+)"', text):
        named.update(pattern.split('|'))
    assert named == jobs


def test_the_snippet_scrapes_each_job_from_the_roles_files():
    defaults = _yaml(os.path.join(ROLE, 'defaults', 'main.yml'))
    snippet = _yaml(SNIPPET)
    assert snippet['rule_files'] == [defaults['prometheus_rules_dir'] + '/mlflow-globus.rules.yml']
    assert [job['job_name'] for job in snippet['scrape_configs']] == [facts['job'] for facts in EXPORTERS.values()]
    for job in snippet['scrape_configs']:
        target_file = '%s/%s.json' % (defaults['prometheus_rules_file_sd_dir'], job['job_name'])
        assert job['file_sd_configs'] == [{'files': [target_file]}]
        assert set(job) == {'job_name', 'file_sd_configs'}  # metrics_path /metrics, the exporters' path
    assert {facts['path'] for facts in EXPORTERS.values()} == {'/metrics'}


def test_promtool_accepts_the_snippet_as_a_configuration(promtool, tmp_path):
    """The snippet with its paths moved under tmp_path, beside the rules and file_sd files as the role
    writes them: `promtool check config` reads them all."""
    defaults = _yaml(os.path.join(ROLE, 'defaults', 'main.yml'))
    rules_dir, sd_dir = tmp_path / 'rules', tmp_path / 'file_sd'
    rules_dir.mkdir()
    sd_dir.mkdir()
    shutil.copy(RULES, rules_dir / 'mlflow-globus.rules.yml')
    for facts in EXPORTERS.values():
        (sd_dir / ('%s.json' % facts['job'])).write_text(json.dumps(
            [{'targets': ['10.0.0.5:%d' % facts['port']], 'labels': {'job': facts['job']}}]), encoding='utf-8')
    text = open(SNIPPET, encoding='utf-8').read()
    text = text.replace(defaults['prometheus_rules_dir'], str(rules_dir))
    text = text.replace(defaults['prometheus_rules_file_sd_dir'], str(sd_dir))
    (tmp_path / 'prometheus.yml').write_text(text, encoding='utf-8')
    proc = run(promtool, 'check', 'config', str(tmp_path / 'prometheus.yml'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'SUCCESS: %d rules found' % len(_alerts()) in proc.stdout
    assert 'WARNING' not in proc.stdout + proc.stderr
