# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module the mlflow_globus role installs for MLflow's auth app (roles/mlflow_globus/files/
mlflow_globus_auth.py): who a request is, the users it creates and keeps in step with the admins
list, and the runs it claims for the signed-in user. Real Flask requests; the auth database is a
recording stand-in here, MLflow's own in the Molecule scenarios."""

from __future__ import annotations

import json

import pytest
from flask import Flask, request

from .conftest import role_file_module


@pytest.fixture()
def auth():
    return role_file_module('mlflow_globus', 'mlflow_globus_auth.py', 'mlflow_globus_auth')  # fresh: nothing seen yet


class Store:
    """Records what the module asks of MLflow's auth store."""

    def __init__(self, users=None, race=False):
        self.users = dict(users or {})
        self.calls = []
        self.race = race

    def has_user(self, username):
        self.calls.append(('has_user', username))
        return username in self.users

    def create_user(self, username, password, is_admin=False):
        self.calls.append(('create_user', username, is_admin))
        assert len(password) >= 12  # MLflow refuses shorter ones
        if self.race:  # another worker won
            self.users[username] = is_admin
            raise RuntimeError('User (username=%s) already exists' % username)
        self.users[username] = is_admin

    def get_user(self, username):
        self.calls.append(('get_user', username))
        return type('User', (), {'is_admin': self.users[username]})()

    def update_user(self, username, is_admin=None):
        self.calls.append(('update_user', username, is_admin))
        self.users[username] = is_admin


@pytest.mark.parametrize('headers, expected', [
    ({'X-Forwarded-Email': 'Alice@Example.org'}, 'alice@example.org'),
    ({'X-Forwarded-Email': '  bob@example.org '}, 'bob@example.org'),
    ({}, None),
    ({'X-Forwarded-Email': ''}, None),
    ({'X-Forwarded-Email': 'mlflow-globus-version-check'}, None),
    ({'X-Forwarded-Email': 'a@example.org,b@example.org'}, None),
    ({'X-Forwarded-Email': 'a@b@example.org'}, None),
    ({'X-Forwarded-Email': 'a b@example.org'}, None),
    ({'X-Forwarded-User': 'alice@example.org'}, None),
])
def test_identity_is_one_email_from_nginx_header(auth, headers, expected):
    assert auth.identity(headers) == expected


def test_identity_header_name_comes_from_the_environment(auth, monkeypatch):
    monkeypatch.setenv('MLFLOW_GLOBUS_IDENTITY_HEADER', 'X-Other')
    assert auth.identity({'X-Other': 'a@example.org', 'X-Forwarded-Email': 'b@example.org'}) == 'a@example.org'


def test_admins_from_the_environment(auth, monkeypatch):
    monkeypatch.setenv('MLFLOW_GLOBUS_ADMINS', ' Root@Example.org,, ops@example.org ')
    assert auth.admins() == {'root@example.org', 'ops@example.org'}
    monkeypatch.delenv('MLFLOW_GLOBUS_ADMINS')
    assert auth.admins() == frozenset()


def test_a_new_user_is_created_once(auth):
    store = Store()
    auth.ensure_user(store, 'alice@example.org', False)
    auth.ensure_user(store, 'alice@example.org', False)
    assert store.users == {'alice@example.org': False}
    assert [call for call in store.calls if call[0] == 'create_user'] == [('create_user', 'alice@example.org', False)]
    # The second request of this process asks the database nothing.
    assert store.calls.count(('has_user', 'alice@example.org')) == 1


@pytest.mark.parametrize('was, wanted', [(False, True), (True, False)])
def test_the_admin_flag_follows_the_inventory(auth, was, wanted):
    store = Store({'alice@example.org': was})
    auth.ensure_user(store, 'alice@example.org', wanted)
    assert store.users['alice@example.org'] is wanted
    assert ('update_user', 'alice@example.org', wanted) in store.calls


def test_an_admin_change_in_the_same_process_is_applied(auth):
    store = Store()
    auth.ensure_user(store, 'alice@example.org', False)
    auth.ensure_user(store, 'alice@example.org', True)
    assert store.users['alice@example.org'] is True


def test_a_user_another_worker_just_created_is_fine(auth):
    store = Store(race=True)
    auth.ensure_user(store, 'alice@example.org', False)
    assert store.users == {'alice@example.org': False}


def test_a_failed_creation_that_left_no_user_is_raised(auth):
    class Broken(Store):
        def create_user(self, username, password, is_admin=False):
            raise RuntimeError('database is locked')
    with pytest.raises(RuntimeError, match='locked'):
        auth.ensure_user(Broken(), 'alice@example.org', False)


APP = Flask(__name__)


