# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""mlflow_permissions: the grants it checks before anything runs, what it asks the store tool, and how it
reports the answer. The store tool stands in as a small script here; its own work on grants is tested in
tests/unit/roles/test_mlflow_globus_store.py, and the whole against MLflow in the split scenario's e2e tests."""

from __future__ import annotations

import json
import re
import sys

import pytest

from ansible_collections.alcf.mlflow_globus.plugins.modules import mlflow_permissions as mp

from .utils import run_module


@pytest.mark.parametrize('entry, problem', [
    ({'user': 'not an email', 'experiment': 'e', 'permission': 'READ'}, r"grants\[0\]: user 'not an email'"),
    ({'user': 'bob@example.org', 'permission': 'READ'}, 'exactly one of experiment and registered_model'),
    ({'user': 'bob@example.org', 'experiment': 'e', 'registered_model': 'm', 'permission': 'READ'}, 'exactly one'),
    ({'user': 'bob@example.org', 'experiment': 'e'}, 'permission must be one of READ, USE, EDIT, MANAGE, NO_PERMISSIONS'),
    ({'user': 'bob@example.org', 'experiment': 'e', 'permission': 'WRITE'}, "got 'WRITE'"),
])
def test_bad_entries_are_named(entry, problem):
    problems = mp.check_grants([entry], [])[1]
    assert len(problems) == 1
    assert re.search(problem, problems[0]), problems


def test_every_bad_entry_is_named_at_once():
    problems = mp.check_grants([{'user': 'x'}, {'user': 'bob@example.org'}], [])[1]
    assert [p.split(':')[0].split(' ')[0] for p in problems] == ['grants[0]', 'grants[1]']


def test_users_are_normalised_and_absent_needs_no_permission():
    checked = mp.check_grants([{'user': ' Bob@Example.org ', 'experiment': 'e', 'state': 'absent'}], [])[0]
    assert checked == [{'user': 'bob@example.org', 'resource': 'experiment', 'name': 'e', 'permission': None}]


@pytest.fixture()
def store_tool(tmp_path):
    """A stand-in for the store tool: keeps what it was asked, answers as told (rc, stdout, stderr)."""
    asked, answer = tmp_path / 'asked.json', tmp_path / 'answer.json'
    script = tmp_path / 'store-tool.py'
    script.write_text(
        'import json, sys\n'
        'open(%r, "w").write(json.dumps({"argv": sys.argv[1:], "stdin": json.load(sys.stdin)}))\n'
        'rc, out, err = json.load(open(%r))\n'
        'print("a log line MLflow printed")\nprint(out)\nsys.stderr.write(err)\nsys.exit(rc)\n' % (str(asked), str(answer)))

    def tool(rc, out, err=''):
        answer.write_text(json.dumps([rc, out, err]))
        return {'python': sys.executable, 'store_tool': str(script)}

    tool.asked = lambda: json.loads(asked.read_text())
    tool.was_asked = asked.exists
    return tool


GRANTED = {'changed': True, 'created_users': [], 'grants': [
    {'user': 'bob@example.org', 'resource': 'experiment', 'name': 'alice-exp', 'id': '3', 'before': None,
     'after': 'EDIT', 'action': 'create'},
    {'user': 'bob@example.org', 'resource': 'registered_model', 'name': 'm', 'id': 'm', 'before': 'READ',
     'after': 'READ', 'action': 'none'}]}


def test_the_tools_answer_is_reported_with_a_summary_and_a_diff(store_tool):
    paths = store_tool(0, json.dumps(GRANTED))
    failed, result = run_module(mp.main, dict(paths, grants=[
        {'user': 'Bob@example.org', 'experiment': 'alice-exp', 'permission': 'EDIT'},
        {'user': 'bob@example.org', 'registered_model': 'm', 'permission': 'READ'}],
        known_users=['bob@example.org']), check_mode=True, diff=True)
    assert not failed and result['changed'] is True
    assert store_tool.asked() == {'argv': ['permissions'], 'stdin': {
        'check': True, 'known_users': ['bob@example.org'], 'grants': [
            {'user': 'bob@example.org', 'resource': 'experiment', 'name': 'alice-exp', 'permission': 'EDIT'},
            {'user': 'bob@example.org', 'resource': 'registered_model', 'name': 'm', 'permission': 'READ'}]}}
    assert result['summary'] == ['bob@example.org experiment alice-exp: (default) -> EDIT (create)',
                                 'bob@example.org registered model m: READ -> READ (none)']
    assert result['diff'] == {'before': 'bob@example.org experiment alice-exp: (default)\n'
                                        'bob@example.org registered_model m: READ\n',
                              'after': 'bob@example.org experiment alice-exp: EDIT\n'
                                       'bob@example.org registered_model m: READ\n'}


def test_a_refusal_names_every_unknown_and_says_nothing_changed(store_tool):
    paths = store_tool(3, json.dumps({'refused': ["experiment 'nope' does not exist (for bob@example.org)",
                                                  'no MLflow user mallory@example.org: ...']}))
    failed, result = run_module(mp.main, dict(paths, grants=[{'user': 'bob@example.org', 'experiment': 'nope',
                                                              'permission': 'EDIT'}]))
    assert failed
    assert result['msg'] == ("Nothing was changed: experiment 'nope' does not exist (for bob@example.org); "
                             'no MLflow user mallory@example.org: ...')
    assert len(result['problems']) == 2


def test_a_failing_tool_is_reported_with_its_last_words(store_tool):
    paths = store_tool(1, '', 'Traceback ...\nOperationalError: database is locked\n')
    failed, result = run_module(mp.main, dict(paths, grants=[{'user': 'bob@example.org', 'experiment': 'e',
                                                              'permission': 'EDIT'}]))
    assert failed and result['rc'] == 1
    assert result['msg'].endswith('permissions failed (rc 1): OperationalError: database is locked')


def test_bad_grants_fail_before_the_tool_runs(store_tool):
    paths = store_tool(0, json.dumps(GRANTED))
    failed, result = run_module(mp.main, dict(paths, grants=[{'user': 'bob@example.org', 'experiment': 'e'}]))
    assert failed and result['msg'].startswith('Nothing was changed: grants[0] (bob@example.org): permission')
    assert not store_tool.was_asked()
