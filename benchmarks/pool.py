"""Throughput and latency through the whole chain (client -> nginx TLS -> auth_request to oauth2-proxy
-> MLflow) against MLflow directly, on a running deployment, as ratios (issue 15; target >= 0.9).

Runs on the controller; the load comes from benchmarks/load.py, copied into the nginx container with
`podman cp` and run there with `podman exec`: the nginx host is the one host MLflow's port answers
(X-Forwarded-Email is trusted from it), so both paths start from the same place.

    source .cache/env.sh && python3 benchmarks/pool.py             # against `make demo`: read and log-batch,
                                                                   # direct, session cookie, bearer token
    python3 benchmarks/pool.py --ops read --auth session --rounds 4 \
        --variants as-deployed,no-tls,auth-cache                   # nginx's site edited in place, then put back
    python3 benchmarks/pool.py --nginx mg-pool-nginx --vm mg-pool-vm1 ...   # another scenario's containers

Phases (--phase):
  chain-vs-direct  for each operation: MLflow directly (with the X-Forwarded-Email nginx would send),
                   then the chain with each credential (--auth: a browser's session cookie from a real
                   sign-in, a bearer ID token); rounds interleaved. A table of throughput, p50, p99, the
                   ratios to direct, and the CPU each process class spent per request (where the time goes).
  auth-check       oauth2-proxy alone on its port: /ping, then /oauth2/auth with each credential.
  during           load through the chain while a command runs on the controller (--action, e.g. an
                   ansible-playbook run); prints every failure the load saw and the per-second counts.

Adding a phase: a function (stack, args) -> list of rows (see summary()), added to PHASES. The building
block is under_load(stack, [argv, ...], action): load.py runs in the background (one process per argv,
all at once), action() runs meanwhile, then the loads stop and their JSON comes back, with the CPU
each process class of the nginx and VM containers used in that window.

The machine's noise matters: the figures are medians of --rounds, each chain run paired with the direct
run beside it; `busy` near 1.00 means the machine's cores were saturated (then throughput follows CPU
per request, which the table also shows and which varies much less than throughput).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

import changes
import nginx_variants

HERE = os.path.dirname(os.path.abspath(__file__))
REMOTE = '/tmp/mlflow-bench'  # where load.py and signin.py go in the load's container

# CPU by process, read from /proc inside a container (its processes only: a PID namespace of its own).
# A process is put in the first class whose word appears in its command line.
CPU_CLASSES = (('load.py', 'client'), ('nginx', 'nginx'), ('oauth2-proxy', 'oauth2-proxy'),
               ('mlflow', 'mlflow'), ('journald', 'journald'))
CPU_PROBE = r'''
import json, os
classes, out = %r, {}
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        cmd = open('/proc/%%s/cmdline' %% pid, 'rb').read().replace(b'\0', b' ').decode(errors='replace')
        fields = open('/proc/%%s/stat' %% pid).read().rsplit(')', 1)[1].split()
    except OSError:
        continue
    name = next((n for word, n in classes if word in cmd), 'other')
    out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])  # utime + stime, in ticks
print(json.dumps({k: v / os.sysconf('SC_CLK_TCK') for k, v in out.items()}))
''' % (CPU_CLASSES,)


class Stack:
    """The deployment under test: container names, the public host, where MLflow answers directly."""

    def __init__(self, args):
        self.nginx, self.vm, self.public_host = args.nginx, args.vm, args.public_host
        self.mlflow_url = args.mlflow_url or 'http://%s:%d' % (address_of(args.vm), args.mlflow_port)
        self.auth_url = 'http://%s:%d' % (address_of(args.vm), args.oauth2_proxy_port)
        self.chain_url, self.signin_url, self.site_file = args.chain_url, args.signin_url, args.site_file
        self.issuer = args.issuer
        self.email, self.service_email, self.service_client = args.email, args.service_email, args.service_client


def podman(*argv, stdin=None):
    out = subprocess.run(['podman', *argv], input=stdin, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit('podman %s failed: %s' % (' '.join(argv[:3]), out.stderr.strip()[-1000:]))
    return out.stdout


def address_of(container):
    return podman('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container).split()[0]


def install(container):
    """load.py and signin.py into the container (signin.py imports load.py)."""
    podman('exec', container, 'mkdir', '-p', REMOTE)
    for name in ('load.py', 'signin.py'):
        podman('cp', os.path.join(HERE, name), '%s:%s/%s' % (container, REMOTE, name))


def credentials(stack):
    """Signs in once per kind and leaves each credential in a file in the container, never in argv:
    session = oauth2-proxy's cookie after a browser's sign-in through nginx (the provider's form);
    bearer = an ID token of the service client (oauth2_proxy_service_client_ids)."""
    kinds = {
        'session': ['session', '--url', stack.signin_url, '--host', stack.public_host, '--email', stack.email],
        'bearer': ['token', '--issuer', stack.issuer, '--client-id', stack.service_client,
                   '--email', stack.service_email],
    }
    files = {}
    for kind, argv in kinds.items():
        files[kind] = '%s/%s.json' % (REMOTE, kind)
        secret = podman('exec', stack.nginx, 'python3', REMOTE + '/signin.py', *argv)
        podman('exec', '-i', stack.nginx, 'sh', '-c', 'umask 077; cat > ' + files[kind], stdin=secret)
    return files


def cpu(containers):
    """CPU seconds used so far by each class of process, per container."""
    return {c: json.loads(podman('exec', c, 'python3', '-c', CPU_PROBE)) for c in containers}


def host_busy():
    """(busy, total) jiffies of this machine: the containers share its kernel and its cores."""
    with open('/proc/stat', encoding='ascii') as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def under_load(stack, loads, action=None, cap_seconds=3600):
    """Runs one load.py per argv list in `loads`, all at once, in the nginx container in the background,
    and `action()` meanwhile; stops them when the action returns (without one, each runs its --seconds).
    Returns load.py's JSON objects in order, each with 'cpu_s' (CPU seconds of each process class in
    the window: shared by all loads of the window), 'host_busy' (share of the machine's cores busy)
    and 'action' (what the action returned)."""
    containers = (stack.nginx, stack.vm)
    stop_file = '%s/stop-%s' % (REMOTE, uuid.uuid4().hex)
    if action is not None:
        loads = [argv if '--seconds' in argv else [*argv, '--seconds', str(cap_seconds)] for argv in loads]
    before, busy_before = cpu(containers), host_busy()
    running = [subprocess.Popen(['podman', 'exec', stack.nginx, 'python3', REMOTE + '/load.py', *argv,
                                 '--stop-file', stop_file], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for argv in loads]
    done = None
    if action is not None:
        time.sleep(2)  # the load is steady before the change starts
        done = action()
        time.sleep(2)  # and what the change left behind is seen
        podman('exec', stack.nginx, 'touch', stop_file)
    outputs = [(load.communicate(), load.returncode) for load in running]
    after, busy_after = cpu(containers), host_busy()
    podman('exec', stack.nginx, 'rm', '-f', stop_file)
    results = []
    for (out, err), returncode in outputs:
        if returncode != 0:
            sys.exit('load.py failed (rc %d): %s' % (returncode, err.strip()[-2000:]))
        result = json.loads(out)
        result['cpu_s'] = {'%s/%s' % (c, k): round(after[c][k] - before[c].get(k, 0), 3)
                           for c in containers for k in after[c] if k != 'client'}
        # load.py has ended before the second reading: it reports its own CPU (all loads of the window).
        result['cpu_s']['%s/client' % stack.nginx] = sum(json.loads(o)['client_cpu_s'] for (o, _e), _rc in outputs)
        result['host_busy'] = round((busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]), 3)
        result['action'] = done
        result['shared_window'] = len(outputs) > 1
        results.append(result)
    return results


def load_argv(stack, path, op, args, creds=None, timed=True):
    """load.py's arguments for one path: 'direct' (MLflow's port, the identity header nginx would
    send) or 'session'/'bearer' (through nginx, by its public name, with that credential). Untimed:
    no warm-up and no time limit (under_load stops it)."""
    argv = ['--op', op, '--threads', str(args.threads)]
    if timed:
        argv += ['--seconds', str(args.warmup + args.seconds), '--warmup', str(args.warmup)]
    if path == 'direct':
        # MLflow allows only the public host (and localhost) as Host: send it as nginx does.
        return argv + ['--url', stack.mlflow_url, '--host', stack.public_host,
                       '--header', 'X-Forwarded-Email: ' + stack.email]
    return argv + ['--url', stack.chain_url, '--host', stack.public_host, '--insecure', '--headers-file', creds[path]]


def summary(op, path, runs):
    """One row from one or more rounds of the same measurement (medians)."""
    every = sum(sum(r['per_second']['ok']) + sum(r['per_second']['failed']) for r in runs)
    cpu_ms = {}
    for run in runs if not any(r['shared_window'] for r in runs) else ():  # per path only if alone
        for key, seconds in run['cpu_s'].items():
            cpu_ms[key.split('/', 1)[1]] = cpu_ms.get(key.split('/', 1)[1], 0) + seconds * 1000
    return {
        'op': op, 'path': path, 'rounds': len(runs),
        'rps': statistics.median(r['throughput_rps'] for r in runs),
        'p50': statistics.median(r['latency_ms']['p50'] or 0 for r in runs),
        'p99': statistics.median(r['latency_ms']['p99'] or 0 for r in runs),
        'failures': sum(r['failures']['count'] for r in runs),
        'host_busy': statistics.median(r['host_busy'] for r in runs),
        'cpu_ms_per_req': {k: round(v / max(1, every), 3) for k, v in sorted(cpu_ms.items())},
        'first_failures': [f for r in runs for f in r['failures']['first']][:5],
        'runs': runs,
    }


def phase_chain_vs_direct(stack, args):
    creds = credentials(stack)
    rows = []
    for op in args.ops:
        runs = {path: [] for path in ['direct', *args.auth]}
        for _round in range(args.rounds):  # interleaved, so that a slow minute of the machine hits all paths
            if args.side_by_side:  # all paths at once: the same moment of a shared, noisy machine for each
                found = under_load(stack, [load_argv(stack, path, op, args, creds) for path in runs])
                for path, result in zip(runs, found):
                    runs[path].append(result)
                continue
            for path in runs:
                runs[path].extend(under_load(stack, [load_argv(stack, path, op, args, creds)]))
        found = [summary(op, path, measured) for path, measured in runs.items()]
        for row in found:  # each round's chain against the direct run beside it: the machine's drift cancels
            row['paired_ratios'] = [round(c['throughput_rps'] / max(d['throughput_rps'], 1e-9), 3)
                                    for c, d in zip(row['runs'], runs['direct'])]
        rows += found
    return rows


def phase_during(stack, args):
    """Load through the chain while --action runs; the changes' own phases build on this."""
    if not args.action:
        sys.exit('--phase during needs --action "COMMAND"')
    creds = credentials(stack)

    def action():
        began = time.monotonic()
        out = subprocess.run(args.action, shell=True, capture_output=True, text=True, check=False)
        return {'rc': out.returncode, 'seconds': round(time.monotonic() - began, 1), 'tail': out.stdout[-500:]}

    path = args.auth[0]
    result, = under_load(stack, [load_argv(stack, path, args.ops[0], args, creds, timed=False)], action)
    print(json.dumps({'action': result['action'], 'failures': result['failures'],
                      'per_second': result['per_second']}, indent=1))
    return [summary(args.ops[0], path + ' during action', [result])]


