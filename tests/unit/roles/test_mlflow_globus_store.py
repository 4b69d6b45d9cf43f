# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The store tool the mlflow_globus role installs (roles/mlflow_globus/files/mlflow-globus-store.py):
its reading of the role's environment file and settings, and SQLite backup and restore on real
databases. PostgreSQL and the schema checks run in the mlflow_* Molecule scenarios."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import tarfile
from types import SimpleNamespace

import pytest

from .conftest import role_file_module


@pytest.fixture(scope='module')
def store():
    return role_file_module('mlflow_globus', 'mlflow-globus-store.py', 'mlflow_globus_store')


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


@pytest.fixture
def tool(store, monkeypatch):
    """The tool with what needs MLflow's own packages (schema revision, release) stood in for."""
    monkeypatch.setattr(store, 'revision', lambda url, uri: 'rev-head')
    monkeypatch.setattr(store, 'mlflow_version', lambda venv=None: '3.17.2')
    monkeypatch.setattr(store, 'known_revision', lambda uri: {'rev-old': 'older', 'rev-head': 'current'}.get)
    return store


def artifacts(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def tree(root):
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob('*')) if p.is_file()}


def test_sqlite_backup_is_a_consistent_copy_while_a_writer_holds_the_store(tool, tmp_path):
    db = tmp_path / 'mlflow.db'
    make_store(db, ['a', 'b'])
    writer = sqlite3.connect(db)
    writer.execute("INSERT INTO runs (name) VALUES ('uncommitted')")  # an open write transaction
    try:
        path = tool.backup(sqlite_url(db), 'uri', 'manual', str(tmp_path))
    finally:
        writer.rollback()
        writer.close()
    assert os.path.basename(path).startswith('mlflow-manual-')
    assert not os.path.exists(path + '.partial')
    assert runs(os.path.join(path, 'store.db')) == ['a', 'b']
    manifest = json.load(open(os.path.join(path, 'manifest.json')))
    assert {k: manifest[k] for k in ('format', 'label', 'mlflow_version', 'backend', 'revision')} == {
        'format': 1, 'label': 'manual', 'mlflow_version': '3.17.2', 'backend': 'sqlite', 'revision': 'rev-head'}
    assert list(manifest['files']) == ['store.db']
    assert manifest['files']['store.db']['sha256'] == tool.sha256_of(os.path.join(path, 'store.db'))


def test_the_manifest_names_the_release_of_the_service_not_the_tools(store, tmp_path):
    """An upgrade backs up the old release's store with the new release's tool."""
    dist = tmp_path / 'venv' / 'lib' / 'python3.13' / 'site-packages' / 'mlflow-3.16.1.dist-info'
    dist.mkdir(parents=True)
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: mlflow\nVersion: 3.16.1\n')
    assert store.mlflow_version(str(tmp_path / 'venv')) == '3.16.1'


def test_sqlite_backup_without_a_store_is_none(tool, tmp_path):
    assert tool.backup(sqlite_url(tmp_path / 'absent.db'), 'uri', 'manual', str(tmp_path)) == 'none'
    assert os.listdir(tmp_path) == []


def make_service(tmp_path):
    """A store, its auth database and artifacts, as a VM has them."""
    db, auth, art, backups = tmp_path / 'mlflow.db', tmp_path / 'auth.db', tmp_path / 'artifacts', tmp_path / 'backups'
    make_store(db, ['run-1'])
    make_store(auth, ['alice@example.org'])
    artifacts(art, {'1/abc/artifacts/model.pkl': 'weights', '1/abc/artifacts/plots/loss.png': 'png'})
    backups.mkdir()
    return db, auth, art, backups


