"""Identity behind the door: each signed-in person is an MLflow user (MLflow's auth app, named by the
email nginx passes after the sign-in check). Through the public nginx with real sessions and bearer
tokens: what a user creates is theirs, others read it and get 403 on changes until granted, an admin
may do anything, and neither a client's own user name nor a forged identity header changes who it is."""
import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest
import requests

from conftest import ansible_playbook, id_token, sign_in

API = '/api/2.0/mlflow'


class User:
    """A signed-in user calling MLflow's REST API through nginx with a bearer token."""

    def __init__(self, site, email):
        self.email, self.site = email, site
        self.session = requests.Session()
        self.session.verify = False
        self.session.trust_env = False
        self.session.headers['Authorization'] = 'Bearer ' + id_token(site, email)

    def call(self, method, path, **kwargs):
        return self.session.request(method, self.site['public_url'] + path, allow_redirects=False, timeout=30, **kwargs)


@pytest.fixture(scope='module')
def people(site):
    alice, bob, carol = site['allowed'][:3]
    return User(site, alice), User(site, bob), User(site, carol)


@pytest.fixture(scope='module')
def alices_work(people):
    """An experiment and a registered model that alice created."""
    alice = people[0]
    tag = uuid.uuid4().hex[:8]
    r = alice.call('POST', API + '/experiments/create', json={'name': 'alice-%s' % tag})
    assert r.status_code == 200, r.text
    experiment_id = r.json()['experiment_id']
    r = alice.call('POST', API + '/registered-models/create', json={'name': 'alice-model-%s' % tag,
                                                                    'tags': [{'key': 'mlflow.user', 'value': 'root'}]})
    assert r.status_code == 200, r.text
    return {'experiment_id': experiment_id, 'model': 'alice-model-%s' % tag, 'tag': tag}


def test_each_token_is_its_own_user(people):
    for person in people:
        r = person.call('GET', API + '/users/current')
        assert r.status_code == 200, r.text
        assert r.json()['user']['username'] == person.email
    assert [p.call('GET', API + '/users/current').json()['user']['is_admin'] for p in people] == [False, False, True]


def test_a_browser_session_is_the_same_user_as_the_token(site, people):
    alice = people[0]
    r = sign_in(site, alice.email).get(site['public_url'] + '/ajax-api/2.0/mlflow/users/current', allow_redirects=False)
    assert r.status_code == 200, r.text
    assert r.json()['user']['username'] == alice.email


def test_a_model_carries_its_creators_email_whatever_the_client_said(people, alices_work):
    r = people[1].call('GET', API + '/registered-models/get', params={'name': alices_work['model']})
    tags = {tag['key']: tag['value'] for tag in r.json()['registered_model'].get('tags', [])}
    assert tags.get('mlflow.user') == people[0].email, r.text


def test_others_read_but_may_not_change(people, alices_work):
    _, bob, _ = people
    experiment = alices_work['experiment_id']
    r = bob.call('GET', API + '/experiments/get', params={'experiment_id': experiment})
    assert r.status_code == 200, r.text
    assert bob.call('POST', API + '/experiments/update',
                    json={'experiment_id': experiment, 'new_name': 'bob-was-here'}).status_code == 403
    assert bob.call('POST', API + '/experiments/delete', json={'experiment_id': experiment}).status_code == 403
    assert bob.call('POST', API + '/runs/create', json={'experiment_id': experiment}).status_code == 403
    assert bob.call('GET', API + '/registered-models/get', params={'name': alices_work['model']}).status_code == 200
    assert bob.call('PATCH', API + '/registered-models/update',
                    json={'name': alices_work['model'], 'description': 'bob'}).status_code == 403
    assert bob.call('DELETE', API + '/registered-models/delete', json={'name': alices_work['model']}).status_code == 403


def test_a_forged_identity_header_changes_nothing(site, people, alices_work):
    _, bob, _ = people
    forged = {'X-Forwarded-Email': people[0].email, 'X-Auth-Request-Email': people[0].email,
              'X-Forwarded-User': people[0].email, 'Remote-User': people[0].email}
    r = bob.call('GET', API + '/users/current', headers=forged)
    assert r.json()['user']['username'] == bob.email
    r = bob.call('POST', API + '/experiments/update', headers=forged,
                 json={'experiment_id': alices_work['experiment_id'], 'new_name': 'forged'})
    assert r.status_code == 403, r.text


def test_edit_once_granted_and_an_admin_may_do_anything(people, alices_work):
    alice, bob, carol = people
    experiment = alices_work['experiment_id']
    # MLflow's own grant, by the owner (who may manage what she created).
    r = alice.call('POST', '/api/3.0/mlflow/users/permissions/grant', json={
        'username': bob.email, 'resource_type': 'experiment', 'resource_id': experiment, 'permission': 'EDIT'})
    assert r.status_code == 200, r.text
    assert bob.call('POST', API + '/experiments/update',
                    json={'experiment_id': experiment, 'new_name': 'alice-%s-edited-by-bob' % alices_work['tag']}
                    ).status_code == 200
    assert bob.call('POST', API + '/experiments/delete', json={'experiment_id': experiment}).status_code == 403
    assert carol.call('PATCH', API + '/registered-models/update',
                      json={'name': alices_work['model'], 'description': 'carol, admin'}).status_code == 200
    assert carol.call('POST', API + '/experiments/delete', json={'experiment_id': experiment}).status_code == 200


