# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: import_env_analysis.yml beside this file. What each .env variable becomes is data,
# in playbooks/import_env.yml (_import_env_table, _import_env_derived); this file only sorts.
# No message made here quotes the value of a secret.

from __future__ import annotations

import json
import re
import typing as t
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.oauth2_proxy_risks import oauth2_proxy_risks
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.email_allowlist import (
    AllowlistError,
    parse_allowlist,
)

_HOST = re.compile(r'[a-z0-9]([a-z0-9.-]*[a-z0-9])?')
_PORT_AT_END = re.compile(r'(?:^|:)([0-9]{1,5})/?\Z')
_TRAILING_PORT = re.compile(r':[0-9]*\Z')
_WHOLE_NUMBER = re.compile(r'[0-9]+')
_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('0', 'false', 'no', 'off')
_OAUTH2_PROXY_PREFIX = 'OAUTH2_PROXY_'
_ENTRY_KEYS = frozenset(('names', 'kind', 'var', 'extra', 'env', 'label', 'hosts', 'required', 'default', 'default_from',
                         'forbid', 'forbid_why'))
_NO_DEFAULT = object()
_UNUSABLE = object()


class _NotA(ValueError):
    """A .env value its entry's kind cannot read; the text says what was expected."""


def _host(raw: str) -> str:
    """The host of a URL, or of host[:port][/path], lowercased."""
    if '://' in raw:
        try:
            host = urlsplit(raw).hostname or ''
        except ValueError:  # an unclosed IPv6 bracket
            host = ''
    else:
        host = _TRAILING_PORT.sub('', raw.split('/')[0])
    host = host.lower()
    if not _HOST.fullmatch(host):
        raise _NotA('a host name or a URL')
    return host


def _port(raw: str) -> int:
    """A port, or the port an address or URL ends in."""
    match = _PORT_AT_END.search(raw)
    port = int(match.group(1)) if match else 0
    if not 1 <= port <= 65535:
        raise _NotA('a port, or an address or URL ending in one')
    return port


def _whole_number(raw: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise _NotA('a whole number')
    return int(raw)


def _boolean(raw: str) -> bool:
    low = raw.lower()
    if low not in _TRUE + _FALSE:
        raise _NotA('true or false')
    return low in _TRUE


def _comma_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(',') if item.strip()]


def _emails(raw: str) -> list[str]:
    # An empty list is reported as missing, not as a problem; a bad address raises AllowlistError.
    return parse_allowlist(raw, allow_empty=True)


def _as_is(raw: str) -> str:
    return raw


_READERS: dict[str, t.Callable[[str], t.Any]] = {
    'str': _as_is,
    'secret': _as_is,
    'uri': _as_is,
    'host': _host,
    'port': _port,
    'int': _whole_number,
    'bool': _boolean,
    'list': _comma_list,
    'emails': _emails,
}


def _holds_password(uri: str) -> bool:
    """A password before the @, or in the query (libpq's and SQLAlchemy's ?password=)."""
    try:
        parts = urlsplit(uri)
        return bool(parts.password) or any(key.lower() == 'password' and value
                                           for key, value in parse_qsl(parts.query, keep_blank_values=True))
    except ValueError:
        return True  # cannot be read, so it might hold one: kept out of main.yml and of messages


def _quoted(value: t.Any) -> str:
    return json.dumps(value)


