"""Overlapping runs (campaign class overlapping_runs): real ansible-playbook processes on one estate at once.

Each run is playbooks/emergency.yml on a two-host inventory of its own (``ansible_connection: local``, no
services: the checklist is the run lock, the window gate and the notice/report), the emergency approval given,
the checklist cut to the window gate. A run told to hold (``maintenance_window_notify_tasks``, the window role's
hook, run after the lock is taken) marks ``<host>.holding`` and waits for ``<host>.go``: the test acts while the
first run really holds its lock. What is checked is what the lock directory holds, the refused run's message,
and each run's report; never Docker or Kubernetes.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.helpers import BIN, REPO, ansible_env

pytestmark = [pytest.mark.ansible]

EXTRA = {
    "maintenance_window_emergency": {"approved_by": "cto@example.com", "reason": "overlap drill", "ticket": "INC-20"},
    "emergency_roles": [], "emergency_backup": False,
    # Only the window gate: the lock is taken before it and released in the always: section after it.
    "maintenance_checklists": {"emergency": ["maintenance_window"]},
}
HOSTS = ("est-a", "est-b", "est-c")
# The play's host pattern is an extra var (a play keyword cannot read inventory vars).
EXTRA["maintenance_hosts"] = "estates"
HOLD_TASKS = """\
- name: Say this run holds its lock now
  ansible.builtin.file:
    path: "{{ lock_test_dir }}/{{ inventory_hostname }}.holding"
    state: touch
    mode: "0600"
- name: Wait for the test's go
  ansible.builtin.wait_for:
    path: "{{ lock_test_dir }}/{{ inventory_hostname }}.go"
    timeout: 40
