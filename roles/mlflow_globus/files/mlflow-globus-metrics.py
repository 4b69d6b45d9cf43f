# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""MLflow's Prometheus metrics for the site's Prometheus, without opening MLflow's own port to it.

``mlflow server --expose-prometheus DIR`` has each worker write prometheus_client's multiprocess
files into DIR and serves them on MLflow's own ``/metrics``. That port is for the nginx hosts only
(whoever reaches it may claim any identity in nginx's header), so this sidecar, run by the
mlflow_globus role as ``mlflow-globus-metrics.service`` with the role's virtualenv, serves the same
files on a port of its own that an nftables table keeps for the Prometheus servers:

- every metric of the files in DIR, merged over MLflow's worker processes (MultiProcessCollector);
- ``mlflow_globus_mlflow_up``: 1 when MLflow's ``/health`` answers 200 at scrape time, else 0, so
  that an alert tells a stopped or stuck MLflow from a stopped sidecar (Prometheus's ``up``).

Only ``GET /metrics`` (and HEAD) is answered; everything else gets 404. The directory may be absent
(MLflow stopped: systemd removed its runtime directory): then only the health gauge is served.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

UP_METRIC = 'mlflow_globus_mlflow_up'


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not a healthy answer: do not follow it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401 - urllib's signature
        return None


def mlflow_up(health_url: str, timeout: float = 3.0) -> int:
    """1 when ``health_url`` answers 200, else 0 (refused, timed out, any other code)."""
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(health_url, method='GET'), timeout=timeout) as answer:
            return 1 if answer.status == 200 else 0
    except (urllib.error.URLError, OSError, ValueError):
        return 0


class MLflowCollector:
    """MLflow's multiprocess metrics from ``directory`` (if any) and the health gauge, per scrape."""

    def __init__(self, directory: str, health_url: str, timeout: float = 3.0) -> None:
        self.directory = directory
        self.health_url = health_url
        self.timeout = timeout

    def collect(self):
        files = sorted(glob.glob(os.path.join(glob.escape(self.directory), '*.db')))
        if files:
            yield from MultiProcessCollector.merge(files, accumulate=True)
        gauge = GaugeMetricFamily(UP_METRIC, "1 when MLflow's /health answers 200 at scrape time, else 0.")
        gauge.add_metric([], mlflow_up(self.health_url, self.timeout))
        yield gauge


def registry_for(directory: str, health_url: str, timeout: float = 3.0) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MLflowCollector(directory, health_url, timeout))
    return registry


def handler_for(registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = 'mlflow-globus-metrics'
        sys_version = ''

        def _answer(self, body: bool) -> None:
            if self.path.split('?', 1)[0] != '/metrics':
                self.send_error(404)
                return
            try:
                output = generate_latest(registry)
            except Exception as exc:  # a torn file must not kill the server: say so, scrape fails
                self.send_error(500, explain=str(exc))
                return
            self.send_response(200)
            self.send_header('Content-Type', CONTENT_TYPE_LATEST)
            self.send_header('Content-Length', str(len(output)))
            self.end_headers()
            if body:
                self.wfile.write(output)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._answer(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(body=False)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
            pass  # one line per scrape would flood the journal

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--listen', required=True, help='address to serve on')
    parser.add_argument('--port', required=True, type=int, help='port to serve on')
    parser.add_argument('--dir', required=True, help="MLflow's --expose-prometheus directory")
    parser.add_argument('--health-url', required=True, help="MLflow's /health URL")
    parser.add_argument('--timeout', type=float, default=3.0, help='seconds to wait for /health')
    args = parser.parse_args(argv)
    server_class = ThreadingHTTPServer
    if ':' in args.listen:
        import socket

        class Server6(ThreadingHTTPServer):
            address_family = socket.AF_INET6
        server_class = Server6
    server = server_class((args.listen.strip('[]'), args.port),
                          handler_for(registry_for(args.dir, args.health_url, args.timeout)))
    print('serving MLflow metrics from %s and %s on %s:%d/metrics'
          % (args.dir, args.health_url, args.listen, server.server_address[1]), file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
