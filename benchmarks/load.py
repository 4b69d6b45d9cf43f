"""A load generator for the MLflow tracking API: N threads, each on one keep-alive connection.

Standard library only (Debian's python3): it is meant to be copied into a container and run there,
e.g. in the nginx container against the public name, or against MLflow's port directly:

    load.py --url https://127.0.0.1 --host localhost --insecure --headers-file cred.json --op read
    load.py --url http://10.89.77.30:8080 --host localhost --header 'X-Forwarded-Email: alice@example.org'

Operations: `read` (GET experiments/get of --experiment-id, a cheap call), `log-batch` (POST
runs/log-batch of --metrics metrics at a new step each time, into a run of an experiment created at
start) and `get` (GET --path, e.g. oauth2-proxy's /oauth2/auth on its own port). Runs for --seconds or until
--stop-file exists. Prints one JSON object: requests, failures
(any non-2xx or connection error, after --retries as the MLflow client makes them, none by default; the first 20 with their time offset, status and a body
excerpt), throughput, latency percentiles and per-second counts. Statistics cover the time after
--warmup only; per-second counts cover the whole run (offsets from the start of the load).
"""
import argparse
import http.client
import itertools
import json
import math
import os
import ssl
import sys
import threading
import time
import urllib.parse

FIRST_FAILURES = 20
# What --retries retries, as the MLflow client does (mlflow/utils/request_utils.py: urllib3's Retry with
# allowed_methods=None, so every method, on connection and read errors and on _TRANSIENT_FAILURE_RESPONSE_CODES).
RETRIED = (None, 408, 429, 500, 502, 503, 504)


class Connection(http.client.HTTPSConnection):
    """HTTPS to an address with a TLS server name (SNI) of our choice: nginx refuses other names."""

    def __init__(self, address, port, server_name, context, timeout):
        super().__init__(address, port, context=context, timeout=timeout)
        self.server_name = server_name

    def connect(self):
        http.client.HTTPConnection.connect(self)  # TCP (with TCP_NODELAY), then TLS with our name
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


class Target:
    """Where requests go and what every request carries (Host, credentials)."""

    def __init__(self, args):
        url = urllib.parse.urlsplit(args.url)
        self.https = url.scheme == 'https'
        self.address = url.hostname
        self.port = url.port or (443 if self.https else 80)
        self.host = args.host or url.hostname
        self.timeout = args.timeout
        self.headers = {'Host': self.host, 'Accept': 'application/json'}
        if args.headers_file:  # a file, so that a session cookie or token stays out of `ps`
            with open(args.headers_file, encoding='utf-8') as handle:
                self.headers.update(json.load(handle))
        for line in args.header:
            name, value = (line.split(':', 1) + [''])[:2]
            self.headers[name.strip()] = value.strip()
        self.context = None
        if self.https:
            self.context = ssl.create_default_context()
            if args.insecure:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def connect(self):
        if self.https:
            return Connection(self.address, self.port, self.host, self.context, self.timeout)
        return http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)

    def call(self, conn, method, path, body=None):
        """One request on `conn`; returns (status, body bytes). Raises on a connection error."""
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers['Content-Type'] = 'application/json'
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()  # read it all: the connection is reused


def setup(target, args):
    """What an operation needs before the load: for log-batch, an experiment of our own and a run."""
    if args.op not in ('log-batch', 'mixed'):
        return {}
    conn = target.connect()

    def post(path, body):
        status, data = target.call(conn, 'POST', path, body)
        if status // 100 != 2:
            sys.exit('setup: POST %s answered %d: %s' % (path, status, data[:300].decode(errors='replace')))
        return json.loads(data)

    # An experiment of our own: the signed-in user may not write into experiment 0 (READ by default).
    name = 'load-%d-%d' % (time.time(), os.getpid())
    experiment = post('/api/2.0/mlflow/experiments/create', {'name': name})['experiment_id']
    run = post('/api/2.0/mlflow/runs/create', {'experiment_id': experiment, 'start_time': int(time.time() * 1000)})
    conn.close()
    return {'experiment_id': experiment, 'run_id': run['run']['info']['run_id']}


class Recorder:
    """Results of all threads: latencies after the warm-up, per-second counts, the first failures."""

    def __init__(self, start, warmup):
        self.start, self.warmup = start, warmup
        self.lock = threading.Lock()
        self.latencies = []      # seconds, successful requests after the warm-up
        self.requests = self.failed = 0
        self.per_second_ok, self.per_second_failed = [], []
        self.first_failures = []
        self.retried, self.first_retried = 0, []  # requests that needed a client retry (--retries)

    def add_retry(self, began, status, detail):
        with self.lock:
            self.retried += 1
            if len(self.first_retried) < FIRST_FAILURES:
                self.first_retried.append({'offset_s': round(began - self.start, 3), 'status': status,
                                           'detail': detail[:200]})

    def add(self, began, ended, status, detail):
        offset = ended - self.start
        second = int(offset)
        ok = status is not None and status // 100 == 2
        with self.lock:
            for counts in (self.per_second_ok, self.per_second_failed):
                counts.extend([0] * (second + 1 - len(counts)))
            (self.per_second_ok if ok else self.per_second_failed)[second] += 1
            if offset < self.warmup:
                return
            self.requests += 1
            if ok:
                self.latencies.append(ended - began)
                return
            self.failed += 1
            if len(self.first_failures) < FIRST_FAILURES:
                self.first_failures.append({'offset_s': round(offset, 3), 'status': status, 'detail': detail[:200]})


