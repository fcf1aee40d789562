#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_maintenance
short_description: PostgreSQL routine and heavy maintenance that looks before it acts
version_added: 0.1.0
description:
  - Reports on a database (dead tuples, estimated bloat, sizes, long-running queries, replication lag,
    pg_stat_statements) and runs ANALYZE, VACUUM, VACUUM FULL, REINDEX, sequence resets and
    ALTER SYSTEM settings on the tables and values that need it.
  - Tables are named, or selected by what is measured (dead tuples, dead ratio, estimated bloat).
  - Every statement runs with O(lock_timeout) and O(statement_timeout); a table whose lock is not
    available is skipped with the reason, never waited on forever. ANALYZE and VACUUM use
    C(SKIP_LOCKED) on PostgreSQL 12 and later.
  - O(operation=vacuum_full) and O(operation=reindex) are disruptive. They run only inside a maintenance
    window (or with an O(emergency) approval), only on tables whose estimated bloat reaches
    O(min_bloat_ratio), largest win first, and never start a table whose estimated duration (its size
    over the throughput measured so far in this run) exceeds the time left in the window.
  - Check mode returns the real plan (tables, sizes, lock, estimated duration, what is left out and
    why) and touches nothing.
  - O(operation=create_indexes) builds the O(indexes) that are missing with C(CREATE INDEX CONCURRENTLY),
    compares the ones that exist with what is wanted (as PostgreSQL prints both), rebuilds the invalid leftover
    of a failed build, and refuses an index of the same name with another definition.
  - O(operation=performance_review) reads the slowest statements (pg_stat_statements) and the largest tables
    and indexes; it changes nothing.
  - Every operation returns RV(records), one per thing looked at (a table, a sequence, a setting, an index, a
    statement, the server and the database for V(report)), in the collection's one result shape.
requirements:
  - python-dateutil (on the target, only for rrule O(windows); needed only by O(operation=vacuum_full) and
    O(operation=reindex), which evaluate a window; a missing library fails the task when a rule is parsed)
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.postgres
  - streamops.maintenance.window_guard
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Every changing operation returns a diff. Table operations give per table C(dead_tuples) and
        C(total_bytes) before and after (in check mode, after is the plan, C(estimated_seconds) and C(lock)).
      - O(operation=create_indexes) gives each built (or planned) index's definition before and after.
      - O(operation=settings) gives the values before and after, O(operation=reset_sequences) each moved
        sequence's C(last_value) before and after. O(operation=report) changes nothing and gives none.
  idempotent:
    support: full
    details: The measured thresholds select nothing once the work is done, so a second run reports no change.
