"""The two notices from realistic records: the plan of a check-mode run, and the completion notice."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import maintenance_plan as plan
from ansible_collections.streamops.maintenance.plugins.module_utils.maintenance_report import RunLog
from ansible_collections.streamops.maintenance.plugins.module_utils.records import make_record

MB = 1024 * 1024
# pg_maintenance's planned records carry the module's own estimate and lock.
VACUUM_FULL = make_record("public.trades", "vacuum_full", "planned",
                          "dead tuples 60000, size 50.0 MB, about 12 s, lock ACCESS EXCLUSIVE",
                          before={"dead_tuples": 60000, "total_bytes": 50 * MB},
                          after={"estimated_seconds": 12.0, "lock": "ACCESS EXCLUSIVE (blocks every read and write)"})
VACUUM = make_record("public.orders", "vacuum_analyze", "planned", "dead tuples 5000",
                     before={"dead_tuples": 5000, "total_bytes": 100 * MB})
LEFT_OUT = make_record("public.small", "vacuum_analyze", "unchanged", "below the thresholds")
BREACH = make_record("redis db 0", "memory", "breach", "memory 91% of maxmemory",
                     after={"ratio": 0.91, "remedy": "raise maxmemory or evict"})
DEPLOY = make_record("web 1.2.0", "deploy", "planned", "blue 1.1.0 -> green 1.2.0")
WEEKLY = {"windows": [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}],
          "timezone": "America/New_York", "window": "", "blackouts": [], "now": "",
          "emergency": {"approved_by": "", "reason": "", "ticket": ""}}
# Friday, 48 hours before the window: outside it, the decision names only the next start.
FRIDAY = {"allowed": False, "mode": "denied", "inside": False, "now": "2026-01-16T07:00:00+00:00", "name": None,
          "start": None, "end": None, "next_start": "2026-01-18T02:00:00-05:00", "next_window": "weekly",
          "msg": "maintenance work not allowed: outside every window"}


def hosts(**extra):
    return {"db1": {"records": {"postgres_routine": [VACUUM_FULL, VACUUM, LEFT_OUT], "health_check": [BREACH]},
                    "window": FRIDAY, "guard": WEEKLY, "estate": "stream_systems", **extra},
            "web1": {"records": {"deploy": [DEPLOY]}, "window": FRIDAY, "guard": WEEKLY, "estate": "stream_systems"}}


def test_the_plan_groups_by_action_with_sizes_locks_and_estimates():
    notice = plan.plan_notice(hosts(), schedule="weekly", bytes_per_second=50 * MB)
    db1 = notice["summary"]["hosts"]["db1"]
    assert [(g["action"], g["count"], g["bytes"]) for g in db1["changes"]] == [
        ("vacuum_full", 1, 50 * MB), ("vacuum_analyze", 1, 100 * MB)]
    full, vacuum = db1["changes"]
    assert full["lock"].startswith("ACCESS EXCLUSIVE") and full["items"][0]["basis"] == "module"
    assert vacuum["lock"].startswith("SHARE UPDATE EXCLUSIVE") and vacuum["items"][0]["basis"] == "rate"
    assert db1["estimated_seconds"] == 14.0  # 12 s of the module's own + 100 MB at 50 MB/s
    assert db1["issues"] == ["redis db 0: breach: memory 91% of maxmemory. What to do: raise maxmemory or evict"]
    web1 = notice["summary"]["hosts"]["web1"]
    assert web1["changes"][0]["lock"] == "none (blue/green switch)" and web1["without_estimate"] == 1
    assert "- vacuum_analyze x1: 100.0 MB, ~2 s; lock: SHARE UPDATE EXCLUSIVE" in notice["text"]
    assert "- deploy x1: 0 B, no estimate; lock: none (blue/green switch)" in notice["text"]
    json.dumps(notice["summary"])  # plain JSON for the webhook and the attachment


def test_the_window_of_the_plan_comes_from_the_settings_and_the_work_fits():
    notice = plan.plan_notice(hosts(), schedule="weekly", estate="")
    window = notice["summary"]["window"]
    assert (window["start"], window["end"], window["seconds"]) == (
        "2026-01-18T02:00:00-05:00", "2026-01-18T04:00:00-05:00", 7200)
    assert notice["summary"]["fits_window"] is True
    assert notice["subject"] == ("[stream_systems] Planned weekly maintenance 2026-01-18T02:00:00-05:00: "
                                 "3 change(s) on 2 host(s), 1 issue(s)")


@pytest.mark.parametrize(("rate", "fits", "words"), [
    (50 * MB, True, "fits: longest host 14 s of a 2h window; 1 change(s) have no estimate"),
    (10 * 1024, False, "does NOT fit: longest host 2h 50m 52s of a 2h window; 1 change(s) have no estimate"),
])
def test_whether_the_longest_host_fits(rate, fits, words):
    notice = plan.plan_notice(hosts(), bytes_per_second=rate)
    assert (notice["summary"]["fits_window"], notice["summary"]["estimate"]) == (fits, words)
    assert notice["subject"].endswith(", does NOT fit the window") is (not fits)


def test_without_window_settings_the_next_windows_length_is_unknown():
    notice = plan.plan_notice({"db1": {"records": {"postgres_routine": [VACUUM]}, "window": FRIDAY}})
    assert notice["summary"]["fits_window"] is None
    assert notice["summary"]["estimate"].startswith("cannot tell: the window's length is not known")
    assert notice["summary"]["window"]["start"] == "2026-01-18T02:00:00-05:00"


def test_inside_a_window_the_decision_gives_its_length():
    inside = {**FRIDAY, "inside": True, "name": "weekly", "start": "2026-01-18T02:00:00-05:00",
              "end": "2026-01-18T03:00:00-05:00"}
    window = plan.plan_window(inside, None)
    assert (window["name"], window["seconds"]) == ("weekly", 3600)


@pytest.mark.parametrize(("record", "expected"), [
    (VACUUM_FULL, (12.0, "module")),
    (VACUUM, (2.0, "rate")),
    (make_record("t", "vacuum_full", "done", "", seconds=30.5), (30.5, "measured")),
    (make_record("snap", "snapshot", "planned", "", after={"bytes": 5 * MB}), (0.1, "rate")),
    (DEPLOY, (None, "unknown")),
])
def test_estimate_of_one_change(record, expected):
    assert plan.record_estimate(record, 50 * MB) == expected


def test_the_completion_notice_says_what_the_report_says():
    done = make_record("public.trades", "vacuum_full", "done", "size 50.0 MB -> 20.0 MB", seconds=11.0)
    ok = make_record("postgresql", "tcp", "ok", "answers")
    facts = {"db1": {"records": {"postgres_routine": [done, LEFT_OUT], "health_check": [ok, BREACH]}, "window": None},
             "db2": {"records": {"postgres_routine": [done]}, "window": None}}
    notice = plan.completion_notice(facts, failed_hosts=["db2"], estate="stream_systems", schedule="weekly",
                                    maintenance_id="MAINT-2026-0118-020000",
                                    report_path="/srv/reports/MAINT-2026-0118-020000.md")
    summary = notice["summary"]
    assert (summary["status"], summary["resolution"]) == ("FAILED", "unresolved on db2")
    assert {k: summary["hosts"]["db1"][k] for k in ("done", "planned", "ok", "unchanged", "issues", "failed")} == {
        "done": 1, "planned": 0, "ok": 1, "unchanged": 1, "issues": 1, "failed": False}
    assert summary["hosts"]["db2"]["failed"] is True
    assert notice["subject"] == "[stream_systems] Weekly maintenance MAINT-2026-0118-020000: FAILED"
    assert "Report: /srv/reports/MAINT-2026-0118-020000.md" in notice["text"]
    assert "- redis db 0: breach: memory 91% of maxmemory" in notice["text"]


def test_a_clean_run_completes_and_check_mode_picks_the_plan():
    facts = {"db1": {"records": {"postgres_routine": [make_record("t", "vacuum", "done", "")]}}}
    assert plan.notice(facts, check_mode=False)["summary"]["status"] == "COMPLETED"
    assert plan.notice(facts, check_mode=True)["summary"]["kind"] == "plan"


def test_host_facts_reads_records_window_and_estate_but_not_the_notices_own_records():
    host_vars = {"postgres_routine_report_records": [VACUUM], "notify_report_records": [DEPLOY],
                 "maintenance_window_status": FRIDAY, "maintenance_window_guard": WEEKLY, "estate": "vitalstream",
                 "unrelated": "x"}
    facts = plan.host_facts(host_vars)
    assert facts == {"records": {"postgres_routine": [VACUUM]}, "window": FRIDAY, "guard": WEEKLY,
                     "estate": "vitalstream"}


@pytest.mark.parametrize(("bad", "message"), [
    ({"db1": {"records": {"x": ["not a record"]}}}, "the x_report_records fact holds 'not a record', not a record"),
])
def test_bad_input_is_named(bad, message):
    with pytest.raises(plan.NoticeError, match=message):
        plan.plan_notice(bad)
    with pytest.raises(plan.NoticeError, match="bytes_per_second 0 must be a positive number"):
        plan.plan_notice({}, bytes_per_second=0)


def test_report_path_and_the_maintenance_id():
    assert plan.report_path("/srv/reports", "MAINT-1") == "/srv/reports/MAINT-1.md"
    assert plan.report_path("/srv/reports", "") is None
    assert plan.new_maintenance_id(datetime(2026, 1, 18, 2, 0, 0)) == "MAINT-2026-0118-020000"


@pytest.mark.parametrize(("ids", "kept"), [
    (["MAINT-2026-0118-020000", "MAINT-other"], "MAINT-2026-0118-020000"),  # the first one seen names the report
    (["../../etc/passwd", "MAINT-ok"], "MAINT-ok"),  # never a path: one file name
    ([".hidden"], None),
])
def test_the_report_takes_the_first_valid_maintenance_id(ids, kept):
    run = RunLog(started=datetime(2026, 1, 18, 7, 0, tzinfo=timezone.utc))
    for value in ids:
        run.keep_maintenance_id(value)
    assert run.maintenance_id == kept
    report = run.report(finished=datetime(2026, 1, 18, 7, 5, tzinfo=timezone.utc), lead="ops")
    assert report["maintenance_id"] == (kept or "MAINT-2026-0118-070000")
