"""Credentials for load.py from the stand-in OpenID Connect provider (oidc-provider-mock), standard library only.

    signin.py session --url https://127.0.0.1 --host localhost --email alice@example.org > cred.json
        a browser's sign-in through nginx and oauth2-proxy (/oauth2/start, the provider's form,
        /oauth2/callback): prints {"Cookie": "<oauth2-proxy's session cookie(s)>"}
    signin.py token --issuer http://10.89.77.10:9400 --client-id svc-training-client --email svc-training@example.org
        an ID token from the provider (authorization code; the mock accepts any client and secret,
        where Globus would use the client-credentials grant): prints {"Authorization": "Bearer <id token>"}

Meant to run where load.py runs (the nginx container): it reaches nginx on loopback and the
provider on its own address. Both flows are the ones tests/e2e/conftest.py uses (sign_in, id_token).
"""
import argparse
import http.client
import json
import ssl
import sys
import urllib.parse

from load import Connection  # beside this file: pool.py copies both


def request(url, method='GET', body=None, headers=None, address=None, server_name=None):
    """One request, redirects not followed; returns the response (read). An https URL may connect to
    `address` with TLS name `server_name` (nginx answers only its public name, which may not resolve here)."""
    parts = urllib.parse.urlsplit(url)
    headers = dict(headers or {})
    if parts.scheme == 'https':
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the demo's self-signed certificate
        conn = Connection(address or parts.hostname, parts.port or 443, server_name or parts.hostname, context, 30)
        headers.setdefault('Host', parts.netloc)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    data = None
    if body is not None:
        data = urllib.parse.urlencode(body).encode()
        headers['Content-Type'] = 'application/x-www-form-urlencoded'
    conn.request(method, (parts.path or '/') + ('?' + parts.query if parts.query else ''), body=data, headers=headers)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def cookies_of(response):
    """name=value of each Set-Cookie (attributes dropped)."""
    return dict(c.split(';', 1)[0].split('=', 1) for c in response.headers.get_all('Set-Cookie') or [])


def expect(response, status, what):
    if response.status != status:
        sys.exit('%s: expected %d, got %d: %s' % (what, status, response.status, response.body[:300]))


def session(args):
    public = 'https://%s' % args.host
    connect = urllib.parse.urlsplit(args.url).hostname
    go = dict(address=connect, server_name=args.host)
    start = request(public + '/oauth2/start?rd=%2F', **go)
    expect(start, 302, '/oauth2/start')
    jar = cookies_of(start)  # the CSRF cookie that the callback checks against `state`
    # The provider's sign-in form: one field, the subject; its email claim defaults to it.
    authorize = request(start.headers['Location'], 'POST', {'sub': args.email})
    expect(authorize, 302, 'the provider\'s authorize form')
    callback = urllib.parse.urlsplit(authorize.headers['Location'])
    done = request(public + callback.path + '?' + callback.query,
                   headers={'Cookie': '; '.join('%s=%s' % kv for kv in jar.items())}, **go)
    expect(done, 302, '/oauth2/callback')
    jar = {name: value for name, value in cookies_of(done).items() if value}  # the CSRF cookie is cleared
    return {'Cookie': '; '.join('%s=%s' % kv for kv in sorted(jar.items()))}


def token(args):
    authorize = request(args.issuer + '/oauth2/authorize?' + urllib.parse.urlencode({
        'client_id': args.client_id, 'redirect_uri': args.redirect_uri, 'response_type': 'code',
        'scope': 'openid profile email', 'state': 'load'}), 'POST', {'sub': args.email})
    expect(authorize, 302, 'authorize')
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize.headers['Location']).query)['code'][0]
    issued = request(args.issuer + '/oauth2/token', 'POST', {
        'grant_type': 'authorization_code', 'code': code, 'redirect_uri': args.redirect_uri,
        'client_id': args.client_id, 'client_secret': args.client_secret})
    expect(issued, 200, 'token')
    return {'Authorization': 'Bearer ' + json.loads(issued.body)['id_token']}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='kind', required=True)
    s = sub.add_parser('session', help='a browser session cookie, through nginx')
    s.add_argument('--url', default='https://127.0.0.1', help='where nginx answers (default https://127.0.0.1)')
    s.add_argument('--host', default='localhost', help='the public host name (TLS name and Host)')
    s.add_argument('--email', required=True)
    t = sub.add_parser('token', help='an ID token (a bearer), from the provider')
    t.add_argument('--issuer', required=True)
    t.add_argument('--client-id', required=True, help="the site's client id, or a service client it lists")
    t.add_argument('--client-secret', default='load-client-secret', help='any value: the stand-in checks none')
    t.add_argument('--redirect-uri', default='http://localhost/callback')
    t.add_argument('--email', required=True)
    args = parser.parse_args()
    print(json.dumps(session(args) if args.kind == 'session' else token(args)))


if __name__ == '__main__':
    main()
