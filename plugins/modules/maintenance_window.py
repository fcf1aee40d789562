#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: maintenance_window
short_description: Decide whether disruptive maintenance may start now
version_added: 0.1.0
description:
  - Evaluates maintenance windows (recurring RFC 5545 rules or announced ranges), blackouts and an
    optional emergency approval against the clock, and reports whether disruptive work may start,
    in which window, how much time is left and when the next usable window opens.
  - Work may start when now is inside a usable window (window occurrences minus blackouts) with at
    least max(O(cutoff), O(estimated_duration)) left; otherwise only with a complete O(emergency) approval.
  - The modules that do disruptive work (VACUUM FULL, REINDEX, Redis FLUSH, traffic switches) apply
    the same rules through the same options before they start; this module lets a play check or
    enforce it up front.
  - It only reads the clock, so it never reports a change.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.window_guard
options:
  cutoff:
    description:
      - No new disruptive work starts when less than this remains in the current usable window.
      - Same formats as a window duration (V(15m), V(PT15M), V(00:15)); may be V(0s).
    type: str
    default: 0s
  estimated_duration:
    description:
      - How long the planned work is expected to take. Work starts only if the current usable
        window has at least max(O(cutoff), O(estimated_duration)) left, and the next usable window
        reported is the first one at least that long.
    type: str
    default: 0s
  enforce:
    description:
      - When work is not allowed, fail the task with a message that says why and when the next
        usable window opens (ISO time with offset, and in how long).
      - When V(false), the task succeeds and reports RV(allowed=false).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details:
      - Only reads the clock; check mode runs exactly like a normal run.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Never changes anything; the answer depends on the time of the run.
requirements:
  - python-dateutil (on the target, for rrule windows)
notes:
  - Times in the result carry the UTC offset of the window's or blackout's timezone.
  - The next usable window is searched up to 400 days ahead.
  - Daylight saving is handled conservatively, see O(windows). In America/New_York a Sunday 02:00
    window of 2h opens at 03:00 EDT and closes at 04:00 EDT on the spring-forward Sunday.
seealso:
  - name: AWX schedules
    description: The rrule format AWX and Automation Controller write.
    link: https://docs.ansible.com/automation-controller/latest/html/userguide/scheduling.html
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Is the weekly window open? (reports, never fails)
  streamops.maintenance.maintenance_window:
    timezone: America/New_York
    windows:
      - name: weekly
        rrule: FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0
        duration: 2h
  register: mw

- name: Refuse to start a 45 minute VACUUM FULL unless 45 minutes remain (required = max of cutoff and estimate)
  streamops.maintenance.maintenance_window:
    timezone: America/New_York
    window: weekly
    windows: "{{ maintenance_windows }}"
    blackouts: "{{ maintenance_blackouts }}"
    estimated_duration: 45m
    cutoff: 15m
    enforce: true

- name: All three windows of the guides, with holiday blackouts
  streamops.maintenance.maintenance_window:
    timezone: America/New_York
    windows:
      - name: weekly
        rrule: FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0
        duration: 2h
      - name: monthly
        # first Saturday 23:00 for 4h: ends 03:00 on Sunday
        rrule: FREQ=MONTHLY;BYDAY=1SA;BYHOUR=23;BYMINUTE=0
        duration: 4h
      - name: quarterly
        start: "2026-03-28T22:00"
        end: "2026-03-29T06:00"
      - name: awx_schedule
        rrule: "DTSTART;TZID=America/New_York:20260104T020000 RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=SU"
        duration: PT1H
    blackouts:
      - "2026-12-25"
      - start: "2026-12-31T18:00"
        end: "2027-01-01"
        reason: year-end trading freeze

- name: Emergency work outside the windows, on record
  streamops.maintenance.maintenance_window:
    windows: "{{ maintenance_windows }}"
    emergency:
      approved_by: "{{ approver }}"
      reason: disk 95% full on pg-primary
      ticket: INC-4711
    enforce: true
"""

RETURN = r"""
changed:
  description: Always V(false); the module only reads the clock.
  returned: always
  type: bool
  sample: false
msg:
  description: The decision in one sentence.
  returned: always
  type: str
  sample: inside window 'weekly' until 2026-01-11T04:00:00-05:00 (1h 30m left)
