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
  - If nginx is not running, nothing is reloaded; the result says so with RV(running=false).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the configuration is tested but nothing is restored, removed or reloaded.
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
    type: int
    default: 10
notes:
  - Only nginx's master process and its children are looked at, through C(/proc); nothing else is needed on the host.
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
"""

RETURN = r"""
valid:
  description: Whether C(nginx -t) accepted the configuration as written by the tasks in O(changes).
  returned: always
  type: bool
  sample: true
rolled_back:
  description: Whether changed files were put back because the test failed.
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
  description: Backup files removed because O(keep_backups=false).
  returned: always
  type: list
  elements: str
  sample: ['/etc/nginx/conf.d/mlflow.conf.4242.2026-01-31@12:00:00~']
retest_rc:
  description: Exit status of C(nginx -t) after the rollback; not 0 means the configuration was broken before this change.
  returned: when rolled back
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

import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native


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


def restore(dest, backup):
    """Copy ``backup`` over ``dest`` by renaming a full copy, keeping the backup's mode and owner."""
    st = os.stat(backup)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest) or '.', prefix='.%s.' % os.path.basename(dest))
    os.close(fd)
    try:
        shutil.copy2(backup, tmp)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def reload_nginx(module, nginx, master, result):
    """Reload nginx and wait for a new generation of workers; return (old workers, new workers)."""
    p = module.params
    old = children(master)
    result['old_workers'] = old
    if p['reload_method'] == 'systemd':
        cmd = [module.get_bin_path('systemctl', required=True), 'reload', p['service']]
    else:
        cmd = nginx + ['-s', 'reload']
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        module.fail_json(msg='%s failed (rc=%d): %s' % (' '.join(cmd), rc, (err or out).strip()), **result)

    deadline = time.monotonic() + p['timeout']
    while True:
        alive = os.path.exists('/proc/%d' % master)
        current = children(master) if alive else []
        new = [pid for pid in current if pid not in old]
        if alive and new:
            return old, new
        if not alive or time.monotonic() > deadline:
            module.fail_json(
                msg='nginx reload not confirmed within %ds: master pid %d %s, old workers %s, workers now %s, '
                    'no new worker; see the nginx error log' % (
                        p['timeout'], master, 'is alive' if alive else 'has EXITED', old, current),
                **result)
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
            force=dict(type='bool', default=False),
            keep_backups=dict(type='bool', default=False),
            timeout=dict(type='int', default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    items = changed_items(module, p['changes'])
    nginx = [module.get_bin_path(p['binary'], required=True)]
    if p['config']:
        nginx += ['-c', p['config']]

    result = dict(valid=False, rolled_back=False, restored=[], removed=[], backups_removed=[],
                  reloaded=False, old_workers=[], new_workers=[])
    master = read_master_pid(p['pid_file'])
    result.update(running=master is not None, master_pid=master)
    rc, out, err = module.run_command(nginx + ['-t'])
    result.update(stdout=out, stderr=err)

    if rc != 0:
        if module.check_mode:
            module.fail_json(msg='nginx -t failed (check mode: nothing restored): %s' % err.strip(), **result)
        problems = []
        # Newest first, so that if one file was written twice its oldest backup ends up in place.
        for dest, backup in reversed(items):
            try:
                if backup:
                    restore(dest, backup)
                    result['restored'].append(dest)
                    if not p['keep_backups']:
                        os.unlink(backup)
                        result['backups_removed'].append(backup)
                elif os.path.lexists(dest):
                    os.unlink(dest)
                    result['removed'].append(dest)
            except OSError as exc:
                problems.append('%s: %s' % (dest, to_native(exc)))
        result['rolled_back'] = bool(result['restored'] or result['removed'])
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
    if not module.check_mode and not p['keep_backups']:
        for dummy, backup in items:
            if backup and os.path.exists(backup):
                os.unlink(backup)
                result['backups_removed'].append(backup)

    wants_reload = bool(items) or p['force']
    if not wants_reload or module.check_mode:
        module.exit_json(changed=wants_reload, **result)
    if master is None:
        module.exit_json(changed=bool(items), msg='nginx is not running (no live process in %s); nothing to reload'
                         % p['pid_file'], **result)

    result['old_workers'], result['new_workers'] = reload_nginx(module, nginx, master, result)
    result['reloaded'] = True
    module.exit_json(changed=True, **result)


if __name__ == '__main__':
    main()
