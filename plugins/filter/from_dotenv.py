# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: from_dotenv.yml beside this file.

"""Read a shell-style ``.env`` file (the seed checklist's ``server/.env``) into a dict.

Values are often secrets, so no error message here ever quotes a value: errors name the line
number and the variable only.
"""

from __future__ import annotations

import re
import typing as t

from ansible.errors import AnsibleFilterError

_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_ASSIGNMENT = re.compile(r'[ \t]*(?:export[ \t]+)?(?P<name>[^=\s]+)[ \t]*=[ \t]*')
_EXPORT_ONLY = re.compile(r'[ \t]*export[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*(?:#.*)?')
_REFERENCE = re.compile(r'\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}'
                        r'|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))')
# Characters a backslash escapes inside double quotes (bash); other backslashes stay literal.
_DQ_ESCAPES = '\\"$`'


class DotenvError(ValueError):
    """A line the reader cannot take as KEY=VALUE."""


class _Reader:
    """One pass over the text: ``pos`` moves forward, ``line`` follows it."""

    def __init__(self, text: str, expand: bool) -> None:
        self.text = text
        self.expand = expand
        self.pos = 0
        self.line = 1
        self.values: dict[str, str] = {}

    def _peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ''

    def _advance(self, count: int = 1) -> str:
        chunk = self.text[self.pos:self.pos + count]
        self.line += chunk.count('\n')
        self.pos += count
        return chunk

    def _skip_rest_of_line(self) -> None:
        end = self.text.find('\n', self.pos)
        self._advance((len(self.text) if end < 0 else end + 1) - self.pos)

    def _expansion(self, name: str, start_line: int) -> str:
        """Return ``$...`` at ``pos`` expanded (``pos`` is on the ``$``)."""
        if self._peek(1) == '(':
            raise DotenvError('line %d: %s: command substitution is not supported; write the value out'
                              % (start_line, name))
        if not self.expand:
            return self._advance()
        match = _REFERENCE.match(self.text, self.pos)
        if not match:
            if self._peek(1) == '{':
                raise DotenvError('line %d: %s: unsupported ${...} form (only ${NAME} and ${NAME:-default} '
                                  'are understood); quote the value with single quotes if the $ is literal'
                                  % (start_line, name))
            return self._advance()  # a lone '$' is literal, as in bash
        self._advance(len(match.group(0)))
        ref = match.group('braced') or match.group('plain')
        if ref in self.values:
            return self.values[ref]
        if match.group('default') is not None:
            return match.group('default')
        # The referenced name could be part of a secret, so it is not quoted.
        raise DotenvError('line %d: %s: refers to a variable that is not set earlier in this file '
                          '(the environment is not consulted); write the value out, or quote it with '
                          'single quotes if the $ is literal' % (start_line, name))

    def _single_quoted(self, name: str, start_line: int) -> str:
        end = self.text.find("'", self.pos + 1)
        if end < 0:
            raise DotenvError("line %d: %s: the single quote opened here is never closed" % (start_line, name))
        self._advance()
        value = self._advance(end - self.pos)
        self._advance()
        return value

    def _double_quoted(self, name: str, start_line: int) -> str:
        # Find the closing quote first, so that an unclosed one is reported as such rather than
        # as whatever the following lines happen to contain.
        index = self.pos + 1
        while index < len(self.text) and self.text[index] != '"':
            index += 2 if self.text[index] == '\\' else 1
        if index >= len(self.text):
            raise DotenvError('line %d: %s: the double quote opened here is never closed' % (start_line, name))
        self._advance()
        parts = []
        while True:
            char = self._peek()
            if char == '"':
                self._advance()
                return ''.join(parts)
            if char == '\\' and self._peek(1) == '\n':
                self._advance(2)  # line continuation
            elif char == '\\' and self._peek(1) in _DQ_ESCAPES and self._peek(1):
                self._advance()
                parts.append(self._advance())
            elif char == '$':
                parts.append(self._expansion(name, start_line))
            elif char == '`':
                raise DotenvError('line %d: %s: command substitution (`...`) is not supported; write the '
                                  'value out' % (start_line, name))
            else:
                parts.append(self._advance())

    def _value(self, name: str, start_line: int) -> str:
        """Read the value at ``pos`` up to the end of its line or a comment."""
        parts = []
        pending_space = ''
        while True:
            char = self._peek()
            if char in ('', '\n'):
                self._skip_rest_of_line()
                return ''.join(parts)
            if char in ' \t':
                pending_space += self._advance()
                continue
            if char == '#' and (pending_space or not parts):
                self._skip_rest_of_line()  # a '#' that starts a word starts a comment
                return ''.join(parts)
            parts.append(pending_space)
            pending_space = ''
            if char == "'":
                parts.append(self._single_quoted(name, start_line))
            elif char == '"':
                parts.append(self._double_quoted(name, start_line))
            elif char == '$':
                parts.append(self._expansion(name, start_line))
            elif char == '\\' and self._peek(1) == '\n':
                self._advance(2)  # line continuation
            elif char == '\\' and self._peek(1):
                self._advance()
                parts.append(self._advance())
            elif char == '`':
                raise DotenvError('line %d: %s: command substitution (`...`) is not supported; write the '
                                  'value out' % (start_line, name))
            else:
                parts.append(self._advance())

    def read(self) -> dict[str, str]:
        errors = []
        while self.pos < len(self.text):
            start_line = self.line
            end = self.text.find('\n', self.pos)
            line = self.text[self.pos:len(self.text) if end < 0 else end].rstrip('\r')
            if not line.strip() or line.lstrip().startswith('#') or _EXPORT_ONLY.fullmatch(line):
                self._skip_rest_of_line()
                continue
            match = _ASSIGNMENT.match(line)
            if not match:
                errors.append('line %d: not a KEY=VALUE assignment' % start_line)
                self._skip_rest_of_line()
                continue
            name = match.group('name')
            if not _NAME.fullmatch(name):
                # Not quoted: a line that is not an assignment may be a stray piece of a secret.
                errors.append('line %d: the text before = is not a variable name (letters, digits and _, '
                              'not starting with a digit)' % start_line)
                self._skip_rest_of_line()
                continue
            self._advance(match.end())
            try:
                self.values[name] = self._value(name, start_line)
            except DotenvError as exc:
                errors.append(str(exc))
                # Resume after the line the error was found on (an unclosed quote: after its line).
                self.pos, self.line = (len(self.text) if end < 0 else end + 1), start_line + 1
        if errors:
            plural = '' if len(errors) == 1 else 's'
            raise DotenvError('cannot read %d line%s: %s' % (len(errors), plural, '; '.join(errors)))
        return self.values


def parse_dotenv(text: str, expand: bool = True) -> dict[str, str]:
    """Return the variables a shell-style ``.env`` ``text`` sets, in file order (last one wins)."""
    if not isinstance(text, str):
        raise DotenvError('from_dotenv expects the text of a .env file, not %s' % type(text).__name__)
    return _Reader(text.replace('\r\n', '\n'), expand).read()


def from_dotenv(text: t.Any, expand: bool = True) -> dict[str, str]:
    try:
        return parse_dotenv(text, expand=expand)
    except DotenvError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'from_dotenv': from_dotenv}
