#!/usr/bin/python
# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: authenticated_emails
short_description: Write oauth2-proxy's authenticated_emails_file atomically
version_added: 0.1.0
author:
  - ALCF operations (@alcf)
description:
  - Validates an email allowlist and writes it, one address per line, to the file that oauth2-proxy
    reads as C(authenticated_emails_file).
  - oauth2-proxy watches that file and reloads it on change, so no restart is needed. If the file
    cannot be opened when it reloads, oauth2-proxy exits; and if the file does not parse, it keeps
    its old list without a word. This module therefore refuses anything that is not a plain address,
    and replaces the file by renaming a complete new file over it, never truncating it in place.
  - The file is only rewritten when its content would change; the result says which addresses were
    added and removed compared with what oauth2-proxy reads from the file now.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  path:
    description:
      - The emails file to write. Its directory must exist.
    type: path
    required: true
  emails:
    description:
      - The allowed addresses, as a list with one address per item, or as a string in which commas,
        whitespace and newlines separate addresses and C(#) starts a comment (the seed checklist's
        C(OAUTH2_PROXY_ALLOWED_EMAILS) format).
      - Addresses are trimmed, lowercased, deduplicated and sorted.
      - Wildcards, quotes, commas inside an item, and anything that is not exactly one address fail
        the task, naming every bad entry, before the file is touched.
    type: raw
    required: true
  domains:
    description:
      - If given, every address must be in one of these domains (exact, case-insensitive match).
    type: list
    elements: str
  allow_empty:
    description:
      - Allow an empty allowlist, which lets nobody in. Without this an empty allowlist fails the task.
    type: bool
    default: false
  header:
    description:
      - Comment written at the top of the file, each line prefixed with C(#).
      - Set to an empty string for no header.
    type: str
    default: "Managed by Ansible (alcf.mlflow_globus). One address per line; oauth2-proxy reloads this file on change."
  mode:
    description:
      - The permissions of the file. See the O(ansible.builtin.file#module:mode) option of M(ansible.builtin.file).
      - oauth2-proxy only needs to read the file.
    type: raw
    default: '0640'
notes:
  - The new content is written to a temporary file in the same directory, synced to disk, given its
    owner, group and mode, and then renamed over O(path). oauth2-proxy sees the rename and reloads.
seealso:
  - plugin: alcf.mlflow_globus.email_allowlist
    plugin_type: filter
  - plugin: alcf.mlflow_globus.email_allowlist_diff
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Write the allowlist from the seed's comma string
  alcf.mlflow_globus.authenticated_emails:
    path: /etc/oauth2-proxy/authenticated-emails.txt
    emails: "huihuo.zheng@anl.gov,venkat@anl.gov,turam@anl.gov"
    owner: root
    group: oauth2-proxy
    mode: '0640'

- name: Write the allowlist from a list, only anl.gov addresses accepted
  alcf.mlflow_globus.authenticated_emails:
    path: /etc/oauth2-proxy/authenticated-emails.txt
    emails: "{{ oauth2_proxy_allowed_emails }}"
    domains:
      - anl.gov
    group: oauth2-proxy
  register: __oauth2_proxy_allowlist

- name: Report who gained and who lost access
  ansible.builtin.debug:
    msg: "added {{ __oauth2_proxy_allowlist.added }}, removed {{ __oauth2_proxy_allowlist.removed }}"
"""

RETURN = r"""
path:
  description: The emails file.
  returned: success
  type: str
  sample: /etc/oauth2-proxy/authenticated-emails.txt
emails:
  description: The normalized allowlist, as written.
  returned: success
  type: list
  elements: str
  sample: [huihuo.zheng@anl.gov, turam@anl.gov, venkat@anl.gov]
count:
  description: The number of addresses in RV(emails).
  returned: success
  type: int
  sample: 3
added:
  description: Addresses in RV(emails) that oauth2-proxy did not read from the file before.
  returned: success
  type: list
  elements: str
  sample: [turam@anl.gov]
removed:
  description: Addresses oauth2-proxy read from the file before that are not in RV(emails).
  returned: success
  type: list
  elements: str
  sample: [former.user@anl.gov]
diff:
  description: The file's content before and after.
  returned: success and diff mode is on
  type: dict
  contains:
    before:
      description: The old content, empty if the file did not exist.
      type: str
    after:
      description: The new content.
      type: str
    before_header:
      description: The file's path.
      type: str
    after_header:
      description: The file's path.
      type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.atomic_file import replace_file
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.email_allowlist import (
    AllowlistError,
    parse_allowlist,
    read_emails_file,
    render_emails_file,
)

DEFAULT_HEADER = ('Managed by Ansible (alcf.mlflow_globus). One address per line; '
                  'oauth2-proxy reloads this file on change.')


def write_bytes(content):
    def write(tmp):
        with open(tmp, 'wb') as handle:
            handle.write(to_bytes(content))
    return write


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            emails=dict(type='raw', required=True),
            domains=dict(type='list', elements='str'),
            allow_empty=dict(type='bool', default=False),
            header=dict(type='str', default=DEFAULT_HEADER),
            mode=dict(type='raw', default='0640'),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = module.params['path']

    try:
        emails = parse_allowlist(module.params['emails'], domains=module.params['domains'],
                                 allow_empty=module.params['allow_empty'])
    except AllowlistError as exc:
        module.fail_json(msg=to_native(exc), path=path)

    directory = os.path.dirname(path) or '.'
    if os.path.isdir(path):
        module.fail_json(msg='%s is a directory, not a file' % path, path=path)

    before = ''
    if os.path.exists(path):
        try:
            with open(path, 'rb') as f:
                before = to_text(f.read(), errors='surrogate_or_replace')
        except OSError as exc:
            module.fail_json(msg='cannot read %s: %s' % (path, to_native(exc)), path=path)
    after = render_emails_file(emails, module.params['header'])
    old_emails = read_emails_file(before)
    file_args = module.load_file_common_arguments(module.params)

    result = dict(
        path=path,
        emails=emails,
        count=len(emails),
        added=sorted(set(emails) - set(old_emails)),
        removed=sorted(set(old_emails) - set(emails)),
    )
    if module._diff:
        result['diff'] = dict(before=before, after=after, before_header=path, after_header=path)

    changed = before != after or not os.path.exists(path)
    if not os.path.isdir(directory):
        if not module.check_mode:
            module.fail_json(msg='directory %s does not exist; create it before writing %s' % (directory, path),
                             path=path)
        # In check mode an earlier task that creates the directory did not run either.
        module.warn('directory %s does not exist (yet); a real run needs it' % directory)
        module.exit_json(changed=True, **result)

    if changed and not module.check_mode:
        try:
            # Attributes not given as options stay as the old file had them; chattr flags such as
            # immutable would block the rename, so they are set on the final file only.
            def set_options_but_flags(tmp):
                module.set_fs_attributes_if_different(dict(file_args, path=tmp, attributes=None), False)

            replace_file(path, write_bytes(after), like=path, prepare=set_options_but_flags)
        except OSError as exc:
            module.fail_json(msg='cannot write %s: %s' % (path, to_native(exc)), path=path)
    if os.path.exists(path):
        changed = module.set_fs_attributes_if_different(file_args, changed)

    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