"""


class Estates:
    """A tiny inventory (hosts est-a, est-b and est-c, each its own estate), its lock directory, and runs on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.locks = root / "locks"
        (root / "inventory").mkdir(parents=True)
        (root / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                     "maintenance_window_windows": [], "maintenance_lock_dir": str(self.locks)},
            "children": {"estates": {"hosts": {host: None for host in HOSTS}}},
        }}))
        (root / "hold.yml").write_text(HOLD_TASKS)
        self.runs = 0

    def start(self, *limit: str, hold: bool = False) -> tuple[subprocess.Popen, Path]:
        self.runs += 1
        reports = self.root / f"reports-{self.runs}"
        extra = dict(EXTRA, lock_test_dir=str(self.root))
        if hold:
            extra["maintenance_window_notify_tasks"] = str(self.root / "hold.yml")
        argv = [str(BIN / "ansible-playbook"), "-i", str(self.root / "inventory"),
                str(REPO / "playbooks" / "emergency.yml"), "-e", json.dumps(extra)]
        if limit:
            argv += ["--limit", ",".join(limit)]
        # A session of its own: kill -9 of its process group is a killed run (workers included).
        process = subprocess.Popen(argv, cwd=REPO, env=ansible_env(MAINTENANCE_REPORT_DIR=str(reports)),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        return process, reports

    def run(self, *limit: str) -> tuple[int, str, dict]:
        process, reports = self.start(*limit)
        return self.finish(process, reports)

    @staticmethod
    def finish(process: subprocess.Popen, reports: Path, timeout: float = 50) -> tuple[int, str, dict]:
        try:
            out = process.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out = process.communicate()[0]
            raise AssertionError(f"ansible-playbook ran over {timeout}s:\n{out[-4000:]}") from None
        files = sorted(reports.glob("MAINT-*.json"))
        return process.returncode, out, json.loads(files[0].read_text()) if files else {}

    def wait_holding(self, host: str, process: subprocess.Popen, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while not (self.root / f"{host}.holding").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                out = process.communicate()[0] if process.poll() is not None else ""
                raise AssertionError(f"the run never held {host}'s lock:\n{out[-4000:]}")
            time.sleep(0.1)

    def go(self, host: str) -> None:
        (self.root / f"{host}.go").write_text("")

    def lock(self, host: str) -> dict:
        return json.loads((self.locks / f"{host}.lock").read_text())

    def leftovers(self, *expected: str) -> list[str]:
        """What the lock directory holds besides the ``expected`` lock files."""
        found = sorted(os.listdir(self.locks)) if self.locks.exists() else []
        return [name for name in found if name not in expected]


def issues_of(report: dict, host: str) -> str:
    """What the report says went wrong on ``host`` (the failed records and tasks, with their messages)."""
    return " | ".join(str(issue) for issue in report["hosts"][host]["issues"])


def lock_said(report: dict, host: str) -> str:
    return " ".join(entry["detail"] for entry in report["hosts"][host]["entries"] if entry["role"] == "maintenance_lock")


def roles_run(report: dict, host: str) -> set[str]:
    return {entry["role"] for entry in report["hosts"][host]["entries"]}


def completed(report: dict, host: str) -> bool:
    return report["hosts"][host]["outcome"] == "completed"


def foreign_lock(name: str, *, acquired: datetime, ttl: timedelta) -> dict:
    """A lock as an AWX execution environment on another machine writes it (another boot id and pid namespace)."""
    return {"format": 1, "name": name, "run_id": f"MAINT-FOREIGN-{name}@awx-ee-7:17:55", "took_over": None,
            "acquired_at": acquired.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expires_at": (acquired + ttl).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "holder": {"maintenance_id": f"MAINT-FOREIGN-{name}", "user": "awx", "controller": "awx-ee-7", "pid": 17,
                       "pid_start": "55", "boot_id": "00000000-0000-0000-0000-000000000007",
                       "pid_namespace": "pid:[4026532999]", "machine_id": "0" * 32, "awx_job_id": "42",
                       "awx_user": "alice"}}


def test_overlapping_runs(campaign, tmp_path):
    """Four runs, overlapping as on a busy night (the cases share them to keep the lane short):

    A holds est-a and B holds est-b at the same time (two estates never block each other); C, started on est-a
    meanwhile, is refused at its start naming A; A finishes and releases; B is killed with -9; then another
    controller's lock that expired is left on est-a, and est-c holds a fresh one of another controller. D runs every
    estate: est-a (C's re-run, taking the expired lock over), est-b (B's lock, proven stale), est-c (refused).
    """
    estates = Estates(tmp_path)
    estates.locks.mkdir()
    now = datetime.now(timezone.utc)
    fresh = foreign_lock("est-c", acquired=now - timedelta(minutes=5), ttl=timedelta(hours=6))
    (estates.locks / "est-c.lock").write_text(json.dumps(fresh))
    fresh_bytes = (estates.locks / "est-c.lock").read_bytes()

    with ExitStack() as cases:
        foreign = cases.enter_context(campaign.case(
            "overlapping_runs", "locks of another controller: expired taken over, fresh refused"))
        killed = cases.enter_context(campaign.case(
            "overlapping_runs", "first run killed (-9) mid-run, the next takes its lock over as proven stale"))
        second = cases.enter_context(campaign.case("overlapping_runs", "second run of an estate while the first runs"))
        two = cases.enter_context(campaign.case("overlapping_runs", "two estates at once, each run holding its own"))

        run_a, reports_a = estates.start("est-a", hold=True)
        run_b, reports_b = estates.start("est-b", hold=True)
        try:
            estates.wait_holding("est-a", run_a)
            estates.wait_holding("est-b", run_b)
            held_a, held_b = estates.lock("est-a"), estates.lock("est-b")
            two.check_data(held_a["run_id"] != held_b["run_id"], "two runs with one run id")

            rc_c, out_c, report_c = estates.run("est-a")
            second.check_error({"failed": rc_c != 0 and report_c["hosts"]["est-a"]["failed"],
                                "msg": issues_of(report_c, "est-a") if report_c else out_c[-3000:]},
                               names=["est-a", held_a["holder"]["maintenance_id"], held_a["run_id"],
                                      held_a["holder"]["user"], held_a["holder"]["controller"],
                                      f"pid {held_a['holder']['pid']}", "since", held_a["acquired_at"],
                                      held_a["expires_at"], "did nothing"])
            # Refused before any work: no window decision, no step; the first run's lock untouched.
            second.check_data(roles_run(report_c, "est-a") <= {"maintenance_lock"},
                              f"the refused run went past its lock: {sorted(roles_run(report_c, 'est-a'))}")
            second.check_data(estates.lock("est-a") == held_a, "the first run's lock changed under the refused run")

            estates.go("est-a")
            rc_a, out_a, report_a = estates.finish(run_a, reports_a)
            two.check_converged(rc_a == 0 and completed(report_a, "est-a"), f"A: rc {rc_a}\n{out_a[-2000:]}")
            second.check_no_partial([name for name in os.listdir(estates.locks) if name.startswith("est-a")],
                                    "est-a's lock after the first run ended")

            os.killpg(run_b.pid, signal.SIGKILL)  # ansible-playbook and its workers: its always: never runs
            run_b.communicate(timeout=20)
            assert estates.lock("est-b") == held_b, "the killed run's lock is not what it held"
        finally:
            for process in (run_a, run_b):
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.communicate()

        expired = foreign_lock("est-a", acquired=now - timedelta(hours=7), ttl=timedelta(hours=6))
        (estates.locks / "est-a.lock").write_text(json.dumps(expired))
        rc_d, out_d, report_d = estates.run()
        assert report_d, f"no report of the last run: rc {rc_d}\n{out_d[-3000:]}"
        second.check_converged(completed(report_d, "est-a"), f"est-a: {issues_of(report_d, 'est-a')}")
        two.check_converged(completed(report_d, "est-b"), f"est-b: {issues_of(report_d, 'est-b')}")

        killed.check_error(lock_said(report_d, "est-b"),
                           names=["took over", held_b["holder"]["maintenance_id"], f"pid {held_b['holder']['pid']}",
                                  "is gone"], failed=False)
        killed.check_no_partial([name for name in os.listdir(estates.locks) if name.startswith("est-b")],
                                "est-b's lock after the run that took it over")
        killed.check_converged(completed(report_d, "est-b"), f"est-b: {issues_of(report_d, 'est-b')}")

        foreign.check_error(lock_said(report_d, "est-a"),
                            names=["took over", "MAINT-FOREIGN-est-a", "AWX user alice (job 42)", "expired"],
                            failed=False)
        foreign.check_converged(completed(report_d, "est-a"), f"est-a: {issues_of(report_d, 'est-a')}")
        foreign.check_error({"failed": report_d["hosts"]["est-c"]["failed"], "msg": issues_of(report_d, "est-c")},
                            names=["est-c", "MAINT-FOREIGN-est-c", "AWX user alice (job 42)", "awx-ee-7", "since",
                                   fresh["acquired_at"], str(estates.locks / "est-c.lock")])
        foreign.check_data((estates.locks / "est-c.lock").read_bytes() == fresh_bytes,
                           "the other controller's fresh lock changed")
        foreign.check_no_partial(estates.leftovers("est-c.lock"), "lock directory after the last run")
