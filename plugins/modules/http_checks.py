#!/usr/bin/python
# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: http_checks
short_description: Probe a list of HTTP endpoints from the host in one task
version_added: 0.4.0
author:
  - ALCF operations (@alcf)
description:
  - Sends one request to each check's URL from the managed host, in order, without following redirects,
    and returns what each got (status, C(Location), the body when asked, the response headers), in the
    shape of an M(ansible.builtin.uri) loop's results, so that P(alcf.mlflow_globus.health_rows#filter)
    judges them.
  - One module run for all the checks of a service instead of one per check, which on a real host is one
    connection round trip instead of several. The requests go through Ansible's own HTTP client, as those of
    M(ansible.builtin.uri) do.
  - A check never fails the task; an endpoint that does not answer gets status V(-1) and the error in C(msg).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only reads; it probes in check mode too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  checks:
    description:
      - The checks, from P(alcf.mlflow_globus.health_checks#filter). Each needs C(url) and C(expect) (the codes
        it accepts); C(host) sets the Host header and C(content) asks for the body.
    type: list
    elements: dict
    required: true
  wait:
    description:
      - Retry a check until it gets one of its expected codes (a service that has just started). Otherwise a
        check is only retried while nothing answers.
    type: bool
    default: false
  retries:
    description: Retries per check.
    type: int
    default: 5
  delay:
    description: Seconds between the tries of a check.
    type: int
    default: 2
  timeout:
    description: Seconds a request may take.
    type: int
    default: 10
  validate_certs:
    description:
      - Check the TLS certificate. Off by default, since the checks reach nginx by address and its certificate
        is for the public name.
    type: bool
    default: false
seealso:
  - module: ansible.builtin.uri
  - plugin: alcf.mlflow_globus.health_checks
    plugin_type: filter
  - plugin: alcf.mlflow_globus.health_rows
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Probe MLflow's checks from the VM
  alcf.mlflow_globus.http_checks:
    checks: "{{ 'mlflow' | alcf.mlflow_globus.health_checks(url='http://127.0.0.1:8080', public_host='mlflow.example.org',
                version='3.17.2') }}"
  register: probed

- name: One row per check
  ansible.builtin.debug:
    msg: "{{ probed | alcf.mlflow_globus.health_rows(inventory_hostname) }}"
"""

RETURN = r"""
results:
  description:
    - One per check, in order, as an M(ansible.builtin.uri) loop gives them, namely the check as C(item), C(status)
      (V(-1) when nothing answered), C(msg), C(location) for a redirect, C(content) when the check has one,
      C(attempts), and each response header under its lowercased name with C(-) as C(_).
  returned: always
  type: list
  elements: dict
  sample:
    - item: {name: "MLflow http://127.0.0.1:8080/health", url: "http://127.0.0.1:8080/health", expect: [200]}
      status: 200
      msg: OK (2 bytes)
      attempts: 1
      content_type: text/html; charset=utf-8
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url


def probe(module: AnsibleModule, check: dict) -> dict:
    """One request, as uri sends it: no redirects followed, the status whatever it is."""
    headers = {'Host': check['host']} if check.get('host') else {}
    response, info = fetch_url(module, check['url'], headers=headers, method='GET', timeout=module.params['timeout'])
    status = int(info.get('status', -1))
    result = {'item': check, 'status': status, 'msg': info.get('msg', '')}
    for key, value in info.items():
        if key not in ('status', 'msg', 'body', 'url') and isinstance(value, str):
            result[key.lower().replace('-', '_')] = value
    if check.get('content') is not None:
        body = response.read() if response is not None else info.get('body', b'')
        result['content'] = body.decode('utf-8', errors='replace') if isinstance(body, bytes) else str(body or '')
    return result


def settled(check: dict, status: int, wait: bool) -> bool:
    return status in check['expect'] if wait else status != -1


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'checks': {'type': 'list', 'elements': 'dict', 'required': True},
            'wait': {'type': 'bool', 'default': False},
            'retries': {'type': 'int', 'default': 5},
            'delay': {'type': 'int', 'default': 2},
            'timeout': {'type': 'int', 'default': 10},
            'validate_certs': {'type': 'bool', 'default': False},
        },
        supports_check_mode=True,
    )
    # fetch_url reads this from the module's parameters: a redirect is an answer to judge, never followed.
    module.params['follow_redirects'] = 'none'
    bad = [check for check in module.params['checks']
           if not isinstance(check.get('url'), str) or not isinstance(check.get('expect'), list)]
    if bad:
        module.fail_json(msg='each check needs a url and a list of expected codes (expect); these have not: %r' % bad)
    results = []
    for check in module.params['checks']:
        for attempt in range(1, max(module.params['retries'], 0) + 2):
            result = probe(module, check)
            if settled(check, result['status'], module.params['wait']) or attempt > module.params['retries']:
                break
            time.sleep(module.params['delay'])
        result['attempts'] = attempt
        results.append(result)
    module.exit_json(changed=False, results=results)


if __name__ == '__main__':
    main()
