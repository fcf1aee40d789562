#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_restore
short_description: Restore a production PostgreSQL database from a verified backup set, swapped in by rename
version_added: 0.4.0
author:
  - streamops maintainers (@streamops)
description:
  - Replaces the live database O(database) with the contents of a backup set written by
    M(streamops.maintenance.pg_backup), never by restoring over it.
  - "Only a set that M(streamops.maintenance.backup_verify) marked verified (C(verified.json)), or a safety set
    this module took, is restored, and its files are checked again first (manifest, checksums, archives read to the
    end): a damaged set is refused before anything stops. The set must hold a C(full) dump of O(database)."
  - Only inside a maintenance window with the estimated time left (O(windows)), or with an O(emergency) approval;
    with neither, or outside the window without an approval, nothing is done.
  - The plan comes first (the first records, and all of a check-mode run) - the set, its age and size, what the live
    database holds now (size, the critical tables' rows, the sessions connected), the writers that would stop, the
    estimated time (the set's own restore test, from C(verified.json), else a conservative rate) and the safety backup.
  - "Then, in order: a safety backup of the live database (pg_backup's parts C(full) and C(critical_data) under
    O(safety_backup_root), checked, and held out of retention with C(hold.json) until the restore is accepted);
    the writers stopped (O(writers)); the set restored into a new database C(<database>__restore_<stamp>) owned by
    the live database's owner, with its settings, ACL and connection limit; row counts and checksums against the
    manifest and O(sql_checks) on it; the live database's sessions terminated and both databases renamed in one
    transaction (the old one kept as C(<database>__replaced_<stamp>) unless O(keep_replaced=false)); the writers
    started again exactly as they were (always, also after a failure); the live database read back."
  - Any failure before the swap drops the new database and leaves the live one untouched; the message says what
    was done. After the swap the message names the way back (rename the replaced database back, or restore the
    safety set).
  - O(operation=accept) releases the safety set's hold (retention may then age it out) and, with
    O(drop_replaced=true), drops the replaced database.
  - The connection options need a role that may create, rename and drop databases and terminate the live
    database's sessions (its owner with CREATEDB, or a superuser); restoring object owners needs a superuser.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.postgres
  - streamops.maintenance.s3
  - streamops.maintenance.kubernetes
  - streamops.maintenance.docker
  - streamops.maintenance.window_guard
attributes:
  check_mode:
    support: full
    details:
      - Checks the set's files, reads the live database and the writers, and returns the plan (C(planned) records
        for each step); stops, creates and renames nothing. Outside the window it says the restore would be refused.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - O(operation=accept) is idempotent. A restore replaces the database each time it runs.
