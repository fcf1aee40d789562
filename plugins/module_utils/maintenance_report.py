# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The post-maintenance report: what a run did to each host, as JSON and as the guides' Maintenance Log Template.

The ``maintenance_report`` callback feeds a ``RunLog`` event by event and writes ``RunLog.report()`` when the
run ends. ``merge_reports`` joins the reports of runs over disjoint hosts (the slices of an AWX sliced job)
into one report of the same shape, with the status, resolution and duration recomputed by the same functions.

Every host of every play is in the report with an ``outcome``: ``completed``, ``failed``, ``stopped`` (the play
stopped it before its steps were done) or ``not run`` (its ``serial`` batch never started because the rolling
maintenance stopped earlier), never silently missing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .errors import MaintenanceError
from .maintenance_calendar import step_outcome
from .records import human_bytes

ISSUE_STATUSES = ("failed", "breach", "unknown", "skipped")
# Records of these actions judge something; the others change something (for the plan of a real run).
CHECK_ACTIONS = frozenset(("tcp", "http", "disk", "memory", "pods", "compose", "expiry", "connections", "report",
                           "summary", "window", "checklist", "verify", "verified", "errors", "status", "smoke",
                           "post_check", "live", "persistence",
                           # the security and compliance reviews (issue 16): they only read
                           "binding", "rules", "network_policy", "unused", "secret_age", "container_security",
                           "log_pattern", "dependency_audit", "retention", "audit_summary", "audit_continuity",
                           # Prometheus' health (issue 17): they only read
                           "healthy", "ready", "reload_status", "expected_group", "alerts", "api",
                           # PostgreSQL's performance review (issue 18): it only reads
                           "slow_statement", "relation_size",
                           # latency probes and notices sent (issue 18): they change nothing in the estate
                           "latency", "notify",
                           # the DR test restores a copy onto another server and judges it (issue 19)
                           "dr_test"))
# The DR test's summary record (pg_dr_test): the report's "Disaster recovery test" section renders its ``after``.
DR_TEST_ACTION = "dr_test"
# Records of the performance review: a host's report shows them as tables, not one Validation line each.
PERFORMANCE_ACTIONS = frozenset(("slow_statement", "relation_size"))
# The read-only reviews, each its own section of a host's report: every finding with what to do about it.
REVIEW_SECTIONS = {"access_review": "Access Review", "security_scan": "Security Scan",
                   "compliance_review": "Compliance Review"}
COLLECTION = "streamops.maintenance."
# Tasks whose time is spent waiting on a service (a database, Redis, S3, the Kubernetes API, the Docker engine,
# an HTTP endpoint), not in Ansible itself.
SERVICE_ACTIONS = frozenset(
    [COLLECTION + name for name in (
        "pg_maintenance", "redis_memory_guard", "pg_backup", "backup_verify", "blue_green_deploy",
        "certificate_expiry", "endpoint_check", "certificate_renew", "k8s_secret_rotate", "prometheus_rules",
        "prometheus_tsdb")]
    + ["ansible.builtin." + name for name in ("command", "uri", "wait_for")])

COMPLETED, FAILED, STOPPED, NOT_RUN = "completed", "failed", "stopped", "not run"
OUTCOMES = (COMPLETED, FAILED, STOPPED, NOT_RUN)
ID_FORMAT = "MAINT-%Y-%m%d-%H%M%S"
# A Maintenance ID names the report file: one path component, nothing a shell or a path would read otherwise.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ReportError(MaintenanceError):
    """Reports that do not make one report: a host reported twice, an expected host missing, different runs."""


