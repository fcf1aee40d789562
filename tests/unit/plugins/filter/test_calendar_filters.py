"""The quarterly checklist's filters: they check calendar steps against the collection's own roles and turn
the calendar's errors into filter errors naming the bad value."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.streamops.maintenance.plugins.filter import calendar as filters

CHECKLIST = ["maintenance_window", "backup", "security_scan", "health_check"]


def test_calendar_steps_takes_the_steps_of_the_collections_roles():
    plan = filters.calendar_steps({"q3": {"automated": ["postgres_routine:indexes", "security_scan"],
                                          "manual": ["Process Review"]}},
                                  "2027-07-01T00:30:00+02:00", "Europe/Berlin")
    assert plan["quarter"] == "Q3"
    assert [item["step"] for item in plan["automated"]] == ["postgres_routine:indexes", "security_scan"]
    assert plan["manual"] == ["Process Review"]


@pytest.mark.parametrize("calendar, words", [
    ({"q1": {"automated": ["postgres_routine:reindex"]}}, ["calendar_steps:", "'postgres_routine:reindex'"]),
    ({"q1": {"automated": ["helth_check"]}}, ["'helth_check' is not a role", "health_check"]),
    ({"summer": {}}, ["unknown quarter key(s) summer"]),
])
def test_calendar_steps_names_bad_data(calendar, words):
    with pytest.raises(AnsibleFilterError) as caught:
        filters.calendar_steps(calendar, "2027-02-01T00:00:00Z")
    for word in words:
        assert word in str(caught.value), caught.value


def test_calendar_steps_names_a_bad_time():
    with pytest.raises(AnsibleFilterError, match="has no UTC offset"):
        filters.calendar_steps({}, "2027-02-01T00:00:00")


def test_calendar_checklist_adds_the_quarters_steps_before_the_final_health_check():
    plan = {"automated": [{"step": "monitoring:status", "item": "x"}, {"step": "backup", "item": "y"}]}
    assert filters.calendar_checklist(CHECKLIST, plan) == [
        "maintenance_window", "backup", "security_scan", "monitoring:status", "health_check"]
    assert filters.calendar_checklist(CHECKLIST, {}) == CHECKLIST
    assert filters.calendar_checklist(CHECKLIST, "") == CHECKLIST


@pytest.mark.parametrize("steps, plan", [("backup", {}), (CHECKLIST, ["dr_test"])])
def test_calendar_checklist_refuses_what_is_not_a_checklist_or_plan(steps, plan):
    with pytest.raises(AnsibleFilterError, match="calendar_checklist expects"):
        filters.calendar_checklist(steps, plan)
