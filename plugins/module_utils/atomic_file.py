# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Replace a file so that a reader sees the old content or the new, never a part.

Both modules of the collection write files that a running service reads at any moment (oauth2-proxy's
allowlist, nginx's configuration when a change is rolled back): the new content goes into a
temporary file in the same directory, is flushed to disk, gets its mode and owner, and is renamed
over the old one; the directory is flushed too, so the rename survives a crash.
"""

from __future__ import annotations

import os
import tempfile

__all__ = ['replace_file']


def replace_file(path, write, like=None, prepare=None):
    """Put a new file at ``path``.

    ``write(tmp)`` fills the temporary file ``tmp``. If ``like`` names an existing file, the new file
    gets its mode (and, as root, its owner). ``prepare(tmp)`` may then set more (attributes), just
    before the rename. The temporary file is removed if anything fails.
    """
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, 'rb+') as written:
            os.fsync(written.fileno())
        if like and os.path.exists(like):
            old = os.stat(like)
            os.chmod(tmp, old.st_mode & 0o7777)
            if os.geteuid() == 0:
                os.chown(tmp, old.st_uid, old.st_gid)
        if prepare:
            prepare(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