def phase_auth_check(stack, args):
    """oauth2-proxy alone, on its own port from the nginx host, as nginx's subrequest asks it: /ping (no
    session work: the floor), /oauth2/auth without credentials (401), with the session cookie (decrypted
    and checked each time) and with the bearer token (a JWT verified each time). Shows what the check
    itself costs, apart from nginx and MLflow."""
    creds = credentials(stack)
    base = ['--op', 'get', '--threads', str(args.threads), '--seconds', str(args.warmup + args.seconds),
            '--warmup', str(args.warmup), '--url', stack.auth_url, '--host', stack.public_host,
            '--header', 'X-Forwarded-Proto: https']
    cases = {'direct': ['--path', '/ping'],  # named 'direct' for the table: the floor the ratios are to
             'session': ['--path', '/oauth2/auth', '--headers-file', creds['session']],
             'bearer': ['--path', '/oauth2/auth', '--headers-file', creds['bearer']]}
    rows = []
    for path, extra in cases.items():
        runs = [under_load(stack, [base + extra])[0] for _round in range(args.rounds)]
        rows.append(summary('auth-check', path, runs))
    return rows


def phase_scaling(stack, args):
    """The chain with one VM in nginx's pools, then with all (a pool: benchmarks/changes.py)."""
    return changes.phase_scaling(stack, args, under_load, credentials, load_argv, summary)


