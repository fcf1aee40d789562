#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_compliance
short_description: Compliance report of a PostgreSQL database - retention rules, audit-log summary and continuity
version_added: 0.1.0
description:
  - Checks retention rules given as data (a table, its timestamp column, a maximum age, and whether rows
    past that age are expected to be V(gone) or V(kept)) and summarises the audit log of the last hours
    (events by verb, gaps in the ids, rows dated in the future).
  - Read-only, in real runs and in check mode alike; all figures come from one C(REPEATABLE READ, READ ONLY)
    transaction (one snapshot) under O(statement_timeout).
  - Every table and column is looked up in the catalog first; a table or column that does not exist, or a
    time column that is not a timestamp or date (an id column that is not an integer) fails the task naming
    it, and no row is read.
  - The oldest row (C(min)) and the count of rows past the cutoff (a range count) are read through an index
    whose first column is the rule's column when there is one (sequential scans are turned off for these
    reads); without such an index the record says so (C(indexed=false)), since the count then reads
    the whole table.
  - Whether a V(kept) table is missing history cannot be told from the table (a system younger than the
    retention period holds no row that old), so a V(kept) rule is a report of the rows past O(retention[].max_age)
    (eligible for archiving), status V(ok).
  - The Kubernetes source of the audit summary (the audit-logger pod's JSON log lines) is the
    C(streamops.maintenance.audit_event_records) filter; it gives the same V(audit_summary) record.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.attributes.read_only
  - streamops.maintenance.postgres
options:
  retention:
    description:
      - Retention rules, one record each (name C(retention <name>)).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the rule; names the record, so it must be unique.
        type: str
        required: true
      table:
        description: V(table) (schema C(public)) or V(schema.table); plain identifiers, folded to lower case.
        type: str
        required: true
      column:
        description: The row's time, a C(timestamptz), C(timestamp) or C(date) column.
        type: str
        required: true
      max_age:
        description:
          - Rows older than this are past the retention period. V(7y) counts calendar years (as PostgreSQL's
            intervals do); otherwise a duration such as V(90d), V(36h) or V(2w).
        type: str
        required: true
      expect:
        description:
          - V(gone) - the policy says rows past O(retention[].max_age) must be archived or deleted; any such
            row is a V(breach).
          - V(kept) - rows must be kept that long (the guide's 7-year trades and 10-year audit logs); the
            record reports the rows past O(retention[].max_age) and the oldest row, status V(ok).
        type: str
        required: true
        choices: [gone, kept]
  audit:
    description:
      - The audit table to summarise and check for continuity; no audit check when unset.
      - Gives two records named C(audit <schema.table>) - action V(audit_summary) (rows by verb since
        O(audit.hours) ago) and action V(audit_continuity) (gaps in the ids of those rows, rows dated more than
        O(audit.future_tolerance_seconds) in the future).
      - A rolled-back insert also leaves a gap in an id sequence; a gap is a V(breach) to look into, not proof
        of a deleted row.
    type: dict
    suboptions:
      table:
        description: The audit table, V(table) or V(schema.table).
        type: str
        default: audit_logs
      time_column:
        description: When the event happened (C(timestamptz), C(timestamp) or C(date)).
        type: str
        default: created_at
      verb_column:
        description: What happened (any type; counted as text).
        type: str
        default: action
      id_column:
        description: The integer id the rows are numbered by, checked for gaps.
        type: str
        default: id
      hours:
        description: The hours before now that are summarised and checked.
        type: int
        default: 24
      future_tolerance_seconds:
        description: Rows dated later than now plus this many seconds are a V(breach) (clock skew allowance).
        type: int
        default: 300
  lock_timeout:
    description: Longest wait for a table's lock (only C(ACCESS EXCLUSIVE) blocks a read), in milliseconds.
    type: int
    default: 5000
  statement_timeout:
    description:
      - Longest run of one statement, in milliseconds. A check that runs longer is a V(failed) record; the
        other checks still run.
    type: int
    default: 60000
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Stream Systems compliance (the guide's monthly checks)
  streamops.maintenance.pg_compliance:
    retention:
      - {name: trades_7y, table: trades, column: created_at, max_age: 7y, expect: kept}
      - {name: audit_logs_10y, table: audit_logs, column: created_at, max_age: 10y, expect: kept}
      - {name: market_data_90d, table: market_data, column: timestamp, max_age: 90d, expect: gone}
    audit:
      table: audit_logs
      hours: 24
  register: compliance

- name: With the connection set once for the play
  module_defaults:
    group/streamops.maintenance.postgres: "{{ postgres_login }}"
  block:
    - name: VitalStream - vital signs older than 7 years must be archived
      streamops.maintenance.pg_compliance:
        retention:
          - {name: vital_signs_7y, table: vital_signs, column: recorded_at, max_age: 7y, expect: gone}
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: What was checked and which records are problems.
  returned: always
  type: str
  sample: "checked 2 retention rule(s) and the audit log public.audit_logs over 1d: 1 problem(s):
    audit public.audit_logs audit_continuity breach"
records:
  description:
    - One record per retention rule and two for the audit table, each with exactly C(name), C(action),
      C(status), C(detail), C(before), C(after) and C(seconds) (the collection's result shape).
    - "C(retention <name>), action V(retention): V(ok), V(breach) (an V(expect=gone) rule with rows past
      C(max_age)) or V(failed) (the read failed, e.g. O(statement_timeout)). C(after) holds C(table), C(column),
      C(max_age), C(expect), C(cutoff), C(older_rows), C(oldest), C(oldest_age_days), C(indexed), C(index) and
      C(scans) (the plan's node types on the table)."
    - "C(audit <schema.table>), action V(audit_summary): V(ok), or V(unknown) when no row is in the window.
      C(after) holds C(by_verb), C(total), C(hours), C(since), C(indexed)."
    - "C(audit <schema.table>), action V(audit_continuity): V(ok), V(breach) (id gaps or future-dated rows) or
      V(unknown) (no row to check). C(after) holds C(gaps), C(missing_ids), C(gap_examples), C(future_rows),
      C(future_examples), C(future_tolerance_seconds), C(hours)."
    - Every V(breach), V(unknown) and V(failed) record has C(after.remedy), one sentence on what to do.
  returned: always
  type: list
  elements: dict
  sample:
    - name: retention trades_7y
      action: retention
      status: ok
      detail: "2 row(s) older than 7y kept in public.trades.created_at (eligible for archiving),
        oldest 2019-01-10T07:30:00+00:00 (2558.0 days)"
      before: null
      after: {table: public.trades, column: created_at, max_age: 7y, expect: kept,
              cutoff: "2019-01-11T07:30:00+00:00", older_rows: 2, oldest: "2019-01-10T07:30:00+00:00",
              oldest_age_days: 2558.0, indexed: true, index: idx_trades_created_at_client_id,
              scans: [Index Only Scan]}
      seconds: 0.004
    - name: audit public.audit_logs
      action: audit_continuity
      status: breach
      detail: "1 id gap(s), 3 id(s) missing (first: 1201..1203)"
      before: null
      after: {gaps: 1, missing_ids: 3, gap_examples: [{after_id: 1200, next_id: 1204, missing: 3}],
              future_rows: 0, future_examples: [], future_tolerance_seconds: 300, hours: 24,
              remedy: "Find out whether the audit rows with the missing ids were deleted (backups, the
                audit-logger's own log); a rolled-back insert also leaves a gap."}
      seconds: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PSYCOPG_IMPORT_ERROR,
    pg_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_compliance import (
    AUDIT_DEFAULTS,
    EXPECTS,
    run_pg_compliance,
)


def argument_spec() -> dict:
    spec = pg_connection_argument_spec()
    spec.update(
        retention=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            table=dict(type="str", required=True),
            column=dict(type="str", required=True),
            max_age=dict(type="str", required=True),
            expect=dict(type="str", required=True, choices=list(EXPECTS)),
        )),
        audit=dict(type="dict", options=dict(
            table=dict(type="str", default=AUDIT_DEFAULTS["table"]),
            time_column=dict(type="str", default=AUDIT_DEFAULTS["time_column"]),
            verb_column=dict(type="str", default=AUDIT_DEFAULTS["verb_column"]),
            id_column=dict(type="str", default=AUDIT_DEFAULTS["id_column"]),
            hours=dict(type="int", default=AUDIT_DEFAULTS["hours"]),
            future_tolerance_seconds=dict(type="int", default=AUDIT_DEFAULTS["future_tolerance_seconds"]),
        )),
        lock_timeout=dict(type="int", default=5000),
        statement_timeout=dict(type="int", default=60000),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("retention", "audit")])
    run_and_exit(module, run_pg_compliance, {"psycopg": PSYCOPG_IMPORT_ERROR})


if __name__ == "__main__":
    main()
