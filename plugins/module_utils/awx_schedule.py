# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""AWX schedules that start a job exactly when a maintenance window opens.

A window's rule is not enough as an AWX rrule: AWX skips a run whose local time does not exist
(02:00 on the spring-forward Sunday), while the window opens at the end of the gap (03:00); a
blackout removes openings that the rule still has; and AWX refuses parts the windows accept
(``BYDAY=1SA``, an rrule without INTERVAL, a naive UNTIL). So the schedule is the window's rule in
AWX's form plus, for a horizon, one pinned rule per opening AWX would miss (RRULE) or per run it
would start where no window opens (EXRULE). ``awx_occurrences`` computes runs as AWX does, and the
schedule is checked against ``window.window_openings`` before it is returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .errors import WindowError
from .window import (
    UTC,
    Blackout,
    RangeWindow,
    RecurringWindow,
    WindowSpec,
    local_wall,
    resolve_local,
    window_openings,
)

try:
    from dateutil import parser as _parser
    from dateutil import rrule as _rrule
    from dateutil import tz as _tz
except ImportError:  # the generator and its tests run where dateutil is installed; modules never import this
    _parser = _rrule = _tz = None

DEFAULT_HORIZON = timedelta(days=731)
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_PREFIXED_DAY = re.compile(r"([+-]?\d+)(MO|TU|WE|TH|FR|SA|SU)")
_DTSTART = re.compile(r"DTSTART(;[^:\s]+)?:(\d{8}T\d{6})(Z?)", re.IGNORECASE)
_MAX_COUNT = 999


@dataclass(frozen=True)
class WindowSchedule:
    """An AWX rrule whose runs are the window's openings up to ``checked_until``."""

    window: str
    rrule: str
    first_run: datetime
    checked_until: datetime
    corrections: int


def _fail(window: str, text: str) -> WindowError:
    return WindowError(msg=f"window {window!r} cannot be an AWX schedule: {text}")


def _utc_stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _parts(body: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in body.split(";") if item)


def _join(parts: dict[str, str]) -> str:
    ordered = ["FREQ", "INTERVAL"] + [key for key in parts if key not in ("FREQ", "INTERVAL")]
    return ";".join(f"{key}={parts[key]}" for key in ordered if key in parts)


def _until_utc(value: str, spec: RecurringWindow) -> str:
    """The window keeps UNTIL in local wall time; AWX wants an instant (``Z``) with a zoned DTSTART."""
    stamp = value if "T" in value else value + "T000000"
    wall = datetime.strptime(stamp, "%Y%m%dT%H%M%S")
    return _utc_stamp(resolve_local(wall, spec.zone))


def _awx_bodies(spec: RecurringWindow) -> list[str]:
    """The window's rule in the parts AWX accepts (one rule per weekday that had an ordinal)."""
    parts = _parts(spec.rule)
    for key in ("BYYEARDAY", "BYWEEKNO"):
        if key in parts:
            raise _fail(spec.name, f"AWX refuses {key}; express the window with BYMONTH, BYMONTHDAY or BYDAY")
    if int(parts.get("COUNT", "0")) > _MAX_COUNT:
        raise _fail(spec.name, f"AWX refuses COUNT above {_MAX_COUNT} (COUNT={parts['COUNT']})")
    parts.setdefault("INTERVAL", "1")
    if "UNTIL" in parts:
        parts["UNTIL"] = _until_utc(parts["UNTIL"], spec)
    days = parts.get("BYDAY", "").split(",") if parts.get("BYDAY") else []
    ordinal = [_PREFIXED_DAY.fullmatch(day) for day in days]
    if not any(ordinal):
        return [_join(parts)]
    # AWX refuses BYDAY=1SA; "the nth such weekday" is BYDAY=SA;BYSETPOS=n when nothing else multiplies the set.
    if not all(ordinal):
        raise _fail(spec.name, f"BYDAY={parts['BYDAY']} mixes weekdays with and without an ordinal")
    if parts["FREQ"] not in ("MONTHLY", "YEARLY") or "BYSETPOS" in parts or "BYMONTHDAY" in parts:
        raise _fail(spec.name, f"BYDAY={parts['BYDAY']} with FREQ={parts['FREQ']}"
                               f"{' and BYSETPOS' if 'BYSETPOS' in parts else ''}"
                               f"{' and BYMONTHDAY' if 'BYMONTHDAY' in parts else ''} has no AWX form")
    for key in ("BYHOUR", "BYMINUTE", "BYSECOND") + (("BYMONTH",) if parts["FREQ"] == "YEARLY" else ()):
        if "," in parts.get(key, ""):
            raise _fail(spec.name, f"BYDAY={parts['BYDAY']} with several {key} values has no AWX form")
    bodies = []
    for match in ordinal:
        one = dict(parts, BYDAY=match.group(2), BYSETPOS=str(int(match.group(1))))
        bodies.append(_join(one))
    return bodies


