# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the module against a real nginx started from a configuration in tmp_path."""

from __future__ import annotations

import fcntl
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
        return dict(dict(changes=changes, binary=NGINX, config=str(self.conf), pid_file=str(self.pid_file),
                         error_log=str(self.tmp / 'error.log'), lock_file=str(self.tmp / 'module.lock'),
                         reload_method='signal'), **options)

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
        'nginx -t passed but the reload failed: reload not confirmed within 1s: master pid %d is alive, '
        'old workers [], workers now [], no new worker and no [emerg] in %s; restored 0 file(s) and removed '
        '0 new file(s); nothing to put back (forced reload), so nginx was not reloaded again'
        % (sleeper.pid, args['error_log']))
    assert result['reloaded'] is False


def test_changed_item_without_dest(nginx):
    failed, result = run_module(main, nginx.args([{'changed': True}]))
    assert failed
    assert result['msg'] == "a changed item of changes has neither dest nor path: {'changed': True}"


@pytest.fixture
def port_holder():
    """A listening socket of another process, on a port nginx does not use yet."""
    holder = subprocess.Popen(
        ['python3', '-c', 'import socket, sys, time\n'
         's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()\n'
         'print(s.getsockname()[1], flush=True); time.sleep(120)'],
        stdout=subprocess.PIPE, text=True)
    port = int(holder.stdout.readline())
    yield port
    holder.kill()
    holder.wait()


def test_reload_failing_on_a_held_port_is_rolled_back(nginx, port_holder):
    old = nginx.workers()
    original = nginx.site.read_bytes()
    held = 'server {{ listen 127.0.0.1:{port}; listen 127.0.0.1:{held}; return 200 "v2"; }}\n'.format(
        port=nginx.port, held=port_holder)
    site = nginx.write(nginx.site, held)
    extra = nginx.write(nginx.tmp / 'conf.d' / 'extra.conf', '# new file\n')
    failed, result = run_module(main, nginx.args([site, extra]))
    assert failed
    assert result['valid'] is True and result['reloaded'] is False
    assert result['msg'].startswith(
        'nginx -t passed but the reload failed: the master (pid %d) kept its old workers %s and logged to %s: '
        'bind() to 127.0.0.1:%d failed (98: Address already in use)' % (
            nginx.proc.pid, old, nginx.tmp / 'error.log', port_holder))
    assert 'still could not bind()' in result['msg']
    assert result['msg'].endswith(
        '; restored 1 file(s) and removed 1 new file(s); the restored files were reloaded (new workers %s)'
        % result['restored_workers'])
    assert result['rolled_back'] is True and result['retest_rc'] == 0
    assert result['restored'] == [str(nginx.site)] and result['removed'] == [extra['dest']]
    assert nginx.site.read_bytes() == original
    assert not os.path.exists(extra['dest'])
    assert result['backups_removed'] == [site['backup_file']]
    assert result['restored_workers'] and not set(result['restored_workers']) & set(old)
    assert nginx.get() == 'v1'
    assert nginx.proc.poll() is None
    # A later good change still reloads.
    change = nginx.write(nginx.site, nginx.site_text('v3'))
    failed, result = run_module(main, nginx.args([change]))
    assert not failed, result
    assert wait_for_body(nginx, 'v3') == 'v3'


def test_failed_reload_keeps_backups_when_asked(nginx, port_holder):
    held = 'server {{ listen 127.0.0.1:{held}; return 200 "v2"; }}\n'.format(held=port_holder)
    site = nginx.write(nginx.site, held)
    failed, result = run_module(main, nginx.args([site], keep_backups=True))
    assert failed and result['rolled_back']
    assert result['backups_removed'] == []
    assert os.path.exists(site['backup_file'])
    assert nginx.get() == 'v1'


def test_backups_stay_until_the_reload_is_confirmed(nginx, monkeypatch):
    site = nginx.write(nginx.site, nginx.site_text('v2'))
    seen = []
    from ansible_collections.alcf.mlflow_globus.plugins.module_utils import nginx_reload as engine
    real = engine.reload_nginx

    def spy(module, settings, binary, master):
        seen.append(os.path.exists(site['backup_file']))
        return real(module, settings, binary, master)
    monkeypatch.setattr(engine, 'reload_nginx', spy)
    failed, result = run_module(main, nginx.args([site]))
    assert not failed and result['reloaded']
    assert seen == [True]
    assert not os.path.exists(site['backup_file'])


def hold_lock(path, seconds):
    """Another process holding an exclusive flock on ``path`` for ``seconds``; returns once it holds it."""
    holder = subprocess.Popen(
        ['python3', '-c', 'import fcntl, os, sys, time\n'
         'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); fcntl.flock(fd, fcntl.LOCK_EX)\n'
         'print("held", flush=True); time.sleep(float(sys.argv[2]))', str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == 'held\n'
    return holder


def test_lock_contention_waits_for_the_other_run(nginx):
    args = nginx.args([nginx.write(nginx.site, nginx.site_text('v2'))])
    holder = hold_lock(args['lock_file'], 2)
    started = time.monotonic()
    try:
        failed, result = run_module(main, args)
    finally:
        holder.kill()
        holder.wait()
    assert not failed, result
    assert result['reloaded']
    assert 1.5 <= result['lock_waited'] <= time.monotonic() - started
    assert stat.S_IMODE(os.stat(args['lock_file']).st_mode) == 0o600


def test_lock_timeout_fails_before_anything(nginx):
    old = nginx.workers()
    site = nginx.write(nginx.site, nginx.site_text('v2', broken=True))
    args = nginx.args([site], lock_timeout=1)
    holder = hold_lock(args['lock_file'], 30)
    try:
        failed, result = run_module(main, args)
    finally:
        holder.kill()
        holder.wait()
    assert failed
    assert result['msg'].startswith('another run holds the lock file %s (pid %d); gave up after waiting 1.'
                                    % (args['lock_file'], holder.pid))
    assert result['msg'].endswith('s (lock_timeout=1); nothing was tested, changed or reloaded')
    assert 'valid' not in result
    # The broken file and its backup are as the other run left them: this run touched nothing.
    assert 'retrun' in nginx.site.read_text()
    assert os.path.exists(site['backup_file'])
    assert nginx.workers() == old


def test_lock_is_released_when_the_module_exits(nginx):
    args = nginx.args([], force=True)
    failed, result = run_module(main, args)
    assert not failed and result['lock_waited'] < 1
    fd = os.open(args['lock_file'], os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the module still held it
    finally:
        os.close(fd)


def test_check_mode_creates_no_lock_file(nginx):
    args = nginx.args([nginx.write(nginx.site, nginx.site_text('v2'))])
    failed, result = run_module(main, args, check_mode=True)
    assert not failed
    assert result['msg'] == ('check mode: nginx -t passed on the files as they are now; '
                             'would reload nginx (master pid %d); nothing was changed' % nginx.proc.pid)
    assert not os.path.exists(args['lock_file'])


def test_negative_lock_timeout_is_refused(nginx):
    failed, result = run_module(main, nginx.args([], lock_timeout=-1))
    assert failed
    assert result['msg'] == 'lock_timeout must be 0 or more seconds, got -1'
