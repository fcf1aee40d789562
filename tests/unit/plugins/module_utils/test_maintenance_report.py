"""The report of a run (module_utils/maintenance_report.py): serial batches, outcomes of every host, the
status and resolution, and the merge of slices' reports into one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from ansible.executor.playbook_executor import PlaybookExecutor

from ansible_collections.streamops.maintenance.plugins.module_utils.maintenance_report import (
    COMPLETED,
    FAILED,
    NOT_RUN,
    STOPPED,
    ReportError,
    RunLog,
    dr_test_lines,
    merge_reports,
    plain,
    render_markdown,
    rolling_text,
    run_summary,
    serial_batches,
    write_report,
)

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=timezone.utc)
PLAY = "play-uuid"
HOSTS = [f"fleet-{n:03d}" for n in range(1, 7)]


def record(name, status="done", action="vacuum_analyze", detail="dead tuples 10 -> 0"):
    return {"name": name, "action": action, "status": status, "detail": detail, "before": None, "after": None,
            "seconds": 0.1}


def ran(run, host, *, tasks=3, records=None):
    """A host that ran ``tasks`` tasks and kept its role's records."""
    for _task in range(tasks):
        run.task_started(host)
        run.task_ran(host, "streamops.maintenance.pg_maintenance", 1.0)
    run.keep_role_records(host, "postgres_routine", records or [record("public.readings")])
    run.keep_window(host, {"inside": True, "name": "lab", "start": "s", "end": "e"})


# --------------------------------------------------------------------------- serial batches


@pytest.mark.parametrize("serial, count", [
    ([], 6), ([0], 6), (["0"], 6), ([-1], 5), ([2], 6), (["2"], 5), ([4], 3), (["40%"], 6), (["10%"], 3),
    ([1, 2, "50%"], 7), ([1, 3], 10), (["50%", 0], 9), ([100], 4),
])
def test_serial_batches_are_the_batches_ansible_makes(serial, count):
    hosts = [f"h{n}" for n in range(count)]
    # Ansible's own batching, fed the same hosts and serial.
    executor = SimpleNamespace(_inventory=SimpleNamespace(get_hosts=lambda pattern, order=None: list(hosts)))
    expected = PlaybookExecutor._get_serialized_batches(executor, SimpleNamespace(hosts="all", order=None, serial=serial))
    assert serial_batches(hosts, serial) == expected


def test_a_serial_item_that_is_not_a_number_is_named():
    with pytest.raises(ReportError, match=r"serial item 'two' is not a number of hosts or a percentage"):
        serial_batches(["a", "b"], ["two"])


@pytest.mark.parametrize("serial, max_fail, text", [
    ([2], 0.0, "serial 2, max_fail_percentage 0%"),
    ([1, "50%"], 25, "serial 1, 50%, max_fail_percentage 25%"),
    ([], None, "serial 0"),
])
def test_rolling_text(serial, max_fail, text):
    assert rolling_text(serial, max_fail) == text


# --------------------------------------------------------------------------- outcomes


def test_a_run_where_every_host_finished_is_completed():
    run = RunLog(started=T0, playbook="weekly.yml")
    run.batch_started(PLAY, name="Maintenance checklist", hosts=HOSTS[:2], batch=HOSTS[:2])
    for host in HOSTS[:2]:
        ran(run, host)
    report = run.report(finished=T0 + timedelta(seconds=30), lead="lead")
    assert report["status"] == "COMPLETED" and report["resolution"] == "no issues"
    assert report["duration_s"] == 30.0 and report["maintenance_id"] == "MAINT-2026-1206-020000"
    assert {host: data["outcome"] for host, data in report["hosts"].items()} == dict.fromkeys(HOSTS[:2], COMPLETED)
    assert "batch" not in report["hosts"][HOSTS[0]]  # one batch: nothing rolling to say
    assert report["plays"] == [{"name": "Maintenance checklist", "hosts": 2, "serial": [], "max_fail_percentage": None,
                                "batches_planned": 1, "batches": [HOSTS[:2]]}]


