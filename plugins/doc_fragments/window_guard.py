# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with window_guard_argument_spec() in plugins/module_utils/window.py; a unit test keeps them equal.

from __future__ import annotations


class ModuleDocFragment:
    # Options every disruptive module shares to decide whether it may start now.
    DOCUMENTATION = r"""
options:
  windows:
    description:
      - The maintenance windows. Each is a dict with a unique C(name) and either a
        recurring rule or an announced one-off range.
      - "Recurring: C(rrule) (RFC 5545 as AWX schedules write it) and C(duration). The rule is either
        just the RRULE body, for example C(FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0), or a
        C(DTSTART;TZID=America/New_York:20260104T020000) line before the C(RRULE:...) line (separated
        by a newline or, as AWX writes it, a space). The DTSTART TZID becomes the window's timezone; a C(timezone) key on the
        same window that names another zone is an error. Without DTSTART the rule is anchored at
        2000-01-01T00:00 local time, so C(INTERVAL) above 1 and C(COUNT) need a DTSTART.
        C(FREQ=MINUTELY) and C(FREQ=SECONDLY) are refused."
      - "One-off range: C(start) and either C(end) or C(duration). C(start)/C(end) are ISO 8601 local
        datetimes (C(2026-03-28T22:00)), optionally with an offset; a date-only C(end) includes that whole day."
      - "C(duration): V(2h), V(90m), V(4h30m), V(1d), V(45s), ISO 8601 V(PT2H) or V(HH:MM); greater than zero.
        C(timezone): IANA name; default O(timezone)."
      - "Daylight saving: each occurrence opens and closes at local wall-clock time (start + duration).
        A time skipped by spring-forward resolves to the first instant after the gap, an ambiguous
        fall-back time to its first occurrence, and the window closes at the EARLIER of its local
        end and start + duration of real time: it never runs longer than its duration nor past its announced end."
      - Usable time that touches or overlaps (back-to-back windows, a 24 h daily window) is one
        stretch, whose time left runs to its end; and RV(ignore:window) names the window
        in progress that lasts longest.
      - Unknown keys, a missing or duplicate name, a bad rule, timezone or duration fail the task
        with a message naming the value and the window.
      - With no windows at all, work can only start with an O(emergency) approval.
    type: list
    elements: dict
  window:
    description:
      - Only this named window counts. An unknown name fails and lists the known names.
      - Default is any of O(windows).
    type: str
  blackouts:
    description:
      - Periods in which nothing disruptive may run, whatever O(windows) says. Usable time is
        the window occurrences minus the blackouts; a window partly covered is truncated or split.
      - Each entry is a date V(YYYY-MM-DD) (that whole day, local time in O(timezone)) or a dict with
        C(start), C(end), C(reason) and C(timezone). C(start)/C(end) are dates or ISO datetimes,
        local time in the entry's C(timezone) (default O(timezone)) unless they carry an offset.
        A date-only C(end) includes that whole day; without C(end) a date C(start) means that one day.
      - Blackouts are widened, not narrowed, at daylight-saving changes (an ambiguous end means its later occurrence).
    type: list
    elements: raw
  timezone:
    description:
      - IANA timezone for windows and blackouts that do not name their own.
    type: str
    default: UTC
  emergency:
    description:
      - Emergency approval. Outside any usable window (or past the cutoff, or in a blackout) work
        may start only with a complete approval; the result then has RV(ignore:mode=emergency)
        and echoes the approval in RV(ignore:emergency).
      - When any field is set, all three must be non-empty, even inside a window; the error names
        the missing ones. An approval with all three empty counts as no approval.
    type: dict
    suboptions:
      approved_by:
        description: Who approved the emergency work.
        type: str
      reason:
        description: Why the work cannot wait for the next window.
        type: str
      ticket:
        description: Change or incident ticket.
        type: str
  now:
    description:
      - Evaluate at this instant instead of the real clock. ISO 8601 datetime WITH an offset or
        V(Z), for example V(2026-01-04T07:30:00Z); a value without offset fails.
      - Meant for tests and rehearsals; default is the current time (UTC).
    type: str
"""
