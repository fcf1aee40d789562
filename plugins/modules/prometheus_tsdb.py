#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_tsdb
short_description: Prometheus TSDB maintenance - block report, snapshots through the admin API, snapshot retention
version_added: 0.1.0
description:
  - "V(report): the blocks of O(data_dir) (ULID, min and max time, duration, samples, chunks, series, bytes),
    the head's WAL and C(chunks_head) bytes, the snapshots under C(snapshots/) with their sizes, and totals.
    Blocks are read with C(promtool tsdb list <data_dir>) (exact epoch milliseconds and bytes); where promtool
    is absent, from each block's C(meta.json) with the block directory's file bytes (RV(source) says which).
    Read-only."
  - "V(snapshot): C(POST /api/v1/admin/tsdb/snapshot) (with O(skip_head)), then measures
    C(<data_dir>/snapshots/<name>). A snapshot's block files are hard links to the data directory's blocks, so
    its disk cost is mostly shared: RV(snapshot.bytes) is the apparent size, RV(snapshot.unshared_bytes) the
    bytes of files with a single link (what deleting it frees now). With O(keep_snapshots), retention follows and
    never deletes the snapshot just taken."
  - "V(retention): keeps the newest O(keep_snapshots) snapshots of C(<data_dir>/snapshots) and deletes the others.
    Only direct children whose names have Prometheus' snapshot format (C(20261206T141957Z-55baad91b995e27f):
    UTC time, 16 hex digits) and that are real directories are candidates, ordered by the time in the name; any
    other entry is left and reported V(skipped); a symlink is never followed nor deleted, a snapshots directory
    that is a symlink is refused, and each path is checked to resolve inside the snapshots directory before
    it is deleted."
  - Snapshots and retention do not interrupt Prometheus (no restart, no reload), so they take no maintenance
    window options.
  - Every operation returns RV(records) in the collection's one result shape.
requirements:
  - The module runs on the Prometheus host (O(data_dir) is read and, for retention, written locally).
  - C(promtool) (Debian package C(prometheus)) for V(report); without it meta.json is read.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.prometheus
attributes:
  check_mode:
    support: full
    details:
      - V(report) runs the same reads. V(snapshot) reads the server's flags (C(/api/v1/status/flags); an admin API
        that is off fails the task as the real run would) and plans the snapshot without calling the admin API.
        Retention returns a V(planned) record per snapshot it would delete, with its size.
  diff_mode:
    support: full
    details: The snapshot names before and after (as planned in check mode).
  idempotent:
    support: partial
    details: Each run with O(operation=snapshot) takes a new snapshot. V(report) and V(retention) are idempotent.
options:
  operation:
    description:
      - V(report) lists blocks and snapshots. V(snapshot) takes a snapshot (and with O(keep_snapshots) applies
        retention). V(retention) deletes all but the newest O(keep_snapshots) snapshots.
    type: str
    choices: [report, snapshot, retention]
    default: report
  data_dir:
    description:
      - The Prometheus data directory (C(--storage.tsdb.path)) on the host the module runs on.
      - It must hold a C(wal/) directory, a block, or a C(snapshots/) directory; anything else is refused.
    type: path
    required: true
  skip_head:
    description: For V(snapshot), leave out the head (the data not yet in a block, up to the last 2-3 hours).
    type: bool
    default: false
  keep_snapshots:
    description:
      - How many of the newest snapshots to keep; required for V(retention), optional for V(snapshot).
      - At least 1.
    type: int
  reuse_within:
    description:
      - For V(snapshot), a duration (V(6d), V(12h), V(90m)); when a snapshot younger than this (by the time in its
        name) is already there, no new one is taken and that one is reported V(ok) with its size (retention still runs).
        A rerun of the week's job after a later step failed then takes no second snapshot.
      - Default is a new snapshot on every run.
    type: str
  promtool:
    description:
      - Path of promtool for V(report). Default C(/usr/bin/promtool), then C(PATH); when none is found, the
        blocks' C(meta.json) files are read instead.
    type: path
notes:
  - Snapshots are taken by the server; O(data_dir) must be its C(--storage.tsdb.path) as seen from this host
    (a snapshot the API names that does not appear there fails the task saying so).
  - Grafana dashboards are out of scope (no Grafana server to test against).
seealso:
  - name: Prometheus TSDB admin APIs
    description: The snapshot API.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/#snapshot
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Blocks, WAL and snapshots of the VitalStream Prometheus
  streamops.maintenance.prometheus_tsdb:
    operation: report
    data_dir: /var/lib/prometheus/metrics2

- name: Weekly snapshot, keeping the four newest
  streamops.maintenance.prometheus_tsdb:
    operation: snapshot
    url: http://127.0.0.1:9090
    data_dir: /var/lib/prometheus/metrics2
    keep_snapshots: 4

- name: Snapshot retention alone, planned first
  streamops.maintenance.prometheus_tsdb:
    operation: retention
    data_dir: /var/lib/prometheus/metrics2
    keep_snapshots: 4
  check_mode: true
