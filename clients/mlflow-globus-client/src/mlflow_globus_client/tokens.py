"""The token file and where fresh ID tokens come from.

oauth2-proxy in front of MLflow accepts a bearer token only if it is a JWT its issuer signed for the
site's client (an OpenID Connect ID token): Globus access tokens are opaque, and a refresh-token grant
at Globus returns no new ID token. So a token is renewed by asking again:

- ``client_credentials``: a Globus confidential client (a service identity, with its own allowlist
  entry, e.g. ``<client id>@clients.auth.globus.org``) asks the issuer's token endpoint with its id and
  secret for ``openid email profile``, whenever the ID token is close to its end;
- ``command``: a command the site provides prints a fresh ID token (any other way to get one).

The token file (JSON, mode 0600) holds the source's settings and the current token; it is replaced
atomically, so several processes of one job may share it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
import typing as t

import requests

DEFAULT_TOKEN_FILE = os.path.join('~', '.config', 'mlflow-globus', 'token.json')
SOURCES = ('client_credentials', 'command')


class TokenError(Exception):
    """No usable token: says why and what to do."""


def token_file_path(path: str | None = None) -> str:
    return os.path.expanduser(path or os.environ.get('MLFLOW_GLOBUS_TOKEN_FILE') or DEFAULT_TOKEN_FILE)


def jwt_claims(token: str) -> dict[str, t.Any]:
    """The claims of a JWT, unverified (oauth2-proxy verifies; this only reads exp and iat)."""
    try:
        payload = token.split('.')[1]
        return json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise TokenError('the token is not a JWT (an ID token): oauth2-proxy accepts no other bearer token') from exc


def read_token_file(path: str) -> dict[str, t.Any]:
    try:
        with open(path, encoding='utf-8') as handle:
            data = json.load(handle)
    except FileNotFoundError as exc:
        raise TokenError('no token file at %s: run mlflow-globus-login once' % path) from exc
    except ValueError as exc:
        raise TokenError('%s is not JSON: run mlflow-globus-login again' % path) from exc
    if data.get('source') not in SOURCES:
        raise TokenError('%s: source must be one of %s, got %r' % (path, ', '.join(SOURCES), data.get('source')))
    return data


def write_token_file(path: str, data: dict[str, t.Any]) -> None:
    """Replace the file atomically, readable by its owner only."""
    directory = os.path.dirname(path) or '.'
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix='.token.', dir=directory)
    try:
        with os.fdopen(handle, 'w', encoding='utf-8') as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _discover_token_endpoint(issuer: str, timeout: float) -> str:
    reply = requests.get(issuer.rstrip('/') + '/.well-known/openid-configuration', timeout=timeout)
    reply.raise_for_status()
    return reply.json()['token_endpoint']


def fetch_id_token(settings: dict[str, t.Any], timeout: float = 30) -> str:
    """A new ID token from the source the settings name."""
    if settings['source'] == 'command':
        out = subprocess.run(settings['command'], capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise TokenError('the token command %s failed (rc %d): %s'
                             % (settings['command'][0], out.returncode, out.stderr.strip()[-500:]))
        token = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ''
    else:
        with open(os.path.expanduser(settings['client_secret_file']), encoding='utf-8') as handle:
            secret = handle.read().strip()
        endpoint = settings.get('token_url') or _discover_token_endpoint(settings['issuer'], timeout)
        reply = requests.post(endpoint, auth=(settings['client_id'], secret), timeout=timeout,
                              data={'grant_type': 'client_credentials',
                                    'scope': settings.get('scope') or 'openid email profile'})
        if reply.status_code != 200:
            raise TokenError('the issuer refused the client credentials (%d): %s' % (reply.status_code, reply.text[:300]))
        token = reply.json().get('id_token') or ''
        if not token:
            raise TokenError('the issuer answered without an ID token: ask for the openid scope')
    jwt_claims(token)  # a JWT, or a clear error
    return token


def needs_renewal(token: str | None, now: float, margin: float) -> bool:
    """True when there is no token, or less than ``margin`` seconds (at most half its life) are left."""
    if not token:
        return True
    claims = jwt_claims(token)
    expires, issued = float(claims.get('exp', 0)), float(claims.get('iat', claims.get('exp', 0)))
    return expires - now < min(margin, max((expires - issued) / 2, 0))


def current_token(path: str, margin: float, now: t.Callable[[], float] = time.time, force: bool = False) -> str:
    """The token file's ID token, renewed first when it is close to its end (or ``force``)."""
    data = read_token_file(path)
    token = data.get('id_token')
    if force or needs_renewal(token, now(), margin):
        try:
            token = fetch_id_token(data)
        except (TokenError, OSError, requests.RequestException) as exc:
            if token and float(jwt_claims(token).get('exp', 0)) > now():
                return token  # still valid: try again at the next request
            raise TokenError('the ID token in %s has expired and a new one could not be had: %s' % (path, exc)) from exc
        data['id_token'] = token
        data['expires_at'] = jwt_claims(token).get('exp')
        write_token_file(path, data)
    return token
