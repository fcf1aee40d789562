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
  - With the quarterly checklist's C(maintenance_calendar_plan) fact (this quarter's items of the maintenance
    calendar), the report lists the quarter's manual items once as a checklist for the team (C(- [ ] item)) and,
    per host, each automated item with the outcome of its role's records; a V(dr_test) record (the DR test's
    summary) gets a Disaster recovery test section (RTO and RPO against their targets, each table's rows and
    checksum).
  - Every host of every play is in the report with an C(outcome) - V(completed), V(failed), V(stopped) (the play
    stopped it before its steps were done) or V(not run) (under C(serial), its batch never started because the
    rolling maintenance stopped after an earlier batch; the reason names the batch and the hosts that failed).
  - The report building, its Markdown and the merge of several runs' reports (AWX job slices) are in
    C(plugins/module_utils/maintenance_report.py); see C(docs/fleet.md).
  - The report is named C(<report_dir>/<maintenance_id>.md) (and C(.json)). The Maintenance ID is the first
    C(maintenance_id) fact a task sets (the C(streamops.maintenance.notify) role's C(id.yml) sets one, so that the
    notices name the same file; letters, digits, C(.), C(_) and C(-) only), else the run's start time
    (C(MAINT-%Y-%m%d-%H%M%S)).
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
import os
import time
from datetime import datetime, timezone

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.streamops.maintenance.plugins.module_utils.maintenance_report import (
    COLLECTION,
    RunLog,
    write_report,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import gather_records

_FACT_SUFFIX = "_report_records"


class CallbackModule(CallbackBase):
    """Thin: turns Ansible's events into calls on a RunLog (module_utils/maintenance_report.py), which keeps
    only records, task names and seconds per host, and writes its report when the run ends."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "streamops.maintenance.maintenance_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._run = RunLog(started=datetime.now(timezone.utc))
        self._task_started = {}
        self._play = None  # the current batch's copy of the play: Ansible marks its failed hosts on it
        self._guard_play = False

    def v2_playbook_on_start(self, playbook):
        self._run = RunLog(started=datetime.now(timezone.utc), playbook=os.path.basename(playbook._file_name),
                           check_mode=bool(context.CLIARGS.get("check")), limit=context.CLIARGS.get("subset"))

    def v2_playbook_on_play_start(self, play):
        # Sent once per serial batch, with the inventory restricted to the batch.
        self._note_hosts_failed_by_ansible()
        play_vars = play.get_variable_manager().get_vars(play=play)  # the hosts as Ansible names them to tasks
        # A play that only checks the launch's inputs (restore.yml's, on localhost) is no maintained host: its
        # hosts enter the report only through a failure (the refusal, which is then the whole run).
        self._guard_play = bool(play_vars.get("maintenance_report_guard_play"))
        self._play = None if self._guard_play else play
        if self._guard_play:
            return
        self._run.batch_started(play._uuid, name=play.get_name(), hosts=play_vars.get("ansible_play_hosts_all", []),
                                batch=play_vars.get("ansible_play_batch", []), serial=play.serial,
                                max_fail_percentage=play.max_fail_percentage)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._note_hosts_failed_by_ansible()

    def _note_hosts_failed_by_ansible(self):
        # Ansible fails the rest of a batch (max_fail_percentage, any_errors_fatal) without an event per host;
        # the play it iterates lists them (a private attribute, hence the default).
        if self._play is not None:
            self._run.hosts_failed_by_ansible(self._play._uuid, getattr(self._play, "_removed_hosts", ()))

    def v2_runner_on_start(self, host, task):
        if self._guard_play:
            return
        self._task_started[(host.get_name(), task._uuid)] = time.monotonic()
        self._run.task_started(host.get_name())

    def _time(self, result):
        started = self._task_started.pop((result._host.get_name(), result._task._uuid), None)
        # FQCN: every task of the collection writes it out
        self._run.task_ran(result._host.get_name(), str(result._task.action),
                           None if started is None else time.monotonic() - started)

    def _collect_facts(self, result):
        facts = result._result.get("ansible_facts") or {}
        host = result._host.get_name()
        for name, value in facts.items():
            if name.endswith(_FACT_SUFFIX) and isinstance(value, list):
                self._run.keep_role_records(host, name[:-len(_FACT_SUFFIX)], value)
        if isinstance(facts.get("maintenance_calendar_plan"), dict) and facts["maintenance_calendar_plan"]:
            self._run.keep_calendar(host, facts["maintenance_calendar_plan"])
        if isinstance(facts.get("maintenance_window_status"), dict) and facts["maintenance_window_status"]:
            self._run.keep_window(host, facts["maintenance_window_status"])
        if "maintenance_id" in facts and not self._run.keep_maintenance_id(facts["maintenance_id"]) \
                and self._run.maintenance_id != facts["maintenance_id"]:
            self._display.warning(f"maintenance_report: maintenance_id {facts['maintenance_id']!r} of {host} not used "
                                  f"(the report is {self._run.maintenance_id or 'named by the start time'})")

    def _collect_records(self, result):
        """The records of a collection module task (kept for tasks outside a role that publishes its own)."""
        action = str(result._task.action)
        if not action.startswith(COLLECTION):
            return
        host = result._host.get_name()
        # A refused window check fails the task before any fact is set; its decision is in the result.
        if action.endswith("maintenance_window") and isinstance(result._result.get("window"), dict):
            self._run.keep_window(host, result._result["window"])
        # The collection's own roles publish their records as facts; these are the modules used elsewhere.
        if _in_collection_role(result._task):
            return
        try:
            records = gather_records(dict(result._result))
        except TypeError:
            return
        role = result._task._role
        self._run.keep_task_records(host, role.get_name(include_role_fqcn=False) if role is not None else None,
                                    records)

    def v2_runner_on_skipped(self, result):
        if self._guard_play:
            return
        self._time(result)

    def v2_runner_on_ok(self, result):
        if self._guard_play:
            return
        self._time(result)
        self._collect_facts(result)
        self._collect_records(result)
        if result._result.get("changed") and not _keeps_records(result._task):
            self._run.keep_change(result._host.get_name(), result._task.get_name())

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._time(result)
        self._collect_records(result)
        if ignore_errors or _counts_failure_only(result._task):
            return
        self._run.keep_failure(result._host.get_name(), result._task.get_name(), result._result.get("msg", "failed"))

    def v2_runner_on_unreachable(self, result):
        self._time(result)
        self._run.keep_failure(result._host.get_name(), result._task.get_name(),
                               "unreachable: " + str(result._result.get("msg", "")))

    def v2_playbook_on_stats(self, stats):
        self._note_hosts_failed_by_ansible()
        report = self._run.report(finished=datetime.now(timezone.utc),
                                  lead=self.get_option("lead") or getpass.getuser())
        base = write_report(report, self.get_option("report_dir"))
        self._display.display(f"Maintenance report: {base}.md ({report['status']})")


def _in_collection_role(task) -> bool:
    role = task._role
    return role is not None and role.get_name(include_role_fqcn=True).startswith(COLLECTION)


def _keeps_records(task) -> bool:
    """Its changes are in records already: a module of the collection, or any task of the collection's roles."""
    return str(task.action).startswith(COLLECTION) or _in_collection_role(task)


def _counts_failure_only(task) -> bool:
    """The maintenance_report role's last task fails a host that failed earlier, only so that Ansible counts it
    for max_fail_percentage (see the role): the failure it repeats is reported already."""
    role = task._role
    return (role is not None and role.get_name(include_role_fqcn=True) == COLLECTION + "maintenance_report"
            and str(task.action) in ("ansible.builtin.fail", "fail"))
