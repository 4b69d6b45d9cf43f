"""Lockdown tests: what the public nginx lets through, asked over raw sockets.

Run by the `external_nginx` Molecule scenario's verify (molecule/external_nginx/verify.yml), which
sets the target in the environment; the controller reaches the containers' addresses on the
podman network directly:

    LOCKDOWN_NGINX_ADDRESS   the nginx container's address (ports 80 and 443)
    LOCKDOWN_PUBLIC_HOST     the public host name (TLS server name and Host header)
    LOCKDOWN_ISSUER          the issuer URL oauth2-proxy uses (e.g. http://mg-external-nginx-idp:9400)
    LOCKDOWN_ISSUER_ADDRESS  the provider's address (its name resolves on the podman network only)
    LOCKDOWN_CLIENT_ID, LOCKDOWN_CLIENT_SECRET   oauth2-proxy's client at the provider
    LOCKDOWN_USER            an allowed user's email
    LOCKDOWN_VM              the container of MLflow and oauth2-proxy (for the packet capture)
    LOCKDOWN_BODY_LIMIT      external_nginx_unauthenticated_max_body_size in bytes

Requests are written byte for byte (http.client and requests would normalise paths, add or merge
headers, refuse absolute-form request lines), so each row of the matrix sends exactly what it says.
Nothing is mocked: nginx, oauth2-proxy, MLflow and the OpenID Connect provider are the real ones.
"""
import base64
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.parse

import pytest


def _env(name):
    value = os.environ.get(name, '')
    if not value:
        pytest.fail('%s is not set: run these tests from the external_nginx scenario (molecule verify -s external_nginx)' % name)
    return value


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def header_all(self, name):
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def __repr__(self):
        return '<%s %s, %d bytes: %r>' % (self.status, self.reason, len(self.body), self.body[:300])


class NoAnswer(Exception):
    """The server closed the connection (or refused the handshake) without an HTTP answer."""


def read_response(sock, method='GET', timeout=20):
    """Read one HTTP/1.1 response (Content-Length, chunked or until close) from a socket."""
    sock.settimeout(timeout)
    data = b''
    while b'\r\n\r\n' not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError) as exc:
            raise NoAnswer('connection reset before an answer: %s' % exc) from exc
        if not chunk:
            raise NoAnswer('connection closed after %d bytes: %r' % (len(data), data[:200]))
        data += chunk
    head, rest = data.split(b'\r\n\r\n', 1)
    lines = head.decode('latin-1').split('\r\n')
    version, status, *reason = lines[0].split(' ', 2)
    headers = []
    for line in lines[1:]:
        name, _sep, value = line.partition(':')
        headers.append((name.strip().lower(), value.strip()))
    resp = Response(int(status), reason[0] if reason else '', headers, b'', head.decode('latin-1'))
    if method == 'HEAD' or resp.status in (204, 304) or 100 <= resp.status < 200:
        return resp

    def more():
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            return b''
        return chunk

    if resp.header('transfer-encoding', '').lower() == 'chunked':
        body = b''
        buf = rest
        while True:
            while b'\r\n' not in buf:
                chunk = more()
                if not chunk:
                    raise NoAnswer('chunked body cut short')
                buf += chunk
            size_line, buf = buf.split(b'\r\n', 1)
            size = int(size_line.split(b';')[0], 16)
            while len(buf) < size + 2:
                chunk = more()
                if not chunk:
                    raise NoAnswer('chunked body cut short')
                buf += chunk
            if size == 0:
                break
            body += buf[:size]
            buf = buf[size + 2:]
        resp.body = body
    elif resp.header('content-length') is not None:
        length = int(resp.header('content-length'))
        body = rest
        while len(body) < length:
            chunk = more()
            if not chunk:
                break
            body += chunk
        resp.body = body[:length]
    else:
        body = rest
        while True:
            chunk = more()
            if not chunk:
                break
            body += chunk
        resp.body = body
    return resp


