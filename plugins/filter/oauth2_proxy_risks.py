# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: oauth2_proxy_risks.yml beside this file. The key lists are data, in
# roles/oauth2_proxy/vars/main.yml (_oauth2_proxy_extra_config_rules); this file only decides.

from __future__ import annotations

import ipaddress
import typing as t

from ansible.errors import AnsibleFilterError

_TRUE = ('true', 'yes', 'on', '1')
_FALSE = ('false', 'no', 'off', '0')


def _normal(value: t.Any) -> t.Any:
    """Booleans and their TOML/.env spellings compare as booleans, strings case-insensitively."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        return low
    return value


def _match(key: str, patterns: t.Mapping[str, str]) -> str | None:
    """The rule text for ``key``: an exact entry, or a ``prefix*`` entry."""
    if key in patterns:
        return patterns[key]
    for pattern, why in patterns.items():
        if pattern.endswith('*') and key.startswith(pattern[:-1]):
            return why
    return None


def _is_loopback_address(value: str) -> bool:
    host = value.rsplit(':', 1)[0] if ':' in value else value
    host = host.strip('[]')
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _strings(value: t.Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def oauth2_proxy_risks(extra_config: t.Any, rules: t.Any, allow_insecure: bool = False) -> dict[str, list[str]]:
    if not isinstance(extra_config, dict):
        raise AnsibleFilterError('oauth2_proxy_risks: the input must be a mapping of oauth2-proxy options, not %s'
                                 % type(extra_config).__name__)
    if not isinstance(rules, dict):
        raise AnsibleFilterError('oauth2_proxy_risks: rules must be a mapping, not %s' % type(rules).__name__)
    refused_keys = rules.get('refused', {})
    reserved_keys = rules.get('reserved', {})
    value_rules = rules.get('values', {})
    loopback_keys = rules.get('loopback', {})
    unlock_keys = rules.get('unlock', {})

    refused: list[str] = []
    unlocked: list[str] = []
    keys: list[str] = []
    reserved: list[tuple[str, str]] = []
    for key in sorted(extra_config):
        value = extra_config[key]
        why = _match(key, reserved_keys)
        if why is not None:
            reserved.append((key, why))
            keys.append(key)
            continue
        why = _match(key, refused_keys)
        if why is not None:
            refused.append('%s: %s' % (key, why))
            keys.append(key)
            continue
        if key in value_rules:
            rule = value_rules[key]
            allowed = [_normal(v) for v in rule.get('allowed', [])]
            if _normal(value) not in allowed:
                refused.append('%s = %s: %s' % (key, _show(value), rule.get('why', '')))
                keys.append(key)
                continue
        if key in loopback_keys:
            if not isinstance(value, str) or (value and not _is_loopback_address(value)):
                refused.append('%s = %s: %s' % (key, _show(value), loopback_keys[key]))
                keys.append(key)
                continue
        why = _match(key, unlock_keys)
        if why is not None and _normal(value) is not False:
            (unlocked if allow_insecure else refused).append('%s: %s' % (key, why))
            keys.append(key)
            continue
        if any(s.strip().lower().startswith('http://') for s in _strings(value)):
            # Only the key is named: a URL may carry credentials.
            (unlocked if allow_insecure else refused).append(
                '%s: a plain http:// URL, readable and changeable on the way; use https://' % key)
            keys.append(key)
    if reserved:
        refused.insert(0, 'Set through role variables instead: %s (%s)' % (
            [key for key, _why in reserved], '; '.join('%s: %s' % r for r in reserved)))
    return {'refused': refused, 'unlocked': unlocked, 'keys': keys}


def _show(value: t.Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return repr(value)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'oauth2_proxy_risks': oauth2_proxy_risks,
        }
