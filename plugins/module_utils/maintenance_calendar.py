# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The guides' maintenance calendar as data: which quarter a run is in, and that quarter's items.

The calendar (``maintenance_calendar`` in the inventory) holds per quarter the items the collection runs
(``automated``: checklist steps, a role or ``role:entry point``, each with the guide's words) and the items
people do (``manual``: text). ``calendar_steps`` picks the quarter of ``now`` in the windows' timezone (the
clock of the maintenance window, so a check-mode run with ``maintenance_window_now`` set plans the quarter of
that window) and checks the data; ``checklist_with_calendar`` adds the quarter's steps to the quarterly
checklist. ``step_outcome`` judges an automated item from its role's records for the report.

Pure logic, no Ansible imports.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .errors import MaintenanceError
from .window import get_zone, parse_now, utc_now

QUARTERS = ("q1", "q2", "q3", "q4")
QUARTER_KEYS = ("automated", "manual")
AUTOMATED_KEYS = ("step", "item")
# Steps a calendar may not add to the quarterly checklist, and why.
REFUSED_STEPS = {
    "maintenance_window": "the checklist runs it first already",
    "notify": "the checklist sends its notices itself",
    "maintenance_report": "the checklist publishes the report itself",
    "restore": "it replaces the production database: only playbooks/restore.yml runs it, on purpose",
    "rollback": "it changes what runs in production: only playbooks/rollback.yml runs it, on purpose",
    "deploy": "it changes what runs in production: only playbooks/deploy.yml runs it, on purpose",
}
# The step every checklist ends with: the quarter's steps run before it, so it checks after their work.
FINAL_STEP = "health_check"
# Worst first: the outcome of an automated item is the worst status among its role's records.
OUTCOME_ORDER = ("failed", "breach", "unknown", "skipped", "planned", "done", "ok", "unchanged")
NOT_RUN = "not run"


class CalendarError(MaintenanceError):
    """The calendar data is not a calendar: an unknown quarter or key, a step that is no role, a wrong type."""


def quarter_of(now: datetime, timezone: str | ZoneInfo = "UTC") -> str:
    """``Q1`` .. ``Q4``: the quarter of the year ``now`` is in, on the wall clock of ``timezone``."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise CalendarError(msg=f"now {now!r} is not a date and time with a UTC offset")
    local = now.astimezone(_zone(timezone))
    return f"Q{(local.month - 1) // 3 + 1}"


def normal_step(step: str) -> str:
    """``role`` for ``role:main``: the checklist runs both the same way."""
    role, entry = (step.split(":", 1) + [""])[:2]
    return role if entry in ("", "main") else step


def known_steps(roles_dir: Path) -> set[str]:
    """Every step the collection's roles offer: ``role`` (tasks/main.yml) and ``role:entry`` per tasks file."""
    found: set[str] = set()
    for tasks in sorted(Path(roles_dir).glob("*/tasks/*.yml")):
        role, entry = tasks.parent.parent.name, tasks.stem
        found.add(role if entry == "main" else f"{role}:{entry}")
    return found


