"""The request matrix: every way in that a client might try, through the public nginx, with the
answer it must get and no MLflow content without a valid session; and a few rows with a real
session or bearer token that must reach MLflow, so that the matrix can fail.

Each row is (id, request, expected). A request is a dict for Target.request (method, target,
headers, host, sni, scheme, version) or {'raw': bytes}. Values in braces ({session}, {bearer},
...) are filled in with real credentials from the `creds` fixture. Expected is an HTTP status,
HANDSHAKE_REFUSED (TLS alert before any HTTP) or NO_ANSWER (connection closed, nginx's 444).
"""
import json
import ssl
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import NoAnswer, b64url, jwt_parts

HANDSHAKE_REFUSED = 'handshake refused'
NO_ANSWER = 'no answer'
SEARCH = '/api/2.0/mlflow/experiments/search?max_results=1'
AJAX_SEARCH = '/ajax-api/2.0/mlflow/experiments/search?max_results=1'
EVIL = 'evil.example'


def get(target, headers=(), **kw):
    return dict(method='GET', target=target, headers=list(headers), **kw)


# --- Without a valid session: nothing of MLflow ---------------------------------------------------
UNAUTHENTICATED = [
    # Every MLflow path family. The API paths answer 401 (JSON), the others send a browser to sign in.
    ('api-get', get(SEARCH), 401),
    ('api-post', dict(method='POST', target='/api/2.0/mlflow/experiments/create',
                      headers=[('Content-Type', 'application/json')], body=b'{"name": "lockdown"}'), 401),
    ('api-artifacts', get('/api/2.0/mlflow-artifacts/artifacts/lockdown/file.txt'), 401),
    ('ajax-api-get', get(AJAX_SEARCH), 401),
    ('graphql', dict(method='POST', target='/graphql', headers=[('Content-Type', 'application/json')],
                     body=b'{"query": "{ __typename }"}'), 302),
    ('get-artifact', get('/get-artifact?path=model&run_uuid=0123456789abcdef'), 302),
    ('model-versions', get('/model-versions/get-artifact?path=model&name=m&version=1'), 302),
    ('static-files', get('/static-files/static/js/main.js'), 302),
    ('health', get('/health'), 302),
    ('version', get('/version'), 302),
    ('server-info', get('/server-info'), 302),
    ('root', get('/'), 302),
    ('ping-is-not-public', get('/ping'), 302),
    # MLflow's own Prometheus metrics (--expose-prometheus) are never served through nginx.
    ('metrics', get('/metrics'), 404),
    ('metrics-double-slash', get('//metrics'), 404),
    # Encodings, dots and slashes: nginx routes the decoded, normalised path, so all land in /api/.
    ('encoded-letter', get('/%61pi/2.0/mlflow/experiments/search'), 401),
    ('encoded-slashes', get('/api%2F2.0%2Fmlflow%2Fexperiments%2Fsearch'), 401),
    ('double-slash', get('//api/2.0/mlflow/experiments/search'), 401),
    ('dot-segments', get('/static-files/../api/2.0/mlflow/experiments/search'), 401),
    ('encoded-dots', get('/static-files/%2e%2e/api/2.0/mlflow/experiments/search'), 401),
    ('oauth2-dotdot', get('/oauth2/../api/2.0/mlflow/experiments/search'), 401),
    ('oauth2-encoded-dotdot', get('/oauth2/%2e%2e/api/2.0/mlflow/experiments/search'), 401),
    ('oauth2-encoded-dotdot-slash', get('/oauth2/..%2fapi/2.0/mlflow/experiments/search'), 401),
    ('oauth2-double-encoded', get('/oauth2/%252e%252e/api/2.0/mlflow/experiments/search'), 'OAUTH2'),
    ('oauth2-auth-direct', get('/oauth2/auth'), 404),
    ('oauth2-userinfo', get('/oauth2/userinfo'), 401),
    # Case variants are other paths to nginx (and to MLflow): the sign-in applies to them too.
    ('case-API', get('/API/2.0/mlflow/experiments/search'), 302),
    ('case-Health', get('/HEALTH'), 302),
    ('case-OAUTH2-auth', get('/OAUTH2/auth'), 302),
    # Methods.
    ('head-api', dict(method='HEAD', target=SEARCH), 401),
    ('head-root', dict(method='HEAD', target='/'), 302),
    ('options-foreign-origin', dict(method='OPTIONS', target='/api/2.0/mlflow/experiments/create', headers=[
        ('Origin', 'https://' + EVIL), ('Access-Control-Request-Method', 'POST'),
        ('Access-Control-Request-Headers', 'content-type')]), 401),
    ('trace', dict(method='TRACE', target='/'), 405),
    ('trace-api', dict(method='TRACE', target=SEARCH), 405),
    ('upgrade-h2c', get(SEARCH, [('Upgrade', 'h2c'), ('HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA'),
                                 ('Connection', 'Upgrade, HTTP2-Settings')]), 401),
    # Request line and names.
    ('absolute-form-foreign', get('https://%s%s' % (EVIL, SEARCH)), 421),
    ('absolute-form-public', get('https://{public_host}' + SEARCH), 401),
    ('host-with-port', get(SEARCH, host='{public_host}:443'), 401),
    ('host-upper-case', get(SEARCH, host='{public_host_upper}'), 401),
    ('foreign-host', get(SEARCH, host=EVIL), 421),
    ('foreign-host-root', get('/', host=EVIL), 421),
    ('no-host-http10', get(SEARCH, host=None, version='HTTP/1.0'), 421),
    ('foreign-sni', get(SEARCH, sni=EVIL), HANDSHAKE_REFUSED),
    ('foreign-sni-public-host', get(SEARCH, sni=EVIL + '.{public_host}'), HANDSHAKE_REFUSED),
    ('no-sni', get(SEARCH, sni=None), HANDSHAKE_REFUSED),
    ('http-foreign-host', get(SEARCH, host=EVIL, scheme='http'), NO_ANSWER),
    ('http-no-host', get(SEARCH, host=None, scheme='http', version='HTTP/1.0'), NO_ANSWER),
    ('http-public-redirects', get(SEARCH, scheme='http'), 301),
    # Forged identity and routing headers: nginx drops them; oauth2-proxy decides on the session alone.
    ('forged-x-auth-request', get(SEARCH, [('X-Auth-Request-User', '{user}'), ('X-Auth-Request-Email', '{user}'),
                                           ('X-Auth-Request-Preferred-Username', 'alice')]), 401),
    ('forged-remote-user', get(SEARCH, [('Remote-User', '{user}'), ('X-Remote-User', '{user}')]), 401),
    ('forged-x-forwarded-user', get(SEARCH, [('X-Forwarded-User', '{user}'), ('X-Forwarded-Email', '{user}'),
                                             ('X-Forwarded-Preferred-Username', 'alice')]), 401),
    ('forged-x-forwarded-access-token', get(SEARCH, [('X-Forwarded-Access-Token', '{bearer}')]), 401),
    ('forged-x-forwarded-for', get(SEARCH, [('X-Forwarded-For', '127.0.0.1'), ('X-Real-IP', '127.0.0.1'),
                                            ('Forwarded', 'for=127.0.0.1;proto=https')]), 401),
    ('forged-x-forwarded-uri', get(SEARCH, [('X-Forwarded-Uri', '/oauth2/start'), ('X-Original-URL', '/ping'),
                                            ('X-Rewrite-URL', '/ping')]), 401),
    ('forged-x-forwarded-host-proto', get(SEARCH, [('X-Forwarded-Host', EVIL), ('X-Forwarded-Proto', 'http'),
                                                   ('X-Forwarded-Port', '8080')]), 401),
    ('forged-headers-root', get('/', [('X-Auth-Request-Email', '{user}'), ('Remote-User', '{user}'),
                                      ('X-Forwarded-Uri', '/ping')]), 302),
    # Sessions and tokens that are not valid.
    ('garbage-cookie', get(SEARCH, [('Cookie', '_oauth2_proxy=garbage')]), 401),
    ('tampered-cookie', get(SEARCH, [('Cookie', '{session_tampered}')]), 401),
    ('tampered-cookie-root', get('/', [('Cookie', '{session_tampered}')]), 302),
    ('garbage-bearer', get(SEARCH, [('Authorization', 'Bearer garbage')]), 401),
    ('bearer-alg-none', get(SEARCH, [('Authorization', 'Bearer {bearer_alg_none}')]), 401),
    ('bearer-other-key', get(SEARCH, [('Authorization', 'Bearer {bearer_other_key}')]), 401),
    ('bearer-tampered-claims', get(SEARCH, [('Authorization', 'Bearer {bearer_tampered}')]), 401),
    ('bearer-other-audience', get(SEARCH, [('Authorization', 'Bearer {bearer_other_audience}')]), 401),
    ('bearer-user-not-allowed', get(SEARCH, [('Authorization', 'Bearer {bearer_not_allowed}')]), 401),
    ('basic-auth', get(SEARCH, [('Authorization', 'Basic YWxpY2U6YWxpY2U=')]), 401),
    ('oversized-cookie', get(SEARCH, [('Cookie', '_oauth2_proxy=' + 'A' * 40000)]), 400),
]