allowed:
  description: Whether disruptive work may start now.
  returned: always
  type: bool
  sample: true
mode:
  description: V(window) (allowed by a window), V(emergency) (allowed only by the emergency approval) or V(denied).
  returned: always
  type: str
  sample: window
inside:
  description: Whether now is inside a usable window (an occurrence not covered by a blackout).
  returned: always
  type: bool
  sample: true
now:
  description: The instant evaluated, in UTC.
  returned: always
  type: str
  sample: "2026-01-11T07:30:00+00:00"
window:
  description: Name of the window now is inside, or V(null).
  returned: always
  type: str
  sample: weekly
start:
  description: Opening of the current usable interval, ISO 8601 with offset, or V(null) outside.
  returned: always
  type: str
  sample: "2026-01-11T02:00:00-05:00"
end:
  description: Closing of the current usable interval (after DST and blackouts), or V(null) outside.
  returned: always
  type: str
  sample: "2026-01-11T04:00:00-05:00"
seconds_left:
  description: Seconds until the current usable interval closes; V(0) outside.
  returned: always
  type: int
  sample: 5400
required_seconds:
  description: max(O(cutoff), O(estimated_duration)) in seconds.
  returned: always
  type: int
  sample: 3600
next_start:
  description: Opening of the next usable interval at least RV(required_seconds) long, or V(null) if none within 400 days.
  returned: always
  type: str
  sample: "2026-01-18T02:00:00-05:00"
next_window:
  description: Name of the window RV(next_start) belongs to.
  returned: always
  type: str
  sample: weekly
seconds_until_next:
  description: Seconds until RV(next_start), or V(null).
  returned: always
  type: int
  sample: 599400
blackout:
  description: The blackout now falls in, or V(null).
  returned: always
  type: dict
  contains:
    start:
      description: Start, ISO 8601 with offset.
      type: str
    end:
      description: End (exclusive), ISO 8601 with offset.
      type: str
    reason:
      description: The blackout's reason, or V(null).
      type: str
    timezone:
      description: The timezone its dates were read in.
      type: str
  sample: {start: "2026-12-25T00:00:00-05:00", end: "2026-12-26T00:00:00-05:00", reason: null, timezone: America/New_York}
emergency:
  description: The emergency approval that allowed the work; V(null) unless RV(mode=emergency).
  returned: always
  type: dict
  contains:
    approved_by:
      description: Approver.
      type: str
    reason:
      description: Reason.
      type: str
    ticket:
      description: Ticket.
      type: str
  sample: {approved_by: alice, reason: disk 95% full, ticket: INC-4711}
reason:
  description: Why the windows do not allow the work now (outside, in a blackout, too little time left); V(null) in RV(mode=window).
  returned: always
  type: str
  sample: outside all maintenance windows
windows:
  description: Each considered window with its current usable interval, or else its next one at least RV(required_seconds) long.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Window name.
      type: str
    inside:
      description: Whether now is inside this window's usable interval.
      type: bool
    start:
      description: Opening, ISO 8601 with offset, or V(null) if none within 400 days.
      type: str
    end:
      description: Closing, ISO 8601 with offset, or V(null).
      type: str
  sample: [{name: weekly, inside: false, start: "2026-01-18T02:00:00-05:00", end: "2026-01-18T04:00:00-05:00"}]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError
from ansible_collections.streamops.maintenance.plugins.module_utils.window import (
    DATEUTIL_IMPORT_ERROR,
    HAS_DATEUTIL,
    guard_from_params,
    required_time,
    window_guard_argument_spec,
)


def argument_spec() -> dict[str, Any]:
    spec = window_guard_argument_spec()
    spec.update(
        cutoff=dict(type="str", default="0s"),
        estimated_duration=dict(type="str", default="0s"),
        enforce=dict(type="bool", default=False),
    )
    return spec


def run_module(params: dict[str, Any]) -> dict[str, Any]:
    guard = guard_from_params(params)
    required = required_time(cutoff=params["cutoff"], estimated_duration=params["estimated_duration"])
    status = guard.require(required) if params["enforce"] else guard.status(required)
    return status.as_result()


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_DATEUTIL:
        module.fail_json(msg=missing_required_lib("python-dateutil"), exception=DATEUTIL_IMPORT_ERROR)
    try:
        result = run_module(module.params)
    except MaintenanceError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