def _dtstart_wall(spec: RecurringWindow, after: datetime) -> datetime | None:
    """The window's own DTSTART, or its first occurrence after ``after`` (undated rules have INTERVAL=1).

    None when the rule has no occurrence after ``after`` any more (its UNTIL or COUNT has passed).
    """
    wall = local_wall(after, spec.zone).replace(microsecond=0)
    if spec.dtstart is not None:
        return spec.dtstart if spec._rule_near(wall).after(wall) is not None else None  # noqa: SLF001
    return spec._rule_near(wall).after(wall, inc=False)  # noqa: SLF001 - the window's own expansion


def _pinned(instant: datetime, spec: WindowSpec) -> str:
    """A rule that gives exactly the local wall time of ``instant``, once (the date's weekday pins the year)."""
    wall = local_wall(instant, spec.zone)
    return (f"FREQ=YEARLY;INTERVAL=1;BYMONTH={wall.month};BYMONTHDAY={wall.day};BYDAY={_WEEKDAYS[wall.weekday()]};"
            f"BYHOUR={wall.hour};BYMINUTE={wall.minute};BYSECOND={wall.second};UNTIL={_utc_stamp(instant)}")


def _text(zone: str, dtstart: datetime, rules: list[str], exrules: list[str]) -> str:
    lines = [f"DTSTART;TZID={zone}:{dtstart:%Y%m%dT%H%M%S}"]
    lines += [f"RRULE:{body}" for body in rules] + [f"EXRULE:{body}" for body in exrules]
    return " ".join(lines)


def schedule_for_window(spec: WindowSpec, blackouts: list[Blackout] | tuple[Blackout, ...], *, after: datetime,
                        horizon: timedelta = DEFAULT_HORIZON) -> WindowSchedule | None:
    """The AWX schedule of one window, correct from ``after`` for ``horizon``; None if it never opens again."""
    until = after + horizon
    expected = window_openings([spec], blackouts, after, until=until)
    if isinstance(spec, RangeWindow):
        if not expected:
            return None
        dtstart = local_wall(expected[0], spec.zone)
        rules = ["FREQ=DAILY;INTERVAL=1;COUNT=1"]
    elif isinstance(spec, RecurringWindow):
        rules = _awx_bodies(spec)
        dtstart = _dtstart_wall(spec, after)
        if dtstart is None:
            return None
    else:  # a new kind of window must say how it schedules
        raise _fail(spec.name, f"unknown window kind {type(spec).__name__}")
    exrules: list[str] = []
    runs = awx_occurrences(_text(spec.timezone, dtstart, rules, exrules), after=after, until=until)
    corrections = 0
    for instant in sorted(set(expected) - set(runs)):
        rules.append(_pinned(instant, spec))
        corrections += 1
    for instant in sorted(set(runs) - set(expected)):
        exrules.append(_pinned(instant, spec))
        corrections += 1
    text = _text(spec.timezone, dtstart, rules, exrules)
    runs = awx_occurrences(text, after=after, until=until)
    if runs != expected:
        differ = sorted(set(runs) ^ set(expected))[:3]
        raise _fail(spec.name, "its AWX runs and its openings still differ after correction at "
                               + ", ".join(instant.isoformat() for instant in differ))
    problems = awx_rrule_problems(text)
    if problems:
        raise _fail(spec.name, "; ".join(problems))
    if not runs:
        return None
    return WindowSchedule(window=spec.name, rrule=text, first_run=runs[0], checked_until=until,
                          corrections=corrections)