class Target:
    def __init__(self):
        self.address = _env('LOCKDOWN_NGINX_ADDRESS')
        self.public_host = _env('LOCKDOWN_PUBLIC_HOST')
        self.issuer = _env('LOCKDOWN_ISSUER').rstrip('/')
        self.issuer_address = _env('LOCKDOWN_ISSUER_ADDRESS')
        self.client_id = _env('LOCKDOWN_CLIENT_ID')
        self.client_secret = _env('LOCKDOWN_CLIENT_SECRET')
        self.user = _env('LOCKDOWN_USER')
        self.vm = _env('LOCKDOWN_VM')
        self.body_limit = int(_env('LOCKDOWN_BODY_LIMIT'))
        self.public_url = 'https://%s' % self.public_host

    # --- connections -------------------------------------------------------------------------
    def tls(self, sni='default', alpn=None, port=443, timeout=20):
        """A TLS connection to nginx, with the public host as server name unless told otherwise
        (sni=None: no server name at all)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the scenario's certificate is self-signed
        if alpn:
            ctx.set_alpn_protocols(alpn)
        raw = socket.create_connection((self.address, port), timeout=timeout)
        name = self.public_host if sni == 'default' else sni
        try:
            return ctx.wrap_socket(raw, server_hostname=name) if name else ctx.wrap_socket(raw)
        except Exception:
            raw.close()
            raise

    def plain(self, port=80, timeout=20):
        return socket.create_connection((self.address, port), timeout=timeout)

    def raw(self, request_bytes, scheme='https', sni='default', method=None):
        """Send exactly these bytes, read one answer."""
        sock = self.tls(sni=sni) if scheme == 'https' else self.plain()
        try:
            sock.sendall(request_bytes)
            method = method or request_bytes.split(b' ', 1)[0].decode()
            return read_response(sock, method=method)
        finally:
            sock.close()

    def request(self, method, target, headers=None, body=b'', scheme='https', sni='default', host='default',
                version='HTTP/1.1'):
        """One request, its request line and headers written as given (Host first, Connection: close)."""
        lines = ['%s %s %s' % (method, target, version)]
        if host:
            lines.append('Host: %s' % (self.public_host if host == 'default' else host))
        for name, value in (headers or []):
            lines.append('%s: %s' % (name, value))
        if body:
            lines.append('Content-Length: %d' % len(body))
        lines.append('Connection: close')
        data = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body
        return self.raw(data, scheme=scheme, sni=sni, method=method)

    # --- the provider (plain HTTP, by address, with the issuer's Host) -------------------------
    def provider(self, method, url, form=None):
        parts = urllib.parse.urlsplit(url)
        assert url.startswith(self.issuer + '/'), url
        body = urllib.parse.urlencode(form).encode() if form else b''
        headers = [('Content-Type', 'application/x-www-form-urlencoded')] if form else []
        target = parts.path + ('?' + parts.query if parts.query else '')
        lines = ['%s %s HTTP/1.1' % (method, target), 'Host: %s' % parts.netloc]
        lines += ['%s: %s' % h for h in headers]
        lines += ['Content-Length: %d' % len(body), 'Connection: close']
        sock = socket.create_connection((self.issuer_address, parts.port or 80), timeout=20)
        try:
            sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode() + body)
            return read_response(sock, method=method)
        finally:
            sock.close()

    def id_token(self, email, client_id=None, client_secret=None):
        """An ID token for email from the provider, for client_id (default: oauth2-proxy's)."""
        client_id = client_id or self.client_id
        redirect = self.public_url + '/oauth2/callback'
        query = urllib.parse.urlencode({'client_id': client_id, 'redirect_uri': redirect, 'response_type': 'code',
                                        'scope': 'openid profile email', 'state': 'lockdown'})
        r = self.provider('POST', self.issuer + '/oauth2/authorize?' + query, form={'sub': email})
        assert r.status == 302, r
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(r.header('location')).query)['code'][0]
        r = self.provider('POST', self.issuer + '/oauth2/token', form={
            'grant_type': 'authorization_code', 'code': code, 'redirect_uri': redirect,
            'client_id': client_id, 'client_secret': client_secret or self.client_secret})
        assert r.status == 200, r
        return json.loads(r.body)['id_token']

    def sign_in(self, email):
        """A browser's sign-in through nginx; returns the Cookie header value of the session."""
        r = self.request('GET', '/oauth2/start?rd=%2F')
        assert r.status == 302, r
        csrf = cookies_of(r)
        authorize = r.header('location')
        r = self.provider('POST', authorize, form={'sub': email})
        assert r.status == 302, r
        callback = urllib.parse.urlsplit(r.header('location'))
        assert callback.netloc == self.public_host and callback.path == '/oauth2/callback', r.header('location')
        r = self.request('GET', callback.path + '?' + callback.query, headers=[('Cookie', csrf)])
        assert r.status == 302, r
        session = cookies_of(r)
        assert session, r
        return session


