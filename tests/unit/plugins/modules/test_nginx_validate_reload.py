# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the module against a real nginx started from a configuration in tmp_path."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from ansible_collections.alcf.mlflow_globus.plugins.modules.nginx_validate_reload import main
from ansible_collections.alcf.mlflow_globus.tests.unit.plugins.modules.utils import run_module

NGINX = shutil.which('nginx', path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin')
pytestmark = pytest.mark.skipif(NGINX is None, reason='nginx is not installed on this machine; these tests run a real nginx')

MAIN_CONF = """\
{user}
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/temp/body;
    proxy_temp_path {tmp}/temp/proxy;
    fastcgi_temp_path {tmp}/temp/fastcgi;
    uwsgi_temp_path {tmp}/temp/uwsgi;
    scgi_temp_path {tmp}/temp/scgi;
    include {tmp}/conf.d/*.conf;
}}
"""
SITE = 'server {{ listen 127.0.0.1:{port}; return 200 "{body}"; }}\n'
BROKEN_SITE = 'server {{ listen 127.0.0.1:{port}; retrun 200 "{body}"; }}\n'


class Nginx:
    def __init__(self, tmp):
        self.tmp = tmp
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        (tmp / 'conf.d').mkdir()
        (tmp / 'temp').mkdir()
        self.conf = tmp / 'nginx.conf'
        # As root, workers would run as nobody, who cannot read tmp_path.
        self.conf.write_text(MAIN_CONF.format(tmp=tmp, user='user root;' if os.geteuid() == 0 else ''))
        self.site = tmp / 'conf.d' / 'site.conf'
        self.site.write_text(self.site_text('v1'))
        os.chmod(self.site, 0o604)
        self.pid_file = tmp / 'nginx.pid'
        self.proc = subprocess.Popen([NGINX, '-c', str(self.conf), '-g', 'daemon off;'])
        deadline = time.monotonic() + 10
        while self.get() != 'v1':
            assert self.proc.poll() is None, 'nginx exited: %s' % (tmp / 'error.log').read_text()
            assert time.monotonic() < deadline, 'nginx did not answer on port %d' % self.port
            time.sleep(0.05)
        self.workers()  # waits until all workers are up

    def site_text(self, body, broken=False):
        return (BROKEN_SITE if broken else SITE).format(port=self.port, body=body)

    def get(self):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            return opener.open('http://127.0.0.1:%d/' % self.port, timeout=2).read().decode()
        except (urllib.error.URLError, OSError):
            return None

    def workers(self):
        """The master's children, read independently of the module (through task/*/children)."""
        deadline = time.monotonic() + 10
        while True:
            pids = set()
            for path in glob.glob('/proc/%d/task/*/children' % self.proc.pid):
                with open(path) as f:
                    pids.update(int(p) for p in f.read().split())
            if len(pids) >= 2 or time.monotonic() > deadline:
                return sorted(pids)
            time.sleep(0.05)

    def write(self, path, text):
        """Write ``path`` the way ansible.builtin.template with backup=true does; return its result."""
        result = {'changed': True, 'dest': str(path)}
        if path.exists():
            backup = '%s.%d.%s~' % (path, os.getpid(), time.strftime('%Y-%m-%d@%H:%M:%S'))
            shutil.copy2(path, backup)
            result['backup_file'] = backup
        path.write_text(text)
        return result

    def args(self, changes, **options):
        return dict(options, changes=changes, binary=NGINX, config=str(self.conf), pid_file=str(self.pid_file),
                    reload_method='signal')

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def nginx(tmp_path):
    server = Nginx(tmp_path)
    yield server
    server.stop()


def wait_for_body(nginx, body):
    deadline = time.monotonic() + 5
    while nginx.get() != body and time.monotonic() < deadline:
        time.sleep(0.05)
    return nginx.get()


def test_good_change_is_reloaded(nginx):
    old = nginx.workers()
    change = nginx.write(nginx.site, nginx.site_text('v2'))
    failed, result = run_module(main, nginx.args([change, {'changed': False, 'dest': '/nonexistent'}]))
    assert not failed, result
    assert result['changed'] is result['valid'] is result['reloaded'] is result['running'] is True
    assert result['rolled_back'] is False
    assert (result['restored'], result['removed']) == ([], [])
    assert result['master_pid'] == nginx.proc.pid
    assert result['old_workers'] == old
    assert result['new_workers'] and not set(result['new_workers']) & set(old)
    assert 'test is successful' in result['stderr']
    assert result['backups_removed'] == [change['backup_file']]
    assert not os.path.exists(change['backup_file'])
    assert wait_for_body(nginx, 'v2') == 'v2'
    assert nginx.proc.poll() is None


def test_broken_change_is_rolled_back_and_not_reloaded(nginx):
    old = nginx.workers()
    original = nginx.site.read_bytes()
    site = nginx.write(nginx.site, nginx.site_text('v2', broken=True))
    os.chmod(nginx.site, 0o600)
    extra = nginx.write(nginx.tmp / 'conf.d' / 'extra.conf', '# new file\n')
    failed, result = run_module(main, nginx.args([site, extra]))
    assert failed
    assert result['msg'].startswith(
        'nginx -t failed; restored 1 file(s) and removed 1 new file(s); nginx was not reloaded. nginx said: ')
    assert 'unknown directive "retrun"' in result['msg']
    assert 'unknown directive "retrun"' in result['stderr']
    assert 'STILL FAILS' not in result['msg']
    assert result['retest_rc'] == 0
    assert result['rolled_back'] is True
    assert result['valid'] is result['reloaded'] is False
    assert (result['running'], result['master_pid'], result['new_workers']) == (True, nginx.proc.pid, [])
    assert result['restored'] == [str(nginx.site)]
    assert result['removed'] == [str(extra['dest'])]
    assert nginx.site.read_bytes() == original
    assert stat.S_IMODE(os.stat(nginx.site).st_mode) == 0o604
    assert not os.path.exists(extra['dest'])
    assert result['backups_removed'] == [site['backup_file']]
    assert not os.path.exists(site['backup_file'])
    assert nginx.get() == 'v1'
    assert nginx.proc.poll() is None
    assert nginx.workers() == old


def test_config_broken_before_the_change(nginx):
    nginx.site.write_text(nginx.site_text('v1', broken=True))
    failed, result = run_module(main, nginx.args([]))
    assert failed
    assert result['msg'].startswith(
        'nginx -t failed; restored 0 file(s) and removed 0 new file(s); nginx was not reloaded; '
        'nginx -t STILL FAILS after the rollback, so the configuration was already broken before this change: ')
    assert result['retest_rc'] != 0
    assert result['rolled_back'] is False
    assert nginx.get() == 'v1'


def test_missing_backup_is_reported(nginx):
    site = nginx.write(nginx.site, nginx.site_text('v2', broken=True))
    os.unlink(site['backup_file'])
    failed, result = run_module(main, nginx.args([site]))
    assert failed
    assert 'could NOT roll back %s: ' % nginx.site in result['msg']
    assert 'nginx -t STILL FAILS after the incomplete rollback: ' in result['msg']
    assert 'already broken' not in result['msg']
    assert result['restored'] == []


def test_nothing_changed_no_reload(nginx):
    old = nginx.workers()
    failed, result = run_module(main, nginx.args([{'changed': False, 'dest': str(nginx.site)}]))
    assert not failed
    assert result['changed'] is result['reloaded'] is False
    assert result['valid'] is result['running'] is True
    assert result['new_workers'] == []
    assert nginx.workers() == old


def test_force_reloads(nginx):
    old = nginx.workers()
    failed, result = run_module(main, nginx.args([], force=True))
    assert not failed
    assert result['changed'] is result['reloaded'] is True
    assert result['new_workers'] and not set(result['new_workers']) & set(old)


def test_loop_results_and_keep_backups(nginx):
    site = nginx.write(nginx.site, nginx.site_text('v3'))
    loop = {'changed': True, 'results': [site, {'changed': False, 'dest': '/nonexistent'}]}
    failed, result = run_module(main, nginx.args([loop], keep_backups=True))
    assert not failed and result['reloaded']
    assert result['backups_removed'] == []
    assert os.path.exists(site['backup_file'])
    assert wait_for_body(nginx, 'v3') == 'v3'


def test_check_mode_good_change_not_reloaded(nginx):
    old = nginx.workers()
    site = nginx.write(nginx.site, nginx.site_text('v2'))
    failed, result = run_module(main, nginx.args([site]), check_mode=True)
    assert not failed
    assert result['changed'] is True
    assert result['reloaded'] is False
    assert result['valid'] is True
    assert os.path.exists(site['backup_file'])
    assert nginx.get() == 'v1'
    assert nginx.workers() == old


def test_check_mode_broken_change_not_restored(nginx):
    broken = nginx.site_text('v2', broken=True)
    site = nginx.write(nginx.site, broken)
    failed, result = run_module(main, nginx.args([site]), check_mode=True)
    assert failed
    assert result['msg'].startswith('nginx -t failed (check mode: nothing restored): ')
    assert result['rolled_back'] is False
    assert nginx.site.read_text() == broken
    assert os.path.exists(site['backup_file'])
    assert nginx.get() == 'v1'


def test_not_running(nginx, tmp_path):
    site = nginx.write(nginx.site, nginx.site_text('v2'))
    args = nginx.args([site])
    args['pid_file'] = str(tmp_path / 'no.pid')
    failed, result = run_module(main, args)
    assert not failed
    assert result['changed'] is True
    assert result['running'] is result['reloaded'] is False
    assert result['master_pid'] is None
    assert result['msg'] == 'nginx is not running (no live process in %s); nothing to reload' % args['pid_file']


def test_reload_not_confirmed(nginx, tmp_path):
    # A live process that is not the nginx master never gets new workers.
    sleeper = subprocess.Popen(['sleep', '30'])
    try:
        pid_file = tmp_path / 'sleep.pid'
        pid_file.write_text('%d\n' % sleeper.pid)
        args = nginx.args([], force=True, timeout=1)
        args['pid_file'] = str(pid_file)
        failed, result = run_module(main, args)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert failed
    assert result['msg'] == (
        'nginx reload not confirmed within 1s: master pid %d is alive, old workers [], workers now [], '
        'no new worker; see the nginx error log' % sleeper.pid)
    assert result['reloaded'] is False


def test_changed_item_without_dest(nginx):
    failed, result = run_module(main, nginx.args([{'changed': True}]))
    assert failed
    assert result['msg'] == "a changed item of changes has neither dest nor path: {'changed': True}"
