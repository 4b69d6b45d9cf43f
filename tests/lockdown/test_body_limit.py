"""Bodies nginx reads before anyone signed in are bounded (external_nginx_unauthenticated_max_body_size),
while a signed-in upload to MLflow may be larger (external_nginx_client_max_body_size)."""
import hashlib
import json
import os
import select
import subprocess
import time
import uuid

import pytest

from conftest import read_response

TOTAL = 100 * 1024 * 1024  # what the client would send if nothing stopped it
CHUNK = 16 * 1024


def _chunked_post(target, path, headers=()):
    """POST up to 100 MB in 16 KiB chunks, stopping as soon as an answer arrives; returns the
    answer, the body bytes sent before it and the seconds it took."""
    sock = target.tls()
    head = ['POST %s HTTP/1.1' % path, 'Host: %s' % target.public_host, 'Transfer-Encoding: chunked',
            'Content-Type: application/x-www-form-urlencoded'] + ['%s: %s' % h for h in headers]
    sock.sendall(('\r\n'.join(head) + '\r\n\r\n').encode())
    chunk = b'%x\r\n' % CHUNK + b'a' * CHUNK + b'\r\n'
    sent = 0
    started = time.monotonic()
    try:
        while sent < TOTAL:
            readable, writable, _errors = select.select([sock], [sock], [], 10)
            if readable:
                break
            if writable:
                try:
                    sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += CHUNK
            if time.monotonic() - started > 60:
                break
        resp = read_response(sock, method='POST')
    finally:
        sock.close()
    return resp, sent, time.monotonic() - started


def _error_log_tail(since_lines):
    out = subprocess.run(['podman', 'exec', os.environ['LOCKDOWN_NGINX_CONTAINER'], 'tail', '-n', '+%d' % (since_lines + 1),
                          '/var/log/nginx/error.log'], check=True, capture_output=True, text=True)
    return out.stdout


def _error_log_lines():
    out = subprocess.run(['podman', 'exec', os.environ['LOCKDOWN_NGINX_CONTAINER'], 'wc', '-l', '/var/log/nginx/error.log'],
                         check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0])


@pytest.mark.parametrize('path', ['/oauth2/sign_in', '/oauth2/callback', '/oauth2/start'])
def test_unauthenticated_chunked_body_is_refused_early(target, path):
    before = _error_log_lines()
    resp, sent, seconds = _chunked_post(target, path)
    log = _error_log_tail(before)
    print('LOCKDOWN body-limit %s: %d %s after %d of %d bytes sent, %.2f s; nginx: %s'
          % (path, resp.status, resp.reason, sent, TOTAL, seconds, log.strip().splitlines()[-1:]))
    assert resp.status == 413, resp
    assert resp.header('strict-transport-security'), resp.raw_head
    # The kernel's socket buffers take some before nginx answers; nginx itself stops at the limit.
    assert sent < 16 * 1024 * 1024, sent
    assert seconds < 10, seconds
    assert 'client intended to send too large chunked body' in log, log


def test_unauthenticated_content_length_is_refused_before_the_body(target):
    sock = target.tls()
    try:
        sock.sendall(('POST /oauth2/sign_in HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n'
                      'Content-Type: application/x-www-form-urlencoded\r\n\r\n' % (target.public_host, TOTAL)).encode())
        resp = read_response(sock, method='POST')
    finally:
        sock.close()
    assert resp.status == 413, resp


def test_unauthenticated_upload_to_mlflow_is_refused_before_the_body(target):
    """On the MLflow locations the sign-in check runs first: 401 without reading the body."""
    resp, sent, seconds = _chunked_post(target, '/api/2.0/mlflow-artifacts/artifacts/lockdown/unauth.bin')
    print('LOCKDOWN unauthenticated upload: %d after %d bytes, %.2f s' % (resp.status, sent, seconds))
    assert resp.status == 401, resp
    assert sent < 16 * 1024 * 1024, sent


def test_signed_in_upload_larger_than_the_limit(target, bearer):
    """A signed-in artifact upload of 4 MiB (far over the unauthenticated limit) reaches MLflow and
    comes back byte for byte."""
    size = 4 * 1024 * 1024
    assert size > target.body_limit
    data = os.urandom(size)
    # MLflow's auth app lets a user write artifacts only under a run of an experiment they may change:
    # the signed-in user's own.
    auth = [('Authorization', 'Bearer %s' % bearer), ('Content-Type', 'application/json')]
    created = target.request('POST', '/api/2.0/mlflow/experiments/create', headers=auth,
                             body=json.dumps({'name': 'lockdown-upload-%s' % uuid.uuid4().hex}).encode())
    assert created.status == 200, created
    run = target.request('POST', '/api/2.0/mlflow/runs/create', headers=auth,
                         body=json.dumps({'experiment_id': json.loads(created.body)['experiment_id']}).encode())
    assert run.status == 200, run
    artifact_uri = json.loads(run.body)['run']['info']['artifact_uri']  # mlflow-artifacts:/<exp>/<run>/artifacts
    path = '/api/2.0/mlflow-artifacts/artifacts/%s/%s.bin' % (artifact_uri.split(':', 1)[1].strip('/'), uuid.uuid4().hex)
    started = time.monotonic()
    resp = target.request('PUT', path, headers=[('Authorization', 'Bearer %s' % bearer),
                                                ('Content-Type', 'application/octet-stream')], body=data)
    print('LOCKDOWN signed-in upload of %d bytes: %d in %.2f s' % (size, resp.status, time.monotonic() - started))
    assert resp.status == 200, resp
    back = target.request('GET', path, headers=[('Authorization', 'Bearer %s' % bearer)])
    assert back.status == 200, back
    assert hashlib.sha256(back.body).hexdigest() == hashlib.sha256(data).hexdigest()
