# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""http_checks against a real HTTP server on this machine, judged by health_rows as the role does."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from ansible_collections.alcf.mlflow_globus.plugins.filter.service_facts import health_rows
from ansible_collections.alcf.mlflow_globus.plugins.modules import http_checks

from .utils import run_module


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.split('?')[0]
        _Handler.hits[path] = _Handler.hits.get(path, 0) + 1
        if path == '/health':
            self._answer(200, b'OK', {'X-Seen-Host': self.headers.get('Host', '')})
        elif path == '/version':
            self._answer(200, b'3.17.2\n')
        elif path == '/start':
            self._answer(302, b'', {'Location': 'https://issuer.example/authorize?x=1'})
        elif path == '/late' and _Handler.hits[path] < 3:
            self._answer(503, b'starting')
        elif path == '/late':
            self._answer(200, b'up')
        else:
            self._answer(404, b'nope')

    def _answer(self, code, body, headers=None):
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(name='server', scope='module')
def fixture_server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % httpd.server_address[1]
    httpd.shutdown()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _run(checks, **args):
    failed, result = run_module(http_checks.main, dict({'checks': checks, 'delay': 0}, **args))
    assert not failed, result
    return result


def test_each_check_gets_its_status_header_body_and_redirect(server):
    checks = [
        {'name': 'health', 'url': server + '/health', 'expect': [200], 'host': 'mlflow.example.org',
         'header': 'x_seen_host'},
        {'name': 'version', 'url': server + '/version', 'expect': [200], 'content': '3.17.2'},
        {'name': 'start', 'url': server + '/start', 'expect': [302], 'location_prefix': 'https://issuer.example/'},
        {'name': 'missing', 'url': server + '/missing', 'expect': [200]},
    ]
    result = _run(checks)
    assert result['changed'] is False
    health, version, start, missing = result['results']
    assert [r['item'] for r in result['results']] == checks
    assert (health['status'], health['x_seen_host']) == (200, 'mlflow.example.org')
    assert version['content'] == '3.17.2\n'
    assert (start['status'], start['location']) == (302, 'https://issuer.example/authorize?x=1')
    assert missing['status'] == 404 and 'content' not in missing
    rows = health_rows(result, 'vm')
    assert [row['ok'] for row in rows] == [True, True, True, False]


def test_nothing_answering_is_minus_one_and_retried(server):
    url = 'http://127.0.0.1:%d/ping' % _free_port()
    result = _run([{'name': 'down', 'url': url, 'expect': [200]}], retries=2)
    (down,) = result['results']
    assert down['status'] == -1 and down['attempts'] == 3
    assert 'Request failed' in down['msg']
    assert health_rows(result, 'vm')[0]['pattern'].startswith('Nothing answers at %s' % url)


def test_wait_retries_until_an_expected_code(server):
    result = _run([{'name': 'late', 'url': server + '/late', 'expect': [200]}], wait=True, retries=5)
    assert result['results'][0]['status'] == 200 and result['results'][0]['attempts'] == 3


def test_without_wait_an_answer_of_any_code_counts(server):
    result = _run([{'name': 'missing', 'url': server + '/missing', 'expect': [200]}], retries=5)
    assert result['results'][0]['attempts'] == 1


def test_a_check_without_url_or_expect_is_refused():
    failed, result = run_module(http_checks.main, {'checks': [{'name': 'x', 'url': 'http://127.0.0.1/'}]})
    assert failed and 'needs a url and a list of expected codes' in result['msg']