options:
  operation:
    description:
      - V(report) reads and returns; it changes nothing.
      - V(analyze), V(vacuum), V(vacuum_analyze) are routine (SHARE UPDATE EXCLUSIVE lock; reads and
        writes go on) and run on O(jobs) connections at once.
      - V(vacuum_full) (ACCESS EXCLUSIVE lock) and V(reindex) (CONCURRENTLY by default) are disruptive
        and run one table at a time inside the window.
      - V(reset_sequences) moves each owned sequence forward to the maximum of its column where it is
        behind (the guides' C(setval(..., MAX(id)))); never backwards.
      - V(settings) writes O(settings) with ALTER SYSTEM, reloads, and says which need a restart.
      - V(create_indexes) builds O(indexes) with C(CREATE INDEX CONCURRENTLY), one at a time (lock SHARE UPDATE
        EXCLUSIVE, so reads and writes go on). With O(windows) or O(emergency) it runs only inside the window and
        starts an index only when its estimate (table size over the throughput measured so far) fits the time
        left; without them it runs at once.
      - V(performance_review) lists the O(top_statements) slowest statements of this database by mean time
        (pg_stat_statements) and its O(top_relations) largest tables and indexes; read-only.
    type: str
    required: true
    choices: [report, analyze, vacuum, vacuum_analyze, vacuum_full, reindex, reset_sequences, settings,
              create_indexes, performance_review]
  tables:
    description:
      - Tables to work on, V(table) (schema C(public)) or V(schema.table); plain identifiers only,
        folded to lower case as PostgreSQL folds unquoted names (V(Trades) is the table C(trades)).
      - A name that does not exist fails the task and nothing is done.
      - Without O(tables), every table of O(schemas) (minus O(exclude_schemas)) is a candidate and the
        thresholds decide. Routine operations then default to O(min_dead_tuples=1000) and
        O(min_dead_ratio=0.1); V(analyze) also takes tables whose statistics are stale.
      - With O(tables), routine operations run on each named table unless thresholds are given;
        disruptive operations always apply O(min_bloat_ratio).
    type: list
    elements: str
  schemas:
    description: Schemas whose tables are candidates when O(tables) is not given. All when unset.
    type: list
    elements: str
  exclude_schemas:
    description: Schemas never selected by thresholds.
    type: list
    elements: str
  min_dead_tuples:
    description: Select only tables with at least this many dead tuples.
    type: int
  min_dead_ratio:
    description: Select only tables whose dead tuples are at least this share of all tuples (0 to 1).
    type: float
  min_bloat_ratio:
    description:
      - Select only tables whose estimated bloat (table bloat for V(vacuum_full), the worst btree index's
        for V(reindex)) is at least this share of their size (0 to 1).
      - Defaults to V(0.3) for the disruptive operations. A table whose bloat cannot be estimated (stale
        or missing statistics, no read access to C(pg_stats)) is left out with that reason.
    type: float
  refresh_statistics:
    description:
      - Before a disruptive operation, ANALYZE the candidate tables whose statistics are stale or
        missing, so their bloat can be estimated. In check mode they are reported as unknown instead.
    type: bool
    default: true
  stale_statistics_ratio:
    description:
      - Statistics count as stale when more than this share of a table's rows changed since its last
        analyze; bloat estimates are then not given.
    type: float
    default: 0.2
  jobs:
    description: Connections used at once for V(analyze), V(vacuum) and V(vacuum_analyze) (1 to 16).
    type: int
    default: 1
  concurrently:
    description:
      - V(reindex) with C(REINDEX TABLE CONCURRENTLY) (PostgreSQL 12+; reads and writes go on).
      - Invalid C(_ccnew)/C(_ccold) indexes a failed concurrent reindex leaves are dropped, those of the table's
        TOAST table (schema C(pg_toast)) included.
    type: bool
    default: true
  lock_timeout:
    description:
      - Longest wait for a table's lock, in milliseconds, before the table is skipped.
      - For V(create_indexes) also the longest wait for the transactions older than the build (C(CREATE INDEX
        CONCURRENTLY) waits for them). A build it stops has left an INVALID index; it is dropped in the same run
        and the index is V(skipped). When the drop cannot get its lock either, the record is V(failed) and says so;
        the next run drops the leftover and builds the index.
    type: int
    default: 5000
  statement_timeout:
    description: Longest run of one statement, in milliseconds (V(0) means no limit).
    type: int
    default: 3600000
  initial_throughput_mb_s:
    description:
      - Throughput in MiB/s assumed for the duration estimate of the first disruptive table; later
        tables use what this run measured.
    type: float
    default: 25
  long_query_seconds:
    description: V(report) lists queries running longer than this.
    type: float
    default: 300
  top_statements:
    description:
      - V(report) and V(performance_review) list this many statements from pg_stat_statements, slowest mean
        first (V(0) for none). V(performance_review) lists only this database's statements.
    type: int
    default: 10
  top_relations:
    description: V(performance_review) lists this many of the largest tables (total size) and as many of the largest indexes.
    type: int
    default: 10
  indexes:
    description:
      - For V(create_indexes), the indexes that must exist, built in this order.
      - C(expression) and C(where) are SQL the operator writes, put into the statement as written. Before
        anything is built each index is created on an empty temporary copy of its table in a transaction that
        is rolled back, so SQL that does not parse, names a missing column or a function that is not
        IMMUTABLE fails the task naming it, and PostgreSQL prints the definition the comparison uses. The
        statement is sent alone (extended protocol), so a second statement after a C(;) is refused.
      - Needs the TEMP privilege on the database (granted to PUBLIC by default) and ownership of the table.
    type: list
    elements: dict
    suboptions:
      name:
        description: The index name, a plain identifier (folded to lower case); the index lives in the table's schema.
        type: str
        required: true
      table:
        description: V(table) (schema C(public)) or V(schema.table), plain identifiers.
        type: str
        required: true
      columns:
        description: Key columns (plain identifiers), in order. Exactly one of O(indexes[].columns) and O(indexes[].expression).
        type: list
        elements: str
      expression:
        description:
          - SQL of the key list, as written between the parentheses of C(CREATE INDEX ... ON table (...\)),
            for example V(lower(instrument\), created_at DESC) or V("timestamp" DESC).
        type: str
      unique:
        description: A unique index.
        type: bool
        default: false
      where:
        description: SQL predicate of a partial index, for example V(status = 'open').
        type: str
      method:
        description: Index access method (V(btree), V(hash), V(gin), V(gist), V(brin) ...), checked against the server's.
        type: str
        default: btree
  max_connections_percent:
    description:
      - For V(report), the share of C(max_connections) (0 to 100) the sessions may use; above it the
        C(postgresql <database>) record has status V(breach). Without it the record is V(ok).
    type: float
  settings:
    description:
      - "For V(settings), the values to write with ALTER SYSTEM, for example C({work_mem: 64MB})."
      - Values are compared in the setting's unit, so V(1GB) equals V(1024MB); what ALTER SYSTEM
        already wrote counts as current, so a value waiting for a restart is not written again.
    type: dict
notes:
  - Bloat estimates come from C(pg_stats) and ignore TOAST; they are approximations meant for selecting
    tables, and are reported as unknown rather than guessed when the statistics cannot be trusted.
  - O(operation=settings) needs superuser (or ALTER SYSTEM privilege) and reads C(pg_file_settings),
    which needs superuser; without it the live values are compared.
  - O(operation=create_indexes) compares definitions as C(pg_get_indexdef) prints them (uniqueness and all after
    C(USING), storage parameters such as C(fillfactor) included); the tablespace is not part of it.
seealso:
  - module: streamops.maintenance.maintenance_window
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Weekly report of dead tuples, bloat, long queries, replication and slow statements
  streamops.maintenance.pg_maintenance:
    operation: report
    login_host: postgres-service
    login_user: stream_user
    login_password: "{{ vault_stream_postgres_password }}"
    database: streamsystems
    max_connections_percent: 80
  register: pg_report

- name: Fail when the sessions use more than 80 % of max_connections
  ansible.builtin.assert:
    that: pg_report.records | selectattr('status', 'equalto', 'breach') | list | length == 0
    fail_msg: "{{ pg_report.records[0].detail }}"

- name: VACUUM ANALYZE only the tables that need it, two at a time
  streamops.maintenance.pg_maintenance:
    operation: vacuum_analyze
    database: streamsystems
    schemas: [public]
    min_dead_tuples: 10000
    min_dead_ratio: 0.05
    jobs: 2

- name: ANALYZE the named tables (stale statistics after a bulk load)
  streamops.maintenance.pg_maintenance:
    operation: analyze
    database: vitalstream
    tables: [vital_signs, public.alarms]

- name: Plain VACUUM of two tables, waiting at most 2 s for each lock
  streamops.maintenance.pg_maintenance:
    operation: vacuum
    database: vitalstream
    tables: [alarms, patients]
    lock_timeout: 2000

- name: VACUUM FULL of bloated tables, only inside the weekly window
  streamops.maintenance.pg_maintenance:
    operation: vacuum_full
    database: streamsystems
    tables: [trades, positions, market_data]
    min_bloat_ratio: 0.4
    windows: "{{ maintenance_windows }}"
    window: weekly
    timezone: America/New_York

- name: REINDEX CONCURRENTLY where index bloat passes 30 %, with an emergency approval
  streamops.maintenance.pg_maintenance:
    operation: reindex
    database: streamsystems
    schemas: [public]
    windows: "{{ maintenance_windows }}"
    emergency:
      approved_by: alice
      reason: index bloat is slowing order matching
      ticket: INC-4711

- name: Move sequences forward to their column's maximum (never backwards)
  streamops.maintenance.pg_maintenance:
    operation: reset_sequences
    database: streamsystems
    tables: [trades, positions]

- name: The guide's performance-critical indexes, built where missing (CONCURRENTLY), at most 10 s of waiting
  streamops.maintenance.pg_maintenance:
    operation: create_indexes
    database: streamsystems
    lock_timeout: 10000
    indexes:
      - {name: idx_trades_created_at_client_id, table: trades, columns: [created_at, client_id]}
      - {name: idx_positions_client_instrument, table: positions, columns: [client_id, instrument]}
      - {name: idx_market_data_timestamp, table: market_data, expression: '"timestamp" DESC'}
      - {name: idx_alarms_open, table: alarms, columns: [patient_id], where: "acknowledged_at IS NULL"}

- name: Monthly performance review (slowest statements, largest tables and indexes)
  streamops.maintenance.pg_maintenance:
    operation: performance_review
    database: vitalstream
    top_statements: 10
    top_relations: 10
  register: pg_performance

- name: Settings with diff; the result says which need a restart
  streamops.maintenance.pg_maintenance:
    operation: settings
    database: postgres
    login_user: postgres
    settings:
      work_mem: 64MB
      maintenance_work_mem: 1GB
      shared_buffers: 2GB
  diff: true
"""

RETURN = r"""
records:
  description:
    - One record per thing looked at or worked on, each with exactly C(name), C(action), C(status),
      C(detail), C(before), C(after) and C(seconds) (the collection's result shape).
    - "Table operations: one per chosen table, C(name) V(schema.table), C(action) the operation; C(status)
      V(done) (ran), V(planned) (check mode would run it), V(skipped) (lock not available, does not fit the
      window, not started after the run stopped, or would skip in check mode) or V(failed). C(before) holds
      C(dead_tuples), C(total_bytes), C(bloat_ratio); C(after) holds C(dead_tuples) and C(total_bytes) as
      measured after the statement, or for a plan C(estimated_seconds) and C(lock); C(seconds) is the
      statement's duration (null unless done). C(detail) is one line with the figures, or the reason of a skip."
    - Tables the thresholds leave out are records with status V(unchanged) and the measured reason as C(detail).
    - V(reset_sequences) - one per owned sequence, V(done)/V(planned) when moved (C(before) and C(after) with
      C(last_value)), else V(unchanged) with the reason.
    - V(settings) - one per setting, V(done)/V(planned)/V(unchanged), C(before) and C(after) with C(value);
      C(detail) says when a restart is needed.
    - "V(report): C(postgresql <database>) (action C(connections), C(after) the C(server) figures, V(breach) above
      O(max_connections_percent), else V(ok)) and C(database <database>) (action C(report), C(after) with C(tables),
      C(dead_tuples), C(total_bytes) over the tables in scope)."
    - "V(create_indexes): one per index, C(name) V(schema.index), C(action) V(create_index); V(unchanged) (valid, same
      definition), V(planned) (C(after) with C(definition), C(statement), C(estimated_seconds), C(lock)), V(done)
      (C(after) with C(definition), C(valid), C(bytes), C(build_seconds); the detail says when an invalid leftover was
      dropped and rebuilt), V(skipped) (lock_timeout hit, the window closed) or V(failed) (another definition under
      that name, with both; a build that failed). C(before) holds C(definition), C(valid) and C(bytes) of the index
      that was there, or null."
    - "V(performance_review): C(statement <queryid>) (action C(slow_statement), V(ok), C(after) with C(mean_ms),
      C(calls), C(total_ms) and C(query), shortened to about 120 characters, constants as C($1)), or one
      C(pg_stat_statements <database>) record V(unknown) with the reason and C(after.remedy) when the extension is
      missing or unreadable; C(table <schema.table>) (action C(relation_size), V(ok), C(after) with C(total_bytes),
      C(table_bytes), C(index_bytes)) and C(index <schema.index>) (C(after) with C(bytes), C(table), C(scans), C(valid))."
  returned: always
  type: list
  elements: dict
  sample:
    - name: public.trades
      action: vacuum_full
      status: done
      detail: "dead tuples 60000 -> 0, size 50.0 MB -> 20.0 MB, 1.9 s"
      before: {dead_tuples: 60000, total_bytes: 52420608, bloat_ratio: 0.58}
      after: {dead_tuples: 0, total_bytes: 21004288}
      seconds: 1.92
    - name: public.audit_logs
      action: vacuum_full
      status: unchanged
      detail: "bloat 4.0% < min_bloat_ratio 30.0%"
      before: {dead_tuples: 12, total_bytes: 1204224, bloat_ratio: 0.04}
      after: null
      seconds: null