@pytest.fixture()
def claim(auth):
    def run(path, body, username='alice@example.org', method='POST'):
        with APP.test_request_context(path, method=method, data=json.dumps(body), content_type='application/json'):
            auth.claim_creation(request, username)
            return request.get_json(force=True, silent=True)
    return run


@pytest.mark.parametrize('path', ['/api/2.0/mlflow/runs/create', '/ajax-api/2.0/mlflow/runs/create'])
def test_a_new_run_is_the_signed_in_users_whatever_the_client_says(claim, path):
    body = claim(path, {'experiment_id': '1', 'user_id': 'root',
                        'tags': [{'key': 'mlflow.user', 'value': 'root'}, {'key': 'team', 'value': 'a'}]})
    assert body['user_id'] == 'alice@example.org'
    assert body['tags'] == [{'key': 'team', 'value': 'a'}, {'key': 'mlflow.user', 'value': 'alice@example.org'}]


def test_a_run_without_user_or_tags_gets_both(claim):
    body = claim('/api/2.0/mlflow/runs/create', {'experiment_id': '1'})
    assert body['user_id'] == 'alice@example.org'
    assert body['tags'] == [{'key': 'mlflow.user', 'value': 'alice@example.org'}]


@pytest.mark.parametrize('path', ['/api/2.0/mlflow/runs/update', '/api/2.0/mlflow/experiments/create',
                                  '/api/2.0/mlflow/runs/create/extra', '/api/2.0/mlflow/registered-models/update'])
def test_other_requests_are_left_alone(claim, path):
    assert claim(path, {'user_id': 'root', 'tags': [{'key': 'mlflow.user', 'value': 'root'}]}) == {
        'user_id': 'root', 'tags': [{'key': 'mlflow.user', 'value': 'root'}]}


@pytest.mark.parametrize('path', ['/api/2.0/mlflow/registered-models/create', '/ajax-api/2.0/mlflow/model-versions/create'])
def test_models_and_versions_carry_the_user_as_a_tag(claim, path):
    body = claim(path, {'name': 'm', 'tags': [{'key': 'mlflow.user', 'value': 'root'}, {'key': 'stage', 'value': 'x'}]})
    assert body == {'name': 'm', 'tags': [{'key': 'stage', 'value': 'x'}, {'key': 'mlflow.user', 'value': 'alice@example.org'}]}
    assert 'user_id' not in body


def test_a_trace_carries_the_user_as_a_tag(claim):
    body = claim('/api/3.0/mlflow/traces', {'trace': {'trace_info': {'trace_id': 't', 'tags': {'mlflow.user': 'root', 'a': 'b'}}}})
    assert body['trace']['trace_info']['tags'] == {'mlflow.user': 'alice@example.org', 'a': 'b'}
    body = claim('/api/3.0/mlflow/traces', {'trace': {'trace_info': {'trace_id': 't'}}})
    assert body['trace']['trace_info']['tags'] == {'mlflow.user': 'alice@example.org'}


def test_only_a_post_is_rewritten(claim):
    assert claim('/api/2.0/mlflow/runs/create', {'user_id': 'root'}, method='PUT') == {'user_id': 'root'}


@pytest.fixture()
def app_with_auth(auth, monkeypatch):
    store = Store()
    monkeypatch.setattr(auth, '_auth_store', lambda: store)
    monkeypatch.setenv('MLFLOW_GLOBUS_ADMINS', 'root@example.org')
    return auth, store


def test_authenticate_names_the_signed_in_user(app_with_auth):
    auth, store = app_with_auth
    with APP.test_request_context('/api/2.0/mlflow/experiments/search', headers={'X-Forwarded-Email': 'Root@example.org'}):
        result = auth.authenticate()
    assert result.username == 'root@example.org'
    assert store.users == {'root@example.org': True}


@pytest.mark.parametrize('path, method', [('/api/2.0/mlflow/experiments/search', 'GET'), ('/', 'GET'),
                                          ('/version', 'POST'), ('/version/', 'GET'), ('/x/version', 'GET')])
def test_authenticate_refuses_a_request_without_the_header(app_with_auth, path, method):
    auth, store = app_with_auth
    with APP.test_request_context(path, method=method):
        result = auth.authenticate()
    assert result.status_code == 401
    assert result.get_json()['error_code'] == 'UNAUTHENTICATED'
    assert not store.users


def test_version_is_public_as_a_user_no_header_can_name(app_with_auth):
    auth, store = app_with_auth
    with APP.test_request_context('/version'):
        result = auth.authenticate()
    assert result.username == 'mlflow-globus-version-check'
    assert auth.identity({'X-Forwarded-Email': result.username}) is None
    assert store.users == {'mlflow-globus-version-check': False}
