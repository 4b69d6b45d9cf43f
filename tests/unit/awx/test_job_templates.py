# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shape of awx/job_templates.yml, the AWX job templates as data (playbooks/awx_configure.yml).

No AWX server can run here, so what AWX would refuse, or what would fail only at launch, is checked
against the repository: every playbook exists, every survey and extra variable is one its playbook
reads, names are unique, survey questions are what AWX's survey_spec accepts.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(REPO, 'awx', 'job_templates.yml')
CONFIGURE = os.path.join(REPO, 'playbooks', 'awx_configure.yml')

# AWX's survey_spec question fields and types (awx/api/views: SurveySpecView, awx/main/models/mixins).
SURVEY_KEYS = {'question_name', 'question_description', 'variable', 'type', 'required', 'default', 'min', 'max',
               'choices', 'new_question'}
SURVEY_TYPES = {'text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect'}
# AWX's own variable names and Ansible's reserved ones: a survey must not set these.
RESERVED = re.compile(r'^(awx_|tower_|ansible_|omit$|hostvars$|groups$|inventory_hostname$|playbook_dir$)')


def _load(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


DATA_YAML = _load(DATA)
TEMPLATES = DATA_YAML['awx_job_templates']
DEFAULTS = DATA_YAML['awx_job_template_defaults']
WORKFLOWS = DATA_YAML['awx_workflow_job_templates']
# What an entry may say: its own keys, and any of the defaults it overrides.
TEMPLATE_KEYS = {'name', 'playbook', 'description', 'survey', 'extra_vars'} | set(DEFAULTS)


def _by_name(templates):
    return pytest.mark.parametrize('template', templates, ids=[t['name'] for t in templates])


def _strings(node, in_value=False):
    """Every string that a playbook's YAML holds as a value (keys define variables, values read them)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, True)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, True)
    elif isinstance(node, str) and in_value:
        yield node


def _playbook_and_imports(path, seen=None):
    """The plays of a playbook and of every playbook it imports, as parsed YAML."""
    seen = set() if seen is None else seen
    if path in seen:
        return []
    seen.add(path)
    plays = _load(path)
    found = [plays]
    for play in plays:
        imported = play.get('ansible.builtin.import_playbook') or play.get('import_playbook')
        if imported:
            found += _playbook_and_imports(os.path.normpath(os.path.join(os.path.dirname(path), imported)), seen)
    return found


def _reads(playbook, variable):
    pattern = re.compile(r'(?<![\w.\'"])%s(?![\w\'"])' % re.escape(variable))
    texts = _strings(_playbook_and_imports(os.path.join(REPO, playbook)))
    return any(pattern.search(text) for text in texts)


def _existing(template):
    path = os.path.join(REPO, template['playbook'])
    assert os.path.isfile(path), '%s (template %r) is not in the repository' % (template['playbook'], template['name'])
    return path


def test_the_issue_s_templates_are_all_there():
    assert {t['name'] for t in TEMPLATES} >= {
        'Deploy MLflow (site)', 'Update allowlist', 'Health check', 'Collect logs', 'Recover', 'Back up', 'Restore',
        'Permissions'}
    assert [w['name'] for w in WORKFLOWS] == ['Deploy then health check']


def test_names_are_unique():
    names = [t['name'] for t in TEMPLATES] + [w['name'] for w in WORKFLOWS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_every_template_says_only_what_awx_configure_applies():
    for template in TEMPLATES:
        assert set(template) <= TEMPLATE_KEYS, (template['name'], set(template) - TEMPLATE_KEYS)
        assert {'name', 'playbook'} <= set(template), template
    configure = open(CONFIGURE, encoding='utf-8').read()
    for key in TEMPLATE_KEYS - {'name', 'playbook'}:
        assert re.search(r'(item|__awx_template)\.%s\b' % key, configure), 'awx_configure.yml ignores %s' % key


@_by_name(TEMPLATES)
def test_limit_and_diff_are_asked_on_launch(template):
    settings = dict(DEFAULTS, **template)
    assert settings['ask_limit_on_launch'] is True
    assert settings['ask_diff_mode_on_launch'] is True


@_by_name(TEMPLATES)
def test_the_playbook_is_a_playbook_of_the_project(template):
    playbook = template['playbook']
    assert not os.path.isabs(playbook) and '..' not in playbook.split('/'), playbook
    assert playbook.endswith('.yml') and not playbook.startswith(('roles/', 'molecule/', 'tests/')), playbook
    plays = _load(_existing(template))
    assert isinstance(plays, list) and plays, playbook
    for play in plays:
        assert 'hosts' in play or 'ansible.builtin.import_playbook' in play, (playbook, play.get('name'))


@_by_name([t for t in TEMPLATES if 'survey' in t or 'extra_vars' in t])
def test_every_survey_and_extra_variable_is_read_by_the_playbook(template):
    _existing(template)
    variables = [q['variable'] for q in template.get('survey', [])] + list(template.get('extra_vars', {}))
    unread = [v for v in variables if not _reads(template['playbook'], v)]
    assert not unread, '%s does not read %s' % (template['playbook'], unread)


@_by_name([t for t in TEMPLATES if 'survey' in t])
def test_the_survey_is_one_awx_accepts(template):
    survey = template['survey']
    assert isinstance(survey, list) and survey, 'AWX refuses a survey without questions'
    variables = [q['variable'] for q in survey]
    assert len(variables) == len(set(variables)), variables
    for question in survey:
        where = '%s: %s' % (template['name'], question.get('variable'))
        assert set(question) <= SURVEY_KEYS, (where, set(question) - SURVEY_KEYS)
        assert {'question_name', 'variable', 'type', 'required'} <= set(question), where
        assert question['type'] in SURVEY_TYPES, where
        assert re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', question['variable']), where
        assert not RESERVED.match(question['variable']), where
        assert isinstance(question['required'], bool), where
        if question['type'] in ('multiplechoice', 'multiselect'):
            assert question.get('choices') and all(isinstance(c, str) for c in question['choices']), where
            if 'default' in question:
                assert question['default'] in question['choices'], where
        if question['type'] in ('integer', 'float') and 'default' in question:
            assert question.get('min', question['default']) <= question['default'] <= question.get('max', question['default'])


@pytest.mark.parametrize('workflow', WORKFLOWS, ids=[w['name'] for w in WORKFLOWS])
def test_every_workflow_node_is_a_template(workflow):
    names = {t['name'] for t in TEMPLATES}
    assert workflow['nodes'] and set(workflow['nodes']) <= names, set(workflow['nodes']) - names


def test_deploy_then_health_check_runs_the_health_check_after_the_deploy():
    workflow = next(w for w in WORKFLOWS if w['name'] == 'Deploy then health check')
    playbooks = {t['name']: t['playbook'] for t in TEMPLATES}
    assert [playbooks[node] for node in workflow['nodes']] == ['site.yml', 'playbooks/healthcheck.yml']
    assert workflow.get('ask_limit_on_launch', True) is True


def test_the_allowlist_survey_is_checked_before_the_play_that_writes():
    plays = _load(os.path.join(REPO, 'playbooks', 'allowlist.yml'))
    first, writing = plays[0], plays[1]
    checks = ' '.join(_strings(first['tasks']))
    assert 'allowlist_emails_text | alcf.mlflow_globus.email_allowlist' in checks
    assert all('include_role' not in str(task) for task in first['tasks'])
    assert any('include_role' in str(task) for task in writing['tasks'])
