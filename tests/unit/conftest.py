# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make this checkout importable as ``ansible_collections.alcf.mlflow_globus``.

The repository root is the collection root, so a link under the gitignored ``.ansible/`` (the
layout ansible-lint uses too) gives Python the ``ansible_collections/<ns>/<name>`` path it needs.
This runs at import time because the test modules import the collection when they are collected.
Under ``ansible-test units`` the collection is already importable and nothing is done.
"""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, '.ansible', 'collections')


def _link_collection():
    namespace = os.path.join(COLLECTIONS, 'ansible_collections', 'alcf')
    link = os.path.join(namespace, 'mlflow_globus')
    os.makedirs(namespace, exist_ok=True)
    if not os.path.lexists(link):
        try:
            os.symlink(os.path.join('..', '..', '..', '..'), link)
        except FileExistsError:
            pass  # another test process made it first
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


if os.path.basename(os.path.dirname(REPO)) != 'alcf' or \
        os.path.basename(os.path.dirname(os.path.dirname(REPO))) != 'ansible_collections':
    _link_collection()
