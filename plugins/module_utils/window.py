# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Maintenance windows as data: parse them, and decide whether disruptive work may start now.

Pure logic, no Ansible imports. Instants are timezone-aware UTC datetimes throughout; local
wall-clock times only appear where a window is announced (rrule expansion, ISO input) and in
the output. The daylight-saving rule is in ``bounded_interval``.

Typical use from a disruptive module::

    guard = guard_from_params(module.params)           # options of window_guard_argument_spec()
    guard.require(required=estimate)                    # raises WindowClosedError when closed
    for table in tables:
        if not guard.status(required=estimate_for(table)).allowed:
            break                                       # the next item no longer fits
"""

from __future__ import annotations

import functools
import heapq
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ansible_collections.streamops.maintenance.plugins.module_utils.errors import (
    WindowClosedError,
    WindowError,
)

try:
    from dateutil import rrule as _rrule
except ImportError:
    _rrule = None
    DATEUTIL_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    DATEUTIL_IMPORT_ERROR = None

HAS_DATEUTIL = DATEUTIL_IMPORT_ERROR is None

UTC = timezone.utc
NEXT_WINDOW_HORIZON = timedelta(days=400)
NOW_YEARS = (1970, 9000)  # the years a given ``now`` may fall in

# A rule without DTSTART is anchored here (a Saturday, 00:00:00): it supplies the weekday,
# day of month and time a rule leaves implicit, exactly as dateutil would take them from DTSTART.
UNANCHORED_DTSTART = datetime(2000, 1, 1)

WINDOW_KEYS = ("name", "rrule", "duration", "timezone", "start", "end")
BLACKOUT_KEYS = ("start", "end", "reason", "timezone")
EMERGENCY_KEYS = ("approved_by", "reason", "ticket")


# --------------------------------------------------------------------------- option spec


def window_guard_argument_spec() -> dict[str, Any]:
    """Options every disruptive module shares; documented by the ``window_guard`` doc fragment."""
    return dict(
        windows=dict(type="list", elements="dict"),
        window=dict(type="str"),
        blackouts=dict(type="list", elements="raw"),
        timezone=dict(type="str", default="UTC"),
        emergency=dict(
            type="dict",
            options=dict(
                approved_by=dict(type="str"),
                reason=dict(type="str"),
                ticket=dict(type="str"),
            ),
        ),
        now=dict(type="str"),
    )


# --------------------------------------------------------------------------- small helpers


def _fail(owner: str | None, text: str, **details: Any) -> WindowError:
    return WindowError(msg=f"{owner}: {text}" if owner else text, **details)


def utc_now() -> datetime:
    return datetime.now(UTC)


def fixed_clock(instant: datetime) -> Callable[[], datetime]:
    """A clock that always answers ``instant`` (the ``now`` option, for tests and dry runs)."""
    return lambda: instant


def format_duration(delta: timedelta, *, words: bool = False) -> str:
    """``1d 2h 5m``: the non-zero units of a duration, for messages; with ``words``, ``1 day 2 hours 5 minutes``."""
    total = int(delta.total_seconds())
    if total <= 0:
        return "0 seconds" if words else "0s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    amounts = (days, hours, minutes, seconds)
    if words:
        return " ".join(f"{amount} {unit}{'' if amount == 1 else 's'}"
                        for amount, unit in zip(amounts, ("day", "hour", "minute", "second")) if amount)
    return " ".join(f"{amount}{unit}" for amount, unit in zip(amounts, "dhms") if amount)


def isoformat(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).isoformat()


# --------------------------------------------------------------------------- durations

_DURATION_HINT = "use e.g. 2h, 90m, 4h30m, 1d, 45s, PT2H or 02:00"
_COMPACT_RE = re.compile(
    r"(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?"
)
_ISO_DURATION_RE = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:[.,]\d+)?)S)?)?"
)
_CLOCK_RE = re.compile(r"(?P<h>\d+):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?")


def _duration_from_match(match: re.Match[str] | None) -> timedelta | None:
    if match is None or not any(match.groupdict().values()):
        return None
    amounts = {unit: float((value or "0").replace(",", ".")) for unit, value in match.groupdict().items()}
    return timedelta(
        weeks=amounts.get("w", 0),
        days=amounts.get("d", 0),
        hours=amounts["h"],
        minutes=amounts["m"],
        seconds=amounts.get("s", 0),
    )


def _duration_from_text(text: str) -> timedelta | None:
    compact = re.sub(r"\s+", "", text)
    if compact == "0":
        return timedelta(0)
    for pattern, candidate in (
        (_COMPACT_RE, compact.lower()),
        (_ISO_DURATION_RE, compact.upper()),
        (_CLOCK_RE, compact),
    ):
        delta = _duration_from_match(pattern.fullmatch(candidate))
        if delta is not None:  # timedelta(0) is falsy
            return delta
    return None


def parse_duration(
    value: str | timedelta | int,
    *,
    allow_zero: bool = False,
    field_name: str = "duration",
    owner: str | None = None,
) -> timedelta:
    """``2h``, ``90m``, ``4h30m``, ``1d``, ``45s``, ``PT2H`` or ``HH:MM[:SS]`` as a timedelta.

    A bare number is refused (seconds or minutes?) except ``0``. Zero is refused unless
    ``allow_zero`` (cutoffs and estimates may be zero, window durations may not).
    """
    if isinstance(value, timedelta):
        delta: timedelta | None = value
    elif isinstance(value, str):
        if value.strip().startswith("-"):
            raise _fail(owner, f"{field_name} {value!r} is negative; it must be greater than zero")
        delta = _duration_from_text(value)
    elif isinstance(value, int) and not isinstance(value, bool) and value == 0:
        delta = timedelta(0)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        raise _fail(owner, f"{field_name} {value!r} has no unit; {_DURATION_HINT}")
    else:
        delta = None
    if delta is None:
        raise _fail(owner, f"{field_name} {value!r} is not a duration; {_DURATION_HINT}")
    if delta < timedelta(0):
        raise _fail(owner, f"{field_name} {value!r} is negative; it must be greater than zero")
    if delta == timedelta(0) and not allow_zero:
        raise _fail(owner, f"{field_name} {value!r} must be greater than zero")
    return delta


def required_time(*, cutoff: Any = None, estimated_duration: Any = None) -> timedelta:
    """Time that must remain in the window before new work starts: max(cutoff, estimate)."""
    needed = [timedelta(0)]
    for field_name, value in (("cutoff", cutoff), ("estimated_duration", estimated_duration)):
        if value is not None and value != "":
            needed.append(parse_duration(value, allow_zero=True, field_name=field_name))
    return max(needed)


# --------------------------------------------------------------------------- zones and local time


def get_zone(name: str | ZoneInfo | None, *, owner: str | None = None, field_name: str = "timezone") -> ZoneInfo:
    if isinstance(name, ZoneInfo):
        return name
    if not isinstance(name, str) or not name.strip():
        raise _fail(owner, f"{field_name} {name!r} is not an IANA timezone name such as America/New_York")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _fail(owner, f"unknown {field_name} {name!r}; use an IANA name such as America/New_York or UTC") from None


def local_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _offset_at(timestamp: int, zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, zone).utcoffset()


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    # zoneinfo does not expose its transitions: bisect (to the second) between the two readings.
    readings = sorted(int(wall.replace(tzinfo=zone, fold=fold).timestamp()) for fold in (0, 1))
    low, high = readings
    before = _offset_at(low, zone)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(middle, zone) == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def resolve_local(wall: datetime, zone: ZoneInfo, *, fold: int = 0) -> datetime:
    """The UTC instant of a naive local wall-clock time.

    A time in a spring-forward gap resolves to the first instant after the gap; an ambiguous
    (fall-back) time to its first occurrence with ``fold=0``, its second with ``fold=1``.
    """
    candidate = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    if local_wall(candidate, zone) == wall:
        return candidate
    return _end_of_gap(wall, zone)


# --------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """Half-open ``[start, end)`` between two aware instants."""

    start: datetime
    end: datetime

    @property
    def empty(self) -> bool:
        return self.end <= self.start

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


def subtract(interval: Interval, holes: Iterable[Interval]) -> list[Interval]:
    """What is left of ``interval`` once every hole is cut out, in time order."""
    pieces = [interval]
    for hole in holes:
        remaining: list[Interval] = []
        for piece in pieces:
            if not piece.overlaps(hole):
                remaining.append(piece)
                continue
            if piece.start < hole.start:
                remaining.append(Interval(piece.start, hole.start))
            if hole.end < piece.end:
                remaining.append(Interval(hole.end, piece.end))
        pieces = remaining
    return pieces


def bounded_interval(
    start_wall: datetime, duration: timedelta, zone: ZoneInfo, *, start: datetime | None = None
) -> Interval:
    """An occurrence announced as local ``start_wall`` for ``duration``, under the DST rule.

    The opening is ``start`` or ``start_wall`` resolved (gap: first instant after it; fall-back:
    first occurrence). The closing is the EARLIER of the announced local end (``start_wall +
    duration`` on the wall clock, resolved the same way) and ``duration`` of real elapsed time:
    a window never runs longer than its duration nor past its announced local end.
    """
    opening = start if start is not None else resolve_local(start_wall, zone)
    closing = min(resolve_local(start_wall + duration, zone), opening + duration)
    return Interval(opening, closing)


# --------------------------------------------------------------------------- date/time input

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_when(value: Any, *, owner: str | None, field_name: str) -> datetime | date:
    """An ISO date (``date``) or datetime (naive = local wall time, or with an offset)."""
    if isinstance(value, (datetime, date)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if _DATE_RE.fullmatch(text) else datetime.fromisoformat(text)
        except ValueError:
            pass
    raise _fail(
        owner,
        f"{field_name} {value!r} is not an ISO 8601 date or datetime "
        "(YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] or with an offset such as +01:00)",
    )


def _instant_of(value: datetime | date, zone: ZoneInfo, *, fold: int = 0, day_end: bool = False) -> datetime:
    """UTC instant of a parsed start/end; a date is its local midnight (the next one if ``day_end``)."""
    if not isinstance(value, datetime):
        day = value + timedelta(days=1) if day_end else value
        return resolve_local(datetime.combine(day, time()), zone)
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(UTC)
    return resolve_local(value, zone, fold=fold)


def _announced_wall(value: datetime | date, zone: ZoneInfo) -> datetime:
    """The local wall-clock time as written (a gap time stays in the gap), for ``start + duration``."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time())
    if value.tzinfo is not None and value.utcoffset() is not None:
        return local_wall(value, zone)
    return value


