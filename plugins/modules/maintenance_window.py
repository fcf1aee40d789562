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
      - When work is not allowed, or an item of the pre-maintenance checklist (O(require_backup),
        O(require_rollback_plan)) is not met, fail the task with a message that says why (for the window,
        when the next usable window opens, as an ISO time with offset and in how long).
      - When V(false), the task succeeds and reports RV(window.allowed=false) and the checklist as it is.
    type: bool
    default: false
  require_emergency:
    description:
      - Refuse unless a complete O(emergency) approval (approved_by, reason, ticket) is given, even inside a
        window (the emergency playbook). The task fails naming what is missing; nothing else is judged.
    type: bool
    default: false
  require_backup:
    description:
      - Pre-maintenance checklist, the guides' verified backup. A backup set under O(require_backup.root) whose
        C(verified.json) (written by M(streamops.maintenance.backup_verify)) is younger than O(require_backup.max_age).
      - A record V(ok) when there is one, V(breach) when not.
    type: dict
    suboptions:
      root:
        description: The backup root the sets are in (as for M(streamops.maintenance.pg_backup)).
        type: path
        required: true
      max_age:
        description: How old the verification may be, in the duration format of the windows (V(1d), V(12h)).
        type: str
        default: 1d
  rollback_plan:
    description: The rollback plan in words, for the checklist and the report.
    type: str
    default: ""
  require_rollback_plan:
    description: Without a O(rollback_plan), the checklist item V(rollback plan) is a V(breach).
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
  - python-dateutil (on the target, only for rrule windows; a missing library fails the task when a rule is evaluated)
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
records:
  description:
    - One record (see C(docs/records.md)), name C(window <name>) (C(window) when any window counts), action V(window).
    - Status V(ok) when work may start, or when it may not but O(enforce=false) (the detail then starts with
      C(not enforced)); V(breach) when O(enforce=true) refused, and the task fails.
    - With O(require_backup) a record C(verified backup), with O(rollback_plan) or O(require_rollback_plan) a record
      C(rollback plan) (action V(checklist)), each V(ok) or V(breach).
  returned: always
  type: list
  elements: dict
  sample:
    - name: window weekly
      action: window
      status: ok
      detail: inside window 'weekly' until 2026-01-11T04:00:00-05:00 (1h 30m left)
      before: null
      after: {mode: window, start: "2026-01-11T02:00:00-05:00", end: "2026-01-11T04:00:00-05:00", seconds_left: 5400}
      seconds: null
window:
  description:
    - The window decision, the same dict every module of the collection returns when it consults a window.
  returned: always
  type: dict
  contains:
    allowed:
      description: Whether disruptive work may start now.
      type: bool
    mode:
      description: V(window) (allowed by a window), V(emergency) (allowed only by the emergency approval) or V(denied).
      type: str
    inside:
      description: Whether now is inside a usable window (an occurrence not covered by a blackout).
      type: bool
    now:
      description: The instant evaluated, in UTC.
      type: str
    name:
      description: Name of the window now is inside, or V(null).
      type: str
    start:
      description: Opening of the current usable interval, ISO 8601 with offset, or V(null) outside.
      type: str
    end:
      description: Closing of the current usable interval (after DST and blackouts), or V(null) outside.
      type: str
    seconds_left:
      description: Seconds until the current usable interval closes; V(0) outside.
      type: int
    required_seconds:
      description: max(O(cutoff), O(estimated_duration)) in seconds.
      type: int
    next_start:
      description: Opening of the next usable interval at least RV(window.required_seconds) long, or V(null) if none within 400 days.
      type: str
    next_window:
      description: Name of the window RV(window.next_start) belongs to.
      type: str
    seconds_until_next:
      description: Seconds until RV(window.next_start), or V(null).
      type: int
    blackout:
      description: The blackout now falls in (C(start), C(end) exclusive, C(reason), C(timezone)), or V(null).
      type: dict
    emergency:
      description: The emergency approval (C(approved_by), C(reason), C(ticket)) that allowed the work; V(null) unless RV(window.mode=emergency).
      type: dict
    reason:
      description: Why the windows do not allow the work now (outside, in a blackout, too little time left); V(null) in RV(window.mode=window).
      type: str
    msg:
      description: The decision in one sentence (as RV(msg)).
      type: str
  sample:
    allowed: true
    mode: window
    inside: true
    now: "2026-01-11T07:30:00+00:00"
    name: weekly
    start: "2026-01-11T02:00:00-05:00"
    end: "2026-01-11T04:00:00-05:00"
    seconds_left: 5400
    required_seconds: 0
    next_start: "2026-01-11T02:00:00-05:00"
    next_window: weekly
    seconds_until_next: null
    blackout: null
    emergency: null
    reason: null
    msg: inside window 'weekly' until 2026-01-11T04:00:00-05:00 (1h 30m left)
windows:
  description: Each considered window with its current usable interval, or else its next one at least RV(window.required_seconds) long.
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.maintenance_gate import run_maintenance_window
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.window import window_guard_argument_spec


def argument_spec() -> dict[str, Any]:
    spec = window_guard_argument_spec()
    spec.update(
        cutoff=dict(type="str", default="0s"),
        estimated_duration=dict(type="str", default="0s"),
        enforce=dict(type="bool", default=False),
        require_emergency=dict(type="bool", default=False),
        require_backup=dict(type="dict", options=dict(
            root=dict(type="path", required=True),
            max_age=dict(type="str", default="1d"),
        )),
        rollback_plan=dict(type="str", default=""),
        require_rollback_plan=dict(type="bool", default=False),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_maintenance_window, {})


if __name__ == "__main__":
    main()
