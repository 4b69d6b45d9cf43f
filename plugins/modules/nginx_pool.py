#!/usr/bin/python
# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_pool
short_description: Write nginx's upstream pools of a site, and take a member out of them or put it back
version_added: 0.4.0
author:
  - ALCF operations (@alcf)
description:
  - Keeps the upstream blocks of a site (one pool per service behind nginx, each member an inventory
    host and the C(address:port) nginx reaches it at) in a file of their own that the site includes,
    and a description of them in a state file on the nginx host, so that a later run can take a member
    out of every pool it is in (drain it) or put it back knowing nothing but the member's name.
  - With O(pools), defines the site (O(site)) - its pools, where the pool file is, how to test and reload
    this nginx - and writes the pool file with every member in (a site's role run converges to all in).
  - With O(members) and O(state=drained), marks those members C(down) in every pool of every site on the
    host (or of O(site)), tests the configuration with C(nginx -t) and reloads nginx, then waits up to
    O(drain_wait) seconds for the previous generation of workers to finish the requests they were
    already serving. New requests go to the other members from the reload on.
  - A member is never taken out of a pool in which it is the last one in; it is listed in
    RV(not_drained) instead (a pool of one cannot be drained; that member serves or nothing does).
  - With O(state=active), first asks each member, from the nginx host, for its readiness path
    (C(/health) for MLflow, C(/ready) for oauth2-proxy) and requires C(200); only then puts them back.
    A member that does not answer so stays out and the module fails, naming it and what it answered.
  - Every change to the pool file is tested with C(nginx -t); a failed test or reload puts the pool
    file and the state file back (the engine of M(alcf.mlflow_globus.nginx_validate_reload), with the
    same lock).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is written or reloaded; the readiness probes of O(state=active) still run
        (they only read), and C(changed) says whether the pools would change.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  site:
    description:
      - The site's name; its state file is O(state_dir)/C(<site>.json).
      - Required with O(pools). Without O(pools), limits O(members) to this site's pools (default every site).
    type: str
  pools:
    description:
      - The site's pools. Each is one C(upstream) block.
      - With this option the module defines the site and puts every member in.
    type: list
    elements: dict
    suboptions:
      name:
        description: The upstream's name, as the site's C(proxy_pass http://NAME) uses it.
        type: str
        required: true
      ready_path:
        description: The path a member answers C(200) on when it can serve (probed before it is put back).
        type: str
        required: true
      members:
        description: The members, in order. Each has C(host) (its inventory name) and C(server) (C(address:port)).
        type: list
        elements: dict
        required: true
  pool_file:
    description:
      - Where the upstream blocks are written; the site's file includes it. Required with O(pools).
      - Put it where nginx does not include files by a pattern (its backups sit beside it for a moment).
    type: path
  server_options:
    description: Written after each active member's address (nginx's passive health check).
    type: str
    default: max_fails=3 fail_timeout=10s
  keepalive:
    description: Idle keep-alive connections each worker keeps to a pool's members.
    type: int
    default: 16
  members:
    description: Inventory names of the members to take out (O(state=drained)) or put back (O(state=active)).
    type: list
    elements: str
    default: []
  state:
    description: What O(members) become.
    type: str
    choices: [drained, active]
    default: active
  drain_wait:
    description:
      - Seconds to wait, after a reload that drained a member, for the previous workers to end (they finish
        the requests they were serving, some on the drained member). Past it the module returns anyway,
        listing them in RV(old_workers_left).
    type: int
    default: 60
  probe_timeout:
    description: Seconds each readiness probe of O(state=active) may take.
    type: int
    default: 5
  state_dir:
    description: Where the sites' state files are.
    type: path
    default: /etc/alcf-mlflow-globus/nginx-pools
  reload:
    description:
      - Test and reload after a change. V(false) only writes (with backups) and returns the files as
        RV(results), for a M(alcf.mlflow_globus.nginx_validate_reload) task that tests and reloads them
        together with other files.
    type: bool
    default: true
  binary:
    description: The nginx executable. Stored with O(pools); later runs read it from the state file.
    type: path
    default: nginx
  config:
    description: nginx's main configuration file (C(-c)). Stored with O(pools).
    type: path
  reload_method:
    description: V(systemd) (C(systemctl reload) O(service)) or V(signal) (C(nginx -s reload)). Stored with O(pools).
    type: str
    choices: [systemd, signal]
    default: systemd
  service:
    description: The systemd unit of nginx. Stored with O(pools).
    type: str
    default: nginx
  pid_file:
    description: nginx's pid file. Stored with O(pools).
    type: path
    default: /run/nginx.pid
  error_log:
    description: The error log nginx's master writes to. Stored with O(pools).
    type: path
    default: /var/log/nginx/error.log
  timeout:
    description: Seconds to wait for nginx to confirm a reload.
    type: int
    default: 10
  lock_file:
    description: The lock shared with M(alcf.mlflow_globus.nginx_validate_reload).
    type: path
    default: /run/lock/alcf-nginx-validate-reload.lock
  lock_timeout:
    description: Seconds to wait for another run to release O(lock_file).
    type: int
    default: 60
notes:
  - Members are named by inventory host, so a drain needs nothing from the nginx host's own variables;
    the tasks of a rolling update, delegated to each nginx host, give only the VM's name.
seealso:
  - module: alcf.mlflow_globus.nginx_validate_reload
"""

EXAMPLES = r"""
- name: Write the site's pools (every member in); the next task tests and reloads them with the site
  alcf.mlflow_globus.nginx_pool:
    site: mlflow
    pool_file: /etc/nginx/alcf-mlflow-globus/mlflow-pools.conf
    pools:
      - name: mlflow_mlflow
        ready_path: /health
        members:
          - {host: mlflow-vm-1, server: "10.0.0.31:8080"}
          - {host: mlflow-vm-2, server: "10.0.0.32:8080"}
    reload: false
  register: __pools

- name: Take a VM out of every pool on each nginx host before it changes
  alcf.mlflow_globus.nginx_pool:
    members: ["{{ inventory_hostname }}"]
    state: drained
  delegate_to: "{{ item }}"
  loop: "{{ groups['external_nginx'] }}"

- name: Put it back once it answers on its readiness paths
  alcf.mlflow_globus.nginx_pool:
    members: ["{{ inventory_hostname }}"]
    state: active
  delegate_to: "{{ item }}"
  loop: "{{ groups['external_nginx'] }}"
"""

RETURN = r"""
drained:
  description: Per site, the members that are out of its pools after this run.
  returned: always
  type: dict
  sample: {mlflow: [mlflow-vm-1]}
not_drained:
  description: Per site, members asked to drain that stayed in because a pool would have had none left.
  returned: always
  type: dict
  sample: {mlflow: [mlflow-vm-1]}
probes:
  description: The readiness probes of O(state=active), each with C(url), C(status) (0 when there was no answer) and C(error).
  returned: always
  type: list
  elements: dict
results:
  description: The files written, each with C(changed), C(dest) and C(backup_file) (the shape M(alcf.mlflow_globus.nginx_validate_reload) takes).
  returned: when O(reload=false)
  type: list
  elements: dict
old_workers_left:
  description: Workers of the previous generation still running when O(drain_wait) ran out.
  returned: when a drain reloaded nginx
  type: list
  elements: int
drain_waited:
  description: Seconds spent waiting for the previous workers to end.
  returned: when a drain reloaded nginx
  type: float
reloaded:
  description: Whether nginx was reloaded (the other keys of M(alcf.mlflow_globus.nginx_validate_reload)'s result are returned too).
  returned: when O(reload=true) and the pools changed
  type: bool
"""

import glob
import json
import os
import shutil
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.atomic_file import replace_file
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.nginx_reload import locked_run

# What a state file keeps of the module's options: how to test and reload this nginx.
NGINX_SETTINGS = ('binary', 'config', 'reload_method', 'service', 'pid_file', 'error_log')


def render(site):
    """The pool file's text: one upstream block per pool, drained members marked down."""
    drained = set(site['drained'])
    lines = ['# Written by alcf.mlflow_globus.nginx_pool: the upstream pools of the site %s.' % site['site'],
             '# Out of the pools (drained): %s.' % (', '.join(sorted(drained)) or 'none')]
    for pool in site['pools']:
        lines += ['', 'upstream %s {' % pool['name']]
        for member in pool['members']:
            if member['host'] in drained:
                lines.append('    server %s down;  # %s (drained)' % (member['server'], member['host']))
            else:
                options = (' ' + site['server_options']) if site['server_options'] else ''
                lines.append('    server %s%s;  # %s' % (member['server'], options, member['host']))
        lines += ['    keepalive %d;' % site['keepalive'], '}']
    return '\n'.join(lines) + '\n'


def check_pools(module, pools):
    """Refuse pools that nginx could not load or that the module could not drain by name."""
    for pool in pools:
        hosts = [m.get('host') if isinstance(m, dict) else None for m in pool['members']]
        bad = [m for m in pool['members'] if not (isinstance(m, dict) and m.get('host') and m.get('server'))]
        if not pool['members'] or bad:
            module.fail_json(msg='pool %s needs at least one member, each with host and server; got %r'
                             % (pool['name'], pool['members']))
        if len(set(hosts)) != len(hosts):
            module.fail_json(msg='pool %s names a member twice: %s' % (pool['name'], ', '.join(hosts)))
        if not pool['ready_path'].startswith('/'):
            module.fail_json(msg='pool %s: ready_path must start with /, got %r' % (pool['name'], pool['ready_path']))


def load_sites(module, state_dir, only):
    paths = sorted(glob.glob(os.path.join(state_dir, '*.json')))
    if only:
        paths = [p for p in paths if os.path.basename(p) == only + '.json']
    sites = []
    for path in paths:
        try:
            with open(path) as f:
                sites.append(dict(json.load(f), state_file=path))
        except (OSError, ValueError) as exc:
            module.fail_json(msg='cannot read the pool state file %s: %s' % (path, to_native(exc)))
    return sites


def probe(url, timeout):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as answer:
            return dict(url=url, status=answer.status, error='')
    except urllib.error.HTTPError as exc:
        return dict(url=url, status=exc.code, error='')
    except (urllib.error.URLError, OSError) as exc:
        return dict(url=url, status=0, error=to_native(getattr(exc, 'reason', exc)))


def write_file(path, text, module):
    """Write ``text`` to ``path`` if it differs; return the item (changed, dest, backup_file)."""
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    item = dict(changed=old != text, dest=path)
    if not item['changed'] or module.check_mode:
        return item
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if old is not None:
        item['backup_file'] = '%s.%d.%s~' % (path, os.getpid(), time.strftime('%Y-%m-%d@%H:%M:%S'))
        shutil.copy2(path, item['backup_file'])

    def fill(tmp):
        with open(tmp, 'w') as f:
            f.write(text)
        os.chmod(tmp, 0o644)
    replace_file(path, fill, like=path if old is not None else None)
    return item


def state_text(site):
    return json.dumps({k: v for k, v in site.items() if k != 'state_file'}, indent=2, sort_keys=True) + '\n'


def main():
    module = AnsibleModule(
        argument_spec=dict(
            site=dict(type='str'),
            pools=dict(type='list', elements='dict', options=dict(
                name=dict(type='str', required=True),
                ready_path=dict(type='str', required=True),
                members=dict(type='list', elements='dict', required=True),
            )),
            pool_file=dict(type='path'),
            server_options=dict(type='str', default='max_fails=3 fail_timeout=10s'),
            keepalive=dict(type='int', default=16),
            members=dict(type='list', elements='str', default=[]),
            state=dict(type='str', choices=['drained', 'active'], default='active'),
            drain_wait=dict(type='int', default=60),
            probe_timeout=dict(type='int', default=5),
            state_dir=dict(type='path', default='/etc/alcf-mlflow-globus/nginx-pools'),
            reload=dict(type='bool', default=True),
            binary=dict(type='path', default='nginx'),
            config=dict(type='path'),
            reload_method=dict(type='str', choices=['systemd', 'signal'], default='systemd'),
            service=dict(type='str', default='nginx'),
            pid_file=dict(type='path', default='/run/nginx.pid'),
            error_log=dict(type='path', default='/var/log/nginx/error.log'),
            timeout=dict(type='int', default=10),
            lock_file=dict(type='path', default='/run/lock/alcf-nginx-validate-reload.lock'),
            lock_timeout=dict(type='int', default=60),
        ),
        required_by={'pools': ('site', 'pool_file')},
        mutually_exclusive=[('pools', 'members')],
        supports_check_mode=True,
    )
    p = module.params
    if p['pools'] is not None:
        check_pools(module, p['pools'])
        sites = [dict(site=p['site'], pools=p['pools'], pool_file=p['pool_file'], server_options=p['server_options'],
                      keepalive=p['keepalive'], drained=[], nginx={k: p[k] for k in NGINX_SETTINGS},
                      state_file=os.path.join(p['state_dir'], p['site'] + '.json'))]
        old = load_sites(module, p['state_dir'], p['site'])
        before = {s['site']: s for s in old}
    else:
        sites = load_sites(module, p['state_dir'], p['site'])
        before = {s['site']: json.loads(json.dumps(s)) for s in sites}
        if p['site'] and not sites:
            module.fail_json(msg='no pools of the site %s on this host (no %s.json in %s): run the site\'s role first'
                             % (p['site'], p['site'], p['state_dir']))

    result = dict(changed=False, drained={}, not_drained={}, probes=[])
    newly_drained = False
    for site in sites:
        in_pools = {m['host'] for pool in site['pools'] for m in pool['members']}
        asked = [h for h in p['members'] if h in in_pools]
        drained = list(site['drained'])
        if p['state'] == 'drained':
            for host in asked:
                if host in drained:
                    continue
                # Still in, after this one leaves: some other member of each pool it is in.
                if all(any(m['host'] != host and m['host'] not in drained for m in pool['members'])
                       for pool in site['pools'] if host in {m['host'] for m in pool['members']}):
                    drained.append(host)
                    newly_drained = True
                else:
                    result['not_drained'].setdefault(site['site'], []).append(host)
        else:
            back = [h for h in asked if h in drained]
            for pool in site['pools']:
                for member in pool['members']:
                    if member['host'] in back:
                        result['probes'].append(dict(probe('http://%s%s' % (member['server'], pool['ready_path']),
                                                           p['probe_timeout']), host=member['host'], pool=pool['name']))
            failing = [pr for pr in result['probes'] if pr['status'] != 200]
            if failing:
                module.fail_json(msg='not put back into the pools, not ready: %s' % '; '.join(
                    '%s (%s %s: %s)' % (pr['host'], pr['pool'], pr['url'], pr['error'] or 'HTTP %d' % pr['status'])
                    for pr in failing), **result)
            drained = [h for h in drained if h not in back]
        site['drained'] = drained
        result['drained'][site['site']] = drained

    settings = [s['nginx'] for s in sites]
    if any(s != settings[0] for s in settings):
        module.fail_json(msg='the sites on this host name different nginx settings (%s): drain them one site at a time'
                         % ', '.join(s['state_file'] for s in sites))

    def changes():
        items = []
        for site in sites:
            pool_item = write_file(site['pool_file'], render(site), module)
            state_item = write_file(site['state_file'], state_text(site), module)
            if module._diff and pool_item['changed']:
                old = before.get(site['site'])
                result.setdefault('diff', []).append(dict(
                    before_header=site['pool_file'], after_header=site['pool_file'],
                    before=render(dict(old, site=site['site'])) if old else '', after=render(site)))
            items += [pool_item, state_item]
        return items

    if not sites:
        module.exit_json(**result)
    if not p['reload'] or module.check_mode:
        result['results'] = changes()
        result['changed'] = any(item['changed'] for item in result['results'])
        module.exit_json(**result)

    def wait_for_old_workers(reload_result):
        if not newly_drained:
            return
        started = time.monotonic()
        left = reload_result['old_workers']
        while left and time.monotonic() - started < p['drain_wait']:
            time.sleep(0.2)
            left = [pid for pid in left if os.path.exists('/proc/%d' % pid)]
        reload_result.update(old_workers_left=left, drain_waited=round(time.monotonic() - started, 1))

    def write():
        items = changes()
        result['changed'] = any(item['changed'] for item in items)
        return [(i['dest'], i.get('backup_file')) for i in items if i['changed']]

    nginx = dict(sites[0]['nginx'], timeout=p['timeout'], lock_file=p['lock_file'], lock_timeout=p['lock_timeout'],
                 force=False, keep_backups=False)
    locked_run(module, nginx, write=write, after_reload=wait_for_old_workers, extra=result)


if __name__ == '__main__':
    main()
