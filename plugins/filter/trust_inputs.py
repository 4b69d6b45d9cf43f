# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: every_address.yml, too_wide_networks.yml and not_whole_domains.yml beside this file.
# Inputs that decide whom the services trust: a listen address, the proxies whose X-Forwarded-*
# headers are believed, the domains whose every user may sign in.

from __future__ import annotations

import ipaddress
import re
import typing as t

# A DNS name of at least two letter-digit-hyphen labels (ASCII: punycode for the rest), the last
# not all digits (that would be an IPv4 address).
_LABEL = r'(?!-)[a-z0-9-]{1,63}(?<!-)'
_DOMAIN = re.compile(r'^%s(\.%s)*\.(?![0-9]+$)%s$' % (_LABEL, _LABEL, _LABEL))


def every_address(value: t.Any) -> bool:
    """True for a listen address meaning every address: 0.0.0.0, ::, [::], 0, *, or empty."""
    text = str(value).strip().strip('[]')
    if text in ('', '*', '0'):
        return True
    try:
        return ipaddress.ip_address(text).is_unspecified
    except ValueError:
        return False


def too_wide_networks(values: t.Any, v4_prefix: int = 24, v6_prefix: int = 64) -> list[str]:
    """One sentence per entry that is not an IP address or network, or is wider than /v4_prefix
    (IPv4) or /v6_prefix (IPv6)."""
    problems = []
    for value in values if isinstance(values, (list, tuple)) else [values]:
        text = str(value).strip()
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            problems.append("'%s' is not an IP address or network" % text)
            continue
        limit = v4_prefix if network.version == 4 else v6_prefix
        if network.prefixlen < limit:
            problems.append("'%s' is wider than a /%d (%d addresses)" % (text, limit, network.num_addresses))
    return problems


def not_whole_domains(values: t.Any) -> list[str]:
    """The entries that are not one whole DNS domain: wildcards (*, *.gov), suffixes (.gov), a single
    label (gov), addresses, non-ASCII names, anything with a scheme, '@', port or path."""
    bad = []
    for value in values if isinstance(values, (list, tuple)) else [values]:
        text = str(value).strip()
        if not text.isascii() or not _DOMAIN.match(text.lower()):
            bad.append(text)
    return bad


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'every_address': every_address, 'too_wide_networks': too_wide_networks,
                'not_whole_domains': not_whole_domains}
