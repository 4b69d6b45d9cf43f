#!/usr/bin/env python3
"""A token command for mlflow-globus-login's `command` source, against the stand-in provider: a fresh
ID token for SUB that ends LIFETIME seconds after it is issued. (oidc-provider-mock copies a user's
extra claims into the ID token, `exp` among them: this sets it before each sign-in, the way a real
provider's short token lifetime would.) Each call appends a line to COUNT_FILE.

  stand_in_id_token.py ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI SUB LIFETIME COUNT_FILE
"""
import sys
import time
import urllib.parse

import requests


def main(issuer, client_id, client_secret, redirect, sub, lifetime, count_file):
    session = requests.Session()
    session.trust_env = False
    reply = session.put('%s/users/%s' % (issuer, sub), json={'email': sub, 'exp': int(time.time()) + int(lifetime)},
                        timeout=10)
    reply.raise_for_status()
    reply = session.post(issuer + '/oauth2/authorize', allow_redirects=False, timeout=10, params={
        'client_id': client_id, 'redirect_uri': redirect, 'response_type': 'code',
        'scope': 'openid profile email', 'state': 'batch'}, data={'sub': sub})
    code = urllib.parse.parse_qs(urllib.parse.urlparse(reply.headers['Location']).query)['code'][0]
    reply = session.post(issuer + '/oauth2/token', timeout=10, data={
        'grant_type': 'authorization_code', 'code': code, 'redirect_uri': redirect,
        'client_id': client_id, 'client_secret': client_secret})
    reply.raise_for_status()
    with open(count_file, 'a', encoding='utf-8') as handle:
        handle.write('%d\n' % time.time())
    print(reply.json()['id_token'])


if __name__ == '__main__':
    main(*sys.argv[1:])