def _step_problem(step: Any, known: set[str] | None) -> str | None:
    if not isinstance(step, str) or not step.strip():
        return f"step {step!r} is not a role name (a string such as dr_test or backup:validate)"
    role = step.partition(":")[0]
    if role in REFUSED_STEPS:
        return f"step {step!r} may not be a calendar item: {REFUSED_STEPS[role]}"
    if known is not None and normal_step(step) not in known:
        close = difflib.get_close_matches(normal_step(step), sorted(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"step {step!r} is not a role (or role:entry point) of streamops.maintenance{hint}"
    return None


def _automated_item(raw: Any, where: str, known: set[str] | None) -> dict[str, str]:
    if isinstance(raw, str):
        raw = {"step": raw}
    if not isinstance(raw, Mapping):
        raise CalendarError(msg=f"{where} {raw!r} is not a step name or a dict with step and item")
    unknown = sorted(str(key) for key in raw if key not in AUTOMATED_KEYS)
    if unknown:
        raise CalendarError(msg=f"{where} has unknown key(s) {', '.join(unknown)}; an automated item takes "
                                f"{' and '.join(AUTOMATED_KEYS)}")
    problem = _step_problem(raw.get("step"), known)
    if problem:
        raise CalendarError(msg=f"{where}: {problem}")
    step = normal_step(raw["step"].strip())
    item = raw.get("item", step)
    if not isinstance(item, str) or not item.strip():
        raise CalendarError(msg=f"{where} item {item!r} is not text: write what the guide calls it")
    return {"step": step, "item": item.strip()}


def _manual_item(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise CalendarError(msg=f"{where} {raw!r} is not text: a manual item says what the team does")
    return raw.strip()


def _list_of(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise CalendarError(msg=f"{where} {value!r} is not a list")
    return list(value)


def parse_quarter(raw: Any, key: str, known: set[str] | None = None) -> dict[str, list[Any]]:
    """One quarter's ``{automated: [{step, item}], manual: [text]}``; a missing quarter is an empty one."""
    where = f"maintenance_calendar {key}"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise CalendarError(msg=f"{where} {raw!r} is not a dict with automated and manual")
    unknown = sorted(str(name) for name in raw if name not in QUARTER_KEYS)
    if unknown:
        raise CalendarError(msg=f"{where} has unknown key(s) {', '.join(unknown)}; a quarter takes "
                                f"{' and '.join(QUARTER_KEYS)}")
    automated = [_automated_item(item, f"{where} automated[{index}]", known)
                 for index, item in enumerate(_list_of(raw.get("automated"), f"{where} automated"))]
    manual = [_manual_item(item, f"{where} manual[{index}]")
              for index, item in enumerate(_list_of(raw.get("manual"), f"{where} manual"))]
    return {"automated": automated, "manual": manual}


def parse_calendar(calendar: Any, known: set[str] | None = None) -> dict[str, dict[str, list[Any]]]:
    """Every quarter checked (a typo in Q4 fails in Q1 too, not months later when Q4 comes)."""
    if calendar is None:
        calendar = {}
    if not isinstance(calendar, Mapping):
        raise CalendarError(msg=f"maintenance_calendar {calendar!r} is not a dict of quarters q1 .. q4")
    unknown = sorted(str(key) for key in calendar if key not in QUARTERS)
    if unknown:
        raise CalendarError(msg=f"maintenance_calendar has unknown quarter key(s) {', '.join(unknown)}; "
                                f"the quarters are {', '.join(QUARTERS)}")
    return {key: parse_quarter(calendar.get(key), key, known) for key in QUARTERS}


def calendar_steps(calendar: Any, now: datetime | str | None = None, timezone: str | ZoneInfo = "UTC", *,
                   known: Iterable[str] | None = None) -> dict[str, Any]:
    """The quarter ``now`` is in and its items: ``{quarter, year, now, timezone, automated, manual}``.

    ``now`` empty: the current time (the window's clock when ``maintenance_window_now`` is unset). ``known``:
    the steps the collection offers (``known_steps``); None skips that check (unit tests).
    """
    instant = utc_now() if now in (None, "") else _now(now)
    zone = _zone(timezone)
    quarters = parse_calendar(calendar, set(known) if known is not None else None)
    quarter = quarter_of(instant, zone)
    return {"quarter": quarter, "year": instant.astimezone(zone).year, "now": instant.isoformat(),
            "timezone": zone.key, **quarters[quarter.lower()]}


def _zone(name: str | ZoneInfo) -> ZoneInfo:
    try:
        return get_zone(name, owner="maintenance calendar")
    except MaintenanceError as exc:
        raise CalendarError(msg=exc.msg) from None


def _now(value: Any) -> datetime:
    try:
        return parse_now(value)
    except MaintenanceError as exc:
        raise CalendarError(msg=f"maintenance calendar: {exc.msg}") from None


def checklist_with_calendar(steps: Sequence[Any], plan: Mapping[str, Any] | None) -> list[str]:
    """The checklist with the quarter's automated steps it lacks, before its final health check (else last)."""
    checklist = [str(step) for step in steps]
    if not plan:
        return checklist
    present = {normal_step(step) for step in checklist}
    added: list[str] = []
    for item in plan.get("automated") or []:
        step = normal_step(str(item["step"] if isinstance(item, Mapping) else item))
        if step not in present:
            present.add(step)
            added.append(step)
    at = len(checklist) - 1 if checklist and checklist[-1] == FINAL_STEP else len(checklist)
    return checklist[:at] + added + checklist[at:]


def step_outcome(step: str, entries: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    """``(outcome, detail)`` of an automated item from the records of its role in the run.

    The outcome is the worst status among them (failed first, then breach, unknown, skipped); ``not run``
    when its role kept no record: the run stopped before it, or the estate gives it nothing to do.
    """
    role = str(step).partition(":")[0]
    statuses = [str(entry.get("status")) for entry in entries if entry.get("role") == role]
    if not statuses:
        return NOT_RUN, f"no record of {role}: the run stopped before it, or this host gives it nothing to do"
    counts = {status: statuses.count(status) for status in OUTCOME_ORDER if status in statuses}
    worst = next(iter(counts))
    return worst, ", ".join(f"{count} {status}" for status, count in counts.items())
