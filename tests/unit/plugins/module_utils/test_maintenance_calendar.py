"""The maintenance calendar (module_utils/maintenance_calendar.py): the quarter of a time in the windows' timezone,
the quarter's items, bad calendar data named, the quarterly checklist with the quarter's steps, and the outcome
of an automated item from its role's records."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.maintenance_calendar import (
    NOT_RUN,
    CalendarError,
    calendar_steps,
    checklist_with_calendar,
    known_steps,
    parse_calendar,
    quarter_of,
    step_outcome,
)

REPO = Path(__file__).resolve().parents[4]
NY = "America/New_York"
KNOWN = {"dr_test", "backup", "backup:validate", "backup:verify_latest", "security_scan", "access_review",
         "compliance_review", "health_check", "monitoring", "restore"}
CALENDAR = {
    "q1": {"automated": [{"step": "dr_test", "item": "DR Testing: full disaster recovery exercise"},
                         "security_scan", "access_review"],
           "manual": ["Security Audit: annual penetration testing", "License Renewal: software license renewals"]},
    "q2": {"automated": [{"step": "backup:validate", "item": "Backup Testing: full backup and restore validation"},
                         {"step": "compliance_review", "item": "Compliance Review"}],
           "manual": ["Infrastructure Refresh: hardware/VM upgrades", "Staff Training"]},
    "q3": {"automated": ["security_scan:main", "access_review"], "manual": ["Platform Upgrades"]},
    "q4": {"manual": ["Budget Planning", "Vendor Review"]},
}
QUARTERLY = ["maintenance_window", "health_check", "backup", "postgres_routine", "security_scan", "access_review",
             "compliance_review", "monitoring", "secret_rotation", "health_check"]


def utc(*parts):
    return datetime(*parts, tzinfo=timezone.utc)


@pytest.mark.parametrize("now, zone, quarter", [
    (utc(2027, 1, 1, 5, 0), "UTC", "Q1"),
    (utc(2027, 3, 31, 23, 59, 59), "UTC", "Q1"),
    (utc(2027, 4, 1, 0, 0), "UTC", "Q2"),
    (utc(2027, 6, 30, 12, 0), "UTC", "Q2"),
    (utc(2027, 7, 1, 0, 0), "UTC", "Q3"),
    (utc(2027, 9, 30, 23, 0), "UTC", "Q3"),
    (utc(2027, 10, 1, 0, 0), "UTC", "Q4"),
    (utc(2027, 12, 31, 23, 59), "UTC", "Q4"),
    # The quarter changes at midnight on the windows' wall clock, not at UTC midnight.
    (utc(2027, 1, 1, 3, 0), NY, "Q4"),      # 2026-12-31 22:00 in New York
    (utc(2027, 1, 1, 5, 0), NY, "Q1"),      # 00:00 in New York (EST, UTC-5)
    (utc(2027, 4, 1, 3, 59), NY, "Q1"),     # 2027-03-31 23:59 EDT (UTC-4)
    (utc(2027, 4, 1, 4, 0), NY, "Q2"),      # 00:00 EDT
    (utc(2027, 6, 30, 23, 0), "Asia/Tokyo", "Q3"),  # 2027-07-01 08:00 in Tokyo
])
def test_quarter_of_a_time_on_the_windows_wall_clock(now, zone, quarter):
    assert quarter_of(now, zone) == quarter


def test_a_time_without_offset_is_refused():
    with pytest.raises(CalendarError, match="UTC offset"):
        quarter_of(datetime(2027, 1, 1))  # noqa: DTZ001 - the naive time is the case


@pytest.mark.parametrize("now, quarter, steps", [
    ("2027-02-10T23:00:00-05:00", "Q1", ["dr_test", "security_scan", "access_review"]),
    ("2027-05-12T12:00:00Z", "Q2", ["backup:validate", "compliance_review"]),
    ("2027-08-01T00:00:00Z", "Q3", ["security_scan", "access_review"]),
    ("2027-11-20T10:00:00+01:00", "Q4", []),
])
def test_each_quarter_gives_its_items(now, quarter, steps):
    plan = calendar_steps(CALENDAR, now, NY, known=KNOWN)
    assert plan["quarter"] == quarter
    assert [item["step"] for item in plan["automated"]] == steps
    assert plan["manual"] == [item.strip() for item in CALENDAR[quarter.lower()].get("manual", [])]
    assert plan["timezone"] == NY and plan["year"] == 2027


def test_an_item_without_words_is_named_by_its_step_and_role_main_is_the_role():
    plan = calendar_steps(CALENDAR, "2027-08-01T12:00:00Z", known=KNOWN)
    assert plan["automated"] == [{"step": "security_scan", "item": "security_scan"},
                                 {"step": "access_review", "item": "access_review"}]


def test_the_year_is_the_one_of_the_wall_clock():
    plan = calendar_steps(CALENDAR, "2027-01-01T03:00:00Z", NY, known=KNOWN)
    assert (plan["quarter"], plan["year"]) == ("Q4", 2026)


def test_no_time_is_the_current_time():
    now = datetime.now(timezone.utc)
    assert calendar_steps({}, None)["quarter"] == f"Q{(now.month - 1) // 3 + 1}" or now.day == 1  # a boundary race


def test_an_empty_calendar_has_no_items():
    assert calendar_steps(None, "2027-05-01T12:00:00Z") | {"now": None} == {
        "quarter": "Q2", "year": 2027, "now": None, "timezone": "UTC", "automated": [], "manual": []}


@pytest.mark.parametrize("calendar, words", [
    (["q1"], ["maintenance_calendar ['q1'] is not a dict"]),
    ({"Q1": {}}, ["unknown quarter key(s) Q1", "q1, q2, q3, q4"]),
    ({"q5": {}}, ["unknown quarter key(s) q5"]),
    ({"q1": ["dr_test"]}, ["maintenance_calendar q1 ['dr_test'] is not a dict"]),
    ({"q1": {"automatic": ["dr_test"]}}, ["q1 has unknown key(s) automatic", "automated and manual"]),
    ({"q1": {"automated": "dr_test"}}, ["q1 automated 'dr_test' is not a list"]),
    ({"q1": {"automated": ["dr_tset"]}}, ["q1 automated[0]", "step 'dr_tset' is not a role", "did you mean dr_test"]),
    ({"q2": {"automated": ["backup:valdate"]}}, ["q2 automated[0]", "'backup:valdate'", "backup:validate"]),
    ({"q1": {"automated": [{"step": "dr_test", "label": "x"}]}}, ["automated[0] has unknown key(s) label"]),
    ({"q1": {"automated": [{"item": "DR"}]}}, ["automated[0]", "step None is not a role name"]),
    ({"q1": {"automated": [{"step": "dr_test", "item": 3}]}}, ["automated[0] item 3 is not text"]),
    ({"q1": {"automated": [7]}}, ["automated[0] 7 is not a step name"]),
    ({"q1": {"automated": ["restore"]}}, ["step 'restore' may not be a calendar item", "playbooks/restore.yml"]),
    ({"q1": {"automated": ["deploy:preflight"]}}, ["'deploy:preflight' may not be a calendar item"]),
    ({"q1": {"automated": ["maintenance_window"]}}, ["'maintenance_window' may not", "runs it first"]),
    ({"q1": {"manual": ["ok", ""]}}, ["q1 manual[1] '' is not text"]),
    ({"q1": {"manual": "Pen test"}}, ["q1 manual 'Pen test' is not a list"]),
    # A typo in a quarter other than this one fails now, not when that quarter comes.
    ({"q2": {}, "q4": {"automated": ["securty_scan"]}}, ["q4 automated[0]", "'securty_scan'", "security_scan"]),
])
def test_bad_calendar_data_is_named(calendar, words):
    with pytest.raises(CalendarError) as caught:
        calendar_steps(calendar, "2027-05-01T12:00:00Z", known=KNOWN)
    for word in words:
        assert word in caught.value.msg, caught.value.msg


@pytest.mark.parametrize("now, zone, words", [
    ("2027-05-01T12:00:00", "UTC", ["now '2027-05-01T12:00:00' has no UTC offset"]),
    ("next tuesday", "UTC", ["'next tuesday' is not an ISO 8601"]),
    ("2027-05-01T12:00:00Z", "Mars/Olympus", ["unknown timezone 'Mars/Olympus'"]),
])
def test_a_bad_time_or_timezone_is_named(now, zone, words):
    with pytest.raises(CalendarError) as caught:
        calendar_steps(CALENDAR, now, zone, known=KNOWN)
    for word in words:
        assert word in caught.value.msg, caught.value.msg


def test_the_collection_offers_its_roles_and_entry_points():
    steps = known_steps(REPO / "roles")
    assert {"backup", "health_check", "postgres_routine:indexes", "monitoring:status", "security_scan"} <= steps
    assert "postgres_routine:main" not in steps


# --------------------------------------------------------------------------- the quarterly checklist


def plan_of(*steps):
    return {"quarter": "Q1", "automated": [{"step": step, "item": step} for step in steps], "manual": []}


@pytest.mark.parametrize("steps, added, expected_tail", [
    # New steps go before the final health check, in the calendar's order.
    (["dr_test"], ["dr_test"], ["secret_rotation", "dr_test", "health_check"]),
    (["backup:validate", "compliance_review"], ["backup:validate"], ["secret_rotation", "backup:validate", "health_check"]),
    # Steps the checklist runs already are not run twice (role:main is the role).
    (["security_scan:main", "access_review"], [], ["secret_rotation", "health_check"]),
    (["dr_test", "dr_test"], ["dr_test"], ["secret_rotation", "dr_test", "health_check"]),
    ([], [], ["secret_rotation", "health_check"]),
])
def test_the_quarters_steps_run_once_before_the_final_health_check(steps, added, expected_tail):
    checklist = checklist_with_calendar(QUARTERLY, plan_of(*steps))
    assert checklist[:len(QUARTERLY) - 1] == QUARTERLY[:-1]
    assert checklist[len(QUARTERLY) - 1:-1] == added
    assert checklist[-len(expected_tail):] == expected_tail


def test_a_checklist_without_a_final_health_check_gets_them_at_the_end():
    assert checklist_with_calendar(["maintenance_window", "backup"], plan_of("dr_test")) == [
        "maintenance_window", "backup", "dr_test"]


@pytest.mark.parametrize("plan", [None, {}])
def test_no_plan_leaves_the_checklist_as_it_is(plan):
    assert checklist_with_calendar(QUARTERLY, plan) == QUARTERLY


# --------------------------------------------------------------------------- outcomes for the report


def entry(role, status):
    return {"role": role, "name": f"{role} x", "action": "verify", "status": status, "detail": ""}


@pytest.mark.parametrize("statuses, outcome, detail", [
    (["ok", "ok", "unchanged"], "ok", "2 ok, 1 unchanged"),
    (["ok", "breach", "unknown"], "breach", "1 breach, 1 unknown, 1 ok"),
    (["ok", "failed", "breach"], "failed", "1 failed, 1 breach, 1 ok"),
    (["unknown"], "unknown", "1 unknown"),
    (["planned", "ok"], "planned", "1 planned, 1 ok"),
    (["done", "ok"], "done", "1 done, 1 ok"),
])
def test_an_automated_item_is_as_good_as_the_worst_record_of_its_role(statuses, outcome, detail):
    entries = [entry("backup", status) for status in statuses] + [entry("dr_test", "failed")]
    assert step_outcome("backup:validate", entries) == (outcome, detail)


def test_an_item_whose_role_kept_no_record_did_not_run():
    outcome, detail = step_outcome("dr_test", [entry("backup", "ok")])
    assert outcome == NOT_RUN and "no record of dr_test" in detail


def test_the_lab_and_example_calendars_are_calendars_of_existing_steps():
    import yaml  # noqa: PLC0415

    for inventory in ("lab", "example"):
        data = yaml.safe_load((REPO / "inventory" / inventory / "group_vars" / "all" / "calendar.yml").read_text())
        quarters = parse_calendar(data["maintenance_calendar"], known_steps(REPO / "roles"))
        assert [item["step"] for item in quarters["q1"]["automated"]][0] == "dr_test", inventory
        assert "backup:validate" in [item["step"] for item in quarters["q2"]["automated"]], inventory
        assert all(quarters[q]["manual"] for q in quarters), inventory
