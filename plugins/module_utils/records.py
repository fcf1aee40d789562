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
    said = is_changed(r for r in records if isinstance(r, Mapping))  # a non-dict record is reported above
    if isinstance(result.get("changed"), bool) and not result.get("failed") and result["changed"] != said:
        found.append(f"changed is {result['changed']} but the records say {said}")
    if "window" in result and result["window"] is not None:
        window = result["window"]
        if not isinstance(window, Mapping) or set(window) != set(WINDOW_KEYS):
            found.append(f"window is not the window decision dict (keys {sorted(window) if isinstance(window, Mapping) else window!r})")
    return found


# --------------------------------------------------------------------------- in roles (through the filters)


def gather_records(results: Any, *, name: str | None = None) -> list[dict[str, Any]]:
    """The records of registered task results: one result, a looped one, or a list of them.

    A skipped task has none. A failed task keeps the records it returned, plus a ``failed`` record
    with its message when none of them says what went wrong (a connection refused before any record).
    """
    if results is None:
        return []
    if isinstance(results, (list, tuple)):
        return [record for result in results for record in gather_records(result, name=name)]
    if not isinstance(results, Mapping):
        raise TypeError(f"expected a registered task result (dict) or a list of them, got {type(results).__name__}")
    if set(RECORD_KEYS) <= set(results):
        return [dict(results)]  # already a record
    if isinstance(results.get("results"), list) and "records" not in results:
        return [record for result in results["results"] for record in gather_records(result, name=name)]
    if results.get("skipped"):
        return []
    found = [dict(record) for record in results.get("records") or []]
    item = results.get("item") if isinstance(results.get("item"), (str, int)) else None
    label = " ".join(str(part) for part in (name, item) if part not in (None, "")) or "task"
    if results.get("failed") and not any(record.get("status") in PROBLEM_STATUSES for record in found):
        detail = str(results.get("msg") or "failed")
        stderr = str(results.get("stderr") or "").strip()
        if stderr:
            detail += ": " + stderr[-300:]
        found.append(make_record(label, "run", "failed", detail))
    elif results.get("changed") and not found:
        # A changed task that keeps no records of its own (a command): what it ran.
        command = results.get("cmd")
        ran = " ".join(map(str, command)) if isinstance(command, list) else str(command or results.get("msg") or "")
        output = " ".join(str(results.get(key) or "").strip() for key in ("stderr", "stdout")).strip()
        found.append(make_record(label, "run", "done", ran + (f": {output[-200:]}" if output else ""),
                                 seconds=_delta_seconds(results.get("delta"))))
    return found


def _delta_seconds(delta: Any) -> float | None:
    """The command module's ``delta`` (H:MM:SS.ffffff) in seconds."""
    try:
        hours, minutes, seconds = str(delta).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (TypeError, ValueError):
        return None


def problems_text(records: Iterable[Mapping[str, Any]], what: str,
                  statuses: Iterable[str] = PROBLEM_STATUSES) -> str:
    """``N <what>: name, name. name: detail; name: detail`` for the records with a problem status."""
    found = problems(records, statuses)
    if not found:
        return ""
    names = ", ".join(record["name"] for record in found)
    details = "; ".join(f"{record['name']}: {record['detail']}" for record in found)
    return f"{len(found)} {what}: {names}. {details}"


def _figure(key: str, value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if key.endswith("bytes") or key in ("used_memory", "size"):
        return human_bytes(value)
    if key.endswith("ratio") or key.endswith("percent"):
        return f"{value:.1%}" if key.endswith("ratio") else f"{value:g}%"
    return f"{value:g}" if isinstance(value, float) else str(value)


def human_bytes(value: float | None) -> str:
    """``50.0 MB`` (binary multiples); ``?`` for a size that could not be measured."""
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - the loop returns at TB


def compare_records(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]], *,
                    check_mode: bool = False, keys: Iterable[str] | None = None,
                    action: str | None = None) -> list[dict[str, Any]]:
    """One ``summary`` record per thing measured twice (same name and action): its figures before -> after.

    ``before`` and ``after`` are the records of the same measurement taken before and after the work
    (their ``after`` dicts hold the figures). Only numeric figures are compared; ``keys`` limits them,
    ``action`` limits the records compared to that action.
    A measurement that failed on either side gives an ``unknown`` summary: nothing is claimed.
    """
    if isinstance(keys, str):
        keys = [keys]
    earlier = {(r["name"], r["action"]): r for r in before}
    summaries = []
    for record in after:
        if action is not None and record["action"] != action:
            continue
        first = earlier.get((record["name"], record["action"]))
        if first is None:
            continue
        if first["status"] == "failed" or record["status"] == "failed":
            summaries.append(make_record(record["name"], "summary", "unknown",
                                         "not measured both before and after: "
                                         + (first["detail"] if first["status"] == "failed" else record["detail"])))
            continue
        figures_before, figures_after = first.get("after") or {}, record.get("after") or {}
        wanted = list(keys) if keys is not None else [
            key for key, value in figures_after.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key in figures_before]
        parts = [f"{key.replace('_', ' ')} {_figure(key, figures_before.get(key))} -> {_figure(key, figures_after.get(key))}"
                 for key in wanted]
        detail = "; ".join(parts) + (" (check mode: nothing was changed)" if check_mode else "")
        summaries.append(make_record(record["name"], "summary", "ok", detail,
                                     before={key: figures_before.get(key) for key in wanted},
                                     after={key: figures_after.get(key) for key in wanted}))
    return summaries
