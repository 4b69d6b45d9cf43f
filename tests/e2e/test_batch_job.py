"""A training job that logs for longer than its ID token lives (clients/mlflow-globus-client): the MLflow
client with MLFLOW_TRACKING_AUTH=globus renews the token from its source before it ends and finishes
with every metric logged, as the service identity. The same job with one fixed token (MLFLOW_TRACKING_TOKEN)
is refused once that token has ended, which shows the token really expires mid-run."""
import base64
import json
import os
import subprocess
import sys
import textwrap

import pytest
import requests

from conftest import REPO

LIFETIME = 12        # seconds an ID token lives here (Globus: about 48 hours)
FIXED_LIFETIME = 20  # the fixed token's: it must outlast the job's start (MLflow's import) on a busy host
STEPS = 30           # one metric a second at least: the run outlives two tokens, and the fixed one
SERVICE = 'svc-training@example.org'
# The job's own confidential client (oauth2_proxy_service_client_ids in inventories/local): its ID tokens
# name it as their audience, as a Globus client-credentials token names the service's client id.
SERVICE_CLIENT = 'svc-training-client'

JOB = textwrap.dedent('''
    import json, os, sys, time, mlflow
    from mlflow import MlflowClient
    mlflow.set_experiment("e2e-batch-job")
    logged = 0
    last_ok = None
    with mlflow.start_run() as run:
        for step in range(%d):
            started = time.time()
            try:
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
                logged += 1
                last_ok = started
            except Exception as exc:
                print(json.dumps({"failed_at": step, "at": time.time(), "last_ok": last_ok,
                                  "error": str(exc)[:300]}), flush=True)
                os._exit(3)  # not through the run's end, which is refused too
            time.sleep(1)
    got = MlflowClient().get_run(run.info.run_id)
    history = MlflowClient().get_metric_history(run.info.run_id, "loss")
    print(json.dumps({"logged": logged, "stored": len(history), "user": got.info.user_id}))
''' % STEPS)


@pytest.fixture(scope='module')
def client_package(tmp_path_factory):
    """The client package, installed from this repository into a directory of its own (entry points included)."""
    target = tmp_path_factory.mktemp('client')
    out = subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                          '--target', str(target), str(REPO / 'clients' / 'mlflow-globus-client')],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return target


def job_env(site, client_package, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith('MLFLOW_')}
    env.update(MLFLOW_TRACKING_URI=site['public_url'], MLFLOW_TRACKING_INSECURE_TLS='true',
               MLFLOW_HTTP_REQUEST_MAX_RETRIES='0', PYTHONPATH=str(client_package), **extra)
    return env


def login(site, client_package, tmp_path, client_id=SERVICE_CLIENT, lifetime=LIFETIME):
    count = tmp_path / 'tokens-issued'
    command = [sys.executable, str(REPO / 'tests' / 'e2e' / 'stand_in_id_token.py'), site['issuer'], client_id,
               'batch-client-secret', 'http://localhost/callback', SERVICE, str(lifetime), str(count)]
    token_file = tmp_path / 'token.json'
    out = subprocess.run([sys.executable, '-m', 'mlflow_globus_client.cli', '--token-file', str(token_file),
                          'command', '--', *command], env=job_env(site, client_package), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'signed in as %s' % SERVICE in out.stdout
    assert oct(token_file.stat().st_mode & 0o777) == '0o600'
    return token_file, count


def id_token_claims(token):
    payload = token.split('.')[1]
    return json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))


def test_a_job_outliving_its_token_logs_every_metric(site, client_package, tmp_path):
    assert SERVICE in site['allowed'], 'the service identity must be on the allowlist like a person'
    token_file, count = login(site, client_package, tmp_path)
    env = job_env(site, client_package, MLFLOW_TRACKING_AUTH='globus', MLFLOW_GLOBUS_TOKEN_FILE=str(token_file),
                  MLFLOW_GLOBUS_RENEW_MARGIN='4')
    out = subprocess.run([sys.executable, '-c', JOB], env=env, capture_output=True, text=True, timeout=300)
    print(out.stdout, out.stderr[-2000:])
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {'logged': STEPS, 'stored': STEPS, 'user': SERVICE}
    issued = count.read_text().split()
    # The login's token, then a new one before each ended: at least STEPS / LIFETIME renewals.
    assert len(issued) >= 1 + STEPS // LIFETIME, issued


def test_the_same_job_with_one_fixed_token_is_refused_when_it_ends(site, client_package, tmp_path):
    token_file, _ = login(site, client_package, tmp_path, lifetime=FIXED_LIFETIME)
    token = json.loads(token_file.read_text())['id_token']
    ends = id_token_claims(token)['exp']
    env = job_env(site, client_package, MLFLOW_TRACKING_TOKEN=token)
    out = subprocess.run([sys.executable, '-c', JOB], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr[-2000:]
    failure = json.loads(out.stdout.strip().splitlines()[-1])
    failure['token_exp'] = ends
    # Judged by the clock, not by steps (a step takes longer on a busy host): the token was accepted,
    # never for a request sent after it ended (exp is whole seconds), and refused only once it had ended.
    assert failure['failed_at'] >= 1 and failure['last_ok'] < ends + 1, failure
    assert failure['at'] >= ends - 1, failure
    # nginx's 401 for the API, as the MLflow client reports it.
    assert failure['error'].startswith('UNAUTHENTICATED: Not signed in'), failure


def test_a_token_for_a_client_the_site_does_not_list_is_refused(site, client_package, tmp_path):
    token_file, _ = login(site, client_package, tmp_path, client_id='unlisted-batch-client')
    token = json.loads(token_file.read_text())['id_token']
    session = requests.Session()
    session.trust_env = False
    reply = session.get(site['public_url'] + '/api/2.0/mlflow/experiments/search?max_results=1', verify=False,
                        headers={'Authorization': 'Bearer ' + token}, timeout=10)
    assert reply.status_code == 401, reply.text
