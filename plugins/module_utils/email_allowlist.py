# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse, validate and render the oauth2-proxy email allowlist.

oauth2-proxy reads ``authenticated_emails_file`` as CSV (comma separated, ``#`` starts a comment
line) and compares the first field of each record, lowercased, with the signed-in user's email.
A quote or a stray comma makes the CSV reader fail, and oauth2-proxy then keeps its old list
without a word, so such characters are refused here rather than escaped.
"""

from __future__ import annotations

import re

__all__ = [
    'AllowlistError',
    'allowlist_diff',
    'domain_reason',
    'parse_allowlist',
    'read_emails_file',
    'render_emails_file',
]

# Unquoted RFC 5322 local part (dot-atom text) without the characters that mean something in the
# emails file or in the seed's comma list: quotes, '*', '#' and ','.
_LOCAL_CHARS = re.compile(r"[A-Za-z0-9!$%&+/=?^_{|}~.-]+")
_LABEL = re.compile(r"[a-z0-9-]+")
_SEPARATORS = re.compile(r"[,\s]+")
_QUOTES = "'\"`"


class AllowlistError(ValueError):
    """An allowlist that must not be written."""


def _reason(entry, in_list):
    """Return why ``entry`` (already stripped) is not an acceptable address, or None."""
    if not entry:
        return 'empty entry'
    if any(ord(c) < 32 or ord(c) == 127 for c in entry):
        return 'contains a control character'
    if any(c in _QUOTES for c in entry):
        return ('quotes are not allowed (oauth2-proxy would fail to parse the file '
                'and silently keep its old list)')
    if in_list and ',' in entry:
        return 'contains a comma (give one address per list item)'
    if any(c.isspace() for c in entry):
        return 'contains whitespace (give one address per list item)'
    if '*' in entry or entry.startswith('@'):
        return ('wildcards are not allowed (oauth2-proxy compares whole addresses, '
                'so this would let nobody in; list each address)')
    if '#' in entry:
        return "contains '#', which starts a comment in the emails file"
    if entry.count('@') != 1:
        return "not an email address (needs exactly one '@')"
    local, domain = entry.split('@')
    if not domain:
        return 'empty domain'
    if len(local) > 64:
        return 'local part longer than 64 characters'
    if not _LOCAL_CHARS.fullmatch(local):
        return 'invalid character in local part %r' % local
    if local.startswith('.') or local.endswith('.') or '..' in local:
        return 'local part has an empty dot-separated part'
    return domain_reason(domain) or (
        'address longer than 254 characters' if len(entry) > 254 else None)


def domain_reason(domain):
    """Return why ``domain`` is not a plain ASCII domain name, or None.

    The ASCII check comes before lowercasing: str.lower() folds some non-ASCII characters to
    ASCII letters (the Kelvin sign U+212A becomes 'k'), which would let a look-alike domain
    through as a different, valid one.
    """
    if not domain.isascii():
        return ('domain %r is not ASCII: give it in punycode, the xn-- form its DNS name has'
                % domain)
    domain = domain.lower()
    if len(domain) > 253:
        return 'domain longer than 253 characters'
    if '.' not in domain:
        return 'domain %r has no dot' % domain
    for label in domain.split('.'):
        if not label:
            return 'domain %r has an empty label' % domain
        if not _LABEL.fullmatch(label):
            return 'invalid character in domain %r' % domain
        if label.startswith('-') or label.endswith('-'):
            return 'domain label %r starts or ends with a hyphen' % label
        if len(label) > 63:
            return 'domain label %r longer than 63 characters' % label
    return None


def _entries(value):
    """Split ``value`` into (entry, is_list_item) pairs."""
    if isinstance(value, str):
        tokens = []
        for line in value.splitlines():
            line = line.split('#', 1)[0]
            tokens.extend(t for t in _SEPARATORS.split(line) if t)
        return [(t, False) for t in tokens]
    if isinstance(value, (list, tuple)):
        return [(item, True) for item in value]
    raise AllowlistError('the allowlist must be a list of addresses or a comma separated string, '
                         'not %s' % type(value).__name__)


def _normalize_domains(domains):
    if domains is None:
        return None
    if isinstance(domains, str) or not isinstance(domains, (list, tuple)):
        raise AllowlistError('domains must be a list of domain names, not %s' % type(domains).__name__)
    result = []
    for domain in domains:
        if not isinstance(domain, str):
            raise AllowlistError('domains must be a list of domain names, found %r (%s)'
                                 % (domain, type(domain).__name__))
        domain = domain.strip()
        reason = domain_reason(domain)
        if reason:
            raise AllowlistError('invalid entry in domains: %s' % reason)
        result.append(domain.lower())
    return sorted(set(result))


def parse_allowlist(value, domains=None, allow_empty=False):
    """Return the sorted, lowercased, unique addresses in ``value``.

    ``value`` is a list of addresses, or a string in the seed's ``OAUTH2_PROXY_ALLOWED_EMAILS``
    format (commas, whitespace and newlines separate; ``#`` comments to end of line).
    Raises AllowlistError naming every bad entry, or when the result is empty and not
    ``allow_empty``.
    """
    allowed_domains = _normalize_domains(domains)
    emails = set()
    errors = []
    for position, (entry, in_list) in enumerate(_entries(value), start=1):
        if not isinstance(entry, str):
            errors.append('#%d %r: not a string (%s)' % (position, entry, type(entry).__name__))
            continue
        entry = entry.strip()
        reason = _reason(entry, in_list)
        email = entry.lower()
        if reason is None and allowed_domains is not None:
            if email.split('@')[1] not in allowed_domains:
                reason = 'not in allowed domains %s' % allowed_domains
        if reason:
            errors.append('#%d %r: %s' % (position, entry, reason))
        else:
            emails.add(email)
    if errors:
        raise AllowlistError('invalid allowlist %s: %s' % (
            'entry' if len(errors) == 1 else 'entries', '; '.join(errors)))
    if not emails and not allow_empty:
        raise AllowlistError('the allowlist is empty: an empty allowlist lets nobody in; '
                             'pass allow_empty=True if that is what you want')
    return sorted(emails)


def allowlist_diff(old, new):
    """Return ``{'added': [...], 'removed': [...]}`` going from ``old`` to ``new``."""
    old = set(parse_allowlist(old, allow_empty=True))
    new = set(parse_allowlist(new, allow_empty=True))
    return {'added': sorted(new - old), 'removed': sorted(old - new)}


def read_emails_file(text):
    """Return the addresses oauth2-proxy would read from an emails file's ``text``."""
    emails = set()
    for line in text.splitlines():
        # Like Go's encoding/csv, only a '#' in the first column makes a comment.
        if line.startswith('#'):
            continue
        email = line.split(',', 1)[0].strip().lower()
        if email:
            emails.add(email)
    return sorted(emails)


def render_emails_file(emails, header=None):
    """Return the emails file: ``header`` as ``#`` comment lines, then one address per line."""
    lines = []
    if header:
        lines.extend(('# ' + line).rstrip() for line in header.splitlines())
    lines.extend(emails)
    return ''.join(line + '\n' for line in lines)
