# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: maintenance_report
type: notification
short_description: Write the post-maintenance report of a run (Markdown and JSON)
description:
  - Writes the guides' Maintenance Log Template from the run itself when the playbook ends,
    also when hosts failed. It holds the Maintenance ID, date, window, lead, planned changes,
    actual changes, issues encountered, resolution, validation, status and duration.
  - Reads the records (see C(docs/records.md)) of the facts whose names end in C(_report_records) (each
    role of the collection keeps its records in one, for example C(health_check_report_records)), the records
    of the collection's modules run outside such a role, the window decision (the C(maintenance_window_status)
    fact, or the C(window) of a refused M(streamops.maintenance.maintenance_window) task), every changed task,
    and every failed or unreachable task.
  - Records V(planned) are the Planned Changes, V(done) the Actual Changes, V(ok) the Validation;
    V(failed), V(breach), V(unknown) and V(skipped) are Issues Encountered (V(unknown) is never reported as clean);
    V(unchanged) ones are counted.
  - Enable it with C(callbacks_enabled = streamops.maintenance.maintenance_report).
version_added: 0.1.0
requirements:
  - enable in configuration
options:
  report_dir:
    description: Directory the report files are written to; created when missing.
    type: path
    default: ./reports
    env:
      - name: MAINTENANCE_REPORT_DIR
    ini:
      - section: maintenance_report
        key: report_dir
  lead:
    description: The lead engineer named in the report. Defaults to the user running the playbook.
    type: str
    env:
      - name: MAINTENANCE_LEAD
    ini:
      - section: maintenance_report
        key: lead
"""

import getpass
import json
import os
import time
from datetime import datetime, timezone

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.streamops.maintenance.plugins.module_utils.records import gather_records

_ISSUE_STATUSES = ("failed", "breach", "unknown", "skipped")
_FACT_SUFFIX = "_report_records"
# Records of these actions judge something; the others change something (for the plan of a real run).
_CHECK_ACTIONS = frozenset(("tcp", "http", "disk", "memory", "pods", "compose", "expiry", "connections", "report",
                            "summary", "window", "checklist", "verify", "verified", "errors", "status", "smoke",
                            "post_check", "live", "persistence"))
_COLLECTION = "streamops.maintenance."
# Tasks whose time is spent waiting on a service (a database, Redis, S3, the
# Kubernetes API, the Docker engine, an HTTP endpoint), not in Ansible itself.
_SERVICE_ACTIONS = frozenset(
    [_COLLECTION + name for name in (
        "pg_maintenance", "redis_memory_guard", "pg_backup", "backup_verify", "blue_green_deploy",
        "certificate_expiry", "endpoint_check")]
    + ["ansible.builtin." + name for name in ("command", "uri", "wait_for")])


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "streamops.maintenance.maintenance_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._started = datetime.now(timezone.utc)
        self._playbook = None
        self._hosts = {}
        self._task_started = {}
        self._check_mode = False

    def _host(self, name):
        return self._hosts.setdefault(name, {"entries": {}, "window": None, "changed": [], "failures": [],
                                             "seconds": {}, "task_records": []})

    def v2_runner_on_start(self, host, task):
        self._task_started[(host.get_name(), task._uuid)] = time.monotonic()

    def _time(self, result):
        started = self._task_started.pop((result._host.get_name(), result._task._uuid), None)
        if started is None:
            return
        action = str(result._task.action)  # FQCN: every task of the collection writes it out
        seconds = self._host(result._host.get_name())["seconds"]
        seconds[action] = seconds.get(action, 0.0) + (time.monotonic() - started)

    def v2_playbook_on_start(self, playbook):
        self._started = datetime.now(timezone.utc)
        self._playbook = os.path.basename(playbook._file_name)
        self._check_mode = bool(context.CLIARGS.get("check"))

    def _collect_facts(self, result):
        facts = result._result.get("ansible_facts") or {}
        host = self._host(result._host.get_name())
        for name, value in facts.items():
            # Each role owns one list; a later set_fact of it replaces the earlier one.
            if name.endswith(_FACT_SUFFIX) and isinstance(value, list):
                host["entries"][name[:-len(_FACT_SUFFIX)]] = [dict(record) for record in value]
        if isinstance(facts.get("maintenance_window_status"), dict) and facts["maintenance_window_status"]:
            host["window"] = facts["maintenance_window_status"]

    def _collect_records(self, result):
        """The records of a collection module task (kept for tasks outside a role that publishes its own)."""
        action = str(result._task.action)
        if not action.startswith(_COLLECTION):
            return
        host = self._host(result._host.get_name())
        # A refused window check fails the task before any fact is set; its decision is in the result.
        if action.endswith("maintenance_window") and isinstance(result._result.get("window"), dict):
            host["window"] = result._result["window"]
        role = result._task._role
        # The collection's own roles publish their records as facts; these are the modules used elsewhere.
        if _in_collection_role(result._task):
            return
        try:
            records = gather_records(dict(result._result))
        except TypeError:
            return
        name = role.get_name(include_role_fqcn=False) if role is not None else None
        host["task_records"] += [{"role": name, **record} for record in records]

    def v2_runner_on_skipped(self, result):
        self._time(result)

    def v2_runner_on_ok(self, result):
        self._time(result)
        self._collect_facts(result)
        self._collect_records(result)
        if result._result.get("changed") and not _keeps_records(result._task):
            role = result._task._role.get_name(include_role_fqcn=False) if result._task._role else None
            self._host(result._host.get_name())["changed"].append({"task": result._task.get_name(), "role": role})

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._time(result)
        self._collect_records(result)
        if ignore_errors:
            return
        self._host(result._host.get_name())["failures"].append(
            {"task": result._task.get_name(), "msg": str(result._result.get("msg", "failed"))})

    def v2_runner_on_unreachable(self, result):
        self._host(result._host.get_name())["failures"].append(
            {"task": result._task.get_name(), "msg": "unreachable: " + str(result._result.get("msg", ""))})

    def v2_playbook_on_stats(self, stats):
        finished = datetime.now(timezone.utc)
        report = self._build(finished)
        directory = os.path.abspath(os.path.expanduser(self.get_option("report_dir")))
        os.makedirs(directory, exist_ok=True)
        base = os.path.join(directory, report["maintenance_id"])
        with open(base + ".json", "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, sort_keys=False, default=str)
        with open(base + ".md", "w", encoding="utf-8") as handle:
            handle.write(render_markdown(report))
        self._display.display(f"Maintenance report: {base}.md ({report['status']})")

    def _build(self, finished):
        hosts = {}
        for name, data in sorted(self._hosts.items()):
            # In the order the roles ran (the order their facts were first set), then the collection's
            # modules run outside a role that keeps its own records.
            entries = [{"role": role, **record} for role, records in data["entries"].items() for record in records]
            entries += data["task_records"]
            issues = [f"{e['name']}: {e['status']}: {e['detail']}" for e in entries if e["status"] in _ISSUE_STATUSES]
            issues += [f"{f['task']}: {f['msg']}" for f in data["failures"]]
            seconds = data["seconds"]
            hosts[name] = {
                "window": _window_line(data["window"]),
                # The plan: what check mode would do, or in a real run what each step set out to change.
                "planned_changes": [e for e in entries if e["status"] == "planned" or (
                    e["status"] in ("done", "skipped", "failed") and e["action"] not in _CHECK_ACTIONS)],
                # Changed tasks that keep no records (not the collection's): listed by their name.
                "actual_changes": [e for e in entries if e["status"] == "done"] + [
                    {"name": change["task"], "status": "done", "detail": ""} for change in data["changed"]],
                "issues": issues,
                "validation": [f"{e['name']}: {e['detail']}" for e in entries if e["status"] == "ok"],
                "unchanged": sum(1 for e in entries if e["status"] == "unchanged"),
                "failed": bool(data["failures"]),
                "emergency": (data["window"] or {}).get("emergency"),
                "timing": {
                    "tasks_s": round(sum(seconds.values()), 1),
                    "in_services_s": round(sum(v for k, v in seconds.items() if k in _SERVICE_ACTIONS), 1),
                    "by_action": {k: round(v, 2) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])},
                },
                "entries": entries,
            }
        failed = [h for h, d in hosts.items() if d["failed"]]
        with_issues = [h for h, d in hosts.items() if d["issues"]]
        status = "FAILED" if failed else ("COMPLETED WITH ISSUES" if with_issues else "COMPLETED")
        if self._check_mode:
            status += " (check mode: nothing was changed)"
        return {
            "maintenance_id": "MAINT-" + self._started.strftime("%Y-%m%d-%H%M%S"),
            "playbook": self._playbook,
            "date": self._started.date().isoformat(),
            "started": self._started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "duration_s": round((finished - self._started).total_seconds(), 1),
            "lead": self.get_option("lead") or getpass.getuser(),
            "check_mode": self._check_mode,
            "status": status,
            "resolution": ("unresolved on " + ", ".join(failed)) if failed else
                          ("see issues" if with_issues else "no issues"),
            "hosts": hosts,
        }


def _in_collection_role(task) -> bool:
    role = task._role
    return role is not None and role.get_name(include_role_fqcn=True).startswith(_COLLECTION)


def _keeps_records(task) -> bool:
    """Its changes are in records already: a module of the collection, or any task of the collection's roles."""
    return str(task.action).startswith(_COLLECTION) or _in_collection_role(task)