class _Entry:
    """One entry of the table, checked, with its default resolved and its names for the files."""

    def __init__(self, raw: t.Any, role_defaults: Mapping[str, t.Any]) -> None:
        if not isinstance(raw, Mapping):
            raise AnsibleFilterError('import_env_analysis: each table entry must be a mapping, not %r' % (raw,))
        unknown = sorted(set(raw) - _ENTRY_KEYS)
        if unknown:
            raise AnsibleFilterError('import_env_analysis: table entry %r has unknown keys %s' % (dict(raw), unknown))
        names = raw.get('names')
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            raise AnsibleFilterError('import_env_analysis: table entry %r needs names, a list of .env variable names' % (dict(raw),))
        if raw.get('kind') not in _READERS:
            raise AnsibleFilterError('import_env_analysis: table entry %s has kind %r, not one of %s'
                                     % (names, raw.get('kind'), sorted(_READERS)))
        self.names: list[str] = names
        self.kind: str = raw['kind']
        self.var: str | None = raw.get('var')
        self.extra: str | None = raw.get('extra')
        self.env: str | None = raw.get('env')
        if not (self.var or self.extra or self.env):
            raise AnsibleFilterError('import_env_analysis: table entry %s says neither var, extra nor env' % names)
        self.hosts = bool(raw.get('hosts', False))
        if self.hosts and not self.var:
            raise AnsibleFilterError('import_env_analysis: table entry %s has hosts but no var' % names)
        self.required = bool(raw.get('required', False))
        self.forbid: str | None = raw.get('forbid')
        self.forbid_why: str = raw.get('forbid_why', '')
        self.default = self._default(raw, role_defaults)
        self.label: str = raw.get('label') or ' + '.join(
            ([self.var] if self.var else [])
            + (['oauth2_proxy_extra_config.' + self.extra] if self.extra else [])
            + (['mlflow_globus_environment.' + self.env] if self.env else []))
        self.vault_name = 'vault_' + (self.var if self.var
                                      else 'oauth2_proxy_extra_config_' + self.extra if self.extra
                                      else 'mlflow_globus_environment_' + (self.env or '').lower())

    def _default(self, raw: Mapping[str, t.Any], role_defaults: Mapping[str, t.Any]) -> t.Any:
        """The literal default, or the role's own default of var (default_from: the role): one home for each."""
        if 'default_from' not in raw:
            return raw.get('default', _NO_DEFAULT)
        role = raw['default_from']
        if 'default' in raw or not self.var:
            raise AnsibleFilterError('import_env_analysis: table entry %s: default_from needs a var and no default' % self.names)
        defaults = role_defaults.get(role)
        if not isinstance(defaults, Mapping) or self.var not in defaults:
            raise AnsibleFilterError('import_env_analysis: table entry %s: default_from %r, but role_defaults has no %s for that role'
                                     % (self.names, role, self.var))
        return defaults[self.var]

    def is_secret(self, value: t.Any) -> bool:
        return self.kind == 'secret' or (self.kind == 'uri' and isinstance(value, str) and _holds_password(value))


