# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.alcf.mlflow_globus.plugins.modules.authenticated_emails import DEFAULT_HEADER, main
from ansible_collections.alcf.mlflow_globus.tests.unit.plugins.modules.utils import run_module

SEED = 'huihuo.zheng@anl.gov, Venkat@anl.gov,turam@anl.gov'
CONTENT = '# %s\nhuihuo.zheng@anl.gov\nturam@anl.gov\nvenkat@anl.gov\n' % DEFAULT_HEADER


@pytest.fixture
def path(tmp_path):
    return tmp_path / 'emails.txt'


def emails_args(path, emails, **options):
    return dict(options, path=str(path), emails=emails)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_file_then_is_idempotent(path):
    failed, result = run_module(main, emails_args(path, SEED))
    assert not failed
    assert result['changed'] is True
    assert path.read_text() == CONTENT
    assert mode_of(path) == 0o640
    assert result['emails'] == ['huihuo.zheng@anl.gov', 'turam@anl.gov', 'venkat@anl.gov']
    assert result['added'] == result['emails']
    assert result['removed'] == []
    assert result['count'] == 3
    assert result['path'] == str(path)
    assert 'diff' not in result
    assert [p.name for p in path.parent.iterdir()] == ['emails.txt']  # no temporary file left over

    inode = os.stat(path).st_ino
    same = ['Venkat@anl.gov', 'turam@anl.gov', 'huihuo.zheng@anl.gov', 'TURAM@anl.gov']
    failed, result = run_module(main, emails_args(path, same))
    assert (failed, result['changed'], result['added'], result['removed']) == (False, False, [], [])
    assert os.stat(path).st_ino == inode


def test_added_removed_against_what_is_on_disk(path):
    path.write_text('# written by hand\nold@anl.gov,extra\nVenkat@anl.gov\n')
    failed, result = run_module(main, emails_args(path, ['venkat@anl.gov', 'new@anl.gov']))
    assert not failed and result['changed']
    assert result['added'] == ['new@anl.gov']
    assert result['removed'] == ['old@anl.gov']
    assert path.read_text() == '# %s\nnew@anl.gov\nvenkat@anl.gov\n' % DEFAULT_HEADER


def test_header_only_change_is_a_change(path):
    run_module(main, emails_args(path, SEED))
    failed, result = run_module(main, emails_args(path, SEED, header='Line one\nLine two'))
    assert not failed and result['changed']
    assert (result['added'], result['removed']) == ([], [])
    assert path.read_text().startswith('# Line one\n# Line two\nhuihuo.zheng@anl.gov\n')
    failed, result = run_module(main, emails_args(path, SEED, header=''))
    assert path.read_text() == 'huihuo.zheng@anl.gov\nturam@anl.gov\nvenkat@anl.gov\n'


def test_mode_only_change_is_reported_and_applied(path):
    run_module(main, emails_args(path, SEED))
    failed, result = run_module(main, emails_args(path, SEED, mode='0600'), check_mode=True)
    assert not failed and result['changed']
    assert mode_of(path) == 0o640
    failed, result = run_module(main, emails_args(path, SEED, mode='0600'))
    assert not failed and result['changed']
    assert mode_of(path) == 0o600
    failed, result = run_module(main, emails_args(path, SEED, mode='0600'))
    assert not failed and not result['changed']


@pytest.mark.skipif(os.geteuid() != 0, reason='giving a file to another owner needs root')
def test_owner_and_group_kept_unless_given(path):
    path.write_text('old@anl.gov\n')
    os.chown(path, 65534, 65534)
    failed, result = run_module(main, emails_args(path, SEED))
    assert not failed and result['changed']
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (65534, 65534)
    failed, result = run_module(main, emails_args(path, SEED, owner='0', group='0'))
    assert not failed and result['changed']
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (0, 0)


def test_replaced_by_rename_never_truncated(path, tmp_path):
    run_module(main, emails_args(path, 'a@anl.gov'))
    old_inode = os.stat(path).st_ino
    hardlink = tmp_path / 'old-inode'
    os.link(path, hardlink)
    failed, result = run_module(main, emails_args(path, 'b@anl.gov'))
    assert not failed and result['changed']
    assert os.stat(path).st_ino != old_inode
    assert hardlink.read_text() == '# %s\na@anl.gov\n' % DEFAULT_HEADER
    assert path.read_text() == '# %s\nb@anl.gov\n' % DEFAULT_HEADER


