"""The checklist's §5 through playbooks/allowlist.yml: a removed user is refused at once, an added
one gets in, and no service restarts."""
import json

from conftest import ansible_playbook, sign_in, vm_main_pid

API = '/api/2.0/mlflow/experiments/search?max_results=1'


def set_allowlist(site, emails):
    result = ansible_playbook(site, 'playbooks/allowlist.yml', '-e', json.dumps({'oauth2_proxy_allowed_emails': emails}))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def test_removed_user_is_refused_without_a_restart(site):
    alice, bob = site['allowed'][:2]
    pids = {unit: vm_main_pid(site, unit) for unit in ('oauth2-proxy', 'mlflow-globus')}
    bob_session = sign_in(site, bob)
    assert bob_session.get(site['public_url'] + API, allow_redirects=False).status_code == 200
    try:
        out = set_allowlist(site, [alice])
        assert 'removed: %s' % bob in out
        assert bob_session.get(site['public_url'] + API, allow_redirects=False).status_code == 401
        assert sign_in(site, alice).get(site['public_url'] + API, allow_redirects=False).status_code == 200
    finally:
        out = set_allowlist(site, site['allowed'])
    assert 'added:   %s' % bob in out
    assert bob_session.get(site['public_url'] + API, allow_redirects=False).status_code == 200
    assert {unit: vm_main_pid(site, unit) for unit in pids} == pids