executed:
  description: The statements run, in order (none in check mode).
  returned: always
  type: list
  elements: str
  sample: ['VACUUM (FULL, ANALYZE) "public"."trades"']
window:
  description:
    - The maintenance-window decision (the same dict as M(streamops.maintenance.maintenance_window) returns -
      C(allowed), C(mode), C(inside), C(now), C(name), C(start), C(end), C(seconds_left), C(required_seconds),
      C(next_start), C(next_window), C(seconds_until_next), C(blackout), C(emergency), C(reason), C(msg)),
      at the last disruptive table (or index). A refused window fails the task with this dict.
  returned: when operation is vacuum_full or reindex, or create_indexes with windows or emergency
  type: dict
report:
  description:
    - For V(report), C(server_version), C(tables) (sizes, dead tuples and ratio, bloat with C(bloat_note) when
      unknown, last (auto)vacuum/analyze, indexes), C(long_running_queries), C(replication) (role and lag
      per client in bytes) and C(statements) (pg_stat_statements, or why not available).
    - C(server) holds C(version) (C(SHOW server_version)), C(version_num), C(connections) (sessions connected
      to any database, from C(pg_stat_database)), C(max_connections) and C(connections_percent) (of C(max_connections)).
  returned: when operation is report
  type: dict
needs_restart:
  description: Settings that take effect only after a server restart.
  returned: when operation is settings
  type: list
  elements: str
