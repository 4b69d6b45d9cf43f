"""End-to-end tests against the local deployment: the verify step of the Molecule scenario `split`
(`make e2e`), or by hand against `make demo` (`pytest tests/e2e`).

Everything here is real: nginx, oauth2-proxy, MLflow, an OpenID Connect provider standing in for
Globus (oidc-provider-mock), Debian's Chromium driven by Playwright, and MLflow's Python client.
The addresses come from inventories/local, the one place that sets them.
"""
import os
import pathlib
import subprocess
import urllib.parse

import pytest
import requests
import urllib3
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
INVENTORY = REPO / 'inventories' / 'local'
OUTPUT = REPO / 'tests' / 'output' / 'e2e'

# The demo's certificate is self-signed, as the checklist's `curl -k` expects.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def _group_vars():
    return yaml.safe_load((INVENTORY / 'group_vars' / 'all' / 'main.yml').read_text())


@pytest.fixture(scope='session')
def site():
    """The facts of the local site: public URL, issuer, VM address, client id, allowed users."""
    gv = _group_vars()
    issuer = 'http://%s:9400' % gv['oidc_provider_address']
    hosts = yaml.safe_load((INVENTORY / 'hosts.yml').read_text())['all']['children']
    vm = next(iter(hosts['mlflow']['hosts']))
    facts = {
        'public_url': 'https://%s' % gv['mlflow_site_public_host'],
        'issuer': issuer,
        'client_id': gv['oauth2_proxy_client_id'],
        'client_secret': gv['oauth2_proxy_client_secret'],
        'allowed': list(gv['oauth2_proxy_allowed_emails']),
        'vm': vm,
        'vm_address': podman_address(vm),
        'nginx': next(iter(hosts['external_nginx']['hosts'])),
        'nginx_address': gv['external_nginx_address'],
        'provider': next(iter(hosts['oidc_provider']['hosts'])),
        'provider_address': gv['oidc_provider_address'],
        'public_host': gv['mlflow_site_public_host'],
        'inventory': str(INVENTORY),
    }
    try:
        requests.get(facts['public_url'] + '/ping', verify=False, timeout=5)
        requests.get(issuer + '/.well-known/openid-configuration', timeout=5)
    except requests.ConnectionError as exc:
        pytest.fail('the local deployment is not up (run `make demo` first, or `make e2e`): %s' % exc)
    return facts


def podman_address(name):
    out = subprocess.run(['podman', 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', name],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Answer:
    """What curl in a container got: the status (None: no answer), Location, body, curl's exit code."""

    def __init__(self, status, location, body, rc):
        self.status, self.location, self.body, self.rc = status, location, body, rc

    def __repr__(self):
        return 'Answer(status=%r, location=%r, rc=%r, body=%r)' % (self.status, self.location, self.rc, self.body[:120])


def curl_in(container, url, user=None, head=False, headers=(), timeout=5):
    """curl `url` from inside `container` (as `user`), redirects not followed."""
    argv = ['podman', 'exec'] + (['--user', user] if user else []) + [
        container, 'curl', '--silent', '--max-time', str(timeout), '--write-out', '\n%{http_code} %{redirect_url}']
    if head:
        argv.append('--head')
    for header in headers:
        argv += ['--header', header]
    out = subprocess.run(argv + [url], capture_output=True, text=True)
    body, _, last = out.stdout.rpartition('\n')
    code, _, location = last.partition(' ')
    status = int(code) if code.isdigit() and int(code) > 0 else None
    return Answer(status, location.strip(), body, out.returncode)


def vm_main_pid(site, unit):
    out = subprocess.run(['podman', 'exec', site['vm'], 'systemctl', 'show', '-p', 'MainPID', '--value', unit],
                         check=True, capture_output=True, text=True)
    return int(out.stdout)


def sign_in(site, email):
    """Sign in through nginx the way a browser does, without one; returns the session."""
    s = requests.Session()
    s.verify = False
    # Else REQUESTS_CA_BUNDLE from the environment wins over verify=False.
    s.trust_env = False
    r = s.get(site['public_url'] + '/oauth2/start', params={'rd': '/'}, allow_redirects=False)
    assert r.status_code == 302, r.text
    authorize = r.headers['Location']
    assert authorize.startswith(site['issuer']), authorize
    # The provider's sign-in form: one field, the subject; its email claim defaults to it.
    r = s.post(authorize, data={'sub': email}, allow_redirects=False)
    assert r.status_code == 302, r.text
    callback = r.headers['Location']
    assert callback.startswith(site['public_url'] + '/oauth2/callback'), callback
    s.callback_response = s.get(callback, allow_redirects=False)
    return s


def id_token(site, email):
    """An ID token for `email` from the provider (audience = our client id): a batch client's bearer."""
    redirect = site['public_url'] + '/oauth2/callback'
    r = requests.post(site['issuer'] + '/oauth2/authorize', allow_redirects=False, params={
        'client_id': site['client_id'], 'redirect_uri': redirect, 'response_type': 'code',
        'scope': 'openid profile email', 'state': 'e2e'}, data={'sub': email})
    assert r.status_code == 302, r.text
    code = urllib.parse.parse_qs(urllib.parse.urlparse(r.headers['Location']).query)['code'][0]
    r = requests.post(site['issuer'] + '/oauth2/token', data={
        'grant_type': 'authorization_code', 'code': code, 'redirect_uri': redirect,
        'client_id': site['client_id'], 'client_secret': site['client_secret']})
    assert r.status_code == 200, r.text
    return r.json()['id_token']


def ansible_playbook(site, playbook, *args):
    env = dict(os.environ)
    return subprocess.run(['ansible-playbook', '-i', site['inventory'], str(REPO / playbook), *args],
                          cwd=REPO, env=env, capture_output=True, text=True)


@pytest.fixture(scope='session')
def output_dir():
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


def pytest_collection_modifyitems(config, items):
    """The destructive host_lost test runs only when asked for by name (-m host_lost)."""
    if 'host_lost' in (config.option.markexpr or ''):
        return
    kept = [item for item in items if 'host_lost' not in item.keywords]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if 'host_lost' in item.keywords])
        items[:] = kept
