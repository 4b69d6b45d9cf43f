"""The MLflow VM is lost and rebuilt from a backup: playbooks/backup.yml fetches a backup to the
controller, the VM's container is destroyed and a new one created from the bare base image,
site.yml --limit deploys it from nothing, playbooks/restore.yml uploads and restores the backup,
and everything the server held reads back identical through the public nginx (every experiment,
run, param, tag, metric point, artifact's checksum, registered model and version).

Destructive, so not part of the default e2e run: the split scenario runs it last
(`pytest tests/e2e -m host_lost`).
"""
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO, ansible_playbook, id_token

pytestmark = pytest.mark.host_lost

CLIENT = REPO / 'molecule' / 'resources' / 'mlflow_shared' / 'files' / 'mlflow_client.py'


def mlflow_client(site, action, state, email='carol@example.org'):
    """The MLflow client through the public nginx, as an admin (who reads everyone's experiments)."""
    out = subprocess.run([sys.executable, str(CLIENT), action, '--uri', site['public_url'], '--state', str(state),
                          '--token', id_token(site, email), '--insecure', '--label', 'host-lost'],
                         capture_output=True, text=True, env=dict(os.environ, MLFLOW_DISABLE_TELEMETRY='true'))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def replace_container(name):
    """Destroy the container and create it again from the base image, as molecule/split/molecule.yml says."""
    platform = next(p for p in yaml.safe_load((REPO / 'molecule' / 'split' / 'molecule.yml').read_text())['platforms']
                    if p['name'] == name)
    image = os.path.expandvars(platform['image'])
    subprocess.run(['podman', 'rm', '--force', '--time', '10', name], check=True, capture_output=True)
    subprocess.run(['podman', 'run', '--detach', '--name', name, '--hostname', name, '--label', 'owner=molecule',
                    '--privileged', '--systemd', platform['systemd'], '--network', platform['network'],
                    '--ip', platform['ip'], image, platform['command']], check=True, capture_output=True)
    # systemd makes its bus a moment after the container starts (longer on a busy machine): until then
    # systemctl says "Failed to connect to bus", which is not an answer yet.
    deadline = time.monotonic() + 120
    while True:
        out = subprocess.run(['podman', 'exec', name, 'timeout', '120', 'systemctl', 'is-system-running', '--wait'],
                             capture_output=True, text=True)
        if 'Failed to connect to bus' not in out.stderr or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert out.stdout.strip() in ('running', 'degraded'), out


def test_a_lost_vm_is_rebuilt_from_its_backup(site, output_dir, tmp_path):
    vm = site['vm']
    mlflow_client(site, 'log', tmp_path / 'logged.json')
    before = mlflow_client(site, 'dump', tmp_path / 'before.json')
    backup = ansible_playbook(site, 'playbooks/backup.yml', '--limit', vm, '-e', 'backup_fetch_to=%s' % tmp_path)
    assert backup.returncode == 0, backup.stdout[-3000:]
    fetched = sorted((tmp_path / vm).iterdir())
    assert len(fetched) == 1 and (fetched[0] / 'manifest.json').exists(), fetched
    manifest = json.loads((fetched[0] / 'manifest.json').read_text())
    assert sorted(manifest['files']) == ['artifacts.tar', 'auth.db', 'store.db'], manifest

    started = time.monotonic()
    replace_container(vm)
    deploy = ansible_playbook(site, 'site.yml', '--limit', vm)
    assert deploy.returncode == 0, deploy.stdout[-3000:]
    deployed = time.monotonic()
    restore = ansible_playbook(site, 'playbooks/restore.yml', '--limit', vm, '-e', 'restore_upload=%s' % fetched[0])
    assert restore.returncode == 0, restore.stdout[-3000:]
    restored = time.monotonic()

    after = mlflow_client(site, 'compare', tmp_path / 'before.json')
    assert after['identical'] and after['sha256'] == before['sha256'], (before, after)
    assert before['runs'] > 0 and before['artifacts'] > 0 and before['model_versions'] > 0, before
    report = {'compared': before, 'deploy_seconds': round(deployed - started),
              'restore_seconds': round(restored - deployed), 'backup': manifest['files']}
    (output_dir / 'host-lost.json').write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