def rolling_stop():
    """serial 2, max_fail_percentage 0: fleet-003 fails in batch 2, Ansible fails fleet-004 at the batch's end."""
    run = RunLog(started=T0, playbook="weekly.yml")
    for number, batch in enumerate((HOSTS[0:2], HOSTS[2:4]), start=1):
        run.batch_started(PLAY, name="Maintenance checklist", hosts=HOSTS, batch=batch, serial=[2],
                          max_fail_percentage=0.0)
        for host in batch:
            ran(run, host)
        if number == 2:
            run.keep_failure("fleet-003", "Fail when a threshold was breached", "health check(s) breached: postgresql")
            run.hosts_failed_by_ansible(PLAY, ["fleet-003"])
    run.hosts_failed_by_ansible(PLAY, ["fleet-003", "fleet-004"])  # the stop, seen at the end of the run
    return run


def test_a_rolling_stop_reports_every_host_the_failed_one_and_those_never_started():
    report = rolling_stop().report(finished=T0 + timedelta(minutes=2), lead="lead")
    outcomes = {host: (data["outcome"], data["outcome_reason"]) for host, data in report["hosts"].items()}
    assert list(outcomes) == HOSTS  # every host of the play, in order, none missing
    reason = ("play 'Maintenance checklist' stopped after batch 2 of 3 (serial 2, max_fail_percentage 0%): "
              "fleet-003 failed in it")
    assert outcomes == {
        "fleet-001": (COMPLETED, None), "fleet-002": (COMPLETED, None),
        "fleet-003": (FAILED, None),
        "fleet-004": (COMPLETED, "ran every task; Ansible counts it failed too, as the play stopped after its batch "
                                 "(when fleet-003 failed)"),
        "fleet-005": (NOT_RUN, reason), "fleet-006": (NOT_RUN, reason),
    }
    assert report["hosts"]["fleet-005"]["issues"] == ["not run: " + reason]
    assert report["hosts"]["fleet-005"]["window"] == "not run"
    assert [report["hosts"][host].get("batch") for host in HOSTS] == [1, 1, 2, 2, None, None]
    assert report["status"] == "FAILED"
    assert report["resolution"] == f"unresolved on fleet-003; fleet-005, fleet-006: not run ({reason})"
    markdown = render_markdown(report)
    assert "- Rolling: play 'Maintenance checklist' (serial 2, max_fail_percentage 0%): 2 of 3 batch(es) started" \
        in markdown
    assert f"## fleet-006\n\nOutcome: not run ({reason})" in markdown


def test_a_host_ansible_stopped_half_way_is_stopped_not_completed():
    """any_errors_fatal (or a future max_fail_percentage) fails the rest of the batch at once: they run only
    their always: tasks after that."""
    run = RunLog(started=T0)
    run.batch_started(PLAY, name="p", hosts=HOSTS[:2], batch=HOSTS[:2])
    ran(run, "fleet-001", tasks=2)
    ran(run, "fleet-002", tasks=2)
    run.keep_failure("fleet-001", "Take the backup set", "pg_dump failed")
    run.hosts_failed_by_ansible(PLAY, ["fleet-001", "fleet-002"])
    run.task_started("fleet-002")  # its always: section
    report = run.report(finished=T0, lead="lead")
    assert report["hosts"]["fleet-002"]["outcome"] == STOPPED
    assert "Ansible stopped it when fleet-001 failed, before its steps were done" in \
        report["hosts"]["fleet-002"]["outcome_reason"]
    assert report["status"] == "FAILED"


def test_hosts_failed_by_ansible_outside_the_current_batch_are_not_marked():
    run = RunLog(started=T0)
    run.batch_started(PLAY, name="p", hosts=HOSTS[:4], batch=HOSTS[2:4], serial=[2])
    ran(run, "fleet-003")
    # fleet-001 failed in an earlier batch: Ansible lists it again, it is not this batch's.
    run.hosts_failed_by_ansible(PLAY, ["fleet-001"])
    assert run.host("fleet-001").marked_failed is None


def test_hosts_a_meta_task_ended_are_not_taken_for_failed():
    run = RunLog(started=T0)
    run.batch_started(PLAY, name="p", hosts=HOSTS[:2], batch=HOSTS[:2])
    ran(run, "fleet-001")
    run.hosts_failed_by_ansible(PLAY, ["fleet-001"])  # meta: end_host; nobody failed
    assert run.report(finished=T0, lead="lead")["hosts"]["fleet-001"]["outcome_reason"] is None