def test_restore_puts_store_auth_and_artifacts_back_and_keeps_what_it_replaced(tool, tmp_path):
    db, auth, art, backups = make_service(tmp_path)
    path = tool.backup(sqlite_url(db), 'uri', 'scheduled', str(backups), sqlite_url(auth), str(art))
    assert sorted(json.load(open(os.path.join(path, 'manifest.json')))['files']) == ['artifacts.tar', 'auth.db', 'store.db']
    # What happens after the backup, and is undone by the restore (yet kept aside).
    with sqlite3.connect(db) as live:
        live.execute("INSERT INTO runs (name) VALUES ('run-2')")
    with sqlite3.connect(auth) as live:
        live.execute("INSERT INTO runs (name) VALUES ('bob@example.org')")
    artifacts(art, {'1/def/artifacts/new.txt': 'new', '1/abc/artifacts/model.pkl': 'overwritten'})
    result = tool.restore(sqlite_url(db), 'uri', path, str(backups), sqlite_url(auth), str(art))
    assert runs(db) == ['run-1'] and runs(auth) == ['alice@example.org']
    assert tree(art) == {'1/abc/artifacts/model.pkl': 'weights', '1/abc/artifacts/plots/loss.png': 'png'}
    assert result['restored'] == path and result['parts'] == ['artifacts', 'auth', 'store']
    aside = result['kept_aside']
    assert os.path.basename(aside).startswith('mlflow-before-restore-')
    assert runs(os.path.join(aside, 'store.db')) == ['run-1', 'run-2']
    assert runs(os.path.join(aside, 'auth.db')) == ['alice@example.org', 'bob@example.org']


def test_a_store_only_backup_leaves_the_artifacts_alone(tool, tmp_path):
    db, auth, art, backups = make_service(tmp_path)
    path = tool.backup(sqlite_url(db), 'uri', '3.16.1', str(backups), sqlite_url(auth), None)
    artifacts(art, {'1/def/artifacts/new.txt': 'new'})
    result = tool.restore(sqlite_url(db), 'uri', path, str(backups), sqlite_url(auth), str(art))
    assert '1/def/artifacts/new.txt' in tree(art)
    assert 'artifacts.tar' not in json.load(open(os.path.join(result['kept_aside'], 'manifest.json')))['files']


def manifest_of(path):
    with open(os.path.join(path, 'manifest.json'), encoding='utf-8') as handle:
        return json.load(handle)


def test_the_manifest_says_local_artifacts_are_in_the_backup(tool, tmp_path):
    db, auth, art, backups = make_service(tmp_path)
    path = tool.backup(sqlite_url(db), 'uri', 'scheduled', str(backups), sqlite_url(auth), str(art),
                       artifacts_uri=str(art))
    assert manifest_of(path)['artifacts'] == {'location': str(art), 'copied': True, 'note': 'in artifacts.tar'}


@pytest.mark.parametrize('artifacts_uri', ['s3://mlflow/artifacts', 's3://mlflow', 'gs://bucket/mlflow'])
def test_artifacts_in_an_object_store_are_recorded_not_copied_and_restore_leaves_them(tool, tmp_path, artifacts_uri):
    """The role gives no artifacts_dir when the artifacts are in an object store: the backup holds the store
    and says where the artifacts are; a restore of it touches no artifacts and reports the same."""
    db, auth, _art, backups = make_service(tmp_path)
    path = tool.backup(sqlite_url(db), 'uri', 'scheduled', str(backups), sqlite_url(auth), None,
                       artifacts_uri=artifacts_uri)
    manifest = manifest_of(path)
    assert sorted(manifest['files']) == ['auth.db', 'store.db']
    assert manifest['artifacts']['location'] == artifacts_uri
    assert manifest['artifacts']['copied'] is False
    assert 'object store' in manifest['artifacts']['note']
    assert tool.check_backup(path, tool.known_revision('uri'))['artifacts'] == manifest['artifacts']
    result = tool.restore(sqlite_url(db), 'uri', path, str(backups), sqlite_url(auth), None, artifacts_uri)
    assert result['parts'] == ['auth', 'store'] and result['artifacts'] == manifest['artifacts']
    assert manifest_of(result['kept_aside'])['artifacts']['location'] == artifacts_uri


