# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role prometheus_rules: its defaults and argument specs in step, and its place in site.yml (checked
first with every other role's input, run last). The role itself runs in tests/playbooks."""

from __future__ import annotations

import os

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, 'roles', 'prometheus_rules')


def _yaml(*path):
    with open(os.path.join(*path), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def test_every_default_is_in_the_argument_specs_with_its_value():
    defaults = _yaml(ROLE, 'defaults', 'main.yml')
    specs = _yaml(ROLE, 'meta', 'argument_specs.yml')['argument_specs']
    assert {name: option.get('default') for name, option in specs['main']['options'].items()} == defaults
    assert specs['preflight']['options'] == specs['main']['options']


def test_internal_variables_are_underscored():
    assert all(name.startswith('_prometheus_rules_') for name in _yaml(ROLE, 'vars', 'main.yml'))


def test_site_checks_the_prometheus_servers_first_and_configures_them_last():
    plays = _yaml(REPO, 'playbooks', 'site.yml')
    first, last = plays[0], plays[-1]
    assert 'prometheus' in first['hosts'].split(':')
    preflights = [task for task in first['tasks']
                  if task.get('ansible.builtin.include_role', {}).get('name') == 'alcf.mlflow_globus.prometheus_rules']
    assert len(preflights) == 1
    assert preflights[0]['ansible.builtin.include_role']['tasks_from'] == 'preflight'
    assert preflights[0]['when'] == "'prometheus' in group_names"
    assert last['hosts'] == 'prometheus'
    assert last['roles'] == [{'role': 'alcf.mlflow_globus.prometheus_rules'}]
    assert last['gather_facts'] is False