def test_a_play_that_matched_no_hosts_is_not_a_clean_run():
    run = RunLog(started=T0)
    # Ansible names every inventory host as the batch of a play that matched none.
    run.batch_started(PLAY, name="p", hosts=[], batch=["stream-lab", "vitalstream-lab"])
    report = run.report(finished=T0, lead="lead")
    assert report["hosts"] == {}
    assert report["status"] == "FAILED" and "matched no hosts" in report["resolution"]


def test_check_mode_says_so_in_the_status():
    assert run_summary({"a": {"failed": False, "issues": []}}, check_mode=True) == (
        "COMPLETED (check mode: nothing was changed)", "no issues")


def test_issues_make_completed_with_issues():
    run = RunLog(started=T0)
    run.batch_started(PLAY, name="p", hosts=["a"], batch=["a"])
    ran(run, "a", records=[record("redis db 2", status="breach", action="memory", detail="91%")])
    report = run.report(finished=T0, lead="lead")
    assert (report["status"], report["resolution"]) == ("COMPLETED WITH ISSUES", "see issues")
    assert report["hosts"]["a"]["issues"] == ["redis db 2: breach: 91%"]


def test_each_review_has_its_own_section_with_every_finding_and_what_to_do():
    run = RunLog(started=T0)
    run.batch_started(PLAY, name="p", hosts=["a"], batch=["a"])
    ran(run, "a")
    breach = {**record("namespace/production", status="breach", action="network_policy", detail="no NetworkPolicy"),
              "after": {"remedy": "Add a default-deny ingress policy."}}
    unknown = record("api (npm)", status="unknown", action="dependency_audit", detail="npm cannot reach its registry")
    run.keep_role_records("a", "access_review", [breach, record("clusterrolebindings", status="ok", action="binding")])
    # A review task that failed before it returned records: the role keeps a failed record with action run.
    failed = record("container review", status="failed", action="run", detail="cannot reach the Docker engine")
    run.keep_role_records("a", "security_scan", [unknown, failed])
    run.keep_role_records("a", "compliance_review", [])
    report = run.report(finished=T0, lead="lead")
    host = report["hosts"]["a"]
    assert host["reviews"] == {
        "access_review": {"title": "Access Review", "passed": 1, "findings": [
            "namespace/production: breach: no NetworkPolicy. What to do: Add a default-deny ingress policy."]},
        "security_scan": {"title": "Security Scan", "passed": 0, "findings": [
            "api (npm): unknown: npm cannot reach its registry",
            "container review: failed: cannot reach the Docker engine"]},
    }
    # A review's checks are never listed as planned changes, its findings are issues too.
    assert [e["name"] for e in host["planned_changes"]] == ["public.readings"]
    assert report["status"] == "COMPLETED WITH ISSUES"
    markdown = render_markdown(report)
    assert ("### Access Review\n1 finding(s), 1 check(s) passed\n\n- namespace/production: breach: no NetworkPolicy. "
            "What to do: Add a default-deny ingress policy.") in markdown
    assert "### Security Scan" in markdown and "### Compliance Review" not in markdown


# --------------------------------------------------------------------------- the quarter's calendar, the DR test

Q2_PLAN = {"quarter": "Q2", "year": 2027, "now": "2027-05-12T12:00:00+00:00", "timezone": "UTC",
           "automated": [{"step": "backup:validate", "item": "Backup Testing: full backup and restore validation"},
                         {"step": "compliance_review", "item": "Compliance Review: retention checks"},
                         {"step": "dr_test", "item": "DR exercise"}],
           "manual": ["Infrastructure Refresh: hardware/VM upgrades", "Staff Training: certification updates"]}


def calendar_run(plans):
    run = RunLog(started=T0)
    run.batch_started(PLAY, name="p", hosts=list(plans), batch=list(plans))
    for host, plan in plans.items():
        ran(run, host, records=[record("public.readings", status="ok", action="summary", detail="fine")])
        run.keep_role_records(host, "backup", [record("set-1", status="ok", action="verified", detail="verified"),
                                               record("checksums", status="breach", action="verify", detail="1 off")])
        if plan is not None:
            run.keep_calendar(host, plan)
    return run.report(finished=T0, lead="lead")


