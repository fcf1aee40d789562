# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The two maintenance notices, from a run's records: the PLAN (a check-mode run) and the COMPLETION notice.

Input, per host: the roles' records (the ``<role>_report_records`` facts, docs/records.md), the window decision
(``maintenance_window_status``) and the window settings (``maintenance_window_guard``). Output: ``subject``,
``text`` and ``summary`` (plain JSON types) for the ``maintenance_notify`` module. The completion notice uses
the report's own functions (``host_section``, ``run_summary``), so it says what the report file says.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .errors import MaintenanceError
from .maintenance_report import FAILED, ID_FORMAT, ISSUE_STATUSES, HostLog, finding_line, host_section, plain, run_summary
from .records import human_bytes
from .window import format_duration, guard_from_params, parse_now

RECORDS_SUFFIX = "_report_records"
# The notify role's own records are about the notices, not the maintenance.
OWN_ROLE = "notify"
# The lock each kind of change takes, for records that do not say (pg_maintenance's planned records carry
# after.lock, which wins: it knows REINDEX CONCURRENTLY from REINDEX).
LOCKS = {
    "analyze": "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
    "vacuum": "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
    "vacuum_analyze": "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
    "vacuum_full": "ACCESS EXCLUSIVE (blocks every read and write until done)",
    "reindex": "ACCESS EXCLUSIVE on each index, SHARE on the table (blocks writes)",
    "reindex_concurrently": "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
    "create_index": "SHARE UPDATE EXCLUSIVE (CREATE INDEX CONCURRENTLY; reads and writes go on)",
    "deploy": "none (blue/green switch)",
    "rollback": "none (blue/green switch)",
}
UNKNOWN_LOCK = "see task"
# A rough rate for work whose record carries a size but no estimate (VACUUM FULL rewrites at tens of MB/s on
# the estates' disks); the plan marks such figures as estimates. The role's notify_bytes_per_second sets it.
DEFAULT_BYTES_PER_SECOND = 50 * 1024 * 1024


class NoticeError(MaintenanceError):
    """The input cannot make a notice: not records, a rate that is not a positive number."""


# --------------------------------------------------------------------------- what a host holds


