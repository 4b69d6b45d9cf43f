#!/usr/bin/python
# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mlflow_permissions
short_description: Grant and revoke MLflow experiment and registered-model permissions by email
version_added: 0.3.0
author:
  - ALCF operations (@alcf)
description:
  - Sets what one signed-in user may do with one experiment or registered model, for each entry of
    O(grants), in the database of MLflow's auth app (C(mlflow server --app-name basic-auth)), as the
    role C(alcf.mlflow_globus.mlflow_globus) runs it with C(mlflow_globus_identity) (the role's entry point
    C(permissions) and C(playbooks/permissions.yml) call this module).
  - Runs on the MLflow host. The writing is done by the role's store tool (C(mlflow-globus-store.py permissions))
    with the Python of MLflow's virtualenv and MLflow's own auth and tracking stores; like the tool's backups,
    it reads the database URIs as root and then becomes the service's user, so that a SQLite file keeps the
    service's ownership.
  - Every entry is checked before anything is written - an unknown experiment or model, a user who has
    never signed in and is not in O(known_users), a bad permission - and all such entries are named in
    one failure.
  - MLflow already lets the creator of an experiment or model manage it, and gives everyone else the
    auth app's C(default_permission); a grant here raises (or lowers) that for one user.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  grants:
    description:
      - What to set, one entry per user and experiment or model.
    type: list
    elements: dict
    required: true
    suboptions:
      user:
        description: The user's email, as they sign in (compared case-insensitively).
        type: str
        required: true
      experiment:
        description: The experiment's name. Exactly one of O(grants[].experiment) and O(grants[].registered_model).
        type: str
      registered_model:
        description: The registered model's name.
        type: str
      permission:
        description:
          - What the user may do. V(READ) reads; V(USE) also uses it (e.g. a model in a gateway);
            V(EDIT) also changes it; V(MANAGE) also deletes it and grants permissions;
            V(NO_PERMISSIONS) hides it from the user.
          - Required with O(grants[].state=present).
        type: str
        choices: [READ, USE, EDIT, MANAGE, NO_PERMISSIONS]
      state:
        description: V(absent) removes the user's grant, so that the default permission applies again.
        type: str
        choices: [present, absent]
        default: present
  known_users:
    description:
      - Emails that may be given a grant before they have ever signed in (usually the allowlist); they are
        created as MLflow users, as their first sign-in would. A user neither in MLflow nor here fails the task.
    type: list
    elements: str
    default: []
  python:
    description: The Python of MLflow's virtualenv.
    type: path
    default: /opt/mlflow-globus/venv/bin/python
  store_tool:
    description: The role's store tool, which reads the database URIs and becomes the service's user.
    type: path
    default: /opt/mlflow-globus/mlflow-globus-store.py
requirements:
  - The C(alcf.mlflow_globus.mlflow_globus) role's store tool and MLflow (C(mlflow[auth])) on the host.
notes:
  - A user removed from the allowlist keeps their grants in MLflow - they are refused at the door
    (oauth2-proxy) and find their permissions again when they are added back.
seealso:
  - plugin: alcf.mlflow_globus.email_allowlist
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Let bob change alice's experiment, and hide a model from carol
  alcf.mlflow_globus.mlflow_permissions:
    grants:
      - {user: bob@example.org, experiment: alice-training, permission: EDIT}
      - {user: carol@example.org, registered_model: alice-model, permission: NO_PERMISSIONS}
    known_users: "{{ oauth2_proxy_allowed_emails }}"

- name: Back to the default permission
  alcf.mlflow_globus.mlflow_permissions:
    grants:
      - {user: bob@example.org, experiment: alice-training, state: absent}
"""

RETURN = r"""
grants:
  description: Each entry with what it was and what it is now (V(null) - no grant of its own).
  returned: success
  type: list
  elements: dict
  sample:
    - {user: bob@example.org, resource: experiment, name: alice-training, id: '3', before: null, after: EDIT,
       action: create}