# --- With a valid session: MLflow answers (the same paths, so the rows above can fail) -----------
SIGNED_IN = [
    ('signed-in-api-get', get(SEARCH, [('Cookie', '{session}')]), 200),
    ('signed-in-ajax-api', get(AJAX_SEARCH, [('Cookie', '{session}')]), 200),
    ('signed-in-root', get('/', [('Cookie', '{session}')]), 200),
    ('signed-in-version', get('/version', [('Cookie', '{session}')]), 200),
    ('signed-in-health', get('/health', [('Cookie', '{session}')]), 200),
    ('signed-in-metrics', get('/metrics', [('Cookie', '{session}')]), 404),
    ('signed-in-double-slash', get('//api/2.0/mlflow/experiments/search?max_results=1', [('Cookie', '{session}')]), 200),
    ('bearer-api-get', get(SEARCH, [('Authorization', 'Bearer {bearer}')]), 200),
    ('bearer-ajax-api', get(AJAX_SEARCH, [('Authorization', 'Bearer {bearer}')]), 200),
    # A session does not open another name.
    ('signed-in-foreign-host', get(SEARCH, [('Cookie', '{session}')], host=EVIL), 421),
]

ROWS = [pytest.param(req, exp, False, id=i) for i, req, exp in UNAUTHENTICATED] + \
       [pytest.param(req, exp, exp == 200, id=i) for i, req, exp in SIGNED_IN]