def plain(value: Any) -> Any:
    """``value`` in plain JSON types. Ansible's results hold tagged strings and lazy containers; a copy in
    builtins keeps none of their tags (or the results they came from) alive until the run ends."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    return str(value)


# --------------------------------------------------------------------------- serial batches


def serial_batches(hosts: Sequence[str], serial: Sequence[Any] | None) -> list[list[str]]:
    """The batches Ansible makes of a play's hosts (``PlaybookExecutor._get_serialized_batches``).

    Each ``serial`` item is a count or ``'N%'`` of all the play's hosts, the last item repeated until every
    host is in a batch; an empty ``serial``, or an item of 0 or less, puts every host left in one batch.
    """
    left = list(hosts)
    sizes = list(serial or []) or [-1]
    batches: list[list[str]] = []
    index = 0
    while left:
        size = _serial_size(sizes[index], len(hosts))
        if size <= 0:
            batches.append(left)
            break
        batches.append(left[:size])
        left = left[size:]
        index = min(index + 1, len(sizes) - 1)
    return batches


def _serial_size(value: Any, host_count: int) -> int:
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return int(int(text[:-1]) / 100.0 * host_count) or 1
        return int(text)
    except ValueError:
        raise ReportError(msg=f"serial item {value!r} is not a number of hosts or a percentage") from None


# --------------------------------------------------------------------------- what a run keeps


class HostLog:
    """What the report keeps of one host while the run goes: records, task names and seconds, never whole
    results (a fleet of hosts times every task's result would grow the controller for nothing)."""

    __slots__ = ("role_records", "task_records", "window", "changes", "failures", "seconds", "tasks_run",
                 "marked_failed", "batch", "calendar")

    def __init__(self) -> None:
        self.role_records: dict[str, list[dict[str, Any]]] = {}
        self.task_records: list[dict[str, Any]] = []
        self.window: dict[str, Any] | None = None
        self.changes: list[str] = []
        self.failures: list[dict[str, str]] = []
        self.seconds: dict[str, float] = {}
        self.tasks_run = 0
        # Set when Ansible failed this host without a task of its own failing (max_fail_percentage,
        # any_errors_fatal): (the hosts that did fail, how many tasks this host had run by then).
        self.marked_failed: tuple[list[str], int] | None = None
        self.batch: tuple[str, int] | None = None  # (play, batch number) it last ran in
        # This quarter's items of the maintenance calendar (the calendar_steps filter's result), when the run has one.
        self.calendar: dict[str, Any] | None = None


class PlayLog:
    """One play: its hosts (after --limit), serial, max_fail_percentage, and the batches that started."""

    __slots__ = ("name", "hosts", "serial", "max_fail_percentage", "batches")

    def __init__(self, name: str, hosts: Sequence[str], serial: Sequence[Any] | None,
                 max_fail_percentage: Any) -> None:
        self.name = name
        self.hosts = list(hosts)
        self.serial = [plain(item) for item in serial or []]
        self.max_fail_percentage = plain(max_fail_percentage)
        self.batches: list[list[str]] = []


class RunLog:
    """Everything the report needs from one run, fed by the callback event by event."""

    def __init__(self, *, started: datetime, playbook: str | None = None, check_mode: bool = False,
                 limit: str | None = None) -> None:
        self.started = started
        self.playbook = playbook
        self.check_mode = check_mode
        self.limit = limit
        self.hosts: dict[str, HostLog] = {}
        self.plays: dict[str, PlayLog] = {}
        self.maintenance_id: str | None = None  # a maintenance_id fact (the notify role's), else the start time

    def keep_maintenance_id(self, value: Any) -> bool:
        """The first valid ``maintenance_id`` fact names the report (the notices name the same file)."""
        if self.maintenance_id is None and isinstance(value, str) and ID_PATTERN.fullmatch(value):
            self.maintenance_id = str(value)  # a plain copy: no tag of Ansible's kept alive
            return True
        return False

    def host(self, name: str) -> HostLog:
        log = self.hosts.get(name)
        if log is None:
            log = self.hosts[name] = HostLog()
        return log

    # ---- plays and batches

    def batch_started(self, play_id: str, *, name: str, hosts: Sequence[str], batch: Sequence[str],
                      serial: Sequence[Any] | None = None, max_fail_percentage: Any = None) -> None:
        """A play, or its next ``serial`` batch, starts with the hosts of ``batch`` (of ``hosts`` in all)."""
        play = self.plays.get(play_id)
        if play is None:
            play = self.plays[play_id] = PlayLog(name, hosts, serial, max_fail_percentage)
        # For a play that matched no host, Ansible's batch is every host of the inventory: only the play's count.
        of_play = set(play.hosts)
        batch = [str(host) for host in batch if str(host) in of_play]
        play.batches.append(batch)
        for host in batch:
            self.host(host).batch = (play_id, len(play.batches))

    def hosts_failed_by_ansible(self, play_id: str, removed: Iterable[str]) -> None:
        """The hosts Ansible has taken out of the play's current batch; those with no failure of their own were
        failed for the others (max_fail_percentage exceeded, any_errors_fatal)."""
        play = self.plays.get(play_id)
        if play is None or not play.batches:
            return
        batch = play.batches[-1]
        failed_here = [host for host in batch if self.hosts[host].failures]
        if not failed_here:
            return  # meta end_host, end_batch or end_play take hosts out too, and fail nothing
        for name in removed:
            log = self.hosts.get(name)
            if log is None or name not in batch or log.failures or log.marked_failed is not None:
                continue
            log.marked_failed = (failed_here, log.tasks_run)

    # ---- per host

    def task_ran(self, host: str, action: str, seconds: float | None) -> None:
        log = self.host(host)
        if seconds is not None:
            log.seconds[action] = log.seconds.get(action, 0.0) + seconds

    def task_started(self, host: str) -> None:
        self.host(host).tasks_run += 1

    def keep_role_records(self, host: str, role: str, records: Iterable[Mapping[str, Any]]) -> None:
        """A role's ``<role>_report_records`` fact; a later one of the same role replaces the earlier."""
        self.host(host).role_records[role] = [plain(record) for record in records]

    def keep_task_records(self, host: str, role: str | None, records: Iterable[Mapping[str, Any]]) -> None:
        """Records of a collection module run outside a role that keeps its own."""
        self.host(host).task_records.extend({"role": role, **plain(record)} for record in records)

    def keep_window(self, host: str, decision: Mapping[str, Any]) -> None:
        self.host(host).window = plain(decision)

    def keep_calendar(self, host: str, plan: Mapping[str, Any]) -> None:
        """The ``maintenance_calendar_plan`` fact: the quarter's automated steps and the team's manual items."""
        self.host(host).calendar = plain(plan)

    def keep_change(self, host: str, task: str) -> None:
        self.host(host).changes.append(str(task))

    def keep_failure(self, host: str, task: str, msg: str) -> None:
        self.host(host).failures.append({"task": str(task), "msg": str(msg)})

    # ---- the report

    def outcomes(self) -> dict[str, tuple[str, str | None]]:
        """Every host of every play: (outcome, why), hosts whose batch never started included."""
        found: dict[str, tuple[str, str | None]] = {}
        for name, log in self.hosts.items():
            if log.failures:
                found[name] = (FAILED, None)
            elif log.marked_failed is not None:
                failed, tasks_then = log.marked_failed
                when = f" when {', '.join(failed)} failed" if failed else ""
                if log.tasks_run > tasks_then:
                    found[name] = (STOPPED, f"Ansible stopped it{when}, before its steps were done; only its "
                                            "always: tasks ran after that")
                else:
                    found[name] = (COMPLETED, f"ran every task; Ansible counts it failed too, as the play stopped "
                                              f"after its batch{when and ' (' + when.strip() + ')'}")
            else:
                found[name] = (COMPLETED, None)
        for play in self.plays.values():
            started = {host for batch in play.batches for host in batch}
            waiting = [host for host in play.hosts if host not in started]
            if not waiting:
                continue
            reason = self._stop_reason(play)
            for host in waiting:
                if host in found and found[host][0] != COMPLETED:
                    continue
                # A host that ran in an earlier play but not in this one did not finish the playbook either.
                found[host] = (STOPPED if host in self.hosts and self.hosts[host].tasks_run else NOT_RUN, reason)
        return found

    def _stop_reason(self, play: PlayLog) -> str:
        planned = len(serial_batches(play.hosts, play.serial))
        last = play.batches[-1] if play.batches else []
        failed = [host for host in last if self.hosts.get(host) and self.hosts[host].failures]
        return (f"play '{play.name}' stopped after batch {len(play.batches)} of {planned} "
                f"({rolling_text(play.serial, play.max_fail_percentage)})"
                + (f": {', '.join(failed)} failed in it" if failed else ""))

    def report(self, *, finished: datetime, lead: str) -> dict[str, Any]:
        outcomes = self.outcomes()
        hosts = {}
        for name in sorted(outcomes):
            outcome, why = outcomes[name]
            log = self.hosts.get(name) or HostLog()
            section = host_section(log, outcome=outcome, outcome_reason=why)
            if log.batch is not None and len(self.plays[log.batch[0]].batches) > 1:
                section["batch"] = log.batch[1]
            hosts[name] = section
        plays = [{"name": play.name, "hosts": len(play.hosts), "serial": play.serial,
                  "max_fail_percentage": play.max_fail_percentage,
                  "batches_planned": len(serial_batches(play.hosts, play.serial)),
                  "batches": play.batches} for play in self.plays.values()]
        return build_report(started=self.started, finished=finished, playbook=self.playbook, lead=lead,
                            check_mode=self.check_mode, hosts=hosts, limit=self.limit, plays=plays,
                            maintenance_id=self.maintenance_id)


def rolling_text(serial: Sequence[Any] | None, max_fail_percentage: Any) -> str:
    """``serial 2, max_fail_percentage 0%``: the play's rolling keywords as a reader writes them."""
    text = "serial " + (", ".join(str(item) for item in serial) if serial else "0")
    if max_fail_percentage is not None:
        text += f", max_fail_percentage {float(max_fail_percentage):g}%"
    return text


def host_section(log: HostLog, *, outcome: str = COMPLETED, outcome_reason: str | None = None) -> dict[str, Any]:
    """One host's part of the report, from what its HostLog kept."""
    # In the order the roles ran (the order their facts were first set), then the collection's modules run
    # outside a role that keeps its own records.
    entries = [{"role": role, **record} for role, records in log.role_records.items() for record in records]
    entries += log.task_records
    issues = [f"{e['name']}: {e['status']}: {e['detail']}" for e in entries if e["status"] in ISSUE_STATUSES]
    issues += [f"{f['task']}: {f['msg']}" for f in log.failures]
    if outcome in (STOPPED, NOT_RUN) and outcome_reason:
        issues.append(f"{outcome}: {outcome_reason}")
    seconds = log.seconds
    return {
        "outcome": outcome,
        "outcome_reason": outcome_reason,
        "window": "not run" if outcome == NOT_RUN else window_line(log.window),
        # The plan: what check mode would do, or in a real run what each step set out to change.
        # (A review only reads: a review that failed is an issue, never a change it set out to make.)
        "planned_changes": [e for e in entries if e["status"] == "planned" or (
            e["status"] in ("done", "skipped", "failed") and e["action"] not in CHECK_ACTIONS
            and e.get("role") not in REVIEW_SECTIONS)],
        # Changed tasks that keep no records (not the collection's): listed by their name.
        "actual_changes": [e for e in entries if e["status"] == "done"] + [
            {"name": task, "status": "done", "detail": ""} for task in log.changes],
        "issues": issues,
        "validation": [f"{e['name']}: {e['detail']}" for e in entries
                       if e["status"] == "ok" and e["action"] not in PERFORMANCE_ACTIONS],
        "performance": [e for e in entries if e["action"] in PERFORMANCE_ACTIONS],
        "unchanged": sum(1 for e in entries if e["status"] == "unchanged"),
        "reviews": review_sections(entries),
        "calendar": calendar_section(log.calendar, entries),
        "dr_tests": [e for e in entries if e["action"] == DR_TEST_ACTION],
        "failed": bool(log.failures),
        "emergency": (log.window or {}).get("emergency"),
        "timing": {
            "tasks_s": round(sum(seconds.values()), 1),
            "in_services_s": round(sum(v for k, v in seconds.items() if k in SERVICE_ACTIONS), 1),
            "by_action": {k: round(v, 2) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])},
        },
        "entries": entries,
    }


