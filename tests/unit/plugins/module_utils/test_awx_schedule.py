"""AWX schedules from windows: AWX starts the job exactly when the window opens, DST and blackouts included.

``awx_occurrences`` is python-dateutil expanding the rrule as AWX does (forceset, TZID from the
DTSTART, a run whose local time does not exist skipped); ``window_openings`` is what the
maintenance_window module computes. They must agree, run for run.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dateutil import rrule as dateutil_rrule
from dateutil import tz

from ansible_collections.streamops.maintenance.plugins.module_utils import awx_schedule as s
from ansible_collections.streamops.maintenance.plugins.module_utils import window as w
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import WindowError

UTC = timezone.utc
GENERATED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
# Before the spring-forward Sunday (2027-03-14) and before the fall-back Sunday (2027-11-07) in New York.
STARTS = (GENERATED, datetime(2027, 2, 20, tzinfo=UTC), datetime(2027, 9, 1, tzinfo=UTC))
NY = "America/New_York"

WINDOWS = {
    "weekly at 02:00, in the spring-forward gap": {"rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0",
                                                   "duration": "2h", "timezone": NY},
    "weekly at 01:30, ambiguous at fall-back": {"rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=1;BYMINUTE=30",
                                                "duration": "2h", "timezone": NY},
    "daily at 02:30": {"rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "duration": "1h", "timezone": NY},
    "first Saturday 23:00 (BYDAY=1SA)": {"rrule": "FREQ=MONTHLY;BYDAY=1SA;BYHOUR=23;BYMINUTE=0",
                                         "duration": "4h", "timezone": NY},
    "last Sunday 02:00 (BYDAY=-1SU)": {"rrule": "FREQ=MONTHLY;BYDAY=-1SU;BYHOUR=2;BYMINUTE=0",
                                       "duration": "2h", "timezone": "Europe/London"},
    "the DST Sunday itself, every year": {"rrule": "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU;BYHOUR=2;BYMINUTE=15",
                                          "duration": "3h", "timezone": NY},
    "every other Sunday from a DTSTART": {"rrule": "DTSTART;TZID=America/New_York:20261206T020000 "
                                                   "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", "duration": "2h"},
    "daily in UTC": {"rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m", "timezone": "UTC"},
    "ends with an UNTIL": {"rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0;UNTIL=20270601T000000Z",
                           "duration": "2h", "timezone": NY},
}
BLACKOUTS = [{"start": "2026-12-24", "end": "2027-01-02", "reason": "year-end freeze"},
             {"start": "2027-07-04T01:00", "end": "2027-07-04T03:00", "reason": "cuts a window in two"}]


def spec(name, raw):
    return w.parse_windows([{"name": "w", **raw}], NY)[0]


@pytest.mark.parametrize("blackouts", [[], BLACKOUTS], ids=["no blackouts", "blackouts"])
@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_awx_runs_are_the_window_openings(name, blackouts):
    window = spec(name, WINDOWS[name])
    parsed = w.parse_blackouts(blackouts, NY)
    made = s.schedule_for_window(window, parsed, after=GENERATED)
    assert s.awx_rrule_problems(made.rrule) == []
    for start in STARTS:
        runs = s.awx_occurrences(made.rrule, after=start, count=24)
        openings = w.window_openings([window], parsed, start, count=24, until=made.checked_until)
        assert runs[:len(openings)] == openings, (name, start)


def test_the_spring_forward_sunday_runs_at_the_end_of_the_gap_where_plain_awx_would_skip_it():
    window = spec("weekly", WINDOWS["weekly at 02:00, in the spring-forward gap"])
    made = s.schedule_for_window(window, [], after=GENERATED)
    runs = s.awx_occurrences(made.rrule, after=datetime(2027, 3, 1, tzinfo=UTC), count=3)
    # 03:00 EDT on the gap Sunday is 07:00 UTC; the week before and after, 02:00 EST / EDT.
    assert runs == [datetime(2027, 3, 7, 7, tzinfo=UTC), datetime(2027, 3, 14, 7, tzinfo=UTC),
                    datetime(2027, 3, 21, 6, tzinfo=UTC)]
    bare = "DTSTART;TZID=America/New_York:20261213T020000 RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=SU;BYHOUR=2"
    assert datetime(2027, 3, 14, 7, tzinfo=UTC) not in s.awx_occurrences(bare, after=datetime(2027, 3, 1, tzinfo=UTC),
                                                                         count=3)
    # What AWX skips: dateutil's own 02:00 that day does not exist.
    imaginary = dateutil_rrule.rrulestr(bare, forceset=True).after(datetime(2027, 3, 10, tzinfo=UTC))
    assert not tz.datetime_exists(imaginary)


def test_the_fall_back_sunday_runs_once_at_the_first_0130():
    window = spec("early", WINDOWS["weekly at 01:30, ambiguous at fall-back"])
    made = s.schedule_for_window(window, [], after=GENERATED)
    runs = s.awx_occurrences(made.rrule, after=datetime(2027, 11, 6, tzinfo=UTC), count=2)
    assert runs == [datetime(2027, 11, 7, 5, 30, tzinfo=UTC), datetime(2027, 11, 14, 6, 30, tzinfo=UTC)]


def test_a_range_window_runs_once_and_a_past_one_not_at_all():
    window = w.parse_windows([{"name": "q1", "start": "2027-01-16T22:00:00", "end": "2027-01-17T06:00:00"}], NY)[0]
    made = s.schedule_for_window(window, [], after=GENERATED)
    assert made.rrule == "DTSTART;TZID=America/New_York:20270116T220000 RRULE:FREQ=DAILY;INTERVAL=1;COUNT=1"
    assert s.awx_occurrences(made.rrule, after=GENERATED, count=5) == [datetime(2027, 1, 17, 3, tzinfo=UTC)]
    assert s.schedule_for_window(window, [], after=datetime(2027, 2, 1, tzinfo=UTC)) is None


def test_a_blackout_over_a_whole_opening_is_an_exrule_and_one_that_ends_inside_a_window_a_later_run():
    window = spec("weekly", WINDOWS["weekly at 02:00, in the spring-forward gap"])
    made = s.schedule_for_window(window, w.parse_blackouts(BLACKOUTS, NY), after=GENERATED)
    runs = s.awx_occurrences(made.rrule, after=datetime(2026, 12, 21, tzinfo=UTC), count=2)
    assert runs == [datetime(2027, 1, 3, 7, tzinfo=UTC), datetime(2027, 1, 10, 7, tzinfo=UTC)]  # 27 Dec is frozen
    july = s.awx_occurrences(made.rrule, after=datetime(2027, 7, 3, tzinfo=UTC), count=1)
    assert july == [datetime(2027, 7, 4, 7, tzinfo=UTC)]  # 03:00 EDT, when the blackout ends
    assert "EXRULE:" in made.rrule


@pytest.mark.parametrize(("rrule", "message"), [
    ("FREQ=YEARLY;BYWEEKNO=10;BYDAY=SU;BYHOUR=2", "AWX refuses BYWEEKNO"),
    ("FREQ=MONTHLY;BYDAY=1SA,SU;BYHOUR=2", "mixes weekdays with and without an ordinal"),
    ("FREQ=MONTHLY;BYDAY=1SA;BYHOUR=2,14", "several BYHOUR values has no AWX form"),
])
def test_a_window_with_no_awx_form_is_refused_naming_it(rrule, message):
    window = spec("x", {"rrule": rrule, "duration": "1h"})
    with pytest.raises(WindowError, match=f"window 'w' cannot be an AWX schedule: .*{message}"):
        s.schedule_for_window(window, [], after=GENERATED)


def test_a_window_that_no_longer_opens_has_no_schedule():
    ended = spec("x", {"rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;UNTIL=20260101T000000Z", "duration": "1h"})
    assert s.schedule_for_window(ended, [], after=GENERATED) is None


@pytest.mark.parametrize(("text", "problem"), [
    ("DTSTART:20270101T000000 RRULE:FREQ=DAILY;INTERVAL=1", "naive"),
    ("DTSTART;TZID=UTC:20270101T000000Z RRULE:FREQ=DAILY;INTERVAL=1", "both a TZID and a Z"),
    ("DTSTART;TZID=UTC:20270101T000000 RRULE:FREQ=DAILY", "INTERVAL is required"),
    ("DTSTART;TZID=UTC:20270101T000000 RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=1SA", "numeric prefix"),
    ("DTSTART;TZID=UTC:20270101T000000 RRULE:FREQ=DAILY;INTERVAL=1;COUNT=1000", "COUNT above 999"),
    ("DTSTART;TZID=UTC:20270101T000000 RRULE:FREQ=DAILY;INTERVAL=1;COUNT=2;UNTIL=20270201T000000Z", "COUNT and UNTIL"),
    ("DTSTART;TZID=UTC:20270101T000000 RRULE:FREQ=DAILY;INTERVAL=1 EXDATE:20270102T000000Z", "EXDATE"),
    ("DTSTART;TZID=UTC:20270101T000000 EXRULE:FREQ=DAILY;INTERVAL=1", "at least one RRULE"),
    ("DTSTART;TZID=UTC:20270101T000000 RRULE:FREQ=YEARLY;INTERVAL=1;BYWEEKNO=2", "BYWEEKNO"),
])
def test_rrules_awx_refuses_are_named(text, problem):
    assert any(problem in found for found in s.awx_rrule_problems(text)), s.awx_rrule_problems(text)


def test_the_horizon_is_stated_and_checked():
    window = spec("weekly", WINDOWS["weekly at 02:00, in the spring-forward gap"])
    made = s.schedule_for_window(window, [], after=GENERATED, horizon=timedelta(days=100))
    assert made.checked_until == GENERATED + timedelta(days=100)
    assert made.corrections == 1  # only 2027-03-14 falls within 100 days
