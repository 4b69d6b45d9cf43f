# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.alcf.mlflow_globus.plugins.module_utils.atomic_file import replace_file


def write_text(text):
    def write(tmp):
        with open(tmp, 'w', encoding='utf-8') as handle:
            handle.write(text)
    return write


def test_new_file_gets_the_content(tmp_path):
    path = tmp_path / 'new.conf'
    replace_file(str(path), write_text('new\n'))
    assert path.read_text() == 'new\n'
    assert os.listdir(tmp_path) == ['new.conf']


def test_replacing_keeps_the_mode_of_the_file_it_is_like(tmp_path):
    path = tmp_path / 'allowlist'
    path.write_text('old\n')
    os.chmod(path, 0o640)
    old_inode = os.stat(path).st_ino
    replace_file(str(path), write_text('new\n'), like=str(path))
    assert path.read_text() == 'new\n'
    assert os.stat(path).st_mode & 0o7777 == 0o640
    assert os.stat(path).st_ino != old_inode  # renamed over, not written in place


def test_prepare_sees_the_finished_temporary_file(tmp_path):
    path = tmp_path / 'f'
    seen = []
    replace_file(str(path), write_text('x'), prepare=lambda tmp: seen.append(open(tmp, encoding='utf-8').read()))
    assert seen == ['x']


@pytest.mark.parametrize('stage', ['write', 'prepare'])
def test_a_failure_leaves_the_old_file_and_no_temporary_file(tmp_path, stage):
    path = tmp_path / 'site.conf'
    path.write_text('old\n')

    def fail(tmp):
        raise OSError('disk full at %s' % stage)

    with pytest.raises(OSError, match='disk full at %s' % stage):
        if stage == 'write':
            replace_file(str(path), fail)
        else:
            replace_file(str(path), write_text('new\n'), prepare=fail)
    assert path.read_text() == 'old\n'
    assert os.listdir(tmp_path) == ['site.conf']
