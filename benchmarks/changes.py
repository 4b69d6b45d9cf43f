"""The pool's phases of benchmarks/pool.py (issue 15): how throughput grows from one VM to two, and how
many requests fail while the site changes under a steady stream of signed-in reads and writes.

Each change is what an operator runs, on the controller, against the pool's inventory (--inventory):
  mlflow-upgrade        site.yml with MLflow's pinned release (the pool runs the previous one)
  oauth2-proxy-upgrade  site.yml with oauth2-proxy's pinned release (and its archive, --oauth2-proxy-archive)
  allowlist             playbooks/allowlist.yml with one more address
  nginx                 site.yml --limit the nginx host with another proxy timeout (a reload)
  vm-loss               the last VM's container stopped (podman stop), then started again after the load
Later site.yml runs keep the earlier changes (their extra vars), as the inventory would after each.
"""
import json
import os
import subprocess
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHANGES = ('mlflow-upgrade', 'oauth2-proxy-upgrade', 'allowlist', 'nginx', 'vm-loss')


def pinned(role, variable):
    """A version pin, from the role's defaults (its one home)."""
    with open(os.path.join(REPO, 'roles', role, 'defaults', 'main.yml'), encoding='utf-8') as handle:
        return str(yaml.safe_load(handle)[variable])


def run(argv):
    """A command on the controller, from the repository; what it returned, for the report."""
    began = time.monotonic()
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    recap = [line for line in out.stdout.splitlines() if ' : ok=' in line]
    return {'argv': ' '.join(argv[:1] + [a for a in argv[1:] if not a.startswith('{')])[:300], 'rc': out.returncode,
            'seconds': round(time.monotonic() - began, 1), 'recap': recap,
            'tail': '' if out.returncode == 0 else (out.stdout + out.stderr)[-3000:]}


def playbook(args, path, *more, extra=None):
    argv = ['ansible-playbook', '-i', args.inventory, path, *more]
    return run(argv + (['-e', json.dumps(extra)] if extra else []))


def pool_member(args, member, state):
    """Takes a VM out of nginx's pools or puts it back, with the collection's module (as site.yml does)."""
    return run(['ansible', '-i', args.inventory, 'external_nginx', '-m', 'alcf.mlflow_globus.nginx_pool',
                '-a', json.dumps({'members': [member], 'state': state})])


def mixed_argv(stack, args, creds):
    """The steady stream: half the threads read, half log-batch, through nginx with a session cookie,
    each request retried as the MLflow client retries it (--client-retries); both counts are reported."""
    return ['--op', 'mixed', '--threads', str(args.stream_threads), '--url', stack.chain_url, '--host', stack.public_host,
            '--insecure', '--headers-file', creds['session'], '--retries', str(args.client_retries)]


def phase_scaling(stack, args, under_load, credentials, load_argv, summary):
    """Chain throughput with the last VM out of nginx's pools, then with both in."""
    creds = credentials(stack)
    rows = []
    last = args.vms[-1]
    for op in args.ops:
        for label, state in (('1 VM', 'drained'), ('%d VMs' % len(args.vms), 'active')):
            moved = pool_member(args, last, state)
            if moved['rc'] != 0:
                raise SystemExit('nginx_pool %s %s failed: %s' % (state, last, moved['tail']))
            rows.append(dict(summary(op, label, under_load(stack, [load_argv(stack, 'session', op, args, creds)])),
                             vms=label))
    return rows


