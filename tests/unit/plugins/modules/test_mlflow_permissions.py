# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""mlflow_permissions' checking, planning and reading of the role's files, with MLflow's stores replaced
by a recording stand-in (the module against MLflow's real stores runs in the split scenario's e2e tests)."""

from __future__ import annotations

import os
import re

import jinja2
import pytest

from ansible_collections.alcf.mlflow_globus.plugins.modules import mlflow_permissions as mp


class Failed(Exception):
    pass


class Module:
    def __init__(self, check_mode=False, diff=False):
        self.check_mode, self._diff = check_mode, diff

    def fail_json(self, msg, **kwargs):
        raise Failed(msg)


class Stores:
    def __init__(self, users=(), experiments=None, models=(), grants=None):
        self.users = set(users)
        self.experiments = dict(experiments or {})
        self.models = set(models)
        self.grants = dict(grants or {})
        self.writes = []

    def resource_id(self, resource, name):
        return self.experiments.get(name) if resource == 'experiment' else (name if name in self.models else None)

    def has_user(self, user):
        return user in self.users

    def create_user(self, user):
        self.writes.append(('create_user', user))
        self.users.add(user)

    def permission(self, user, resource, ident):
        return self.grants.get((user, resource, ident))

    def apply(self, grant):
        self.writes.append((grant['action'], grant['user'], grant['id'], grant['after']))
        key = (grant['user'], grant['resource'], grant['id'])
        if grant['after'] is None:
            del self.grants[key]
        else:
            self.grants[key] = grant['after']


def grants(*entries):
    checked, problems, known = mp.check_grants(list(entries), ['alice@example.org', 'bob@example.org'])
    assert not problems, problems
    return checked, known


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
    checked = grants({'user': ' Bob@Example.org ', 'experiment': 'e', 'state': 'absent'})[0]
    assert checked == [{'user': 'bob@example.org', 'resource': 'experiment', 'name': 'e', 'state': 'absent',
                        'permission': None}]


@pytest.mark.parametrize('before, after, action', [
    (None, 'EDIT', 'create'), ('READ', 'EDIT', 'update'), ('EDIT', 'EDIT', 'none'), ('EDIT', None, 'delete'),
    (None, None, 'none'),
])
def test_plan(before, after, action):
    grant = {'user': 'u@x.org', 'resource': 'experiment', 'name': 'e', 'id': '1', 'permission': after}
    current = {('u@x.org', 'experiment', '1'): before} if before else {}
    assert mp.plan([grant], current)[0]['action'] == action


def test_grants_are_applied_then_nothing_changes():
    stores = Stores(users={'alice@example.org', 'bob@example.org'}, experiments={'alice-exp': '3'}, models={'m'})
    checked, known = grants({'user': 'bob@example.org', 'experiment': 'alice-exp', 'permission': 'EDIT'},
                            {'user': 'bob@example.org', 'registered_model': 'm', 'permission': 'MANAGE'})
    result = mp.run(Module(diff=True), stores, checked, known)
    assert result['changed'] is True
    assert stores.grants == {('bob@example.org', 'experiment', '3'): 'EDIT', ('bob@example.org', 'registered_model', 'm'): 'MANAGE'}
    assert result['summary'][0] == 'bob@example.org experiment alice-exp: (default) -> EDIT (create)'
    assert result['diff'] == {'before': 'bob@example.org experiment alice-exp: (default)\n'
                                        'bob@example.org registered_model m: (default)\n',
                              'after': 'bob@example.org experiment alice-exp: EDIT\n'
                                       'bob@example.org registered_model m: MANAGE\n'}
    checked, known = grants({'user': 'bob@example.org', 'experiment': 'alice-exp', 'permission': 'EDIT'},
                            {'user': 'bob@example.org', 'registered_model': 'm', 'permission': 'MANAGE'})
    writes = len(stores.writes)
    assert mp.run(Module(), stores, checked, known)['changed'] is False
    assert len(stores.writes) == writes


def test_check_mode_writes_nothing():
    stores = Stores(users={'bob@example.org'}, experiments={'e': '1'}, grants={('bob@example.org', 'experiment', '1'): 'READ'})
    checked, known = grants({'user': 'bob@example.org', 'experiment': 'e', 'state': 'absent'},
                            {'user': 'alice@example.org', 'experiment': 'e', 'permission': 'EDIT'})
    result = mp.run(Module(check_mode=True), stores, checked, known)
    assert result['changed'] is True and result['created_users'] == ['alice@example.org']
    assert [g['action'] for g in result['grants']] == ['delete', 'create']
    assert stores.writes == []


def test_an_allowed_user_who_never_signed_in_is_created():
    stores = Stores(experiments={'e': '1'})
    checked, known = grants({'user': 'alice@example.org', 'experiment': 'e', 'permission': 'READ'})
    result = mp.run(Module(), stores, checked, known)
    assert result['created_users'] == ['alice@example.org']
    assert stores.writes[0] == ('create_user', 'alice@example.org')


def test_unknown_users_experiments_and_models_fail_before_any_write():
    stores = Stores(users={'bob@example.org'}, experiments={'e': '1'})
    checked, known = grants({'user': 'bob@example.org', 'experiment': 'e', 'permission': 'EDIT'},
                            {'user': 'bob@example.org', 'experiment': 'nope', 'permission': 'EDIT'},
                            {'user': 'mallory@example.org', 'registered_model': 'gone', 'permission': 'READ'})
    with pytest.raises(Failed) as failed:
        mp.run(Module(), stores, checked, known)
    message = str(failed.value)
    assert message.startswith('Nothing was changed')
    assert "experiment 'nope' does not exist" in message
    assert "registered model 'gone' does not exist" in message
    assert 'no MLflow user mallory@example.org' in message
    assert stores.writes == []


@pytest.mark.parametrize('uri', ['sqlite:////var/lib/mlflow/mlflow.db',
                                 'postgresql://mlflow:p%40ss"w`o$rd\\x@db.example.org:5432/mlflow'])
def test_the_role_environment_file_reads_back(uri):
    env = jinja2.Environment()
    env.filters['regex_replace'] = lambda value, pattern, repl: re.sub(pattern, repl, value)
    with open(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'roles', 'mlflow_globus', 'templates',
                           'mlflow-globus.env.j2'), encoding='utf-8') as handle:
        source = handle.read()
    macro = source[source.index('{% macro quoted'):source.index('{%- endmacro %}') + len('{%- endmacro %}')]
    text = env.from_string(macro + '\nMLFLOW_BACKEND_STORE_URI={{ quoted(uri) }}\n').render(uri=uri)
    assert mp.read_env_value(text, 'MLFLOW_BACKEND_STORE_URI') == uri
    assert mp.read_env_value(text, 'MISSING') is None


def test_the_auth_ini_reads_back_a_percent():
    ini = '[mlflow]\ndefault_permission = READ\ndatabase_uri = postgresql://u:p%%40s@h/db\n'
    assert mp.read_auth_database_uri(ini) == 'postgresql://u:p%40s@h/db'


def test_run_as_returns_the_childs_result_and_raises_its_refusal():
    user = __import__('pwd').getpwuid(os.getuid()).pw_name
    assert mp.run_as(user, lambda: {'answer': 42}) == {'answer': 42}
    with pytest.raises(mp.Refused, match='Nothing was changed: x') as refused:
        mp.run_as(user, lambda: mp.ChildSettings(False, False).fail_json('Nothing was changed: x', problems=['x']))
    assert refused.value.problems == ['x']
    with pytest.raises(RuntimeError, match='ZeroDivisionError'):
        mp.run_as(user, lambda: 1 / 0)
