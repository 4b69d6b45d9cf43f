# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The store tool the mlflow_globus role installs (roles/mlflow_globus/files/mlflow-globus-store.py):
its reading of the role's environment file and settings, and SQLite backup and restore on real
databases. PostgreSQL and the schema checks run in the mlflow_* Molecule scenarios."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
from types import SimpleNamespace

import pytest

TOOL = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles', 'mlflow_globus', 'files', 'mlflow-globus-store.py')


@pytest.fixture(scope='module')
def store():
    spec = importlib.util.spec_from_file_location('mlflow_globus_store', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqlite_url(path):
    """The two things the tool asks of SQLAlchemy's URL for SQLite."""
    return SimpleNamespace(database=str(path), get_backend_name=lambda: 'sqlite')


def test_settings_sit_beside_the_tool(store):
    assert store.SETTINGS_FILE.endswith(os.path.join('files', 'mlflow-globus-store.json'))


def test_read_settings(store, tmp_path):
    path = tmp_path / 'store.json'
    path.write_text(json.dumps({'env_file': '/etc/e', 'backup_dir': '/b', 'service_user': 'mlflow'}))
    assert store.read_settings(str(path)) == {'env_file': '/etc/e', 'backup_dir': '/b', 'service_user': 'mlflow'}


def test_read_settings_names_what_is_missing(store, tmp_path):
    path = tmp_path / 'store.json'
    path.write_text(json.dumps({'env_file': '/etc/e'}))
    with pytest.raises(SystemExit, match='lacks backup_dir, service_user: run the mlflow_globus role again'):
        store.read_settings(str(path))


# What the role's env template writes (each of \ " ` $ escaped with a backslash), and the value meant.
@pytest.mark.parametrize('written, meant', [
    (r'"sqlite:////var/lib/mlflow/mlflow.db"', 'sqlite:////var/lib/mlflow/mlflow.db'),
    (r'"postgresql://mlflow:p\$ss\"w\`rd\\@db/mlflow"', 'postgresql://mlflow:p$ss"w`rd\\@db/mlflow'),
    (r'"a \"quoted\" \$HOME \`cmd\` back\\slash 100% #x"', 'a "quoted" $HOME `cmd` back\\slash 100% #x'),
    (r'"keeps \n as it is"', 'keeps \\n as it is'),
    ('unquoted', 'unquoted'),
])
def test_read_env_file_undoes_the_templates_quoting(store, tmp_path, written, meant):
    path = tmp_path / 'mlflow-globus.env'
    path.write_text('# managed\n\nMLFLOW_BACKEND_STORE_URI=%s\nOTHER="x=y"\n' % written)
    assert store.read_env_file(str(path)) == {'MLFLOW_BACKEND_STORE_URI': meant, 'OTHER': 'x=y'}


def make_store(path, rows):
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)')
        db.executemany('INSERT INTO runs (name) VALUES (?)', [(r,) for r in rows])


def runs(path):
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute('SELECT name FROM runs ORDER BY id')]


def test_sqlite_backup_is_a_consistent_copy_while_a_writer_holds_the_store(store, tmp_path):
    db = tmp_path / 'mlflow.db'
    make_store(db, ['a', 'b'])
    writer = sqlite3.connect(db)
    writer.execute("INSERT INTO runs (name) VALUES ('uncommitted')")  # an open write transaction
    try:
        path = store.backup(sqlite_url(db), 'manual', str(tmp_path))
    finally:
        writer.rollback()
        writer.close()
    assert os.path.basename(path).startswith('mlflow-manual-') and path.endswith('.db')
    assert not os.path.exists(path + '.partial')
    assert runs(path) == ['a', 'b']


def test_sqlite_backup_without_a_store_is_none(store, tmp_path):
    assert store.backup(sqlite_url(tmp_path / 'absent.db'), 'manual', str(tmp_path)) == 'none'
    assert os.listdir(tmp_path) == []


def test_sqlite_restore_puts_the_backup_back(store, tmp_path):
    db = tmp_path / 'mlflow.db'
    make_store(db, ['before'])
    path = store.backup(sqlite_url(db), 'pre-upgrade', str(tmp_path))
    with sqlite3.connect(db) as live:
        live.execute("INSERT INTO runs (name) VALUES ('after')")
    assert runs(db) == ['before', 'after']
    assert store.restore(sqlite_url(db), path) == 'restored %s' % path
    assert runs(db) == ['before']


@pytest.mark.parametrize('argv, message', [
    (['backup'], 'backup needs a label'),
    (['restore'], 'restore needs a path'),
    (['drop'], "invalid choice: 'drop'"),
])
def test_bad_arguments_are_refused_before_anything_is_read(store, monkeypatch, capsys, argv, message):
    monkeypatch.setattr('sys.argv', ['mlflow-globus-store.py', *argv])
    with pytest.raises(SystemExit) as exit_info:
        store.main()
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_auth_database_is_backed_up_and_restored_beside_the_store(store, tmp_path):
    db, auth = tmp_path / 'mlflow.db', tmp_path / 'auth.db'
    make_store(db, ['run'])
    make_store(auth, ['alice@example.org'])
    backups = tmp_path / 'backups'
    backups.mkdir()
    path = store.backup(sqlite_url(db), 'pre-upgrade', str(backups), sqlite_url(auth))
    assert sorted(os.listdir(backups)) == sorted([os.path.basename(path), os.path.basename(path)[:-3] + '.auth.db'])
    assert runs(str(path)[:-3] + '.auth.db') == ['alice@example.org']
    with sqlite3.connect(auth) as live:
        live.execute("INSERT INTO runs (name) VALUES ('bob@example.org')")
    assert store.restore(sqlite_url(db), path, sqlite_url(auth)) == 'restored %s and %s' % (path, path[:-3] + '.auth.db')
    assert runs(auth) == ['alice@example.org']