def phase_changes(stack, args, under_load, credentials):
    """Failed requests during each change, under the mixed stream."""
    creds = credentials(stack)
    extra = {}
    email = 'dave@example.org'

    def mlflow_upgrade():
        extra['mlflow_globus_version'] = pinned('mlflow_globus', 'mlflow_globus_version')
        return playbook(args, 'site.yml', extra=extra)

    def oauth2_proxy_upgrade():
        extra['oauth2_proxy_version'] = pinned('oauth2_proxy', 'oauth2_proxy_version')
        extra['oauth2_proxy_archive_src'] = args.oauth2_proxy_archive
        return playbook(args, 'site.yml', extra=extra)

    def allowlist():
        emails = args.allowlist + [email]
        return playbook(args, 'playbooks/allowlist.yml', extra=dict(extra, allowlist_emails_text='\n'.join(emails)))

    def nginx():
        extra['external_nginx_proxy_timeout'] = 301
        return playbook(args, 'site.yml', '--limit', 'external_nginx', extra=extra)

    def vm_loss():
        stopped = run(['podman', 'stop', '--time', '30', args.vms[-1]])
        time.sleep(args.after_loss)  # the stream goes on against one VM
        return stopped

    actions = {'mlflow-upgrade': mlflow_upgrade, 'oauth2-proxy-upgrade': oauth2_proxy_upgrade,
               'allowlist': allowlist, 'nginx': nginx, 'vm-loss': vm_loss}
    rows = []
    for name in args.changes:
        result = under_load(stack, [mixed_argv(stack, args, creds)], actions[name])[0]
        rows.append({'change': name, 'requests': result['requests'], 'failures': result['failures']['count'],
                     'first_failures': result['failures']['first'][:5], 'retried': result['retried']['count'],
                     'first_retried': result['retried']['first'][:5], 'action': result['action'],
                     'seconds': result['action']['seconds'], 'rps': result['throughput_rps']})
        if name == 'vm-loss':  # back, as an operator would start it again
            rows[-1]['restarted'] = run(['podman', 'start', args.vms[-1]])
        if result['action']['rc'] != 0:
            break  # a change that failed is reported; the next ones would not mean much
    return rows


def print_changes(rows):
    print('\nFailed requests during each change (steady signed-in reads and log-batch writes through nginx)')
    print('("failed": no 2xx even after the MLflow client\'s retries; "retried": needed one, the first answer '
          'being none or a 502-504)')
    head = '%-22s %9s %9s %9s %8s %8s %4s' % ('change', 'requests', 'failed', 'retried', 'req/s', 'seconds', 'rc')
    print(head + '\n' + '-' * len(head))
    for row in rows:
        print('%-22s %9d %9d %9d %8.1f %8.1f %4d' % (
            row['change'], row['requests'], row['failures'], row['retried'], row['rps'], row['seconds'],
            row['action']['rc']))
        for failure in row['first_failures']:
            print('    failure: %s' % json.dumps(failure))
        for retried in row['first_retried']:
            print('    retried: %s' % json.dumps(retried))
        if row['action']['rc'] != 0:
            print('    the change failed:\n%s' % row['action']['tail'])


def add_arguments(parser):
    parser.add_argument('--inventory', help='the pool\'s inventory (phases scaling, changes), e.g. Molecule\'s')
    parser.add_argument('--vms', type=lambda s: s.split(','), default=['mg-pool-vm1', 'mg-pool-vm2'],
                        help='the VMs\' containers; the last is drained (scaling) and stopped (vm-loss)')
    parser.add_argument('--changes', type=lambda s: s.split(','), default=list(CHANGES),
                        help='phase changes: which, in order (default %s)' % ','.join(CHANGES))
    parser.add_argument('--oauth2-proxy-archive', default=os.environ.get('MLFLOW_GLOBUS_OAUTH2_PROXY_ARCHIVE', ''),
                        help='the pinned oauth2-proxy release\'s archive (default $MLFLOW_GLOBUS_OAUTH2_PROXY_ARCHIVE)')
    parser.add_argument('--allowlist', type=lambda s: s.split(','),
                        default=['alice@example.org', 'bob@example.org', 'carol@example.org'],
                        help='the allowlist before the change (one address is added)')
    parser.add_argument('--stream-threads', type=int, default=2,
                        help='threads of the changes\' stream (default 2: steady, and the change itself, '
                             'a playbook on the same cores, is not starved)')
    parser.add_argument('--client-retries', type=int, default=7,
                        help='retries of the changes\' stream, as the MLflow client makes them (its default: 7)')
    parser.add_argument('--after-loss', type=float, default=20, help='seconds of load after a VM is lost')