options:
  operation:
    description:
      - V(restore) replaces O(database) with the set; V(accept) ends a restore (releases the safety set's hold).
    type: str
    choices: [restore, accept]
    default: restore
  backup_root:
    description: Absolute directory the backup sets are under (pg_backup's O(streamops.maintenance.pg_backup#module:backup_root)).
    type: path
    required: true
  backup_set:
    description:
      - The set to restore, a set id such as V(vitalstream-20261201T020000Z) directly under O(backup_root), or
        V(latest) for the newest set of O(name) that backup_verify marked verified.
    type: str
    default: latest
  name:
    description: The sets' name (pg_backup's O(streamops.maintenance.pg_backup#module:name)) that V(latest) looks for; O(database) when unset.
    type: str
  maintenance_database:
    description: Database to connect to for creating, renaming and dropping databases; never O(database).
    type: str
    default: postgres
  critical_tables:
    description:
      - Tables counted in the plan and dumped in the safety backup's C(critical_data) part. The tables of the set's
        manifest when unset.
    type: list
    elements: str
  sql_checks:
    description:
      - Queries run (read-only) in the restored copy before it is swapped in; the first column of the first row
        must be a number at least O(sql_checks[].min). A failed one drops the copy and leaves the live database.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check; its record is named C(sql <name>).
        type: str
        required: true
      sql:
        description: The query.
        type: str
        required: true
      min:
        description: Smallest acceptable value.
        type: int
        default: 1
  writers:
    description:
      - The applications that write to O(database), stopped during the restore and started again as they were.
        Exactly one of O(writers.compose) and O(writers.kubernetes). Required for O(operation=restore).
    type: dict
    suboptions:
      compose:
        description:
          - "The running containers of the listed C(services) of a compose project on the Docker engine of
            O(docker_host): C(project) (or C(project_dir), whose base name compose uses), C(services) (a list),
            C(stop_timeout) (seconds before a container is killed, default 10). Stopped and started with the
            Docker API: the same containers, as compose made them."
        type: dict
      kubernetes:
        description:
          - "Deployments in C(namespace), by C(deployments) (names) or C(selector) (a label selector), scaled to 0;
            the replicas of each are kept in its annotation C(streamops.io/restore-replicas) until it is scaled back."
        type: dict
      start_timeout:
        description: Seconds to wait for the writers to be stopped, and running (ready) again.
        type: int
        default: 120
  verify_unmarked:
    description:
      - A set named in O(backup_set) without C(verified.json) is refused unless this is true. Then it is verified
        now, before anything stops, as M(streamops.maintenance.backup_verify) does with its restore test - every
        file read, the set restored into a scratch database C(<database>__verify_<stamp>) on this server (always
        dropped), its row counts and table checksums against the manifest, and O(sql_checks). Only when that
        passes (which writes the mark) does the restore go on; otherwise nothing is stopped or changed.
      - V(latest) is always the newest set that is already verified.
      - Check mode plans the verification and runs none of it (it creates a database).
    type: bool
    default: false
  safety_backup_root:
    description: Where the safety backup goes; O(backup_root) when unset.
    type: path
  keep_replaced:
    description: Keep the replaced database as C(<database>__replaced_<stamp>) (the instant way back).
    type: bool
    default: true
  safety_set:
    description: O(operation=accept) - the safety set the restore took (its result's RV(safety_set)).
    type: str
  drop_replaced:
    description: O(operation=accept) - also drop the replaced database the hold names.
    type: bool
    default: false
  jobs:
    description: Parallel pg_restore workers.
    type: int
    default: 2
  pg_bin_dir:
    description: Directory of pg_dump and pg_restore; the ones on E(PATH) when unset.
    type: path
notes:
  - With O(s3), the safety backup is also uploaded there, as pg_backup does.
seealso:
  - module: streamops.maintenance.backup_verify
  - module: streamops.maintenance.pg_backup
"""

EXAMPLES = r"""
- name: Restore VitalStream from last night's verified set, stopping its compose services
  streamops.maintenance.pg_restore:
    login_host: db.vitalstream.internal
    login_user: postgres
    login_password: "{{ vault_postgres_admin_password }}"
    database: vitalstream
    backup_root: /backup/postgresql
    backup_set: latest
    writers:
      compose:
        project: vitalstream
        services: [api-gateway, alarm-engine]
    sql_checks:
      - {name: patients present, sql: "SELECT count(*) FROM patients", min: 1}
    windows: "{{ maintenance_windows }}"
  register: restore

- name: Accept it a day later, dropping the replaced database
  streamops.maintenance.pg_restore:
    operation: accept
    database: vitalstream
    backup_root: /backup/postgresql
    safety_set: "{{ restore.safety_set }}"
    drop_replaced: true

- name: Stream Systems, in an emergency, its Deployments scaled to zero while it runs
  streamops.maintenance.pg_restore:
    database: streamsystems
    backup_root: /backup/streamsystems
    backup_set: streamsystems-20261201T020000Z
    writers:
      kubernetes:
        namespace: stream-systems
        selector: app.kubernetes.io/part-of=stream-systems
    emergency:
      approved_by: cto@streamsystems.example
      reason: trades table corrupted by a faulty migration
      ticket: INC-4711
"""

RETURN = r"""
records:
  description:
    - "The plan: C(manifest), C(checksums), C(archive <part>) (action C(verify)) of the set; C(backup set <id>)
      (action C(restore_source), C(ok), C(after) the set's id, path, kind, age, bytes, row counts);
      C(database <db>) (action C(restore_target), C(before) size, owner, row counts, sessions); the writers (action
      C(writers)); C(window) (action C(window), C(ok) or C(breach), C(after) estimated seconds and seconds left)."
    - "Check mode: C(planned) records for C(safety_backup), each C(stop_writer), C(restore_database) and C(swap)."
    - "A run: the safety backup (action C(safety_backup), and C(upload) with S3), its checks (named
      C(<safety id> <check>)), C(hold); C(stop_writer) per writer (C(done), or C(unchanged) when it was not
      running); C(restore_database), C(copy_settings), C(row counts) and C(table checksums) and C(sql <name>)
      (action C(verify)) of the new database; C(terminate_sessions) (C(before.sessions) lists them), C(swap);
      C(start_writer) per writer; C(live_check). On a failure before the swap C(drop_restored) and
      C(release_hold); with O(keep_replaced=false) C(drop_replaced)."
    - "Accept: C(drop_replaced) (with O(drop_replaced)) and C(release_hold): C(done), C(planned) in check mode,
      C(unchanged) when already accepted."
  returned: always
  type: list
  elements: dict
  sample:
    - {name: vitalstream, action: swap, status: done, seconds: 0.21,
       detail: "vitalstream__restore_20261206T210000Z is now vitalstream; the previous vitalstream is vitalstream__replaced_20261206T210000Z",
       before: {database: vitalstream, renamed_to: vitalstream__replaced_20261206T210000Z},
       after: {database: vitalstream, restored_from: vitalstream__restore_20261206T210000Z}}
msg:
  description: What was done, or why not; after the swap it names the replaced database and the safety set.
  returned: always
  type: str
plan:
  description:
    - The plan (also of a refused or failed run, once known) - C(set) (id, path, kind, age_seconds, bytes,
      row_counts, verified_at), C(database) (size, owner, row_counts, sessions), C(server), C(writers) (kind,
      running, not_running), C(estimate) (seconds, basis, window_seconds_left, window_mode), C(safety_backup) (root,
      name, parts, s3), C(restored_database), C(replaced_database), C(keep_replaced).
  returned: when the set and the live database could be read
  type: dict
safety_set:
  description: The id of the safety set taken before the restore (give it to O(operation=accept)).
  returned: always
  type: str
replaced_database:
  description: The name the replaced database has now (null when not swapped, or dropped).
  returned: always
  type: str
restored_database:
  description: The database holding the restored data (O(database) after the swap; null when it was dropped).
  returned: always
  type: str
window:
  description: The window decision (docs/records.md), the same dict as M(streamops.maintenance.maintenance_window) returns.
  returned: when a restore was planned
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import sql_checks_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.docker_conn import (
    DOCKER_IMPORT_ERROR,
    docker_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_conn import (
    KUBERNETES_IMPORT_ERROR,
    kubernetes_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PSYCOPG_IMPORT_ERROR,
    pg_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_restore import run_pg_restore
from ansible_collections.streamops.maintenance.plugins.module_utils.s3 import (
    BOTO3_IMPORT_ERROR,
    s3_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.window import window_guard_argument_spec


def argument_spec() -> dict:
    spec = pg_connection_argument_spec()
    spec.update(sql_checks_argument_spec())
    spec.update(s3_argument_spec())
    spec.update(kubernetes_argument_spec())
    spec.update(docker_argument_spec())
    spec.update(window_guard_argument_spec())
    spec.update(
        operation=dict(type="str", choices=["restore", "accept"], default="restore"),
        backup_root=dict(type="path", required=True),
        backup_set=dict(type="str", default="latest"),
        name=dict(type="str"),
        maintenance_database=dict(type="str", default="postgres"),
        critical_tables=dict(type="list", elements="str"),
        # Its keys are checked (unknown ones named) by restore_writers.check_writers.
        writers=dict(type="dict", options=dict(
            compose=dict(type="dict"),
            kubernetes=dict(type="dict"),
            start_timeout=dict(type="int", default=120),
        )),
        verify_unmarked=dict(type="bool", default=False),
        safety_backup_root=dict(type="path"),
        keep_replaced=dict(type="bool", default=True),
        safety_set=dict(type="str"),
        drop_replaced=dict(type="bool", default=False),
        jobs=dict(type="int", default=2),
        pg_bin_dir=dict(type="path"),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("operation", "restore", ["writers"]), ("operation", "accept", ["safety_set"])])
    writers = module.params["writers"] or {}
    missing = {"psycopg": PSYCOPG_IMPORT_ERROR}
    if module.params["s3"]:
        missing["boto3"] = BOTO3_IMPORT_ERROR
    if module.params["operation"] == "restore" and writers.get("compose"):
        missing["docker"] = DOCKER_IMPORT_ERROR
    if module.params["operation"] == "restore" and writers.get("kubernetes"):
        missing["kubernetes"] = KUBERNETES_IMPORT_ERROR
    run_and_exit(module, run_pg_restore, missing)


if __name__ == "__main__":
    main()