def test_check_mode_writes_nothing(path):
    failed, result = run_module(main, emails_args(path, SEED), check_mode=True)
    assert not failed and result['changed']
    assert result['added'] == ['huihuo.zheng@anl.gov', 'turam@anl.gov', 'venkat@anl.gov']
    assert not path.exists()

    path.write_text('keep@anl.gov\n')
    failed, result = run_module(main, emails_args(path, SEED), check_mode=True, diff=True)
    assert not failed and result['changed']
    assert result['removed'] == ['keep@anl.gov']
    assert result['diff']['after'] == CONTENT
    assert path.read_text() == 'keep@anl.gov\n'


@pytest.mark.parametrize('existing, before', [(None, ''), ('x@anl.gov\n', 'x@anl.gov\n')])
def test_diff_only_in_diff_mode(path, existing, before):
    if existing is not None:
        path.write_text(existing)
    failed, result = run_module(main, emails_args(path, SEED), diff=True)
    assert not failed
    assert result['diff'] == {'before': before, 'after': CONTENT,
                              'before_header': str(path), 'after_header': str(path)}
    failed, result = run_module(main, emails_args(path, SEED))
    assert 'diff' not in result


@pytest.mark.parametrize('emails', [[], '', '# nobody\n'])
def test_empty_refused_unless_allowed(path, emails):
    path.write_text('keep@anl.gov\n')
    failed, result = run_module(main, emails_args(path, emails))
    assert failed
    assert result['msg'] == ('the allowlist is empty: an empty allowlist lets nobody in; '
                             'pass allow_empty=True if that is what you want')
    assert path.read_text() == 'keep@anl.gov\n'

    failed, result = run_module(main, emails_args(path, emails, allow_empty=True))
    assert not failed and result['changed']
    assert (result['emails'], result['count'], result['removed']) == ([], 0, ['keep@anl.gov'])
    assert path.read_text() == '# %s\n' % DEFAULT_HEADER


@pytest.mark.parametrize('emails, options, msg', [
    ('a@anl.gov, *@anl.gov, bob', {},
     "invalid allowlist entries: #2 '*@anl.gov': wildcards are not allowed (oauth2-proxy compares whole "
     "addresses, so this would let nobody in; list each address); #3 'bob': not an email address "
     "(needs exactly one '@')"),
    (['a@anl.gov', 'b@anl.gov,c@anl.gov', 7], {},
     "invalid allowlist entries: #2 'b@anl.gov,c@anl.gov': contains a comma (give one address per list item); "
     "#3 7: not a string (int)"),
    (['a@gmail.com'], {'domains': ['anl.gov']},
     "invalid allowlist entry: #1 'a@gmail.com': not in allowed domains ['anl.gov']"),
    ({'a@anl.gov': True}, {}, 'the allowlist must be a list of addresses or a comma separated string, not dict'),
])
def test_bad_input_fails_before_touching_the_file(path, emails, options, msg):
    path.write_text('keep@anl.gov\n')
    os.chmod(path, 0o644)
    failed, result = run_module(main, emails_args(path, emails, **options))
    assert failed
    assert result['msg'] == msg
    assert path.read_text() == 'keep@anl.gov\n'
    assert mode_of(path) == 0o644


def test_missing_directory(tmp_path, capfd):
    path = tmp_path / 'missing' / 'emails.txt'
    failed, result = run_module(main, emails_args(path, SEED))
    assert failed
    assert result['msg'] == 'directory %s does not exist; create it before writing %s' % (path.parent, path)
    failed, result = run_module(main, emails_args(path, SEED), check_mode=True)
    assert not failed and result['changed']
    # Once controller code is imported (as here) module warnings go to the display, not the result.
    warnings = json.dumps(result.get('warnings', [])) + capfd.readouterr().err
    assert 'directory %s does not exist (yet); a real run needs it' % path.parent in warnings
    assert not path.parent.exists()


def test_path_is_a_directory(tmp_path):
    failed, result = run_module(main, emails_args(tmp_path, SEED))
    assert failed
    assert result['msg'] == '%s is a directory, not a file' % tmp_path