summary:
  description: One line for each entry, for people.
  returned: success
  type: list
  elements: str
  sample: ['bob@example.org experiment alice-training: (default) -> EDIT (create)']
created_users:
  description: Users from O(known_users) that were created for a grant.
  returned: success
  type: list
  elements: str
  sample: [bob@example.org]
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.email_allowlist import (
    AllowlistError, parse_allowlist)

PERMISSIONS = ['READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS']
RESOURCES = ('experiment', 'registered_model')
# The store tool's exit code for grants naming what does not exist (nothing written).
REFUSED = 3


def check_grants(grants, known_users):
    """Normalized grants and the problems of the bad ones (each named)."""
    problems, normalized = [], []
    try:
        known = parse_allowlist(known_users or [], allow_empty=True)
    except AllowlistError as exc:
        return [], ['known_users: %s' % exc], []
    for index, grant in enumerate(grants):
        where = 'grants[%d]' % index
        try:
            user = parse_allowlist([grant.get('user') or ''])[0]
        except AllowlistError as exc:
            problems.append('%s: user %r is not one email (%s)' % (where, grant.get('user'), exc))
            continue
        named = [key for key in RESOURCES if grant.get(key)]
        if len(named) != 1:
            problems.append('%s (%s): give exactly one of experiment and registered_model' % (where, user))
            continue
        state = grant.get('state') or 'present'
        permission = grant.get('permission')
        if state == 'present' and permission not in PERMISSIONS:
            problems.append('%s (%s): permission must be one of %s, got %r' % (where, user, ', '.join(PERMISSIONS), permission))
            continue
        normalized.append({'user': user, 'resource': named[0], 'name': grant[named[0]],
                           'permission': permission if state == 'present' else None})
    return normalized, problems, known


def _perm(value):
    return value or '(default)'


def report(result, diff):
    """The store tool's answer, with a line per grant for people and, if asked, a diff."""
    planned = result['grants']
    result['summary'] = ['%s %s %s: %s -> %s (%s)' % (g['user'], g['resource'].replace('_', ' '), g['name'],
                                                      _perm(g['before']), _perm(g['after']), g['action'])
                         for g in planned]
    if diff:
        line = '%s %s %s: %s\n'
        result['diff'] = {
            'before': ''.join(line % (g['user'], g['resource'], g['name'], _perm(g['before'])) for g in planned),
            'after': ''.join(line % (g['user'], g['resource'], g['name'], _perm(g['after'])) for g in planned),
        }
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            grants=dict(type='list', elements='dict', required=True, options=dict(
                user=dict(type='str', required=True),
                experiment=dict(type='str'),
                registered_model=dict(type='str'),
                permission=dict(type='str', choices=PERMISSIONS),
                state=dict(type='str', choices=['present', 'absent'], default='present'),
            )),
            known_users=dict(type='list', elements='str', default=[]),
            python=dict(type='path', default='/opt/mlflow-globus/venv/bin/python'),
            store_tool=dict(type='path', default='/opt/mlflow-globus/mlflow-globus-store.py'),
        ),
        supports_check_mode=True,
    )
    grants, problems, known = check_grants(module.params['grants'], module.params['known_users'])
    if problems:
        module.fail_json(msg='Nothing was changed: ' + '; '.join(problems), problems=problems)
    request = json.dumps({'grants': grants, 'known_users': known, 'check': module.check_mode})
    rc, out, err = module.run_command([module.params['python'], module.params['store_tool'], 'permissions'],
                                      data=request, binary_data=True)
    try:
        answer = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = None
    if rc == REFUSED and isinstance(answer, dict) and 'refused' in answer:
        module.fail_json(msg='Nothing was changed: ' + '; '.join(answer['refused']), problems=answer['refused'])
    if rc != 0 or not isinstance(answer, dict):
        last_words = (err.strip().splitlines() or ['no message'])[-1]
        module.fail_json(msg='%s permissions failed (rc %d): %s' % (module.params['store_tool'], rc, last_words),
                         rc=rc, stderr=err)
    module.exit_json(**report(answer, module._diff))


if __name__ == '__main__':
    main()
