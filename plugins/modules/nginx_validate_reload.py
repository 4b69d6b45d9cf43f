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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.nginx_reload import changed_items, locked_run


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
    locked_run(module, module.params, write=lambda: changed_items(module, module.params['changes']))


if __name__ == '__main__':
    main()