"""

RETURN = r"""
records:
  description:
    - One record per thing looked at or worked on, each with exactly C(name), C(action), C(status), C(detail),
      C(before), C(after) and C(seconds) (the collection's result shape).
    - "V(report): one, C(tsdb <data_dir>), action C(report), V(ok); C(after) holds the totals (C(blocks),
      C(samples), C(block_bytes), C(oldest), C(newest), C(wal_bytes), C(head_chunks_bytes), C(snapshots),
      C(snapshot_bytes), C(snapshot_unshared_bytes), C(foreign_entries)) and C(source)."
    - "V(snapshot): C(snapshot <name>), action C(snapshot), V(done) with C(after) C(name), C(path), C(bytes),
      C(unshared_bytes), C(blocks), C(skip_head); in check mode C(snapshot), V(planned), with the blocks it would
      hold."
    - "Retention: one per entry of C(snapshots/): C(snapshot <name>) action C(retention), V(unchanged) (kept),
      V(done) (deleted), V(planned) (check mode), V(failed) (the deletion failed; the task fails) or V(skipped)
      (not deleted because an earlier deletion failed); C(snapshots/<entry>) V(skipped) for anything that is not
      a snapshot (left alone). C(before) of a snapshot has its C(bytes) and C(unshared_bytes)."
  returned: always
  type: list
  elements: dict
  sample:
    - name: snapshot 20261206T141957Z-55baad91b995e27f
      action: snapshot
      status: done
      detail: "snapshot 20261206T141957Z-55baad91b995e27f: 1 block(s), 57.1 kB (57.1 kB not shared with the data directory's blocks)"
      before: null
      after: {name: 20261206T141957Z-55baad91b995e27f, path: /var/lib/prometheus/metrics2/snapshots/20261206T141957Z-55baad91b995e27f,
              bytes: 58493, unshared_bytes: 58493, blocks: 1, skip_head: false}
      seconds: 0.214
    - name: snapshot 20261129T020000Z-3f2a9c01d4e5b6a7
      action: retention
      status: done
      detail: "deleted: older than the newest 4 (1.2 GB)"
      before: {name: 20261129T020000Z-3f2a9c01d4e5b6a7, path: /var/lib/prometheus/metrics2/snapshots/20261129T020000Z-3f2a9c01d4e5b6a7,
               taken: "2026-11-29T02:00:00Z", bytes: 1288490188, unshared_bytes: 104857600, blocks: 12}
      after: null
      seconds: 0.051
blocks:
  description: For V(report), the blocks oldest first, each C(ulid), C(min_time), C(max_time) (ISO, UTC; max is
    exclusive), C(min_time_ms), C(max_time_ms), C(duration_seconds), C(samples), C(chunks), C(series), C(bytes).
  returned: when operation is report
  type: list
  elements: dict
snapshots:
  description: For V(report), every entry of C(snapshots/) (C(name), C(path), C(kind) snapshot, foreign or symlink,
    C(taken)), snapshots with C(bytes), C(unshared_bytes) and C(blocks).
  returned: when operation is report
  type: list
  elements: dict
totals:
  description: For V(report), the totals also in the record's C(after).
  returned: when operation is report
  type: dict
source:
  description: For V(report), where the blocks were read, V(promtool) or V(meta.json).
  returned: when operation is report
  type: str
snapshot:
  description: The snapshot taken.
  returned: when operation is snapshot and not in check mode
  type: dict
  contains:
    name:
      description: The snapshot's name, as the server gave it.
      type: str
      sample: 20261206T141957Z-55baad91b995e27f
    path:
      description: Its directory, C(<data_dir>/snapshots/<name>).
      type: str
    bytes:
      description: Apparent size, the bytes of its files.
      type: int
    unshared_bytes:
      description: Bytes of its files with a single link (not shared with the data directory's blocks).
      type: int
    blocks:
      description: Blocks in the snapshot, the head included (written as a block unless O(skip_head)).
      type: int
deleted:
  description: When a retention deletion failed, the snapshots that were deleted before it.
  returned: when a deletion failed
  type: list
  elements: str
not_deleted:
  description: When a retention deletion failed, the snapshots that should have gone and remain.
  returned: when a deletion failed
  type: list
  elements: str
diff:
  description: In diff mode, C(before.snapshots) and C(after.snapshots), the snapshot names.
  returned: when diff mode is on and operation is snapshot or retention
  type: dict
executed:
  description: The commands run and API calls made (C(promtool tsdb list ...), C(POST .../snapshot?skip_head=...)).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_conn import prometheus_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_tsdb import (
    OPERATIONS,
    run_prometheus_tsdb,
)


def argument_spec() -> dict:
    spec = prometheus_argument_spec()
    spec.update(
        operation=dict(type="str", choices=list(OPERATIONS), default="report"),
        data_dir=dict(type="path", required=True),
        skip_head=dict(type="bool", default=False),
        keep_snapshots=dict(type="int"),
        reuse_within=dict(type="str"),
        promtool=dict(type="path"),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_prometheus_tsdb, {})


if __name__ == "__main__":
    main()
