# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a module's ``main()`` in this process and return its JSON result."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from ansible.module_utils.testing import patch_module_args


def run_module(main, args, check_mode=False, diff=False):
    """Return (failed, result) of ``main()`` called with ``args``, in check and diff mode if asked."""
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit) as exc:
            main()
    result = json.loads(out.getvalue())
    assert bool(exc.value.code) == bool(result.get('failed')), (exc.value.code, result)
    return bool(result.get('failed')), result
