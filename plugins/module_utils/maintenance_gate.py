# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The pre-maintenance gate: the window decision, an emergency approval, and the guides' checklist.

maintenance_window's logic: every playbook starts with it. The window itself is decided by window.py;
this adds what the guides ask before any change (a verified backup young enough, a rollback plan)
and turns it into records (docs/records.md).
"""

from __future__ import annotations

import os
import time
from typing import Any

from .backup_set import VERIFIED
from .errors import WindowClosedError, WindowError
from .records import make_record
from .window import guard_from_params, parse_duration, required_time


def run_maintenance_window(params: dict[str, Any], *, check_mode: bool = False, diff_mode: bool = False) -> dict[str, Any]:
    """The decision and the pre-maintenance checklist as records; under O(enforce) a refusal raises with them."""
    if params["require_emergency"]:
        require_complete_approval(params.get("emergency"))
    guard = guard_from_params(params)
    required = required_time(cutoff=params["cutoff"], estimated_duration=params["estimated_duration"])
    status = guard.status(required)
    decision = status.decision()
    name = f"window {params['window']}" if params.get("window") else "window"
    after = {key: decision[key] for key in ("mode", "start", "end", "seconds_left")}
    if status.allowed:
        records = [make_record(name, "window", "ok", status.msg, after=after)]
    elif params["enforce"]:
        records = [make_record(name, "window", "breach", status.msg, after=after)]
    else:
        records = [make_record(name, "window", "ok", f"not enforced: {status.msg}", after=after)]
    records += checklist_records(params)
    result = {"changed": False, "msg": status.msg, "records": records, "window": decision,
              "windows": [report.as_dict() for report in status.windows]}
    breached = [r for r in records if r["status"] == "breach"]
    if breached and params["enforce"]:
        if not status.allowed:
            raise WindowClosedError(**result)
        result["msg"] = "pre-maintenance checklist not met: " + "; ".join(f"{r['name']}: {r['detail']}" for r in breached)
        raise WindowError(**result)
    return result


def require_complete_approval(emergency: dict[str, Any] | None) -> None:
    missing = [key for key in ("approved_by", "reason", "ticket") if not str((emergency or {}).get(key) or "").strip()]
    if missing:
        raise WindowError(msg=f"this run needs an emergency approval: set emergency (maintenance_window_emergency) with "
                              f"approved_by, reason and ticket; missing: {', '.join(missing)}")


def checklist_records(params: dict[str, Any], now: float | None = None) -> list[dict[str, Any]]:
    """The guides' pre-maintenance checklist: a verified backup young enough, a rollback plan."""
    records = []
    backup = params.get("require_backup")
    if backup:
        max_age = parse_duration(backup["max_age"], field_name="require_backup.max_age")
        marks = verified_marks(backup["root"])
        limit = (now or time.time()) - max_age.total_seconds()
        young = [path for path, mtime in marks if mtime >= limit]
        records.append(make_record(
            "verified backup", "checklist", "ok" if young else "breach",
            f"{len(young)} verified set(s) younger than {backup['max_age']} under {backup['root']}"
            + (f" (newest {os.path.dirname(young[-1])})" if young else ""),
            after={"verified_sets": len(young)}))
    plan = (params.get("rollback_plan") or "").strip()
    if plan or params["require_rollback_plan"]:
        records.append(make_record("rollback plan", "checklist", "ok" if plan else "breach",
                                   plan or "no rollback plan recorded (rollback_plan)"))
    return records


def verified_marks(root: str) -> list[tuple[str, float]]:
    """(path, mtime) of each ``<root>/<set>/verified.json``, oldest first; none when the root does not exist."""
    marks = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        mark = os.path.join(entry.path, VERIFIED)
        if entry.is_dir(follow_symlinks=False) and os.path.isfile(mark):
            marks.append((mark, os.stat(mark).st_mtime))
    return sorted(marks, key=lambda pair: pair[1])