class _Analysis:
    """The lists import_env.yml writes and reports, filled entry by entry."""

    def __init__(self, env: Mapping[str, str], aliases: Mapping[str, str]) -> None:
        self.env = env
        # The table's name -> the name the .env used for it.
        self.alias_of = {target: own for own, target in aliases.items()}
        self.understood: set[str] = set()
        self.settings: list[dict[str, t.Any]] = []
        self.extra_config: list[dict[str, t.Any]] = []
        self.environment: list[dict[str, t.Any]] = []
        self.hosts: dict[str, t.Any] = {}
        self.vault: list[dict[str, t.Any]] = []
        self.carried: list[dict[str, str]] = []
        self.defaults: list[dict[str, str]] = []
        self.derived: list[dict[str, str]] = []
        self.unknown: list[dict[str, str]] = []
        self.review: list[str] = []
        self.missing: list[str] = []
        self.problems: list[str] = []

    def sort_entry(self, entry: _Entry) -> None:
        present = [name for name in entry.names if name in self.env]
        self.understood.update(present)
        readable = []
        for name in present:
            value = self._read(entry, name)
            if value is not _UNUSABLE:
                readable.append((name, value))
        if readable:
            self._review_disagreements(entry, readable)
            self._take(entry, *readable[0])
        elif entry.required:
            self._report_missing(entry)

    def _read(self, entry: _Entry, name: str) -> t.Any:
        """The value as its kind reads it, or _UNUSABLE (and a problem) when it cannot be used."""
        raw = self.env[name]
        try:
            return _READERS[entry.kind](raw)
        except _NotA as exc:
            self.problems.append('%s is %s, not %s' % (name, _quoted(raw), exc))
        except AllowlistError as exc:
            self.problems.append('%s: %s' % (name, exc))
        return _UNUSABLE

    def _review_disagreements(self, entry: _Entry, readable: list[tuple[str, t.Any]]) -> None:
        """The first name present wins; every other that says something else is listed."""
        chosen, chosen_value = readable[0]
        for other, other_value in readable[1:]:
            if other_value == chosen_value:
                continue
            values = '' if entry.is_secret(chosen_value) or entry.is_secret(other_value) else \
                ' (%s against %s)' % (_quoted(other_value), _quoted(chosen_value))
            self.review.append('%s disagrees with %s%s; %s was used for %s' % (other, chosen, values, chosen, entry.label))

    def _take(self, entry: _Entry, name: str, value: t.Any) -> None:
        if entry.forbid is not None and isinstance(value, (str, list)) and entry.forbid in value:
            self.review.append('%s contains %s, which %s; it was not carried over' % (name, _quoted(entry.forbid), entry.forbid_why))
        elif entry.default is not _NO_DEFAULT and value == entry.default:
            self.defaults.append({'env': name, 'to': entry.label})
        elif entry.kind == 'emails' and not value:
            self.missing.append('%s (%s lists no address, so nobody could sign in)' % (entry.label, name))
        else:
            self._carry(entry, name, value)

    def _carry(self, entry: _Entry, name: str, value: t.Any) -> None:
        secret = entry.is_secret(value)
        self._place(entry, '{{ %s }}' % entry.vault_name if secret else value, {'from': name})
        if secret:
            self.vault.append({'name': entry.vault_name, 'value': value, 'from': name})
        own_name = '%s (as %s)' % (self.alias_of[name], name) if name in self.alias_of else name
        self.carried.append({'env': name, 'to': entry.label,
                             'text': '%s -> %s%s' % (own_name, entry.label, ' (secret: in vault.yml)' if secret else '')})

    def _place(self, entry: _Entry, written: t.Any, source: dict[str, str]) -> None:
        """Into hosts.yml, main.yml's settings, oauth2_proxy_extra_config and/or mlflow_globus_environment."""
        if entry.hosts:
            self.hosts[entry.var] = written
        elif entry.var:
            self.settings.append({'var': entry.var, 'value': written, **source})
        if entry.extra:
            self.extra_config.append({'key': entry.extra, 'value': written, **source})
        if entry.env:
            self.environment.append({'key': entry.env, 'value': written, **source})

    def _report_missing(self, entry: _Entry) -> None:
        self.missing.append('%s (from %s)' % (entry.label, ' or '.join(entry.names[:3])))
        if entry.kind == 'secret':
            # A placeholder the roles refuse, so that the secret cannot be forgotten.
            note = 'not in the .env: put the secret into vault.yml as ' + entry.vault_name
            self._place(entry, '{{ %s }}' % entry.vault_name, {'from': '', 'note': note})
            self.vault.append({'name': entry.vault_name, 'value': 'VAULT_PLACEHOLDER', 'from': '',
                               'note': 'not in the .env: replace the placeholder'})

    def check_derived(self, derived: Mapping[str, t.Any]) -> None:
        """Understood and not carried over; a value unlike what the collection uses is listed for review."""
        public_host = next((item['value'] for item in self.settings if item['var'] == 'mlflow_site_public_host'), '')
        for name, why in derived.items():
            if name not in self.env:
                continue
            self.understood.add(name)
            self.derived.append({'env': name, 'why': why['why']})
            expect = str(why.get('expect') or '').replace('{host}', public_host or '<public host>')
            if expect and re.sub(r'/+\Z', '', self.env[name].strip().lower()) != expect.lower():
                self.review.append('%s is %s in the .env, but %s' % (name, _quoted(self.env[name]), why['why']))

    def check_refused_options(self, rules: Mapping[str, t.Any]) -> None:
        """An oauth2-proxy option the oauth2_proxy role refuses (it weakens sign-in) is never copied, only listed."""
        for name in self._not_understood():
            if not name.startswith(_OAUTH2_PROXY_PREFIX):
                continue
            refused = oauth2_proxy_risks({_option(name): self.env[name]}, rules)['refused']
            if refused:
                self.understood.add(name)
                self.derived.append({'env': name, 'why': 'the oauth2_proxy role refuses it'})
                self.review.append('%s is not carried over, the oauth2_proxy role refuses it: %s' % (name, '; '.join(refused)))

    def list_unknown(self) -> None:
        """Every variable left is listed by name with a hint, never dropped silently."""
        for name in self._not_understood():
            if name.startswith(_OAUTH2_PROXY_PREFIX):
                hint = ('an oauth2-proxy option (%s): if still wanted, add it to oauth2_proxy_extra_config with a typed value'
                        % _option(name))
            elif name.startswith('MLFLOW_'):
                hint = ('an MLflow setting: see ansible-doc -t role alcf.mlflow_globus.mlflow_globus '
                        '(mlflow_globus_environment passes variables to the server)')
            else:
                hint = 'unknown to this playbook'
            self.unknown.append({'env': name, 'hint': hint})

    def _not_understood(self) -> list[str]:
        return [name for name in self.env if name not in self.understood]

    def result(self) -> dict[str, t.Any]:
        return {'settings': self.settings, 'extra_config': self.extra_config, 'environment': self.environment,
                'hosts': self.hosts, 'vault': self.vault, 'carried': self.carried, 'defaults': self.defaults,
                'derived': self.derived, 'unknown': self.unknown, 'review': self.review, 'missing': self.missing,
                'problems': self.problems}


