# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The pool module against a real nginx (the fixture of the nginx_validate_reload tests) in front of two
real HTTP servers: define, drain, refuse to drain the last member, probe before putting back."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import urllib.request

import pytest

from ansible_collections.alcf.mlflow_globus.plugins.modules import nginx_pool
from ansible_collections.alcf.mlflow_globus.plugins.modules import nginx_validate_reload
from ansible_collections.alcf.mlflow_globus.tests.unit.plugins.modules.test_nginx_validate_reload import (
    NGINX, Nginx)
from ansible_collections.alcf.mlflow_globus.tests.unit.plugins.modules.utils import run_module

pytestmark = pytest.mark.skipif(NGINX is None, reason='nginx is not installed on this machine; these tests run a real nginx')


class Backend:
    """An HTTP server that answers every path with its name, and /health with ``self.health``."""

    def __init__(self, name):
        self.name, self.health = name, 200
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def do_GET(self):  # noqa: N802 (http.server's name)
                status = backend.health if self.path == '/health' else 200
                body = backend.name.encode()
                self.send_response(status)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.address = '127.0.0.1:%d' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def pool(tmp_path):
    server = Nginx(tmp_path)
    backends = {'vm1': Backend('vm1'), 'vm2': Backend('vm2')}
    pool_file = tmp_path / 'pools' / 'site-pools.conf'
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    site = server.write(server.site, 'include %s;\nserver { listen 127.0.0.1:%d; location / { proxy_pass http://site_app; '
                        'proxy_http_version 1.1; proxy_set_header Connection ""; } }\n' % (pool_file, port))
    base = dict(binary=server.args([])['binary'], config=str(server.conf), pid_file=str(server.pid_file),
                error_log=str(tmp_path / 'error.log'), lock_file=str(tmp_path / 'module.lock'),
                reload_method='signal', state_dir=str(tmp_path / 'state'))
    defined = dict(base, site='site', pool_file=str(pool_file), reload=False, pools=[dict(
        name='site_app', ready_path='/health',
        members=[dict(host=name, server=b.address) for name, b in backends.items()])])
    failed, written = run_module(nginx_pool.main, defined)
    assert not failed, written
    failed, reloaded = run_module(nginx_validate_reload.main, dict(
        {k: v for k, v in base.items() if k != 'state_dir'}, changes=[site, written]))
    assert not failed and reloaded['reloaded'], reloaded

    class Pool:
        pass
    p = Pool()
    p.nginx, p.backends, p.base, p.defined, p.file = server, backends, base, defined, pool_file
    p.state = tmp_path / 'state' / 'site.json'

    def answers(n=8):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return {opener.open('http://127.0.0.1:%d/x' % port, timeout=5).read().decode() for dummy in range(n)}
    p.answers = answers
    yield p
    server.stop()
    for b in backends.values():
        b.server.shutdown()


def drain(p, members, state='drained', check_mode=False, **options):
    return run_module(nginx_pool.main, dict(p.base, members=members, state=state, **options), check_mode=check_mode)


def test_defined_pool_has_every_member(pool):
    assert pool.answers() == {'vm1', 'vm2'}
    text = pool.file.read_text()
    assert 'server %s max_fails=3 fail_timeout=10s;  # vm1' % pool.backends['vm1'].address in text
    assert json.loads(pool.state.read_text())['drained'] == []


def test_drain_takes_a_member_out_and_waits_for_old_workers(pool):
    failed, result = drain(pool, ['vm1'])
    assert not failed, result
    assert result['changed'] and result['reloaded']
    assert result['drained'] == {'site': ['vm1']} and result['not_drained'] == {}
    assert result['old_workers_left'] == [] and result['drain_waited'] < 10
    assert 'server %s down;  # vm1 (drained)' % pool.backends['vm1'].address in pool.file.read_text()
    assert pool.answers() == {'vm2'}
    # Again: nothing to do, nothing reloaded.
    failed, again = drain(pool, ['vm1'])
    assert not failed and not again['changed'] and not again['reloaded']


def test_the_last_member_is_never_drained(pool):
    drain(pool, ['vm1'])
    failed, result = drain(pool, ['vm2'])
    assert not failed and not result['changed']
    assert result['not_drained'] == {'site': ['vm2']}
    assert pool.answers() == {'vm2'}