def phase_changes(stack, args):
    """Failed requests during each change of a pool (benchmarks/changes.py); prints its own table."""
    rows = changes.phase_changes(stack, args, under_load, credentials)
    changes.print_changes(rows)
    return rows


def phase_pool(stack, args):
    """Everything a pool is measured by, in one run: chain against direct, one VM against two, the changes."""
    found = {}
    for name in ('chain-vs-direct', 'scaling'):
        found[name] = PHASES[name](stack, args)
        print_table(found[name], '%s (%d threads, %gs each)' % (name, args.threads, args.seconds))
    found['changes'] = phase_changes(stack, args)
    return found


PHASES = {'chain-vs-direct': phase_chain_vs_direct, 'during': phase_during, 'auth-check': phase_auth_check,
          'scaling': phase_scaling, 'changes': phase_changes, 'pool': phase_pool}
# Phases that print their own tables.
SELF_PRINTING = ('changes', 'pool')


def nginx_site(stack, text=None):
    """Reads the deployed site, or writes `text` over it, tests it and reloads nginx."""
    if text is None:
        return podman('exec', stack.nginx, 'cat', stack.site_file)
    podman('exec', '-i', stack.nginx, 'sh', '-c', 'cat > %s && nginx -t -q && nginx -s reload' % stack.site_file,
           stdin=text)
    time.sleep(1)  # the old workers hand over to the new ones
    return text


