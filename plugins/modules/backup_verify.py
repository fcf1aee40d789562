#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_verify
short_description: Prove that a backup set written by pg_backup will restore
version_added: 0.1.0
author:
  - streamops maintainers (@streamops)
description:
  - Checks one backup set (a local directory, an S3 prefix, or both) and reports each check separately
    in RV(checks).
  - V(manifest) is present, complete and lists files that exist. V(checksums) reads every byte of every
    file against the manifest's size and sha256. V(archives) reads each part to its end with the tool
    that would restore it (C(pg_restore) writing the whole archive as a script, C(redis-check-rdb), a full
    decompression of the tar) - a table of contents that lists fine is not enough. V(age) compares the
    set's end time with O(max_age). V(s3_copy) reads every S3 object back against the manifest when both
    a local set and an S3 copy are given.
  - With O(restore_test), restores the set into O(scratch_database) on the server of the connection
    options (created by this module, marked with a comment, and always dropped afterwards, also on
    failure), then compares the critical tables' row counts with the manifest and runs O(sql_checks).
    It refuses the backup's source database and any existing database it did not create.
  - RV(verified) is true only when every check passed; then C(verified.json) is written beside the
    manifest (and in S3), and M(streamops.maintenance.pg_backup) retention never deletes the newest
    verified set.
  - The task fails when the set is not verified, unless O(fail_on_unverified=false).
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.postgres
  - streamops.maintenance.s3
attributes:
  check_mode:
    support: full
    details: Runs every read-only check; skips the restore test (it creates a database) and writes no mark.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Writes the same mark again when run again; reports changed when it writes it.
options:
  path:
    description: Absolute directory of the set (the one with C(manifest.json)).
    type: path
  max_age:
    description: The set must have finished less than this long ago (V(26h), V(8d)).
    type: str
  restore_test:
    description: Restore into O(scratch_database) and check what was restored.
    type: bool
    default: false
  scratch_database:
    description:
      - Database for the restore test, on the server of the connection options (O(login_host) and so on;
        O(database) is not used). Must not exist, or exist from an earlier run of this module.
    type: str
    default: streamops_verify_scratch
  maintenance_database:
    description: Database to connect to for creating and dropping the scratch database.
    type: str
    default: postgres
  jobs:
    description: Parallel pg_restore workers for the restore test.
    type: int
    default: 2
  sql_checks:
    description:
      - Queries run (read-only) in the restored scratch database; the first column of the first row must
        be a number at least O(sql_checks[].min).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check in RV(checks).
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
  pg_bin_dir:
    description: Directory of pg_restore; the one on E(PATH) when unset.
    type: path
  fail_on_unverified:
    description: Fail the task when the set is not verified (RV(checks) say why).
    type: bool
    default: true
seealso:
  - module: streamops.maintenance.pg_backup
"""

EXAMPLES = r"""
- name: Verify last night's backup and restore-test it on the staging server
  streamops.maintenance.backup_verify:
    path: "{{ backup.path }}"
    max_age: 26h
    s3:
      bucket: streamsystems-backups
      prefix: "{{ backup.s3.prefix }}"
    restore_test: true
    login_host: staging-db.internal
    login_user: restore_checker
    login_password: "{{ vault_restore_password }}"
    scratch_database: verify_streamsystems
    jobs: 2
    sql_checks:
      - name: trades in the last day of the backup
        sql: SELECT count(*) FROM trades WHERE created_at > now() - interval '1 day'
        min: 1

- name: Check the S3 copy only, without a restore
  streamops.maintenance.backup_verify:
    s3:
      bucket: vitalstream-backups
      prefix: monthly/2026/11/01/vitalstream-20261101T020000Z
    max_age: 32d
"""

RETURN = r"""
verified:
  description:
    - True only when no check failed and, with O(restore_test), the restore test ran and passed (a data-only
      set, or check mode, cannot be restore-tested, so it is not verified).
  returned: always
  type: bool
checks:
  description: One record per check, with C(check), C(status) (passed, failed, skipped) and C(detail).
  returned: always
  type: list
  elements: dict
  sample:
    - {check: checksums, status: failed, detail: "full.dump: sha256 1f0c..., manifest says 9a3e..."}
backup_id:
  description: The set's id from its manifest.
  returned: when the manifest could be read
  type: str
duration_s:
  description: Seconds the verification took.
  returned: always
  type: float
restore_seconds:
  description: Seconds of the restore test, from creating the scratch database to dropping it.
  returned: when the restore test ran
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import run_backup_verify
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PSYCOPG_IMPORT_ERROR,
    pg_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.storage import (
    BOTO3_IMPORT_ERROR,
    s3_argument_spec,
)


def argument_spec() -> dict:
    spec = pg_connection_argument_spec()
    spec.update(s3_argument_spec())
    spec.update(
        path=dict(type="path"),
        max_age=dict(type="str"),
        restore_test=dict(type="bool", default=False),
        scratch_database=dict(type="str", default="streamops_verify_scratch"),
        maintenance_database=dict(type="str", default="postgres"),
        jobs=dict(type="int", default=2),
        sql_checks=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            sql=dict(type="str", required=True),
            min=dict(type="int", default=1),
        )),
        pg_bin_dir=dict(type="path"),
        fail_on_unverified=dict(type="bool", default=True),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("path", "s3")])
    missing = {}
    if module.params["restore_test"]:
        missing["psycopg"] = PSYCOPG_IMPORT_ERROR
    if module.params["s3"]:
        missing["boto3"] = BOTO3_IMPORT_ERROR
    run_and_exit(module, run_backup_verify, missing)


if __name__ == "__main__":
    main()
