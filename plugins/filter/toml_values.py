# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: toml_unsupported_keys.yml beside this file.

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# What roles/oauth2_proxy/templates/oauth2-proxy.cfg.j2 writes as TOML (a bool is an int here too).
_SCALARS = (str, int, float)


def _writable(value: t.Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(item, _SCALARS) for item in value)


def toml_unsupported_keys(options: t.Any) -> list[str]:
    """The keys whose values are not a string, number, boolean or list of those, in the mapping's order."""
    if not isinstance(options, Mapping):
        raise AnsibleFilterError('toml_unsupported_keys: the input must be a mapping of option names to values, not %r' % (options,))
    return [key for key, value in options.items() if not _writable(value)]


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'toml_unsupported_keys': toml_unsupported_keys}