# --------------------------------------------------------------------------- AWX's side


def _ruleset(text: str) -> Any:
    if _rrule is None:
        raise WindowError(msg="AWX schedules need the python-dateutil library")
    # As AWX parses a schedule: a rule set, "UTC"/"Z"-style zone names as UTC, everything else by TZID.
    utc_names = {name: _tz.tzutc() for name in _parser.parserinfo().UTCZONE}
    return _rrule.rrulestr(text, tzinfos=utc_names, forceset=True)


def awx_occurrences(text: str, *, after: datetime, until: datetime | None = None,
                    count: int | None = None) -> list[datetime]:
    """The runs AWX starts for a schedule's rrule after ``after``, as UTC instants.

    AWX takes the next occurrence after now; when that local time does not exist (a
    spring-forward gap) it skips to the one after it.
    """
    if until is None and count is None:
        raise WindowError(msg="awx_occurrences needs until or count, or it would not end")
    runs: list[datetime] = []
    for occurrence in _ruleset(text).xafter(after, inc=False):
        if until is not None and occurrence > until:
            break
        if not _tz.datetime_exists(occurrence):
            continue
        instant = occurrence.astimezone(UTC)
        if not runs or runs[-1] != instant:
            runs.append(instant)
        if count is not None and len(runs) >= count:
            break
    return runs


def awx_rrule_problems(text: str) -> list[str]:
    """What AWX's schedule API would refuse in ``text`` (empty when it accepts it).

    The rules of AWX's schedule serializer, plus the parts older AWX releases also refuse
    (BYYEARDAY, BYWEEKNO, a TZID with a UTC ``Z`` stamp).
    """
    problems = []
    starts = _DTSTART.findall(text)
    if len(starts) != 1:
        problems.append("exactly one DTSTART is required" if not starts else "multiple DTSTART is not supported")
    elif not starts[0][0] and not starts[0][2]:
        problems.append("DTSTART cannot be a naive datetime; give ;TZID= or a Z time")
    elif starts[0][0] and starts[0][2]:
        problems.append("DTSTART may not have both a TZID and a Z time")
    rules = re.findall(r"(?:RRULE|EXRULE):\S*", text, re.IGNORECASE)
    if not any(rule.upper().startswith("RRULE:") for rule in rules):
        problems.append("at least one RRULE is required")
    for line in ("EXDATE", "RDATE"):
        if re.search(rf"(^|\s){line}[;:]", text, re.IGNORECASE):
            problems.append(f"{line} is not allowed")
    for rule in rules:
        upper = rule.upper()
        parts = _parts(upper.split(":", 1)[1])
        if "INTERVAL" not in parts:
            problems.append(f"INTERVAL is required: {rule}")
        if parts.get("FREQ") == "SECONDLY":
            problems.append(f"SECONDLY is not supported: {rule}")
        if any(_PREFIXED_DAY.fullmatch(day) for day in parts.get("BYDAY", "").split(",") if day):
            problems.append(f"BYDAY with a numeric prefix is not supported: {rule}")
        if "COUNT" in parts and "UNTIL" in parts:
            problems.append(f"a rule may not have both COUNT and UNTIL: {rule}")
        if "COUNT" in parts and int(parts["COUNT"]) > _MAX_COUNT:
            problems.append(f"COUNT above {_MAX_COUNT} is not supported: {rule}")
        for key in ("BYYEARDAY", "BYWEEKNO"):
            if key in parts:
                problems.append(f"{key} is not supported: {rule}")
    if not problems:
        try:
            ruleset = _ruleset(text)
        except (ValueError, TypeError) as exc:
            return [f"the rrule does not parse: {exc}"]
        if any(rule._dtstart.tzinfo is None for rule in ruleset._rrule):  # noqa: SLF001 - what AWX checks
            problems.append("a valid TZID must be provided")
    return problems
