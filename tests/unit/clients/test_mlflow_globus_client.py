# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The batch client package (clients/mlflow-globus-client): when it renews, what it writes, and a 401
answered by one renewal, against a real HTTP server on this machine. The whole job against nginx,
oauth2-proxy and the stand-in provider is tests/e2e/test_batch_job.py."""

from __future__ import annotations

import base64
import http.server
import json
import os
import sys
import threading

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'clients', 'mlflow-globus-client', 'src'))

from mlflow_globus_client import auth, cli, tokens  # noqa: E402  pylint: disable=wrong-import-position


def jwt(**claims):
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip('=')
    return '%s.%s.signature' % (part({'alg': 'RS256'}), part(claims))


@pytest.mark.parametrize('iat, exp, now, margin, renew', [
    (0, 1000, 100, 300, False),
    (0, 1000, 701, 300, True),     # 299 s left
    (0, 20, 5, 300, False),        # a 20 s token: renewed at half its life, not at once
    (0, 20, 11, 300, True),
    (0, 1000, 1001, 0, True),      # expired
])
def test_needs_renewal(iat, exp, now, margin, renew):
    assert tokens.needs_renewal(jwt(iat=iat, exp=exp), now, margin) is renew


def test_no_token_needs_one():
    assert tokens.needs_renewal(None, 0, 300) is True


def test_an_opaque_token_is_refused_with_the_reason():
    with pytest.raises(tokens.TokenError, match='not a JWT'):
        tokens.jwt_claims('AgOpaqueGlobusAccessToken')


def command_source(tmp_path, *tokens_to_print, fail=False):
    """A token command printing the next of ``tokens_to_print`` at each call."""
    queue = tmp_path / 'queue.json'
    queue.write_text(json.dumps(list(tokens_to_print)))
    script = tmp_path / 'print_token.py'
    script.write_text('import json, sys\nq = json.load(open(%r))\n%sprint(q.pop(0))\njson.dump(q, open(%r, "w"))\n'
                      % (str(queue), 'sys.exit("no provider")\n' if fail else '', str(queue)))
    return {'source': 'command', 'command': [sys.executable, str(script)]}


def test_current_token_renews_and_rewrites_the_file(tmp_path):
    old, new = jwt(iat=0, exp=1000, email='svc@x.org'), jwt(iat=900, exp=1900, email='svc@x.org')
    path = str(tmp_path / 'token.json')
    tokens.write_token_file(path, dict(command_source(tmp_path, new), id_token=old))
    assert tokens.current_token(path, 300, now=lambda: 100) == old
    assert tokens.current_token(path, 300, now=lambda: 950) == new
    data = json.loads(open(path, encoding='utf-8').read())
    assert data['id_token'] == new and data['expires_at'] == 1900
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'


def test_a_failed_renewal_keeps_a_token_that_is_still_valid(tmp_path):
    old = jwt(iat=0, exp=1000)
    path = str(tmp_path / 'token.json')
    tokens.write_token_file(path, dict(command_source(tmp_path, fail=True), id_token=old))
    assert tokens.current_token(path, 300, now=lambda: 900) == old
    with pytest.raises(tokens.TokenError, match='has expired and a new one could not be had.*no provider'):
        tokens.current_token(path, 300, now=lambda: 1001)


def test_a_missing_token_file_says_to_log_in(tmp_path):
    with pytest.raises(tokens.TokenError, match='run mlflow-globus-login once'):
        tokens.current_token(str(tmp_path / 'absent.json'), 300)


class _Server(http.server.BaseHTTPRequestHandler):
    accepted = ''
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        token = self.headers.get('Authorization', '')
        _Server.seen.append(token)
        self.send_response(200 if token == 'Bearer ' + _Server.accepted else 401)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Server.seen = []
    yield 'http://127.0.0.1:%d/' % httpd.server_address[1]
    httpd.shutdown()


def test_a_401_renews_once_and_resends(tmp_path, server):
    stale, fresh = jwt(iat=0, exp=4102444800), jwt(iat=1, exp=4102444801)  # both far from their end
    path = str(tmp_path / 'token.json')
    tokens.write_token_file(path, dict(command_source(tmp_path, fresh), id_token=stale))
    _Server.accepted = fresh
    bearer = auth.BearerIdToken(path, 300, threading.Lock())
    reply = requests.get(server, auth=bearer, timeout=5)
    assert reply.status_code == 200
    assert _Server.seen == ['Bearer ' + stale, 'Bearer ' + fresh]
    assert [r.status_code for r in reply.history] == [401]


def test_a_second_401_is_returned_not_retried(tmp_path, server):
    path = str(tmp_path / 'token.json')
    tokens.write_token_file(path, dict(command_source(tmp_path, jwt(iat=1, exp=4102444801)),
                                       id_token=jwt(iat=0, exp=4102444800)))
    _Server.accepted = 'nobody'
    reply = requests.get(server, auth=auth.BearerIdToken(path, 300, threading.Lock()), timeout=5)
    assert reply.status_code == 401 and len(_Server.seen) == 2


def test_the_provider_is_named_globus_and_reads_its_settings(monkeypatch, tmp_path):
    monkeypatch.setenv('MLFLOW_GLOBUS_TOKEN_FILE', str(tmp_path / 't.json'))
    monkeypatch.setenv('MLFLOW_GLOBUS_RENEW_MARGIN', '7')
    provider = auth.GlobusRequestAuthProvider()
    got = provider.get_auth()
    assert provider.get_name() == 'globus' and got.path == str(tmp_path / 't.json') and got.margin == 7


def test_login_writes_the_file_and_says_what_to_export(tmp_path, capsys):
    token = jwt(iat=0, exp=4102444800, email='svc@x.org')
    source = command_source(tmp_path, token)
    path = tmp_path / 'login' / 'token.json'
    assert cli.main(['--token-file', str(path), 'command', '--', *source['command']]) == 0
    out = capsys.readouterr().out
    assert 'signed in as svc@x.org' in out and 'export MLFLOW_TRACKING_AUTH=globus' in out
    assert json.loads(path.read_text())['id_token'] == token


def test_login_with_a_failing_source_writes_nothing(tmp_path, capsys):
    path = tmp_path / 'token.json'
    assert cli.main(['--token-file', str(path), 'command', '--', *command_source(tmp_path, fail=True)['command']]) == 1
    assert 'no provider' in capsys.readouterr().err
    assert not path.exists()
