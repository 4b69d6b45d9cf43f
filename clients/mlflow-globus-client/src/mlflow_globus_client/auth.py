"""MLflow's request auth provider ``globus``: a fresh bearer ID token on every request.

MLflow asks the provider named by ``MLFLOW_TRACKING_AUTH`` for a requests auth object before each
request (``mlflow.utils.rest_utils``); this one reads the token file, renews the token when it is close
to its end, and sends it as ``Authorization: Bearer``. A 401 (a token that ran out in between) renews
it and sends the request once more.
"""

from __future__ import annotations

import os
import threading

import requests

from mlflow_globus_client import tokens

NAME = 'globus'
# Renew when fewer seconds than this are left (at most half the token's life).
DEFAULT_MARGIN = 300.0


class BearerIdToken(requests.auth.AuthBase):
    """Sets the bearer token; on a 401, renews it and resends once."""

    def __init__(self, path: str, margin: float, lock: threading.Lock):
        self.path, self.margin, self.lock = path, margin, lock

    def token(self, force: bool = False) -> str:
        with self.lock:
            return tokens.current_token(self.path, self.margin, force=force)

    def __call__(self, request):
        request.headers['Authorization'] = 'Bearer ' + self.token()
        request.register_hook('response', self._retry_on_401)
        return request

    def _retry_on_401(self, response, **kwargs):
        if response.status_code != 401 or getattr(response.request, '_globus_retried', False):
            return response
        response.content  # noqa: B018  (read it, so the connection can be reused)
        retry = response.request.copy()
        retry._globus_retried = True  # pylint: disable=protected-access
        retry.headers['Authorization'] = 'Bearer ' + self.token(force=True)
        again = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return again


class GlobusRequestAuthProvider:
    """Registered under the entry point group ``mlflow.request_auth_provider`` as ``globus``."""

    def __init__(self):
        self._lock = threading.Lock()

    def get_name(self) -> str:
        return NAME

    def get_auth(self) -> BearerIdToken:
        margin = float(os.environ.get('MLFLOW_GLOBUS_RENEW_MARGIN') or DEFAULT_MARGIN)
        return BearerIdToken(tokens.token_file_path(), margin, self._lock)
