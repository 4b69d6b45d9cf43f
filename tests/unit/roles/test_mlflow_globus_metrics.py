# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The metrics sidecar the mlflow_globus role runs (roles/mlflow_globus/files/mlflow-globus-metrics.py): it
serves the multiprocess files MLflow's workers write (real prometheus_client files, written here by two
processes) merged, with mlflow_globus_mlflow_up from a real HTTP /health, on its own port; nothing but
/metrics; and it keeps serving when MLflow's directory is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import ROLES, role_file_module

MODULE = os.path.join(ROLES, 'mlflow_globus', 'files', 'mlflow-globus-metrics.py')


@pytest.fixture()
def sidecar():
    return role_file_module('mlflow_globus', 'mlflow-globus-metrics.py', 'mlflow_globus_metrics')


def _serve(handler_class):
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Health(BaseHTTPRequestHandler):
    code = 200

    def do_GET(self):  # noqa: N802
        self.send_response(type(self).code)
        self.end_headers()
        self.wfile.write(b'OK')

    def log_message(self, *args):
        pass


@pytest.fixture()
def health():
    handler = type('Health', (_Health,), {'code': 200})
    server = _serve(handler)
    yield handler, 'http://127.0.0.1:%d/health' % server.server_address[1]
    server.shutdown()


# What a worker of `mlflow server --expose-prometheus DIR` does, in a process of its own.
WORKER = '''
import os, sys
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from prometheus_client import Counter
Counter("mlflow_http_request_total", "requests", ["method", "status"]).labels("GET", "200").inc(int(sys.argv[2]))
'''


def _worker(directory, count):
    subprocess.run([sys.executable, '-c', WORKER, str(directory), str(count)], check=True)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers.get('Content-Type'), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, None, ''


def test_serves_the_workers_metrics_merged_and_mlflow_up(sidecar, health, tmp_path):
    _worker(tmp_path, 2)
    _worker(tmp_path, 3)
    server = _serve(sidecar.handler_for(sidecar.registry_for(str(tmp_path), health[1])))
    base = 'http://127.0.0.1:%d' % server.server_address[1]
    status, content_type, text = _get(base + '/metrics')
    assert status == 200 and content_type.startswith('text/plain')
    assert 'mlflow_http_request_total{method="GET",status="200"} 5.0' in text
    assert 'mlflow_globus_mlflow_up 1.0' in text
    for path in ('/', '/metrics/x', '/health', '/metricsx'):
        assert _get(base + path)[0] == 404, path
    server.shutdown()


@pytest.mark.parametrize('code', [500, 503, 302, 401])
def test_mlflow_up_is_0_unless_health_answers_200(sidecar, health, code):
    health[0].code = code
    assert sidecar.mlflow_up(health[1]) == 0
    health[0].code = 200
    assert sidecar.mlflow_up(health[1]) == 1


def test_mlflow_up_is_0_when_nothing_answers(sidecar):
    server = _serve(_Health)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    assert sidecar.mlflow_up('http://127.0.0.1:%d/health' % port, timeout=1) == 0


def test_without_mlflows_directory_only_the_health_gauge(sidecar, tmp_path):
    server = _serve(sidecar.handler_for(sidecar.registry_for(str(tmp_path / 'gone'), 'http://127.0.0.1:9/health', 1)))
    status, _type, text = _get('http://127.0.0.1:%d/metrics' % server.server_address[1])
    assert status == 200
    assert 'mlflow_globus_mlflow_up 0.0' in text and 'mlflow_http_request' not in text
    server.shutdown()


def test_the_command_line_serves_on_the_given_address(sidecar, health, tmp_path):
    _worker(tmp_path, 1)
    process = subprocess.Popen([sys.executable, MODULE, '--listen', '127.0.0.1', '--port', '0', '--dir', str(tmp_path),
                                '--health-url', health[1]], stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        prefix = 'serving MLflow metrics from %s and %s on 127.0.0.1:' % (tmp_path, health[1])
        assert line.startswith(prefix) and line.rstrip().endswith('/metrics'), line
        status, _type, text = _get('http://127.0.0.1:%s' % line[len(prefix):].strip())
        assert status == 200 and 'mlflow_http_request_total{method="GET",status="200"} 1.0' in text
    finally:
        process.terminate()
        process.wait(timeout=10)