SECURITY_HEADERS = ['strict-transport-security', 'x-content-type-options', 'x-frame-options',
                    'content-security-policy', 'referrer-policy']
RESULTS = []


def _signed_by_other_key(token):
    head, payload, _signature = jwt_parts(token)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_input = ('%s.%s' % (b64url(json.dumps(head).encode()), b64url(json.dumps(payload).encode()))).encode()
    return signing_input.decode() + '.' + b64url(key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()))


def _alg_none(token):
    payload = jwt_parts(token)[1]
    return '%s.%s.' % (b64url(b'{"alg":"none","typ":"JWT"}'), b64url(json.dumps(payload).encode()))


def _tampered_claims(token):
    head, payload, sig = token.split('.')
    claims = jwt_parts(token)[1]
    claims['email'] = 'admin@example.org'
    claims['sub'] = 'admin@example.org'
    return '%s.%s.%s' % (head, b64url(json.dumps(claims).encode()), sig)


def _tampered_cookie(cookie):
    name, _sep, value = cookie.split(';')[0].partition('=')
    middle = len(value) // 3
    flipped = value[:middle] + ('B' if value[middle] != 'B' else 'C') + value[middle + 1:]
    return '%s=%s' % (name, flipped)


@pytest.fixture(scope='module')
def creds(target, session_cookie, bearer):
    return {
        'public_host': target.public_host,
        'public_host_upper': target.public_host.upper(),
        'user': target.user,
        'session': session_cookie,
        'session_tampered': _tampered_cookie(session_cookie),
        'bearer': bearer,
        'bearer_alg_none': _alg_none(bearer),
        'bearer_other_key': _signed_by_other_key(bearer),
        'bearer_tampered': _tampered_claims(bearer),
        # The provider gives a token to any client: this one is for another audience than oauth2-proxy's.
        'bearer_other_audience': target.id_token(target.user, client_id='another-client', client_secret='another-secret'),
        'bearer_not_allowed': target.id_token('mallory@example.org'),
    }


