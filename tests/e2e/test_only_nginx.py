"""Only nginx reaches the services: both ports refuse every other host, and local users but root.

Two layers guard each port (roles/service_access): systemd's IPAddressAllow=/IPAddressDeny=any
(on oauth2-proxy.socket and on mlflow-globus.service) and the nftables tables inet alcf_oauth2_proxy /
inet alcf_mlflow_globus. The tests below check each layer alone too.
"""
import subprocess

import pytest
import requests

from conftest import curl_in

MLFLOW = (8080, '/api/2.0/mlflow/experiments/search?max_results=1')
OAUTH2 = (8081, '/oauth2/start')
PORTS = [pytest.param(*MLFLOW, id='mlflow-8080'), pytest.param(*OAUTH2, id='oauth2-proxy-8081')]
FIREWALLS = ['alcf-service-firewall@oauth2_proxy.service', 'alcf-service-firewall@mlflow_globus.service']


def as_nginx(site):
    """The headers nginx sends: the public Host, and the signed-in user that MLflow's auth app believes.
    Whoever reaches the port can send them too, which is why only nginx may reach it."""
    return ['Host: %s' % site['public_host'], 'X-Forwarded-Email: %s' % site['allowed'][0]]


def vm(site, *argv):
    out = subprocess.run(['podman', 'exec', site['vm'], *argv], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def url(site, port, path):
    return 'http://%s:%d%s' % (site['vm_address'], port, path)


def controller_answer(target):
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment
    try:
        return session.get(target, timeout=5, allow_redirects=False).status_code
    except requests.RequestException as exc:
        return 'no answer (%s)' % type(exc).__name__


@pytest.fixture
def firewall_stopped(site):
    """systemd's filter alone: the nftables tables unloaded for the test, loaded again after."""
    vm(site, 'systemctl', 'stop', *FIREWALLS)
    try:
        assert 'alcf_' not in vm(site, 'nft', 'list', 'tables')
        yield
    finally:
        vm(site, 'systemctl', 'start', *FIREWALLS)


@pytest.mark.parametrize('port, path', PORTS)
def test_the_controller_gets_no_answer(site, port, path):
    got = controller_answer(url(site, port, path))
    print('controller -> %s: %s' % (url(site, port, path), got))
    assert str(got).startswith('no answer'), got


@pytest.mark.parametrize('port, path', PORTS)
def test_a_third_host_gets_no_answer(site, port, path):
    r = curl_in(site['provider'], url(site, port, path))
    print('%s -> %s: %r' % (site['provider'], url(site, port, path), r))
    assert r.status is None and r.rc in (7, 28), r  # 7 refused, 28 timed out


def test_nginx_gets_the_data(site):
    r = curl_in(site['nginx'], url(site, *MLFLOW), headers=as_nginx(site))
    print('%s -> %s: %r' % (site['nginx'], url(site, *MLFLOW), r))
    assert r.status == 200 and '"experiments"' in r.body, r


def test_nginx_gets_the_sign_in_redirect(site):
    r = curl_in(site['nginx'], url(site, *OAUTH2))
    print('%s -> %s: %r' % (site['nginx'], url(site, *OAUTH2), r))
    assert r.status == 302 and r.location.startswith(site['issuer']), r


@pytest.mark.parametrize('port, path', PORTS)
def test_on_the_vm_root_is_answered_and_nobody_refused(site, port, path):
    root = curl_in(site['vm'], url(site, port, path), headers=as_nginx(site))
    nobody = curl_in(site['vm'], url(site, port, path), user='nobody', headers=as_nginx(site))
    print('vm as root: %r; vm as nobody: %r' % (root, nobody))
    assert root.status in (200, 302), root
    assert nobody.status is None and nobody.rc == 7, nobody  # the table's reject: connection refused


@pytest.mark.parametrize('port, path', PORTS)
def test_systemd_alone_refuses_a_third_host(site, firewall_stopped, port, path):
    r = curl_in(site['provider'], url(site, port, path), timeout=3)
    print('firewall stopped: %s -> %s: %r' % (site['provider'], url(site, port, path), r))
    assert r.status is None and r.rc == 28, r  # IPAddressDeny drops: no answer at all


@pytest.mark.parametrize('port, path', PORTS)
def test_without_the_firewall_a_local_user_is_answered(site, firewall_stopped, port, path):
    # What docs/architecture.md says: systemd's filter lets loopback and the host's own addresses in,
    # so only the nftables table keeps a local unprivileged user out - who could otherwise claim any
    # identity to MLflow, as nginx does.
    r = curl_in(site['vm'], url(site, port, path), user='nobody', headers=as_nginx(site))
    assert r.status in (200, 302), r


@pytest.mark.parametrize('unit', ['oauth2-proxy.socket', 'mlflow-globus.service'])
def test_the_units_allow_nginx_and_deny_the_rest(site, unit):
    shown = vm(site, 'systemctl', 'show', '-p', 'IPAddressAllow,IPAddressDeny', unit)
    print('%s:\n%s' % (unit, shown))
    props = dict(line.split('=', 1) for line in shown.splitlines())
    # systemd shows each address as a prefix: 10.89.77.20/32.
    allowed = props['IPAddressAllow'].split()
    assert site['nginx_address'] + '/32' in allowed and '127.0.0.0/8' in allowed and site['vm_address'] + '/32' in allowed
    # In no fixed order: systemd keeps the prefixes in a set.
    assert set(props['IPAddressDeny'].split()) == {'0.0.0.0/0', '::/0'}, props['IPAddressDeny']
    assert site['provider_address'] + '/32' not in allowed


def test_oauth2_proxy_gets_its_listener_from_systemd(site):
    assert 'http_address = "fd:3"' in vm(site, 'cat', '/etc/oauth2-proxy/oauth2-proxy.cfg')
    assert vm(site, 'systemctl', 'is-active', 'oauth2-proxy.socket', 'oauth2-proxy.service').split() == ['active'] * 2


@pytest.mark.parametrize('table, port', [('alcf_oauth2_proxy', 8081), ('alcf_mlflow_globus', 8080)])
def test_the_nftables_table_lets_nginx_and_root_in(site, table, port):
    listing = vm(site, 'nft', 'list', 'table', 'inet', table)
    print(listing)
    assert site['nginx_address'] in listing
    assert 'tcp dport { %d } counter' % port in listing or 'tcp dport %d counter' % port in listing
    assert 'meta skuid != 0 counter' in listing or 'meta skuid != { 0' in listing
