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
  - Runs on the MLflow host, with the Python of MLflow's virtualenv (set C(ansible_python_interpreter) to
    C(<install dir>/venv/bin/python)); it uses MLflow's own auth and tracking stores. It reads the database
    URIs from the auth app's ini file and the service's environment file as root; a child process that has
    become O(service_user) opens the databases, so that a SQLite file keeps the service's ownership.
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
  auth_config:
    description: The auth app's ini file (its C(database_uri)).
    type: path
    default: /etc/mlflow-globus/basic_auth.ini
  env_file:
    description: The service's environment file (its C(MLFLOW_BACKEND_STORE_URI), to find experiments and models).
    type: path
    default: /etc/mlflow-globus/mlflow-globus.env
  service_user:
    description: The user the module becomes before it opens a database (the service's own).
    type: str
    default: mlflow
requirements:
  - MLflow with its auth app (C(mlflow[auth])), in the Python that runs the module.
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
  vars:
    ansible_python_interpreter: /opt/mlflow-globus/venv/bin/python

- name: Back to the default permission
  alcf.mlflow_globus.mlflow_permissions:
    grants:
      - {user: bob@example.org, experiment: alice-training, state: absent}
  vars:
    ansible_python_interpreter: /opt/mlflow-globus/venv/bin/python
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

import configparser
import json
import os
import pwd
import secrets
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.email_allowlist import (
    AllowlistError, parse_allowlist)

try:
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as AuthStore
    from mlflow.tracking import MlflowClient
except ImportError:
    MLFLOW_IMPORT_ERROR = traceback.format_exc()
else:
    MLFLOW_IMPORT_ERROR = None

PERMISSIONS = ['READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS']
RESOURCES = ('experiment', 'registered_model')


def read_env_value(text, name):
    """A value from the role's environment file: NAME="value" with \\ " ` $ escaped by a backslash."""
    for line in text.splitlines():
        key, sep, value = line.partition('=')
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                out, chars = [], iter(value[1:-1])
                for char in chars:
                    out.append(next(chars, '') if char == '\\' else char)
                return ''.join(out)
            return value
    return None


def read_auth_database_uri(text):
    parser = configparser.ConfigParser()
    parser.read_string(text)
    return parser['mlflow']['database_uri']


def check_grants(grants, known_users):
    """Normalized grants and the problems of the bad ones (each named)."""
    problems, normalized = [], []
    try:
        known = set(parse_allowlist(known_users or [], allow_empty=True))
    except AllowlistError as exc:
        return [], ['known_users: %s' % exc], set()
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
        normalized.append({'user': user, 'resource': named[0], 'name': grant[named[0]], 'state': state,
                           'permission': permission if state == 'present' else None})
    return normalized, problems, known


def plan(grants, current):
    """Each grant with before, after and the action (create, update, delete, none); ``current`` maps
    (user, resource, id) to the permission held now."""
    planned = []
    for grant in grants:
        before = current.get((grant['user'], grant['resource'], grant['id']))
        after = grant['permission']
        if before == after:
            action = 'none'
        elif after is None:
            action = 'delete'
        elif before is None:
            action = 'create'
        else:
            action = 'update'
        planned.append(dict(grant, before=before, after=after, action=action))
    return planned


class Stores:
    """MLflow's auth store (grants) and tracking client (experiments, models), through their own APIs."""

    def __init__(self, auth_uri, tracking_uri):
        self.auth = AuthStore()
        self.auth.init_db(auth_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def resource_id(self, resource, name):
        if resource == 'experiment':
            experiment = self.client.get_experiment_by_name(name)
            return None if experiment is None else experiment.experiment_id
        try:
            return self.client.get_registered_model(name).name
        except MlflowException:
            return None

    def has_user(self, user):
        return self.auth.has_user(user)

    def create_user(self, user):
        self.auth.create_user(user, secrets.token_urlsafe(32))

    def permission(self, user, resource, ident):
        try:
            if resource == 'experiment':
                return self.auth.get_experiment_permission(ident, user).permission
            return self.auth.get_registered_model_permission(ident, user).permission
        except MlflowException:
            return None

    def apply(self, grant):
        kind = 'experiment' if grant['resource'] == 'experiment' else 'registered_model'
        if grant['action'] == 'delete':
            getattr(self.auth, 'delete_%s_permission' % kind)(grant['id'], grant['user'])
        else:
            getattr(self.auth, '%s_%s_permission' % (grant['action'], kind))(grant['id'], grant['user'], grant['after'])


def drop_privileges(user):
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ['HOME'] = entry.pw_dir


class Refused(Exception):
    """Entries that cannot be applied; nothing was written."""

    def __init__(self, msg, problems=None):
        super().__init__(msg)
        self.msg, self.problems = msg, problems or []


class ChildSettings:
    """What run() asks of the module, in the child process (which must not use AnsibleModule)."""

    def __init__(self, check_mode, diff):
        self.check_mode, self._diff = check_mode, diff

    def fail_json(self, msg, problems=None):
        raise Refused(msg, problems)


def run_as(user, work):
    """``work()`` in a child process that has become ``user``; its JSON-able result, or Refused raised
    again here. The module itself stays root: Ansible's own code is in a payload only root may read."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(reader)
        try:
            drop_privileges(user)
            answer = {'result': work()}
        except Refused as exc:
            answer = {'refused': exc.msg, 'problems': exc.problems}
        except Exception as exc:  # pylint: disable=broad-exception-caught
            answer = {'error': '%s: %s' % (type(exc).__name__, getattr(exc, 'message', None) or exc)}
        with os.fdopen(writer, 'w', encoding='utf-8') as out:
            json.dump(answer, out)
        os._exit(0)  # pylint: disable=protected-access
    os.close(writer)
    with os.fdopen(reader, encoding='utf-8') as answer_in:
        text = answer_in.read()
    os.waitpid(pid, 0)
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {'error': 'the child process as %s gave no answer' % user}
    if 'refused' in answer:
        raise Refused(answer['refused'], answer['problems'])
    if 'error' in answer:
        raise RuntimeError(answer['error'])
    return answer['result']


def run(module, stores, grants, known):
    problems, created = [], []
    for grant in grants:
        grant['id'] = stores.resource_id(grant['resource'], grant['name'])
        if grant['id'] is None:
            problems.append('%s %r does not exist (for %s)' % (grant['resource'].replace('_', ' '), grant['name'], grant['user']))
    users = sorted({grant['user'] for grant in grants})
    missing = [user for user in users if not stores.has_user(user)]
    unknown = [user for user in missing if user not in known]
    if unknown:
        problems.append('no MLflow user %s: they have never signed in, and known_users (the allowlist) does not list them'
                        % ', '.join(unknown))
    if problems:
        module.fail_json(msg='Nothing was changed: ' + '; '.join(problems), problems=problems)
    current = {(g['user'], g['resource'], g['id']): stores.permission(g['user'], g['resource'], g['id'])
               for g in grants if g['user'] not in missing}
    planned = plan(grants, current)
    changed = bool(missing) or any(g['action'] != 'none' for g in planned)
    if not module.check_mode:
        for user in missing:
            stores.create_user(user)
            created.append(user)
        for grant in planned:
            if grant['action'] != 'none':
                stores.apply(grant)
    else:
        created = missing
    result = {
        'changed': changed,
        'grants': [{k: g[k] for k in ('user', 'resource', 'name', 'id', 'before', 'after', 'action')} for g in planned],
        'summary': ['%s %s %s: %s -> %s (%s)' % (g['user'], g['resource'].replace('_', ' '), g['name'],
                                                 g['before'] or '(default)', g['after'] or '(default)', g['action'])
                    for g in planned],
        'created_users': created,
    }
    if module._diff:
        line = '{user} {resource} {name}: {perm}\n'
        result['diff'] = {
            'before': ''.join(line.format(perm=g['before'] or '(default)', **g) for g in planned),
            'after': ''.join(line.format(perm=g['after'] or '(default)', **g) for g in planned),
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
            auth_config=dict(type='path', default='/etc/mlflow-globus/basic_auth.ini'),
            env_file=dict(type='path', default='/etc/mlflow-globus/mlflow-globus.env'),
            service_user=dict(type='str', default='mlflow'),
        ),
        supports_check_mode=True,
    )
    grants, problems, known = check_grants(module.params['grants'], module.params['known_users'])
    if problems:
        module.fail_json(msg='Nothing was changed: ' + '; '.join(problems), problems=problems)
    if MLFLOW_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('mlflow[auth]') + ' (run the module with the Python of MLflow\'s '
                         'virtualenv: ansible_python_interpreter)', exception=MLFLOW_IMPORT_ERROR)
    try:
        with open(module.params['auth_config'], encoding='utf-8') as handle:
            auth_uri = read_auth_database_uri(handle.read())
        with open(module.params['env_file'], encoding='utf-8') as handle:
            tracking_uri = read_env_value(handle.read(), 'MLFLOW_BACKEND_STORE_URI')
    except (OSError, KeyError, configparser.Error) as exc:
        module.fail_json(msg='cannot read the auth app\'s settings (%s, %s): %s'
                         % (module.params['auth_config'], module.params['env_file'], exc))
    if not tracking_uri:
        module.fail_json(msg='%s sets no MLFLOW_BACKEND_STORE_URI' % module.params['env_file'])
    settings = ChildSettings(module.check_mode, module._diff)
    try:
        result = run_as(module.params['service_user'],
                        lambda: run(settings, Stores(auth_uri, tracking_uri), grants, known))
    except Refused as exc:
        module.fail_json(msg=exc.msg, problems=exc.problems)
    except RuntimeError as exc:
        module.fail_json(msg='MLflow: %s' % exc)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
