# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the external_nginx role runs for the site's Prometheus (external_nginx_metrics): its mtail program,
run by Debian's mtail (tools/debian-packages.sh installs it) over access log lines as nginx writes them;
and the certificate-expiry tool over real certificates made with openssl."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess


FILES = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles', 'external_nginx', 'files')
PROGRAM = os.path.join(FILES, 'mlflow_globus_nginx.mtail')
TLS_EXPIRY = os.path.join(FILES, 'mlflow-globus-tls-expiry')

# nginx's "combined" format, as the role's nginx.conf writes /var/log/nginx/access.log.
LINES = [
    ('GET /oauth2/callback?code=abc&state=xyz HTTP/2.0', 302, 'sign_in'),
    ('GET /oauth2/callback?code=test&state=test HTTP/1.1', 403, 'sign_in'),
    ('GET /oauth2/callback HTTP/1.1', 500, 'sign_in'),
    ('GET /oauth2/callbackx HTTP/1.1', 404, 'oauth2'),
    ('GET /oauth2/start?rd=%2F HTTP/1.1', 302, 'oauth2'),
    ('GET /oauth2/sign_out HTTP/1.1', 302, 'oauth2'),
    ('POST /api/2.0/mlflow/runs/log-batch HTTP/1.1', 502, 'app'),
    ('POST /api/2.0/mlflow/runs/log-batch HTTP/1.1', 502, 'app'),
    ('GET / HTTP/2.0', 302, 'app'),
    ('GET /metrics HTTP/1.1', 404, 'app'),
    ('GET /static-files/oauth2/x.js HTTP/1.1', 200, 'app'),
    # Not a request line (a TLS handshake on the plain port): still counted, as app.
    ('\\x16\\x03\\x01\\x02\\x00\\x01\\x00', 400, 'app'),
]


def _line(request, status):
    return ('203.0.113.7 - alice@example.org [06/Dec/2026:14:25:01 +0000] "%s" %d 1234 "https://mlflow.test/" '
            '"Mozilla/5.0 (X11; Linux x86_64) \\"quoted\\""' % (request, status))


def test_the_program_counts_requests_by_status_and_route(tmp_path):
    # Never skipped: make setup installs Debian's mtail (tools/debian-packages.sh).
    assert shutil.which('mtail'), 'Debian mtail is not installed: run tools/setup.sh (tools/debian-packages.sh)'
    progs = tmp_path / 'progs'
    progs.mkdir()
    shutil.copy(PROGRAM, progs)
    log = tmp_path / 'access.log'
    log.write_text(''.join(_line(request, status) + '\n' for request, status, _route in LINES))
    out = subprocess.run(['mtail', '--one_shot', '--one_shot_format=prometheus', '--emit_prog_label=false',
                          '--progs', str(progs), '--logs', str(log), '--logtostderr'],
                         capture_output=True, text=True, timeout=60, check=True)
    assert 'compile' not in out.stderr.lower() or 'error' not in out.stderr.lower(), out.stderr
    got = {(m[1], m[0]): float(m[2]) for m in re.findall(
        r'^mlflow_globus_nginx_requests_total\{route="([a-z0-9_]+)",status="(\d+)"\} (\S+)$', out.stdout, re.MULTILINE)}
    expected: dict[tuple[str, str], float] = {}
    for _request, status, route in LINES:
        expected[(str(status), route)] = expected.get((str(status), route), 0) + 1
    assert got == expected, out.stdout


def _certificate(tmp_path, name, days):
    cert = tmp_path / name
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', str(tmp_path / (name + '.key')),
                    '-out', str(cert), '-days', str(days), '-subj', '/CN=mlflow.test'],
                   check=True, capture_output=True)
    end = subprocess.run(['openssl', 'x509', '-noout', '-enddate', '-in', str(cert)], check=True, capture_output=True,
                         text=True).stdout.strip().split('=', 1)[1]
    stamp = datetime.datetime.strptime(end, '%b %d %H:%M:%S %Y %Z').replace(tzinfo=datetime.timezone.utc)
    return cert, int(stamp.timestamp())


def test_tls_expiry_writes_each_certificates_end_of_validity(tmp_path):
    first, first_end = _certificate(tmp_path, 'site.crt', 30)
    odd_dir = tmp_path / 'with "quote" and \\'
    odd_dir.mkdir()
    second, second_end = _certificate(odd_dir, 'other.crt', 400)
    out = tmp_path / 'mlflow_globus_tls.prom'
    subprocess.run([TLS_EXPIRY, str(out), str(first), str(second)], check=True)
    text = out.read_text()
    escaped = str(second).replace('\\', '\\\\').replace('"', '\\"')
    assert text.splitlines() == [
        '# HELP mlflow_globus_tls_certificate_not_after_timestamp_seconds When the certificate nginx serves stops '
        'being valid (notAfter), in Unix time.',
        '# TYPE mlflow_globus_tls_certificate_not_after_timestamp_seconds gauge',
        'mlflow_globus_tls_certificate_not_after_timestamp_seconds{path="%s"} %d' % (first, first_end),
        'mlflow_globus_tls_certificate_not_after_timestamp_seconds{path="%s"} %d' % (escaped, second_end),
    ]
    assert oct(out.stat().st_mode & 0o777) == '0o644'
    assert sorted(os.listdir(tmp_path)) == sorted(['site.crt', 'site.crt.key', odd_dir.name, out.name])


def test_tls_expiry_keeps_the_old_file_when_a_certificate_cannot_be_read(tmp_path):
    out = tmp_path / 'mlflow_globus_tls.prom'
    out.write_text('old\n')
    broken = tmp_path / 'broken.crt'
    broken.write_text('not a certificate\n')
    result = subprocess.run([TLS_EXPIRY, str(out), str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert out.read_text() == 'old\n'
    assert sorted(os.listdir(tmp_path)) == ['broken.crt', 'mlflow_globus_tls.prom']


def test_tls_expiry_wants_an_output_and_a_certificate(tmp_path):
    result = subprocess.run([TLS_EXPIRY, str(tmp_path / 'x.prom')], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and 'usage' in result.stderr