def review_sections(entries: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The reviews that ran, in order: each one's findings (with the record's remedy) and how many checks passed."""
    sections: dict[str, dict[str, Any]] = {}
    for entry in entries:
        title = REVIEW_SECTIONS.get(str(entry.get("role")))
        if title is None:
            continue
        section = sections.setdefault(str(entry["role"]), {"title": title, "findings": [], "passed": 0})
        if entry["status"] == "ok":
            section["passed"] += 1
        elif entry["status"] in ISSUE_STATUSES:
            section["findings"].append(finding_line(entry))
    return sections


def calendar_section(plan: Mapping[str, Any] | None, entries: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The quarter's calendar items of a host: each automated one with the outcome of its role's records, and the
    manual ones (a checklist for the team: never records, so they make a run neither failed nor clean)."""
    if not plan:
        return None
    entries = list(entries)
    automated = []
    for item in plan.get("automated") or []:
        outcome, detail = step_outcome(str(item.get("step")), entries)
        automated.append({"step": item.get("step"), "item": item.get("item"), "outcome": outcome, "detail": detail})
    return {"quarter": plan.get("quarter"), "year": plan.get("year"), "timezone": plan.get("timezone"),
            "automated": automated, "manual": [str(item) for item in plan.get("manual") or []]}


def finding_line(entry: Mapping[str, Any]) -> str:
    """``name: status: detail. What to do: remedy`` (a finding without a remedy names none)."""
    line = f"{entry.get('name')}: {entry.get('status')}: {entry.get('detail') or ''}".rstrip(": ")
    remedy = (entry.get("after") or {}).get("remedy") if isinstance(entry.get("after"), Mapping) else None
    return f"{line}. What to do: {remedy}" if remedy else line


