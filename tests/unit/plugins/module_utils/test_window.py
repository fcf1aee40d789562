"""Tables over the pure window logic: durations, DST, rules, blackouts, cutoffs, emergencies, errors."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import yaml
from dateutil import rrule as dateutil_rrule

from ansible_collections.streamops.maintenance.plugins.doc_fragments.window_guard import ModuleDocFragment
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import (
    MaintenanceError,
    WindowClosedError,
    WindowError,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import WINDOW_KEYS
from ansible_collections.streamops.maintenance.plugins.module_utils.window import (
    UNANCHORED_DTSTART,
    WindowGuard,
    evaluate,
    format_duration,
    guard_from_params,
    parse_blackouts,
    parse_duration,
    parse_emergency,
    parse_now,
    parse_windows,
    required_time,
    resolve_local,
    window_guard_argument_spec,
)

NY = "America/New_York"
UTC = timezone.utc

WEEKLY = {"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h", "timezone": NY}
MONTHLY = {"name": "monthly", "rrule": "FREQ=MONTHLY;BYDAY=1SA;BYHOUR=23;BYMINUTE=0", "duration": "4h", "timezone": NY}
QUARTERLY = {"name": "quarterly", "start": "2026-03-28T22:00", "end": "2026-03-29T06:00", "timezone": NY}
EARLY_SUNDAY = {"name": "early", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=1;BYMINUTE=0", "duration": "2h", "timezone": NY}
AWX_TEXT = "DTSTART;TZID=America/New_York:20260104T020000 RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SU"
AWX = {"name": "awx", "rrule": AWX_TEXT, "duration": "1h"}

APPROVAL = {"approved_by": "alice", "reason": "disk 95% full", "ticket": "INC-4711"}


def reports(evaluated):
    """The per-window reports of a decision (what maintenance_window returns as ``windows``)."""
    return [report.as_dict() for report in evaluated.windows]


def status(windows, now, *, blackouts=None, tz=NY, **kwargs):
    return evaluate(parse_windows(windows, tz), parse_blackouts(blackouts, tz), now, **kwargs)


def with_(base, **changes):
    merged = dict(base)
    merged.update(changes)
    return {key: value for key, value in merged.items() if value is not None}


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2h", timedelta(hours=2)),
        ("90m", timedelta(minutes=90)),
        ("4h30m", timedelta(hours=4, minutes=30)),
        ("4h 30m", timedelta(hours=4, minutes=30)),
        ("1d", timedelta(days=1)),
        ("45s", timedelta(seconds=45)),
        ("1w", timedelta(weeks=1)),
        ("2H", timedelta(hours=2)),
        ("PT2H", timedelta(hours=2)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("02:00", timedelta(hours=2)),
        ("1:30:15", timedelta(hours=1, minutes=30, seconds=15)),
        (timedelta(minutes=5), timedelta(minutes=5)),
    ],
)
def test_parse_duration_accepts(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0", "0s", "PT0S", "00:00", 0, "0h0m"])
def test_parse_duration_zero_only_when_allowed(text):
    assert parse_duration(text, allow_zero=True) == timedelta(0)
    with pytest.raises(WindowError, match="greater than zero"):
        parse_duration(text)


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("2 hours", "'2 hours' is not a duration"),
        ("-2h", "'-2h' is negative"),
        ("1h30", "'1h30' is not a duration"),
        ("P1M", "'P1M' is not a duration"),
        ("PT", "'PT' is not a duration"),
        ("", "'' is not a duration"),
        (7200, "7200 has no unit"),
        (None, "None is not a duration"),
        (timedelta(hours=-1), "is negative"),
    ],
)
def test_parse_duration_rejects(value, fragment):
    with pytest.raises(WindowError) as caught:
        parse_duration(value, owner="window 'weekly'")
    assert fragment in caught.value.msg
    assert caught.value.msg.startswith("window 'weekly': duration")


@pytest.mark.parametrize(
    "cutoff, estimate, expected",
    [
        ("15m", "45m", timedelta(minutes=45)),
        ("1h", "45m", timedelta(hours=1)),
        ("0s", "0s", timedelta(0)),
        (None, "PT30M", timedelta(minutes=30)),
        ("", None, timedelta(0)),
    ],
)
def test_required_time_is_the_larger(cutoff, estimate, expected):
    assert required_time(cutoff=cutoff, estimated_duration=estimate) == expected


def test_required_time_names_the_bad_field():
    with pytest.raises(WindowError, match="estimated_duration '-5m' is negative"):
        required_time(cutoff="5m", estimated_duration="-5m")


@pytest.mark.parametrize(
    "delta, text",
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(hours=1, minutes=30), "1h 30m"),
        (timedelta(days=3, hours=19), "3d 19h"),
        (timedelta(days=1, seconds=1), "1d 1s"),
    ],
)
def test_format_duration(delta, text):
    assert format_duration(delta) == text


# --------------------------------------------------------------------------- local time and DST


@pytest.mark.parametrize(
    "wall, fold, expected_utc",
    [
        ("2026-01-11T02:00", 0, "2026-01-11T07:00:00+00:00"),  # ordinary
        ("2026-03-08T02:30", 0, "2026-03-08T07:00:00+00:00"),  # gap: first instant after it (03:00 EDT)
        ("2026-03-08T02:00", 0, "2026-03-08T07:00:00+00:00"),
        ("2026-03-08T03:00", 0, "2026-03-08T07:00:00+00:00"),
        ("2026-11-01T01:30", 0, "2026-11-01T05:30:00+00:00"),  # ambiguous: first occurrence (EDT)
        ("2026-11-01T01:30", 1, "2026-11-01T06:30:00+00:00"),  # ... second occurrence (EST)
    ],
)
def test_resolve_local(wall, fold, expected_utc):
    instant = resolve_local(datetime.fromisoformat(wall), ZoneInfo(NY), fold=fold)
    assert instant.isoformat() == expected_utc


# --------------------------------------------------------------------------- the decision

EVALUATIONS = [
    # id, windows, now, allowed, window, start, end, seconds_left, next_start
    pytest.param(
        [WEEKLY], "2026-01-11T07:30:00Z", True, "weekly",
        "2026-01-11T02:00:00-05:00", "2026-01-11T04:00:00-05:00", 5400, "2026-01-18T02:00:00-05:00",
        id="weekly-inside",
    ),
    pytest.param(
        [WEEKLY], "2026-01-11T02:00:00-05:00", True, "weekly",
        "2026-01-11T02:00:00-05:00", "2026-01-11T04:00:00-05:00", 7200, "2026-01-18T02:00:00-05:00",
        id="weekly-at-opening",
    ),
    pytest.param(
        [WEEKLY], "2026-01-11T04:00:00-05:00", False, None, None, None, 0, "2026-01-18T02:00:00-05:00",
        id="weekly-at-closing-is-outside",
    ),
    pytest.param(
        [WEEKLY], "2026-01-07T12:00:00Z", False, None, None, None, 0, "2026-01-11T02:00:00-05:00",
        id="weekly-outside",
    ),
    pytest.param(
        [MONTHLY], "2026-02-08T02:30:00-05:00", True, "monthly",
        "2026-02-07T23:00:00-05:00", "2026-02-08T03:00:00-05:00", 1800, "2026-03-07T23:00:00-05:00",
        id="monthly-across-midnight",
    ),
    pytest.param(
        [MONTHLY], "2026-01-10T23:30:00-05:00", False, None, None, None, 0, "2026-02-07T23:00:00-05:00",
        id="monthly-second-saturday-is-not-first",
    ),
    pytest.param(
        [MONTHLY], "2026-01-03T23:30:00-05:00", True, "monthly",
        "2026-01-03T23:00:00-05:00", "2026-01-04T03:00:00-05:00", 12600, "2026-02-07T23:00:00-05:00",
        id="monthly-first-saturday",
    ),
    pytest.param(
        [QUARTERLY], "2026-03-29T01:00:00-04:00", True, "quarterly",
        "2026-03-28T22:00:00-04:00", "2026-03-29T06:00:00-04:00", 18000, None,
        id="quarterly-inside",
    ),
    pytest.param(
        [QUARTERLY], "2026-03-01T00:00:00Z", False, None, None, None, 0, "2026-03-28T22:00:00-04:00",
        id="quarterly-ahead",
    ),
    pytest.param(
        [QUARTERLY], "2026-04-01T00:00:00Z", False, None, None, None, 0, None,
        id="quarterly-past",
    ),
    pytest.param(
        [WEEKLY], "2026-03-08T07:30:00Z", True, "weekly",
        "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00", 1800, "2026-03-15T02:00:00-04:00",
        id="spring-forward-inside",
    ),
    pytest.param(
        [WEEKLY], "2026-03-08T01:59:59-05:00", False, None, None, None, 0, "2026-03-08T03:00:00-04:00",
        id="spring-forward-before-opening",
    ),
    pytest.param(
        [WEEKLY], "2026-03-08T04:00:00-04:00", False, None, None, None, 0, "2026-03-15T02:00:00-04:00",
        id="spring-forward-closed-at-local-end",
    ),
    pytest.param(
        [EARLY_SUNDAY], "2026-11-01T01:30:00-05:00", True, "early",
        "2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", 1800, "2026-11-08T01:00:00-05:00",
        id="fall-back-second-one-thirty",
    ),
    pytest.param(
        [EARLY_SUNDAY], "2026-11-01T02:00:00-05:00", False, None, None, None, 0, "2026-11-08T01:00:00-05:00",
        id="fall-back-closed-after-two-hours-elapsed",
    ),
    pytest.param(
        [WEEKLY], "2026-11-01T03:59:00-05:00", True, "weekly",
        "2026-11-01T02:00:00-05:00", "2026-11-01T04:00:00-05:00", 60, "2026-11-08T02:00:00-05:00",
        id="fall-back-weekly-unaffected",
    ),
    pytest.param(
        [AWX], "2026-01-18T07:30:00Z", True, "awx",
        "2026-01-18T02:00:00-05:00", "2026-01-18T03:00:00-05:00", 1800, "2026-02-01T02:00:00-05:00",
        id="awx-dtstart-on-week",
    ),
    pytest.param(
        [AWX], "2026-01-11T07:30:00Z", False, None, None, None, 0, "2026-01-18T02:00:00-05:00",
        id="awx-dtstart-off-week",
    ),
    pytest.param(
        [WEEKLY, MONTHLY], "2026-03-01T07:30:00Z", True, "weekly",
        "2026-03-01T02:00:00-05:00", "2026-03-01T04:00:00-05:00", 5400, "2026-03-07T23:00:00-05:00",
        id="several-windows-next-is-earliest",
    ),
]


@pytest.mark.parametrize("windows, now, allowed, window, start, end, seconds_left, next_start", EVALUATIONS)
def test_evaluate(windows, now, allowed, window, start, end, seconds_left, next_start):
    result = status(windows, now).decision()
    assert result["allowed"] is allowed
    assert result["inside"] is allowed
    assert result["mode"] == ("window" if allowed else "denied")
    assert (result["name"], result["start"], result["end"]) == (window, start, end)
    assert result["seconds_left"] == seconds_left
    assert result["next_start"] == next_start
    assert set(result) == set(WINDOW_KEYS)
    assert (result["reason"] is None) is allowed


def test_spring_forward_sunday_opens_at_three_and_closes_at_four_edt():
    window = status([WEEKLY], "2026-03-08T07:00:00Z").current
    assert window.start == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, first instant after the gap
    assert window.end == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 04:00 EDT, the announced local end
    assert window.length == timedelta(hours=1)


def test_fall_back_window_closes_after_its_duration_of_real_time():
    window = status([EARLY_SUNDAY], "2026-11-01T05:00:00Z").current
    assert window.start == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 01:00 EDT, first occurrence
    assert window.end == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 02:00 EST: 2 h elapsed, before local 03:00
    assert window.length == timedelta(hours=2)


def test_next_window_message_and_seconds():
    result = status([WEEKLY], "2026-01-07T12:00:00Z").decision()
    assert result["next_window"] == "weekly"
    assert result["seconds_until_next"] == 327600
    assert result["reason"] == "outside all maintenance windows"
    assert result["msg"] == (
        "maintenance work not allowed at 2026-01-07T12:00:00+00:00: outside all maintenance windows; "
        "next usable window 'weekly' opens 2026-01-11T02:00:00-05:00 (in 3d 19h)"
    )


@pytest.mark.parametrize(
    "text, zone",
    [
        (AWX_TEXT, NY),
        (AWX_TEXT.replace(" RRULE:", "\nRRULE:"), NY),
        ("dtstart;tzid=America/New_York:20260104t020000\nrrule:freq=weekly;interval=2;byday=su", NY),
        ("DTSTART:20260104T070000Z RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SU", "UTC"),
    ],
)
def test_awx_dtstart_forms(text, zone):
    window = {"name": "awx", "rrule": text, "duration": "1h"}
    (spec,) = parse_windows([window], "Europe/London")
    assert spec.timezone == zone
    assert status([window], "2026-01-12T00:00:00Z").upcoming.start == datetime(2026, 1, 18, 7, 0, tzinfo=UTC)


def test_awx_dtstart_tzid_becomes_window_timezone():
    (spec,) = parse_windows([AWX], "Europe/London")
    assert spec.timezone == NY


@pytest.mark.parametrize(
    "until, next_start",
    [
        ("20260111T070000Z", "2026-01-11T02:00:00-05:00"),  # 02:00 EST is 07:00Z: the last occurrence
        ("20260111T065959Z", None),  # read as local time it would still admit the 11th
    ],
)
def test_awx_utc_until_is_converted_to_local_time(until, next_start):
    text = f"DTSTART;TZID=America/New_York:20260104T020000 RRULE:FREQ=WEEKLY;BYDAY=SU;UNTIL={until}"
    result = status([{"name": "awx", "rrule": text, "duration": "1h"}], "2026-01-05T00:00:00Z").decision()
    assert result["next_start"] == next_start


@pytest.mark.parametrize(
    "body",
    [
        "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0",
        "FREQ=WEEKLY;BYHOUR=2",  # weekday implied by the 2000-01-01 anchor: Saturday
        "FREQ=MONTHLY;BYHOUR=3",  # day of month implied: 1st
        "FREQ=MONTHLY;BYDAY=SA;BYSETPOS=-1;BYHOUR=22",  # last Saturday
        "FREQ=YEARLY",
        "FREQ=YEARLY;BYMONTH=7",
        "FREQ=DAILY;BYHOUR=4;BYMINUTE=30",
        "FREQ=HOURLY;BYDAY=SU",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=1,13",
    ],
)
def test_undated_rule_matches_dateutil_from_2000(body):
    """The rule is expanded from a recent DTSTART for speed; that must not change its occurrences."""
    (spec,) = parse_windows([{"name": "r", "rrule": body, "duration": "30m"}], "UTC")
    after, until = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)
    ours = [interval.start for interval in spec.occurrences(after, until)]
    reference = dateutil_rrule.rrulestr(body, dtstart=UNANCHORED_DTSTART).between(
        datetime(2025, 11, 30, 23, 30), datetime(2026, 9, 1), inc=True
    )
    assert ours == [moment.replace(tzinfo=UTC) for moment in reference]
    assert ours


def test_named_window_only_that_one_counts():
    evaluated = status([WEEKLY, MONTHLY], "2026-02-08T01:00:00-05:00", window_name="weekly")
    result = evaluated.decision()
    assert (result["allowed"], result["reason"]) == (False, "outside maintenance window 'weekly'")
    assert (result["next_window"], result["next_start"]) == ("weekly", "2026-02-08T02:00:00-05:00")
    assert [report["name"] for report in reports(evaluated)] == ["weekly"]
    assert status([WEEKLY, MONTHLY], "2026-02-08T01:00:00-05:00").allowed is True


@pytest.mark.parametrize(
    "now, allowed, next_start",
    [
        ("2026-01-01T00:00:00Z", False, "2026-01-04T02:00:00-05:00"),
        ("2026-01-18T07:10:00Z", True, None),  # the third and last occurrence
        ("2026-01-30T00:00:00Z", False, None),
        ("2026-01-11T07:30:00Z", True, "2026-01-18T02:00:00-05:00"),  # earlier again: the finished rule is reused
    ],
)
def test_dtstart_count_rule_ends(now, allowed, next_start):
    text = "DTSTART;TZID=America/New_York:20260104T020000\nRRULE:FREQ=WEEKLY;COUNT=3;BYDAY=SU"
    result = status([{"name": "three", "rrule": text, "duration": "1h"}], now).decision()
    assert (result["allowed"], result["next_start"]) == (allowed, next_start)


# --------------------------------------------------------------------------- touching windows

LAB_DAILY = {"name": "lab", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "1d", "timezone": "UTC"}
LATE_SUNDAY = {"name": "late", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=4;BYMINUTE=0", "duration": "2h", "timezone": NY}


@pytest.mark.parametrize(
    "windows, now, required, allowed, window, start, end",
    [
        pytest.param(
            [WEEKLY, LATE_SUNDAY], "2026-01-11T03:50:00-05:00", "30m", True, "weekly",
            "2026-01-11T02:00:00-05:00", "2026-01-11T06:00:00-05:00", id="back-to-back-windows-are-one-stretch",
        ),
        pytest.param(
            [WEEKLY, LATE_SUNDAY], "2026-01-11T04:10:00-05:00", "30m", True, "late",
            "2026-01-11T04:00:00-05:00", "2026-01-11T06:00:00-05:00", id="second-of-back-to-back",
        ),
        pytest.param(
            [WEEKLY, MONTHLY], "2026-02-08T02:30:00-05:00", "0s", True, "weekly",
            "2026-02-07T23:00:00-05:00", "2026-02-08T04:00:00-05:00", id="overlap-named-by-the-longer-lasting",
        ),
        pytest.param(
            [WEEKLY, MONTHLY], "2026-02-08T01:00:00-05:00", "2h30m", True, "monthly",
            "2026-02-07T23:00:00-05:00", "2026-02-08T04:00:00-05:00", id="overlap-time-left-runs-to-the-union-end",
        ),
        pytest.param(
            [LAB_DAILY], "2026-06-10T23:50:00Z", "20m", True, "lab",
            "2026-06-10T00:00:00+00:00", "2027-07-16T00:00:00+00:00", id="daily-24h-window-never-closes-at-midnight",
        ),
    ],
)
def test_touching_windows_form_one_stretch(windows, now, required, allowed, window, start, end):
    result = status(windows, now, required=parse_duration(required, allow_zero=True)).decision()
    assert (result["allowed"], result["name"], result["start"], result["end"]) == (allowed, window, start, end)


def test_touching_windows_keep_their_own_reports():
    evaluated = status([WEEKLY, LATE_SUNDAY], "2026-01-11T03:50:00-05:00")
    result = evaluated.decision()
    assert reports(evaluated) == [
        {"name": "weekly", "inside": True, "start": "2026-01-11T02:00:00-05:00", "end": "2026-01-11T04:00:00-05:00"},
        {"name": "late", "inside": False, "start": "2026-01-11T04:00:00-05:00", "end": "2026-01-11T06:00:00-05:00"},
    ]


# --------------------------------------------------------------------------- blackouts

BLACKOUTS = [
    # id, blackouts, now, allowed, end, next_start, blackout_start
    pytest.param(
        ["2026-01-11"], "2026-01-11T02:30:00-05:00", False, None, "2026-01-18T02:00:00-05:00",
        "2026-01-11T00:00:00-05:00", id="whole-day",
    ),
    pytest.param(
        [{"start": "2026-01-11T03:00", "end": "2026-01-11T05:00", "reason": "payroll run"}],
        "2026-01-11T02:30:00-05:00", True, "2026-01-11T03:00:00-05:00", "2026-01-18T02:00:00-05:00", None,
        id="truncates-the-end",
    ),
    pytest.param(
        [{"start": "2026-01-11T03:00", "end": "2026-01-11T05:00", "reason": "payroll run"}],
        "2026-01-11T03:30:00-05:00", False, None, "2026-01-18T02:00:00-05:00", "2026-01-11T03:00:00-05:00",
        id="inside-the-truncated-part",
    ),
    pytest.param(
        [{"start": "2026-01-11T02:30", "end": "2026-01-11T03:00"}],
        "2026-01-11T02:10:00-05:00", True, "2026-01-11T02:30:00-05:00", "2026-01-11T03:00:00-05:00", None,
        id="splits-before-the-hole",
    ),
    pytest.param(
        [{"start": "2026-01-11T02:30", "end": "2026-01-11T03:00"}],
        "2026-01-11T02:45:00-05:00", False, None, "2026-01-11T03:00:00-05:00", "2026-01-11T02:30:00-05:00",
        id="in-the-hole-next-is-the-rest",
    ),
    pytest.param(
        [{"start": "2026-01-10", "end": "2026-01-11", "reason": "release freeze"}],
        "2026-01-11T03:59:00-05:00", False, None, "2026-01-18T02:00:00-05:00", "2026-01-10T00:00:00-05:00",
        id="date-end-includes-that-day",
    ),
    pytest.param(
        [{"start": "2026-01-11T06:00:00+01:00", "end": "2026-01-11T07:00:00+01:00"}],
        "2026-01-11T02:30:00-05:00", True, "2026-01-11T04:00:00-05:00", "2026-01-18T02:00:00-05:00", None,
        id="offset-blackout-before-window",
    ),
    pytest.param(
        [{"start": "2026-01-11T07:00", "end": "2026-01-11T09:00", "timezone": "Europe/London"}],
        "2026-01-11T02:30:00-05:00", False, None, "2026-01-18T02:00:00-05:00", "2026-01-11T07:00:00+00:00",
        id="own-timezone",
    ),
]


@pytest.mark.parametrize("blackouts, now, allowed, end, next_start, blackout_start", BLACKOUTS)
def test_blackouts(blackouts, now, allowed, end, next_start, blackout_start):
    result = status([WEEKLY], now, blackouts=blackouts).decision()
    assert result["allowed"] is allowed
    assert result["end"] == end
    assert result["next_start"] == next_start
    assert (result["blackout"] or {}).get("start") == blackout_start
    if blackout_start:
        assert result["reason"].startswith("in blackout ")


def test_blackout_record_and_reason():
    blackouts = [{"start": "2026-12-24", "end": "2026-12-26", "reason": "holidays"}]
    result = status([WEEKLY], "2026-12-26T23:00:00-05:00", blackouts=blackouts).decision()
    assert result["blackout"] == {
        "start": "2026-12-24T00:00:00-05:00",
        "end": "2026-12-27T00:00:00-05:00",
        "reason": "holidays",
        "timezone": NY,
    }
    assert "(holidays) until 2026-12-27T00:00:00-05:00" in result["reason"]


def test_blackout_over_the_quarterly_window_moves_next_past_it():
    blackouts = [{"start": "2026-03-28T20:00", "end": "2026-03-29T02:00"}]
    evaluated = status([QUARTERLY], "2026-03-28T12:00:00-04:00", blackouts=blackouts)
    result = evaluated.decision()
    assert (result["next_start"], reports(evaluated)[0]["end"]) == (
        "2026-03-29T02:00:00-04:00",
        "2026-03-29T06:00:00-04:00",
    )


# --------------------------------------------------------------------------- cutoff / estimated duration


@pytest.mark.parametrize(
    "now, required, allowed, next_start, reason",
    [
        ("2026-01-11T02:30:00-05:00", "1h", True, "2026-01-18T02:00:00-05:00", None),
        ("2026-01-11T02:30:00-05:00", "90m", True, "2026-01-18T02:00:00-05:00", None),
        (
            "2026-01-11T03:50:00-05:00", "15m", False, "2026-01-18T02:00:00-05:00",
            "only 10m left in window 'weekly' (closes 2026-01-11T04:00:00-05:00) but 15m is needed",
        ),
        (
            "2026-01-11T02:30:00-05:00", "2h", False, "2026-01-18T02:00:00-05:00",
            "only 1h 30m left in window 'weekly' (closes 2026-01-11T04:00:00-05:00) but 2h is needed",
        ),
        ("2026-01-07T12:00:00Z", "3h", False, None, "outside all maintenance windows"),
    ],
)
def test_cutoff_and_estimated_duration(now, required, allowed, next_start, reason):
    result = status([WEEKLY], now, required=parse_duration(required)).decision()
    assert result["allowed"] is allowed
    assert result["next_start"] == next_start
    assert result["reason"] == reason
    assert result["required_seconds"] == int(parse_duration(required).total_seconds())


def test_no_window_long_enough_says_so():
    evaluated = status([WEEKLY], "2026-01-07T12:00:00Z", required=timedelta(hours=3))
    result = evaluated.decision()
    assert result["msg"].endswith("no usable window opens within the next 400 days")
    assert reports(evaluated) == [{"name": "weekly", "inside": False, "start": None, "end": None}]


def test_window_too_short_after_blackout_is_skipped_for_next():
    blackouts = [{"start": "2026-01-11T02:00", "end": "2026-01-11T03:30"}]
    result = status([WEEKLY], "2026-01-10T00:00:00Z", blackouts=blackouts, required=timedelta(hours=1)).decision()
    assert result["next_start"] == "2026-01-18T02:00:00-05:00"


# --------------------------------------------------------------------------- emergency


@pytest.mark.parametrize(
    "now, blackouts, mode, echoed",
    [
        ("2026-01-07T12:00:00Z", None, "emergency", True),  # outside
        ("2026-01-11T02:30:00-05:00", ["2026-01-11"], "emergency", True),  # blackout
        ("2026-01-11T03:59:00-05:00", None, "emergency", True),  # past the cutoff (required below)
        ("2026-01-11T02:30:00-05:00", None, "window", False),  # inside: the window suffices
    ],
)
def test_emergency_allows_with_complete_approval(now, blackouts, mode, echoed):
    result = status(
        [WEEKLY], now, blackouts=blackouts, emergency=APPROVAL, required=timedelta(minutes=15)
    ).decision()
    assert result["allowed"] is True
    assert result["mode"] == mode
    assert result["emergency"] == (APPROVAL if echoed else None)
    if echoed:
        assert result["msg"].startswith("allowed by emergency approval from alice (ticket INC-4711) although ")


@pytest.mark.parametrize(
    "approval, missing",
    [
        ({"reason": "disk full", "ticket": "INC-1"}, "approved_by missing"),
        ({"approved_by": "alice", "reason": "disk full", "ticket": " "}, "ticket missing"),
        ({"approved_by": "alice", "reason": None, "ticket": None}, "reason, ticket missing"),
    ],
)
@pytest.mark.parametrize("now", ["2026-01-07T12:00:00Z", "2026-01-11T02:30:00-05:00"], ids=["outside", "inside"])
def test_emergency_incomplete_is_an_error_even_inside(approval, missing, now):
    with pytest.raises(WindowError, match=missing):
        status([WEEKLY], now, emergency=approval)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, None),
        ({}, None),
        ({"approved_by": "", "reason": None, "ticket": ""}, None),
        ({"approved_by": " bob ", "reason": "r", "ticket": 4711}, ("bob", "r", "4711")),
    ],
)
def test_parse_emergency(raw, expected):
    approval = parse_emergency(raw)
    assert (approval and (approval.approved_by, approval.reason, approval.ticket)) == expected


def test_emergency_unknown_key():
    with pytest.raises(WindowError, match="'approver'"):
        parse_emergency({"approver": "alice"})


# --------------------------------------------------------------------------- guard


def test_guard_require_raises_with_next_window():
    guard = WindowGuard(parse_windows([WEEKLY]), clock=lambda: parse_now("2026-01-07T12:00:00Z"))
    with pytest.raises(WindowClosedError) as caught:
        guard.require(timedelta(minutes=30))
    error = caught.value
    assert isinstance(error, MaintenanceError)
    assert "next usable window 'weekly' opens 2026-01-11T02:00:00-05:00 (in 3d 19h)" in error.msg
    assert error.details["window"]["next_start"] == "2026-01-11T02:00:00-05:00"
    assert error.details["window"]["allowed"] is False
    assert set(error.details) == {"window"}


def test_guard_asks_the_clock_each_time():
    readings = iter(["2026-01-11T07:00:00Z", "2026-01-11T08:30:00Z", "2026-01-11T08:50:00Z"])
    guard = WindowGuard(parse_windows([WEEKLY]), clock=lambda: parse_now(next(readings)))
    assert guard.time_left() == timedelta(hours=2)
    assert guard.status(required=timedelta(minutes=20)).allowed is True
    assert guard.status(required=timedelta(minutes=20)).allowed is False  # 10 minutes left


def test_guard_from_params():
    params = {
        "windows": [WEEKLY, QUARTERLY], "window": "weekly", "blackouts": ["2026-12-25"],
        "timezone": NY, "emergency": None, "now": "2026-01-11T07:30:00Z",
    }
    guard = guard_from_params(params)
    assert guard.window_name == "weekly"
    assert reports(guard.status()) == [
        {"name": "weekly", "inside": True, "start": "2026-01-11T02:00:00-05:00", "end": "2026-01-11T04:00:00-05:00"}
    ]


def test_unknown_window_name_lists_known_ones():
    with pytest.raises(WindowError) as caught:
        guard_from_params({"windows": [WEEKLY, MONTHLY], "window": "nightly", "timezone": "UTC"})
    assert caught.value.msg == "unknown window 'nightly'; known windows: 'weekly', 'monthly'"


def test_no_windows_denies_without_emergency():
    result = evaluate([], [], "2026-01-07T12:00:00Z").decision()
    assert (result["allowed"], result["reason"]) == (False, "no maintenance windows are defined")
    assert evaluate([], [], "2026-01-07T12:00:00Z", emergency=APPROVAL).mode == "emergency"


# --------------------------------------------------------------------------- now


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-01-11T07:30:00Z", datetime(2026, 1, 11, 7, 30, tzinfo=UTC)),
        ("2026-01-11T02:30:00-05:00", datetime(2026, 1, 11, 7, 30, tzinfo=UTC)),
        (datetime(2026, 1, 11, 8, 30, tzinfo=ZoneInfo("Europe/Berlin")), datetime(2026, 1, 11, 7, 30, tzinfo=UTC)),
    ],
)
def test_parse_now(value, expected):
    assert parse_now(value) == expected


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("2026-01-11T07:30:00", "now '2026-01-11T07:30:00' has no UTC offset"),
        ("2026-01-11", "now '2026-01-11' has no UTC offset"),
        ("next sunday", "now 'next sunday' is not an ISO 8601 datetime"),
        (datetime(2026, 1, 11, 7, 30), "has no UTC offset"),
    ],
)
def test_parse_now_rejects(value, fragment):
    with pytest.raises(WindowError, match=fragment):
        parse_now(value)


# --------------------------------------------------------------------------- bad input


BAD_WINDOWS = [
    pytest.param([with_(WEEKLY, timezone="Mars/Olympus")], ["window 'weekly'", "unknown timezone 'Mars/Olympus'"], id="unknown-timezone"),
    pytest.param([with_(WEEKLY, rrule="FREQ=FORTNIGHTLY;BYDAY=SU")], ["window 'weekly'", "'FORTNIGHTLY'"], id="bad-freq"),
    pytest.param([with_(WEEKLY, rrule="FREQ=WEEKLY;BYDAY=XX")], ["window 'weekly'", "BYDAY value 'XX'"], id="bad-byday"),
    pytest.param([with_(WEEKLY, rrule="FREQ=WEEKLY;BYHOUR=25")], ["window 'weekly'", "BYHOUR value 25"], id="bad-byhour"),
    pytest.param([with_(WEEKLY, rrule="FREQ=WEEKLY;COLOUR=blue")], ["window 'weekly'", "'COLOUR'"], id="bad-rrule-part"),
    pytest.param([with_(WEEKLY, rrule="every sunday")], ["window 'weekly'", "'every sunday'"], id="not-an-rrule"),
    pytest.param([with_(WEEKLY, rrule="FREQ=MINUTELY")], ["window 'weekly'", "FREQ=MINUTELY"], id="minutely"),
    pytest.param([with_(WEEKLY, rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=SU")], ["window 'weekly'", "INTERVAL=2", "DTSTART"], id="interval-no-dtstart"),
    pytest.param([with_(WEEKLY, rrule="FREQ=WEEKLY;COUNT=3;BYDAY=SU")], ["window 'weekly'", "COUNT=3", "DTSTART"], id="count-no-dtstart"),
    pytest.param([with_(AWX, timezone="Europe/London")], ["window 'awx'", "'America/New_York'", "'Europe/London'"], id="tzid-conflict"),
    pytest.param([with_(AWX, rrule="DTSTART;TZID=Mars/Base:20260104T020000 RRULE:FREQ=WEEKLY")], ["window 'awx'", "'Mars/Base'"], id="unknown-tzid"),
    pytest.param([with_(AWX, rrule="DTSTART:2026-01-04 RRULE:FREQ=WEEKLY")], ["window 'awx'", "DTSTART 'DTSTART:2026-01-04'"], id="bad-dtstart"),
    pytest.param([with_(AWX, rrule=AWX_TEXT + " EXDATE:20260118T020000")], ["window 'awx'", "EXDATE"], id="exdate"),
    pytest.param([with_(WEEKLY, duration="0h")], ["window 'weekly'", "'0h' must be greater than zero"], id="zero-duration"),
    pytest.param([with_(WEEKLY, duration="-2h")], ["window 'weekly'", "'-2h' is negative"], id="negative-duration"),
    pytest.param([with_(WEEKLY, duration=None)], ["window 'weekly'", "needs a duration"], id="no-duration"),
    pytest.param([with_(QUARTERLY, start="2026-13-40T22:00")], ["window 'quarterly'", "start '2026-13-40T22:00'"], id="bad-date"),
    pytest.param([with_(QUARTERLY, end="2026-03-28T21:00")], ["window 'quarterly'", "'2026-03-28T21:00'", "empty"], id="end-before-start"),
    pytest.param([with_(QUARTERLY, duration="2h")], ["window 'quarterly'", "exactly one of end or duration"], id="end-and-duration"),
    pytest.param([with_(WEEKLY, colour="blue")], ["window 'weekly'", "unknown key(s) 'colour'"], id="unknown-key"),
    pytest.param([with_(WEEKLY, name=None)], ["window #1 has no name"], id="no-name"),
    pytest.param([WEEKLY, with_(MONTHLY, name="weekly")], ["window 'weekly'", "duplicate", "#2"], id="duplicate-name"),
    pytest.param([with_(WEEKLY, start="2026-01-01T00:00")], ["window 'weekly'", "not both"], id="rrule-and-start"),
    pytest.param([{"name": "empty", "duration": "1h"}], ["window 'empty'", "needs either rrule"], id="neither"),
    pytest.param(["weekly"], ["window #1 must be a dict", "'weekly'"], id="not-a-dict"),
    pytest.param(
        [{"name": "gap", "start": "2026-03-08T02:00", "duration": "30m", "timezone": NY}],
        ["window 'gap'", "daylight-saving gap"], id="entirely-in-gap",
    ),
]


@pytest.mark.parametrize("raw, fragments", BAD_WINDOWS)
def test_bad_windows_name_value_and_window(raw, fragments):
    with pytest.raises(WindowError) as caught:
        parse_windows(raw, "UTC")
    for fragment in fragments:
        assert fragment in caught.value.msg


def test_bad_module_timezone():
    with pytest.raises(WindowError, match="unknown timezone 'Nowhere/City'"):
        parse_windows([WEEKLY], "Nowhere/City")


@pytest.mark.parametrize(
    "raw, fragments",
    [
        (["2026-02-30"], ["blackout #1", "'2026-02-30'"]),
        (["2026-01-01T10:00"], ["blackout #1", "'2026-01-01T10:00'", "neither a date"]),
        ([{"start": "soon"}], ["blackout #1", "start 'soon'"]),
        ([{"start": "2026-01-01T10:00"}], ["blackout #1", "an end is needed"]),
        ([{"start": "2026-01-02", "end": "2026-01-01"}], ["blackout #1", "'2026-01-01' is not after"]),
        ([{"start": "2026-01-01", "why": "x"}], ["blackout #1", "unknown key(s) 'why'"]),
        ([{"start": "2026-01-01", "timezone": "Moon/Base"}], ["blackout #1", "'Moon/Base'"]),
        (["2026-01-01", 20260101], ["blackout #2", "20260101"]),
        ("2026-01-01", ["blackouts must be a list"]),
    ],
)
def test_bad_blackouts(raw, fragments):
    with pytest.raises(WindowError) as caught:
        parse_blackouts(raw, NY)
    for fragment in fragments:
        assert fragment in caught.value.msg


# --------------------------------------------------------------------------- speed


def test_evaluation_is_fast():
    windows = parse_windows([WEEKLY, MONTHLY, QUARTERLY, AWX, EARLY_SUNDAY, LAB_DAILY], NY)
    blackouts = parse_blackouts(["2026-12-25", "2026-07-04"], NY)
    started = time.perf_counter()
    evaluate(windows, blackouts, "2026-06-10T12:00:00Z")  # cold: rules expanded for the first time this year
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for _round in range(20):
        evaluate(windows, blackouts, "2026-06-10T12:00:00Z", required=timedelta(hours=1))
    warm = (time.perf_counter() - started) / 20
    assert cold < 0.05
    assert warm < 0.05


# --------------------------------------------------------------------------- doc fragment vs argument spec


def _documented(options):
    return {
        name: {
            "type": doc.get("type", "str"),
            "elements": doc.get("elements"),
            "default": doc.get("default"),
            "required": doc.get("required", False),
            "no_log": doc.get("no_log", False),
            "choices": doc.get("choices"),
            "options": _documented(doc["suboptions"]) if "suboptions" in doc else None,
        }
        for name, doc in options.items()
    }


def _specified(spec):
    return {
        name: {
            "type": option.get("type", "str"),
            "elements": option.get("elements"),
            "default": option.get("default"),
            "required": option.get("required", False),
            "no_log": option.get("no_log", False),
            "choices": option.get("choices"),
            "options": _specified(option["options"]) if "options" in option else None,
        }
        for name, option in spec.items()
    }


def test_window_guard_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert _documented(documented) == _specified(window_guard_argument_spec())
    assert set(documented) == {"windows", "window", "blackouts", "timezone", "emergency", "now"}
