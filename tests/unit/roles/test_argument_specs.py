# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every role's defaults/main.yml and meta/argument_specs.yml are in step (the check prometheus.prometheus
runs as lint_arguments_spec.sh): each default is described with the same default, and each described
option with a default is in defaults/main.yml. A required option may keep a placeholder there."""

from __future__ import annotations

import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(name for name in os.listdir(os.path.join(REPO, 'roles'))
               if os.path.exists(os.path.join(REPO, 'roles', name, 'meta', 'argument_specs.yml')))


def _yaml(*path):
    with open(os.path.join(REPO, *path), encoding='utf-8') as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize('role', ROLES)
def test_defaults_and_argument_specs_are_in_step(role):
    defaults = _yaml('roles', role, 'defaults', 'main.yml')
    options = _yaml('roles', role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    assert sorted(set(defaults) - set(options)) == [], 'in defaults/main.yml, not described'
    assert sorted(name for name, spec in options.items() if 'default' in spec and name not in defaults) == []
    assert {name: defaults[name] for name in defaults if 'default' in options[name]} == {
        name: options[name]['default'] for name in defaults if 'default' in options[name]}
    assert all(options[name].get('required') for name in defaults if 'default' not in options[name])
