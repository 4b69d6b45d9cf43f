# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Who is asking, for MLflow's auth app (``mlflow server --app-name basic-auth``).

The public nginx asks oauth2-proxy whether a request is signed in (``auth_request``) and passes the
signed-in email to MLflow in one header, which it always sets itself: a client's own header of that
name is replaced. Only nginx reaches MLflow (the lockdown: systemd's IPAddressAllow= and the nftables
table), so the header is the sign-in. This module turns it into MLflow's user:

- ``authenticate`` is the ini file's ``authorization_function``. No header (or not an email): 401.
  The user is created in the auth database on first sight (a random password nobody knows: no one
  signs in to MLflow with a password here), and is an admin exactly when the inventory says so.
- What a user creates through the REST API carries the signed-in email, whatever the client sent, rewritten
  before MLflow's handler reads it: a run's ``user_id`` and ``mlflow.user`` tag; the ``mlflow.user`` tag of a
  registered model, a model version and a trace (MLflow has no user field for those).
- ``GET /version`` alone is answered without a sign-in, as MLflow without auth answers it: the health
  checks on the VM read the running release there. It runs as a user that no header can name.

Settings, from the unit's environment: MLFLOW_GLOBUS_IDENTITY_HEADER (the header's name),
MLFLOW_GLOBUS_ADMINS (comma-separated emails).
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import typing as t

ADMINS_ENV = 'MLFLOW_GLOBUS_ADMINS'
HEADER_ENV = 'MLFLOW_GLOBUS_IDENTITY_HEADER'
DEFAULT_HEADER = 'X-Forwarded-Email'
# The user that GET /version runs as: not an email, so no header can claim it.
VERSION_READER = 'mlflow-globus-version-check'
_EMAIL = re.compile(r'^[^@\s,]+@[^@\s,]+$')
_API = r'^(?:/[^/]+)*/(?:api|ajax-api)/'
_RUN_CREATE = re.compile(_API + r'2\.0/mlflow/runs/create$')
_TAGGED_CREATE = re.compile(_API + r'2\.0/mlflow/(?:registered-models|model-versions)/create$')
_TRACE_START = re.compile(_API + r'3\.0/mlflow/traces$')
_USER_TAG = 'mlflow.user'

# The users this process has made sure of, with the admin flag it set: one look at the auth database
# per user and process (MLflow calls this function several times for each request).
_seen: dict[str, bool] = {}
_seen_lock = threading.Lock()


def identity(headers: t.Mapping[str, str], header: str | None = None) -> str | None:
    """The signed-in email from nginx's header, lower-cased; None when absent or not one email."""
    value = (headers.get(header or os.environ.get(HEADER_ENV) or DEFAULT_HEADER) or '').strip().lower()
    return value if _EMAIL.match(value) else None


def admins(value: str | None = None) -> frozenset[str]:
    """The admins' emails from MLFLOW_GLOBUS_ADMINS (comma-separated), lower-cased."""
    text = os.environ.get(ADMINS_ENV, '') if value is None else value
    return frozenset(item.strip().lower() for item in text.split(',') if item.strip())


def ensure_user(store: t.Any, username: str, is_admin: bool) -> None:
    """Create the user on first sight, and hold its admin flag to the inventory's list."""
    with _seen_lock:
        if _seen.get(username) is is_admin:
            return
    if not store.has_user(username):
        try:
            store.create_user(username, secrets.token_urlsafe(32), is_admin=is_admin)
        except Exception:  # another worker created it between the two calls
            if not store.has_user(username):
                raise
    if bool(store.get_user(username).is_admin) is not is_admin:
        store.update_user(username, is_admin=is_admin)
    with _seen_lock:
        _seen[username] = is_admin


def _with_user_tag(tags: t.Any, username: str) -> list[t.Any]:
    kept = [tag for tag in (tags if isinstance(tags, list) else []) if not (isinstance(tag, dict) and tag.get('key') == _USER_TAG)]
    return kept + [{'key': _USER_TAG, 'value': username}]


def claim_creation(request: t.Any, username: str) -> None:
    """Make what a request creates the signed-in user's. MLflow's handlers read the body with
    ``get_json(force=True, silent=True)``, which werkzeug caches: the same dict, changed here."""
    if request.method != 'POST':
        return
    path = request.path
    if not (_RUN_CREATE.match(path) or _TAGGED_CREATE.match(path) or _TRACE_START.match(path)):
        return
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return
    if _TRACE_START.match(path):
        info = (body.get('trace') or {}).get('trace_info') if isinstance(body.get('trace'), dict) else None
        if isinstance(info, dict):
            tags = info.get('tags') if isinstance(info.get('tags'), dict) else {}
            info['tags'] = dict(tags, **{_USER_TAG: username})
        return
    if _RUN_CREATE.match(path):
        body['user_id'] = username
    body['tags'] = _with_user_tag(body.get('tags'), username)


def _unauthenticated() -> t.Any:
    from flask import jsonify
    response = jsonify(error_code='UNAUTHENTICATED',
                       message='No signed-in user: MLflow is reached through the public nginx only')
    response.status_code = 401
    return response


def _auth_store() -> t.Any:
    from mlflow.server.auth import store
    return store


def authenticate() -> t.Any:
    """MLflow's authorization_function: the signed-in user as a werkzeug Authorization, or a 401."""
    from flask import request
    from werkzeug.datastructures import Authorization

    username = identity(request.headers)
    if username is None:
        if request.method in ('GET', 'HEAD') and request.path == '/version':
            ensure_user(_auth_store(), VERSION_READER, False)
            return Authorization('basic', {'username': VERSION_READER})
        return _unauthenticated()
    ensure_user(_auth_store(), username, username in admins())
    claim_creation(request, username)
    return Authorization('basic', {'username': username})
