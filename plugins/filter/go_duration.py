# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: go_duration.yml beside this file.

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# Go's time.ParseDuration units, in seconds (oauth2-proxy reads cookie_expire and friends with it).
_UNITS = {'ns': 1e-9, 'us': 1e-6, '\u00b5s': 1e-6, '\u03bcs': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0, 'h': 3600.0}
_PART = re.compile(r'([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)')


def go_duration_seconds(value):
    """Seconds in a Go duration string such as 12h, 1h30m or 168h0m0s (no sign, no bare numbers but 0)."""
    text = str(value).strip()
    if text == '0':
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        part = _PART.match(text, pos)
        if not part:
            break
        total += float(part.group(1)) * _UNITS[part.group(2)]
        pos = part.end()
    if not text or pos != len(text):
        raise AnsibleFilterError(
            "'%s' is not a duration oauth2-proxy understands: write it as Go does, e.g. 12h, 90m or 1h30m" % text)
    return total


class FilterModule:
    def filters(self):
        return {'go_duration_seconds': go_duration_seconds}