def _window_line(decision):
    if not decision:
        return "not checked"
    if decision.get("mode") == "emergency":
        approval = decision.get("emergency") or {}
        return "EMERGENCY approved by {approved_by} ({ticket}): {reason}".format(
            approved_by=approval.get("approved_by"), ticket=approval.get("ticket"), reason=approval.get("reason"))
    if decision.get("inside"):
        return "{0} {1} - {2}".format(decision.get("name"), decision.get("start"), decision.get("end"))
    return "outside any window: " + str(decision.get("msg", ""))


def _duration_text(seconds):
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


def _change_line(entry):
    name, detail = str(entry.get("name")), str(entry.get("detail") or "")
    return f"{name}: {detail}" if detail else name


def _planned_line(entry):
    if entry.get("status") == "planned":
        return _change_line(entry)
    name, action = str(entry.get("name")), str(entry.get("action"))
    return name if name.startswith(action) else f"{action} {name}"


def render_markdown(report):
    lines = [
        f"# Maintenance report {report['maintenance_id']}",
        "",
        f"- Maintenance ID: {report['maintenance_id']}",
        f"- Date: {report['date']}",
        f"- Playbook: {report['playbook']}",
        f"- Lead Engineer: {report['lead']}",
        f"- Status: {report['status']}",
        f"- Duration: {_duration_text(report['duration_s'])}",
        f"- Resolution: {report['resolution']}",
    ]
    for host, data in report["hosts"].items():
        timing = data.get("timing") or {}
        lines += ["", f"## {host}", "", f"Window: {data['window']}", "",
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
    return "\n".join(lines).rstrip() + "\n"