def _option(name: str) -> str:
    """oauth2-proxy's TOML key for its OAUTH2_PROXY_<OPTION> environment variable."""
    return name[len(_OAUTH2_PROXY_PREFIX):].lower()


def _checked_env(env: t.Any) -> Mapping[str, str]:
    if not isinstance(env, Mapping):
        raise AnsibleFilterError('import_env_analysis: the input must be the .env as a mapping of names to strings, not %s'
                                 % type(env).__name__)
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            # The value is not shown: it may be a secret.
            raise AnsibleFilterError('import_env_analysis: .env variable %r must be a string, not %s' % (name, type(value).__name__))
    return env


def _checked_mapping(value: t.Any, what: str) -> Mapping[str, t.Any]:
    if not isinstance(value, Mapping):
        raise AnsibleFilterError('import_env_analysis: %s must be a mapping, not %r' % (what, value))
    return value


def _checked_derived(derived: t.Any) -> Mapping[str, t.Any]:
    for name, why in _checked_mapping(derived, 'derived').items():
        if not isinstance(why, Mapping) or not isinstance(why.get('why'), str):
            raise AnsibleFilterError('import_env_analysis: derived %r must be a mapping with a why text, not %r' % (name, why))
    return derived


def import_env_analysis(env: t.Any, table: t.Any, derived: t.Any, rules: t.Any, aliases: t.Any = None,
                        role_defaults: t.Any = None) -> dict[str, t.Any]:
    env = _checked_env(env)
    if not isinstance(table, list):
        raise AnsibleFilterError('import_env_analysis: table must be a list of entries, not %r' % (table,))
    role_defaults = _checked_mapping({} if role_defaults is None else role_defaults, 'role_defaults')
    entries = [_Entry(raw, role_defaults) for raw in table]
    analysis = _Analysis(env, _checked_mapping({} if aliases is None else aliases, 'aliases'))
    for entry in entries:
        analysis.sort_entry(entry)
    analysis.check_derived(_checked_derived(derived))
    analysis.check_refused_options(_checked_mapping(rules, 'rules'))
    analysis.list_unknown()
    return analysis.result()


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'import_env_analysis': import_env_analysis,
        }