def run_summary(hosts: Mapping[str, Mapping[str, Any]], *, check_mode: bool) -> tuple[str, str]:
    """The run's status and resolution from its hosts' sections."""
    failed = [name for name, data in hosts.items() if data.get("failed")]
    unfinished: dict[str, list[str]] = {}
    for name, data in hosts.items():
        if data.get("outcome") in (STOPPED, NOT_RUN) and not data.get("failed"):
            why = f"{data['outcome']}" + (f" ({data['outcome_reason']})" if data.get("outcome_reason") else "")
            unfinished.setdefault(why, []).append(name)
    with_issues = [name for name, data in hosts.items() if data.get("issues")]
    if not hosts:
        status, resolution = "FAILED", "no host ran: the play matched no hosts"
    else:
        status = "FAILED" if failed or unfinished else ("COMPLETED WITH ISSUES" if with_issues else "COMPLETED")
        parts = ["unresolved on " + ", ".join(failed)] if failed else []
        parts += [f"{', '.join(names)}: {why}" for why, names in unfinished.items()]
        resolution = "; ".join(parts) or ("see issues" if with_issues else "no issues")
    if check_mode:
        status += " (check mode: nothing was changed)"
    return status, resolution


def build_report(*, started: datetime, finished: datetime, playbook: str | None, lead: str, check_mode: bool,
                 hosts: Mapping[str, Mapping[str, Any]], limit: str | None = None,
                 plays: Sequence[Mapping[str, Any]] | None = None, maintenance_id: str | None = None,
                 slices: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    status, resolution = run_summary(hosts, check_mode=check_mode)
    report: dict[str, Any] = {
        "maintenance_id": maintenance_id or started.strftime(ID_FORMAT),
        "playbook": playbook,
        "date": started.date().isoformat(),
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "duration_s": round((finished - started).total_seconds(), 1),
        "lead": lead,
        "check_mode": check_mode,
        "status": status,
        "resolution": resolution,
        "limit": limit,
        "hosts": dict(hosts),
    }
    if plays is not None:
        report["plays"] = [dict(play) for play in plays]
    if slices is not None:
        report["slices"] = [dict(one) for one in slices]
    return report


# --------------------------------------------------------------------------- merging slices


def merge_reports(reports: Sequence[Mapping[str, Any]], *, expected_hosts: Iterable[str] | None = None,
                  names: Sequence[str] | None = None, maintenance_id: str | None = None) -> dict[str, Any]:
    """One report from the reports of runs over disjoint hosts (the slices of an AWX sliced job).

    Refuses, naming them, a host reported by two runs, an expected host no run reported, a host nobody
    expected, and runs of different playbooks or of check mode and real mode mixed. The status,
    resolution and duration (first start to last finish) are recomputed over all hosts. ``names`` (the
    reports' files, say) name the reports in errors; by default their Maintenance IDs, which slices started
    in the same second share.
    """
    if not reports:
        raise ReportError(msg="no reports to merge")
    if names is not None and len(names) != len(reports):
        raise ReportError(msg=f"{len(names)} name(s) for {len(reports)} report(s)")
    for number, report in enumerate(reports, start=1):
        missing_keys = [key for key in ("maintenance_id", "playbook", "started", "finished", "check_mode", "hosts")
                        if key not in report]
        if missing_keys:
            raise ReportError(msg=f"report {number} ({report.get('maintenance_id', 'no maintenance_id')}) is not a "
                                  f"maintenance report: it has no {', '.join(missing_keys)}")
    _same_in_all(reports, "playbook")
    _same_in_all(reports, "check_mode")
    labels = list(names) if names is not None else [str(report["maintenance_id"]) for report in reports]
    reported_by: dict[str, list[str]] = {}
    for label, report in zip(labels, reports):
        for host in report["hosts"]:
            reported_by.setdefault(host, []).append(label)
    twice = {host: ids for host, ids in reported_by.items() if len(ids) > 1}
    if twice:
        raise ReportError(msg="host(s) reported by more than one run: " + "; ".join(
            f"{host} in {', '.join(ids)}" for host, ids in sorted(twice.items())), hosts=sorted(twice))
    if expected_hosts is not None:
        expected = {str(host) for host in expected_hosts}
        missing = sorted(expected - set(reported_by))
        if missing:
            raise ReportError(msg=f"expected host(s) missing from every report: {', '.join(missing)}", hosts=missing)
        unexpected = sorted(set(reported_by) - expected)
        if unexpected:
            raise ReportError(msg=f"host(s) reported but not expected: {', '.join(unexpected)}", hosts=unexpected)
    started = min(_when(report["started"], "started") for report in reports)
    finished = max(_when(report["finished"], "finished") for report in reports)
    hosts = {}
    for report in reports:
        for name, section in report["hosts"].items():
            hosts[name] = _with_outcome(section)
    leads = sorted({str(report.get("lead")) for report in reports if report.get("lead")})
    ordered = sorted(reports, key=lambda report: _when(report["started"], "started"))
    slices = [{"maintenance_id": report["maintenance_id"], "started": report["started"],
               "finished": report["finished"], "duration_s": report.get("duration_s"), "status": report.get("status"),
               "limit": report.get("limit"), "hosts": sorted(report["hosts"]), "plays": report.get("plays", [])}
              for report in ordered]
    return build_report(started=started, finished=finished, playbook=reports[0]["playbook"], lead=", ".join(leads),
                        check_mode=bool(reports[0]["check_mode"]), hosts=dict(sorted(hosts.items())),
                        maintenance_id=maintenance_id or f"{ordered[0]['maintenance_id']}-merged", slices=slices)


def _same_in_all(reports: Sequence[Mapping[str, Any]], key: str) -> None:
    values = {json.dumps(report[key]) for report in reports}
    if len(values) > 1:
        raise ReportError(msg=f"the reports are of different runs: {key} differs ("
                              + ", ".join(f"{report['maintenance_id']}: {report[key]!r}" for report in reports) + ")")


def _when(value: Any, what: str) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ReportError(msg=f"report time {what} {value!r} is not an ISO 8601 date and time") from None


def _with_outcome(section: Mapping[str, Any]) -> dict[str, Any]:
    """A host's section; one from before outcomes were reported gets the outcome its ``failed`` says."""
    found = dict(section)
    found.setdefault("outcome", FAILED if found.get("failed") else COMPLETED)
    found.setdefault("outcome_reason", None)
    return found


# --------------------------------------------------------------------------- writing


def write_report(report: Mapping[str, Any], directory: str) -> str:
    """``<directory>/<maintenance_id>.json`` and ``.md``; returns the path without the suffix."""
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, str(report["maintenance_id"]))
    with open(base + ".json", "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, sort_keys=False, default=str)
    with open(base + ".md", "w", encoding="utf-8") as handle:
        handle.write(render_markdown(report))
    return base


def window_line(decision: Mapping[str, Any] | None) -> str:
    if not decision:
        return "not checked"
    if decision.get("mode") == "emergency":
        approval = decision.get("emergency") or {}
        return "EMERGENCY approved by {approved_by} ({ticket}): {reason}".format(
            approved_by=approval.get("approved_by"), ticket=approval.get("ticket"), reason=approval.get("reason"))
    if decision.get("inside"):
        return "{0} {1} - {2}".format(decision.get("name"), decision.get("start"), decision.get("end"))
    return "outside any window: " + str(decision.get("msg", ""))


def duration_text(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


def _change_line(entry: Mapping[str, Any]) -> str:
    name, detail = str(entry.get("name")), str(entry.get("detail") or "")
    return f"{name}: {detail}" if detail else name


def _planned_line(entry: Mapping[str, Any]) -> str:
    if entry.get("status") == "planned":
        return _change_line(entry)
    name, action = str(entry.get("name")), str(entry.get("action"))
    return name if name.startswith(action) else f"{action} {name}"


def _cell(value: Any) -> str:
    """Text for a Markdown table cell: one line, ``|`` escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _number(value: Any) -> str:
    return "?" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def performance_lines(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ``Performance review`` of a host: slowest statements and largest relations as Markdown tables."""
    entries = list(entries)
    if not entries:
        return []
    lines = ["### Performance review", ""]
    statements = [e for e in entries if e["action"] == "slow_statement" and e["status"] == "ok"]
    relations = [e for e in entries if e["action"] == "relation_size" and e["status"] == "ok"]
    if statements:
        lines += ["| mean ms | calls | total ms | statement |", "|---:|---:|---:|---|"]
        for entry in statements:
            after = entry.get("after") or {}
            lines.append(f"| {_number(after.get('mean_ms'))} | {_number(after.get('calls'))} | "
                         f"{_number(after.get('total_ms'))} | {_cell(after.get('query', ''))} |")
        lines.append("")
    if relations:
        lines += ["| relation | bytes |", "|---|---:|"]
        for entry in relations:
            after = entry.get("after") or {}
            size = after.get("total_bytes", after.get("bytes"))
            lines.append(f"| {_cell(entry['name'])} | {human_bytes(size)} |")
        lines.append("")
    # What kept the review from deciding (pg_stat_statements missing), with what to do.
    lines += [f"- {finding_line(e)}" for e in entries if e["status"] not in ("ok",)]
    if lines[-1] != "":
        lines.append("")
    return lines


def _quarter_label(section: Mapping[str, Any]) -> str:
    return " ".join(str(part) for part in (section.get("quarter"), section.get("year")) if part)


def manual_checklist_lines(hosts: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``Manual items this quarter``: one ``- [ ]`` line per item of every host's calendar, once, naming the hosts
    when not every host with a calendar has it (an estate with its own calendar)."""
    calendars = {name: data["calendar"] for name, data in hosts.items() if data.get("calendar")}
    if not calendars:
        return []
    holders: dict[str, list[str]] = {}
    for name, section in calendars.items():
        for item in section.get("manual") or []:
            holders.setdefault(item, []).append(name)
    quarters = sorted({_quarter_label(section) for section in calendars.values()})
    lines = ["", f"## Manual items this quarter ({', '.join(quarters)})", "",
             "For the team: the guide's items of this quarter that no playbook does.", ""]
    for item, names in holders.items():
        lines.append(f"- [ ] {item}" + ("" if len(names) == len(calendars) else f" ({', '.join(names)})"))
    if not holders:
        lines.append("- none this quarter")
    return lines


def calendar_lines(section: Mapping[str, Any] | None) -> list[str]:
    """A host's automated calendar items of the quarter with their outcome."""
    if not section:
        return []
    lines = [f"### Maintenance calendar {_quarter_label(section)}: automated items", ""]
    lines += [f"- {item['item']} ({item['step']}): {item['outcome']} ({item['detail']})"
              for item in section.get("automated") or []] or ["- none this quarter"]
    return lines + [""]


def _target_text(seconds: Any, target: Any) -> str:
    measured = "not measured" if seconds is None else duration_text(float(seconds))
    if target is None:
        return f"{measured} (no target)"
    judged = "" if seconds is None else (": within target" if float(seconds) <= float(target) else ": OVER target")
    return f"{measured} (target {duration_text(float(target))}){judged}"


def dr_test_lines(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """``Disaster recovery test``: each DR test's set, servers, RTO and RPO against their targets, and every
    critical table's rows and checksum against the set's."""
    lines: list[str] = []
    for entry in entries:
        after = entry.get("after") if isinstance(entry.get("after"), Mapping) else {}
        lines += ["### Disaster recovery test", "",
                  f"- Result: {entry.get('status')}" + (f": {entry.get('detail')}" if entry.get("detail") else ""),
                  f"- Set: {after.get('backup_id') or '?'}",
                  f"- Restored: {after.get('source_server') or '?'} -> {after.get('target_server') or '?'}, "
                  f"database {after.get('target_database') or '?'}",
                  f"- RTO: {_target_text(after.get('rto_seconds'), after.get('rto_target_seconds'))}",
                  f"- RPO: {_target_text(after.get('rpo_seconds'), after.get('rpo_target_seconds'))}", ""]
        tables = [table for table in after.get("tables") or [] if isinstance(table, Mapping)]
        if tables:
            lines += ["| table | rows | expected rows | checksum | expected checksum | ok |", "|---|---:|---:|---|---|---|"]
            lines += [f"| {_cell(table.get('table'))} | {_number(table.get('rows'))} | "
                      f"{_number(table.get('expected_rows'))} | {_cell(table.get('checksum') or '?')} | "
                      f"{_cell(table.get('expected_checksum') or '?')} | {'yes' if table.get('ok') else 'NO'} |"
                      for table in tables]
            lines.append("")
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = [
        f"# Maintenance report {report['maintenance_id']}",
        "",
        f"- Maintenance ID: {report['maintenance_id']}",
        f"- Date: {report['date']}",
        f"- Playbook: {report['playbook']}",
        f"- Lead Engineer: {report['lead']}",
        f"- Status: {report['status']}",
        f"- Duration: {duration_text(report['duration_s'])}",
        f"- Resolution: {report['resolution']}",
    ]
    if report.get("limit"):
        lines.append(f"- Limit: {report['limit']}")
    for play in report.get("plays") or []:
        if len(play.get("batches") or []) > 1 or play.get("batches_planned", 1) > 1:
            lines.append("- Rolling: play '{0}' ({1}): {2} of {3} batch(es) started".format(
                play["name"], rolling_text(play.get("serial"), play.get("max_fail_percentage")),
                len(play["batches"]), play["batches_planned"]))
    if report.get("slices"):
        lines.append("- Slices: " + "; ".join(
            f"{one['maintenance_id']} ({len(one['hosts'])} host(s), {one.get('status')})" for one in report["slices"]))
    lines += manual_checklist_lines(report["hosts"])
    for host, data in report["hosts"].items():
        timing = data.get("timing") or {}
        lines += ["", f"## {host}", ""]
        outcome = data.get("outcome", COMPLETED)
        if outcome != COMPLETED or data.get("outcome_reason"):
            reason = data.get("outcome_reason")
            lines += [f"Outcome: {outcome}" + (f" ({reason})" if reason else ""), ""]
        if data.get("batch"):
            lines += [f"Batch: {data['batch']}", ""]
        lines += [f"Window: {data['window']}", "",
                  "Time: {0} s in tasks, {1} s of it waiting on the services".format(
                      timing.get("tasks_s", 0), timing.get("in_services_s", 0)), "",
                  f"Looked at and needing nothing: {data.get('unchanged', 0)} item(s)", ""]
        for title, items in (
            ("Planned Changes", [_planned_line(e) for e in data["planned_changes"]]),
            ("Actual Changes", [_change_line(e) for e in data["actual_changes"]]),
            ("Issues Encountered", data["issues"]),
            ("Validation", data["validation"]),
        ):
            lines.append(f"### {title}")
            lines += [f"- {item}" for item in items] or ["- none"]
            lines.append("")
        for review in (data.get("reviews") or {}).values():
            lines += [f"### {review['title']}",
                      f"{len(review['findings'])} finding(s), {review['passed']} check(s) passed", ""]
            lines += [f"- {item}" for item in review["findings"]] or ["- no findings"]
            lines.append("")
        lines += performance_lines(data.get("performance") or [])
        lines += dr_test_lines(data.get("dr_tests") or [])
        lines += calendar_lines(data.get("calendar"))
    return "\n".join(lines).rstrip() + "\n"
