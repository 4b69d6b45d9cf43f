#!/usr/bin/python
# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_validate_reload
short_description: Test the nginx configuration, roll back the files that broke it, reload only a good one
version_added: 0.1.0
author:
  - ALCF operations (@alcf)
description:
  - Runs C(nginx -t) on the whole configuration as it is on disk, after the tasks listed in
    O(changes) have written their files.
  - If the test fails, puts back the previous version of every changed file (from the backup the
    task made with C(backup=true)), removes the files that did not exist before, tests again, and
    fails with nginx's own message. The running nginx is not reloaded and keeps serving the old
    configuration.
  - If the test passes and something changed (or O(force=true)), reloads nginx and waits until
    the master process has started a new generation of worker processes, so that a reload that
    nginx did not carry out is not reported as a success.
  - >-
    C(nginx -t) passes a configuration that listens on a port another process holds (it ignores
    C(Address already in use), since the running nginx holds its own ports), but the master then
    fails the reload, logs C(bind() ... failed (98: Address already in use)) and C(still could not bind())
    to O(error_log) and keeps its old workers. So the module watches O(error_log) from where it ended
    before the reload; an C([emerg]) line of the master (other than a bind() it retries), a master that
    exited, or no new workers within O(timeout) mean the reload failed. Then the previous files are put
    back, tested and reloaded, and the module fails with what nginx logged.
  - The backups are kept until the reload is confirmed, and removed then (unless O(keep_backups=true)).
  - Runs on one host are serialised. The module holds an exclusive C(flock) on O(lock_file) from before
    C(nginx -t) until it exits, across any rollback, the reload and its confirmation.
  - If nginx is not running, nothing is reloaded; the result says so with RV(running=false).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module runs C(nginx -t) on the files as they are on disk (the tasks before it
        wrote nothing), restores, removes and reloads nothing, creates no lock file (it waits for the
        lock only if the file exists), and reports with C(changed) and RV(msg) whether it would reload.
      - C(nginx -t) itself creates the pid file, log files and temp directories of the configuration
        if they are missing, as any nginx start does.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  changes:
    description:
      - The registered results of the M(ansible.builtin.template) or M(ansible.builtin.copy) tasks
        that wrote nginx files. Each needs C(changed) and C(dest) (or C(path)); C(backup_file) is
        there when the task used C(backup=true) and the file existed before.
      - A registered loop result (with a C(results) list) may be given as one item.
      - Only items with C(changed=true) count.
      - On rollback a changed file with a C(backup_file) is restored from it; a changed file without
        one is taken to be new and is removed. So B(every task listed here must use C(backup=true)).
    type: list
    elements: dict
    default: []
  binary:
    description:
      - The nginx executable, a name looked up in E(PATH) and the sbin directories, or a full path.
    type: path
    default: nginx
  config:
    description:
      - The main configuration file, passed to nginx as C(-c). Default is nginx's built-in one.
    type: path
  reload_method:
    description:
      - V(systemd) runs C(systemctl reload) O(service).
      - V(signal) runs C(nginx -s reload), for an nginx that systemd does not manage.
    type: str
    choices: [systemd, signal]
    default: systemd
  service:
    description:
      - The systemd unit to reload when O(reload_method=systemd).
    type: str
    default: nginx
  pid_file:
    description:
      - Where the running nginx master writes its process ID (nginx's C(pid) directive).
    type: path
    default: /run/nginx.pid
  force:
    description:
      - Reload even if no item of O(changes) changed.
    type: bool
    default: false
  keep_backups:
    description:
      - Keep the backup files named in O(changes).
      - By default they are removed once the configuration tested good (or once they were restored),
        because nginx loads every file of a directory included with a bare C(*), a backup beside the
        file included.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for nginx to confirm the reload with a new generation of worker processes.
      - A port held by another process takes nginx about 2.5 seconds to give up on (5 tries of bind()).
    type: int
    default: 10
  error_log:
    description:
      - The error log that the master writes to (the main-level C(error_log) directive of the new configuration).
      - Read from its size before the reload, to find why a reload failed. If it cannot be read, a failed
        reload is still caught, after O(timeout), by the missing new workers.
    type: path
    default: /var/log/nginx/error.log
  lock_file:
    description:
      - The file to hold an exclusive C(flock) on while the module runs; created with mode C(0600) if missing.
      - Every run of this module on a host that should not overlap must name the same file.
    type: path
    default: /run/lock/alcf-nginx-validate-reload.lock
  lock_timeout:
    description:
      - Seconds to wait for another run to release O(lock_file). Then the module fails, naming the lock
        file, how long it waited and the process holding it, before it tests or changes anything.
    type: int
    default: 60
notes:
  - Only nginx's master process and its children are looked at, through C(/proc); nothing else is needed on the host.
  - The lock covers this module only. The M(ansible.builtin.template) tasks that wrote the files ran
    before it, outside the lock; two runs that write the same file at the same time are not made safe by it.
  - Write site files where nginx includes them by a pattern that backups do not match (for example
    C(conf.d/*.conf), or C(sites-available/) linked from C(sites-enabled/)), so that the test does
    not see a backup while O(keep_backups=true) or before this module removed it.
seealso:
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Write the MLflow site
  ansible.builtin.template:
    src: mlflow.conf.j2
    dest: /etc/nginx/conf.d/mlflow.conf
    mode: '0644'
    backup: true
  register: __external_nginx_site

- name: Write the TLS snippet
  ansible.builtin.template:
    src: tls.conf.j2
    dest: /etc/nginx/snippets/mlflow-tls.conf
    mode: '0644'
    backup: true
  register: __external_nginx_tls

- name: Test the configuration, roll back on failure, reload on success
  alcf.mlflow_globus.nginx_validate_reload:
    changes:
      - "{{ __external_nginx_site }}"
      - "{{ __external_nginx_tls }}"

- name: Same for an nginx that systemd does not manage
  alcf.mlflow_globus.nginx_validate_reload:
    changes:
      - "{{ __external_nginx_site }}"
    config: /opt/nginx/conf/nginx.conf
    pid_file: /opt/nginx/logs/nginx.pid
    binary: /opt/nginx/sbin/nginx
    reload_method: signal
    error_log: /opt/nginx/logs/error.log
    lock_timeout: 120
"""

RETURN = r"""
valid:
  description: Whether C(nginx -t) accepted the configuration as written by the tasks in O(changes).
  returned: always
  type: bool
  sample: true
rolled_back:
  description: Whether changed files were put back because the test or the reload failed.
  returned: always
  type: bool
  sample: false
restored:
  description: Files restored from their backup.
  returned: always
  type: list
  elements: str
  sample: [/etc/nginx/conf.d/mlflow.conf]
removed:
  description: Files removed because they did not exist before the change.
  returned: always
  type: list
  elements: str
  sample: [/etc/nginx/snippets/mlflow-tls.conf]
backups_removed:
  description: >-
    Backup files removed because O(keep_backups=false): after the reload was confirmed, after they were
    restored, or after a good test when nginx is not running.
  returned: always
  type: list
  elements: str
  sample: ['/etc/nginx/conf.d/mlflow.conf.4242.2026-01-31@12:00:00~']
retest_rc:
  description: Exit status of C(nginx -t) after the rollback; not 0 means the configuration was broken before this change.
  returned: when the test or the reload failed
  type: int
  sample: 0
reloaded:
  description: Whether nginx was reloaded and started new worker processes.
  returned: always
  type: bool
  sample: true
running:
  description: Whether an nginx master process was found through O(pid_file).
  returned: always
  type: bool
  sample: true
master_pid:
  description: The master process ID, or null if nginx is not running.
  returned: always
  type: int
  sample: 1234
old_workers:
  description: Process IDs of the master's children before the reload.
  returned: always
  type: list
  elements: int
  sample: [1235, 1236]
new_workers:
  description: Process IDs of children that the master started on the reload.
  returned: always
  type: list
  elements: int
  sample: [1301, 1302]
restored_workers:
  description: Process IDs of the workers started when the restored files were reloaded after a failed reload.
  returned: when a failed reload was rolled back and the restored files were reloaded
  type: list
  elements: int
  sample: [1310, 1311]
lock_file:
  description: The lock file held while the module ran.
  returned: always
  type: str
  sample: /run/lock/alcf-nginx-validate-reload.lock
lock_waited:
  description: Seconds spent waiting for another run to release O(lock_file).
  returned: always
  type: float
  sample: 0.0
msg:
  description: What happened, when it is not plain (check mode, nginx not running, a failure).
  returned: sometimes
  type: str
  sample: "check mode: nginx -t passed on the files as they are now; would reload nginx (master pid 1234); nothing was changed"
stdout:
  description: Standard output of the first C(nginx -t).
  returned: always
  type: str
  sample: ''
stderr:
  description: Standard error of the first C(nginx -t), where nginx writes its verdict.
  returned: always
  type: str
  sample: "nginx: configuration file /etc/nginx/nginx.conf test is successful"
"""

import errno
import fcntl
import os
import re
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.atomic_file import replace_file

# How nginx's master logs a reload that it did not carry out (nginx src/os/unix/ngx_process_cycle.c,
# ngx_master_process_cycle: on SIGHUP it logs "reconfiguring" and calls ngx_init_cycle(); when that
# returns NULL it keeps the old cycle and old workers and starts none). ngx_init_cycle (src/core/ngx_cycle.c)
# switches to the new configuration's error_log before it opens the listening sockets, so the reason is
# written there as [emerg] by the master's PID. ngx_open_listening_sockets (src/core/ngx_connection.c)
# retries a bind() that failed with EADDRINUSE 5 times, 500 ms apart ("bind() to ... failed (98: Address
# already in use)" each time), then logs "still could not bind()"; `nginx -t` ignores EADDRINUSE, so a
# port held by another process passes the test and fails only the reload.
EMERG = re.compile(r'^\S+ \S+ \[emerg\] (\d+)#\d+: (.*)$')
RETRIED_BIND = re.compile(r'^bind\(\) to \S+ failed \(%d: ' % errno.EADDRINUSE)


def changed_items(module, changes):
    """Return (dest, backup_file or None) for every changed item, flattening loop results."""
    items = []
    for change in changes:
        nested = change.get('results')
        for item in nested if isinstance(nested, list) else [change]:
            if not isinstance(item, dict) or not item.get('changed'):
                continue
            dest = item.get('dest') or item.get('path')
            if not dest and module.check_mode:
                # A template task in check mode reports a change without naming its file.
                items.append((None, None))
                continue
            if not dest:
                module.fail_json(msg='a changed item of changes has neither dest nor path: %r' % (item,))
            items.append((dest, item.get('backup_file')))
    return items


def lock_holders(fd):
    """PIDs that /proc/locks shows holding a lock on the file open as ``fd`` (best effort, for the message)."""
    ino = os.fstat(fd).st_ino
    pids = []
    try:
        with open('/proc/locks') as f:
            for line in f:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"; waiters have "->" after the number.
                if len(fields) > 5 and fields[1] != '->' and fields[5].rsplit(':', 1)[-1] == str(ino):
                    pids.append(int(fields[4]))
    except (OSError, ValueError):
        pass
    return sorted(set(pids))


def acquire_lock(module, path, timeout, create):
    """Take an exclusive flock on ``path``, waiting up to ``timeout`` seconds; return (fd, seconds waited).

    The lock is released when the module's process exits, whatever way it exits.
    Returns (None, 0) when ``create`` is false and the file does not exist (check mode writes nothing).
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if not create and exc.errno == errno.ENOENT:
            return None, 0
        module.fail_json(msg='cannot open the lock file %s: %s' % (path, to_native(exc)))
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd, round(time.monotonic() - started, 3)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                module.fail_json(msg='cannot lock %s: %s' % (path, to_native(exc)))
        waited = time.monotonic() - started
        if waited >= timeout:
            holders = lock_holders(fd)
            module.fail_json(
                msg='another run holds the lock file %s (%s); gave up after waiting %.1fs (lock_timeout=%d); '
                    'nothing was tested, changed or reloaded' % (
                        path, 'pid %s' % ', '.join(map(str, holders)) if holders else 'holder unknown',
                        waited, timeout),
                lock_file=path, lock_waited=round(waited, 3))
        time.sleep(0.1)


def restore(dest, backup):
    """Copy ``backup`` over ``dest`` by renaming a full copy, keeping the backup's mode and owner."""
    replace_file(dest, lambda tmp: shutil.copy2(backup, tmp), like=backup)


def roll_back(items, result):
    """Put back every changed file (newest first) and return the problems, as 'path: error' strings."""
    problems = []
    # Newest first, so that if one file was written twice its oldest backup ends up in place.
    for dest, backup in reversed(items):
        try:
            if backup:
                restore(dest, backup)
                result['restored'].append(dest)
            elif os.path.lexists(dest):
                os.unlink(dest)
                result['removed'].append(dest)
        except OSError as exc:
            problems.append('%s: %s' % (dest, to_native(exc)))
    result['rolled_back'] = bool(result['restored'] or result['removed'])
    return problems


def remove_backups(items, result):
    for dummy, backup in items:
        if backup and os.path.exists(backup):
            os.unlink(backup)
            result['backups_removed'].append(backup)


def read_master_pid(pid_file):
    """Return the PID in ``pid_file`` if that process is alive, else None."""
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if os.path.exists('/proc/%d' % pid) else None


def children(pid):
    """Return the sorted PIDs whose parent is ``pid``, read from /proc/*/stat."""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                stat = f.read()
        except OSError:
            continue  # the process ended while we looked
        # The command name is in parentheses and may hold spaces or ')': split after the last one.
        fields = stat.rsplit(')', 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(name))
    return sorted(found)


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def master_emergs(path, offset, master):
    """The [emerg] messages that ``master`` wrote to ``path`` after byte ``offset``."""
    if offset is None:
        return []
    try:
        with open(path, 'rb') as f:
            if os.fstat(f.fileno()).st_size < offset:
                offset = 0  # rotated meanwhile
            f.seek(offset)
            text = to_native(f.read(), errors='surrogate_or_replace')
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        match = EMERG.match(line)
        if match and int(match.group(1)) == master:
            found.append(match.group(2))
    return found


def reload_nginx(module, nginx, master):
    """Reload nginx and wait until it is confirmed; return (old workers, new workers, error or None).

    Confirmed means new worker processes under the same master. Not confirmed means the master
    logged a final [emerg] (not a bind() that it will retry), exited, or the timeout passed.
    """
    p = module.params
    old = children(master)
    offset = log_size(p['error_log'])
    if p['reload_method'] == 'systemd':
        cmd = [module.get_bin_path('systemctl', required=True), 'reload', p['service']]
    else:
        cmd = nginx + ['-s', 'reload']
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        return old, [], '%s failed (rc=%d): %s' % (' '.join(cmd), rc, (err or out).strip())

    deadline = time.monotonic() + p['timeout']
    final = None
    while True:
        alive = os.path.exists('/proc/%d' % master)
        current = children(master) if alive else []
        new = [pid for pid in current if pid not in old]
        if alive and new:
            return old, new, None
        if not alive:
            return old, [], 'the nginx master (pid %d) EXITED during the reload' % master
        if final is not None and time.monotonic() > final[1]:
            return old, [], 'the master (pid %d) kept its old workers %s and logged to %s: %s' % (
                master, old, p['error_log'], '; '.join(final[0]))
        if final is None:
            emergs = master_emergs(p['error_log'], offset, master)
            if emergs and not RETRIED_BIND.match(emergs[-1]):
                # A short grace for workers to appear: nginx logs [emerg] only on a failed cycle,
                # but an odd [emerg] on a cycle that succeeded must not be taken for a failure.
                final = (emergs, time.monotonic() + 0.5)
        if time.monotonic() > deadline:
            return old, [], ('reload not confirmed within %ds: master pid %d is alive, old workers %s, '
                             'workers now %s, no new worker and no [emerg] in %s' % (
                                 p['timeout'], master, old, current, p['error_log']))
        time.sleep(0.1)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            changes=dict(type='list', elements='dict', default=[]),
            binary=dict(type='path', default='nginx'),
            config=dict(type='path'),
            reload_method=dict(type='str', choices=['systemd', 'signal'], default='systemd'),
            service=dict(type='str', default='nginx'),
            pid_file=dict(type='path', default='/run/nginx.pid'),
            error_log=dict(type='path', default='/var/log/nginx/error.log'),
            force=dict(type='bool', default=False),
            keep_backups=dict(type='bool', default=False),
            timeout=dict(type='int', default=10),
            lock_file=dict(type='path', default='/run/lock/alcf-nginx-validate-reload.lock'),
            lock_timeout=dict(type='int', default=60),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name in ('timeout', 'lock_timeout'):
        if p[name] < 0:
            module.fail_json(msg='%s must be 0 or more seconds, got %d' % (name, p[name]))
    items = changed_items(module, p['changes'])
    nginx = [module.get_bin_path(p['binary'], required=True)]
    if p['config']:
        nginx += ['-c', p['config']]

    # Held across the test, any rollback, the reload and its confirmation. exit_json and fail_json
    # raise SystemExit, so the finally releases it on every path (and the kernel would, at exit).
    lock, waited = acquire_lock(module, p['lock_file'], p['lock_timeout'], create=not module.check_mode)
    try:
        run(module, nginx, items, waited)
    finally:
        if lock is not None:
            os.close(lock)


def run(module, nginx, items, waited):
    """Test, roll back or reload, confirm; ends with exit_json or fail_json."""
    p = module.params
    result = dict(valid=False, rolled_back=False, restored=[], removed=[], backups_removed=[],
                  reloaded=False, old_workers=[], new_workers=[], lock_file=p['lock_file'], lock_waited=waited)
    master = read_master_pid(p['pid_file'])
    result.update(running=master is not None, master_pid=master)
    rc, out, err = module.run_command(nginx + ['-t'])
    result.update(stdout=out, stderr=err)

    if rc != 0:
        if module.check_mode:
            module.fail_json(msg='nginx -t failed (check mode: nothing restored): %s' % err.strip(), **result)
        problems = roll_back(items, result)
        if not p['keep_backups']:
            remove_backups([(d, b) for d, b in items if d in result['restored']], result)
        retest_rc, dummy, retest_err = module.run_command(nginx + ['-t'])
        msg = 'nginx -t failed; restored %d file(s) and removed %d new file(s); nginx was not reloaded' % (
            len(result['restored']), len(result['removed']))
        if problems:
            msg += '; could NOT roll back %s' % ', '.join(problems)
        if retest_rc != 0 and problems:
            msg += '; nginx -t STILL FAILS after the incomplete rollback: %s' % retest_err.strip()
        elif retest_rc != 0:
            msg += ('; nginx -t STILL FAILS after the rollback, so the configuration was already broken '
                    'before this change: %s' % retest_err.strip())
        module.fail_json(msg='%s. nginx said: %s' % (msg, err.strip()), retest_rc=retest_rc, **result)

    result['valid'] = True
    wants_reload = bool(items) or p['force']
    if module.check_mode:
        module.exit_json(changed=wants_reload, msg='check mode: nginx -t passed on the files as they are now; %s' % (
            'nothing to reload' if not wants_reload else 'nginx is not running, nothing would be reloaded'
            if master is None else 'would reload nginx (master pid %s); nothing was changed' % master), **result)
    if not wants_reload:
        module.exit_json(changed=False, **result)
    if master is None:
        if not p['keep_backups']:
            remove_backups(items, result)
        module.exit_json(changed=bool(items), msg='nginx is not running (no live process in %s); nothing to reload'
                         % p['pid_file'], **result)

    # The backups stay until nginx has really switched to the new files: a reload can still fail.
    result['old_workers'], result['new_workers'], error = reload_nginx(module, nginx, master)
    if error is None:
        result['reloaded'] = True
        if not p['keep_backups']:
            remove_backups(items, result)
        module.exit_json(changed=True, **result)

    problems = roll_back(items, result)
    if not p['keep_backups']:
        remove_backups([(d, b) for d, b in items if d in result['restored']], result)
    msg = 'nginx -t passed but the reload failed: %s; restored %d file(s) and removed %d new file(s)' % (
        error, len(result['restored']), len(result['removed']))
    if problems:
        msg += '; could NOT roll back %s' % ', '.join(problems)
    retest_rc, dummy, retest_err = module.run_command(nginx + ['-t'])
    if not result['rolled_back']:
        msg += '; nothing to put back (forced reload), so nginx was not reloaded again'
    elif retest_rc != 0:
        msg += '; nginx -t FAILS on the restored files, so they were NOT reloaded: %s' % retest_err.strip()
    elif read_master_pid(p['pid_file']) != master:
        msg += '; nginx is NOT running, so the restored files were not reloaded'
    else:
        old2, new2, error2 = reload_nginx(module, nginx, master)
        result['restored_workers'] = new2
        if error2 is None:
            msg += '; the restored files were reloaded (new workers %s)' % new2
        else:
            msg += '; reloading the restored files FAILED too: %s' % error2
    module.fail_json(msg=msg, retest_rc=retest_rc, **result)


if __name__ == '__main__':
    main()