def cookies_of(resp):
    """The Cookie header a browser would send back after this answer."""
    pairs = [c.split(';', 1)[0] for c in resp.header_all('set-cookie')]
    return '; '.join(p for p in pairs if p.partition('=')[2])


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def _b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + '=' * (-len(part) % 4)))


def jwt_parts(token):
    head, payload, sig = token.split('.')
    return _b64url_json(head), _b64url_json(payload), sig


@pytest.fixture(scope='session')
def target():
    t = Target()
    deadline = time.time() + 30
    while True:
        try:
            r = t.request('GET', '/oauth2/start')
            if r.status == 302:
                break
        except OSError:
            pass
        if time.time() > deadline:
            pytest.fail('nginx at %s does not answer /oauth2/start with 302' % t.address)
        time.sleep(1)
    return t


@pytest.fixture(scope='session')
def session_cookie(target):
    return target.sign_in(target.user)


@pytest.fixture(scope='session')
def bearer(target):
    return target.id_token(target.user)


@pytest.fixture(scope='session')
def mlflow_markers(target, session_cookie):
    """Byte strings that only MLflow's own answers carry, learnt from MLflow itself when signed in:
    its version (/version), its UI page, its JSON. None of them may appear without a session."""
    version = target.request('GET', '/version', headers=[('Cookie', session_cookie)])
    assert version.status == 200 and version.body.strip(), version
    ui = target.request('GET', '/', headers=[('Cookie', session_cookie)])
    assert ui.status == 200 and b'<title>MLflow</title>' in ui.body, ui
    return [version.body.strip(), b'<title>MLflow</title>', b'static-files/', b'"experiments"', b'"experiment_id"',
            b'"registered_models"', b'"model_versions"', b'mlflow_version']


class Capture:
    """tcpdump on the MLflow VM: every byte that reached oauth2-proxy (8081) and MLflow (8080).
    Their traffic from nginx is plain HTTP on the scenario network, so what MLflow receives can be
    read as it arrived, without changing anything in the path.

    tcpdump runs detached in the container (podman exec -d): nothing here waits on its output
    streams, and each step has a deadline, so a capture that does not start fails instead of hanging."""

    PCAP = '/tmp/lockdown.pcap'

    def __init__(self, vm):
        self.vm = vm

    def _exec(self, *argv, timeout=30):
        return subprocess.run(['podman', 'exec', self.vm, *argv], check=True, capture_output=True,
                              timeout=timeout)

    def _running(self):
        return subprocess.run(['podman', 'exec', self.vm, 'pgrep', '-x', 'tcpdump'],
                              capture_output=True, timeout=30, check=False).returncode == 0

    def __enter__(self):
        self._exec('rm', '-f', self.PCAP)
        subprocess.run(['podman', 'exec', '-d', self.vm, 'tcpdump', '-i', 'any', '-U', '-s', '0', '-w', self.PCAP,
                        'tcp dst port 8080 or tcp dst port 8081'], check=True, capture_output=True, timeout=30)
        # With -U the file header is written as soon as the capture runs.
        deadline = time.time() + 20
        while self._exec('sh', '-c', 'test -s %s && echo yes || echo no' % self.PCAP).stdout.strip() != b'yes':
            if time.time() > deadline:
                raise AssertionError('tcpdump on %s did not start within 20 s' % self.vm)
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        time.sleep(1)
        self._exec('pkill', '-INT', '-x', 'tcpdump')
        deadline = time.time() + 20
        while self._running():
            if time.time() > deadline:
                raise AssertionError('tcpdump on %s did not stop within 20 s' % self.vm)
            time.sleep(0.5)

    def payload(self, port):
        """The bytes sent to a port, as tcpdump prints them (-A)."""
        return self._exec('tcpdump', '-r', self.PCAP, '-A', '-nn', 'tcp dst port %d' % port).stdout


@pytest.fixture()
def capture(target):
    return Capture(target.vm)


def pytest_terminal_summary(terminalreporter):
    """One line with the matrix's figures, for the scenario's log."""
    rows = {}
    for outcome in ('passed', 'failed', 'error'):
        for rep in terminalreporter.stats.get(outcome, []):
            if '::test_matrix[' in rep.nodeid and rep.when in ('call', 'setup'):
                rows[rep.nodeid] = outcome if rows.get(rep.nodeid) in (None, 'passed') else rows[rep.nodeid]
    passed = sum(1 for o in rows.values() if o == 'passed')
    terminalreporter.write_line('LOCKDOWN matrix: %d requests, %d passed, %d failed' % (len(rows), passed, len(rows) - passed))
