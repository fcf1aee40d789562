# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The one result shape of the collection (docs/records.md).

Every module returns ``changed``, ``msg`` and ``records``: one record per thing
looked at or worked on, ``{name, action, status, detail, before, after, seconds}``.
The report callback, the maintenance_report role and the roles' own decisions
read these records and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

STATUSES = ("done", "planned", "unchanged", "skipped", "failed", "ok", "breach", "unknown")
RECORD_KEYS = ("name", "action", "status", "detail", "before", "after", "seconds")
# A record in one of these says the target changed (or, in check mode, would change).
CHANGE_STATUSES = ("done", "planned")
# Never reported as clean: a failure, a breached threshold, a check that could not decide.
PROBLEM_STATUSES = ("failed", "breach", "unknown")
# The window decision every module that consults a window returns under ``window``.
WINDOW_KEYS = ("allowed", "mode", "inside", "now", "name", "start", "end", "seconds_left", "required_seconds",
               "next_start", "next_window", "seconds_until_next", "blackout", "emergency", "reason", "msg")


def make_record(name: Any, action: str, status: str, detail: Any = "", *, before: Mapping[str, Any] | None = None,
                after: Mapping[str, Any] | None = None, seconds: float | None = None) -> dict[str, Any]:
    """One record; ``status`` must be one of STATUSES (a typo here is a bug, so it raises)."""
    if status not in STATUSES:
        raise ValueError(f"record status {status!r} is not one of {', '.join(STATUSES)}")
    return {"name": str(name), "action": str(action), "status": status,
            "detail": "" if detail is None else str(detail),
            "before": dict(before) if before is not None else None,
            "after": dict(after) if after is not None else None,
            "seconds": None if seconds is None else round(float(seconds), 3)}


def is_changed(records: Iterable[Mapping[str, Any]]) -> bool:
    return any(record.get("status") in CHANGE_STATUSES for record in records)


def problems(records: Iterable[Mapping[str, Any]], statuses: Iterable[str] = PROBLEM_STATUSES) -> list[dict[str, Any]]:
    wanted = set(statuses)
    return [dict(record) for record in records if record.get("status") in wanted]


def count_statuses(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return counts


def record_problems(record: Any) -> list[str]:
    """What is wrong with one record's shape (empty when it keeps the contract)."""
    if not isinstance(record, Mapping):
        return [f"record {record!r} is not a dict"]
    found = []
    keys = set(record)
    if keys != set(RECORD_KEYS):
        missing, extra = sorted(set(RECORD_KEYS) - keys), sorted(keys - set(RECORD_KEYS))
        found.append(f"record {record.get('name')!r}: keys differ (missing {missing}, extra {extra})")
    if record.get("status") not in STATUSES:
        found.append(f"record {record.get('name')!r}: status {record.get('status')!r} is not one of {STATUSES}")
    for key in ("name", "action", "detail"):
        if key in record and not isinstance(record[key], str):
            found.append(f"record {record.get('name')!r}: {key} is {type(record[key]).__name__}, not str")
    for key in ("before", "after"):
        if record.get(key) is not None and not isinstance(record[key], Mapping):
            found.append(f"record {record.get('name')!r}: {key} is {type(record[key]).__name__}, not a dict or null")
    seconds = record.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0):
        found.append(f"record {record.get('name')!r}: seconds {seconds!r} is not a non-negative number or null")
    return found


def result_problems(result: Any, *, check_mode: bool = False) -> list[str]:
    """What is wrong with a whole module result's shape (``changed``, ``msg``, ``records``, ``window``)."""
    if not isinstance(result, Mapping):
        return [f"result {result!r} is not a dict"]
    found = []
    for key, kind in (("changed", bool), ("msg", str), ("records", list)):
        if not isinstance(result.get(key), kind):
            found.append(f"result key {key!r} is {type(result.get(key)).__name__}, not {kind.__name__}")
    records = result.get("records") if isinstance(result.get("records"), list) else []
    for record in records:
        found.extend(record_problems(record))
    statuses = {r.get("status") for r in records if isinstance(r, Mapping)}
    if check_mode and "done" in statuses:
        found.append("check mode result has a record with status done (check mode decides, it does not do)")
    if not check_mode and "planned" in statuses and not result.get("failed"):
        found.append("a real run has a record with status planned")
    if isinstance(result.get("changed"), bool) and not result.get("failed") and result["changed"] != is_changed(records):
        found.append(f"changed is {result['changed']} but the records say {is_changed(records)}")
    if "window" in result and result["window"] is not None:
        window = result["window"]
        if not isinstance(window, Mapping) or set(window) != set(WINDOW_KEYS):
            found.append(f"window is not the window decision dict (keys {sorted(window) if isinstance(window, Mapping) else window!r})")
    return found
