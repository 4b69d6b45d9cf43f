# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/awx_configure.yml in check mode against a stand-in for AWX's API.

No AWX can run here (no AWX server package on PyPI, npm or Debian; AWX's own images come from a
registry this machine cannot reach). The stand-in answers the awx.awx modules' lookups as an AWX on
which every object already exists would (one object of the name asked for) and records every request.
That proves what --syntax-check and ansible-lint do not: every awx.awx module accepts the arguments the
playbook gives it (an unknown or ill-typed option fails the module before any request), every template
of awx/job_templates.yml and its survey and workflow nodes are rendered, every object is looked up by
its name, and check mode sends no write. Whether AWX itself accepts the values is not proven here.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
with open(os.path.join(REPO, 'awx', 'job_templates.yml'), encoding='utf-8') as _handle:
    DATA = yaml.safe_load(_handle)


class _StandIn(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, body, status=200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('X-API-Product-Name', 'AWX')
        self.send_header('X-API-Product-Version', '24.6.1')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        self.requests.append(('GET', url.path, query))
        parts = [p for p in url.path.split('/') if p]
        kind = parts[2] if len(parts) > 2 else ''
        if len(parts) > 3:  # one object, or a list related to one
            self._answer({'count': 0, 'next': None, 'results': [], 'id': 1, 'url': url.path, 'related': {}})
            return
        name = query.get('name') or query.get('or__name') or query.get('identifier') or 'x'
        item = {'id': 1, 'name': name, 'type': kind.rstrip('s'), 'url': '/api/v2/%s/1/' % kind,
                'related': {'survey_spec': '/api/v2/%s/1/survey_spec/' % kind,
                            'credentials': '/api/v2/%s/1/credentials/' % kind,
                            'workflow_nodes': '/api/v2/%s/1/workflow_nodes/' % kind},
                'summary_fields': {}, 'status': 'successful', 'kind': 'ssh', 'managed': True}
        self._answer({'count': 1, 'next': None, 'previous': None, 'results': [item]})

    def _write(self):
        self.requests.append((self.command, self.path, None))
        self._answer({'detail': 'check mode must not write'}, status=405)

    do_POST = do_PATCH = do_PUT = do_DELETE = _write  # noqa: N815


@pytest.fixture()
def stand_in():
    _StandIn.requests = []
    server = ThreadingHTTPServer(('127.0.0.1', 0), _StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % server.server_address[1], _StandIn.requests
    server.shutdown()


def test_check_mode_renders_every_object_and_writes_nothing(stand_in, tmp_path):
    url, requests = stand_in
    settings = {'awx_execution_environment_image': 'registry.example.org/alcf/mlflow-globus-ee:0.1.0',
                'awx_machine_credential_inputs': {'username': 'ops', 'ssh_key_data': 'not-a-key'},
                'awx_vault_password': 'not-the-password'}
    (tmp_path / 'settings.yml').write_text(yaml.safe_dump(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith(('CONTROLLER_', 'TOWER_'))}
    env.update(CONTROLLER_HOST=url, CONTROLLER_OAUTH_TOKEN='stand-in-token', CONTROLLER_VERIFY_SSL='false',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_NOCOLOR='1', HOME=str(tmp_path))
    out = subprocess.run(['ansible-playbook', '--check', '--diff', os.path.join(REPO, 'playbooks', 'awx_configure.yml'),
                          '-e', '@%s' % (tmp_path / 'settings.yml')],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-3000:]
    result = json.loads(out.stdout)
    tasks = {t['task']['name']: t['hosts']['localhost'] for t in result['plays'][0]['tasks']}
    for name, host in tasks.items():
        assert not host.get('failed'), (name, host)
    assert not [r for r in requests if r[0] != 'GET'], 'check mode wrote: %s' % [r for r in requests if r[0] != 'GET']
    # Every template and workflow was rendered and looked up by its name.
    looked_up = {(path.split('/')[3], query.get('name')) for method, path, query in requests if query}
    for template in DATA['awx_job_templates']:
        assert ('job_templates', template['name']) in looked_up, template['name']
    for workflow in DATA['awx_workflow_job_templates']:
        assert ('workflow_job_templates', workflow['name']) in looked_up, workflow['name']
    rendered = tasks['Job templates (awx/job_templates.yml)']['results']
    assert [r['item']['name'] for r in rendered] == [t['name'] for t in DATA['awx_job_templates']]
    # The machine and vault credentials' secrets stay out of the output.
    assert 'not-the-password' not in out.stdout and 'not-a-key' not in out.stdout