def test_the_quarters_manual_items_are_one_checklist_for_the_team_and_no_issue():
    report = calendar_run({"a": Q2_PLAN, "b": Q2_PLAN})
    markdown = render_markdown(report)
    assert ("## Manual items this quarter (Q2 2027)\n\nFor the team: the guide's items of this quarter that no "
            "playbook does.\n\n- [ ] Infrastructure Refresh: hardware/VM upgrades\n"
            "- [ ] Staff Training: certification updates\n") in markdown
    assert markdown.count("- [ ] Staff Training") == 1  # once for the run, not per host
    assert markdown.index("## Manual items this quarter") < markdown.index("## a")
    # Manual items are no records: they neither fail the run nor pass for a clean check.
    for host in report["hosts"].values():
        assert not any("Staff Training" in line for line in host["issues"] + host["validation"])
        assert not any("Staff Training" in str(e) for e in host["planned_changes"] + host["entries"])


def test_each_automated_item_shows_the_outcome_of_its_roles_records():
    report = calendar_run({"a": Q2_PLAN})
    calendar = report["hosts"]["a"]["calendar"]
    assert [(item["step"], item["outcome"]) for item in calendar["automated"]] == [
        ("backup:validate", "breach"), ("compliance_review", "not run"), ("dr_test", "not run")]
    markdown = render_markdown(report)
    assert ("### Maintenance calendar Q2 2027: automated items\n\n"
            "- Backup Testing: full backup and restore validation (backup:validate): breach (1 breach, 1 ok)\n"
            "- Compliance Review: retention checks (compliance_review): not run (no record of compliance_review: the "
            "run stopped before it, or this host gives it nothing to do)\n") in markdown


def test_a_manual_item_of_some_hosts_names_them_and_a_run_without_calendar_has_no_checklist():
    other = {**Q2_PLAN, "manual": ["Staff Training: certification updates", "Vendor Review"]}
    markdown = render_markdown(calendar_run({"a": Q2_PLAN, "b": other, "c": None}))
    assert "- [ ] Infrastructure Refresh: hardware/VM upgrades (a)\n" in markdown
    assert "- [ ] Staff Training: certification updates\n" in markdown
    assert "- [ ] Vendor Review (b)\n" in markdown
    plain_run = render_markdown(calendar_run({"a": None}))
    assert "Manual items" not in plain_run and "Maintenance calendar" not in plain_run


def test_a_quarter_without_manual_items_says_so():
    markdown = render_markdown(calendar_run({"a": {**Q2_PLAN, "automated": [], "manual": []}}))
    assert "## Manual items this quarter (Q2 2027)" in markdown and "- none this quarter" in markdown


DR_AFTER = {"backup_id": "streamsystems-20270512T020000Z", "source_server": "127.0.0.1:5432",
            "target_server": "127.0.0.1:6543", "target_database": "streamsystems_dr",
            "rto_seconds": 42.5, "rto_target_seconds": 7200, "rpo_seconds": 93784, "rpo_target_seconds": 86400,
            "tables": [{"table": "public.trades", "rows": 1000, "expected_rows": 1000, "checksum": "md5sum64:17",
                        "expected_checksum": "md5sum64:17", "ok": True},
                       {"table": "public.positions", "rows": 99, "expected_rows": 100, "checksum": "md5sum64:3",
                        "expected_checksum": "md5sum64:4", "ok": False}]}


def test_the_dr_test_has_its_section_with_rto_rpo_against_targets_and_each_table():
    run = RunLog(started=T0)
    run.batch_started(PLAY, name="p", hosts=["a"], batch=["a"])
    dr_record = {**record("dr test", status="breach", action="dr_test", detail="RPO 1 day 2 h over 1 day"),
                 "after": DR_AFTER}
    run.keep_role_records("a", "dr_test", [record("restore", status="ok", action="verify", detail="restored"),
                                           dr_record])
    run.keep_calendar("a", {**Q2_PLAN, "quarter": "Q1"})
    report = run.report(finished=T0, lead="lead")
    host = report["hosts"]["a"]
    assert host["dr_tests"] == [{"role": "dr_test", **dr_record}]
    # A DR test judges; a failed or breached one is an issue, never a planned change.
    assert host["planned_changes"] == [] and "dr test: breach: RPO 1 day 2 h over 1 day" in host["issues"]
    assert ("dr_test", "breach") in [(i["step"], i["outcome"]) for i in host["calendar"]["automated"]]
    markdown = render_markdown(report)
    assert ("### Disaster recovery test\n\n"
            "- Result: breach: RPO 1 day 2 h over 1 day\n"
            "- Set: streamsystems-20270512T020000Z\n"
            "- Restored: 127.0.0.1:5432 -> 127.0.0.1:6543, database streamsystems_dr\n"
            "- RTO: 0 min 42 s (target 2 h 0 min 0 s): within target\n"
            "- RPO: 26 h 3 min 4 s (target 24 h 0 min 0 s): OVER target\n\n"
            "| table | rows | expected rows | checksum | expected checksum | ok |\n"
            "|---|---:|---:|---|---|---|\n"
            "| public.trades | 1000 | 1000 | md5sum64:17 | md5sum64:17 | yes |\n"
            "| public.positions | 99 | 100 | md5sum64:3 | md5sum64:4 | NO |\n") in markdown


