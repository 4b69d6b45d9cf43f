# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: email_allowlist.yml and email_allowlist_diff.yml beside this file.

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.email_allowlist import (
    AllowlistError,
    allowlist_diff,
    parse_allowlist,
)


def email_allowlist(value: t.Any, domains: list[str] | None = None, allow_empty: bool = False) -> list[str]:
    try:
        return parse_allowlist(value, domains=domains, allow_empty=allow_empty)
    except AllowlistError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def email_allowlist_diff(old: t.Any, new: t.Any) -> dict[str, list[str]]:
    try:
        return allowlist_diff(old, new)
    except AllowlistError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'email_allowlist': email_allowlist,
            'email_allowlist_diff': email_allowlist_diff,
        }