@pytest.mark.parametrize('artifacts_uri, copied, note', [
    ('/var/lib/mlflow/artifacts', True, 'in artifacts.tar'),
    ('/var/lib/mlflow/artifacts', False, 'not copied: a backup of the store only, or no artifacts directory yet'),
    ('file:///var/lib/mlflow/artifacts', False, 'not copied: a backup of the store only, or no artifacts directory yet'),
    ('s3://mlflow/artifacts', False,
     'not copied: they live in an object store, which keeps them (back it up by its own means)'),
])
def test_artifacts_record(store, artifacts_uri, copied, note):
    assert store.artifacts_record(artifacts_uri, copied) == {'location': artifacts_uri, 'copied': copied, 'note': note}


def test_a_store_only_backup_says_the_local_artifacts_are_not_in_it(tool, tmp_path):
    db, auth, art, backups = make_service(tmp_path)
    path = tool.backup(sqlite_url(db), 'uri', '3.16.1', str(backups), sqlite_url(auth), None, artifacts_uri=str(art))
    assert manifest_of(path)['artifacts']['copied'] is False
    assert 'artifacts.tar' not in manifest_of(path)['files']


def test_a_damaged_backup_is_refused_naming_the_file_and_nothing_changes(tool, tmp_path):
    db, auth, art, backups = make_service(tmp_path)
    path = tool.backup(sqlite_url(db), 'uri', 'scheduled', str(backups), sqlite_url(auth), str(art))
    with open(os.path.join(path, 'auth.db'), 'ab') as damaged:
        damaged.write(b'x')
    with sqlite3.connect(db) as live:
        live.execute("INSERT INTO runs (name) VALUES ('run-2')")
    with pytest.raises(tool.Refused, match=r'auth.db: checksum differs from the manifest'):
        tool.restore(sqlite_url(db), 'uri', path, str(backups), sqlite_url(auth), str(art))
    assert runs(db) == ['run-1', 'run-2']
    assert [os.path.basename(p) for p in tool.complete_backups(str(backups))] == [os.path.basename(path)]


def test_a_backup_of_a_newer_schema_is_refused(tool, tmp_path):
    db, auth, art, backups = make_service(tmp_path)
    path = tool.backup(sqlite_url(db), 'uri', 'scheduled', str(backups))
    manifest = json.load(open(os.path.join(path, 'manifest.json')))
    manifest.update(revision='rev-of-a-newer-mlflow', mlflow_version='9.0.0')
    json.dump(manifest, open(os.path.join(path, 'manifest.json'), 'w'))
    with pytest.raises(tool.Refused, match='schema revision rev-of-a-newer-mlflow .MLflow 9.0.0., which the installed '
                                           'MLflow 3.17.2 does not know'):
        tool.check_backup(path, tool.known_revision('uri'))


def test_an_older_schema_is_accepted_and_said(tool, tmp_path):
    db, auth, art, backups = make_service(tmp_path)
    path = tool.backup(sqlite_url(db), 'uri', 'x', str(backups))
    manifest = json.load(open(os.path.join(path, 'manifest.json')))
    json.dump(dict(manifest, revision='rev-old'), open(os.path.join(path, 'manifest.json'), 'w'))
    assert tool.check_backup(path, tool.known_revision('uri'))['revision'] == 'rev-old'


def test_not_a_backup_is_refused(tool, tmp_path):
    with pytest.raises(tool.Refused, match='is not a backup of this tool'):
        tool.check_backup(str(tmp_path), tool.known_revision('uri'))


@pytest.mark.parametrize('name, kind', [('../escape', tarfile.REGTYPE), ('/etc/passwd', tarfile.REGTYPE),
                                        ('link', tarfile.SYMTYPE)])
