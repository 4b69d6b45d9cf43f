# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Documentation: prometheus_file_sd.yml beside this file.

"""The site's Prometheus file_sd files: one per scrape job of the collection's exporters.

The targets themselves are ``metrics_targets``' (one derivation of which host serves which exporter
where); this splits them by job and gives every job a list, empty when its exporter is off
everywhere, so that the job's file is written then too and Prometheus drops its old targets.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.metrics import metrics_targets
from ansible_collections.alcf.mlflow_globus.plugins.module_utils.service_facts import EXPORTERS


def prometheus_file_sd(groups: t.Any, hostvars: t.Any) -> dict[str, list[dict[str, t.Any]]]:
    """Every scrape job of EXPORTERS, in its order, with its file_sd target groups."""
    jobs: dict[str, list[dict[str, t.Any]]] = {facts['job']: [] for facts in EXPORTERS.values()}
    for group in metrics_targets(groups, hostvars):
        job = (group.get('labels') or {}).get('job')
        if job not in jobs:  # metrics_targets and EXPORTERS disagree: a bug, not an input error
            raise AnsibleFilterError('prometheus_file_sd: target group %r names no scrape job of %s'
                                     % (group, ', '.join(jobs)))
        jobs[job].append(group)
    return jobs


class FilterModule:
    """The site's Prometheus file_sd files."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'prometheus_file_sd': prometheus_file_sd}
