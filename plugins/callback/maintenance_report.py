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
  - Reads the facts whose names end in C(_report_entries) (each role of the collection keeps
    its records in one, for example C(health_check_report_entries)), the C(maintenance_window_status)
    fact, every changed task, and every failed or unreachable task.
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
from datetime import datetime, timezone

from ansible.plugins.callback import CallbackBase

_ISSUE_STATUSES = frozenset(("breach", "failed", "denied", "error"))


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

    def _host(self, name):
        return self._hosts.setdefault(name, {"entries": {}, "window": None, "changed": [], "failures": []})

    def v2_playbook_on_start(self, playbook):
        self._started = datetime.now(timezone.utc)
        self._playbook = os.path.basename(playbook._file_name)

    def _collect_facts(self, result):
        facts = result._result.get("ansible_facts") or {}
        host = self._host(result._host.get_name())
        for name, value in facts.items():
            # Each role owns one list; a later set_fact of it replaces the earlier one.
            if name.endswith("_report_entries") and isinstance(value, list):
                host["entries"][name] = list(value)
        if "maintenance_window_status" in facts:
            host["window"] = facts["maintenance_window_status"]

    def _collect_window(self, result):
        # A refused window check fails the task before any fact is set; its
        # result still carries the decision (next opening, reason) for the report.
        if str(result._task.action).endswith("maintenance_window") and "mode" in result._result:
            self._host(result._host.get_name())["window"] = dict(result._result)

    def v2_runner_on_ok(self, result):
        self._collect_facts(result)
        self._collect_window(result)
        if result._result.get("changed"):
            self._host(result._host.get_name())["changed"].append(result._task.get_name())

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if ignore_errors:
            return
        self._collect_window(result)
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
            entries = [entry for name in sorted(data["entries"]) for entry in data["entries"][name]]
            issues = [f"{e.get('name')}: {e.get('detail', '')}" for e in entries
                      if e.get("status") in _ISSUE_STATUSES]
            issues += [f"{f['task']}: {f['msg']}" for f in data["failures"]]
            hosts[name] = {
                "window": _window_line(data["window"]),
                "planned_changes": [e for e in entries if e.get("status") == "planned"],
                "actual_changes": [e for e in entries if e.get("status") == "changed"] + [
                    {"name": task, "status": "changed"} for task in data["changed"]],
                "issues": issues,
                "validation": [f"{e.get('name')}: {e.get('detail', '')}" for e in entries
                               if e.get("action") == "check" and e.get("status") == "ok"],
                "failed": bool(data["failures"]),
                "emergency": (data["window"] or {}).get("emergency"),
                "entries": entries,
            }
        failed = [h for h, d in hosts.items() if d["failed"]]
        with_issues = [h for h, d in hosts.items() if d["issues"]]
        status = "FAILED" if failed else ("COMPLETED WITH ISSUES" if with_issues else "COMPLETED")
        return {
            "maintenance_id": "MAINT-" + self._started.strftime("%Y-%m%d-%H%M%S"),
            "playbook": self._playbook,
            "date": self._started.date().isoformat(),
            "started": self._started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "duration_s": round((finished - self._started).total_seconds(), 1),
            "lead": self.get_option("lead") or getpass.getuser(),
            "status": status,
            "resolution": ("unresolved on " + ", ".join(failed)) if failed else
                          ("see issues" if with_issues else "no issues"),
            "hosts": hosts,
        }


def _window_line(status):
    if not status:
        return "not checked"
    if status.get("mode") == "emergency":
        approval = status.get("emergency") or {}
        return "EMERGENCY approved by {approved_by} ({ticket}): {reason}".format(
            approved_by=approval.get("approved_by"), ticket=approval.get("ticket"), reason=approval.get("reason"))
    if status.get("inside"):
        return "{0} {1} - {2}".format(status.get("window"), status.get("start"), status.get("end"))
    return "outside any window: " + str(status.get("msg", ""))


def _duration_text(seconds):
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


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
        lines += ["", f"## {host}", "", f"Window: {data['window']}", ""]
        for title, items in (
            ("Planned Changes", [f"{e.get('name')}: {e.get('detail', '')}" for e in data["planned_changes"]]),
            ("Actual Changes", [f"{e.get('name')}: {e.get('detail', '')}".rstrip(": ") for e in data["actual_changes"]]),
            ("Issues Encountered", data["issues"]),
            ("Validation", data["validation"]),
        ):
            lines.append(f"### {title}")
            lines += [f"- {item}" for item in items] or ["- none"]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