def test_a_member_that_is_not_ready_stays_out(pool):
    drain(pool, ['vm1'])
    pool.backends['vm1'].health = 503
    failed, result = drain(pool, ['vm1'], state='active')
    assert failed
    assert 'not put back into the pools, not ready: vm1 (site_app http://%s/health: HTTP 503)' % (
        pool.backends['vm1'].address) in result['msg']
    assert json.loads(pool.state.read_text())['drained'] == ['vm1']
    assert pool.answers() == {'vm2'}


def test_a_ready_member_is_put_back(pool):
    drain(pool, ['vm1'])
    failed, result = drain(pool, ['vm1'], state='active')
    assert not failed and result['changed'] and result['reloaded']
    assert [(pr['host'], pr['status']) for pr in result['probes']] == [('vm1', 200)]
    assert pool.answers(16) == {'vm1', 'vm2'}


def test_check_mode_changes_nothing(pool):
    before = (pool.file.read_text(), pool.state.read_text())
    failed, result = drain(pool, ['vm2'], check_mode=True)
    assert not failed and result['changed']
    assert (pool.file.read_text(), pool.state.read_text()) == before
    assert pool.answers() == {'vm1', 'vm2'}


def test_unknown_members_change_nothing(pool):
    failed, result = drain(pool, ['not-a-member'])
    assert not failed and not result['changed']


def test_a_broken_pool_is_rolled_back(pool):
    # A pool that nginx refuses (a server with no port number nginx can read): both files come back.
    bad = dict(pool.defined, reload=True)
    bad['pools'] = [dict(bad['pools'][0], members=[dict(host='vm1', server='127.0.0.1:notaport')])]
    before = (pool.file.read_text(), pool.state.read_text())
    failed, result = run_module(nginx_pool.main, bad)
    assert failed and result['rolled_back'], result
    assert (pool.file.read_text(), pool.state.read_text()) == before
    assert pool.answers() == {'vm1', 'vm2'}


@pytest.mark.parametrize('members, message', [
    ([], 'pool site_app needs at least one member'),
    ([dict(host='vm1')], 'pool site_app needs at least one member, each with host and server'),
    ([dict(host='vm1', server='a:1'), dict(host='vm1', server='b:1')], 'pool site_app names a member twice: vm1, vm1'),
])
def test_bad_pools_are_refused_before_anything_is_written(pool, members, message):
    before = (pool.file.read_text(), pool.state.read_text())
    bad = dict(pool.defined)
    bad['pools'] = [dict(bad['pools'][0], members=members)]
    failed, result = run_module(nginx_pool.main, bad)
    assert failed and message in result['msg']
    assert (pool.file.read_text(), pool.state.read_text()) == before


def test_a_site_without_state_is_named(pool):
    failed, result = drain(pool, ['vm1'], site='other')
    assert failed and 'no pools of the site other on this host' in result['msg']


def test_draining_waits_for_requests_in_flight(pool):
    # A slow request on vm1 keeps an old worker busy: the module waits for it.
    slow = threading.Event()
    original = pool.backends['vm1'].server.RequestHandlerClass.do_GET

    def slow_get(handler):
        if handler.path == '/slow':
            time.sleep(1.5)
            slow.set()
        original(handler)
    pool.backends['vm1'].server.RequestHandlerClass.do_GET = slow_get
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    site_port = pool.nginx.site.read_text().split('listen 127.0.0.1:')[1].split(';')[0]
    answers = []
    threads = []
    for dummy in range(4):  # at least one lands on vm1
        t = threading.Thread(target=lambda: answers.append(
            opener.open('http://127.0.0.1:%s/slow' % site_port, timeout=10).read().decode()))
        t.start()
        threads.append(t)
    time.sleep(0.3)
    failed, result = drain(pool, ['vm1'])
    for t in threads:
        t.join()
    assert not failed and slow.is_set()
    assert result['drain_waited'] >= 0.5 and result['old_workers_left'] == []
    # Every request in flight was answered, those on the drained member too.
    assert len(answers) == 4 and 'vm1' in answers