def host_facts(host_vars: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of one host's variables a notice reads: the roles' records, the window decision and settings.

    ``host_vars`` may be Ansible's lazy ``hostvars[host]``: only the keys read here are templated.
    """
    records = {}
    for key in list(host_vars.keys()):
        name = str(key)
        if name.endswith(RECORDS_SUFFIX) and name[:-len(RECORDS_SUFFIX)] != OWN_ROLE:
            value = host_vars[key]
            if isinstance(value, list):
                records[name[:-len(RECORDS_SUFFIX)]] = plain(value)
    window = host_vars["maintenance_window_status"] if "maintenance_window_status" in host_vars else None
    guard = host_vars["maintenance_window_guard"] if "maintenance_window_guard" in host_vars else None
    estate = host_vars["estate"] if "estate" in host_vars else None
    return {"records": records, "window": plain(window) if isinstance(window, Mapping) and window else None,
            "guard": plain(guard) if isinstance(guard, Mapping) and guard else None,
            "estate": str(estate) if isinstance(estate, str) and estate else None}


def estate_of(hosts: Mapping[str, Mapping[str, Any]], estate: str) -> str:
    """The estate named, else the estates of the hosts (a play may cover both)."""
    return estate or ", ".join(sorted({str(data["estate"]) for data in hosts.values() if data.get("estate")})) \
        or "estate"


def entries_of(records_by_role: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    found = []
    for role, records in records_by_role.items():
        for record in records:
            if not isinstance(record, Mapping) or "status" not in record:
                raise NoticeError(msg=f"the {role}{RECORDS_SUFFIX} fact holds {record!r}, not a record (docs/records.md)")
            found.append({"role": role, **record})
    return found


# --------------------------------------------------------------------------- one planned change


def record_bytes(record: Mapping[str, Any]) -> int | None:
    """The size the change works on: ``total_bytes`` or another ``*bytes`` figure, measured before (else after)."""
    for side in ("before", "after"):
        figures = record.get(side)
        if not isinstance(figures, Mapping):
            continue
        keys = ["total_bytes"] + sorted(key for key in figures if str(key).endswith("bytes") and key != "total_bytes")
        for key in keys:
            value = figures.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                return int(value)
    return None


def record_estimate(record: Mapping[str, Any], bytes_per_second: float) -> tuple[float | None, str]:
    """(seconds, basis): the module's own estimate, the time the record took, or its size at the rate."""
    after = record.get("after") if isinstance(record.get("after"), Mapping) else {}
    estimated = after.get("estimated_seconds")
    if isinstance(estimated, (int, float)) and not isinstance(estimated, bool):
        return float(estimated), "module"
    if isinstance(record.get("seconds"), (int, float)) and record.get("status") != "planned":
        return float(record["seconds"]), "measured"  # a real run's record: how long it really took
    size = record_bytes(record)
    if size is not None:
        return size / bytes_per_second, "rate"
    return None, "unknown"


def lock_of(record: Mapping[str, Any]) -> str:
    after = record.get("after") if isinstance(record.get("after"), Mapping) else {}
    if isinstance(after.get("lock"), str) and after["lock"]:
        return after["lock"]
    return LOCKS.get(str(record.get("action")), UNKNOWN_LOCK)


def plan_host(entries: Iterable[Mapping[str, Any]], bytes_per_second: float) -> dict[str, Any]:
    """One host's planned changes grouped by action (in the order first planned), with sizes, locks, estimates."""
    groups: dict[str, dict[str, Any]] = {}
    issues = []
    for entry in entries:
        if entry.get("status") in ISSUE_STATUSES:
            issues.append(finding_line(entry))
        if entry.get("status") != "planned":
            continue
        seconds, basis = record_estimate(entry, bytes_per_second)
        size = record_bytes(entry)
        group = groups.setdefault(str(entry.get("action")), {
            "action": str(entry.get("action")), "lock": lock_of(entry), "count": 0, "bytes": 0,
            "estimated_seconds": 0.0, "from_rate": 0, "without_estimate": 0, "items": []})
        group["count"] += 1
        group["bytes"] += size or 0
        if seconds is None:
            group["without_estimate"] += 1
        else:
            group["estimated_seconds"] = round(group["estimated_seconds"] + seconds, 1)
            group["from_rate"] += basis == "rate"
        group["items"].append({"name": str(entry.get("name")), "detail": str(entry.get("detail") or ""),
                               "bytes": size, "seconds": None if seconds is None else round(seconds, 1),
                               "basis": basis})
    changes = list(groups.values())
    return {"changes": changes, "change_count": sum(g["count"] for g in changes),
            "bytes": sum(g["bytes"] for g in changes),
            "estimated_seconds": round(sum(g["estimated_seconds"] for g in changes), 1),
            "without_estimate": sum(g["without_estimate"] for g in changes), "issues": issues}


# --------------------------------------------------------------------------- the window


def plan_window(decision: Mapping[str, Any] | None, guard: Mapping[str, Any] | None) -> dict[str, Any]:
    """The window the planned work runs in: the current one, else the next; its length when it can be known.

    The decision names the next window's start only; its end comes from the window settings, evaluated at the
    decision's ``now`` so both agree.
    """
    decision = decision or {}
    found = {"name": decision.get("name") or decision.get("next_window"),
             "start": decision.get("start") or decision.get("next_start"),
             "end": decision.get("end") if decision.get("inside") else None, "seconds": None,
             "mode": decision.get("mode"), "msg": decision.get("msg")}
    if guard:
        try:
            options = {**guard, "now": decision.get("now") or guard.get("now")}
            status = guard_from_params(options).status()
        except (MaintenanceError, ValueError, TypeError):
            status = None  # settings the window role already judged; without them the length stays unknown
        interval = status and (status.current or status.upcoming)
        if interval is not None:
            found.update(name=interval.window, start=interval.iso_start(), end=interval.iso_end())
    if found["start"] and found["end"]:
        try:
            found["seconds"] = int((parse_now(found["end"]) - parse_now(found["start"])).total_seconds())
        except (MaintenanceError, ValueError):
            found["seconds"] = None
    return found


def fits_text(longest: float, without_estimate: int, window_seconds: int | None) -> tuple[bool | None, str]:
    """Whether the longest host's estimated work fits the window: (True/False/None when it cannot be told, words)."""
    caveat = f"; {without_estimate} change(s) have no estimate" if without_estimate else ""
    if window_seconds is None:
        return None, f"cannot tell: the window's length is not known (estimated work {_duration(longest)}){caveat}"
    fits = longest <= window_seconds
    verdict = "fits" if fits else "does NOT fit"
    return fits, f"{verdict}: longest host {_duration(longest)} of a {_duration(window_seconds)} window{caveat}"


def _group_time(group: Mapping[str, Any]) -> str:
    if group["without_estimate"] == group["count"]:
        return "no estimate"
    text = ("~" if group["from_rate"] else "") + _duration(group["estimated_seconds"])
    return text + (f" ({group['without_estimate']} without estimate)" if group["without_estimate"] else "")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return format_duration(timedelta(seconds=round(seconds)))


# --------------------------------------------------------------------------- the notices


def check_rate(bytes_per_second: Any) -> float:
    try:
        rate = float(bytes_per_second)
    except (TypeError, ValueError):
        rate = 0.0
    if rate <= 0:
        raise NoticeError(msg=f"bytes_per_second {bytes_per_second!r} must be a positive number (bytes per second)")
    return rate


def plan_notice(hosts: Mapping[str, Mapping[str, Any]], *, estate: str = "", schedule: str = "",
                maintenance_id: str = "", bytes_per_second: Any = DEFAULT_BYTES_PER_SECOND) -> dict[str, Any]:
    """The pre-maintenance notice from a check-mode run: what each host would change, locks, time, the window."""
    rate = check_rate(bytes_per_second)
    estate = estate_of(hosts, estate)
    plans = {name: plan_host(entries_of(data.get("records") or {}), rate) for name, data in sorted(hosts.items())}
    first = next((data for data in hosts.values() if data.get("window")), {})
    window = plan_window(first.get("window"), first.get("guard"))
    longest = max((plan["estimated_seconds"] for plan in plans.values()), default=0.0)
    without = sum(plan["without_estimate"] for plan in plans.values())
    fits, fit_words = fits_text(longest, without, window["seconds"])
    changes = sum(plan["change_count"] for plan in plans.values())
    issues = sum(len(plan["issues"]) for plan in plans.values())
    label = " ".join(part for part in (schedule, "maintenance") if part)
    subject = (f"[{estate}] Planned {label}" + (f" {window['start']}" if window["start"] else "")
               + f": {changes} change(s) on {len(plans)} host(s)"
               + (f", {issues} issue(s)" if issues else "") + ("" if fits is not False else ", does NOT fit the window"))
    lines = [f"Planned {label} for {estate}" + (f" ({maintenance_id})" if maintenance_id else ""),
             "From a check-mode run: nothing has been changed yet.", "",
             "Window: " + (f"{window['name']} {window['start']} - {window['end'] or '?'}" if window["start"]
                           else f"not known ({window['msg'] or 'no window decision in this run'})"),
             f"Estimate: {fit_words}",
             f"Hosts run in parallel; the changes of one host run one after another. Sizes at "
             f"{human_bytes(rate)}/s where a change has no estimate of its own (marked ~).", ""]
    for name, plan in plans.items():
        lines.append(f"## {name}: {plan['change_count']} change(s), {human_bytes(plan['bytes'])}, "
                     f"about {_duration(plan['estimated_seconds'])}")
        for group in plan["changes"]:
            lines.append(f"- {group['action']} x{group['count']}: {human_bytes(group['bytes'])}, "
                         f"{_group_time(group)}; lock: {group['lock']}")
            for item in group["items"]:
                lines.append(f"    - {item['name']}" + (f": {item['detail']}" if item["detail"] else ""))
        if not plan["changes"]:
            lines.append("- no change planned")
        if plan["issues"]:
            lines.append("Issues found:")
            lines += [f"- {line}" for line in plan["issues"]]
        lines.append("")
    summary = {"kind": "plan", "estate": estate, "schedule": schedule, "maintenance_id": maintenance_id,
               "window": window, "fits_window": fits, "estimate": fit_words, "bytes_per_second": rate,
               "changes": changes, "issues": issues, "hosts": plans}
    return {"subject": subject, "text": "\n".join(lines).rstrip() + "\n", "summary": plain(summary)}


def completion_notice(hosts: Mapping[str, Mapping[str, Any]], *, failed_hosts: Iterable[str] = (),
                      check_mode: bool = False, estate: str = "", schedule: str = "", maintenance_id: str = "",
                      report_path: str | None = None) -> dict[str, Any]:
    """The completion notice: the report's status and resolution, counts per host, the issues, the report's path.

    A host Ansible took out of the play (``failed_hosts``) failed before the notice; the report says at which task.
    """
    failed = {str(host) for host in failed_hosts}
    estate = estate_of(hosts, estate)
    sections = {}
    for name, data in sorted(hosts.items()):
        log = HostLog()
        log.role_records = {role: list(records) for role, records in (data.get("records") or {}).items()}
        log.window = data.get("window")
        if name in failed:
            log.failures.append({"task": "the play", "msg": "failed before the notice (see the report)"})
        sections[name] = host_section(log, outcome=FAILED if name in failed else "completed")
    status, resolution = run_summary(sections, check_mode=check_mode)
    counts = {name: {"done": sum(1 for e in section["entries"] if e["status"] == "done"),
                     "planned": sum(1 for e in section["entries"] if e["status"] == "planned"),
                     "ok": len(section["validation"]), "unchanged": section["unchanged"],
                     "issues": len(section["issues"]), "failed": section["failed"]}
              for name, section in sections.items()}
    label = " ".join(part for part in (schedule, "maintenance") if part).capitalize()
    subject = f"[{estate}] {label}" + (f" {maintenance_id}" if maintenance_id else "") + f": {status}"
    lines = [f"{label} of {estate}" + (f" ({maintenance_id})" if maintenance_id else ""),
             f"Status: {status}", f"Resolution: {resolution}"]
    if report_path:
        lines.append(f"Report: {report_path}")
    lines.append("")
    for name, section in sections.items():
        count = counts[name]
        lines.append(f"## {name}: {count['done']} done, {count['planned']} planned, {count['ok']} check(s) passed, "
                     f"{count['issues']} issue(s)" + (" - FAILED" if count["failed"] else ""))
        lines.append(f"Window: {section['window']}")
        lines += [f"- {line}" for line in section["issues"]]
        lines.append("")
    summary = {"kind": "completion", "estate": estate, "schedule": schedule, "maintenance_id": maintenance_id,
               "check_mode": check_mode, "status": status, "resolution": resolution, "report": report_path,
               "hosts": {name: {**counts[name], "issue_lines": sections[name]["issues"],
                                "window": sections[name]["window"]} for name in sections}}
    return {"subject": subject, "text": "\n".join(lines).rstrip() + "\n", "summary": plain(summary)}


def report_path(report_dir: str | None, maintenance_id: str | None) -> str | None:
    """Where the maintenance_report callback writes this run's Markdown report (absolute, as it does)."""
    if not report_dir or not maintenance_id:
        return None
    return os.path.join(os.path.abspath(os.path.expanduser(report_dir)), f"{maintenance_id}.md")


def notice(hosts: Mapping[str, Mapping[str, Any]], *, check_mode: bool, failed_hosts: Iterable[str] = (),
           estate: str = "", schedule: str = "", maintenance_id: str = "", report_dir: str | None = None,
           bytes_per_second: Any = DEFAULT_BYTES_PER_SECOND) -> dict[str, Any]:
    """The plan notice from a check-mode run, else the completion notice."""
    if check_mode:
        return plan_notice(hosts, estate=estate, schedule=schedule, maintenance_id=maintenance_id,
                           bytes_per_second=bytes_per_second)
    return completion_notice(hosts, failed_hosts=failed_hosts, estate=estate, schedule=schedule,
                             maintenance_id=maintenance_id, report_path=report_path(report_dir, maintenance_id))


def new_maintenance_id(now: datetime) -> str:
    """The Maintenance ID of a run started at ``now``, in the report's format."""
    return now.strftime(ID_FORMAT)
