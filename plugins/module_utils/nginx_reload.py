# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test nginx's configuration, roll back the files that broke it, reload only a good one, confirm the
reload: the engine of the modules nginx_validate_reload and nginx_pool (their documentation says what
it does). ``settings`` holds the nginx options those modules share: binary, config, reload_method,
service, pid_file, error_log, timeout, force and keep_backups."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import time

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


def reload_nginx(module, settings, nginx, master):
    """Reload nginx and wait until it is confirmed; return (old workers, new workers, error or None).

    Confirmed means new worker processes under the same master. Not confirmed means the master
    logged a final [emerg] (not a bind() that it will retry), exited, or the timeout passed.
    """
    p = settings
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


def nginx_command(module, settings):
    """nginx's argv for a test: the binary, and -c when a main configuration is named."""
    nginx = [module.get_bin_path(settings['binary'], required=True)]
    return nginx + ['-c', settings['config']] if settings['config'] else nginx


def locked_run(module, settings, write=None, after_reload=None, extra=None):
    """Hold the lock (lock_file, lock_timeout in ``settings``) across ``write()``, which writes the files
    and returns their (dest, backup) items, and ``run``; ends with exit_json or fail_json. ``extra`` holds
    more keys for the result."""
    for name in ('timeout', 'lock_timeout'):
        if settings[name] < 0:
            module.fail_json(msg='%s must be 0 or more seconds, got %d' % (name, settings[name]))
    nginx = nginx_command(module, settings)
    # Held across the test, any rollback, the reload and its confirmation. exit_json and fail_json
    # raise SystemExit, so the finally releases it on every path (and the kernel would, at exit).
    lock, waited = acquire_lock(module, settings['lock_file'], settings['lock_timeout'], create=not module.check_mode)
    try:
        run(module, settings, nginx, write() if write else [], waited, after_reload, extra)
    finally:
        if lock is not None:
            os.close(lock)


def run(module, settings, nginx, items, waited, after_reload=None, extra=None):
    """Test, roll back or reload, confirm; ends with exit_json or fail_json. ``after_reload(result)``
    runs once a reload is confirmed, before the result is returned."""
    p = settings
    result = dict(valid=False, rolled_back=False, restored=[], removed=[], backups_removed=[],
                  reloaded=False, old_workers=[], new_workers=[], lock_file=p['lock_file'], lock_waited=waited)
    result.update((k, v) for k, v in (extra or {}).items() if k != 'changed')
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
    result['old_workers'], result['new_workers'], error = reload_nginx(module, settings, nginx, master)
    if error is None:
        result['reloaded'] = True
        if not p['keep_backups']:
            remove_backups(items, result)
        if after_reload:
            after_reload(result)
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
        old2, new2, error2 = reload_nginx(module, settings, nginx, master)
        result['restored_workers'] = new2
        if error2 is None:
            msg += '; the restored files were reloaded (new workers %s)' % new2
        else:
            msg += '; reloading the restored files FAILED too: %s' % error2
    module.fail_json(msg=msg, retest_rc=retest_rc, **result)
