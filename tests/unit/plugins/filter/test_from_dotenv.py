# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.from_dotenv import FilterModule, from_dotenv


def test_filter_is_registered():
    assert FilterModule().filters() == {'from_dotenv': from_dotenv}


@pytest.mark.parametrize('text, expected', [
    ('', {}),
    ('\n\n   \n', {}),
    ('# only a comment\n   # an indented one\n', {}),
    ('A=1', {'A': '1'}),
    ('A=1\r\nB=2\r\n', {'A': '1', 'B': '2'}),
    ('  A  =   1   \n', {'A': '1'}),
    ('A\t=\tx y  z\t\n', {'A': 'x y  z'}),
    ('export A=1\nexport\tB = 2\n', {'A': '1', 'B': '2'}),
    ('export A\nA=1\nexport A  # marks it for export only\n', {'A': '1'}),
    ('exporter=1', {'exporter': '1'}),
    ('A=\nB=   \nC=""\nD=\'\'', {'A': '', 'B': '', 'C': '', 'D': ''}),
    ('A=1 # inline comment\nB=2#not-a-comment\nC= # only a comment\n', {'A': '1', 'B': '2#not-a-comment', 'C': ''}),
    ('A="quoted # not a comment"  # a comment', {'A': 'quoted # not a comment'}),
    ("A='single # not a comment' # comment", {'A': 'single # not a comment'}),
    ('A="x,y" \nB=\'x, y\'', {'A': 'x,y', 'B': 'x, y'}),
    ('A="it\'s"\nB=\'say "hi"\'', {'A': "it's", 'B': 'say "hi"'}),
    ('A="a\\"b\\\\c\\$d\\`e\\nf"', {'A': 'a"b\\c$d`e\\nf'}),
    ("A='a\\nb$c'", {'A': 'a\\nb$c'}),
    ('A=a\\ b\\#c', {'A': 'a b#c'}),
    ('A="first\nsecond"\nB=1', {'A': 'first\nsecond', 'B': '1'}),
    ("A='first\n# not a comment\nthird'", {'A': 'first\n# not a comment\nthird'}),
    ('A="line \\\ncontinued"', {'A': 'line continued'}),
    ('A=line\\\ncontinued', {'A': 'linecontinued'}),
    ('A="x"y\'z\'', {'A': 'xyz'}),
    ('A="x" y', {'A': 'x y'}),
    ('A=1\nA=2', {'A': '2'}),
    ('HOST=h\nURL=https://$HOST/x\nB="${HOST}:8080"\nC=\'$HOST\'', {
        'HOST': 'h', 'URL': 'https://h/x', 'B': 'h:8080', 'C': '$HOST'}),
    ('A=${UNSET:-fallback}\nB="${UNSET:-}"', {'A': 'fallback', 'B': ''}),
    ('A=cost $5 and $ and $', {'A': 'cost $5 and $ and $'}),
    ('key_2=x', {'key_2': 'x'}),
])
def test_from_dotenv(text, expected):
    result = from_dotenv(text)
    assert result == expected
    assert list(result) == list(expected)


def test_order_is_the_file_order():
    assert list(from_dotenv('Z=1\nA=2\nM=3\n')) == ['Z', 'A', 'M']


def test_expand_false_keeps_dollars():
    assert from_dotenv('A=1\nB=$A ${UNSET} ${X/y}\nC="$A"', expand=False) == {
        'A': '1', 'B': '$A ${UNSET} ${X/y}', 'C': '$A'}


@pytest.mark.parametrize('text, message', [
    ('JUSTAWORD', 'cannot read 1 line: line 1: not a KEY=VALUE assignment'),
    ('A=1\n= value\n', 'cannot read 1 line: line 2: not a KEY=VALUE assignment'),
    ('1A=x', 'cannot read 1 line: line 1: the text before = is not a variable name '
             '(letters, digits and _, not starting with a digit)'),
    ('A="open\nB=1\n', 'cannot read 1 line: line 1: A: the double quote opened here is never closed'),
    ("A='open", 'cannot read 1 line: line 1: A: the single quote opened here is never closed'),
    ('A="open\nB=$UNSET\n', 'cannot read 2 lines: line 1: A: the double quote opened here is never closed; '
                            'line 2: B: refers to a variable that is not set earlier in this file (the environment '
                            'is not consulted); write the value out, or quote it with single quotes if the $ is literal'),
    ('A="open \\"\n', 'cannot read 1 line: line 1: A: the double quote opened here is never closed'),
    ('A=$(cat /etc/secret)', 'cannot read 1 line: line 1: A: command substitution is not supported; '
                             'write the value out'),
    ('A="`id`"', 'cannot read 1 line: line 1: A: command substitution (`...`) is not supported; '
                 'write the value out'),
    ('A=x\nB=${A/x/y}', 'cannot read 1 line: line 2: B: unsupported ${...} form (only ${NAME} and '
                        '${NAME:-default} are understood); quote the value with single quotes if the $ is literal'),
    ('A=$HOME/x', 'cannot read 1 line: line 1: A: refers to a variable that is not set earlier in this file '
                  '(the environment is not consulted); write the value out, or quote it with single quotes '
                  'if the $ is literal'),
    ('B=1\nJUNK\nC=2\n2X=3\n', 'cannot read 2 lines: line 2: not a KEY=VALUE assignment; line 4: the text '
                               'before = is not a variable name (letters, digits and _, not starting with a digit)'),
])
def test_from_dotenv_errors(text, message):
    with pytest.raises(AnsibleFilterError) as exc:
        from_dotenv(text)
    assert exc.value.message == message


@pytest.mark.parametrize('text', [
    'SECRET=s3cr3t-value\nBROKEN="s3cr3t-value',
    'SECRET=s3cr3t-value$LATER',
    's3cr3t-value',
    's3cr3t-value=x',
    'A=x\n s3cr3t-value ',
])
def test_errors_never_quote_values(text):
    with pytest.raises(AnsibleFilterError) as exc:
        from_dotenv(text)
    assert 's3cr3t' not in exc.value.message
    assert 'LATER' not in exc.value.message


@pytest.mark.parametrize('value', [None, 3, ['A=1'], b'A=1'])
def test_from_dotenv_needs_text(value):
    with pytest.raises(AnsibleFilterError, match='expects the text of a .env file, not'):
        from_dotenv(value)