CLIENT = textwrap.dedent('''
    import json, mlflow
    mlflow.set_experiment("e2e-identity-%s")
    with mlflow.start_run(tags={"mlflow.user": "root"}) as run:
        mlflow.log_metric("loss", 0.5)
        with mlflow.start_span("step") as span:
            span.set_inputs({"x": 1})
    got = mlflow.MlflowClient().get_run(run.info.run_id)
    mlflow.flush_trace_async_logging()  # the spans go out in the background
    trace = mlflow.get_trace(mlflow.get_last_active_trace_id())
    print(json.dumps({"user_id": got.info.user_id, "tag": got.data.tags.get("mlflow.user"),
                      "trace_user": trace.info.tags.get("mlflow.user")}))
''')


def test_runs_carry_the_signed_in_email_whatever_the_client_says(site, people):
    bob = people[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith('MLFLOW_')}
    env.update(MLFLOW_TRACKING_URI=site['public_url'], MLFLOW_TRACKING_INSECURE_TLS='true',
               MLFLOW_HTTP_REQUEST_MAX_RETRIES='0', USER='root', LOGNAME='root',  # the client's own user name
               MLFLOW_TRACKING_TOKEN=bob.session.headers['Authorization'].split(' ', 1)[1])
    out = subprocess.run([sys.executable, '-c', CLIENT % uuid.uuid4().hex[:8]], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {'user_id': bob.email, 'tag': bob.email, 'trace_user': bob.email}


def permissions_playbook(site, *args):
    result = ansible_playbook(site, 'playbooks/permissions.yml', *args)
    return result.returncode, result.stdout + result.stderr


def test_permissions_playbook_grants_revokes_and_survives_an_allowlist_removal(site, people):
    alice, bob, _ = people
    tag = uuid.uuid4().hex[:8]
    experiment = 'alice-shared-%s' % tag
    r = alice.call('POST', API + '/experiments/create', json={'name': experiment})
    assert r.status_code == 200, r.text
    experiment_id = r.json()['experiment_id']

    def bob_renames():
        return bob.call('POST', API + '/experiments/update',
                        json={'experiment_id': experiment_id, 'new_name': experiment}).status_code

    grant = json.dumps({'mlflow_globus_permissions': [{'user': bob.email, 'experiment': experiment, 'permission': 'EDIT'}]})
    assert bob_renames() == 403
    # Check mode changes nothing, and says what it would do.
    rc, out = permissions_playbook(site, '-e', grant, '--check', '--diff')
    assert rc == 0 and '(default) -> EDIT (create)' in out, out[-3000:]
    assert bob_renames() == 403
    rc, out = permissions_playbook(site, '-e', grant)
    assert rc == 0 and 'changed=1' in out, out[-3000:]
    assert bob_renames() == 200
    rc, out = permissions_playbook(site, '-e', grant)
    assert rc == 0 and 'changed=0' in out and 'EDIT -> EDIT (none)' in out, out[-3000:]

    # Off the allowlist: refused at the door; back on it: the grant is still there.
    from test_allowlist import set_allowlist
    try:
        set_allowlist(site, [alice.email])
        assert bob_renames() == 401
    finally:
        set_allowlist(site, site['allowed'])
    assert bob_renames() == 200

    # One grant as plain variables (an AWX survey), revoking it.
    rc, out = permissions_playbook(site, '-e', 'grant_user=%s' % bob.email, '-e', 'grant_experiment=%s' % experiment,
                                   '-e', 'grant_state=absent')
    assert rc == 0 and 'EDIT -> (default) (delete)' in out, out[-3000:]
    assert bob_renames() == 403


def test_permissions_playbook_refuses_unknown_names_and_changes_nothing(site, people):
    bob = people[1]
    bad = json.dumps({'mlflow_globus_permissions': [
        {'user': bob.email, 'experiment': 'no-such-experiment-%s' % uuid.uuid4().hex[:6], 'permission': 'EDIT'},
        {'user': 'mallory@example.org', 'registered_model': 'no-such-model', 'permission': 'READ'},
        {'user': bob.email, 'experiment': 'x', 'permission': 'WRITE'}]})
    rc, out = permissions_playbook(site, '-e', bad)
    assert rc != 0
    assert 'value of permission must be one of: READ, USE, EDIT, MANAGE, NO_PERMISSIONS, got: WRITE' in out, out[-3000:]
    good_names_only = json.dumps({'mlflow_globus_permissions': json.loads(bad)['mlflow_globus_permissions'][:2]})
    rc, out = permissions_playbook(site, '-e', good_names_only)
    assert rc != 0
    assert 'Nothing was changed' in out and "experiment 'no-such-experiment-" in out, out[-3000:]
    assert "registered model 'no-such-model' does not exist" in out and 'no MLflow user mallory@example.org' in out
