"""How long a site.yml that changes nothing takes, against a play that only gathers facts.

Run against a converged deployment (`make demo` brings one up on local containers):

    source .cache/env.sh && python3 benchmarks/noop_run.py [-i inventories/local] [--runs 2]

Prints, from one run: the no-op site.yml's wall time (and changed=, which must be 0), a facts-only
play's time on the same hosts, their ratio, a `--limit` run of each host, and the ten slowest tasks
(ansible's profile_tasks callback). The figures are ratios measured side by side, since the
machines are shared and noisy; the best of --runs counts.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACTS_ONLY = """---
- name: Gather facts, nothing else
  hosts: oauth2_proxy:mlflow:external_nginx
  gather_facts: true
  tasks: []
"""
RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)
TASK_TIME = re.compile(r'^(.+?) -+ (\d+\.\d+)s$', re.M)


def play(inventory, playbook, *extra, profile=False):
    """Run ansible-playbook; return (seconds, output). Fails loudly on a failed run."""
    env = dict(os.environ)
    if profile:
        env['ANSIBLE_CALLBACKS_ENABLED'] = 'ansible.posix.profile_tasks'
        env['PROFILE_TASKS_TASK_OUTPUT_LIMIT'] = '10'
    start = time.monotonic()
    out = subprocess.run(['ansible-playbook', '-i', inventory, playbook, *extra], cwd=REPO, env=env,
                         capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if out.returncode != 0:
        sys.exit('%s failed (rc %d):\n%s' % (playbook, out.returncode, out.stdout[-3000:] + out.stderr[-2000:]))
    return seconds, out.stdout


def changed(output):
    return {host: int(chg) for host, _ok, chg, _u, _f in RECAP.findall(output)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-i', '--inventory', default='inventories/local')
    parser.add_argument('--runs', type=int, default=2, help='runs of each, the best counts (default 2)')
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile('w', suffix='.yml', delete=False) as facts_file:
        facts_file.write(FACTS_ONLY)

    play(args.inventory, 'site.yml')  # converge first: what follows must be a no-op
    noop, facts, profile_out = [], [], ''
    for _run in range(args.runs):
        seconds, profile_out = play(args.inventory, 'site.yml', profile=True)
        noop.append(seconds)
        facts.append(play(args.inventory, facts_file.name)[0])
    os.unlink(facts_file.name)
    hosts = changed(profile_out)
    limited = {host: play(args.inventory, 'site.yml', '--limit', host)[0] for host in hosts}

    best_noop, best_facts = min(noop), min(facts)
    print('no-op site.yml          %6.1f s  (runs: %s; changed: %s)'
          % (best_noop, ', '.join('%.1f' % s for s in noop), hosts))
    print('facts-only play         %6.1f s  (runs: %s)' % (best_facts, ', '.join('%.1f' % s for s in facts)))
    print('ratio no-op / facts     %6.1f x  (goal: at most 8)' % (best_noop / best_facts))
    for host, seconds in limited.items():
        print('site.yml --limit %-8s %5.1f s  (%.2f of the whole run)' % (host, seconds, seconds / best_noop))
    print('slowest tasks of the last no-op run (profile_tasks):')
    for name, seconds in TASK_TIME.findall(profile_out)[:10]:
        print('  %6.2f s  %s' % (float(seconds), name.strip()))
    if any(hosts.values()):
        sys.exit('site.yml changed something on a converged deployment: %s' % hosts)


if __name__ == '__main__':
    main()