def _fill(value, creds):
    if isinstance(value, str):
        for key, secret in creds.items():
            value = value.replace('{%s}' % key, secret)
    return value


def _send(target, req, creds):
    req = dict(req)
    headers = [(name, _fill(value, creds)) for name, value in req.pop('headers', [])]
    kw = {k: _fill(v, creds) for k, v in req.items()}
    return target.request(headers=headers, **kw)


@pytest.mark.parametrize(('req', 'expected', 'reaches_mlflow'), ROWS)
def test_matrix(target, creds, mlflow_markers, req, expected, reaches_mlflow, request):
    started = time.monotonic()
    try:
        resp = _send(target, req, creds)
    except ssl.SSLError as exc:
        outcome = HANDSHAKE_REFUSED
        detail = str(exc)
        resp = None
    except NoAnswer as exc:
        outcome = NO_ANSWER
        detail = str(exc)
        resp = None
    else:
        outcome = resp.status
        detail = '%s %s' % (resp.status, resp.reason)
    RESULTS.append((request.node.callspec.id, expected, outcome, round(time.monotonic() - started, 3)))

    if expected == 'OAUTH2':
        # Still under /oauth2/ once decoded once: oauth2-proxy's, which has no upstream. Any of its
        # refusals will do; what matters is below (no MLflow content).
        assert outcome in (302, 401, 403, 404), detail
    else:
        assert outcome == expected, '%s (%r)' % (detail, resp)
    if resp is None:
        if expected == HANDSHAKE_REFUSED:
            assert 'UNRECOGNIZED_NAME' in detail.upper(), detail
        return

    found = [m for m in mlflow_markers if m in resp.body]
    if reaches_mlflow:
        # /health answers a bare OK.
        assert found or resp.body == b'OK', 'a signed-in request should have reached MLflow: %r' % resp
    else:
        assert resp.body.strip() != b'OK', resp
        assert not found, 'MLflow content without a valid session: %s in %r' % (found, resp)
        assert not resp.header('access-control-allow-origin'), resp.raw_head
    if req.get('scheme', 'https') == 'https':
        missing = [h for h in SECURITY_HEADERS if not resp.header(h)]
        assert not missing, 'missing %s on a %d: %s' % (missing, resp.status, resp.raw_head)
        assert resp.header('strict-transport-security').startswith('max-age=63072000'), resp.raw_head
    if expected == 302:
        assert resp.header('location', '').startswith(target.public_url + '/oauth2/start?rd='), resp.raw_head
    if expected == 401 and req['method'] != 'HEAD' and not req['target'].startswith('/oauth2/'):
        assert json.loads(resp.body)['error_code'] == 'UNAUTHENTICATED', resp.body


def test_matrix_size():
    """The issue asks for at least 40 requests."""
    assert len(ROWS) >= 40, len(ROWS)