@pytest.mark.parametrize('auth_name, copied', [('auth.db', True), ('mlflow.db', False)])
def test_only_a_separate_sqlite_auth_database_is_copied(store, tmp_path, auth_name, copied):
    make_store(tmp_path / 'mlflow.db', ['run'])
    make_store(tmp_path / 'auth.db', ['u'])
    path = store.backup(sqlite_url(tmp_path / 'mlflow.db'), 'x', str(tmp_path), sqlite_url(tmp_path / auth_name))
    assert os.path.exists(path[:-3] + '.auth.db') is copied


def test_a_postgresql_auth_database_is_in_the_stores_dump(store):
    postgres = SimpleNamespace(database='mlflow', get_backend_name=lambda: 'postgresql')
    assert store.separate_sqlite(postgres, postgres) is None


def test_read_auth_uri(store, tmp_path):
    ini = tmp_path / 'basic_auth.ini'
    ini.write_text('[mlflow]\ndefault_permission = READ\ndatabase_uri = postgresql://u:p%%40@h/db\n')
    assert store.read_auth_uri(str(ini)) == 'postgresql://u:p%40@h/db'
    assert store.read_auth_uri('') is None
    with pytest.raises(SystemExit, match='cannot be read'):
        store.read_auth_uri(str(tmp_path / 'absent.ini'))


class Stores:
    """Records what set_permissions asks of MLflow's stores."""

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


def grant(user, permission, experiment=None, model=None):
    return {'user': user, 'resource': 'experiment' if experiment else 'registered_model',
            'name': experiment or model, 'permission': permission}


KNOWN = {'alice@example.org', 'bob@example.org'}


@pytest.mark.parametrize('before, after, action', [
    (None, 'EDIT', 'create'), ('READ', 'EDIT', 'update'), ('EDIT', 'EDIT', 'none'), ('EDIT', None, 'delete'),
    (None, None, 'none'),
])
def test_plan(store, before, after, action):
    planned = {'user': 'u@x.org', 'resource': 'experiment', 'name': 'e', 'id': '1', 'permission': after}
    current = {('u@x.org', 'experiment', '1'): before} if before else {}
    assert store.plan([planned], current)[0]['action'] == action


def test_grants_are_applied_then_nothing_changes(store):
    stores = Stores(users={'alice@example.org', 'bob@example.org'}, experiments={'alice-exp': '3'}, models={'m'})
    wanted = [grant('bob@example.org', 'EDIT', experiment='alice-exp'), grant('bob@example.org', 'MANAGE', model='m')]
    result = store.set_permissions(stores, [dict(g) for g in wanted], KNOWN, check=False)
    assert result['changed'] is True
    assert stores.grants == {('bob@example.org', 'experiment', '3'): 'EDIT',
                             ('bob@example.org', 'registered_model', 'm'): 'MANAGE'}
    assert [g['action'] for g in result['grants']] == ['create', 'create']
    writes = len(stores.writes)
    again = store.set_permissions(stores, [dict(g) for g in wanted], KNOWN, check=False)
    assert again['changed'] is False and len(stores.writes) == writes


def test_check_mode_writes_nothing(store):
    stores = Stores(users={'bob@example.org'}, experiments={'e': '1'}, grants={('bob@example.org', 'experiment', '1'): 'READ'})
    result = store.set_permissions(stores, [grant('bob@example.org', None, experiment='e'),
                                            grant('alice@example.org', 'EDIT', experiment='e')], KNOWN, check=True)
    assert result['changed'] is True and result['created_users'] == ['alice@example.org']
    assert [g['action'] for g in result['grants']] == ['delete', 'create']
    assert stores.writes == []


def test_an_allowed_user_who_never_signed_in_is_created(store):
    stores = Stores(experiments={'e': '1'})
    result = store.set_permissions(stores, [grant('alice@example.org', 'READ', experiment='e')], KNOWN, check=False)
    assert result['created_users'] == ['alice@example.org']
    assert stores.writes[0] == ('create_user', 'alice@example.org')


def test_unknown_users_experiments_and_models_are_refused_before_any_write(store):
    stores = Stores(users={'bob@example.org'}, experiments={'e': '1'})
    with pytest.raises(store.Refused) as refused:
        store.set_permissions(stores, [grant('bob@example.org', 'EDIT', experiment='e'),
                                       grant('bob@example.org', 'EDIT', experiment='nope'),
                                       grant('mallory@example.org', 'READ', model='gone')], KNOWN, check=False)
    assert refused.value.problems == [
        "experiment 'nope' does not exist (for bob@example.org)",
        "registered model 'gone' does not exist (for mallory@example.org)",
        'no MLflow user mallory@example.org: they have never signed in, and known_users (the allowlist) does not list them']
    assert stores.writes == []