def worker(target, args, context, steps, recorder, stop, op):
    conn = target.connect()
    if op == 'read':
        method, path, body = 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=%s' % args.experiment_id, None
    elif op == 'get':
        method, path, body = 'GET', args.path, None
    else:
        method, path = 'POST', '/api/2.0/mlflow/runs/log-batch'
    while not stop.is_set():
        if op == 'log-batch':
            step = next(steps)  # a new step each time: identical metric rows would collide in the store
            now = int(time.time() * 1000)
            body = {'run_id': context['run_id'],
                    'metrics': [{'key': 'm%d' % i, 'value': step * 0.5 + i, 'timestamp': now, 'step': step}
                                for i in range(args.metrics)]}
        began = time.monotonic()
        for attempt in range(args.retries + 1):
            if attempt:
                recorder.add_retry(began, status, detail)
                stop.wait(args.error_pause)
            try:
                status, data = target.call(conn, method, path, body)
                detail = data.decode(errors='replace')
            except (OSError, http.client.HTTPException) as exc:
                status, detail = None, '%s: %s' % (type(exc).__name__, exc)
                conn.close()  # http.client opens a new connection on the next request
            if status not in RETRIED:
                break
        recorder.add(began, time.monotonic(), status, detail)
        if status is None or status // 100 != 2:
            # No retry: the next request is a new one. The pause bounds how many failures an outage
            # costs per second (a refused connection fails in microseconds).
            stop.wait(args.error_pause)
    conn.close()


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list, in milliseconds."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return round(sorted_values[rank - 1] * 1000, 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--url', required=True, help='scheme, address and port, e.g. https://127.0.0.1:443')
    parser.add_argument('--host', help='Host header and TLS server name (default: the URL\'s host)')
    parser.add_argument('--insecure', action='store_true', help='do not verify the server certificate')
    parser.add_argument('--header', action='append', default=[], help="'Name: value', repeatable")
    parser.add_argument('--headers-file', help='a JSON object of headers (a session cookie, a bearer token)')
    parser.add_argument('--op', choices=('read', 'log-batch', 'get', 'mixed'), default='read',
                        help='mixed: half the threads read, half log-batch (a steady stream of reads and writes)')
    parser.add_argument('--path', default='/ping', help='what `get` asks for, e.g. /oauth2/auth of oauth2-proxy')
    parser.add_argument('--experiment-id', default='0', help='what `read` reads (default 0)')
    parser.add_argument('--metrics', type=int, default=10, help='metrics per log-batch request (default 10)')
    parser.add_argument('--threads', type=int, default=4)
    parser.add_argument('--seconds', type=float, default=20, help='how long the load runs (default 20)')
    parser.add_argument('--warmup', type=float, default=0, help='seconds at the start left out of the statistics')
    parser.add_argument('--stop-file', help='stop as soon as this file exists (checked every 0.1 s)')
    parser.add_argument('--timeout', type=float, default=30, help='socket timeout in seconds (default 30)')
    parser.add_argument('--retries', type=int, default=0,
                        help='retry a request that got no answer or a 408/429/500/502/503/504, up to this many times, as the '
                             'MLflow client does (default 0: every such answer is a failure)')
    parser.add_argument('--error-pause', type=float, default=0.1, help='pause after a failure (default 0.1 s)')
    args = parser.parse_args()

    target = Target(args)
    context = setup(target, args)
    stop, steps = threading.Event(), itertools.count()
    start = time.monotonic()
    recorder = Recorder(start, args.warmup)
    ops = [('read', 'log-batch')[i % 2] if args.op == 'mixed' else args.op for i in range(args.threads)]
    threads = [threading.Thread(target=worker, args=(target, args, context, steps, recorder, stop, op), daemon=True)
               for op in ops]
    for thread in threads:
        thread.start()
    deadline = start + args.seconds
    while time.monotonic() < deadline and not (args.stop_file and os.path.exists(args.stop_file)):
        time.sleep(min(0.1, max(0, deadline - time.monotonic())))
    stop.set()
    ended = time.monotonic()  # requests in flight finish after this; they still count
    for thread in threads:
        thread.join(args.timeout + 5)

    window = max(ended - start - args.warmup, 1e-9)
    latencies = sorted(recorder.latencies)
    print(json.dumps({
        'op': args.op, 'url': args.url, 'host': target.host, 'threads': args.threads,
        'seconds': round(window, 3), 'warmup_s': args.warmup, **context,
        'requests': recorder.requests, 'ok': len(latencies),
        'failures': {'count': recorder.failed, 'first': recorder.first_failures},
        'retried': {'count': recorder.retried, 'first': recorder.first_retried},
        'throughput_rps': round(len(latencies) / window, 2),
        'latency_ms': {'p50': percentile(latencies, 0.50), 'p99': percentile(latencies, 0.99),
                       'mean': round(sum(latencies) / len(latencies) * 1000, 3) if latencies else None,
                       'max': percentile(latencies, 1.0)},
        'per_second': {'ok': recorder.per_second_ok, 'failed': recorder.per_second_failed},
        # This process's own CPU (TLS, HTTP, JSON): the client's share of the machine when it is shared.
        'client_cpu_s': round(os.times().user + os.times().system, 3),
    }))


if __name__ == '__main__':
    main()