def test_an_artifacts_tar_reaching_outside_is_refused(tool, tmp_path, name, kind):
    path = tmp_path / 'artifacts.tar'
    with tarfile.open(path, 'w') as tar:
        member = tarfile.TarInfo(name)
        member.type = kind
        member.linkname = '/etc/passwd' if kind == tarfile.SYMTYPE else ''
        tar.addfile(member, io.BytesIO(b''))
    with tarfile.open(path) as tar, pytest.raises(tool.Refused, match='which is not a plain file inside the artifacts'):
        tool.safe_members(tar)


def test_keep_removes_the_labels_older_backups_only(tool, tmp_path, monkeypatch):
    db, auth, art, backups = make_service(tmp_path)
    stamps = iter(['20261201T000000Z', '20261202T000000Z', '20261203T000000Z', '20261204T000000Z'])
    for label in ('scheduled', 'manual', 'scheduled', 'scheduled'):
        stamp = next(stamps)
        (backups / f'mlflow-{label}-{stamp}').mkdir()
        (backups / f'mlflow-{label}-{stamp}' / 'manifest.json').write_text('{}')
    (backups / 'mlflow-scheduled-20261205T000000Z.partial').mkdir()
    kept = tool.backup(sqlite_url(db), 'uri', 'scheduled', str(backups), keep=2)
    assert sorted(os.listdir(backups)) == sorted(['mlflow-manual-20261202T000000Z', 'mlflow-scheduled-20261204T000000Z',
                                                  'mlflow-scheduled-20261205T000000Z.partial', os.path.basename(kept)])


def test_newest_writes_the_textfile_metrics(tool, tmp_path):
    db, auth, art, backups = make_service(tmp_path)
    textfile = tmp_path / 'node-exporter' / 'mlflow_globus_backup.prom'
    textfile.parent.mkdir()
    assert tool.newest(str(backups), str(textfile), 93600) == {'path': None, 'created': None, 'age_seconds': None}
    assert 'mlflow_globus_backup_last_success_timestamp_seconds 0\n' in textfile.read_text()
    path = tool.backup(sqlite_url(db), 'uri', 'scheduled', str(backups), sqlite_url(auth), str(art))
    found = tool.newest(str(backups), str(textfile), 93600)
    manifest = json.load(open(os.path.join(path, 'manifest.json')))
    assert found['path'] == path and 0 <= found['age_seconds'] < 60
    text = textfile.read_text()
    assert 'mlflow_globus_backup_last_success_timestamp_seconds %d\n' % manifest['created_unix'] in text
    assert 'mlflow_globus_backup_max_age_seconds 93600\n' in text
    assert 'mlflow_globus_backup_size_bytes %d\n' % sum(f['bytes'] for f in manifest['files'].values()) in text
    assert oct(textfile.stat().st_mode & 0o777) == '0o644'


@pytest.mark.parametrize('argv, message', [
    (['backup'], 'backup needs a label'),
    (['restore'], 'restore needs a path'),
    (['check'], 'check needs a path'),
    (['drop'], "invalid choice: 'drop'"),
])
def test_bad_arguments_are_refused_before_anything_is_read(store, monkeypatch, capsys, argv, message):
    monkeypatch.setattr('sys.argv', ['mlflow-globus-store.py', *argv])
    with pytest.raises(SystemExit) as exit_info:
        store.main()
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('auth_name, copied', [('auth.db', True), ('mlflow.db', False)])
def test_only_a_separate_sqlite_auth_database_is_copied(tool, tmp_path, auth_name, copied):
    make_store(tmp_path / 'mlflow.db', ['run'])
    make_store(tmp_path / 'auth.db', ['u'])
    path = tool.backup(sqlite_url(tmp_path / 'mlflow.db'), 'uri', 'x', str(tmp_path), sqlite_url(tmp_path / auth_name))
    assert os.path.exists(os.path.join(path, 'auth.db')) is copied


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