def with_variants(stack, args, run_phase):
    """Runs the phase once per nginx variant (benchmarks/nginx_variants.py), each a table of its own,
    and puts the deployed site back at the end, whatever happened."""
    original = nginx_site(stack)
    podman('exec', '-i', stack.nginx, 'sh', '-c', 'cat > %s/site.conf.orig' % REMOTE, stdin=original)
    context = {'email': args.email, 'plain_port': args.plain_port, 'auth_cache_ttl': args.auth_cache_ttl,
               'read': lambda path: podman('exec', stack.nginx, 'cat', path)}  # the files the site includes
    rows = []
    try:
        for name in args.variants:
            transform, reach = nginx_variants.compose(name)
            nginx_site(stack, transform(original, context))
            stack.chain_url = 'http://127.0.0.1:%d' % args.plain_port if reach == 'plain' else args.chain_url
            found = run_phase(stack, args)
            for row in found:
                row['variant'] = name
            print_table(found, name)
            rows += found
    finally:
        nginx_site(stack, original)
        print('\n(the deployed nginx site is back; a copy is %s/site.conf.orig in %s)' % (REMOTE, stack.nginx))
    return rows


def paired(row, base):
    """Throughput over direct's: the median of each round's ratio (rounds run side by side or one after
    the other), else the ratio of the medians."""
    ratios = row.get('paired_ratios')
    return statistics.median(ratios) if ratios else row['rps'] / base['rps']


LEGEND = ('rps/dir: median over rounds of the chain\'s req/s over the direct run\'s beside it; +p50: ms added to '
          'direct\'s p50; busy: share of all the machine\'s cores in use; CPU ms per request: by process class, '
          'nginx and VM containers')


def print_table(rows, label):
    print('\n%s\n(%s)' % (label, LEGEND))
    head = '%-10s %-9s %8s %8s %8s %7s %8s %8s %5s %5s  %s' % (
        'op', 'path', 'req/s', 'p50 ms', 'p99 ms', 'fails', 'rps/dir', 'p50/dir', '+p50', 'busy', 'CPU ms per request')
    print(head + '\n' + '-' * len(head))
    direct = {r['op']: r for r in rows if r['path'] == 'direct'}
    for row in rows:
        base = direct.get(row['op'])
        ratio = '%.3f' % paired(row, base) if base and base['rps'] else '-'
        p50_ratio = '%.3f' % (row['p50'] / base['p50']) if base and base['p50'] else '-'
        added = '%+.1f' % (row['p50'] - base['p50']) if base else '-'
        cpu_text = ' '.join('%s=%.2f' % kv for kv in row['cpu_ms_per_req'].items() if kv[1] >= 0.005)
        print('%-10s %-9s %8.1f %8.2f %8.2f %7d %8s %8s %5s %5.2f  %s' % (
            row['op'], row['path'], row['rps'], row['p50'], row['p99'], row['failures'], ratio, p50_ratio,
            added, row['host_busy'], cpu_text))
        if len(row.get('paired_ratios', ())) > 1 and row['path'] != 'direct':
            print('    rounds: req/s %s; ratio to direct %s' % (
                ' '.join('%.0f' % r['throughput_rps'] for r in row['runs']), ' '.join(map(str, row['paired_ratios']))))
        for failure in row['first_failures']:
            print('    failure: %s' % json.dumps(failure))