diff:
  description: What changed (or would change in check mode), when diff mode is on; see the diff_mode attribute.
  returned: when diff mode is on and the operation changes something
  type: dict
warnings_detail:
  description: Things the operator should know that did not fail the task (leftover indexes that could not be dropped).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PSYCOPG_IMPORT_ERROR,
    pg_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_runner import run_pg_maintenance
from ansible_collections.streamops.maintenance.plugins.module_utils.window import window_guard_argument_spec

OPERATIONS = ["report", "analyze", "vacuum", "vacuum_analyze", "vacuum_full", "reindex", "reset_sequences", "settings",
              "create_indexes", "performance_review"]


def argument_spec() -> dict:
    spec = pg_connection_argument_spec()
    spec.update(window_guard_argument_spec())
    spec.update(
        operation=dict(type="str", required=True, choices=OPERATIONS),
        tables=dict(type="list", elements="str"),
        schemas=dict(type="list", elements="str"),
        exclude_schemas=dict(type="list", elements="str"),
        min_dead_tuples=dict(type="int"),
        min_dead_ratio=dict(type="float"),
        min_bloat_ratio=dict(type="float"),
        refresh_statistics=dict(type="bool", default=True),
        stale_statistics_ratio=dict(type="float", default=0.2),
        jobs=dict(type="int", default=1),
        concurrently=dict(type="bool", default=True),
        lock_timeout=dict(type="int", default=5000),
        statement_timeout=dict(type="int", default=3600000),
        initial_throughput_mb_s=dict(type="float", default=25),
        long_query_seconds=dict(type="float", default=300),
        top_statements=dict(type="int", default=10),
        top_relations=dict(type="int", default=10),
        indexes=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            table=dict(type="str", required=True),
            columns=dict(type="list", elements="str"),
            expression=dict(type="str"),
            unique=dict(type="bool", default=False),
            where=dict(type="str"),
            method=dict(type="str", default="btree"),
        ), mutually_exclusive=[("columns", "expression")], required_one_of=[("columns", "expression")]),
        max_connections_percent=dict(type="float"),
        settings=dict(type="dict"),
    )
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(), supports_check_mode=True,
        required_if=[("operation", "settings", ["settings"]), ("operation", "create_indexes", ["indexes"])],
        mutually_exclusive=[("tables", "schemas")],
    )
    # python-dateutil is checked where a window is evaluated (window.py), so report runs without it.
    run_and_exit(module, run_pg_maintenance, {"psycopg": PSYCOPG_IMPORT_ERROR})


if __name__ == "__main__":
    main()