def parse_now(value: str | datetime) -> datetime:
    """An ISO 8601 datetime WITH an offset (or ``Z``), as UTC; a naive value is refused."""
    instant: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value.strip())
        except ValueError:
            instant = None
    if instant is None:
        raise WindowError(msg=f"now {value!r} is not an ISO 8601 datetime such as 2026-01-04T07:30:00Z")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise WindowError(
            msg=f"now {value!r} has no UTC offset; write it with Z or +HH:MM, e.g. 2026-01-04T07:30:00Z"
        )
    # Window arithmetic reaches a day and a duration before and 400 days after now: year 1 or 9999 overflowed
    # datetime (a traceback), and no maintenance run happens so far from today.
    if not NOW_YEARS[0] <= instant.astimezone(UTC).year <= NOW_YEARS[1]:
        raise WindowError(msg=f"now {value!r} is outside the years {NOW_YEARS[0]} to {NOW_YEARS[1]}")
    return instant.astimezone(UTC)


# --------------------------------------------------------------------------- rrule text

_FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
_RRULE_PARTS = (
    "FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYSETPOS", "BYMONTH", "BYMONTHDAY",
    "BYYEARDAY", "BYWEEKNO", "BYDAY", "BYHOUR", "BYMINUTE", "BYSECOND",
)
# part: (lowest, highest, may be negative)
_RRULE_RANGES = {
    "BYMONTH": (1, 12, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYSETPOS": (1, 366, True),
    "BYHOUR": (0, 23, False),
    "BYMINUTE": (0, 59, False),
    "BYSECOND": (0, 59, False),
}
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY_RE = re.compile(r"[+-]?(?:[1-9]|[1-4]\d|5[0-3])?(?:MO|TU|WE|TH|FR|SA|SU)")
_UNTIL_RE = re.compile(r"(?P<day>\d{8})(?:T(?P<clock>\d{6})(?P<utc>Z?))?")
_DTSTART_RE = re.compile(
    r"DTSTART(?:;(?:TZID=(?P<tzid>[^:;]+)|VALUE=DATE(?:-TIME)?))*:(?P<stamp>\d{8}(?:T\d{6})?)(?P<utc>Z?)",
    re.IGNORECASE,
)
_LINE_SPLIT_RE = re.compile(r"\s+(?=(?:DTSTART|RRULE|EXRULE|RDATE|EXDATE)[;:])", re.IGNORECASE)


def _split_rrule_text(text: str, owner: str) -> tuple[str | None, str]:
    """``(DTSTART line or None, RRULE body)`` from AWX-style text (lines or one space-separated line)."""
    dtstart_line: str | None = None
    body: str | None = None
    for part in _LINE_SPLIT_RE.split(text.strip()):
        part = re.sub(r"\s+", "", part)
        upper = part.upper()
        if upper.startswith("DTSTART"):
            if dtstart_line is not None:
                raise _fail(owner, f"rrule {text!r} has more than one DTSTART line")
            dtstart_line = part
            continue
        if upper.startswith("RRULE:"):
            part = part[len("RRULE:"):]
        elif not upper.startswith("FREQ=") and ";FREQ=" not in upper:
            raise _fail(owner, f"rrule {text!r}: unsupported line {part!r}; only DTSTART and one RRULE are supported")
        if body is not None:
            raise _fail(owner, f"rrule {text!r} has more than one RRULE")
        body = part
    if not body:
        raise _fail(owner, f"rrule {text!r} has no RRULE (expected e.g. FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0)")
    return dtstart_line, body


def _parse_dtstart(line: str, owner: str) -> tuple[datetime, str | None]:
    """The naive local DTSTART and its zone name (``UTC`` for a ``Z`` stamp, None when floating)."""
    match = _DTSTART_RE.fullmatch(line)
    if match is None:
        raise _fail(owner, f"DTSTART {line!r} is not DTSTART[;TZID=Zone]:YYYYMMDDTHHMMSS[Z]")
    stamp = match["stamp"].upper()
    try:
        start = datetime.strptime(stamp, "%Y%m%dT%H%M%S" if "T" in stamp else "%Y%m%d")
    except ValueError:
        raise _fail(owner, f"DTSTART {line!r} is not a valid date and time") from None
    tzid = match["tzid"]
    if match["utc"]:
        if tzid:
            raise _fail(owner, f"DTSTART {line!r} has both TZID and a UTC 'Z' stamp")
        tzid = "UTC"
    return start, tzid


def _check_rrule_numbers(key: str, value: str, owner: str, text: str) -> None:
    low, high, signed = _RRULE_RANGES[key]
    for item in value.split(","):
        try:
            number = int(item)
        except ValueError:
            raise _fail(owner, f"rrule {text!r}: {key}={value} is not a list of numbers") from None
        if not (low <= number <= high or (signed and -high <= number <= -low)):
            raise _fail(owner, f"rrule {text!r}: {key} value {item} is out of range")


def _parse_rrule_body(body: str, owner: str, text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in filter(None, body.split(";")):
        key, sep, value = item.partition("=")
        key, value = key.upper(), value.upper()
        if not sep or not value:
            raise _fail(owner, f"rrule {text!r}: {item!r} is not KEY=VALUE")
        if key not in _RRULE_PARTS:
            raise _fail(owner, f"rrule {text!r}: unsupported part {key!r}")
        if key in parts:
            raise _fail(owner, f"rrule {text!r}: {key} is given twice")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq in ("MINUTELY", "SECONDLY"):
        raise _fail(owner, f"rrule {text!r}: FREQ={freq} is not supported; windows recur at most hourly")
    if freq not in _FREQUENCIES:
        raise _fail(owner, f"rrule {text!r}: FREQ must be one of {', '.join(_FREQUENCIES)}, got {freq!r}")
    for key in ("INTERVAL", "COUNT"):
        if key in parts and (not parts[key].isdigit() or int(parts[key]) < 1):
            raise _fail(owner, f"rrule {text!r}: {key}={parts[key]} is not a positive whole number")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _fail(owner, f"rrule {text!r}: COUNT and UNTIL exclude each other")
    if "UNTIL" in parts and not _UNTIL_RE.fullmatch(parts["UNTIL"]):
        raise _fail(owner, f"rrule {text!r}: UNTIL={parts['UNTIL']} is not YYYYMMDD[THHMMSS[Z]]")
    if "WKST" in parts and parts["WKST"] not in _WEEKDAYS:
        raise _fail(owner, f"rrule {text!r}: WKST={parts['WKST']} is not a weekday (MO..SU)")
    for item in parts["BYDAY"].split(",") if "BYDAY" in parts else ():
        if not _BYDAY_RE.fullmatch(item):
            raise _fail(owner, f"rrule {text!r}: BYDAY value {item!r} is not a weekday such as SU or 1SA")
    for key in sorted(_RRULE_RANGES.keys() & parts.keys()):
        _check_rrule_numbers(key, parts[key], owner, text)
    return parts


def _until_in_local_time(until: str, zone: ZoneInfo) -> str:
    """dateutil wants a naive UNTIL with a naive DTSTART: express a UTC UNTIL in the window's zone."""
    match = _UNTIL_RE.fullmatch(until)
    if match is None or not match["utc"]:
        return until
    instant = datetime.strptime(match["day"] + match["clock"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return local_wall(instant, zone).strftime("%Y%m%dT%H%M%S")


def _with_explicit_defaults(parts: dict[str, str]) -> dict[str, str]:
    """Spell out what an undated rule takes from UNANCHORED_DTSTART, so any DTSTART gives the same set."""
    explicit = dict(parts)
    freq = explicit["FREQ"]
    if not explicit.keys() & {"BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY"}:
        if freq == "YEARLY":
            explicit.setdefault("BYMONTH", str(UNANCHORED_DTSTART.month))
            explicit["BYMONTHDAY"] = str(UNANCHORED_DTSTART.day)
        elif freq == "MONTHLY":
            explicit["BYMONTHDAY"] = str(UNANCHORED_DTSTART.day)
        elif freq == "WEEKLY":
            explicit["BYDAY"] = _WEEKDAYS[UNANCHORED_DTSTART.weekday()]
    if freq != "HOURLY":
        explicit.setdefault("BYHOUR", str(UNANCHORED_DTSTART.hour))
    explicit.setdefault("BYMINUTE", str(UNANCHORED_DTSTART.minute))
    explicit.setdefault("BYSECOND", str(UNANCHORED_DTSTART.second))
    return explicit


def _join_rrule(parts: Mapping[str, str]) -> str:
    ordered = ["FREQ"] + [key for key in _RRULE_PARTS if key in parts and key != "FREQ"]
    return ";".join(f"{key}={parts[key]}" for key in ordered)


# Memo, not state: a parsed rule plus dateutil's own occurrence cache, so repeated evaluations
# scan a list instead of re-expanding the rule.
@functools.lru_cache(maxsize=256)
def _build_rule(body: str, dtstart: datetime) -> Any:
    return _rrule.rrulestr(body, dtstart=dtstart, cache=True)


def _rebased_dtstart(freq: str, begin: datetime) -> datetime:
    """A DTSTART shortly before ``begin`` that leaves an explicit-defaults rule's occurrences unchanged.

    Valid because undated rules have INTERVAL=1 and no COUNT; at least a full period before
    ``begin`` so BYSETPOS sees whole periods.
    """
    if freq == "HOURLY":
        first_of_month = datetime(begin.year, begin.month, 1)
        anchor = (first_of_month - timedelta(days=1)).replace(day=1)
    else:
        anchor = datetime(begin.year - 1, 1, 1)
    return max(anchor, UNANCHORED_DTSTART)


# --------------------------------------------------------------------------- window specs


@dataclass(frozen=True)
class WindowSpec:
    """A named maintenance window; subclasses produce its occurrences."""

    name: str
    zone: ZoneInfo

    @property
    def timezone(self) -> str:
        return self.zone.key

    def occurrences(self, after: datetime, until: datetime) -> Iterator[Interval]:
        """Occurrences that end after ``after`` and open no later than ``until``, in opening order."""
        raise NotImplementedError


@dataclass(frozen=True)
class RecurringWindow(WindowSpec):
    """``rrule`` + ``duration``; ``rule`` is the normalised RRULE body, UNTIL in local time."""

    rule: str
    duration: timedelta
    dtstart: datetime | None = None  # naive local; None: undated rule, defaults made explicit

    @property
    def freq(self) -> str:
        return self.rule.split(";", 1)[0].partition("=")[2]

    def _rule_near(self, begin: datetime) -> Any:
        if self.dtstart is not None:
            return _build_rule(self.rule, self.dtstart)
        return _build_rule(self.rule, _rebased_dtstart(self.freq, begin))

    def occurrences(self, after: datetime, until: datetime) -> Iterator[Interval]:
        # One day of slack covers any UTC offset change between the two ends.
        begin = local_wall(after, self.zone) - self.duration - timedelta(days=1)
        for start_wall in self._rule_near(begin).xafter(begin, inc=True):
            interval = bounded_interval(start_wall, self.duration, self.zone)
            if interval.start > until:
                return
            if interval.end > after and not interval.empty:
                yield interval


@dataclass(frozen=True)
class RangeWindow(WindowSpec):
    """An announced one-off range (the quarterly window): ``start`` to ``end``, as UTC instants."""

    start: datetime
    end: datetime

    def occurrences(self, after: datetime, until: datetime) -> Iterator[Interval]:
        if self.end > after and self.start <= until:
            yield Interval(self.start, self.end)


def _parse_recurring(name: str, raw: Mapping[str, Any], zone: ZoneInfo, zone_given: bool) -> RecurringWindow:
    owner = f"window {name!r}"
    if not HAS_DATEUTIL:
        raise _fail(owner, "rrule windows need the python-dateutil library on the target")
    if raw.get("duration") is None:
        raise _fail(owner, "an rrule window needs a duration (e.g. 2h)")
    duration = parse_duration(raw["duration"], owner=owner)
    text = raw["rrule"]
    if not isinstance(text, str) or not text.strip():
        raise _fail(owner, f"rrule {text!r} is not an RFC 5545 RRULE string")
    dtstart_line, body = _split_rrule_text(text, owner)
    dtstart: datetime | None = None
    if dtstart_line is not None:
        dtstart, tzid = _parse_dtstart(dtstart_line, owner)
        if tzid is not None:
            rule_zone = get_zone(tzid, owner=owner, field_name="DTSTART TZID")
            if zone_given and rule_zone.key != zone.key:
                raise _fail(owner, f"DTSTART TZID {rule_zone.key!r} conflicts with timezone {zone.key!r}")
            zone = rule_zone
    parts = _parse_rrule_body(body, owner, text)
    if dtstart is None:
        for key in ("INTERVAL", "COUNT"):
            if key in parts and not (key == "INTERVAL" and parts[key] == "1"):
                raise _fail(
                    owner,
                    f"rrule {text!r}: {key}={parts[key]} needs a DTSTART line, otherwise its phase is arbitrary",
                )
        parts.pop("INTERVAL", None)
        parts = _with_explicit_defaults(parts)
    if "UNTIL" in parts:
        parts["UNTIL"] = _until_in_local_time(parts["UNTIL"], zone)
    rule = _join_rrule(parts)
    try:
        _build_rule(rule, dtstart or UNANCHORED_DTSTART)
    except (ValueError, TypeError, KeyError) as exc:
        raise _fail(owner, f"invalid rrule {text!r}: {exc}") from None
    return RecurringWindow(name=name, zone=zone, rule=rule, duration=duration, dtstart=dtstart)


def _parse_range(name: str, raw: Mapping[str, Any], zone: ZoneInfo) -> RangeWindow:
    owner = f"window {name!r}"
    has_end, has_duration = raw.get("end") is not None, raw.get("duration") is not None
    if has_end == has_duration:
        raise _fail(owner, "a start/end window needs exactly one of end or duration")
    start_value = _parse_when(raw["start"], owner=owner, field_name="start")
    start = _instant_of(start_value, zone)
    if has_duration:
        duration = parse_duration(raw["duration"], owner=owner)
        start_wall = _announced_wall(start_value, zone)
        interval = bounded_interval(start_wall, duration, zone, start=start)
    else:
        end_value = _parse_when(raw["end"], owner=owner, field_name="end")
        interval = Interval(start, _instant_of(end_value, zone, day_end=True))
    if interval.empty:
        raise _fail(
            owner,
            f"the range from {raw['start']!r} to {raw.get('end') or raw.get('duration')!r} is empty "
            "(end not after start, or entirely inside a daylight-saving gap)",
        )
    return RangeWindow(name=name, zone=zone, start=interval.start, end=interval.end)


def parse_window(raw: Any, default_tz: str | ZoneInfo, *, position: int = 1) -> WindowSpec:
    """One window dict: ``{name, rrule, duration, timezone}`` or ``{name, start, end|duration, timezone}``."""
    if not isinstance(raw, Mapping):
        raise WindowError(msg=f"window #{position} must be a dict, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise WindowError(msg=f"window #{position} has no name (got {name!r}); every window needs a unique name")
    owner = f"window {name!r}"
    unknown = sorted(set(raw) - set(WINDOW_KEYS), key=str)
    if unknown:
        raise _fail(owner, f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(WINDOW_KEYS)}")
    zone_given = raw.get("timezone") is not None
    zone = get_zone(raw["timezone"], owner=owner) if zone_given else get_zone(default_tz)
    if raw.get("rrule") is not None:
        if raw.get("start") is not None or raw.get("end") is not None:
            raise _fail(owner, "give either rrule (with duration) or start (with end or duration), not both")
        return _parse_recurring(name, raw, zone, zone_given)
    if raw.get("start") is not None:
        return _parse_range(name, raw, zone)
    raise _fail(owner, "needs either rrule (with duration) or start (with end or duration)")


def parse_windows(raw_list: Sequence[Any] | None, default_tz: str | ZoneInfo = "UTC") -> list[WindowSpec]:
    """Parse and validate the ``windows`` option; names must be unique."""
    get_zone(default_tz)
    if raw_list is None:
        return []
    if isinstance(raw_list, (str, bytes, Mapping)) or not isinstance(raw_list, Sequence):
        raise WindowError(msg=f"windows must be a list of dicts, got {raw_list!r}")
    specs: list[WindowSpec] = []
    for position, raw in enumerate(raw_list, 1):
        spec = parse_window(raw, default_tz, position=position)
        if any(existing.name == spec.name for existing in specs):
            raise WindowError(msg=f"window {spec.name!r}: duplicate window name (window #{position})")
        specs.append(spec)
    return specs


def select_windows(windows: Sequence[WindowSpec], window_name: str | None) -> list[WindowSpec]:
    """All windows, or only the one named ``window_name`` (unknown name: error listing the known ones)."""
    if not window_name:
        return list(windows)
    for spec in windows:
        if spec.name == window_name:
            return [spec]
    known = ", ".join(repr(spec.name) for spec in windows) or "none are defined"
    raise WindowError(msg=f"unknown window {window_name!r}; known windows: {known}")


# --------------------------------------------------------------------------- blackouts


@dataclass(frozen=True)
class Blackout:
    """A period in which nothing disruptive may run, whatever the windows say."""

    interval: Interval
    zone: ZoneInfo
    reason: str | None = None
    label: str = ""

    def as_record(self) -> dict[str, Any]:
        return {
            "start": isoformat(self.interval.start, self.zone),
            "end": isoformat(self.interval.end, self.zone),
            "reason": self.reason,
            "timezone": self.zone.key,
        }


def _blackout_from_dict(raw: Mapping[str, Any], default_zone: ZoneInfo, owner: str) -> Blackout:
    unknown = sorted(set(raw) - set(BLACKOUT_KEYS), key=str)
    if unknown:
        raise _fail(owner, f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(BLACKOUT_KEYS)}")
    zone = get_zone(raw["timezone"], owner=owner) if raw.get("timezone") is not None else default_zone
    if raw.get("start") is None:
        raise _fail(owner, "needs a start (a date or a datetime)")
    start_value = _parse_when(raw["start"], owner=owner, field_name="start")
    if raw.get("end") is not None:
        end_value = _parse_when(raw["end"], owner=owner, field_name="end")
    elif not isinstance(start_value, datetime):
        end_value = start_value
    else:
        raise _fail(owner, f"start {raw['start']!r} is a datetime, so an end is needed")
    # Blackouts are widened: an ambiguous local end resolves to its second (later) occurrence.
    interval = Interval(_instant_of(start_value, zone), _instant_of(end_value, zone, fold=1, day_end=True))
    if interval.empty:
        raise _fail(owner, f"end {raw.get('end')!r} is not after start {raw['start']!r}")
    reason = raw.get("reason")
    label = f"{raw['start']}" + (f" to {raw['end']}" if raw.get("end") is not None else "")
    return Blackout(interval=interval, zone=zone, reason=str(reason) if reason else None, label=label)


def parse_blackouts(raw: Sequence[Any] | None, default_tz: str | ZoneInfo = "UTC") -> list[Blackout]:
    """``YYYY-MM-DD`` (that whole local day) or ``{start, end, reason, timezone}`` entries.

    A date-only ``end`` includes that whole day; a naive datetime is local time in the entry's
    ``timezone`` (default: ``default_tz``).
    """
    default_zone = get_zone(default_tz)
    if raw is None:
        return []
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Sequence):
        raise WindowError(msg=f"blackouts must be a list, got {raw!r}")
    blackouts = []
    for position, entry in enumerate(raw, 1):
        owner = f"blackout #{position}"
        if isinstance(entry, Mapping):
            blackouts.append(_blackout_from_dict(entry, default_zone, owner))
            continue
        day = _parse_when(entry, owner=owner, field_name="date") if isinstance(entry, (str, date)) else None
        if day is None or isinstance(day, datetime):
            raise _fail(owner, f"{entry!r} is neither a date (YYYY-MM-DD) nor a dict with start and end")
        interval = Interval(_instant_of(day, default_zone), _instant_of(day, default_zone, day_end=True))
        blackouts.append(Blackout(interval=interval, zone=default_zone, label=str(entry)))
    return blackouts


# --------------------------------------------------------------------------- emergency approval


@dataclass(frozen=True)
class EmergencyApproval:
    approved_by: str
    reason: str
    ticket: str

    def as_dict(self) -> dict[str, str]:
        return {"approved_by": self.approved_by, "reason": self.reason, "ticket": self.ticket}


def _approval_text(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def parse_emergency(raw: Mapping[str, Any] | EmergencyApproval | None) -> EmergencyApproval | None:
    """The approval, or None when absent or entirely empty; a partial one is an error naming the gaps."""
    if raw is None or isinstance(raw, EmergencyApproval):
        return raw
    if not isinstance(raw, Mapping):
        raise WindowError(msg=f"emergency must be a dict with approved_by, reason and ticket, got {raw!r}")
    unknown = sorted(set(raw) - set(EMERGENCY_KEYS), key=str)
    if unknown:
        raise WindowError(msg=f"emergency: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(EMERGENCY_KEYS)}")
    values = {key: _approval_text(raw.get(key)) for key in EMERGENCY_KEYS}
    if not any(values.values()):
        return None
    missing = [key for key, value in values.items() if not value]
    if missing:
        raise WindowError(
            msg=f"emergency approval is incomplete: {', '.join(missing)} missing or empty; "
            "an emergency needs approved_by, reason and ticket",
            missing=missing,
        )
    return EmergencyApproval(**values)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class UsableInterval:
    """Usable time (occurrences minus blackouts) from ``start`` to ``end``, named after ``window``."""

    window: str
    zone: ZoneInfo
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def iso_start(self) -> str:
        return isoformat(self.start, self.zone)

    def iso_end(self) -> str:
        return isoformat(self.end, self.zone)


@dataclass(frozen=True)
class WindowReport:
    """Per-window line of the result: inside it now, and its current or next usable interval."""

    name: str
    inside: bool
    interval: UsableInterval | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inside": self.inside,
            "start": self.interval.iso_start() if self.interval else None,
            "end": self.interval.iso_end() if self.interval else None,
        }


@dataclass(frozen=True)
class WindowStatus:
    """The decision at ``now``; ``decision()`` is what every module returns under ``window``."""

    now: datetime
    mode: str
    required: timedelta
    current: UsableInterval | None
    upcoming: UsableInterval | None
    blackout: Blackout | None
    emergency: EmergencyApproval | None
    reason: str | None
    windows: tuple[WindowReport, ...]
    horizon: timedelta = NEXT_WINDOW_HORIZON

    @property
    def allowed(self) -> bool:
        return self.mode != "denied"

    @property
    def inside(self) -> bool:
        return self.current is not None

    @property
    def time_left(self) -> timedelta:
        """Time until the current usable interval closes (zero outside one)."""
        return max(self.current.end - self.now, timedelta(0)) if self.current else timedelta(0)

    @property
    def time_until_next(self) -> timedelta | None:
        return self.upcoming.start - self.now if self.upcoming else None

    def next_opening_text(self) -> str:
        if self.upcoming is None:
            return f"no usable window opens within the next {self.horizon.days} days"
        return (
            f"next usable window {self.upcoming.window!r} opens {self.upcoming.iso_start()} "
            f"(in {format_duration(self.upcoming.start - self.now)})"
        )

    @property
    def msg(self) -> str:
        if self.mode == "window" and self.current is not None:
            return (
                f"inside window {self.current.window!r} until {self.current.iso_end()} "
                f"({format_duration(self.time_left)} left)"
            )
        if self.mode == "emergency" and self.emergency is not None:
            return (
                f"allowed by emergency approval from {self.emergency.approved_by} "
                f"(ticket {self.emergency.ticket}) although {self.reason}"
            )
        return f"maintenance work not allowed at {self.now.isoformat()}: {self.reason}; {self.next_opening_text()}"

    def decision(self) -> dict[str, Any]:
        """The window decision, the same dict in every module's result (docs/records.md, records.WINDOW_KEYS)."""
        current, upcoming, until_next = self.current, self.upcoming, self.time_until_next
        return {
            "allowed": self.allowed,
            "mode": self.mode,
            "inside": self.inside,
            "now": self.now.isoformat(),
            "name": current.window if current else None,
            "start": current.iso_start() if current else None,
            "end": current.iso_end() if current else None,
            "seconds_left": int(self.time_left.total_seconds()),
            "required_seconds": int(self.required.total_seconds()),
            "next_start": upcoming.iso_start() if upcoming else None,
            "next_window": upcoming.window if upcoming else None,
            "seconds_until_next": int(until_next.total_seconds()) if until_next is not None else None,
            "blackout": self.blackout.as_record() if self.blackout else None,
            "emergency": self.emergency.as_dict() if self.emergency else None,
            "reason": self.reason,
            "msg": self.msg,
        }


@dataclass(frozen=True)
class _Stretch:
    """Usable pieces that touch or overlap, as one stretch of time work can run through."""

    start: datetime
    end: datetime
    first: UsableInterval  # the piece that opens the stretch: names an upcoming stretch
    at_now: UsableInterval | None  # the longest-lasting piece containing now: names the current one

    @classmethod
    def of(cls, piece: UsableInterval, now: datetime) -> _Stretch:
        return cls(piece.start, piece.end, piece, piece if piece.start <= now < piece.end else None)

    def touches(self, other: _Stretch) -> bool:
        return self.start <= other.end and other.start <= self.end

    def union(self, other: _Stretch) -> _Stretch:
        first = min(self.first, other.first, key=lambda piece: (piece.start, -piece.length))
        holders = [piece for piece in (self.at_now, other.at_now) if piece is not None]
        at_now = max(holders, key=lambda piece: piece.end) if holders else None
        return _Stretch(min(self.start, other.start), max(self.end, other.end), first, at_now)

    def as_usable(self) -> UsableInterval:
        named = self.at_now or self.first
        return UsableInterval(named.window, named.zone, self.start, self.end)


def _absorb(stretches: list[_Stretch], new: _Stretch) -> list[_Stretch]:
    """Add ``new`` to disjoint, non-touching stretches, merging every one it touches."""
    kept = []
    for stretch in stretches:
        if stretch.touches(new):
            new = new.union(stretch)
        else:
            kept.append(stretch)
    kept.append(new)
    return sorted(kept, key=lambda stretch: stretch.start)


def _occurrence_stream(
    specs: Sequence[WindowSpec], now: datetime, horizon: timedelta
) -> Iterator[tuple[datetime, WindowSpec, Interval]]:
    """Occurrences of all ``specs`` that end after now, merged into one stream in opening order."""
    def keyed(index: int) -> Iterator[tuple[datetime, int, int, Interval]]:
        for serial, occurrence in enumerate(specs[index].occurrences(now, now + horizon)):
            yield occurrence.start, index, serial, occurrence

    for opening, index, _serial, occurrence in heapq.merge(*(keyed(index) for index in range(len(specs)))):
        yield opening, specs[index], occurrence


def _sweep(
    specs: Sequence[WindowSpec], holes: Sequence[Interval], now: datetime, required: timedelta, horizon: timedelta
) -> tuple[UsableInterval | None, UsableInterval | None]:
    """(stretch containing now, first later stretch at least ``required`` long).

    Usable time is occurrences minus blackouts; pieces that touch or overlap (back-to-back
    windows, a 24 h daily window) form one stretch. A stretch is final once the stream of
    occurrences has passed its end, since later occurrences open later.
    """
    current: _Stretch | None = None
    open_stretches: list[_Stretch] = []

    def settle(stretches: list[_Stretch]) -> _Stretch | None:
        nonlocal current
        for stretch in stretches:
            if stretch.start <= now:
                current = stretch
            elif stretch.end - stretch.start >= required:
                return stretch
        return None

    for opening, spec, occurrence in _occurrence_stream(specs, now, horizon):
        settled = [stretch for stretch in open_stretches if stretch.end < opening]
        open_stretches = [stretch for stretch in open_stretches if stretch.end >= opening]
        upcoming = settle(settled)
        if upcoming is not None:
            return (current.as_usable() if current else None), upcoming.as_usable()
        for piece in subtract(occurrence, holes):
            if piece.end > now:
                usable = UsableInterval(spec.name, spec.zone, piece.start, piece.end)
                open_stretches = _absorb(open_stretches, _Stretch.of(usable, now))
    upcoming = settle(open_stretches)
    return (current.as_usable() if current else None), (upcoming.as_usable() if upcoming else None)


def _denial_reason(
    *,
    now: datetime,
    selected: Sequence[WindowSpec],
    window_name: str | None,
    current: UsableInterval | None,
    blackout: Blackout | None,
    required: timedelta,
) -> str:
    if blackout is not None:
        why = f" ({blackout.reason})" if blackout.reason else ""
        return f"in blackout {blackout.label}{why} until {isoformat(blackout.interval.end, blackout.zone)}"
    if not selected:
        return "no maintenance windows are defined"
    if current is None:
        return f"outside maintenance window {window_name!r}" if window_name else "outside all maintenance windows"
    return (
        f"only {format_duration(current.end - now)} left in window {current.window!r} "
        f"(closes {current.iso_end()}) but {format_duration(required)} is needed"
    )


def evaluate(
    windows: Sequence[WindowSpec],
    blackouts: Sequence[Blackout],
    now: datetime | str,
    *,
    window_name: str | None = None,
    required: timedelta = timedelta(0),
    emergency: Mapping[str, Any] | EmergencyApproval | None = None,
    horizon: timedelta = NEXT_WINDOW_HORIZON,
) -> WindowStatus:
    """May disruptive work that needs ``required`` time start at ``now``?

    Usable time is window occurrences minus blackouts. Work is allowed (mode ``window``) when
    now is in a usable interval with at least ``required`` left; otherwise only with a complete
    emergency approval (mode ``emergency``); else mode ``denied``.
    """
    instant = parse_now(now)
    if required < timedelta(0):
        raise WindowError(msg=f"required time {required} is negative")
    approval = parse_emergency(emergency)
    selected = select_windows(windows, window_name)
    holes = [blackout.interval for blackout in blackouts]
    current, upcoming = _sweep(selected, holes, instant, required, horizon)
    reports = []
    for spec in selected:
        spec_current, spec_next = _sweep([spec], holes, instant, required, horizon) if len(selected) > 1 else (current, upcoming)
        reports.append(WindowReport(spec.name, spec_current is not None, spec_current or spec_next))
    active_blackout = next((b for b in blackouts if b.interval.contains(instant)), None)
    fits = current is not None and current.end - instant >= required
    reason = None
    if not fits:
        reason = _denial_reason(
            now=instant, selected=selected, window_name=window_name,
            current=current, blackout=active_blackout, required=required,
        )
    mode = "window" if fits else ("emergency" if approval else "denied")
    return WindowStatus(
        now=instant,
        mode=mode,
        required=required,
        current=current,
        upcoming=upcoming,
        blackout=active_blackout,
        emergency=approval if mode == "emergency" else None,
        reason=reason,
        windows=tuple(reports),
        horizon=horizon,
    )


def window_openings(
    windows: Sequence[WindowSpec],
    blackouts: Sequence[Blackout],
    after: datetime | str,
    *,
    window_name: str | None = None,
    until: datetime | None = None,
    count: int | None = None,
) -> list[datetime]:
    """The instants usable windows open after ``after`` (not at it), as ``evaluate`` sees them.

    Each is where ``evaluate`` would first say "inside": daylight saving and blackouts applied,
    back-to-back windows one stretch. At most ``count`` of them, none later than ``until``.
    """
    if until is None and count is None:
        raise WindowError(msg="window_openings needs until or count, or it would not end")
    openings: list[datetime] = []
    instant = parse_now(after)
    while count is None or len(openings) < count:
        upcoming = evaluate(windows, blackouts, instant, window_name=window_name).upcoming
        if upcoming is None or (until is not None and upcoming.start > until):
            break
        openings.append(upcoming.start)
        instant = upcoming.start
    return openings


# --------------------------------------------------------------------------- guard for modules


class WindowGuard:
    """Parsed windows + a clock: asks, before each unit of disruptive work, whether it may start."""

    def __init__(
        self,
        windows: Sequence[WindowSpec],
        blackouts: Sequence[Blackout] = (),
        *,
        window_name: str | None = None,
        emergency: EmergencyApproval | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.windows = tuple(windows)
        self.blackouts = tuple(blackouts)
        self.window_name = window_name
        self.emergency = emergency
        self.clock = clock

    def status(self, required: timedelta = timedelta(0)) -> WindowStatus:
        return evaluate(
            self.windows, self.blackouts, self.clock(),
            window_name=self.window_name, required=required, emergency=self.emergency,
        )

    def time_left(self) -> timedelta:
        """Time left in the current usable window; zero outside one (even with an emergency approval)."""
        return self.status().time_left

    def require(self, required: timedelta = timedelta(0), *, refusal: str | None = None) -> WindowStatus:
        """The status if work needing ``required`` may start; else raise WindowClosedError.

        ``refusal`` (for example "refusing to flush") prefixes the message with what was refused.
        """
        status = self.status(required)
        if not status.allowed:
            raise WindowClosedError(msg=f"{refusal}: {status.msg}" if refusal else status.msg, window=status.decision())
        return status


def guard_from_params(params: Mapping[str, Any]) -> WindowGuard:
    """Build a WindowGuard from the options of ``window_guard_argument_spec()``; all input errors surface here."""
    default_tz = params.get("timezone") or "UTC"
    windows = parse_windows(params.get("windows"), default_tz)
    blackouts = parse_blackouts(params.get("blackouts"), default_tz)
    window_name = params.get("window") or None
    select_windows(windows, window_name)
    emergency = parse_emergency(params.get("emergency"))
    now = params.get("now")
    clock = fixed_clock(parse_now(now)) if now else utc_now
    return WindowGuard(windows, blackouts, window_name=window_name, emergency=emergency, clock=clock)