def test_a_dr_test_that_measured_nothing_says_so():
    after = {"backup_id": None, "rto_seconds": None, "rto_target_seconds": None, "rpo_seconds": 60,
             "rpo_target_seconds": None, "tables": []}
    failed = {**record("dr test", status="failed", action="dr_test", detail="refused"), "after": after}
    lines = "\n".join(dr_test_lines([failed]))
    assert "- Set: ?" in lines and "- RTO: not measured (no target)" in lines
    assert "- RPO: 1 min 0 s (no target)" in lines and "| table |" not in lines
    assert dr_test_lines([{**record("dr test", status="failed", action="dr_test"), "after": None}])[0] == (
        "### Disaster recovery test")


def test_a_later_fact_of_the_same_role_replaces_the_earlier():
    run = RunLog(started=T0)
    run.keep_role_records("a", "backup", [record("set 1")])
    run.keep_role_records("a", "backup", [record("set 2")])
    assert [r["name"] for r in run.host("a").role_records["backup"]] == ["set 2"]


def test_plain_keeps_no_subclass_or_tuple():
    class Tagged(str):
        pass

    class Count(int):
        pass

    value = plain({Tagged("k"): (Tagged("v"), Count(3), True, 1.5, None, {"x": [Tagged("y")]}), "o": object})
    assert value == {"k": ["v", 3, True, 1.5, None, {"x": ["y"]}], "o": "<class 'object'>"}
    assert [type(item) for item in (next(iter(value)), value["k"][0], value["k"][1])] == [str, str, int]


# --------------------------------------------------------------------------- merging slices


def run_over(hosts, *, started, failed=(), check_mode=False, playbook="weekly.yml", lead="lead"):
    """The report of one run (one slice) over ``hosts``, each host's records the same whatever the slice."""
    run = RunLog(started=started, playbook=playbook, check_mode=check_mode, limit=",".join(hosts))
    run.batch_started(PLAY, name="Maintenance checklist", hosts=hosts, batch=hosts)
    for host in hosts:
        ran(run, host, records=[record(f"{host} public.readings")])
        if host in failed:
            run.keep_failure(host, "Take the backup set", "pg_dump failed")
    return run.report(finished=started + timedelta(seconds=40), lead=lead)


SLICES = [HOSTS[0::3], HOSTS[1::3], HOSTS[2::3]]


def test_merged_slices_equal_one_complete_report():
    whole = run_over(HOSTS, started=T0)
    slices = [run_over(hosts, started=T0 + timedelta(seconds=number)) for number, hosts in enumerate(SLICES)]
    merged = merge_reports(slices, expected_hosts=HOSTS)
    assert merged["hosts"] == whole["hosts"]  # every host exactly once, with the same section
    assert list(merged["hosts"]) == HOSTS
    assert (merged["status"], merged["resolution"]) == (whole["status"], whole["resolution"]) == ("COMPLETED", "no issues")
    assert merged["started"] == T0.isoformat(timespec="seconds")
    assert merged["duration_s"] == 42.0  # first start to last finish
    assert merged["maintenance_id"] == "MAINT-2026-1206-020000-merged"
    assert [one["hosts"] for one in merged["slices"]] == [sorted(hosts) for hosts in SLICES]
    assert "- Slices: MAINT-2026-1206-020000 (2 host(s), COMPLETED)" in render_markdown(merged)