def print_summary(rows, heading):
    """All variants in one table: each chain row against the direct row measured with it."""
    print('\nSummary: %s' % heading)
    head = '%-34s %-10s %-8s %8s %8s %8s %8s %11s %6s %9s %9s' % (
        'variant', 'op', 'path', 'req/s', 'p50 ms', 'p99 ms', 'rps/dir', '(range)', '+p50', 'CPU/req', 'nginx+o2p')
    print(head + '\n' + '-' * len(head))
    for row in rows:
        if row['path'] == 'direct':
            continue
        base = next(r for r in rows if r['path'] == 'direct' and r['op'] == row['op'] and r['variant'] == row['variant'])
        cpu = row['cpu_ms_per_req']
        print('%-34s %-10s %-8s %8.1f %8.2f %8.2f %8.3f %11s %+6.1f %9s %9s' % (
            row['variant'], row['op'], row['path'], row['rps'], row['p50'], row['p99'], paired(row, base),
            '%.2f-%.2f' % (min(row['paired_ratios']), max(row['paired_ratios'])) if row.get('paired_ratios') else '-',
            row['p50'] - base['p50'],
            '%.2f/%.2f' % (sum(cpu.values()), sum(base['cpu_ms_per_req'].values())) if cpu else '-',
            '%.2f+%.2f' % (cpu.get('nginx', 0), cpu.get('oauth2-proxy', 0)) if cpu else '-'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--phase', choices=sorted(PHASES), default='chain-vs-direct')
    parser.add_argument('--label', default='as deployed', help='names the variant in the table heading')
    parser.add_argument('--nginx', default='mg-demo-nginx', help='the nginx container (the load runs there)')
    parser.add_argument('--vm', default='mg-demo-vm', help='the MLflow VM container (oauth2-proxy, MLflow)')
    parser.add_argument('--public-host', default='localhost', help='mlflow_site_public_host')
    parser.add_argument('--chain-url', default='https://127.0.0.1:443', help='where nginx answers, in its container')
    parser.add_argument('--signin-url', default='https://127.0.0.1:443', help='nginx\'s TLS site, for the sign-in')
    parser.add_argument('--mlflow-url', help='MLflow directly (default: http://<VM address>:--mlflow-port)')
    parser.add_argument('--mlflow-port', type=int, default=8080)
    parser.add_argument('--oauth2-proxy-port', type=int, default=8081, help='phase auth-check')
    parser.add_argument('--issuer', default='http://10.89.77.10:9400', help='the OpenID Connect provider')
    parser.add_argument('--email', default='alice@example.org', help='the signed-in user (on the allowlist)')
    parser.add_argument('--service-email', default='svc-training@example.org')
    parser.add_argument('--service-client', default='svc-training-client', help='a client id oauth2-proxy accepts')
    parser.add_argument('--ops', default='read,log-batch', type=lambda s: s.split(','))
    parser.add_argument('--auth', default='session,bearer', type=lambda s: s.split(','),
                        help='credentials through nginx: session (browser cookie), bearer (ID token)')
    parser.add_argument('--threads', type=int, default=4)
    parser.add_argument('--seconds', type=float, default=20, help='measured seconds of each run (default 20)')
    parser.add_argument('--warmup', type=float, default=2, help='seconds before each measurement (default 2)')
    parser.add_argument('--side-by-side', action='store_true',
                        help='run direct and chain at once (each with --threads): paired under the same noise; '
                             'CPU per request is then the window\'s, shared by both')
    parser.add_argument('--rounds', type=int, default=1, help='interleaved rounds; the table shows medians')
    parser.add_argument('--action', help='phase `during`: a shell command run on the controller under load')
    parser.add_argument('--variants', type=lambda s: s.split(','),
                        help='nginx variants to measure in turn, e.g. as-deployed,no-tls,auth-cache (a+b combines); '
                             'one of: ' + ', '.join(nginx_variants.VARIANTS))
    parser.add_argument('--site-file', default='/etc/nginx/conf.d/mlflow.conf', help='the deployed site, for --variants')
    parser.add_argument('--plain-port', type=int, default=8000, help='variant no-tls: its loopback HTTP port')
    parser.add_argument('--auth-cache-ttl', default='5s', help='variant auth-cache: proxy_cache_valid 202 TTL')
    parser.add_argument('--json', help='also write every result, with load.py\'s raw output, to this file')
    changes.add_arguments(parser)
    args = parser.parse_args()

    stack = Stack(args)
    install(args.nginx)
    heading = '%s, %d threads, %gs each (+%gs warm-up), %d round(s), %s' % (
        args.phase, args.threads, args.seconds, args.warmup, args.rounds, time.strftime('%F %T'))
    if args.variants:
        rows = with_variants(stack, args, PHASES[args.phase])
        print_summary(rows, heading)
    else:
        rows = PHASES[args.phase](stack, args)
        if args.phase not in SELF_PRINTING:
            print_table(rows, '%s: %s' % (args.label, heading))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as handle:
            json.dump({'label': args.label, 'args': vars(args), 'rows': rows}, handle, indent=1)


if __name__ == '__main__':
    main()
