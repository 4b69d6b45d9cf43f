"""The MLflow Python client through the public URL with a bearer token, as a batch job would."""
import os
import subprocess
import sys
import textwrap

import requests

from conftest import id_token

CLIENT = textwrap.dedent('''
    import json, sys, tempfile, os
    import mlflow
    from mlflow.tracking import MlflowClient
    mlflow.set_experiment("e2e-client")
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("loss", 0.25, step=1)
        path = os.path.join(tempfile.mkdtemp(), "notes.txt")
        open(path, "w").write("logged through nginx and oauth2-proxy\\n")
        mlflow.log_artifact(path)
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    local = client.download_artifacts(run.info.run_id, "notes.txt", tempfile.mkdtemp())
    print(json.dumps({"params": got.data.params, "metrics": got.data.metrics,
                      "artifact": open(local).read()}))
''')


def run_client(site, token=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith('MLFLOW_')}
    env.update(MLFLOW_TRACKING_URI=site['public_url'], MLFLOW_TRACKING_INSECURE_TLS='true',
               MLFLOW_HTTP_REQUEST_MAX_RETRIES='0')
    if token:
        env['MLFLOW_TRACKING_TOKEN'] = token
    return subprocess.run([sys.executable, '-c', CLIENT], env=env, capture_output=True, text=True, timeout=300)


def test_client_logs_and_reads_back_with_a_bearer_token(site):
    import json
    result = run_client(site, id_token(site, site['allowed'][0]))
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got == {'params': {'alpha': '0.5'}, 'metrics': {'loss': 0.25},
                   'artifact': 'logged through nginx and oauth2-proxy\n'}


def test_client_without_a_token_gets_401(site):
    result = run_client(site)
    assert result.returncode != 0
    # nginx's 401 body for API clients, as the MLflow client reports it.
    assert 'UNAUTHENTICATED: Not signed in' in result.stderr, result.stderr[-2000:]
    # And the answer behind it is a 401, not a sign-in page.
    r = requests.post(site['public_url'] + '/api/2.0/mlflow/experiments/create', json={'name': 'x'},
                      verify=False, allow_redirects=False, timeout=10)
    assert r.status_code == 401


def test_token_of_a_user_not_on_the_list_is_refused(site):
    token = id_token(site, 'mallory@example.org')
    r = requests.get(site['public_url'] + '/api/2.0/mlflow/experiments/search',
                     headers={'Authorization': 'Bearer ' + token}, verify=False, allow_redirects=False, timeout=10)
    assert r.status_code == 401
