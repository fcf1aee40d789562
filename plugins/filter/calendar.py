# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the quarterly checklist: this quarter's items of the maintenance calendar, and the checklist with them.

The decisions are in plugins/module_utils/maintenance_calendar.py and unit-tested there; these functions only
find the collection's roles and turn its errors into filter errors. Each filter has its documentation in the YAML
file of its name beside this one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.streamops.maintenance.plugins.module_utils import maintenance_calendar
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError

# The collection's roles, beside plugins/: a calendar step must be one of them.
ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


def calendar_steps(calendar: Any, now: Any = None, timezone: Any = "UTC") -> dict[str, Any]:
    try:
        return maintenance_calendar.calendar_steps(calendar, now if now not in (None, "") else None,
                                                   str(timezone or "UTC"),
                                                   known=maintenance_calendar.known_steps(ROLES_DIR))
    except MaintenanceError as exc:
        raise AnsibleFilterError(f"calendar_steps: {exc.msg}") from exc


def calendar_checklist(steps: Any, plan: Any = None) -> list[str]:
    if isinstance(steps, str) or not isinstance(steps, (list, tuple)):
        raise AnsibleFilterError(f"calendar_checklist expects the checklist's list of steps, got {steps!r}")
    if plan not in (None, "") and not isinstance(plan, dict):
        raise AnsibleFilterError(f"calendar_checklist expects the calendar_steps result, got {plan!r}")
    return maintenance_calendar.checklist_with_calendar(steps, plan or None)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"calendar_steps": calendar_steps, "calendar_checklist": calendar_checklist}
