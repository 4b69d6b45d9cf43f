"""The checklist's §4 curl checks, each with exactly the code it expects."""
import requests

from conftest import curl_in, sign_in


def head(url, **kw):
    # `curl -I`: a HEAD request, redirects not followed, certificate not checked (`-k`).
    return requests.head(url, allow_redirects=False, verify=False, timeout=10, **kw)


# The VM checks run on the VM itself, as the checklist's operator does there: from anywhere else
# only nginx gets an answer (tests/e2e/test_only_nginx.py).

def test_vm_oauth2_start_redirects_to_the_provider(site):
    r = curl_in(site['vm'], 'http://%s:8081/oauth2/start' % site['vm_address'], head=True)
    assert r.status == 302, r
    assert r.location.startswith(site['issuer'] + '/oauth2/authorize'), r


def test_vm_oauth2_auth_is_401_without_a_session(site):
    r = curl_in(site['vm'], 'http://%s:8081/oauth2/auth' % site['vm_address'], head=True)
    assert r.status == 401, r


def test_vm_mlflow_answers_the_public_host_only(site):
    # The checklist: ":8080 / may be 403 direct access (acceptable)". MLflow answers the public host
    # (as nginx forwards it) and localhost; the VM's own names only if the inventory asks
    # (mlflow_globus_allowed_hosts_own_names), so a direct call by the VM's address is 403.
    # With identity on, MLflow's auth app also wants the signed-in user that nginx passes.
    url = 'http://%s:8080/' % site['vm_address']
    signed_in = ['Host: %s' % site['public_host'], 'X-Forwarded-Email: %s' % site['allowed'][0]]
    # GET: MLflow's auth app refuses HEAD / (403) even for a signed-in user.
    assert curl_in(site['vm'], url, headers=signed_in).status == 200
    assert curl_in(site['vm'], url, headers=['Host: %s' % site['public_host']]).status == 401
    assert curl_in(site['vm'], url, head=True).status == 403
    assert curl_in(site['vm'], url, head=True, headers=['Host: evil.example']).status == 403


def test_vm_mlflow_health(site):
    r = curl_in(site['vm'], 'http://%s:8080/health' % site['vm_address'])
    assert r.status == 200 and r.body.strip() == 'OK', r


def test_public_oauth2_start_redirects_to_the_provider(site):
    r = head(site['public_url'] + '/oauth2/start')
    assert r.status_code == 302
    assert r.headers['Location'].startswith(site['issuer'] + '/oauth2/authorize')


def test_public_fake_callback_is_an_error_not_404_or_502(site):
    # The checklist: "test callback often 500 (fake code/state); this is normal": oauth2-proxy
    # cannot match the state to a CSRF cookie and answers with its error page.
    r = requests.get(site['public_url'] + '/oauth2/callback?code=test&state=test',
                     allow_redirects=False, verify=False, timeout=10)
    assert r.status_code == 500, r.text[:300]


def test_public_root_without_a_session_goes_to_sign_in(site):
    r = head(site['public_url'] + '/')
    assert r.status_code == 302
    assert r.headers['Location'].startswith('/oauth2/start?rd=') or '/oauth2/start' in r.headers['Location']


def test_public_api_without_a_session_is_401_not_a_page(site):
    r = requests.get(site['public_url'] + '/api/2.0/mlflow/experiments/search',
                     allow_redirects=False, verify=False, timeout=10)
    assert r.status_code == 401
    assert '<html' not in r.text.lower()[:200] or 'mlflow' not in r.text.lower()


def test_http_redirects_to_https(site):
    r = head(site['public_url'].replace('https://', 'http://') + '/')
    assert r.status_code == 301
    assert r.headers['Location'].startswith(site['public_url'] + '/')


def test_signed_in_allowed_user_reaches_mlflow(site):
    s = sign_in(site, site['allowed'][0])
    assert s.callback_response.status_code == 302
    r = s.get(site['public_url'] + '/api/2.0/mlflow/experiments/search?max_results=1', allow_redirects=False)
    assert r.status_code == 200, r.text[:300]
    assert 'experiments' in r.json()


def test_user_not_on_the_list_is_refused(site):
    s = sign_in(site, 'mallory@example.org')
    assert s.callback_response.status_code == 403
    r = s.get(site['public_url'] + '/api/2.0/mlflow/experiments/search', allow_redirects=False)
    assert r.status_code == 401
