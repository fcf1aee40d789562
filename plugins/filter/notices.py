# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the notify role: the maintenance notices from every play host's records, and the Maintenance ID.

The notices are built in plugins/module_utils/maintenance_plan.py and unit-tested there; these functions only read
the hosts' variables. Each filter has its documentation in the YAML file of its name beside this one.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.streamops.maintenance.plugins.module_utils import maintenance_plan
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError


def maintenance_notice(hostvars: Any, hosts: Iterable[str], check_mode: bool = False, failed_hosts: Any = None,
                       estate: str = "", schedule: str = "", maintenance_id: str = "", report_dir: str | None = None,
                       bytes_per_second: Any = maintenance_plan.DEFAULT_BYTES_PER_SECOND) -> dict[str, Any]:
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError(f"maintenance_notice expects hostvars, got {type(hostvars).__name__}")
    if isinstance(hosts, str):
        hosts = [hosts]
    try:
        facts = {str(host): maintenance_plan.host_facts(hostvars[host]) for host in hosts}
        return maintenance_plan.notice(facts, check_mode=bool(check_mode), failed_hosts=list(failed_hosts or []),
                                       estate=str(estate or ""), schedule=str(schedule or ""),
                                       maintenance_id=str(maintenance_id or ""), report_dir=report_dir or None,
                                       bytes_per_second=bytes_per_second)
    except MaintenanceError as exc:
        raise AnsibleFilterError(f"maintenance_notice: {exc.msg}") from exc


def maintenance_id(now: Any) -> str:
    if not isinstance(now, datetime):
        raise AnsibleFilterError(f"maintenance_id expects a date and time (now()), got {type(now).__name__}")
    return maintenance_plan.new_maintenance_id(now)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"maintenance_notice": maintenance_notice, "maintenance_id": maintenance_id}