def test_the_merge_recomputes_status_and_resolution_over_all_slices():
    slices = [run_over(SLICES[0], started=T0), run_over(SLICES[1], started=T0, failed=["fleet-005"]),
              rolling_stop_slice()]
    merged = merge_reports(slices)
    assert merged["status"] == "FAILED"
    assert merged["resolution"].startswith("unresolved on fleet-005")
    assert "fleet-x2: not run (" in merged["resolution"]


def rolling_stop_slice():
    run = RunLog(started=T0, playbook="weekly.yml")
    run.batch_started("p2", name="Maintenance checklist", hosts=["fleet-x1", "fleet-x2"], batch=["fleet-x1"], serial=[1])
    ran(run, "fleet-x1")
    run.keep_failure("fleet-x1", "t", "boom")
    return run.report(finished=T0, lead="lead")


def test_a_host_reported_by_two_slices_is_refused_naming_it_and_the_slices():
    first = run_over(SLICES[0], started=T0)
    second = run_over(SLICES[1] + ["fleet-004"], started=T0 + timedelta(seconds=5))
    with pytest.raises(ReportError) as caught:
        merge_reports([first, second], expected_hosts=HOSTS)
    assert caught.value.msg == ("host(s) reported by more than one run: fleet-004 in MAINT-2026-1206-020000, "
                                "MAINT-2026-1206-020005")
    assert caught.value.details["hosts"] == ["fleet-004"]


def test_an_expected_host_missing_is_refused_naming_it():
    slices = [run_over(SLICES[0], started=T0), run_over(SLICES[1], started=T0)]
    with pytest.raises(ReportError, match=r"^expected host\(s\) missing from every report: fleet-003, fleet-006$"):
        merge_reports(slices, expected_hosts=HOSTS)


def test_a_host_nobody_expected_is_refused():
    with pytest.raises(ReportError, match=r"^host\(s\) reported but not expected: fleet-004$"):
        merge_reports([run_over(SLICES[0], started=T0)], expected_hosts=["fleet-001"])


@pytest.mark.parametrize("other, message", [
    ({"playbook": "daily.yml"}, "playbook differs"),
    ({"check_mode": True}, "check_mode differs"),
])
def test_reports_of_different_runs_are_refused(other, message):
    first = run_over(SLICES[0], started=T0)
    second = {**run_over(SLICES[1], started=T0), **other}
    with pytest.raises(ReportError, match=message):
        merge_reports([first, second])


@pytest.mark.parametrize("reports, message", [
    ([], "no reports to merge"),
    ([{"maintenance_id": "M1", "hosts": {}}], r"report 1 \(M1\) is not a maintenance report: it has no playbook, "
                                              "started, finished, check_mode"),
])
def test_what_is_not_a_set_of_reports_is_refused(reports, message):
    with pytest.raises(ReportError, match=message):
        merge_reports(reports)


def test_a_bad_time_is_named():
    report = {**run_over(SLICES[0], started=T0), "started": "yesterday"}
    with pytest.raises(ReportError, match="report time started 'yesterday' is not an ISO 8601 date and time"):
        merge_reports([report])


def test_a_report_from_before_outcomes_gets_the_outcome_its_failed_flag_says():
    old = run_over(SLICES[0], started=T0, failed=["fleet-001"])
    for section in old["hosts"].values():
        del section["outcome"], section["outcome_reason"]
    merged = merge_reports([old])
    assert [merged["hosts"][host]["outcome"] for host in SLICES[0]] == [FAILED, COMPLETED]


def test_write_report_writes_json_and_markdown(tmp_path):
    report = run_over(SLICES[0], started=T0)
    base = write_report(report, str(tmp_path / "reports"))
    assert json.loads((tmp_path / "reports" / "MAINT-2026-1206-020000.json").read_text()) == report
    assert (tmp_path / "reports" / "MAINT-2026-1206-020000.md").read_text() == render_markdown(report)
    assert base == str(tmp_path / "reports" / "MAINT-2026-1206-020000")


def test_reports_are_named_by_the_names_given():
    first = run_over(SLICES[0], started=T0)
    with pytest.raises(ReportError, match=r"fleet-001 in slice1/a.json, slice1/b.json; fleet-004 in slice1/a.json"):
        merge_reports([first, first], names=["slice1/a.json", "slice1/b.json"])
